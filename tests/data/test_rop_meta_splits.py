# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of :func:`monai_ext.data.rop.check_meta_splits` on hand-made datalists."""

from __future__ import annotations

import numpy as np
import pytest

from monai_ext.data import check_meta_splits


def _items(prefix: str, labels, start: int = 0) -> list[dict]:
    return [
        {"image": f"/data/rop/images/{prefix}{k}.png", "image_id": f"{prefix}{k}", "label": int(v), "index": k}
        for k, v in enumerate(labels, start=start)
    ]


def test_valid_lists_return_counts_per_class():
    train, meta, test = _items("t", [0, 0, 1, 2, 2, 2]), _items("m", [2, 1, 0, 0]), _items("x", [1, 1])
    assert check_meta_splits(train, meta, test) == {"train": [2, 1, 3], "meta": [2, 1, 1], "test": [0, 2, 0]}
    assert check_meta_splits(train[:3], _items("m", [1, 0]), num_classes=2) == {"train": [2, 1], "meta": [1, 1]}
    # numpy integers are labels too
    meta_np = [{**it, "label": np.int64(it["label"])} for it in meta]
    assert check_meta_splits(train, meta_np)["meta"] == [2, 1, 1]


def test_empty_meta_set():
    with pytest.raises(ValueError, match=r"ROP set '/data/rop': the meta set is empty.*every class"):
        check_meta_splits(_items("t", [0, 1, 2]), [], dataset_dir="/data/rop")


@pytest.mark.parametrize(
    "labels, num_classes, absent, counts",
    [
        ([0, 0, 1], 3, "2 (plus)", "0 (normal): 2, 1 (pre-plus): 1, 2 (plus): 0"),
        ([2, 2], 3, "0 (normal), 1 (pre-plus)", "0 (normal): 0, 1 (pre-plus): 0, 2 (plus): 2"),
        ([1], 2, "0 (no ROP)", "0 (no ROP): 0, 1 (ROP): 1"),
        ([0, 1, 2], 4, "3", "0: 1, 1: 1, 2: 1, 3: 0"),
    ],
)
def test_meta_set_missing_a_class(labels, num_classes, absent, counts):
    with pytest.raises(ValueError) as err:
        check_meta_splits(_items("t", [0, 1]), _items("m", labels), num_classes=num_classes)
    msg = str(err.value)
    assert f"the meta set has no image of class(es) {absent} (meta images per class: {counts})" in msg
    assert "The meta set must hold every class" in msg


def test_meta_image_in_training_list_by_path():
    train, meta = _items("t", [0, 1, 2]), _items("m", [0, 1, 2])
    # meta item 2 is training item 1 under another id and a different path spelling
    meta[2] = {**meta[2], "image": "/data/rop/images/./T1.png"}
    with pytest.raises(ValueError) as err:
        check_meta_splits(train, meta)
    msg = str(err.value)
    assert "meta image 'm2' (meta index 2) is also in the train list (train index 1, same image)" in msg
    assert "must not share images" in msg


def test_meta_image_in_training_list_by_id():
    train, meta = _items("t", [0, 1, 2]), _items("m", [0, 1, 2])
    meta[1] = {**meta[1], "image_id": "t0"}
    with pytest.raises(
        ValueError, match=r"meta image 't0' \(meta index 1\) is also in the train list \(train index 0, "
    ):
        check_meta_splits(train, meta)


def test_test_image_in_training_or_meta_list():
    train, meta = _items("t", [0, 1, 2]), _items("m", [0, 1, 2])
    test = _items("x", [0, 1]) + [train[2]]
    test[2] = {**test[2], "index": 2}
    with pytest.raises(ValueError, match=r"test image 't2' \(test index 2\) is also in the train list \(train index 2"):
        check_meta_splits(train, meta, test)
    test = _items("x", [0]) + [{**meta[0], "index": 1}]
    with pytest.raises(ValueError, match=r"test image 'm0' \(test index 1\) is also in the meta list \(meta index 0"):
        check_meta_splits(train, meta, test)


@pytest.mark.parametrize("bad", [3, -1, float("nan"), 1.0, "1"])
def test_labels_outside_the_classes(bad):
    meta = _items("m", [0, 1, 2])
    meta[1] = {**meta[1], "label": bad}
    with pytest.raises(
        ValueError, match=r"meta item 'm1' \(index 1\) has label .*expected an integer class in \[0, 3\)"
    ):
        check_meta_splits(_items("t", [0]), meta)
