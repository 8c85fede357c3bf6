# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Load a colour photograph (e.g. a fundus image) from PNG, JPEG or DICOM as a ``3 x W x H`` float image in [0, 1],
the same layout whichever file type held the pixels.

What MONAI 1.6.1's readers hand over for an ``H x W`` RGB image (measured, see the tests):

- ``LoadImage(reader=PILReader(), ensure_channel_first=True)`` on a PNG/JPEG: ``3 x W x H`` (PIL's reader swaps the
  two spatial axes, MONAI's first spatial axis being the image's columns), values 0-255;
- ``LoadImage(reader=PydicomReader())`` on an RGB DICOM (SamplesPerPixel 3): ``W x H x 3`` with
  ``original_channel_dim`` NaN, so ``ensure_channel_first=True`` wrongly adds a fourth axis (``1 x W x H x 3``);
  a ``YBR_FULL``/``YBR_FULL_422`` DICOM is converted to RGB by pydicom (within 1 grey level of the RGB original);
- ``ITKReader`` (``LoadImage``'s automatic choice for ``.dcm``) gives ``3 x W x H x 1``.

:class:`LoadPhotograph` therefore reads PNG/JPEG with ``PILReader`` and DICOM with ``PydicomReader`` and moves a
DICOM's samples axis first, so that a PNG and a DICOM of the same pixels give the same tensor, in the layout that
``LoadImaged`` gives a PNG (the layout training pipelines built on ``LoadImaged`` see). Grey images (``L``,
``MONOCHROME2``) are repeated to three channels, alpha is dropped, and values are divided by ``2**bits - 1``
(8 bits for PNG/JPEG, BitsStored for DICOM). Which files are accepted is checked before a run by
:class:`monai_ext.data.inference.photograph.PhotographKind`; a file outside it raises here, naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import pydicom
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor, PILReader, PydicomReader
from monai.transforms import LoadImage, MapTransform, Transform

__all__ = ["LoadPhotograph", "LoadPhotographd"]


class LoadPhotograph(Transform):
    """``path -> 3 x W x H`` float32 MetaTensor in [0, 1] (see the module docstring); ``meta["filename_or_obj"]``
    is the path.

    Raises:
        ValueError: the file is not a photograph this transform reads (PhotometricInterpretation or PIL mode outside
            :data:`monai_ext.data.inference.photograph.PHOTOGRAPH_PHOTOMETRICS` /
            :data:`~monai_ext.data.inference.photograph.PHOTOGRAPH_MODES`, several frames); the message names it.
        RuntimeError: the reader failed (message names the file).
    """

    def __init__(self) -> None:
        self._pil = LoadImage(reader=PILReader(), image_only=True, ensure_channel_first=True)
        self._dicom = LoadImage(reader=PydicomReader(), image_only=True)

    def __call__(self, path: str | os.PathLike) -> MetaTensor:
        from monai_ext.data.inference.filetypes import is_dicom_file  # lazy: monai_ext.data is heavy
        from monai_ext.data.inference.photograph import photograph_header_error

        error = photograph_header_error(path)
        if error is not None:
            raise ValueError(error)
        p = Path(path)
        try:
            if is_dicom_file(p):
                img = self._dicom(p)
                bits = int(pydicom.dcmread(p, stop_before_pixels=True).get("BitsStored", 8) or 8)
                # PydicomReader: W H (grey) or W H S (samples last, not flagged as a channel axis)
                data = img.as_tensor().unsqueeze(0) if img.ndim == 2 else img.as_tensor().movedim(-1, 0)
            else:
                img = self._pil(p)
                bits = 8
                data = img.as_tensor()
        except ValueError:
            raise
        except Exception as e:
            raise RuntimeError(f"could not load the photograph '{path}': {type(e).__name__}: {e}.") from e
        channels = data.shape[0]
        if channels in (1, 2):  # grey, grey + alpha
            data = data[:1].repeat(3, 1, 1)
        elif channels == 4:  # RGBA
            data = data[:3]
        elif channels != 3:
            raise ValueError(f"the photograph '{path}' loaded with {channels} channels; expected 1-4.")
        data = data.to(torch.float32) / float(2**bits - 1)
        meta: dict[str, Any] = dict(img.meta)
        meta["original_channel_dim"] = 0
        return MetaTensor(data.contiguous(), meta=meta)


class LoadPhotographd(MapTransform):
    """Dictionary version of :class:`LoadPhotograph`: each key's path becomes its ``3 x W x H`` image in [0, 1]."""

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadPhotograph()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d
