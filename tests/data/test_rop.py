# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for the ROP reader on a tiny dataset in the DATASETS.md 4.5 layout."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.data.rop import ROP_LABEL_COLUMNS, check_meta_splits, majority_label, rop_datalist

# (image_id, infant, exam, eye, A1, A2, A3, label_majority, n_agree, consensus, label_consensus), worked by hand
TABLE = [
    ("img1", "I001", "E1", "OD", "0", "0", "0", "0", 3, 1, "0"),
    ("img2", "I001", "E1", "OS", "2", "1", "", "2", 1, 0, "-1"),  # tie 2 vs 1 -> higher severity
    ("img3", "I002", "E2", "OD", "1", "2", "2", "2", 2, 0, "-1"),
    ("img4", "I002", "E2", "OS", "", "", "", "-1", 0, 0, "-1"),  # not read by anyone
    ("img5", "I003", "E3", "OD", "1", "1", "1", "1", 3, 1, "1"),
    ("img6", "I003", "E3", "OS", "0", "1", "1", "1", 2, 0, "-1"),
    ("img7", "I004", "E4", "OD", "2", "2", "2", "2", 3, 1, "2"),
    ("img8", "I004", "E4", "OS", "2", "2", "", "2", 2, 0, "-1"),  # agreeing but A3 missing -> no consensus
    ("img9", "I005", "E5", "OD", "0", "1", "0", "0", 2, 0, "-1"),
]
SPLITS = [("I001", "train"), ("I002", "train"), ("I003", "meta"), ("I004", "test"), ("I005", "val")]


def _rows():
    rows = []
    for image_id, infant, exam, eye, a1, a2, a3, maj, n_agree, cons, lcons in TABLE:
        rows.append(
            {
                "image_id": image_id,
                "path": f"images/{infant}/{exam}/{eye}_posterior_{image_id[-1]}.png",
                "infant_id": infant,
                "exam_id": exam,
                "eye": eye,
                "gestational_age_wk": "26.5",
                "birth_weight_g": "820",
                "postmenstrual_age_wk": "" if image_id == "img1" else "36",
                "label_A1": a1,
                "label_A2": a2,
                "label_A3": a3,
                "label_majority": maj,
                "label_consensus": lcons,
                "n_agree": n_agree,
                "consensus": cons,
                "stage_A1": "1",
                "stage_A2": "2",
                "stage_A3": "",
                "zone_A1": "II",
                "zone_A2": "II",
                "zone_A3": "",
            }
        )
    return rows


def _write(root: Path, rows=None, splits=SPLITS, annotators=("A1", "A2", "A3"), images=True) -> Path:
    rows = _rows() if rows is None else rows
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    with open(root / "splits.csv", "w", newline="") as f:
        f.write("infant_id,split\n" + "".join(f"{i},{s}\n" for i, s in splits))
    info = {a: {"years_experience": 10 + k} for k, a in enumerate(annotators)}
    (root / "annotators.json").write_text(json.dumps(info))
    if images:
        for r in rows:
            p = root / r["path"]
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(p)
    return root


@pytest.fixture()
def root(tmp_path):
    return _write(tmp_path / "rop")


def _ids(items):
    return [(it["image_id"], it["label"]) for it in items]


def test_header_constant():
    assert len(ROP_LABEL_COLUMNS) == 21 and ROP_LABEL_COLUMNS[:2] == ("image_id", "path")


@pytest.mark.parametrize(
    "labels, tie_break, expected",
    [
        ([0, 0, 0], "higher", (0, 3)),
        ([2, 1, -1], "higher", (2, 1)),
        ([2, 1, -1], "none", (-1, 1)),
        ([0, 1, 2], "higher", (2, 1)),
        ([1, 2, 2], "none", (2, 2)),
        ([-1, -1, -1], "higher", (-1, 0)),
    ],
)
def test_majority_label(labels, tie_break, expected):
    assert majority_label(labels, tie_break) == expected


def test_full_train_item(root):
    items = rop_datalist(root, split="train")
    expected_first = {
        "image": str(root.absolute() / "images/I001/E1/OD_posterior_1.png"),
        "image_id": "img1",
        "infant_id": "I001",
        "patient_id": "I001",
        "exam_id": "E1",
        "eye": "OD",
        "gestational_age_wk": 26.5,
        "birth_weight_g": 820.0,
        "annotators": ["A1", "A2", "A3"],
        "annotator_labels": [0, 0, 0],
        "label_majority": 0,
        "label_consensus": 0,
        "consensus": 1,
        "n_agree": 3,
        "stage": ["1", "2", ""],
        "zone": ["II", "II", ""],
        "split": "train",
        "label": 0,
        "label_source": "majority",
        "index": 0,
    }
    first = dict(items[0])
    assert math.isnan(first.pop("postmenstrual_age_wk"))
    assert first == expected_first
    # img4 was read by nobody: dropped
    assert _ids(items) == [("img1", 0), ("img2", 2), ("img3", 2)]
    assert items[1]["annotator_labels"] == [2, 1, -1]


