# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.volume: finding NIfTI files and DICOM series folders, their case ids, folders of
several series or of one slice, bad listed inputs, and the header and decode checks."""

from __future__ import annotations

import gzip

import pytest

from monai_ext.data.inference import check_readable, inference_datalist


def test_folder_cases_ids_and_discovery_errors(tree):
    items = inference_datalist(tree, "volume")
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


def test_colliding_ids_get_hash_of_relative_path(tmp_path, nifti, series, sha8):
    nifti(tmp_path / "ct1.nii.gz")
    series(tmp_path / "ct1")
    items = inference_datalist(tmp_path, "volume")
    assert [i["case_id"] for i in items] == [f"ct1-{sha8('ct1')}", f"ct1-{sha8('ct1.nii.gz')}"]


def test_input_folder_that_is_a_series_takes_its_name(tmp_path, series):
    series(tmp_path / "CT 0001")
    expected = [{"image": str(tmp_path / "CT 0001"), "case_id": "CT_0001"}]
    assert inference_datalist(tmp_path / "CT 0001", "volume") == expected


def test_txt_list_and_sequence(tmp_path, nifti, series):
    nifti(tmp_path / "data" / "x.nii.gz")
    series(tmp_path / "data" / "p9" / "s1")
    (tmp_path / "list.txt").write_text("# volumes\ndata/p9/s1\n\ndata/x.nii.gz\n")
    items = inference_datalist(tmp_path / "list.txt", "volume")
    assert [i["case_id"] for i in items] == ["p9__s1", "x"]  # file order, relative to the common folder data/
    one = inference_datalist([tmp_path / "data" / "p9" / "s1"], "volume")
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
def test_bad_listed_inputs(tmp_path, series, entry, error, match):
    series(tmp_path / "d")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(error, match=match):
        inference_datalist([tmp_path / entry], "volume")


def test_nothing_found(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match="no NIfTI file"):
        inference_datalist(tmp_path, "volume")
    with pytest.raises(FileNotFoundError, match="inference input not found"):
        inference_datalist(tmp_path / "nope", "volume")


def test_decode_check_catches_corrupt_2d_and_truncated_volumes(tmp_path, nifti):
    good = nifti(tmp_path / "good.nii.gz")
    flat = nifti(tmp_path / "flat.nii.gz", shape=(6, 5))
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"not a nifti" * 10)
    truncated = tmp_path / "trunc.nii"
    nifti(truncated, shape=(40, 40, 10))
    truncated.write_bytes(truncated.read_bytes()[:2000])  # header intact, voxels cut
    items = [{"image": str(p), "case_id": p.name.split(".")[0]} for p in (good, flat, corrupt, truncated)]
    items.append({"image": "/x", "case_id": "multi", "error": "the folder holds 2 DICOM series"})
    ok, bad = check_readable(items, "volume")
    assert ok == [items[0]]
    errors = {b["case_id"]: b["error"] for b in bad}
    assert list(errors) == ["flat", "corrupt", "trunc", "multi"]
    assert "not a one-channel 3D volume" in errors["flat"] and "(1, 6, 5)" in errors["flat"]
    assert errors["corrupt"].startswith("ImageFileError")
    assert errors["multi"] == "the folder holds 2 DICOM series"
    assert "trunc.nii' is shorter than its header says: shape (40, 40, 10) of int16" in errors["trunc"]
    # the header check passes the 2D image, which only decoding catches; an uncompressed .nii is measured
    ok_header, bad_header = check_readable(items, "volume", level="header")
    assert [i["case_id"] for i in ok_header] == ["good", "flat"]
    assert [b["case_id"] for b in bad_header] == ["corrupt", "trunc", "multi"]
    assert bad_header[1]["error"] == errors["trunc"]
    with pytest.raises(ValueError, match="decode"):
        check_readable(items, "volume", level="pixels")


def test_compressed_nifti_shorter_than_its_header_is_skipped_by_the_decode_check(tmp_path, nifti):
    """A .nii.gz cannot be measured without decompressing it: the header check passes it, the decode check names it."""
    full = nifti(tmp_path / "full.nii", shape=(10, 10, 4))
    short = tmp_path / "short.nii.gz"
    short.write_bytes(gzip.compress(full.read_bytes()[:-60]))
    items = [{"image": str(short), "case_id": "short"}]
    assert check_readable(items, "volume", level="header")[1] == []
    [bad] = check_readable(items, "volume", level="decode")[1]
    assert "Expected 800 bytes, got 740 bytes" in bad["error"]
