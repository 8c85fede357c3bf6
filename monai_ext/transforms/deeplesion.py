# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DeepLesion 2.5D input: the key slice and its neighbours (16-bit PNGs) as channels in HU, and the in-plane
resample of image and boxes to a target pixel size.

Array order: images are ``C x W x H`` (spatial axis 0 = x = PNG column, axis 1 = y = PNG row), the order of MONAI's
``PILReader`` default (``reverse_indexing=True``), so that the reader's boxes ``[x1, y1, x2, y2]`` (x = column) are
MONAI's ``xyxy`` box mode (coordinate ``i`` along spatial axis ``i``) and every ``monai.apps.detection`` box transform
(``ZoomBoxd``, ``ClipBoxToImaged``, ``RandFlipBoxd``, ``BoxToMaskd`` ...) sees matching axes. Box coordinates are
pixel edges: a box ``[x1, x2]`` covers the pixels ``x1 <= i < x2`` (MONAI's convention, ``TO_REMOVE = 0``).

Recommended chain (bundle config; the wide window is MONAI's ``ScaleIntensityRanged``)::

    LoadDeepLesionSlicesd(keys="image")                      # C x W x H float32 HU, affine diag(sx, sy)
    ScaleIntensityRanged("image", -1024, 3071, 0, 1, clip=True)
    ZoomToSpacingd("image", box_keys="box", pixdim=0.8)       # image resized, boxes scaled by the same factor
    ClipBoxToImaged / RandFlipBoxd / ConvertBoxModed ...      # monai.apps.detection.transforms.dictionary
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.apps.detection.transforms.array import ZoomBox
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Resize
from monai.utils import ensure_tuple_rep
from PIL import Image

from .dicom import DEEPLESION_HU_OFFSET

__all__ = ["LoadDeepLesionSlicesd", "ZoomToSpacingd", "read_deeplesion_png"]

# Pillow's modes for a 16-bit grey PNG ("I" in Pillow < 10 for 16-bit PNGs; PNG has no 32-bit grey mode)
_MODES_16BIT = ("I;16", "I;16B", "I;16L", "I")


def read_deeplesion_png(path: str | os.PathLike) -> np.ndarray:
    """One DeepLesion slice as a ``W x H`` float32 array in HU (``value - 32768``; axis 0 = x = column).

    Raises:
        ValueError: the PNG is not 16-bit grey (the message names the file and the mode found).
        OSError: the file is missing or cannot be decoded (the message names the file).
    """
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode not in _MODES_16BIT:
                raise ValueError(
                    f"DeepLesion slice '{path}' is a {mode!r} image, expected a 16-bit grey PNG (Pillow mode 'I;16', "
                    "HU = value - 32768); an 8-bit export loses the HU scale: use the original Images_png file."
                )
            arr = np.asarray(img)
    except (OSError, SyntaxError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise OSError(f"cannot read DeepLesion slice '{path}': {e}") from e
    return (arr.astype(np.float32) + np.float32(DEEPLESION_HU_OFFSET)).T


class LoadDeepLesionSlicesd(MapTransform):
    """Load an item's context slices (``image``: list of PNG paths, from
    :func:`monai_ext.data.deeplesion.deeplesion_datalist`) into one ``C x W x H`` float32 ``MetaTensor`` in HU.

    Channel ``c`` is ``image[c]`` (list order, i.e. slice order with the key slice in the middle); with
    ``interpolate`` and the item's ``slice_pairs`` / ``slice_weights`` (written by the reader for a
    ``slice_interval_mm``), channel ``c`` is ``(1 - w) * near + w * far`` for ``[near, far] = slice_pairs[c]``,
    ``w = slice_weights[c]``, the official loader's linear interpolation (``rsummers11/CADLab`` e6963e8,
    ``MULAN_universal_lesion_analysis/maskrcnn/data/datasets/load_ct_img.py``). The affine is
    ``diag(sx, sy, 1, 1)`` from the item's ``spacing`` (x, y mm), so ``.pixdim`` is ``(sx, sy)`` and
    :class:`ZoomToSpacingd` / MONAI ``Spacingd`` can resample; ``filename_or_obj`` is the key (middle) slice.

    Args:
        keys: keys of the path lists. Default ``"image"``.
        spacing_key: key of ``[x, y, z]`` mm spacing; ``None`` leaves a unit affine. Default ``"spacing"``.
        pairs_key, weights_key: keys of the interpolation pairs and weights. Defaults ``"slice_pairs"``,
            ``"slice_weights"``.
        interpolate: use the pairs when the item has them. Default ``True``.
        allow_missing_keys: as ``MapTransform``.

    Raises:
        ValueError: a PNG that is not 16-bit (file and mode named), slices of different sizes (files named), an
            empty path list, pairs / weights whose lengths differ from the path list, or a non-positive or
            non-finite x/y spacing.
        OSError: a missing or unreadable PNG (file named).
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        spacing_key: str | None = "spacing",
        pairs_key: str = "slice_pairs",
        weights_key: str = "slice_weights",
        interpolate: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.spacing_key = spacing_key
        self.pairs_key = pairs_key
        self.weights_key = weights_key
        self.interpolate = interpolate

    def _channels(self, d: Mapping, key: Hashable, read) -> list[np.ndarray]:
        paths = list(d[key])
        if not paths:
            raise ValueError(f"'{key}' holds no slice path (dataset index {d.get('index', '?')}).")
        if not (self.interpolate and self.pairs_key in d and self.weights_key in d):
            return [read(p) for p in paths]
        pairs, weights = list(d[self.pairs_key]), [float(w) for w in d[self.weights_key]]
        if not len(pairs) == len(weights) == len(paths):
            raise ValueError(
                f"'{self.pairs_key}' ({len(pairs)}) and '{self.weights_key}' ({len(weights)}) must have one entry per "
                f"path of '{key}' ({len(paths)}), dataset index {d.get('index', '?')}."
            )
        out = []
        for (near, far), w in zip(pairs, weights):
            out.append(read(near) if w == 0 else (1.0 - w) * read(near) + w * read(far))
        return [c.astype(np.float32) for c in out]

    def _affine(self, d: Mapping) -> torch.Tensor:
        affine = torch.eye(4, dtype=torch.float64)
        if self.spacing_key is None:
            return affine
        sx, sy = (float(v) for v in list(d[self.spacing_key])[:2])
        if not (np.isfinite(sx) and np.isfinite(sy) and sx > 0 and sy > 0):
            raise ValueError(
                f"'{self.spacing_key}' x/y must be positive finite mm, got {[sx, sy]} (dataset index "
                f"{d.get('index', '?')}); fix Spacing_mm_px_ or pass spacing_key=None."
            )
        affine[0, 0], affine[1, 1] = sx, sy
        return affine

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        cache: dict[str, np.ndarray] = {}

        def read(path) -> np.ndarray:
            if str(path) not in cache:
                cache[str(path)] = read_deeplesion_png(path)
            return cache[str(path)]

        for key in self.key_iterator(d):
            paths = [str(p) for p in d[key]]
            channels = self._channels(d, key, read)
            shapes = {c.shape for c in channels}
            if len(shapes) > 1:
                raise ValueError(f"the slices of '{key}' differ in size ({sorted(shapes)}): {paths}")
            meta = {"filename_or_obj": paths[len(paths) // 2], "spatial_shape": np.array(channels[0].shape)}
            meta["original_channel_dim"] = 0
            d[key] = MetaTensor(torch.from_numpy(np.stack(channels)), affine=self._affine(d), meta=meta)
        return d


class ZoomToSpacingd(MapTransform):
    """Resample 2D images in-plane to ``pixdim`` mm/px (per item, from each image's ``MetaTensor.pixdim``) and scale
    the boxes by exactly the same factor.

    The output size is ``round(size * spacing / pixdim)`` per axis; the images are resized to it with MONAI
    ``Resize`` (affine updated) and the boxes (``xyxy``, axis order of the image) by MONAI's ``ZoomBox`` with the
    realised factor ``out_size / in_size``, so image and boxes cannot drift apart by rounding. That factor is stored
    under ``zoom_key`` (per axis) for mapping predictions back to the original pixels (divide by it).

    Args:
        keys: image keys (the first sets the factor; all must share its spatial size).
        box_keys: box keys (``N x 4`` in the image's pixel coordinates), may be empty.
        pixdim: target in-plane spacing in mm, a number or one per axis. Default 0.8 (the issue's working spacing).
        mode: ``Resize`` interpolation. Default ``"bilinear"``.
        zoom_key: where to store the factor, or ``None``. Default ``"zoom"``.
        allow_missing_keys: as ``MapTransform``.

    Raises:
        ValueError: an image that is not a ``MetaTensor`` with a finite positive spacing, or images of different
            sizes.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        box_keys: KeysCollection = ("box",),
        pixdim: float | Sequence[float] = 0.8,
        mode: str = "bilinear",
        zoom_key: str | None = "zoom",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.box_keys = [box_keys] if isinstance(box_keys, str) else list(box_keys)
        self.pixdim = pixdim
        self.mode = mode
        self.zoom_key = zoom_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        if not keys:
            return d
        ref = d[keys[0]]
        if not isinstance(ref, MetaTensor):
            raise ValueError(f"'{keys[0]}' must be a MetaTensor with an affine (load it with LoadDeepLesionSlicesd).")
        src = ref.pixdim.detach().cpu().numpy().astype(float)[: ref.ndim - 1]
        target = np.asarray(ensure_tuple_rep(self.pixdim, len(src)), dtype=float)
        if not (np.all(np.isfinite(src)) and np.all(src > 0)):
            raise ValueError(f"'{keys[0]}' has spacing {src.tolist()} mm; expected positive finite values.")
        in_size = np.asarray(ref.shape[1:])
        out_size = np.maximum(1, np.rint(in_size * src / target)).astype(int)
        resize = Resize(spatial_size=tuple(int(v) for v in out_size), mode=self.mode)
        for key in keys:
            if tuple(d[key].shape[1:]) != tuple(in_size):
                raise ValueError(f"'{key}' has size {tuple(d[key].shape[1:])}, '{keys[0]}' {tuple(in_size)}.")
            d[key] = resize(d[key])
        zoom = (out_size / in_size).tolist()
        zoom_box = ZoomBox(zoom=zoom, keep_size=False)
        for key in self.box_keys:
            if key in d:
                boxes = d[key]
                if not isinstance(boxes, (np.ndarray, torch.Tensor)):  # the reader's list of [x1, y1, x2, y2]
                    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 2 * len(in_size))
                d[key] = zoom_box(boxes, src_spatial_size=tuple(int(v) for v in in_size))
            elif not self.allow_missing_keys:
                raise KeyError(f"box key '{key}' is missing from the item (dataset index {d.get('index', '?')}).")
        if self.zoom_key is not None:
            d[self.zoom_key] = zoom
        return d