@pytest.mark.parametrize(
    "split, kwargs, expected",
    [
        ("train", {"tie_break": "none"}, [("img1", 0), ("img3", 2)]),
        ("train", {"label_source": "consensus"}, [("img1", 0)]),
        ("train", {"label_source": "A2"}, [("img1", 0), ("img2", 1), ("img3", 2)]),
        ("train", {"label_source": "A3"}, [("img1", 0), ("img3", 2)]),
        ("meta", {}, [("img5", 1)]),  # consensus only: img6 (0, 1, 1) is left out
        ("test", {}, [("img7", 2)]),  # img8 lacks A3, so no consensus
        ("test", {"label_source": "majority"}, [("img7", 2), ("img8", 2)]),
        ("val", {}, [("img9", 0)]),
    ],
)
def test_label_sources_and_splits(root, split, kwargs, expected):
    items = rop_datalist(root, split=split, **kwargs)
    assert _ids(items) == expected
    assert all(it["split"] == split for it in items)


def test_default_label_source_by_split(root):
    assert {it["label_source"] for it in rop_datalist(root, split="meta")} == {"consensus"}
    assert {it["label_source"] for it in rop_datalist(root, split="val")} == {"majority"}


def test_random_annotator_is_a_reader_and_reproducible(root):
    a = rop_datalist(root, split="train", label_source="random_annotator", seed=5)
    b = rop_datalist(root, split="train", label_source="random_annotator", seed=5)
    assert _ids(a) == _ids(b) and [it["label_source"] for it in a] == [it["label_source"] for it in b]
    assert [it["image_id"] for it in a] == ["img1", "img2", "img3"]  # img4 has no reader
    for it in a:
        k = it["annotators"].index(it["label_source"])
        assert it["annotator_labels"][k] == it["label"] >= 0
    # img2 was not read by A3
    assert a[1]["label_source"] in ("A1", "A2")


def test_tie_written_as_minus_one_is_accepted(tmp_path):
    rows = _rows()
    rows[1]["label_majority"] = "-1"
    root = _write(tmp_path / "rop", rows=rows)
    assert _ids(rop_datalist(root, split="train")) == [("img1", 0), ("img2", 2), ("img3", 2)]


def test_missing_label_error(root):
    with pytest.raises(ValueError, match=r"labels.csv', line 3: no A3 label for image 'img2'"):
        rop_datalist(root, split="train", label_source="A3", missing_label="error")


@pytest.mark.parametrize(
    "row, column, value, match",
    [
        (2, "label_majority", "1", r"line 4, column 'label_majority': 1 is not the majority of .*\[1, 2, 2\] .*2\)"),
        (0, "label_majority", "-1", r"line 2, column 'label_majority'"),
        (2, "n_agree", "3", r"line 4, column 'n_agree': expected 2"),
        (7, "consensus", "1", r"line 9, column 'consensus': expected 0"),
        (4, "label_consensus", "-1", r"line 6, column 'label_consensus': expected 1"),
        (0, "label_A2", "3", r"line 2, column 'label_A2': expected a class in \[0, 3\)"),
        (0, "label_A2", "x", r"line 2, column 'label_A2': expected an integer"),
        (0, "path", "images/I002/E1/OD_posterior_1.png", r"line 2, column 'path': expected 'images/I001/E1/"),
        (0, "eye", "OU", r"line 2, column 'eye'"),
        (0, "infant_id", "I999", r"line 2, column 'infant_id': infant 'I999' is not listed"),
    ],
)
def test_inconsistent_rows_name_line_and_column(tmp_path, row, column, value, match):
    rows = _rows()
    rows[row][column] = value
    if column == "infant_id":
        rows[row]["path"] = "images/I999/E1/OD_posterior_1.png"
    root = _write(tmp_path / "rop", rows=rows, images=False)
    with pytest.raises(DatasetLayoutError, match=match):
        rop_datalist(root, split="train", check_files=False)


def test_binary_variant(tmp_path):
    rows = _rows()
    rows = [r for r in rows if r["image_id"] in ("img1", "img9")]
    root = _write(tmp_path / "rop", rows=rows)
    assert _ids(rop_datalist(root, split="val", num_classes=2)) == [("img9", 0)]
    rows[0]["label_A1"], rows[0]["label_majority"] = "2", "0"
    root = _write(tmp_path / "rop2", rows=rows)
    with pytest.raises(DatasetLayoutError, match=r"expected a class in \[0, 2\)"):
        rop_datalist(root, split="val", num_classes=2)


