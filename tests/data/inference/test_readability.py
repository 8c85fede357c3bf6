# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.readability: skipped.csv."""

from __future__ import annotations

import csv
import os

from monai_ext.data.inference import write_skipped


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
