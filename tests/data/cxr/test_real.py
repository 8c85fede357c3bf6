# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""CXR readers on the real label files shipped in the torchxrayvision 1.5.7 wheel (no images: check_files=False).

Expected numbers were computed independently with pandas on the same files (project notes DATASETS.md sections
1-3, cxr_label_stats.json, nvum_split_reproduction.json) and, for PadChest, match NVUM's Table 4 (MICCAI 2022).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from monai_ext.data.cxr import (
    CHEXPERT_CLASSES,
    NIH_CLASSES,
    NVUM_CHEXPERT_SETTING_CLASSES,
    NVUM_NIH_SETTING_CLASSES,
    VINDR_CLASSES,
    align_labels,
    chexpert_datalist,
    nih_boxes,
    nih_datalist,
    nvum_datalist,
    vindr_datalist,
)
from monai_ext.data.datalist import class_totals

pytest.importorskip("torchxrayvision")


def _wheel_data() -> Path:
    spec = importlib.util.find_spec("torchxrayvision")
    return Path(spec.origin).parent / "data"


def _link(root: Path, target: str, name: str) -> Path:
    src = _wheel_data() / target
    if not src.is_file():
        pytest.skip(f"{src} not in this torchxrayvision install")
    root.mkdir(parents=True, exist_ok=True)
    os.symlink(src, root / name)
    return root


@pytest.fixture(scope="module")
def nih_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("real") / "nih"
    _link(root, "Data_Entry_2017_v2020.csv.gz", "Data_Entry_2017_v2020.csv.gz")
    return _link(root, "BBox_List_2017.csv.gz", "BBox_List_2017.csv.gz")


@pytest.fixture(scope="module")
def chexpert_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("real") / "chexpert"
    _link(root / "CheXpert-v1.0-small", "chexpert_train.csv.gz", "train.csv.gz")
    return root


@pytest.fixture(scope="module")
def padchest_dir(tmp_path_factory):
    name = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"
    return _link(tmp_path_factory.mktemp("real") / "padchest", name, name)


def test_nih_real(nih_dir):
    items = nih_datalist(nih_dir, split="all", classes=NIH_CLASSES + ("No Finding",), check_files=False)
    assert len(items) == 112_120 and len({d["patient_id"] for d in items}) == 30_805
    assert sum(d["view"] == "PA" for d in items) == 67_310
    assert class_totals(items, NIH_CLASSES + ("No Finding",)) == {
        "Atelectasis": 11_559, "Cardiomegaly": 2_776, "Effusion": 13_317, "Infiltration": 19_894, "Mass": 5_782,
        "Nodule": 6_331, "Pneumonia": 1_431, "Pneumothorax": 5_302, "Consolidation": 4_667, "Edema": 2_303,
        "Emphysema": 2_516, "Fibrosis": 1_686, "Pleural_Thickening": 3_385, "Hernia": 227, "No Finding": 60_361,
    }  # fmt: skip
    assert items[1]["image_name"] == "00000001_001.png" and items[1]["label"][NIH_CLASSES.index("Emphysema")] == 1
    boxes = nih_boxes(nih_dir)
    assert len(boxes) == 880 and sum(len(v) for v in boxes.values()) == 984
    per_class: dict[str, int] = {}
    for v in boxes.values():
        for b in v:
            per_class[b["label"]] = per_class.get(b["label"], 0) + 1
    assert per_class == {
        "Atelectasis": 180, "Effusion": 153, "Cardiomegaly": 146, "Infiltration": 123, "Pneumonia": 120,
        "Pneumothorax": 98, "Mass": 85, "Nodule": 79,
    }  # fmt: skip
    coords = np.array([b["box"] for v in boxes.values() for b in v])
    assert coords[:, 2].max() < 1013 and coords[:, 3].max() < 1023 and (coords[:, :2] >= 0).all()


# frontal-row counts (CheXpert train.csv, 191,027 frontal): positives and uncertain per class
CXP_POS_UNC = {"Consolidation": (12_983, 24_381), "Atelectasis": (29_720, 29_863), "Pneumonia": (4_675, 15_981)}


