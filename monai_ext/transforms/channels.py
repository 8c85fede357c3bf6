# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Bring a radiograph loaded as grey, grey+alpha, RGB or RGBA to one channel.

Public radiograph releases mix channel layouts: NIH ChestX-ray14 holds a few RGBA PNGs among its 8-bit grey ones,
some JPEG exports are RGB with three equal channels. Networks of the CXR bundles expect one grey channel (then
repeated to three for ImageNet-style stems), so the loaders put :class:`ToGrayscaled` right after ``LoadImaged``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_tensor

__all__ = ["LUMA_WEIGHTS", "ToGrayscale", "ToGrayscaled"]

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights for R, G, B (they sum to 1, so an RGB image with equal channels keeps its values)."""


class ToGrayscale(Transform):
    """``C H W[D]`` with C in {1, 2, 3, 4} -> ``1 H W[D]``.

    C = 1 is returned unchanged; C = 2 (grey + alpha) keeps channel 0; C = 3 (RGB) and C = 4 (RGBA, alpha dropped)
    become the BT.601 luma ``0.299 R + 0.587 G + 0.114 B``. Values and dtype range are kept (float output for 3/4
    channels), metadata travels with a MetaTensor. A single-frame DICOM read by ``ITKReader`` arrives as
    ``C W H 1``; that trailing singleton frame axis is dropped so every reader gives ``1 W H``.

    Raises:
        ValueError: the image has no channel dimension or another channel count; the message names the file.
    """

    backend = [torch.Tensor]

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        img_t = convert_to_tensor(img, track_meta=isinstance(img, MetaTensor))
        channels = img_t.shape[0] if img_t.ndim >= 3 else None
        if channels not in (1, 2, 3, 4):
            name = img.meta.get("filename_or_obj", "<array>") if isinstance(img, MetaTensor) else "<array>"
            raise ValueError(
                f"ToGrayscale expects a channel-first image with 1-4 channels (grey, grey+alpha, RGB, RGBA), got "
                f"shape {tuple(img_t.shape)} for '{name}'; load it with ensure_channel_first=True."
            )
        if img_t.ndim == 4 and img_t.shape[-1] == 1:  # ITKReader: one-frame DICOM as W H 1
            img_t = img_t[..., 0]
        if channels == 1:
            return img_t
        if channels == 2:
            return img_t[:1]
        weights = torch.tensor(LUMA_WEIGHTS, dtype=torch.float32, device=img_t.device)
        out = torch.tensordot(weights, img_t[:3].float(), dims=([0], [0])).unsqueeze(0)
        if isinstance(img_t, MetaTensor):
            out = MetaTensor(out.as_tensor() if isinstance(out, MetaTensor) else out, meta=img_t.meta)
        return out


class ToGrayscaled(MapTransform):
    """Dictionary version of :class:`ToGrayscale`."""

    backend = ToGrayscale.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = ToGrayscale()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.converter(d[key])
        return d
