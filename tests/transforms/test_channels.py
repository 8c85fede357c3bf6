# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImaged
from PIL import Image

from monai_ext.transforms import ToGrayscale, ToGrayscaled


def test_rgb_luma_hand_worked():
    # one pixel R=100, G=50, B=200 -> 0.299*100 + 0.587*50 + 0.114*200 = 29.9 + 29.35 + 22.8 = 82.05
    img = torch.tensor([100.0, 50.0, 200.0]).reshape(3, 1, 1)
    assert ToGrayscale()(img).shape == (1, 1, 1)
    assert float(ToGrayscale()(img)) == pytest.approx(82.05, abs=1e-4)


def test_rgba_drops_alpha_and_equal_channels_keep_values():
    grey = torch.arange(6, dtype=torch.float32).reshape(1, 2, 3)
    rgba = torch.cat([grey, grey, grey, torch.full_like(grey, 255.0)])
    assert torch.allclose(ToGrayscale()(rgba), grey, atol=1e-5)
    grey_alpha = torch.cat([grey, torch.zeros_like(grey)])
    assert torch.equal(ToGrayscale()(grey_alpha), grey)
    assert ToGrayscale()(grey) is not None and torch.equal(ToGrayscale()(grey), grey)


def test_bad_channel_count_names_file():
    img = MetaTensor(torch.zeros(5, 4, 4), meta={"filename_or_obj": "odd.tif"})
    with pytest.raises(ValueError, match=r"1-4 channels.*shape \(5, 4, 4\).*odd.tif"):
        ToGrayscale()(img)


def test_dictionary_version_on_rgba_png(tmp_path):
    arr = np.zeros((4, 5, 4), dtype=np.uint8)
    arr[..., :3] = 120
    arr[..., 3] = 255
    Image.fromarray(arr, mode="RGBA").save(tmp_path / "x.png")
    data = LoadImaged("image", image_only=True, ensure_channel_first=True)({"image": str(tmp_path / "x.png")})
    out = ToGrayscaled("image")(data)["image"]
    assert out.shape == (1, 5, 4)
    assert torch.allclose(out.float(), torch.full((1, 5, 4), 120.0), atol=1e-4)
    assert out.meta["filename_or_obj"].endswith("x.png")


def test_single_frame_dicom_from_both_readers_gives_the_same_2d_shape(rg1_unci_path):
    from monai.data import ITKReader, PydicomReader

    shapes = set()
    for reader in (PydicomReader(), ITKReader()):
        loaded = LoadImaged("image", reader=reader, image_only=True, ensure_channel_first=True)(
            {"image": rg1_unci_path}
        )
        shapes.add(tuple(ToGrayscaled("image")(loaded)["image"].shape))
    assert len(shapes) == 1 and len(next(iter(shapes))) == 3, shapes
