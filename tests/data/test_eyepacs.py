# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for the EyePACS (Kaggle diabetic retinopathy) reader on small layouts written here and by the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from monai_ext.data import eyepacs_datalist
from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.data.eyepacs import EYEPACS_BINARY_CLASSES, EYEPACS_LEVELS, eyepacs_patient_splits
from monai_ext.demo.eyepacs import write_eyepacs_demo

# Kaggle order: numeric patient ids, left before right; 100 sorts after 15 numerically (not as text)
TABLE = [("10_left", 0), ("10_right", 0), ("15_left", 1), ("15_right", 2), ("100_left", 4), ("100_right", 3)]


def _write(root: Path, table=TABLE, images=True, header="image,level") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "trainLabels.csv").write_text(header + "\n" + "".join(f"{i},{v}\n" for i, v in table))
    if images:
        (root / "train").mkdir(exist_ok=True)
        for image_id, _ in table:
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "train" / f"{image_id}.jpeg")
    return root


@pytest.fixture()
def root(tmp_path):
    return _write(tmp_path / "eyepacs")


def test_all_items_hand_worked(root):
    items = eyepacs_datalist(root, split="all", val_fraction=0.0)
    assert [(it["image_id"], it["patient_id"], it["eye"], it["level"], it["label"]) for it in items] == [
        ("10_left", "10", "left", 0, 0),
        ("10_right", "10", "right", 0, 0),
        ("15_left", "15", "left", 1, 1),
        ("15_right", "15", "right", 2, 1),
        ("100_left", "100", "left", 4, 1),
        ("100_right", "100", "right", 3, 1),
    ]
    assert items[2] == {
        "image": str(root.absolute() / "train" / "15_left.jpeg"),
        "label": 1,
        "level": 1,
        "image_id": "15_left",
        "patient_id": "15",
        "eye": "left",
        "split": "train",
        "index": 2,
    }
    assert [it["index"] for it in items] == list(range(6))
    assert all(Path(it["image"]).is_file() for it in items)


def test_grades_when_not_binary(root):
    items = eyepacs_datalist(root, split="all", binary=False, val_fraction=0.0)
    assert [it["label"] for it in items] == [0, 0, 1, 2, 4, 3] == [it["level"] for it in items]
    assert EYEPACS_BINARY_CLASSES == ("no DR", "DR") and EYEPACS_LEVELS[0] == "no DR" and len(EYEPACS_LEVELS) == 5


def test_train_val_split_is_patient_level(root):
    train = eyepacs_datalist(root, split="train", val_fraction=0.34, seed=1)
    val = eyepacs_datalist(root, split="val", val_fraction=0.34, seed=1)
    # round(0.34 * 3 patients) = 1 val patient, both eyes
    assert len(val) == 2 and len(train) == 4
    assert val[0]["patient_id"] == val[1]["patient_id"] and {it["eye"] for it in val} == {"left", "right"}
    assert not {it["patient_id"] for it in train} & {it["patient_id"] for it in val}
    assert {it["split"] for it in train} == {"train"} and {it["split"] for it in val} == {"val"}
    assert [it["index"] for it in val] == [0, 1]


def _split_of(patients, fraction, seed):
    return eyepacs_patient_splits(patients, val_fraction=fraction, seed=seed)


def test_patient_split_seeded_and_order_free():
    patients = [str(p) for p in range(10, 410, 2)]  # 200 patients
    a = _split_of(patients, 0.1, 0)
    assert sum(v == "val" for v in a.values()) == 20 and set(a) == set(patients)
    assert _split_of(list(reversed(patients)) + patients[:5], 0.1, 0) == a  # row order and repeats do not matter
    b = _split_of(patients, 0.1, 1)
    assert {p for p, s in a.items() if s == "val"} != {p for p, s in b.items() if s == "val"}
    # at least one and at most n - 1 val patients when val is asked for
    assert list(_split_of(["1", "2"], 0.01, 0).values()).count("val") == 1
    assert list(_split_of(["1", "2"], 0.99, 0).values()).count("val") == 1
    assert set(_split_of(["1", "2", "3"], 0.0, 5).values()) == {"train"}
    with pytest.raises(ValueError, match=r"val_fraction must lie in \[0, 1\), got 1.0"):
        _split_of(patients, 1.0, 0)


def test_split_does_not_depend_on_csv_row_order(tmp_path, root):
    shuffled = _write(tmp_path / "shuffled", table=[TABLE[k] for k in (5, 2, 0, 4, 1, 3)])
    for split in ("train", "val"):
        a = eyepacs_datalist(root, split=split, val_fraction=0.34, seed=3)
        b = eyepacs_datalist(shuffled, split=split, val_fraction=0.34, seed=3)
        assert [it["image_id"] for it in a] == [it["image_id"] for it in b]