@pytest.mark.parametrize(
    "splits, match",
    [
        (SPLITS + [("I001", "test")], r"splits.csv', line 7, column 'split': infant 'I001' is already in split 'train"),
        ([("I001", "training")] + SPLITS[1:], r"splits.csv', line 2, column 'split': expected one of"),
    ],
)
def test_bad_splits_file(tmp_path, splits, match):
    root = _write(tmp_path / "rop", splits=splits, images=False)
    with pytest.raises(DatasetLayoutError, match=match):
        rop_datalist(root, check_files=False)


def test_layout_files(tmp_path):
    root = _write(tmp_path / "rop", annotators=("A1", "A2"), images=False)
    with pytest.raises(DatasetLayoutError, match=r"annotators.json' must be an object with an entry for each of"):
        rop_datalist(root, check_files=False)
    (root / "annotators.json").unlink()
    with pytest.raises(FileNotFoundError, match="annotators.json"):
        rop_datalist(root, check_files=False)
    rows = [{k: v for k, v in r.items() if k != "n_agree"} for r in _rows()]
    root = _write(tmp_path / "rop2", rows=rows, images=False)
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) \['n_agree'\]"):
        rop_datalist(root, check_files=False)


def test_check_files(tmp_path):
    root = _write(tmp_path / "rop", images=False)
    with pytest.raises(FileNotFoundError, match=r"3 ROP image\(s\) are missing.*OD_posterior_1.png"):
        rop_datalist(root, split="train")
    assert len(rop_datalist(root, split="train", check_files=False)) == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "all"}, "all"),
        ({"label_source": "A4"}, "A4"),
        ({"tie_break": "lower"}, "lower"),
        ({"missing_label": "keep"}, "keep"),
        ({"num_classes": 1}, "num_classes must be at least 2"),
    ],
)
def test_bad_options(root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        rop_datalist(root, **kwargs)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"image_id": "img1"}, r"labels.csv', lines 2 and 11: image \(column 'image_id'\) 'img1' is listed twice"),
        (
            {"image_id": "img10", "path": "images/I001/E1/./od_posterior_1.png"},
            r"lines 2 and 11: image \(column 'path'\)",
        ),
    ],
)
def test_image_listed_twice(tmp_path, change, match):
    rows = _rows()
    rows.append({**rows[0], **change})
    root = _write(tmp_path / "rop", rows=rows, images=False)
    with pytest.raises(DatasetLayoutError, match=match):
        rop_datalist(root, check_files=False)


def test_infant_listed_twice_in_splits(tmp_path):
    root = _write(tmp_path / "rop", splits=SPLITS + [("I001", "train")], images=False)
    with pytest.raises(DatasetLayoutError, match=r"splits.csv', lines 2 and 7: infant \(column 'infant_id'\) 'I001'"):
        rop_datalist(root, check_files=False)


@pytest.mark.parametrize("value", ["5", "-2", "1.5", "pre-plus", "nan", "NaN"])
def test_unknown_annotator_label_names_file_line_and_column(tmp_path, value):
    """A reading that is not a class (or a NaN) is refused with the file, line and column: no label can be NaN."""
    rows = _rows()
    rows[2]["label_A3"] = value  # img3, data row 2 -> line 4
    root = _write(tmp_path / "rop", rows=rows, images=False)
    csv_path = str((root / "labels.csv").absolute())
    with pytest.raises(DatasetLayoutError) as err:
        rop_datalist(root, check_files=False)
    assert str(err.value).startswith(f"'{csv_path}', line 4, column 'label_A3': expected ")
    assert repr(value) in str(err.value) or "found " + value in str(err.value)


def test_labels_are_python_ints(root):
    for split in ("train", "val", "meta", "test"):
        for it in rop_datalist(root, split=split):
            assert type(it["label"]) is int and 0 <= it["label"] < 3
            assert all(type(v) is int for v in it["annotator_labels"])


def test_check_meta_splits_on_the_reader_lists(root):
    """The meta split of the hand table holds only img5 (class 1): classes 0 and 2 are named with the counts."""
    train, meta, test = (rop_datalist(root, split=s) for s in ("train", "meta", "test"))
    assert [it["image_id"] for it in meta] == ["img5"]
    with pytest.raises(ValueError) as err:
        check_meta_splits(train, meta, test, dataset_dir=root)
    msg = str(err.value)
    assert "no image of class(es) 0 (normal), 2 (plus)" in msg
    assert "meta images per class: 0 (normal): 0, 1 (pre-plus): 1, 2 (plus): 0" in msg
    assert "must hold every class" in msg and str(root) in msg
