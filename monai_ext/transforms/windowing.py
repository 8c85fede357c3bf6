# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""CT windowing: several Hounsfield-unit windows stacked as channels.

One window to [0, 1] is MONAI's own ``ScaleIntensityRanged(keys, a_min=low, a_max=high, b_min=0.0, b_max=1.0,
clip=True)``; this module adds only the multi-window stack, ``1 H W[D]`` HU -> ``N H W[D]`` in [0, 1], as used by
the MoMBS COVID-19 CT segmentation (three windows, :data:`MOMBS_COVID_WINDOWS`).

The DeepLesion bundles do not use several windows: their three channels are three adjacent slices (the key slice and
its neighbours) in one window, i.e. ``ScaleIntensityRanged`` applied to a 3-channel image.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import MapTransform, ScaleIntensityRange, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor
from monai.utils.misc import ensure_tuple

__all__ = ["MOMBS_COVID_WINDOWS", "MultiWindow", "MultiWindowd"]

MOMBS_COVID_WINDOWS: tuple[tuple[float, float], ...] = ((-174.0, 274.0), (-1493.0, 484.0), (-534.0, 1425.0))
"""The three (low, high) HU windows of the MoMBS COVID-19 CT segmentation input, in channel order."""


class MultiWindow(Transform):
    """Stack N CT windows as N channels: channel ``i`` is ``clip((x - low_i) / (high_i - low_i), 0, 1)``.

    Each channel is MONAI's ``ScaleIntensityRange(low_i, high_i, 0, 1, clip)`` of the single input channel.

    Args:
        windows: N ``(low, high)`` pairs in HU, ``low < high``, e.g. :data:`MOMBS_COVID_WINDOWS`.
        clip: clip each channel to [0, 1]. Defaults to True.

    Raises:
        ValueError: no window, a window that is not a ``(low, high)`` pair with ``low < high`` (in ``__init__``), or an
            input with more than one channel (in ``__call__``).

    Example:
        >>> import torch
        >>> MultiWindow([(-1000, 0), (0, 100)])(torch.tensor([[[-500.0, 50.0]]])).tolist()
        [[[0.5, 1.0]], [[0.0, 0.5]]]
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, windows: Sequence[Sequence[float]], clip: bool = True) -> None:
        windows = ensure_tuple(windows)
        if not windows:
            raise ValueError("windows must hold at least one (low, high) pair, got none")
        checked = []
        for i, window in enumerate(windows):
            pair = tuple(float(v) for v in ensure_tuple(window))
            if len(pair) != 2 or not pair[0] < pair[1]:
                raise ValueError(f"window {i} must be a (low, high) pair in HU with low < high, got {window!r}")
            checked.append(pair)
        self.windows: tuple[tuple[float, float], ...] = tuple(checked)
        self.scalers = [ScaleIntensityRange(lo, hi, 0.0, 1.0, clip=clip, dtype=None) for lo, hi in self.windows]

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Args:
            img: ``1 H W[D]`` CT in HU (channel first).

        Returns:
            ``N H W[D]`` ``float32``, the same type as ``img`` (a ``MetaTensor`` keeps its metadata).
        """
        if img.shape[0] != 1:
            raise ValueError(
                f"MultiWindow expects a 1-channel HU image shaped 1 H W[D], got shape {tuple(img.shape)}; "
                "add EnsureChannelFirstd before it, or window a multi-slice image with ScaleIntensityRanged"
            )
        x = convert_to_tensor(img, dtype=torch.float32, track_meta=False)
        out = torch.cat([convert_to_tensor(scaler(x), track_meta=False) for scaler in self.scalers], dim=0)
        return convert_to_dst_type(out, dst=img, dtype=torch.float32)[0]


class MultiWindowd(MapTransform):
    """Dictionary version of :class:`MultiWindow`.

    Args:
        keys: keys of the 1-channel HU images.
        windows: N ``(low, high)`` HU pairs, see :class:`MultiWindow`.
        clip: clip each channel to [0, 1]. Defaults to True.
        allow_missing_keys: do not raise if a key is missing. Defaults to False.
    """

    backend = MultiWindow.backend

    def __init__(
        self,
        keys: KeysCollection,
        windows: Sequence[Sequence[float]],
        clip: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.windower = MultiWindow(windows, clip)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.windower(d[key])
        return d
