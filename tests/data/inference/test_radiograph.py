# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.radiograph: which files are radiograph cases (folder / list / .txt), the errors
on bad inputs, and the header and decode checks on a real DICOM, PNG and JPEG plus a corrupt DICOM and a truncated
PNG."""

from __future__ import annotations

import pytest

from monai_ext.data.inference import check_readable, inference_datalist


def test_folder_datalist_sorted_with_unique_ids(input_dir, sha8):
    datalist = inference_datalist(input_dir, "radiograph")
    # sorted by relative POSIX path (upper case sorts first); ignored: notes.txt, DICOMDIR, hidden files and folders
    assert datalist == [
        {"image": str(input_dir / "dicom/IM0001"), "case_id": "dicom__IM0001"},
        {"image": str(input_dir / "dicom/RG1_UNCI.dcm"), "case_id": "dicom__RG1_UNCI"},
        {"image": str(input_dir / "png/A.jpg"), "case_id": "png__A-" + sha8("png/A.jpg")},
        {"image": str(input_dir / "png/a.png"), "case_id": "png__a-" + sha8("png/a.png")},
        {"image": str(input_dir / "png/broken.png"), "case_id": "png__broken"},
    ]
    assert inference_datalist(input_dir, "radiograph", image_key="img", case_key="id")[0] == {
        "img": str(input_dir / "dicom/IM0001"),
        "id": "dicom__IM0001",
    }


def test_list_and_text_file_inputs(input_dir, tmp_path):
    files = [input_dir / "png/broken.png", input_dir / "dicom/RG1_UNCI.dcm"]
    # a list keeps its order; ids are relative to the deepest common folder (input_dir)
    assert inference_datalist(files, "radiograph") == [
        {"image": str(files[0]), "case_id": "png__broken"},
        {"image": str(files[1]), "case_id": "dicom__RG1_UNCI"},
    ]
    assert inference_datalist(str(files[1]), "radiograph") == [{"image": str(files[1]), "case_id": "RG1_UNCI"}]
    listing = input_dir / "list.txt"
    listing.write_text(f"# cases of today\n\npng/a.png\n{input_dir / 'dicom/IM0001'}\n")
    assert inference_datalist(listing, "radiograph") == [
        {"image": str(input_dir / "png/a.png"), "case_id": "png__a"},
        {"image": str(input_dir / "dicom/IM0001"), "case_id": "dicom__IM0001"},
    ]


def test_input_errors(input_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="inference input not found: '.*nowhere'"):
        inference_datalist(tmp_path / "nowhere", "radiograph")
    with pytest.raises(FileNotFoundError, match=r"1 input path\(s\) .* do not exist: \['.*missing.png'\]"):
        inference_datalist([input_dir / "png/a.png", input_dir / "missing.png"], "radiograph")
    listing = tmp_path / "cases.txt"
    listing.write_text("png/gone.png\n")
    with pytest.raises(FileNotFoundError, match="gone.png"):
        inference_datalist(listing, "radiograph")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no DICOM/PNG/JPEG image found under '.*empty'"):
        inference_datalist(tmp_path / "empty", "radiograph")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.md").write_text("x")
    with pytest.raises(ValueError, match="no DICOM/PNG/JPEG image found"):
        inference_datalist(tmp_path / "docs", "radiograph")
    with pytest.raises(ValueError, match="empty list"):
        inference_datalist([], "radiograph")
    listing.write_text("# nothing today\n\n")
    with pytest.raises(ValueError, match="names no image"):
        inference_datalist(listing, "radiograph")
    with pytest.raises(ValueError, match=r"neither DICOM .* \['.*notes.txt'\]"):
        inference_datalist([input_dir / "notes.txt"], "radiograph")
    with pytest.raises(ValueError, match="lists folder"):
        inference_datalist([input_dir / "png"], "radiograph")
    with pytest.raises(ValueError, match="'png/a.png' is listed twice"):
        inference_datalist([input_dir / "png/a.png", input_dir / "dicom/IM0001", input_dir / "png/a.png"], "radiograph")


def test_check_readable_header_and_decode(input_dir):
    datalist = inference_datalist(input_dir, "radiograph")
    ids = [d["case_id"] for d in datalist]
    good, bad = check_readable(datalist, "radiograph", level="header")
    # the corrupt DICOM parses as a garbage "header" without pixel data; the truncated PNG fails PIL's verify
    assert [d["case_id"] for d in bad] == ["dicom__IM0001", "png__broken"]
    assert "IM0001' has no pixel data" in bad[0]["error"]
    assert bad[1]["error"].startswith("OSError: ")
    good, bad = check_readable(datalist, "radiograph", reader="PydicomReader", level="decode")
    assert [d["case_id"] for d in good] == [ids[1], ids[2], ids[3]]
    assert [d["case_id"] for d in bad] == ["dicom__IM0001", "png__broken"]
    assert "IM0001' has no pixel data" in bad[0]["error"]  # the header check runs first
    assert bad[1]["error"].startswith("OSError: ") and "truncated" in bad[1]["error"].lower()
    assert "error" not in datalist[0]  # items are copied, not changed
    threaded = check_readable(datalist, "radiograph", reader="PydicomReader", num_workers=2)
    assert threaded == (good, bad)
    with pytest.raises(ValueError, match="pixels"):
        check_readable(datalist, "radiograph", level="pixels")
