# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of monai_ext.transforms.windowing against hand-worked window values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import ScaleIntensityRanged

from monai_ext.transforms import MOMBS_COVID_WINDOWS, MultiWindow, MultiWindowd

HU = [-1500.0, -174.0, 0.0, 50.0, 274.0, 500.0, 1425.0, 2000.0]
# windows (-174, 274) width 448, (-1493, 484) width 1977, (-534, 1425) width 1959: (HU - low) / width in [0, 1]
MOMBS_EXPECTED = [
    [0, 0, 174 / 448, 224 / 448, 1, 1, 1, 1],
    [0, 1319 / 1977, 1493 / 1977, 1543 / 1977, 1767 / 1977, 1, 1, 1],
    [0, 360 / 1959, 534 / 1959, 584 / 1959, 808 / 1959, 1034 / 1959, 1, 1],
]


def test_mombs_windows_are_the_paper_values():
    assert MOMBS_COVID_WINDOWS == ((-174.0, 274.0), (-1493.0, 484.0), (-534.0, 1425.0))


@pytest.mark.parametrize(
    "windows,clip,hu,expected",
    [
        (MOMBS_COVID_WINDOWS, True, HU, MOMBS_EXPECTED),
        ([(-1000, 0)], True, [-1000, -750, -1, 0, 10], [[0, 0.25, 0.999, 1, 1]]),
        ([(0, 100), (-100, 100)], False, [-100, 50, 300], [[-1, 0.5, 3], [0, 0.75, 2]]),
    ],
)
def test_multi_window_values(windows, clip, hu, expected):
    img = torch.tensor(hu).reshape(1, 1, -1)  # 1 H W
    out = MultiWindow(windows, clip)(img)
    assert out.shape == (len(windows), 1, len(hu)) and out.dtype == torch.float32
    np.testing.assert_allclose(out[:, 0].numpy(), expected, atol=1e-6)


def test_shapes_types_and_meta():
    affine = torch.diag(torch.tensor([0.7, 0.7, 5.0, 1.0]))
    vol = MetaTensor(torch.full((1, 4, 5, 3), 50.0), affine=affine, meta={"filename_or_obj": "ct.nii.gz"})
    out = MultiWindow(MOMBS_COVID_WINDOWS)(vol)  # 1 H W D -> 3 H W D
    assert isinstance(out, MetaTensor) and out.shape == (3, 4, 5, 3)
    assert out.meta["filename_or_obj"] == "ct.nii.gz"
    torch.testing.assert_close(out.affine, affine.double())
    np.testing.assert_allclose(out[:, 0, 0, 0].numpy(), [224 / 448, 1543 / 1977, 584 / 1959], atol=1e-6)
    arr = MultiWindow([(0, 100)])(np.full((1, 2, 2), 25, dtype=np.int16))
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.shape == (1, 2, 2)
    np.testing.assert_allclose(arr, 0.25)


def test_dictionary_version():
    data = {"image": torch.tensor([[[0.0, 274.0]]]), "label": torch.tensor([[[1, 0]]])}
    out = MultiWindowd(["image", "missing"], MOMBS_COVID_WINDOWS, allow_missing_keys=True)(data)
    np.testing.assert_allclose(
        out["image"][:, 0].numpy(), [[174 / 448, 1], [1493 / 1977, 1767 / 1977], [534 / 1959, 808 / 1959]], atol=1e-6
    )
    assert out["label"] is data["label"]
    with pytest.raises(KeyError, match="missing"):
        MultiWindowd(["image", "missing"], MOMBS_COVID_WINDOWS)(data)


def test_deeplesion_style_three_slices_one_window():
    """Three adjacent slices in one window is ScaleIntensityRanged on a 3-channel image (no MultiWindow)."""
    slices = torch.tensor([-1024.0, 0.0, 3071.0]).reshape(3, 1, 1)
    out = ScaleIntensityRanged("image", a_min=-1024, a_max=3071, b_min=0.0, b_max=1.0, clip=True)({"image": slices})
    np.testing.assert_allclose(out["image"].ravel().numpy(), [0, 1024 / 4095, 1], atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match=r"1-channel HU image shaped 1 H W\[D\], got shape \(3, 2, 2\)"):
        MultiWindow(MOMBS_COVID_WINDOWS)(torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match=r"window 1 must be a \(low, high\) pair in HU with low < high, got \(5, 5\)"):
        MultiWindow([(0, 1), (5, 5)])
    with pytest.raises(ValueError, match="window 0 must be a"):
        MultiWindow([(0, 1, 2)])
    with pytest.raises(ValueError, match="at least one"):
        MultiWindow([])
