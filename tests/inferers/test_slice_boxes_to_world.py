# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.inferers.slice_boxes_to_world: a hand-worked affine with spacing, origin and a flip, LPS
output, the original voxel grid after a real in-plane Spacingd, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Spacing

from monai_ext.inferers import slice_boxes_to_world

# the volume as loaded: 0.5 mm pixels, x flipped, 2 mm slices, origin (100, -50, -300)
ORIGINAL = np.array([[-0.5, 0, 0, 100], [0, 0.5, 0, -50], [0, 0, 2, -300], [0, 0, 0, 1]], dtype=np.float64)
# after an in-plane resample to 1 mm (written by hand; any origin works)
RESAMPLED = np.array([[-1.0, 0, 0, 99.75], [0, 1, 0, -49.75], [0, 0, 2, -300], [0, 0, 0, 1]], dtype=np.float64)


def test_hand_worked_corners_world_box_and_original_voxels():
    out = slice_boxes_to_world(torch.tensor([[2.0, 4.0, 6.0, 10.0]]), torch.tensor([3]), RESAMPLED, ORIGINAL)
    # (2, 4, 3): x = -2 + 99.75, y = 4 - 49.75, z = 6 - 300; (6, 10, 3): x = -6 + 99.75, y = 10 - 49.75
    np.testing.assert_allclose(out["world_corners"], [[[97.75, -45.75, -294.0], [93.75, -39.75, -294.0]]])
    np.testing.assert_allclose(out["box_world"], [[93.75, -45.75, -294.0, 97.75, -39.75, -294.0]], atol=1e-4)
    # original voxel: x = (100 - X) / 0.5, y = (Y + 50) / 0.5, z = (Z + 300) / 2
    np.testing.assert_allclose(out["box_original"], [[4.5, 8.5, 12.5, 20.5]], atol=1e-4)
    np.testing.assert_allclose(out["slice_original"], [3.0], atol=1e-5)
    lps = slice_boxes_to_world([[2.0, 4.0, 6.0, 10.0]], [3], RESAMPLED, output_space="LPS")
    np.testing.assert_allclose(lps["world_corners"], [[[-97.75, 45.75, -294.0], [-93.75, 39.75, -294.0]]])
    assert "box_original" not in lps
    back = slice_boxes_to_world([[2.0, 4.0, 6.0, 10.0]], [3], RESAMPLED, affine_space="LPS", output_space="RAS")
    np.testing.assert_allclose(back["world_corners"], lps["world_corners"])  # LPS <-> RAS is its own inverse


def test_empty_boxes():
    out = slice_boxes_to_world(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), RESAMPLED, ORIGINAL)
    assert out["world_corners"].shape == (0, 2, 3) and out["box_original"].shape == (0, 4)


def test_original_voxels_after_a_real_in_plane_spacing():
    # a smooth spot centred on original voxel (18.3, 20.6) of slice 2 (smooth, so that resampling keeps its centre)
    x, y = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    data = torch.zeros(1, 40, 40, 4)
    data[0, :, :, 2] = torch.exp(-((x - 18.3) ** 2 + (y - 20.6) ** 2) / (2 * 3.0**2))
    image = MetaTensor(data, affine=torch.as_tensor(ORIGINAL), meta={"original_affine": ORIGINAL.copy()})  # as loaded
    resampled = Spacing(pixdim=(1.0, 1.0, -1.0), mode="bilinear")(image)
    assert resampled.shape[-1] == 4 and np.allclose(np.abs(np.diag(np.asarray(resampled.affine)))[:3], [1, 1, 2])
    plane = resampled[0, :, :, 2]
    grid = torch.meshgrid(torch.arange(plane.shape[0]), torch.arange(plane.shape[1]), indexing="ij")
    cx, cy = (float((g * plane).sum() / plane.sum()) for g in grid)  # the spot's centre in the resampled grid
    out = slice_boxes_to_world([[cx, cy, cx, cy]], [2], resampled.affine, resampled.meta["original_affine"])
    assert abs(cx - 18.3 / 2) < 0.5  # the resampled grid is really another grid (half the pixels)
    np.testing.assert_allclose(out["box_original"][0], [18.3, 20.6, 18.3, 20.6], atol=0.02)
    np.testing.assert_allclose(out["slice_original"], [2.0], atol=1e-5)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"N x 4 with one slice each, got boxes \(1, 4\) and 2 slices"):
        slice_boxes_to_world([[0, 0, 1, 1]], [0, 1], RESAMPLED)
    with pytest.raises(ValueError, match="affine must be a finite 4 x 4"):
        slice_boxes_to_world([[0, 0, 1, 1]], [0], np.eye(3))
    swapped = RESAMPLED[[0, 2, 1, 3]]  # resampled axis 1 <-> 2: the slice axis changed
    with pytest.raises(ValueError, match="slice axis is not axis 2"):
        slice_boxes_to_world([[0, 0, 1, 1]], [0], swapped, ORIGINAL)
    with pytest.raises(ValueError, match="did you mean"):
        slice_boxes_to_world([[0, 0, 1, 1]], [0], RESAMPLED, output_space="RSA")
