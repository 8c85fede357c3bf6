# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.transforms.finite: the NaN/infinite summary and RequireFinited."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_ext.transforms import RequireFinited, nonfinite_summary


def test_nonfinite_summary_counts_nan_and_inf():
    assert nonfinite_summary(np.zeros((2, 3), np.float32)) is None
    assert nonfinite_summary(np.arange(4)) is None  # integers are always finite
    values = np.array([np.nan, np.nan, np.inf, -np.inf, 1.0])
    assert nonfinite_summary(values) == "2 NaN and 2 infinite value(s) among 5"
    assert nonfinite_summary(torch.as_tensor(values)) == "2 NaN and 2 infinite value(s) among 5"
    assert nonfinite_summary(torch.zeros(3, dtype=torch.int16)) is None


def test_require_finited_names_the_file():
    image = MetaTensor(torch.zeros(1, 4, 4, 2), meta={"filename_or_obj": "/data/ct7.nii.gz"})
    data = {"image": image, "case_id": "ct7"}
    assert RequireFinited("image")(data)["image"] is image
    image[0, 1, 1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"'/data/ct7.nii.gz' holds 1 NaN and 0 infinite value\(s\) among 32.*decode"):
        RequireFinited("image")(data)
    with pytest.raises(ValueError, match="the image under key 'x'"):
        RequireFinited("x")({"x": np.array([np.inf])})
