# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.dicom_pixels through the radiograph read check: DICOM files whose header promises
more pixel data than they hold (short element, file cut short, NumberOfFrames too large, no pixel data) are skipped at
both levels, and complete files (native, multi-frame, compressed) pass."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage
from pydicom.data import get_testdata_file

from monai_ext.data.inference import RadiographKind, check_readable, prepare_inference_datalist
from monai_ext.data.inference.dicom_pixels import dicom_pixel_data_error

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

LEVELS = ("header", "decode")


def _short_pixel_data(src: Path, path: Path, cut: int = 2000) -> Path:
    """``src`` re-saved with its Pixel Data element ``cut`` bytes shorter (a well-formed file that promises more)."""
    ds = pydicom.dcmread(src)
    ds.PixelData = ds.PixelData[:-cut]
    ds.save_as(path)
    return path


def _cut_file(src: Path, path: Path, cut: int = 2000) -> Path:
    """``src`` with its last ``cut`` bytes missing (a download that stopped)."""
    path.write_bytes(src.read_bytes()[:-cut])
    return path


def _frames(src: Path, path: Path, frames: int) -> Path:
    ds = pydicom.dcmread(src)
    ds.NumberOfFrames = frames
    ds.save_as(path)
    return path


def _no_pixels(src: Path, path: Path) -> Path:
    ds = pydicom.dcmread(src)
    del ds.PixelData
    ds.save_as(path)
    return path


def _items(*paths: Path) -> list[dict]:
    return [{"image": str(p), "case_id": p.stem} for p in paths]


def test_itk_pads_a_short_file_with_arbitrary_values(tmp_path, ct_small_path):
    """Why the check is needed: MONAI's automatic reader for .dcm (ITKReader) returns a full-size image for a file
    whose pixel data is short, so decoding alone does not catch it."""
    short = _short_pixel_data(ct_small_path, tmp_path / "short.dcm")
    image = LoadImage(image_only=True)(str(short))
    assert int(np.prod(image.shape)) == 128 * 128


@pytest.mark.parametrize("level", LEVELS)
def test_files_promising_more_than_they_hold_are_skipped(tmp_path, ct_small_path, level):
    short = _short_pixel_data(ct_small_path, tmp_path / "short.dcm")
    cut = _cut_file(ct_small_path, tmp_path / "cut.dcm")
    frames = _frames(ct_small_path, tmp_path / "frames.dcm", 3)
    empty = _no_pixels(ct_small_path, tmp_path / "empty.dcm")
    good, bad = check_readable(_items(ct_small_path, short, cut, frames, empty), "radiograph", level=level)
    assert [g["case_id"] for g in good] == ["CT_small"]
    errors = {b["case_id"]: b["error"] for b in bad}
    assert list(errors) == ["short", "cut", "frames", "empty"]
    assert errors["short"].startswith(f"'{short}': the pixel data holds 30768 bytes but the header promises 32768")
    assert "Rows 128 x Columns 128 x SamplesPerPixel 1 x NumberOfFrames 1 at BitsAllocated 16" in errors["short"]
    assert errors["cut"].startswith(f"'{cut}' is truncated: the pixel data needs 32768 bytes")
    assert "ends 30906 bytes after its start" in errors["cut"]
    assert (
        "holds 32768 bytes but the header promises 98304" in errors["frames"] and "NumberOfFrames 3" in errors["frames"]
    )
    assert errors["empty"].startswith(f"'{empty}' has no pixel data: no Pixel Data (7FE0,0010) element")


@pytest.mark.parametrize("level", LEVELS)
def test_dicom_without_pixel_data_goes_to_skipped_csv(tmp_path, ct_small_path, level):
    """Item 12: the run goes on with the other cases and skipped.csv names the file."""
    folder = tmp_path / "in"
    folder.mkdir()
    _no_pixels(ct_small_path, folder / "report.dcm")
    (folder / "ct.dcm").write_bytes(ct_small_path.read_bytes())
    todo = prepare_inference_datalist(folder, tmp_path / "out", "radiograph", level=level)
    assert [d["case_id"] for d in todo] == ["ct"]
    with open(tmp_path / "out" / "skipped.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert [r[:2] for r in rows[1:]] == [["report", str(folder / "report.dcm")]]
    assert "has no pixel data" in rows[1][2]


@pytest.mark.parametrize("name", ["CT_small.dcm", "emri_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "liver.dcm"])
def test_complete_files_pass(name):
    """Native single- and multi-frame (emri_small: 10 frames, liver: 3 frames), and compressed transfer syntaxes."""
    path = get_testdata_file(name)
    assert dicom_pixel_data_error(path) is None


def test_rg1_unci_passes_both_levels(rg1_unci_path):
    good, bad = check_readable(_items(rg1_unci_path), "radiograph", level="decode")
    assert bad == [] and check_readable(_items(rg1_unci_path), "radiograph", level="header")[1] == []


def test_decoded_value_count_is_compared_with_the_header(ct_small_path):
    kind = RadiographKind()
    full = MetaTensor(torch.zeros(1, 128, 128), meta={"filename_or_obj": str(ct_small_path)})
    assert kind.loaded_error(full) is None
    half = MetaTensor(torch.zeros(1, 128, 64), meta={"filename_or_obj": str(ct_small_path)})
    assert kind.loaded_error(half) == (
        f"'{ct_small_path}': the reader decoded 8192 values but the header promises 16384 (Rows 128 x Columns 128 x "
        "SamplesPerPixel 1 x NumberOfFrames 1 at BitsAllocated 16); re-export the file."
    )
    png = MetaTensor(torch.zeros(1, 3, 3), meta={"filename_or_obj": "x.png"})
    assert kind.loaded_error(png) is None


def test_header_lacking_image_pixel_tags(tmp_path, ct_small_path):
    ds = pydicom.dcmread(ct_small_path)
    del ds.BitsAllocated
    ds.save_as(tmp_path / "nobits.dcm")
    assert dicom_pixel_data_error(tmp_path / "nobits.dcm") == (
        f"'{tmp_path / 'nobits.dcm'}' lacks BitsAllocated of the Image Pixel module; the pixel data cannot be decoded."
    )
    (tmp_path / "garbage.dcm").write_bytes(b"not a dicom file" * 4)
    assert dicom_pixel_data_error(tmp_path / "garbage.dcm").startswith(
        f"cannot read the DICOM header of '{tmp_path / 'garbage.dcm'}': InvalidDicomError"
    )
