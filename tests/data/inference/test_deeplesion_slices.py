# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.deeplesion_slices: PNG slice folders as cases (gaps, repeats, 8-bit and
mismatched slices reported), the reader's axis order, HU and spacing (checked against the same volume saved as
NIfTI), and the combined ``ct_detection`` kind."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.transforms import LoadImage
from PIL import Image

from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.data.inference import (
    DeepLesionSliceReader,
    case_kind,
    inference_datalist,
    pending_cases,
    prepare_inference_datalist,
)
from monai_ext.data.inference.deeplesion_slices import dl_info_spacings

SIZE = (5, 4)  # PIL (width, height)


def _hu_slices(n: int, seed: int = 0) -> np.ndarray:
    """``n`` slices of ``height x width`` HU values (row-major, as a PNG stores them)."""
    return np.random.default_rng(seed).integers(-1024, 2000, size=(n, SIZE[1], SIZE[0])).astype(np.int32)


def _write_series(folder: Path, numbers, hu: np.ndarray | None = None, width: int = 3) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    hu = _hu_slices(len(numbers)) if hu is None else hu
    for number, plane in zip(numbers, hu):
        Image.fromarray((plane + 32768).astype(np.uint16)).save(folder / f"{number:0{width}d}.png")
    return hu


@pytest.fixture
def slice_tree(tmp_path) -> Path:
    root = tmp_path / "in"
    _write_series(root / "Images_png" / "000001_01_01", [45, 46, 47])
    _write_series(root / "Images_png" / "000002_01_01", [1, 3])  # gap: 2 missing
    _write_series(root / "repeat", [7, 8])
    Image.fromarray(np.zeros(SIZE[::-1], np.uint16) + 32768).save(root / "repeat" / "7.png")  # 7.png and 007.png
    eight = root / "eight_bit"
    _write_series(eight, [1])
    Image.fromarray(np.zeros(SIZE[::-1], np.uint8)).save(eight / "002.png")
    odd = root / "sizes"
    _write_series(odd, [1])
    Image.fromarray(np.zeros((3, 3), np.uint16)).save(odd / "002.png")
    (root / "notes").mkdir()
    Image.fromarray(np.zeros((3, 3), np.uint16)).save(root / "notes" / "overview.png")  # not NNN.png: no case
    return root


def test_slice_folders_are_cases_and_bad_ones_say_why(slice_tree):
    items = inference_datalist(slice_tree, "deeplesion_slices")
    by_id = {i["case_id"]: i for i in items}
    assert sorted(by_id) == [
        "Images_png__000001_01_01",
        "Images_png__000002_01_01",
        "eight_bit",
        "repeat",
        "sizes",
    ]
    assert by_id["Images_png__000001_01_01"]["image"] == str(slice_tree / "Images_png" / "000001_01_01")
    assert "error" not in by_id["Images_png__000001_01_01"]
    assert "missing 1 slice(s) (2)" in by_id["Images_png__000002_01_01"]["error"]
    assert "repeated by 007.png, 7.png" in by_id["repeat"]["error"]
    assert (
        "002.png' is not a 16-bit greyscale PNG" in by_id["eight_bit"]["error"]
        and "mode 'L'" in by_id["eight_bit"]["error"]
    )
    assert "002.png' is 3 x 3 pixels but the folder's first slice is 5 x 4" in by_id["sizes"]["error"]