def test_chexpert_real(chexpert_dir):
    classes = tuple(CXP_POS_UNC)
    zeros = chexpert_datalist(chexpert_dir, check_files=False)  # all 14 classes, U-zeros
    ones = chexpert_datalist(chexpert_dir, classes=classes, uncertain="ones", check_files=False)
    assert len(zeros) == len(ones) == 191_027
    assert sum(d["view"] in ("PA", "AP") for d in zeros) == 191_010  # projections=("PA", "AP") keeps these
    assert len({d["patient_id"] for d in zeros}) <= 64_540
    cols = [CHEXPERT_CLASSES.index(c) for c in classes]
    zeros_sub = [{"label": [d["label"][i] for i in cols]} for d in zeros]
    assert class_totals(zeros_sub, classes) == {c: pos for c, (pos, _) in CXP_POS_UNC.items()}
    assert class_totals(ones, classes) == {c: pos + unc for c, (pos, unc) in CXP_POS_UNC.items()}
    # DATASETS.md 2.2: Consolidation 6.8 % (U-zeros) vs 19.6 % (U-ones) of frontal images
    assert round(100 * 12_983 / 191_027, 1) == 6.8 and round(100 * (12_983 + 24_381) / 191_027, 1) == 19.6

    # NVUM's CheXpert rule without its duplicate-row artefact (the composition nvum_datalist uses, see
    # test_readers.py::test_nvum_nih_and_chexpert_fixtures): Age != 0, then the class trim -> 32,010 unique images
    nvum = align_labels(
        [d for d in zeros if d["age"] != 0], CHEXPERT_CLASSES, NVUM_CHEXPERT_SETTING_CLASSES,
        rename={"Pleural Effusion": "Effusion"}, drop_positive=("Consolidation",),
    )  # fmt: skip
    assert len(nvum) == 32_010 and len({d["image"] for d in nvum}) == 32_010
    assert class_totals(nvum, NVUM_CHEXPERT_SETTING_CLASSES) == {
        "Cardiomegaly": 4_265, "Edema": 7_754, "Pneumonia": 716, "Atelectasis": 5_310, "Pneumothorax": 3_678,
        "Effusion": 9_171, "Fracture": 2_293, "No Finding": 9_552,
    }  # fmt: skip


PDC_POSITIVES = {
    "nih": (
        14_714,
        {
            "Atelectasis": 530, "Cardiomegaly": 724, "Effusion": 286, "Infiltration": 907, "Mass": 117, "Nodule": 511,
            "Pneumonia": 424, "Pneumothorax": 25, "Edema": 9, "Emphysema": 108, "Fibrosis": 45,
            "Pleural_Thickening": 482, "Hernia": 199, "No Finding": 11_453,
        },
    ),
    "chexpert": (
        12_885,
        {
            "Cardiomegaly": 570, "Edema": 2, "Pneumonia": 133, "Atelectasis": 428, "Pneumothorax": 24, "Effusion": 181,
            "Fracture": 273, "No Finding": 11_453,
        },
    ),
}  # fmt: skip


@pytest.mark.parametrize("setting", ["nih", "chexpert"])
def test_nvum_padchest_real(padchest_dir, setting):
    items = nvum_datalist(padchest_dir, "padchest", setting=setting, check_files=False)
    size, positives = PDC_POSITIVES[setting]
    classes = NVUM_NIH_SETTING_CLASSES if setting == "nih" else NVUM_CHEXPERT_SETTING_CLASSES
    assert len(items) == size  # NVUM Table 4: 14,714 (NIH setting) / 12,885 (CheXpert setting)
    assert class_totals(items, classes) == positives
    assert len({d["patient_id"] for d in items}) == size


def test_vindr_real(tmp_path):
    root = _link(tmp_path / "vindr", "vinbigdata-train.csv.gz", "train.csv.gz")
    items = vindr_datalist(root, check_files=False)
    assert len(items) == 15_000 and all(len(d["readers"]) == 3 for d in items)
    totals = class_totals(items, VINDR_CLASSES)
    votes = np.array([d["votes"] for d in items])
    assert (totals["Aortic enlargement"], totals["Cardiomegaly"], totals["Atelectasis"]) == (3_067, 2_300, 186)
    major = dict(zip(VINDR_CLASSES, (votes >= 2).sum(0).tolist()))  # majority = 2 of 3 readers
    assert (major["Aortic enlargement"], major["Cardiomegaly"], major["Atelectasis"]) == (2_346, 1_817, 62)
    assert totals["No finding"] == major["No finding"] == 10_606  # normal is all-or-none in this file


def test_chexpert_classes_constant_matches_real_header(chexpert_dir):
    import gzip

    with gzip.open(chexpert_dir / "CheXpert-v1.0-small" / "train.csv.gz", "rt") as f:
        header = f.readline().strip().split(",")
    assert tuple(header[5:]) == CHEXPERT_CLASSES
