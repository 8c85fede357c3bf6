# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.demo.dicom_series: the written CT series' headers, and MONAI's ITKReader / PydicomReader
reading it back as the same X Y Z HU volume with the hand-worked RAS affine (axial, shuffled files, coronal)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest
from monai.transforms import LoadImage
from pydicom.pixels import apply_rescale
from pydicom.uid import CTImageStorage

from monai_ext.demo.dicom_series import dicom_series_affine, nifti_to_dicom_series, write_ct_dicom_series

SPACING, ORIGIN = (0.7, 0.8, 2.5), (10.0, 20.0, 30.0)
# RAS = diag(-1, -1, 1) @ LPS; axial: column step +x LPS * 0.7, row step +y LPS * 0.8, slice step +z LPS * 2.5
AXIAL_RAS = [[-0.7, 0, 0, -10.0], [0, -0.8, 0, -20.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]]
# coronal (rows +x, columns -z, normal = row x col = +y LPS): index j steps -z, index k steps +y LPS (-y RAS)
CORONAL_RAS = [[-0.7, 0, 0, -10.0], [0, 0, -2.5, -20.0], [0, -0.8, 0, 30.0], [0, 0, 0, 1]]


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    """6 x 5 x 4 integer HU, every voxel different (so any transposition or flip shows)."""
    return (np.arange(6 * 5 * 4, dtype=np.float64).reshape(6, 5, 4) * 7 - 900).round()


def test_headers_and_stored_values(tmp_path, volume):
    paths = write_ct_dicom_series(volume, SPACING, tmp_path, origin=ORIGIN)
    assert [p.name for p in paths] == ["IM0001.dcm", "IM0002.dcm", "IM0003.dcm", "IM0004.dcm"]
    uids = set()
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == CTImageStorage and ds.Modality == "CT" and ds.InstanceNumber == k + 1
        assert (ds.Rows, ds.Columns) == (5, 6)  # rows = Y, columns = X
        assert [float(v) for v in ds.PixelSpacing] == [0.8, 0.7]  # row spacing (dy) first
        assert [float(v) for v in ds.ImagePositionPatient] == [10.0, 20.0, 30.0 + 2.5 * k]
        assert float(ds.SliceThickness) == 2.5 and (float(ds.RescaleIntercept), float(ds.RescaleSlope)) == (-1024, 1)
        assert ds.pixel_array.dtype == np.uint16
        np.testing.assert_array_equal(ds.pixel_array, volume[:, :, k].T + 1024)  # stored = HU - intercept
        np.testing.assert_array_equal(apply_rescale(ds.pixel_array, ds), volume[:, :, k].T)
        uids.add(ds.SeriesInstanceUID)
    assert len(uids) == 1


@pytest.mark.parametrize("reader", ["ITKReader", "PydicomReader"])
def test_monai_reads_back_xyz_hu_and_ras_affine(tmp_path, volume, reader):
    write_ct_dicom_series(volume, SPACING, tmp_path, origin=ORIGIN, stored_type="int16", rescale_intercept=-1000)
    img = LoadImage(reader=reader, image_only=True, ensure_channel_first=True)(str(tmp_path))
    assert tuple(img.shape) == (1, 6, 5, 4)
    np.testing.assert_array_equal(img[0].numpy(), volume)
    np.testing.assert_allclose(img.affine.numpy(), AXIAL_RAS, atol=1e-6)
    np.testing.assert_allclose(dicom_series_affine(SPACING, ORIGIN), AXIAL_RAS, atol=1e-12)


def test_itk_sorts_by_position_not_file_name(tmp_path, volume):
    write_ct_dicom_series(volume, SPACING, tmp_path, origin=ORIGIN, file_order=[2, 0, 3, 1])
    assert pydicom.dcmread(tmp_path / "IM0001.dcm").InstanceNumber == 2  # slice 1 lives in IM0001
    img = LoadImage(reader="ITKReader", image_only=True)(str(tmp_path))
    np.testing.assert_array_equal(img.numpy(), volume)


def test_coronal_series(tmp_path, volume):
    write_ct_dicom_series(volume, SPACING, tmp_path, origin=ORIGIN, image_orientation=(1, 0, 0, 0, 0, -1))
    img = LoadImage(reader="ITKReader", image_only=True)(str(tmp_path))
    np.testing.assert_array_equal(img.numpy(), volume)
    np.testing.assert_allclose(img.affine.numpy(), CORONAL_RAS, atol=1e-6)
    np.testing.assert_allclose(dicom_series_affine(SPACING, ORIGIN, (1, 0, 0, 0, 0, -1)), CORONAL_RAS, atol=1e-12)


def test_monai_applies_rescale_of_real_ct_small(ct_small_path):
    ds = pydicom.dcmread(ct_small_path)
    assert (float(ds.RescaleIntercept), float(ds.RescaleSlope)) == (-1024.0, 1.0)
    img = LoadImage(reader="ITKReader", image_only=True)(str(ct_small_path))
    # ITK returns the first two axes as columns, rows: the transposed pixel array, in HU
    np.testing.assert_array_equal(img.numpy().squeeze().T, ds.pixel_array.astype(np.float64) - 1024.0)


def test_same_seed_same_uids_and_errors(tmp_path, volume):
    a = pydicom.dcmread(write_ct_dicom_series(volume, SPACING, tmp_path / "a")[0])
    b = pydicom.dcmread(write_ct_dicom_series(volume, SPACING, tmp_path / "b")[0])
    c = pydicom.dcmread(write_ct_dicom_series(volume, SPACING, tmp_path / "c", series_number=2)[0])
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != c.SeriesInstanceUID
    with pytest.raises(ValueError, match="outside uint16"):
        write_ct_dicom_series(volume - 500, SPACING, tmp_path / "d")
    with pytest.raises(ValueError, match="permutation of range"):
        write_ct_dicom_series(volume, SPACING, tmp_path / "e", file_order=[0, 0, 1, 2])
    with pytest.raises(ValueError, match="X Y Z"):
        write_ct_dicom_series(volume[0], SPACING, tmp_path / "f")
    with pytest.raises(ValueError, match="orthonormal"):
        write_ct_dicom_series(volume, SPACING, tmp_path / "g", image_orientation=(1, 0, 0, 1, 0, 0))


def test_nifti_to_dicom_series_same_grid(tmp_path, volume):
    nib.save(nib.Nifti1Image(volume.astype(np.int16), np.array(AXIAL_RAS)), str(tmp_path / "ct.nii.gz"))
    nifti_to_dicom_series(tmp_path / "ct.nii.gz", tmp_path / "series")
    img = LoadImage(reader="ITKReader", image_only=True)(str(tmp_path / "series"))
    np.testing.assert_array_equal(img.numpy(), volume)
    np.testing.assert_allclose(img.affine.numpy(), AXIAL_RAS, atol=1e-5)
    flipped = np.array(AXIAL_RAS) @ np.diag([1.0, 1.0, -1.0, 1.0])  # slices running against row x column
    nib.save(nib.Nifti1Image(volume.astype(np.int16), flipped), str(tmp_path / "flip.nii.gz"))
    with pytest.raises(ValueError, match="is not row x column"):
        nifti_to_dicom_series(tmp_path / "flip.nii.gz", tmp_path / "flip")