def test_unreadable_folders_go_to_skipped_csv_and_results_sit_in_a_case_folder(slice_tree, tmp_path):
    out = tmp_path / "out"
    reader = DeepLesionSliceReader(spacing=(0.7, 0.7, 5.0))
    todo = prepare_inference_datalist(slice_tree, out, "deeplesion_slices", reader=reader, distributed=False)
    assert [i["case_id"] for i in todo] == ["Images_png__000001_01_01"]
    with open(out / "skipped.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["case_id"] for r in rows) == ["Images_png__000002_01_01", "eight_bit", "repeat", "sizes"]
    result = case_kind("deeplesion_slices").result_path(out, "Images_png__000001_01_01")
    assert result == out / "Images_png__000001_01_01" / "Images_png__000001_01_01_boxes.json"
    result.parent.mkdir(parents=True)
    result.write_text("{}")
    assert pending_cases(todo, out, "deeplesion_slices") == []
    assert pending_cases(todo, out, "ct_detection") == []  # one result file for both detection kinds


def test_reader_axis_order_hu_and_affine_match_the_same_volume_as_nifti(tmp_path):
    hu = _write_series(tmp_path / "s", [9, 10, 11])
    spacing = (0.7, 0.8, 2.5)
    loaded = LoadImage(reader=DeepLesionSliceReader(spacing=spacing), image_only=True, ensure_channel_first=True)(
        tmp_path / "s"
    )
    assert tuple(loaded.shape) == (1, SIZE[0], SIZE[1], 3)  # 1 x W x H x D
    # voxel (x = column, y = row, z = k-th slice) holds the PNG's row y, column x
    assert loaded[0, 4, 1, 2].item() == hu[2, 1, 4]
    assert loaded[0, 0, 3, 0].item() == hu[0, 3, 0]
    np.testing.assert_allclose(np.asarray(loaded.affine), np.diag([*spacing, 1.0]))
    assert loaded.meta["first_slice_number"] == 9 and loaded.meta["spacing_source"] == "argument"
    # the same volume written as NIfTI (data[x, y, z] = slice z at row y, column x) loads identically
    nifti = tmp_path / "s.nii.gz"
    nib.save(nib.Nifti1Image(np.transpose(hu, (2, 1, 0)).astype(np.float32), np.diag([*spacing, 1.0])), str(nifti))
    from_nifti = LoadImage(image_only=True, ensure_channel_first=True)(nifti)
    np.testing.assert_array_equal(np.asarray(from_nifti), np.asarray(loaded))
    np.testing.assert_allclose(np.asarray(from_nifti.affine), np.asarray(loaded.affine), atol=1e-6)
    # LoadImage falls back to its default readers for NIfTI files when the slice reader is given
    both = LoadImage(reader=DeepLesionSliceReader(spacing=spacing), image_only=True, ensure_channel_first=True)
    np.testing.assert_array_equal(np.asarray(both(nifti)), np.asarray(loaded))


def test_spacing_from_dl_info_then_argument_else_error(tmp_path):
    _write_series(tmp_path / "000001_01_01", [1, 2])
    _write_series(tmp_path / "000002_01_01", [1, 2])
    info = tmp_path / "DL_info.csv"
    info.write_text(
        "File_name,Spacing_mm_px_\n"
        '000001_01_01_002.png,"0.683594, 0.683594, 5"\n'
        '000001_01_01_001.png,"0.683594, 0.683594, 5"\n'
    )
    assert dl_info_spacings(info) == {"000001_01_01": (0.683594, 0.683594, 5.0)}
    reader = DeepLesionSliceReader(spacing=(1.0, 1.0, 2.0), dl_info=info)
    listed = LoadImage(reader=reader, image_only=True)(tmp_path / "000001_01_01")
    np.testing.assert_allclose(np.diag(np.asarray(listed.affine)), [0.683594, 0.683594, 5.0, 1.0])
    assert listed.meta["spacing_source"] == "DL_info.csv"
    other = LoadImage(reader=reader, image_only=True)(tmp_path / "000002_01_01")
    np.testing.assert_allclose(np.diag(np.asarray(other.affine)), [1.0, 1.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="does not list series '000002_01_01'.*spacing=\\[x, y, z\\]"):
        LoadImage(reader=DeepLesionSliceReader(dl_info=info), image_only=True)(tmp_path / "000002_01_01")
    with pytest.raises(ValueError, match="spacing must be three positive numbers"):
        DeepLesionSliceReader(spacing=(1.0, 0.0, 1.0))


@pytest.mark.parametrize(
    "rows, message",
    [
        ('a_001.png,"0.7, 0.7"\n', "line 2, column 'Spacing_mm_px_'.*three positive numbers"),
        ('noslice.png,"0.7, 0.7, 5"\n', "line 2, column 'File_name'"),
        ('a_001.png,"0.7, 0.7, 5"\na_002.png,"0.8, 0.8, 5"\n', "line 3.*on line 2"),
    ],
)
def test_bad_dl_info_rows_name_the_line(tmp_path, rows, message):
    info = tmp_path / "DL_info.csv"
    info.write_text("File_name,Spacing_mm_px_\n" + rows)
    with pytest.raises(DatasetLayoutError, match=message):
        dl_info_spacings(info)


def test_ct_detection_kind_takes_nifti_dicom_and_png_folders(tmp_path, nifti, series):
    root = tmp_path / "in"
    nifti(root / "a.nii.gz")
    series(root / "p1" / "ct")
    _write_series(root / "p2" / "png", [1, 2])
    mixed = root / "mixed"
    series(mixed)
    _write_series(mixed, [1, 2])
    items = inference_datalist(root, "ct_detection")
    assert [(i["case_id"], "error" in i) for i in items] == [
        ("a", False),
        ("mixed", True),
        ("p1__ct", False),
        ("p2__png", False),
    ]
    assert "holds both DICOM files and NNN.png slices" in items[1]["error"]
    listed = inference_datalist([root / "p2" / "png", root / "a.nii.gz"], "ct_detection")
    assert [i["case_id"] for i in listed] == ["p2__png", "a"]
    with pytest.raises(ValueError, match="is not a folder holding NNN.png"):
        inference_datalist([root / "p1"], "deeplesion_slices")


def test_a_single_slice_folder_is_a_one_slice_volume(tmp_path):
    hu = _write_series(tmp_path / "one", [12])
    loaded = LoadImage(reader=DeepLesionSliceReader(spacing=(1, 1, 1)), image_only=True, ensure_channel_first=True)(
        tmp_path / "one"
    )
    assert tuple(loaded.shape) == (1, SIZE[0], SIZE[1], 1) and loaded[0, 3, 2, 0].item() == hu[0, 2, 3]
    assert loaded.meta["first_slice_number"] == 12
