# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Lesion box library on tiny NIH / VinDr-CXR fixtures in the real layouts, and on the VinDr demo (DICOM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ext.data.cxr.labels import MIMIC_CXR_LT_CLASSES, NIH_CLASSES, VINDR_CLASSES
from monai_ext.data.cxr.lesion_boxes import BOX_CLASS_MAPS, boxes_per_class, image_size, lesion_box_library
from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.demo import get_writer


def _png(path: Path, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((height, width), dtype=np.uint8)).save(path)


def _nih(root: Path, boxes: str) -> Path:
    root.mkdir(parents=True)
    (root / "Data_Entry_2017_v2020.csv").write_text(
        "Image Index,Finding Labels,Patient ID\n" "00000001_000.png,Effusion|Mass,1\n" "00000002_000.png,Nodule,2\n"
    )
    (root / "BBox_List_2017.csv").write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\n" + boxes)
    _png(root / "images" / "00000001_000.png", 40, 30)
    _png(root / "images" / "00000002_000.png", 40, 30)
    return root


NIH_BOXES = (
    "00000002_000.png,Nodule,1,2,3,4\n00000001_000.png,Effusion,5,6,10,10\n00000001_000.png,Infiltrate,0,0,40,30\n"
)


def _vindr(root: Path, rows: list[str]) -> Path:
    root.mkdir(parents=True)
    (root / "train.csv").write_text("image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max\n" + "".join(rows))
    for image_id in sorted({r.split(",")[0] for r in rows}):
        _png(root / "train" / f"{image_id}.png", 50, 20)
    return root


def _v(image_id: str, name: str, rad: str, box: tuple = ()) -> str:
    coords = ",".join(str(v) for v in box) if box else ",,,"
    return f"{image_id},{name},{VINDR_CLASSES.index(name)},{rad},{coords}\n"


VINDR_ROWS = [
    _v("img1", "Nodule/Mass", "R9", (1, 1, 5, 5)),
    _v("img1", "Nodule/Mass", "R10", (2, 2, 6, 6)),
    _v("img1", "Nodule/Mass", "R10", (20, 2, 26, 8)),  # R10 (first in sorted order) has two boxes
    _v("img1", "Pneumothorax", "R9", (30, 1, 40, 10)),  # one reader only
    _v("img1", "Aortic enlargement", "R9", (10, 10, 12, 12)),
    _v("img1", "Aortic enlargement", "R11", (10, 10, 12, 12)),  # two readers, mapped to None
    _v("img1", "No finding", "R11"),
]


def test_nih_boxes_mapped_with_lines_and_sizes(tmp_path: Path):
    root = _nih(tmp_path / "nih", NIH_BOXES)
    lib = lesion_box_library({"nih": root})
    assert [
        (b.image.endswith(n), b.box_class, b.class_name, b.box, b.line)
        for b, n in zip(lib, ["1_000.png"] * 2 + ["2_000.png"])
    ] == [
        (True, "Effusion", "Pleural Effusion", (5.0, 6.0, 15.0, 16.0), 3),
        (True, "Infiltration", "Infiltration", (0.0, 0.0, 40.0, 30.0), 4),
        (True, "Nodule", "Nodule", (1.0, 2.0, 4.0, 6.0), 2),
    ]
    assert all(b.image_size == (40, 30) and b.source == "nih" for b in lib)
    assert lib[0].relative_box == pytest.approx((5 / 40, 6 / 30, 15 / 40, 16 / 30))
    assert boxes_per_class(lib) == {"Infiltration": 1, "Nodule": 1, "Pleural Effusion": 1}


def test_vindr_reader_policy(tmp_path: Path):
    root = _vindr(tmp_path / "vindr", VINDR_ROWS)
    lib = lesion_box_library({"vindr": root})
    # Nodule/Mass: 2 readers -> R10's two boxes (lines 3, 4); Pneumothorax: 1 reader -> dropped; Aortic -> None
    assert [(b.class_name, b.box, b.line, b.image_size) for b in lib] == [
        ("Lung Lesion", (2.0, 2.0, 6.0, 6.0), 3, (50, 20)),
        ("Lung Lesion", (20.0, 2.0, 26.0, 8.0), 4, (50, 20)),
    ]
    lib1 = lesion_box_library({"vindr": root}, vindr_min_readers=1)
    assert boxes_per_class(lib1) == {"Lung Lesion": 2, "Pneumothorax": 1}


def test_box_outside_image_names_file_line_and_size(tmp_path: Path):
    root = _nih(tmp_path / "nih", "00000002_000.png,Nodule,35,2,6,4\n")
    with pytest.raises(DatasetLayoutError, match=r"BBox_List_2017.csv', line 2: .*\[35.0, 2.0, 41.0, 6.0\].*40x30"):
        lesion_box_library({"nih": root})


def test_unmapped_class_and_bad_target(tmp_path: Path):
    root = _vindr(tmp_path / "vindr", VINDR_ROWS)
    partial = {k: v for k, v in BOX_CLASS_MAPS["vindr"].items() if k != "Nodule/Mass"}
    with pytest.raises(
        DatasetLayoutError, match=r"train.csv', line 3: vindr box class 'Nodule/Mass'.*class_maps\['vindr'\]"
    ):
        lesion_box_library({"vindr": root}, class_maps={"vindr": partial})
    with pytest.raises(ValueError, match="'Nodule/Mass' -> 'Lung Lesion'"):
        lesion_box_library({"vindr": root}, classes=[c for c in MIMIC_CXR_LT_CLASSES if c != "Lung Lesion"])
    with pytest.raises(ValueError, match=r"no lesion box for class\(es\) \['Hernia'\]"):
        lesion_box_library({"vindr": root}, require_classes=["Lung Lesion", "Hernia"])


def test_default_maps_cover_source_classes():
    assert set(BOX_CLASS_MAPS["vindr"]) == set(VINDR_CLASSES) - {"No finding"}
    assert set(BOX_CLASS_MAPS["nih"]) <= set(NIH_CLASSES)
    targets = {t for m in BOX_CLASS_MAPS.values() for t in m.values() if t is not None}
    assert targets <= set(MIMIC_CXR_LT_CLASSES) - {"No Finding"}


def test_vindr_demo_dicom_sizes(tmp_path: Path):
    get_writer("vindr")(tmp_path / "vindr", size=0.3, seed=0)
    lib = lesion_box_library({"vindr": tmp_path / "vindr"})
    assert lib and all(b.image.endswith(".dicom") and b.image_size == (128, 128) for b in lib)
    assert image_size(lib[0].image) == (128, 128)
    assert {b.class_name for b in lib} <= set(MIMIC_CXR_LT_CLASSES)
