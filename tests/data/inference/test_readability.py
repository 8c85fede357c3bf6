# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.readability: the shared read-check loop for every input kind and
skipped.csv."""

from __future__ import annotations

import csv
import os

import pytest

from monai_ext.data.inference import check_readable, split_readable, write_skipped


@pytest.mark.parametrize("level", ["header", "decode"])
@pytest.mark.parametrize("kind", ["radiograph", "volume"])
def test_check_readable_keeps_order_and_passes_marked_items_unread(tmp_path, case_file, kind_suffix, kind, level):
    good = case_file(kind, tmp_path / "good")
    broken = tmp_path / f"broken{kind_suffix[kind]}"
    broken.write_bytes(b"not an image at all" * 8)
    items = [
        {"image": str(broken), "case_id": "broken"},
        {"image": str(tmp_path / "never_read"), "case_id": "marked", "error": "found unreadable"},
        {"image": str(good), "case_id": "good"},
    ]
    readable, unreadable = check_readable(items, kind, level=level, num_workers=2)
    assert readable == [items[2]]
    assert [u["case_id"] for u in unreadable] == ["broken", "marked"]
    assert unreadable[0]["error"] and unreadable[1] == items[1]  # a marked item keeps its error, its path is not read
    with pytest.raises(ValueError, match="did you mean 'volume'"):
        check_readable(items, "volum", level=level)


def test_split_readable_argument_checks():
    assert split_readable([{"image": "a"}, {"image": "b"}], lambda p: None if p == "a" else "no") == (
        [{"image": "a"}],
        [{"image": "b", "error": "no"}],
    )
    with pytest.raises(ValueError, match="num_workers must be >= 0, got -1"):
        split_readable([], lambda p: None, num_workers=-1)
    with pytest.raises(KeyError, match=r"datalist item\(s\) \[1\] have no 'img'"):
        split_readable([{"img": "a"}, {"image": "b"}], lambda p: None, image_key="img")


def test_write_skipped_quotes_messages(tmp_path):
    message = 'ValueError: bad "tag", (0028,0004)'
    path = write_skipped([{"case_id": "c", "image": "/d/c.dcm", "error": message}], tmp_path)
    with open(path, newline="") as f:
        assert list(csv.reader(f)) == [["case_id", "image", "error"], ["c", "/d/c.dcm", message]]


def test_write_skipped_leaves_an_unchanged_file_untouched(tmp_path):
    skipped = [{"case_id": "c", "image": "/d/c.dcm", "error": "ValueError: bad"}]
    path = write_skipped(skipped, tmp_path)
    os.utime(path, (1_000_000, 1_000_000))
    assert write_skipped(skipped, tmp_path) == path
    assert os.stat(path).st_mtime == 1_000_000  # same rows: file untouched
    write_skipped([], tmp_path)
    assert path.read_text().splitlines() == ["case_id,image,error"]  # changed rows: replaced
    assert os.stat(path).st_mtime != 1_000_000
