# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.series_geometry through volume discovery: a DICOM series with a missing slice,
a duplicate position, uneven steps, tilted slices, no geometry or a short slice is reported in skipped.csv, naming
the folder and the positions; an evenly spaced series (any orientation, small jitter) is a case."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pydicom
import pytest
from monai.transforms import LoadImage

from monai_ext.data.inference import inference_datalist, prepare_inference_datalist
from monai_ext.data.inference.series_geometry import SPACING_RTOL
from monai_ext.demo.dicom_series import write_ct_dicom_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

DZ = 2.0


def _write(folder, n_slices=6, orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), origin=(0.0, 0.0, 0.0)):
    volume = np.stack([np.full((6, 5), 100.0 * k - 500.0) for k in range(n_slices)], axis=-1)
    return write_ct_dicom_series(volume, (0.8, 0.8, DZ), folder, origin=origin, image_orientation=orientation)


def _error(folder):
    [item] = inference_datalist(folder, "volume")
    return item.get("error")


def _move_slice(path, dz):
    """Shift one slice along the axial normal by ``dz`` mm."""
    ds = pydicom.dcmread(path)
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [x, y, z + dz]
    ds.save_as(path)


def test_missing_slice_is_reported_with_the_positions(tmp_path):
    files = _write(tmp_path / "ct")
    files[2].unlink()  # z = 4 mm
    error = _error(tmp_path / "ct")
    assert error.startswith(
        f"DICOM series '{tmp_path / 'ct'}': the 5 slices are not evenly spaced along the slice normal (median step "
        "2.000 mm, tolerance 0.020 mm): gap of 4.000 mm (about 1 slice(s) missing) between 'IM0002.dcm' at 2.000 mm "
        "and 'IM0004.dcm' at 6.000 mm."
    )
    assert "add the missing slices" in error


def test_itk_reads_the_gapped_series_on_a_uniform_grid(tmp_path):
    """Why the check is needed: the reader returns a volume without complaint on one uniform grid (slices at 0, 2, 6,
    8, 10 mm put 2.5 mm apart), misplacing the slices around the gap."""
    files = _write(tmp_path / "ct")
    files[2].unlink()
    image = LoadImage(reader="ITKReader", image_only=True)(str(tmp_path / "ct"))
    assert image.shape[-1] == 5 and np.isclose(float(image.affine[2, 2]), 2.5)


def test_duplicate_and_uneven_positions(tmp_path):
    files = _write(tmp_path / "dup")
    shutil.copy(files[3], tmp_path / "dup" / "IM0004_copy.dcm")
    assert "duplicate position: 'IM0004.dcm' at 6.000 mm and 'IM0004_copy.dcm' at 6.000 mm" in _error(tmp_path / "dup")
    files = _write(tmp_path / "uneven")
    _move_slice(files[3], -0.5)  # 6 -> 5.5 mm: steps 1.5 and 2.5
    error = _error(tmp_path / "uneven")
    assert "uneven step of 1.500 mm between 'IM0003.dcm' at 4.000 mm and 'IM0004.dcm' at 5.500 mm" in error
    assert "gap of 2.500 mm (about 0 slice(s) missing) between 'IM0004.dcm' at 5.500 mm" in error


def test_even_series_in_any_orientation_and_small_jitter_pass(tmp_path):
    c, s = np.cos(0.3), np.sin(0.3)
    _write(tmp_path / "oblique", orientation=(c, s, 0.0, 0.0, 0.0, -1.0), origin=(10.0, -20.0, 30.0))
    assert _error(tmp_path / "oblique") is None
    files = _write(tmp_path / "coronal", orientation=(1.0, 0.0, 0.0, 0.0, 0.0, -1.0))
    assert _error(tmp_path / "coronal") is None
    files = _write(tmp_path / "jitter")
    _move_slice(files[2], 0.5 * SPACING_RTOL * DZ)
    assert _error(tmp_path / "jitter") is None


def test_tilted_slice_and_missing_geometry(tmp_path):
    files = _write(tmp_path / "tilted")
    ds = pydicom.dcmread(files[1])
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.9950042, -0.0998334]
    ds.save_as(files[1])
    assert "the slices are not parallel: ['IM0002.dcm'] have another ImageOrientationPatient" in _error(
        tmp_path / "tilted"
    )
    files = _write(tmp_path / "nogeo")
    ds = pydicom.dcmread(files[0])
    del ds.ImagePositionPatient
    ds.save_as(files[0])
    assert "1 slice(s) lack a valid ImagePositionPatient (0020,0032)" in _error(tmp_path / "nogeo")


def test_short_slice_in_a_series(tmp_path):
    files = _write(tmp_path / "ct")
    files[4].write_bytes(files[4].read_bytes()[:-20])
    assert _error(tmp_path / "ct").startswith(f"'{files[4]}' is truncated: the pixel data needs 60 bytes")


@pytest.mark.parametrize("level", ["header", "decode"])
def test_gapped_series_goes_to_skipped_csv(tmp_path, level):
    _write(tmp_path / "in" / "good")
    _write(tmp_path / "in" / "gap")[3].unlink()
    todo = prepare_inference_datalist(tmp_path / "in", tmp_path / "out", "volume", level=level)
    assert [d["case_id"] for d in todo] == ["good"]
    with open(tmp_path / "out" / "skipped.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert [r[:2] for r in rows[1:]] == [["gap", str(tmp_path / "in" / "gap")]]
    assert "gap of 4.000 mm" in rows[1][2]
