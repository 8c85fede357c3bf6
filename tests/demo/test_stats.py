# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of the demo statistics shipped as package data (monai_ext.demo.stats): md5s, README, loader errors, and
(where the project's shared data folder sits beside the repository) that the shipped files are verbatim copies."""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path

import pytest

from monai_ext.demo import stats
from monai_ext.demo.stats import STATS_MD5, load_stats

#: the original files: ``<repo root>/../shared/data`` (present in the project's workspace, absent in a plain clone)
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
PACKAGE = resources.files("monai_ext.demo.stats")


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("file_name", sorted(STATS_MD5))
def test_shipped_file_has_its_recorded_md5(file_name):
    # always runs: a missing package file fails here, it is never skipped
    resource = PACKAGE.joinpath(file_name)
    assert resource.is_file(), f"package data {file_name} missing from {PACKAGE}"
    assert _md5(resource.read_bytes()) == STATS_MD5[file_name]
    assert isinstance(load_stats(file_name[: -len(".json")]).get("source"), str)


def test_readme_records_every_file_and_md5():
    readme = PACKAGE.joinpath("README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([\w.]+\.json)` \| `shared/data/\1` \| `([0-9a-f]{32})` \|", readme, re.M))
    assert rows == STATS_MD5


@pytest.mark.parametrize("file_name", sorted(STATS_MD5))
def test_shipped_file_is_a_verbatim_copy_of_the_shared_file(file_name):
    source = SHARED / file_name
    if not source.is_file():
        pytest.skip(f"original statistics not found at {source.resolve()} (the shared data folder beside the repo)")
    assert _md5(source.read_bytes()) == STATS_MD5[file_name]
    assert PACKAGE.joinpath(file_name).read_bytes() == source.read_bytes()


def test_load_stats_returns_a_fresh_dict():
    first = load_stats("nih_bbox_stats")
    first["n_boxes"] = -1
    assert load_stats("nih_bbox_stats")["n_boxes"] == 984


def test_load_stats_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown demo statistics 'label_stats'; choose from \['cxr_label_stats'"):
        load_stats("label_stats")
    monkeypatch.setitem(STATS_MD5, "absent.json", "0" * 32)
    with pytest.raises(FileNotFoundError, match=r"'absent.json' is missing .* reinstall monai-ext"):
        load_stats("absent")
    stats._read_bytes.cache_clear()
    monkeypatch.setitem(STATS_MD5, "nih_bbox_stats.json", "0" * 32)
    try:
        expected = r"'nih_bbox_stats.json' has md5 589b8bb1\w+, expected 0{32}; it was modified"
        with pytest.raises(ValueError, match=expected):
            load_stats("nih_bbox_stats")
    finally:
        stats._read_bytes.cache_clear()
