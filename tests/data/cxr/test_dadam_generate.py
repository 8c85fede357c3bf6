# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Offline DADAM generator on the MIMIC-CXR-LT, NIH and VinDr-CXR demos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from monai_ext.data.cxr import MIMIC_CXR_LT_CLASSES, generate_dadam_dataset, mimic_cxr_lt_datalist, patient_val_split
from monai_ext.demo import get_writer
from monai_ext.transforms import DiseasedAreaAugmenter, RandDiseasedAreaAugmentd, radiograph_loader


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dadam_demo")
    for name in ("mimic_cxr_lt", "nih", "vindr"):
        get_writer(name)(root / name, size=0.5, seed=0)
    return root


def _hand_corr(labels: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(labels.T)
    c = np.nan_to_num(c, nan=0.0)
    np.fill_diagonal(c, 1.0)
    return c


def test_generate_dadam_dataset(demo: Path, tmp_path: Path):
    out = tmp_path / "dadam"
    sources = {"nih": demo / "nih", "vindr": demo / "vindr"}
    report = generate_dadam_dataset(demo / "mimic_cxr_lt", sources, out, 4, 3, seed=1, val_fraction=0.2, progress=False)

    original = mimic_cxr_lt_datalist(demo / "mimic_cxr_lt", "train")
    val = patient_val_split([it["patient_id"] for it in original], 0.2, 0)
    train = [it for it in original if it["patient_id"] not in val]
    by_image = {it["image"]: it for it in train}
    aug = mimic_cxr_lt_datalist(out, "train")  # the MIMIC-CXR-LT layout, every JPEG present
    assert [it["dicom_id"] for it in aug] == [f"dadam-cutmix-00000{k}" for k in (1, 2, 3, 4)] + [
        f"dadam-mixup-00000{k}" for k in (1, 2, 3)
    ]
    header = (out / "cxr-lt-2023" / "train.csv").read_text().splitlines()[0].split(",")
    assert header == ["subject_id", "study_id", "dicom_id", "ViewPosition", "split", "path", *MIMIC_CXR_LT_CLASSES]
    prov = pd.read_csv(out / "provenance.csv", dtype=str)
    nf = MIMIC_CXR_LT_CLASSES.index("No Finding")
    for it in aug:
        rows = prov[prov["dicom_id"] == it["dicom_id"]]
        bg = by_image[rows["background_image"].iloc[0]]  # a training image, never a validation patient's
        assert it["patient_id"] == bg["patient_id"] and it["patient_id"] not in val
        assert it["image"].endswith(f"p{bg['patient_id']}/s{bg['study_id']}/{it['dicom_id']}.jpg")
        pasted = {MIMIC_CXR_LT_CLASSES.index(c) for c in rows["patch_class"]}
        positive = {i for i, v in enumerate(it["label"]) if v == 1}
        assert it["label"][nf] == 0
        with Image.open(it["image"]) as im, Image.open(bg["image"]) as bim:
            assert im.mode == "L" and im.size == bim.size
            pixels, bg_pixels = np.asarray(im, dtype=np.float64), np.asarray(bim, dtype=np.float64)
        if it["dicom_id"].startswith("dadam-cutmix"):
            assert bg["label"][nf] == 1 and positive == pasted
            assert rows["tail_class"].iloc[0] in report["tail_classes"]
            assert set(rows["alpha"]) == {"1.0"}
        else:
            assert len(rows) == 1 and set(rows["alpha"]) == {"0.6"}
            background = {i for i, v in enumerate(bg["label"]) if v == 1}
            assert not pasted & background and positive == background | pasted
            assert MIMIC_CXR_LT_CLASSES.index(rows["tail_class"].iloc[0]) in background
        # outside the target boxes the JPEG is the background (up to JPEG error near the box edges)
        mask = np.ones_like(pixels, dtype=bool)
        for box in rows["target_box"]:
            x1, y1, x2, y2 = (int(v) for v in box.split())
            mask[max(y1 - 8, 0) : y2 + 8, max(x1 - 8, 0) : x2 + 8] = False
        assert np.abs(pixels - bg_pixels)[mask].mean() < 3.0

    labels = np.array([it["label"] for it in train])
    aug_labels = np.array([it["label"] for it in aug])
    assert report["n_train_images"] == len(train) and report["n_val_patients"] == len(val)
    assert report["counts_before"] == dict(zip(MIMIC_CXR_LT_CLASSES, labels.sum(0).astype(int).tolist()))
    after = labels.sum(0) + aug_labels.sum(0)
    assert report["counts_after"] == dict(zip(MIMIC_CXR_LT_CLASSES, after.astype(int).tolist()))
    frob = np.sqrt(((_hand_corr(np.concatenate([labels, aug_labels])) - _hand_corr(labels)) ** 2).sum())
    assert report["correlation_frobenius"] == pytest.approx(frob, rel=1e-9) and frob > 0
    assert json.loads((out / "dadam_report.json").read_text()) == report
    assert (out / "dadam_correlation.png").stat().st_size > 0 and (out / "dadam_class_counts.png").stat().st_size > 0

    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_dadam_dataset(demo / "mimic_cxr_lt", sources, out, 1, 0, progress=False)
    again = generate_dadam_dataset(demo / "mimic_cxr_lt", sources, out, 1, 0, overwrite=True, progress=False)
    assert again["n_cutmix"] == 1 and len(mimic_cxr_lt_datalist(out, "train")) == 1


def test_on_the_fly_augmenter_from_datalist(demo: Path, tmp_path: Path):
    train = mimic_cxr_lt_datalist(demo / "mimic_cxr_lt", "train")
    sources = {"nih": demo / "nih", "vindr": demo / "vindr"}
    aug = DiseasedAreaAugmenter.from_datalist(train, sources, bank_file=tmp_path / "bank.npz")
    cached = DiseasedAreaAugmenter.from_datalist(train, {}, bank_file=tmp_path / "bank.npz")  # read, no sources
    assert cached.bank.boxes == aug.bank.boxes and len(aug.bank) > 0
    counts = np.array([it["label"] for it in train]).sum(0)
    disease = [i for i, c in enumerate(MIMIC_CXR_LT_CLASSES) if c != "No Finding"]
    assert aug.tail_classes == [i for i in disease if counts[i] < np.median(counts[disease])]
    t = RandDiseasedAreaAugmentd(("image", "label"), aug, prob=1.0, provenance_key="dadam")
    t.set_random_state(0)
    load = radiograph_loader()
    normal = next(it for it in train if it["label"][MIMIC_CXR_LT_CLASSES.index("No Finding")] == 1)
    out = t(load(dict(normal)))
    assert out["dadam"]["mode"] == "cutmix_normal" and out["image"].shape == load(dict(normal))["image"].shape
    assert sum(out["label"]) == len(out["dadam"]["patches"]) >= 1
