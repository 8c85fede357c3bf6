# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.cxr.cxr_lt: the patient-disjoint train/val split of MIMIC-CXR-LT train.csv, the official
development/test files, and augmented (DADAM) rows appended to train with dataset_id 1 and the leak checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_ext.data.cxr import MIMIC_CXR_LT_CLASSES, patient_val_split
from monai_ext.data.cxr.cxr_lt import cxr_lt_datalist, cxr_lt_val_patients
from monai_ext.data.datalist import DatasetLayoutError

HEADER = ["subject_id", "study_id", "dicom_id", "ViewPosition", "split", "path", *MIMIC_CXR_LT_CLASSES]
NF = MIMIC_CXR_LT_CLASSES.index("No Finding")


def _write_split(root: Path, name: str, rows: list[tuple[str, str, int]]) -> None:
    """rows: (subject, dicom_id, positive class index); one study per row, image files touched."""
    lines = [",".join(HEADER)]
    for k, (subject, dicom, cls) in enumerate(rows):
        path = f"files/p{subject[:2]}/p{subject}/s5{k:07d}/{dicom}.jpg"
        labels = ["1" if c == cls else "0" for c in range(len(MIMIC_CXR_LT_CLASSES))]
        lines.append(",".join([subject, f"5{k:07d}", dicom, "PA", name, path, *labels]))
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).touch()
    (root / "cxr-lt-2023").mkdir(parents=True, exist_ok=True)
    (root / "cxr-lt-2023" / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


# 10 training patients, patient k has k % 3 + 1 images
TRAIN_ROWS = [(f"1{k:07d}", f"d{k}-{j}", (k + j) % 26) for k in range(10) for j in range(k % 3 + 1)]


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "mimic_cxr_lt"
    _write_split(root, "train", TRAIN_ROWS)
    _write_split(root, "development", [("20000001", "dev0", NF), ("20000002", "dev1", 0)])
    _write_split(root, "test", [("30000001", "test0", 3)])
    return root


def test_train_val_partition_train_csv_by_patient(root):
    train = cxr_lt_datalist(root, "train", val_fraction=0.3, seed=4)
    val = cxr_lt_datalist(root, "val", val_fraction=0.3, seed=4)
    subjects = sorted({s for s, _, _ in TRAIN_ROWS})
    want_val = patient_val_split(subjects, 0.3, 4)  # the documented rule, independently
    assert len(want_val) == 3
    assert {d["patient_id"] for d in val} == want_val == cxr_lt_val_patients(root, 0.3, 4)
    assert {d["patient_id"] for d in train} == set(subjects) - want_val
    # every image once, in file order within each part, indices contiguous
    assert sorted(d["dicom_id"] for d in train + val) == sorted(d for _, d, _ in TRAIN_ROWS)
    file_order = [d for _, d, _ in TRAIN_ROWS]
    for part, name in ((train, "train"), (val, "val")):
        ids = [d["dicom_id"] for d in part]
        assert ids == [d for d in file_order if d in ids]
        assert [d["index"] for d in part] == list(range(len(part)))
        assert {d["split"] for d in part} == {name} and {d["dataset_id"] for d in part} == {0}
    # labels come through: d3-0 is class 3
    item = next(d for d in train + val if d["dicom_id"] == "d3-0")
    assert item["label"][3] == 1.0 and sum(item["label"]) == 1.0
    # another seed gives another split of the same patients
    assert {d["patient_id"] for d in cxr_lt_datalist(root, "val", 0.3, seed=5)} == patient_val_split(subjects, 0.3, 5)


def test_development_and_test_are_the_official_files(root):
    dev = cxr_lt_datalist(root, "development", augmented_dir=root / "does-not-matter")
    assert [d["dicom_id"] for d in dev] == ["dev0", "dev1"]
    assert [d["dataset_id"] for d in dev] == [0, 0] and dev[0]["split"] == "development"
    assert [d["dicom_id"] for d in cxr_lt_datalist(root, "test")] == ["test0"]
    sub = cxr_lt_datalist(root, "development", classes=["No Finding", "Atelectasis"])
    assert [d["label"] for d in sub] == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="validation"):
        cxr_lt_datalist(root, "validation")


