# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The policy for NaN and infinite image values: such an image is rejected, never repaired.

A NaN voxel has no intensity to window, so the segmentation network answers nothing there: a CT whose slices hold
NaN comes out empty on those slices (an all-NaN volume reports 0 mL), and a cast to integers turns NaN into a
plausible value (0 HU, water) that no later check can tell apart. Any fill value would be a guess about what the
scanner or converter meant, so the three places that meet image values reject the image and name the file and the
counts: the COVID CT slice cache (:mod:`monai_ext.data.covid_ct_slices`, a training error), the inference decode
check (:meth:`monai_ext.data.inference.volume.VolumeKind.loaded_error`, the case goes to ``skipped.csv``) and
:class:`RequireFinited` in an inference pipeline, for runs whose pre-flight check reads headers only.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

__all__ = ["nonfinite_summary", "RequireFinited"]


def nonfinite_summary(values: Any) -> str | None:
    """Describe the NaN and infinite entries of an array or tensor, or return None when every entry is finite.

    Example:
        >>> nonfinite_summary(np.array([0.0, np.nan, np.inf, 1.0]))
        '1 NaN and 1 infinite value(s) among 4'

    Args:
        values: a numpy array or torch tensor (any shape; integer types are always finite).

    Returns:
        ``"<n> NaN and <m> infinite value(s) among <size>"``, or None.
    """
    if isinstance(values, torch.Tensor):
        if not values.is_floating_point():
            return None
        n_nan, n_inf, size = int(torch.isnan(values).sum()), int(torch.isinf(values).sum()), values.numel()
    else:
        values = np.asarray(values)
        if values.dtype.kind not in "fc":
            return None
        n_nan, n_inf, size = int(np.isnan(values).sum()), int(np.isinf(values).sum()), values.size
    if n_nan == 0 and n_inf == 0:
        return None
    return f"{n_nan} NaN and {n_inf} infinite value(s) among {size}"


class RequireFinited(MapTransform):
    """Raise, naming the file, when an image holds NaN or infinite values (see the module docstring for why).

    Put it right after ``LoadImaged``. With the inference pre-flight check at ``read_check="decode"`` such a volume
    is already listed in ``skipped.csv`` and never reaches the pipeline; with ``read_check="header"`` (no decode
    before the run) this transform stops the run with the file named instead of writing an empty mask.

    Args:
        keys: keys of the images to check.
        allow_missing_keys: do not raise for a missing key. Defaults to False.

    Raises:
        ValueError: an image holds NaN or infinite values; the message names the file (the image's
            ``filename_or_obj`` metadata, else the key), the counts and what to do.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            problem = nonfinite_summary(d[key])
            if problem is not None:
                meta = getattr(d[key], "meta", {}) or {}
                source = meta.get("filename_or_obj", f"the image under key '{key}'")
                raise ValueError(
                    f"'{source}' holds {problem}; the model cannot segment NaN/infinite voxels. Fix the export (or "
                    "replace them with a value you choose), or run with read_check='decode' to list such volumes "
                    "in skipped.csv and go on."
                )
        return d
