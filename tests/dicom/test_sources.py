# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from pathlib import Path

import numpy as np
import pydicom
import pytest
from monai.transforms import LoadImage

from monai_ext.demo.dicom_series import write_ct_dicom_series
from monai_ext.dicom import is_dicom_source, read_source_instances


def test_series_order_is_the_volume_slice_order(tmp_path):
    """Slice k of the ITK-read volume has the pixels of read_source_instances(...)[k], whatever the file order."""
    rng = np.random.default_rng(0)
    volume = rng.integers(-1000, 1000, size=(6, 5, 4)).astype(np.float32)
    # a tilted (sagittal-ish) orientation and files written in a scrambled order
    write_ct_dicom_series(
        volume, (0.7, 0.8, 2.5), tmp_path / "s", image_orientation=(0, 1, 0, 0, 0, -1), file_order=[2, 0, 3, 1]
    )
    instances = read_source_instances(tmp_path / "s", pixels=True)
    image = LoadImage(reader="ITKReader", image_only=True)(str(tmp_path / "s"))
    for k, ds in enumerate(instances):
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_allclose(np.asarray(image)[:, :, k].T, hu)
        np.testing.assert_allclose(hu.T, volume[:, :, k])
    assert is_dicom_source(tmp_path / "s") and not is_dicom_source(tmp_path)


def test_single_file_and_errors(tmp_path, rg1_unci_path):
    [ds] = read_source_instances(rg1_unci_path)
    assert ds.SOPInstanceUID == pydicom.dcmread(rg1_unci_path).SOPInstanceUID and "PixelData" not in ds
    with pytest.raises(FileNotFoundError, match="missing.dcm"):
        read_source_instances(tmp_path / "missing.dcm")
    (tmp_path / "x.png").write_bytes(b"not dicom")
    with pytest.raises(ValueError, match="is not DICOM"):
        read_source_instances(tmp_path / "x.png")
    (tmp_path / "bad.dcm").write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match="bad.dcm"):
        read_source_instances(tmp_path / "bad.dcm")
    volume = np.zeros((4, 4, 2), np.float32)
    write_ct_dicom_series(volume, (1, 1, 1), tmp_path / "two", uid_seed="a")
    write_ct_dicom_series(volume, (1, 1, 1), tmp_path / "other", uid_seed="b")
    for f in Path(tmp_path / "other").iterdir():
        f.rename(tmp_path / "two" / f"b_{f.name}")
    with pytest.raises(ValueError, match="2 series"):
        read_source_instances(tmp_path / "two")


def test_was_dicom_input_by_content_and_by_name_when_gone(tmp_path, rg1_unci_path):
    from monai_ext.dicom import was_dicom_input

    write_ct_dicom_series(np.zeros((4, 4, 2), np.float32), (1, 1, 1), tmp_path / "series")
    (tmp_path / "x.png").write_bytes(b"png")
    assert was_dicom_input(rg1_unci_path) and was_dicom_input(tmp_path / "series")
    assert not was_dicom_input(tmp_path / "x.png") and not was_dicom_input(tmp_path)  # no DICOM file directly in it
    # gone: judged by the name, so a vanished DICOM source is reported, not skipped
    assert was_dicom_input(tmp_path / "gone.dcm") and was_dicom_input(tmp_path / "gone_series")
    assert not was_dicom_input(tmp_path / "gone.nii.gz") and not was_dicom_input(tmp_path / "gone.png")
    assert not was_dicom_input("")