def test_augmented_rows_appended_to_train_only(root, tmp_path):
    val_patients = cxr_lt_val_patients(root)
    train_subjects = sorted({s for s, _, _ in TRAIN_ROWS} - val_patients)
    aug = tmp_path / "dadam"
    _write_split(
        aug, "train", [(train_subjects[0], "dadam-cutmix-000001", 5), (train_subjects[-1], "dadam-mixup-000001", 7)]
    )
    plain = cxr_lt_datalist(root, "train")
    train = cxr_lt_datalist(root, "train", augmented_dir=aug)
    assert len(train) == len(plain) + 2
    assert [d["dicom_id"] for d in train[: len(plain)]] == [d["dicom_id"] for d in plain]
    assert [d["dicom_id"] for d in train[len(plain) :]] == ["dadam-cutmix-000001", "dadam-mixup-000001"]
    assert [d["dataset_id"] for d in train] == [0] * len(plain) + [1, 1]
    assert [d["index"] for d in train] == list(range(len(train)))
    assert train[-2]["image"].startswith(str(aug.absolute())) and train[-2]["split"] == "train"
    assert train[-1]["label"][7] == 1.0
    # val is unchanged by augmented_dir
    assert cxr_lt_datalist(root, "val", augmented_dir=aug) == cxr_lt_datalist(root, "val")


def test_augmented_leaks_are_refused(root, tmp_path):
    val_patient = sorted(cxr_lt_val_patients(root))[0]
    train_patient = sorted({s for s, _, _ in TRAIN_ROWS} - cxr_lt_val_patients(root))[0]
    leak = tmp_path / "leak"
    _write_split(leak, "train", [(train_patient, "dadam-1", 2), (val_patient, "dadam-2", 2)])
    with pytest.raises(DatasetLayoutError, match=rf"train.csv', line 3, column 'subject_id': subject {val_patient} "
                                                 r"is a validation patient \(leak into validation\)"):  # fmt: skip
        cxr_lt_datalist(root, "train", augmented_dir=leak)
    # the same folder is fine with a split that puts that patient in training
    only = tmp_path / "only"
    _write_split(only, "train", [(val_patient, "dadam-2", 2)])
    other_seed = next(s for s in range(50) if val_patient not in cxr_lt_val_patients(root, 0.2, s))
    assert cxr_lt_datalist(root, "train", seed=other_seed, augmented_dir=only)[-1]["dicom_id"] == "dadam-2"
    unknown = tmp_path / "unknown"
    _write_split(unknown, "train", [("30000001", "dadam-1", 2)])  # a test patient
    with pytest.raises(DatasetLayoutError, match="line 2.*subject 30000001 is no patient of the original train.csv"):
        cxr_lt_datalist(root, "train", augmented_dir=unknown)
    reused = tmp_path / "reused"
    _write_split(reused, "train", [(train_patient, "d0-0", 2)])
    with pytest.raises(DatasetLayoutError, match="'d0-0' is also an original training image"):
        cxr_lt_datalist(root, "train", augmented_dir=reused)
    with pytest.raises(FileNotFoundError, match="MIMIC-CXR-LT"):
        cxr_lt_datalist(root, "train", augmented_dir=tmp_path / "missing")


def test_missing_augmented_image_is_reported(root, tmp_path):
    train_patient = sorted({s for s, _, _ in TRAIN_ROWS} - cxr_lt_val_patients(root))[0]
    aug = tmp_path / "dadam"
    _write_split(aug, "train", [(train_patient, "dadam-1", 2)])
    next(aug.rglob("*.jpg")).unlink()
    with pytest.raises(FileNotFoundError, match="1 of 1 MIMIC-CXR-LT image"):
        cxr_lt_datalist(root, "train", augmented_dir=aug)
    assert (
        len(cxr_lt_datalist(root, "train", augmented_dir=aug, check_files=False))
        == len(cxr_lt_datalist(root, "train")) + 1
    )
