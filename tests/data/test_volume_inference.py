# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.volume_inference: finding NIfTI files and DICOM series folders, case ids, folders of
several series or of one slice, pending cases, the read check and skipped.csv."""

from __future__ import annotations

import csv
import hashlib
import os

import nibabel as nib
import numpy as np
import pytest

from monai_ext.data.volume_inference import (
    check_volumes,
    mask_path,
    pending_volume_cases,
    prepare_volume_inference_datalist,
    volume_inference_datalist,
)
from monai_ext.demo.dicom_series import write_ct_dicom_series

SPACING = (0.8, 0.8, 2.0)


def _sha8(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _nifti(path, shape=(6, 5, 3)):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full(shape, -500, np.int16), np.diag([-0.8, -0.8, 2.0, 1.0])), str(path))
    return path


def _series(folder, n_slices=3, seed="s"):
    return write_ct_dicom_series(np.full((6, 5, n_slices), -500.0), SPACING, folder, uid_seed=seed)


@pytest.fixture
def tree(tmp_path):
    """in/: a.nii.gz, sub/B.nii, p1/ct/ (series + notes.txt), multi/ (two series), single/ (one slice), hidden files."""
    root = tmp_path / "in"
    _nifti(root / "a.nii.gz")
    _nifti(root / "sub" / "B.nii")
    _series(root / "p1" / "ct")
    (root / "p1" / "ct" / "notes.txt").write_text("not an image")
    _series(root / "multi", seed="one")
    for k, path in enumerate(_series(root / "tmp_two", n_slices=2, seed="two")):
        path.rename(root / "multi" / f"X{k}.dcm")
    (root / "tmp_two").rmdir()
    _series(root / "single", n_slices=1)
    _nifti(root / ".hidden.nii.gz")
    _nifti(root / ".cache" / "c.nii.gz")
    return root


def test_folder_cases_ids_and_discovery_errors(tree):
    items = volume_inference_datalist(tree)
    assert [(i["case_id"], i["image"]) for i in items] == [
        ("a", str(tree / "a.nii.gz")),
        ("multi", str(tree / "multi")),
        ("p1__ct", str(tree / "p1" / "ct")),
        ("single", str(tree / "single")),
        ("sub__B", str(tree / "sub" / "B.nii")),
    ]
    errors = {i["case_id"]: i.get("error") for i in items}
    assert errors["a"] is None and errors["p1__ct"] is None and errors["sub__B"] is None
    assert "holds 2 DICOM series" in errors["multi"] and "put each series in its own folder" in errors["multi"]
    assert "(3 files, e.g. IM0001.dcm)" in errors["multi"] and "(2 files, e.g. X0.dcm)" in errors["multi"]
    assert "single DICOM slice ('IM0001.dcm')" in errors["single"]


def test_colliding_ids_get_hash_of_relative_path(tmp_path):
    _nifti(tmp_path / "ct1.nii.gz")
    _series(tmp_path / "ct1")
    items = volume_inference_datalist(tmp_path)
    assert [i["case_id"] for i in items] == [f"ct1-{_sha8('ct1')}", f"ct1-{_sha8('ct1.nii.gz')}"]


def test_input_folder_that_is_a_series_takes_its_name(tmp_path):
    _series(tmp_path / "CT 0001")
    expected = [{"image": str(tmp_path / "CT 0001"), "case_id": "CT_0001"}]
    assert volume_inference_datalist(tmp_path / "CT 0001") == expected


def test_txt_list_and_sequence(tmp_path):
    _nifti(tmp_path / "data" / "x.nii.gz")
    _series(tmp_path / "data" / "p9" / "s1")
    (tmp_path / "list.txt").write_text("# volumes\ndata/p9/s1\n\ndata/x.nii.gz\n")
    items = volume_inference_datalist(tmp_path / "list.txt")
    assert [i["case_id"] for i in items] == ["p9__s1", "x"]  # file order, relative to the common folder data/
    one = volume_inference_datalist([tmp_path / "data" / "p9" / "s1"])
    assert one == [{"image": str(tmp_path / "data" / "p9" / "s1"), "case_id": "s1"}]


@pytest.mark.parametrize(
    "entry, error, match",
    [
        ("missing.nii.gz", FileNotFoundError, "does not exist"),
        ("d/IM0001.dcm", ValueError, "list its series folder"),
        ("empty", ValueError, "holds no DICOM file directly"),
        ("notes.txt", ValueError, "is not a NIfTI file"),
    ],
)
def test_bad_listed_inputs(tmp_path, entry, error, match):
    _series(tmp_path / "d")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(error, match=match):
        volume_inference_datalist([tmp_path / entry])


def test_nothing_found(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match="no NIfTI file"):
        volume_inference_datalist(tmp_path)
    with pytest.raises(FileNotFoundError, match="inference input not found"):
        volume_inference_datalist(tmp_path / "nope")


def test_mask_path_and_pending(tmp_path):
    assert mask_path(tmp_path, "p1__ct") == tmp_path / "p1__ct_seg.nii.gz"
    with pytest.raises(ValueError, match="not a safe file name"):
        mask_path(tmp_path, "../evil")
    items = [{"case_id": "a", "image": "a"}, {"case_id": "b", "image": "b"}]
    (tmp_path / "a_seg.nii.gz").write_bytes(b"done")
    (tmp_path / "b.json").write_text("{}")  # another kind of result does not count
    assert pending_volume_cases(items, tmp_path) == [items[1]]
    assert pending_volume_cases(items, tmp_path, overwrite=True) == items
    with pytest.raises(KeyError, match="have no 'case_id'"):
        pending_volume_cases([{"image": "a"}], tmp_path)


def test_check_volumes_catches_corrupt_2d_and_truncated(tmp_path):
    good = _nifti(tmp_path / "good.nii.gz")
    flat = _nifti(tmp_path / "flat.nii.gz", shape=(6, 5))
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"not a nifti" * 10)
    truncated = tmp_path / "trunc.nii"
    _nifti(truncated, shape=(40, 40, 10))
    truncated.write_bytes(truncated.read_bytes()[:2000])  # header intact, voxels cut
    items = [{"image": str(p), "case_id": p.name.split(".")[0]} for p in (good, flat, corrupt, truncated)]
    items.append({"image": "/x", "case_id": "multi", "error": "the folder holds 2 DICOM series"})
    ok, bad = check_volumes(items)
    assert ok == [items[0]]
    errors = {b["case_id"]: b["error"] for b in bad}
    assert list(errors) == ["flat", "corrupt", "trunc", "multi"]
    assert "not a one-channel 3D volume" in errors["flat"] and "(1, 6, 5)" in errors["flat"]
    assert errors["corrupt"].startswith("ImageFileError")
    assert errors["multi"] == "the folder holds 2 DICOM series"
    # the header check passes the truncated file and the 2D image, which only decoding catches
    ok_header, bad_header = check_volumes(items, level="header")
    assert [i["case_id"] for i in ok_header] == ["good", "flat", "trunc"]
    assert [b["case_id"] for b in bad_header] == ["corrupt", "multi"]
    with pytest.raises(ValueError, match="decode"):
        check_volumes(items, level="pixels")


def test_prepare_writes_skipped_and_keeps_it_when_unchanged(tree, tmp_path):
    out = tmp_path / "out"
    ready = prepare_volume_inference_datalist(tree, out)
    assert [i["case_id"] for i in ready] == ["a", "p1__ct", "sub__B"]
    with open(out / "skipped.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case_id", "image", "error"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("multi", str(tree / "multi")), ("single", str(tree / "single"))]
    os.utime(out / "skipped.csv", (1_000_000, 1_000_000))
    (out / "a_seg.nii.gz").write_bytes(b"done")
    assert [i["case_id"] for i in prepare_volume_inference_datalist(tree, out)] == ["p1__ct", "sub__B"]
    assert os.stat(out / "skipped.csv").st_mtime == 1_000_000  # same rows: file untouched