@pytest.mark.parametrize(
    "row, value, match",
    [
        (3, "5", r"line 5, column 'level': expected an integer grade 0-4, found '5'"),
        (0, "-1", r"line 2, column 'level': expected an integer grade 0-4, found '-1'"),
        (1, "1.5", r"line 3, column 'level': expected an integer grade 0-4, found '1.5'"),
        (2, "mild", r"line 4, column 'level': expected an integer grade 0-4, found 'mild'"),
        (2, "nan", r"line 4, column 'level': expected an integer grade 0-4, found 'nan'"),
        (4, "", r"line 6, column 'level': empty value"),
    ],
)
def test_bad_level_names_file_line_and_column(tmp_path, row, value, match):
    table = list(TABLE)
    table[row] = (table[row][0], value)
    root = _write(tmp_path / "eyepacs", table=table, images=False)
    with pytest.raises(DatasetLayoutError, match=match) as err:
        eyepacs_datalist(root, check_files=False)
    assert str(err.value).startswith(f"'{root.absolute() / 'trainLabels.csv'}', line ")


def test_levels_as_written_by_pandas_are_accepted(tmp_path):
    root = _write(tmp_path / "eyepacs", table=[("1_left", "2.0"), ("1_right", "0")])
    assert [it["level"] for it in eyepacs_datalist(root, split="all")] == [2, 0]


def test_bad_image_id(tmp_path):
    root = _write(tmp_path / "eyepacs", table=TABLE + [("20_center", 0)], images=False)
    with pytest.raises(DatasetLayoutError, match=r"line 8, column 'image': expected '<patient>_left' .*'20_center'"):
        eyepacs_datalist(root, check_files=False)


def test_duplicate_image(tmp_path):
    root = _write(tmp_path / "eyepacs", table=TABLE + [("15_left", 2)], images=False)
    with pytest.raises(
        DatasetLayoutError, match=r"trainLabels.csv', lines 4 and 8: image \(column 'image'\) '15_left'"
    ):
        eyepacs_datalist(root, check_files=False)


def test_missing_csv_and_column(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"EyePACS trainLabels.csv not found: .*image,level"):
        eyepacs_datalist(tmp_path / "nowhere")
    root = _write(tmp_path / "eyepacs", header="image,grade", images=False)
    with pytest.raises(
        DatasetLayoutError, match=r"missing column\(s\) \['level'\]; found columns \['image', 'grade'\]"
    ):
        eyepacs_datalist(root)
    root = _write(tmp_path / "empty", table=[], images=False)
    with pytest.raises(DatasetLayoutError, match="lists no images"):
        eyepacs_datalist(root)


def test_missing_images(tmp_path, root):
    (root / "train" / "15_right.jpeg").unlink()
    (root / "train" / "100_left.jpeg").unlink()
    with pytest.raises(FileNotFoundError, match=r"2 of 6 EyePACS image\(s\) .* missing, e.g. \['.*15_right.jpeg', "):
        eyepacs_datalist(root, split="all")
    assert len(eyepacs_datalist(root, split="all", check_files=False)) == 6
    bare = _write(tmp_path / "bare", images=False)
    with pytest.raises(FileNotFoundError, match=r"EyePACS image directory not found: .*train'"):
        eyepacs_datalist(bare, split="all")


def test_other_image_folder_and_extension(tmp_path):
    root = _write(tmp_path / "eyepacs", images=False)
    (root / "resized").mkdir()
    for image_id, _ in TABLE:
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "resized" / f"{image_id}.png")
    items = eyepacs_datalist(root, split="all", image_dir="resized", extension=".png")
    assert items[0]["image"] == str(root.absolute() / "resized" / "10_left.png")


def test_bad_split_option(root):
    with pytest.raises(ValueError, match="test"):
        eyepacs_datalist(root, split="test")


def test_reader_on_the_demo(tmp_path):
    summary = write_eyepacs_demo(tmp_path / "eyepacs", size=0.2, seed=4, image_size=48)
    labels = pd.read_csv(tmp_path / "eyepacs" / "trainLabels.csv")
    everything = eyepacs_datalist(tmp_path / "eyepacs", split="all")
    train = eyepacs_datalist(tmp_path / "eyepacs", split="train")
    val = eyepacs_datalist(tmp_path / "eyepacs", split="val")
    assert len(everything) == summary["images"] == len(labels) == len(train) + len(val)
    assert len({it["patient_id"] for it in val}) == round(0.1 * summary["patients"])
    assert not {it["patient_id"] for it in train} & {it["patient_id"] for it in val}
    by_id = dict(zip(labels["image"], labels["level"]))
    assert all(it["level"] == by_id[it["image_id"]] and it["label"] == int(by_id[it["image_id"]] > 0) for it in train)
