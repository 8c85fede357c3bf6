# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image

from monai_ext.transforms import LoadImageCheckedd


def test_loads_like_loadimaged(tmp_path):
    arr = (np.arange(12, dtype=np.uint8) * 20).reshape(3, 4)
    Image.fromarray(arr).save(tmp_path / "ok.png")
    out = LoadImageCheckedd("image", image_only=True)({"image": str(tmp_path / "ok.png")})["image"]
    assert out.shape == (4, 3)  # MONAI's (W, H) spatial convention
    assert np.array_equal(np.asarray(out).T, arr)


def test_truncated_png_names_file_and_index(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "full.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:300])
    with pytest.raises(
        RuntimeError, match=r"could not load \['.*cut\.png'\] \(dataset index 7\).*Check the file"
    ) as info:
        LoadImageCheckedd("image", image_only=True)({"image": str(tmp_path / "cut.png"), "index": 7})
    assert info.value.__cause__ is not None


def test_dicom_shorter_than_its_header_fails_naming_the_file(tmp_path, ct_small_path):
    """ITKReader (MONAI's choice for .dcm) would pad the missing pixels with leftover memory; training must stop."""
    ds = pydicom.dcmread(ct_small_path)
    ds.PixelData = ds.PixelData[:-2000]
    ds.save_as(tmp_path / "short.dcm")
    with pytest.raises(
        RuntimeError, match=r"could not load \['.*short\.dcm'\] \(dataset index 3\): ValueError: '.*short"
    ):
        LoadImageCheckedd("image", image_only=True)({"image": str(tmp_path / "short.dcm"), "index": 3})
    out = LoadImageCheckedd("image", image_only=True)({"image": str(ct_small_path)})["image"]
    assert int(np.prod(out.shape)) == 128 * 128
