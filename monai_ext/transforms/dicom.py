# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Radiograph intensity normalisation from DICOM metadata (or PNG/JPEG bit depth), and CT in Hounsfield units.

Radiographs: :class:`NormalizeRadiograph` / :class:`NormalizeRadiographd` run after MONAI's ``LoadImage(d)`` with
``PydicomReader`` or ``ITKReader`` (or any reader for 8/16-bit PNG/JPEG) and give ``float32`` in [0, 1] with bright
bone, whichever reader loaded the file. What the two MONAI 1.6.1 DICOM readers hand over (measured, see the tests):

- both apply RescaleSlope/RescaleIntercept (the modality rescale) when the tags are present, so the transform never
  applies it again; neither applies a Modality LUT Sequence, VOI LUT or window;
- ``PydicomReader`` keeps MONOCHROME1 pixels as stored, and its metadata uses DICOM-JSON keys (``"00280004"`` ->
  ``{"vr": "CS", "Value": [...]}``); by default (``prune_metadata=True``) it keeps only the geometry tags, so the
  header is then re-read from ``meta["filename_or_obj"]`` (``header="auto"``) or the reader must be built with
  ``PydicomReader(prune_metadata=False)`` (``header="meta"``);
- ``ITKReader`` (GDCM) turns MONOCHROME1 into MONOCHROME2 before the rescale, as ``raw' = lo + hi - raw`` over the
  stored range (``32767 - raw`` on ``RG1_UNCI.dcm``), except for signed pixels with BitsStored < BitsAllocated, which
  itk 5.4.7 leaves as stored; its metadata is GDCM's string dict (``"0028|0004"`` -> ``"MONOCHROME1 "``, still
  saying MONOCHROME1) without sequences, so a VOI LUT Sequence is only seen by re-reading the header from the file.
  It returns a single-frame DICOM as ``W H 1``.

The metadata key scheme tells the readers apart (``loaded_polarity="auto"``), so MONOCHROME1 is inverted exactly once.

PNG/JPEG carry no window: values are divided by ``2**bits - 1``, ``bits`` being, in this order, the ``bit_depth``
argument (or the item's ``bit_depth_key`` value, e.g. PadChest's ``BitsStored_DICOM``), the PNG's ``sBIT`` chunk
(significant bits, PNG specification 11.3.3.4; ignored with a warning when the values exceed it), else the container
depth (8 for ``L``/``RGB``/JPEG, 16 for ``I;16``). A 16-bit image without ``sBIT`` whose maximum is below ``2**12``
(at most 12 significant bits, e.g. PadChest's 12-bit data in a 16-bit PNG, which the container rule maps into
[0, 0.0625]) is scaled by the container depth all the same, with a warning naming the file and the fixes, since the
maximum of one image cannot tell 12-bit data from a dark 16-bit image.

CT in Hounsfield units needs no transform of its own:

- DICOM: ``LoadImaged(keys, reader=PydicomReader())`` or ``ITKReader()`` already returns HU (both apply
  RescaleSlope/RescaleIntercept; ``CT_small.dcm``: stored + (-1024)); do not rescale again.
- DeepLesion 16-bit PNG (HU = value - 32768): ``LoadImaged(keys)`` (PIL reads ``I;16`` without clipping to 8 bits)
  then ``ShiftIntensityd(keys, offset=DEEPLESION_HU_OFFSET)``.

CT windows to [0, 1] are MONAI's ``ScaleIntensityRanged``; several windows as channels are in
:mod:`monai_ext.transforms.windowing`.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Hashable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import MapTransform, ScaleIntensityRange, Transform
from monai.transforms.utils import rescale_array
from monai.utils import ImageMetaKey, TransformBackends, convert_to_dst_type, convert_to_tensor, look_up_option
from monai.utils.enums import StrEnum
from PIL import Image, UnidentifiedImageError
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.misc import is_dicom

from monai_ext.transforms.png_bits import png_significant_bits

__all__ = [
    "DEEPLESION_HU_OFFSET",
    "RadiographVOI",
    "LoadedPolarity",
    "DicomHeaderSource",
    "NormalizeRadiograph",
    "NormalizeRadiographd",
]

logger = logging.getLogger(__name__)

DEEPLESION_HU_OFFSET: float = -32768.0
"""Offset from DeepLesion's uint16 PNG values to HU (``HU = value - 32768``; Yan et al., J. Med. Imaging 2018)."""


class RadiographVOI(StrEnum):
    """How stored intensities are mapped to [0, 1] (the DICOM "value of interest" step).

    - ``"auto"``: DICOM: VOI LUT Sequence if present, else WindowCenter/WindowWidth, else ``"bit_range"``;
      PNG/JPEG: ``"bit_range"``.
    - ``"voi_lut"``: the VOI LUT Sequence (0028,3010); required.
    - ``"window"``: WindowCenter (0028,1050) / WindowWidth (0028,1051) with VOILUTFunction (0028,1056); required.
    - ``"bit_range"``: DICOM: the full stored range of BitsStored (0028,0101) through the rescale;
      PNG/JPEG: ``value / (2**bit_depth - 1)``, the bit depth as the module docstring says.
    - ``"min_max"``: the image's own minimum and maximum.
    """

    AUTO = "auto"
    VOI_LUT = "voi_lut"
    WINDOW = "window"
    BIT_RANGE = "bit_range"
    MIN_MAX = "min_max"


class LoadedPolarity(StrEnum):
    """What the reader did to MONOCHROME1 pixels.

    - ``"auto"``: ``"inverted"`` if the metadata uses GDCM keys (``"0028|0004"``, ``ITKReader``) unless the pixels are
      signed with BitsStored < BitsAllocated (itk 5.4.7 leaves those as stored), else ``"stored"``.
    - ``"stored"``: pixels as stored in the file (``PydicomReader``).
    - ``"inverted"``: flipped over the stored range before the rescale, ``raw' = lo + hi - raw`` (GDCM).
    """

    AUTO = "auto"
    STORED = "stored"
    INVERTED = "inverted"


class DicomHeaderSource(StrEnum):
    """Where the DICOM header comes from.

    - ``"auto"``: the reader's metadata when it is complete (``PydicomReader(prune_metadata=False)``), else the file
      ``meta["filename_or_obj"]`` read with ``pydicom.dcmread(stop_before_pixels=True)`` when it is a DICOM file;
      otherwise the image is treated as PNG/JPEG.
    - ``"meta"``: only the reader's metadata (``ITKReader`` metadata has no VOI LUT Sequence); the file is only probed
      for the DICOM preamble, to tell pruned ``PydicomReader`` metadata from a PNG/JPEG in the error message.
    - ``"file"``: always the file; the input must be DICOM.
    """

    AUTO = "auto"
    META = "meta"
    FILE = "file"


_HEADER_KEYWORDS = (
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "WindowCenter",
    "WindowWidth",
    "RescaleIntercept",
    "RescaleSlope",
    "VOILUTFunction",
    "ModalityLUTSequence",
    "VOILUTSequence",
)
_GDCM_KEY = re.compile(r"^[0-9a-fA-F]{4}\|[0-9a-fA-F]{4}$")
_JSON_KEY = re.compile(r"^[0-9A-F]{8}$")
_PIL_MODE_BITS = {"1": 1, "L": 8, "LA": 8, "P": 8, "RGB": 8, "RGBA": 8, "YCbCr": 8, "CMYK": 8}
_VOI_TAGS = ("WindowCenter", "WindowWidth", "VOILUTSequence")
_LOW_BITS = 12  # a 16-bit image whose maximum is below 2**12 gets a warning (see the module docstring)


def _checked_bit_depth(bit_depth: Any) -> int:
    """``bit_depth`` as an int in 1..32.

    Raises:
        ValueError: it is not an integer in 1..32.
    """
    try:
        bits = int(bit_depth)
    except (TypeError, ValueError):
        bits = None
    if bits is None or bits != bit_depth or not 1 <= bits <= 32:
        raise ValueError(f"bit_depth must be None or in 1..32 (an integer), got {bit_depth!r}")
    return bits


def _tag_text(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _meta_scheme(meta: Mapping) -> str:
    """``"gdcm"`` (ITKReader), ``"json"`` (PydicomReader) or ``"none"`` from the metadata key scheme."""
    keys = [k for k in meta if isinstance(k, str)]
    if any(_GDCM_KEY.match(k) for k in keys):
        return "gdcm"
    if any(_JSON_KEY.match(k) and isinstance(meta[k], Mapping) and "vr" in meta[k] for k in keys):
        return "json"
    return "none"


def _header_from_json(meta: Mapping) -> Dataset:
    wanted = {f"{tag_for_keyword(kw):08X}" for kw in _HEADER_KEYWORDS}
    return Dataset.from_json({k: v for k, v in meta.items() if k in wanted})


def _header_from_gdcm(meta: Mapping) -> Dataset:
    ds = Dataset()
    for kw in _HEADER_KEYWORDS:
        tag = tag_for_keyword(kw)
        vr = dictionary_VR(tag)
        text = str(meta.get(f"{tag >> 16:04x}|{tag & 0xFFFF:04x}", "")).strip()
        if vr == "SQ" or not text:  # GDCM's dict keeps no sequences
            continue
        parts = [p.strip() for p in text.split("\\") if p.strip()]
        if vr in ("US", "SS", "IS"):
            values: Any = [int(float(p)) for p in parts]
        elif vr == "DS":
            values = [float(p) for p in parts]
        else:
            values = parts
        ds.add_new(tag, vr, values[0] if len(values) == 1 else values)
    return ds


def _header_from_file(filename: Any) -> Dataset:
    try:
        return pydicom.dcmread(filename, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError) as e:
        raise ValueError(
            f"'{filename}' could not be read as DICOM ({type(e).__name__}: {e}); check that the file is a complete "
            "DICOM file (re-export or re-download it), or use header='meta' to rely on the reader's metadata only"
        ) from e


def _lut_table(item: Dataset, signed: bool, where: str) -> tuple[int, np.ndarray, int]:
    """``(first mapped value, table, bits per entry)`` of one VOI LUT Sequence item (PS3.3 C.11.2.1.1)."""
    if "LUTDescriptor" not in item or "LUTData" not in item:
        raise ValueError(f"{where}: the VOI LUT Sequence item lacks LUTDescriptor (0028,3002) or LUTData (0028,3006)")
    n_entries, first, bits = (int(v) for v in item.LUTDescriptor)
    n_entries = n_entries or 65536
    if signed and first >= 32768:  # LUTDescriptor is US or SS; SS stored as US
        first -= 65536
    data = item.LUTData
    table = np.frombuffer(data, dtype="<u2") if isinstance(data, bytes) else np.asarray(data, dtype=np.int64).ravel()
    if table.size < n_entries:
        raise ValueError(f"{where}: VOI LUT has {table.size} entries but its LUTDescriptor says {n_entries}")
    return first, table[:n_entries].astype(np.float32), bits


class NormalizeRadiograph(Transform):
    """Map a radiograph to ``float32`` in [0, 1] with bright bone, from its DICOM header or its bit depth.

    For DICOM, with ``x`` the pixel values as loaded (modality values: both MONAI DICOM readers already applied
    RescaleSlope ``m`` and RescaleIntercept ``b``):

    1. if the reader already inverted MONOCHROME1 (``loaded_polarity``), undo it: ``x = m * (lo + hi) + 2 b - x`` with
       ``[lo, hi]`` the stored range of BitsStored (``[0, 2**n - 1]`` unsigned, ``[-2**(n-1), 2**(n-1) - 1]`` signed);
    2. VOI (``voi``): VOI LUT ``y = LUTData[clip(floor(x) - first, 0, N - 1)] / (2**bits - 1)``; or the window of
       PS3.3 C.11.2.1.2.1 (LINEAR) ``y = clip((x - (c - 0.5)) / (w - 1) + 0.5, 0, 1)``, C.11.2.1.3.2 (LINEAR_EXACT)
       ``y = clip((x - c) / w + 0.5, 0, 1)`` or C.11.2.1.3.1 (SIGMOID) ``y = 1 / (1 + exp(-4 (x - c) / w))``; or the
       stored bit range ``[m lo + b, m hi + b]``; or the image min-max;
    3. MONOCHROME1: ``y = 1 - y``.

    For PNG/JPEG (no DICOM header) ``y = x / (2**bits - 1)`` (``"auto"``/``"bit_range"``; ``bits`` from
    ``bit_depth``, else the PNG ``sBIT`` chunk, else the container, see the module docstring) or the min-max.

    Args:
        voi: {``"auto"``, ``"voi_lut"``, ``"window"``, ``"bit_range"``, ``"min_max"``}, see :class:`RadiographVOI`.
            Defaults to ``"auto"``.
        window_index: which of several windows / VOI LUTs to use (DICOM allows alternatives). Defaults to 0.
        loaded_polarity: {``"auto"``, ``"stored"``, ``"inverted"``}, see :class:`LoadedPolarity`. Defaults to
            ``"auto"``, right for MONAI's ``PydicomReader`` and ``ITKReader``.
        header: {``"auto"``, ``"meta"``, ``"file"``}, see :class:`DicomHeaderSource`. Defaults to ``"auto"``.
        bit_depth: bits of a PNG/JPEG (ignored for DICOM, which has BitsStored). ``None`` (default) takes the PNG's
            ``sBIT`` chunk when present, else the container depth: PIL's mode in the metadata (``"L"`` 8, ``"I;16"``
            16), else an unsigned integer dtype, else the file's PIL header; a 16-bit image without ``sBIT`` whose
            maximum is below ``2**12`` is scaled by ``2**16 - 1`` with a warning naming the file.

    Raises:
        ValueError: an option is not one of the allowed values; a tag needed by the policy is missing (the message
            names the file from ``meta["filename_or_obj"]``, the tag and the fix); the file cannot be read as DICOM;
            the image is not MONOCHROME1/MONOCHROME2; the bit depth of a PNG/JPEG cannot be found.

    Typical use: ``LoadImaged(keys, reader=PydicomReader(), ensure_channel_first=True)`` then
    ``NormalizeRadiographd(keys)`` gives ``1 W H``; ``ITKReader()`` gives the same values as ``1 W H 1``.

    Example:
        >>> import numpy as np
        >>> NormalizeRadiograph()(np.array([[0, 51, 255]], dtype=np.uint8))  # no header: 8 bits from the dtype
        array([[0. , 0.2, 1. ]], dtype=float32)
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        voi: str | Enum = RadiographVOI.AUTO,
        window_index: int = 0,
        loaded_polarity: str | Enum = LoadedPolarity.AUTO,
        header: str | Enum = DicomHeaderSource.AUTO,
        bit_depth: int | None = None,
    ) -> None:
        self.voi = look_up_option(voi, RadiographVOI)
        self.loaded_polarity = look_up_option(loaded_polarity, LoadedPolarity)
        self.header = look_up_option(header, DicomHeaderSource)
        if window_index < 0:
            raise ValueError(f"window_index must be >= 0, got {window_index}")
        self.window_index = window_index
        self.bit_depth = None if bit_depth is None else _checked_bit_depth(bit_depth)

    def __call__(
        self, img: NdarrayOrTensor, meta: Mapping | None = None, bit_depth: int | None = None
    ) -> NdarrayOrTensor:
        """
        Args:
            img: radiograph as loaded, any shape (``C W H``, ``W H`` or ``W H 1``), stored values.
            meta: its metadata; defaults to ``img.meta`` for a ``MetaTensor``, else none.
            bit_depth: bits of this PNG/JPEG, overriding the ``bit_depth`` given at construction (in 1..32).

        Returns:
            ``float32`` in [0, 1], same shape and type as ``img`` (a ``MetaTensor`` keeps its metadata).
        """
        if meta is None:
            meta = img.meta if isinstance(img, MetaTensor) else {}
        bit_depth = self.bit_depth if bit_depth is None else _checked_bit_depth(bit_depth)
        filename = meta.get(ImageMetaKey.FILENAME_OR_OBJ, "<no filename_or_obj in metadata>")
        x = convert_to_tensor(img, dtype=torch.float32, track_meta=False)
        scheme = _meta_scheme(meta)
        ds, source = self._header(meta, scheme, filename)
        if ds is None:
            y = self._normalize_plain(x, img, meta, filename, bit_depth)
        else:
            y = self._normalize_dicom(x, ds, scheme, f"'{filename}' ({source})", bit_depth)
        y = convert_to_tensor(y, track_meta=False).clamp(0.0, 1.0)  # MONAI's scalers return bare MetaTensors
        out, *_ = convert_to_dst_type(y, dst=img, dtype=torch.float32)
        return out

    def _header(self, meta: Mapping, scheme: str, filename: Any) -> tuple[Dataset | None, str]:
        """The DICOM header (``None`` for a PNG/JPEG) and where it came from, for messages."""
        from_file, from_meta = "header read from the file", "header from the reader's metadata"
        complete_json = scheme == "json" and f"{tag_for_keyword('PhotometricInterpretation'):08X}" in meta
        if self.header == DicomHeaderSource.FILE:
            return _header_from_file(filename), from_file
        if self.header == DicomHeaderSource.META:
            if scheme == "gdcm":
                return _header_from_gdcm(meta), from_meta
            pruned = scheme == "json" or (
                scheme == "none"
                and isinstance(filename, (str, Path))
                and Path(filename).is_file()
                and is_dicom(filename)
            )
            if pruned and not complete_json:
                raise ValueError(
                    f"'{filename}': the metadata lacks {_tag_text('PhotometricInterpretation')}; PydicomReader prunes "
                    "metadata by default: use PydicomReader(prune_metadata=False) or header='auto'"
                )
            return (_header_from_json(meta), from_meta) if complete_json else (None, "")
        if complete_json:
            return _header_from_json(meta), from_meta
        if isinstance(filename, (str, Path)) and Path(filename).is_file() and is_dicom(filename):
            logger.debug("reading the DICOM header of %s from the file", filename)
            return _header_from_file(filename), from_file
        if scheme == "gdcm":
            return _header_from_gdcm(meta), from_meta
        return None, ""

    def _normalize_dicom(
        self, x: torch.Tensor, ds: Dataset, scheme: str, where: str, bit_depth: int | None
    ) -> torch.Tensor:
        """``where``: the file name and the header source, for messages."""

        def need(keyword: str) -> Any:
            if keyword not in ds or ds[keyword].value in (None, "", []):
                if keyword in _VOI_TAGS:
                    fix = "use voi='auto' (VOI LUT, else window, else bit range), 'bit_range' or 'min_max'"
                else:
                    fix = "check that the file is a complete DICOM image (Image Pixel module)"
                if where.endswith("(header from the reader's metadata)"):
                    fix += ", or header='file' to read the header from the file"
                raise ValueError(f"{where}: DICOM tag {_tag_text(keyword)} is missing; {fix}")
            return ds[keyword].value

        pi = str(need("PhotometricInterpretation")).strip().upper()
        if pi not in ("MONOCHROME1", "MONOCHROME2"):
            raise ValueError(
                f"{where}: {_tag_text('PhotometricInterpretation')} is '{pi}'; only MONOCHROME1/MONOCHROME2 "
                "radiographs can be normalised (convert colour images to grey first)"
            )
        if bit_depth is not None:
            warnings.warn(f"{where}: bit_depth={bit_depth} is ignored for DICOM, which has BitsStored", stacklevel=3)
        if ds.get("ModalityLUTSequence"):
            logger.warning("%s has a Modality LUT Sequence, which MONAI's readers do not apply", where)
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)

        def stored_range() -> tuple[float, float]:
            bits, signed = int(need("BitsStored")), int(ds.get("PixelRepresentation", 0) or 0) == 1
            return (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1) if signed else (0.0, 2.0**bits - 1)

        if pi == "MONOCHROME1" and self._reader_inverted(ds, scheme):
            lo, hi = stored_range()
            x = slope * (lo + hi) + 2.0 * intercept - x

        voi = self.voi
        if voi == RadiographVOI.AUTO:
            if ds.get("VOILUTSequence"):
                voi = RadiographVOI.VOI_LUT
            elif ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
                voi = RadiographVOI.WINDOW
            else:
                voi = RadiographVOI.BIT_RANGE
        if voi == RadiographVOI.VOI_LUT:
            items = need("VOILUTSequence")
            first, table, bits = _lut_table(self._pick(items, "VOILUTSequence", where), self._signed(ds), where)
            idx = (torch.floor(x) - first).clamp(0, table.size - 1).long()
            y = torch.as_tensor(table, device=x.device)[idx] / (2.0**bits - 1)
        elif voi == RadiographVOI.WINDOW:
            c = float(self._pick(need("WindowCenter"), "WindowCenter", where))
            w = float(self._pick(need("WindowWidth"), "WindowWidth", where))
            y = self._window(x, c, w, str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper(), where)
        elif voi == RadiographVOI.BIT_RANGE:
            lo, hi = sorted(slope * v + intercept for v in stored_range())
            y = ScaleIntensityRange(lo, hi, 0.0, 1.0, clip=True, dtype=None)(x)
        else:
            y = rescale_array(x, 0.0, 1.0, dtype=None)
        return 1.0 - y if pi == "MONOCHROME1" else y

    def _reader_inverted(self, ds: Dataset, scheme: str) -> bool:
        if self.loaded_polarity != LoadedPolarity.AUTO:
            return self.loaded_polarity == LoadedPolarity.INVERTED
        if scheme != "gdcm":
            return False
        bits_stored, bits_allocated = ds.get("BitsStored"), ds.get("BitsAllocated")
        partial = bits_stored is not None and bits_allocated is not None and int(bits_stored) < int(bits_allocated)
        return not (self._signed(ds) and partial)

    @staticmethod
    def _signed(ds: Dataset) -> bool:
        return int(ds.get("PixelRepresentation", 0) or 0) == 1

    def _pick(self, values: Any, keyword: str, where: str) -> Any:
        values = [values] if isinstance(values, (str, bytes, int, float)) else list(values)
        if self.window_index >= len(values):
            raise ValueError(
                f"{where}: window_index={self.window_index} but {_tag_text(keyword)} has {len(values)} value(s)"
            )
        return values[self.window_index]

    @staticmethod
    def _window(x: torch.Tensor, c: float, w: float, function: str, where: str) -> torch.Tensor:
        if function == "SIGMOID":
            if w <= 0:
                raise ValueError(f"{where}: {_tag_text('WindowWidth')} is {w}; SIGMOID needs a width > 0")
            return torch.sigmoid(4.0 * (x - c) / w)
        if function == "LINEAR_EXACT":
            if w <= 0:
                raise ValueError(f"{where}: {_tag_text('WindowWidth')} is {w}; LINEAR_EXACT needs a width > 0")
            return ScaleIntensityRange(c - w / 2, c + w / 2, 0.0, 1.0, clip=True, dtype=None)(x)
        if function != "LINEAR":
            raise ValueError(
                f"{where}: {_tag_text('VOILUTFunction')} is '{function}'; expected LINEAR, LINEAR_EXACT or SIGMOID"
            )
        if w < 1:
            raise ValueError(f"{where}: {_tag_text('WindowWidth')} is {w}; the LINEAR window needs a width >= 1")
        if w == 1:  # PS3.3 C.11.2.1.2.1 degenerates to a threshold at c - 0.5
            return (x > c - 0.5).to(x.dtype)
        return ScaleIntensityRange(c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2, 0.0, 1.0, clip=True, dtype=None)(x)

    def _normalize_plain(
        self, x: torch.Tensor, img: NdarrayOrTensor, meta: Mapping, filename: Any, bit_depth: int | None
    ) -> torch.Tensor:
        if self.voi in (RadiographVOI.VOI_LUT, RadiographVOI.WINDOW):
            raise ValueError(
                f"'{filename}' has no DICOM header (no DICOM tags in its metadata and not a DICOM file), but "
                f"voi='{self.voi}' needs one; use voi='auto', 'bit_range' or 'min_max' for PNG/JPEG images"
            )
        if self.voi == RadiographVOI.MIN_MAX:
            return rescale_array(x, 0.0, 1.0, dtype=None)
        bits = bit_depth or self._plain_bits(x, img, meta, filename)
        return x / (2.0**bits - 1)

    def _plain_bits(self, x: torch.Tensor, img: NdarrayOrTensor, meta: Mapping, filename: Any) -> int:
        """The bit depth of a PNG/JPEG without ``bit_depth``: its ``sBIT`` chunk, else its container (module
        docstring); warns when the values contradict ``sBIT`` or use at most 12 of 16 bits."""
        container = self._infer_bit_depth(img, meta, filename)
        peak = float(x.max()) if x.numel() else 0.0
        is_file = isinstance(filename, (str, Path)) and Path(filename).is_file()
        significant = png_significant_bits(filename) if is_file else None
        if significant is not None and significant < container:
            if peak <= 2.0**significant - 1:
                return significant
            warnings.warn(
                f"'{filename}': its PNG sBIT chunk says {significant} significant bits but it holds values up to "
                f"{peak:.0f}; scaled by its {container}-bit container instead. Fix the sBIT chunk or pass bit_depth.",
                stacklevel=4,
            )
        elif significant is None and container == 16 and peak < 2.0**_LOW_BITS:
            warnings.warn(
                f"'{filename}': a 16-bit image whose values are all below 2**{_LOW_BITS} (maximum {peak:.0f}), so at "
                f"most {_LOW_BITS} bits are used; it is scaled by 2**16 - 1 into [0, {peak / 65535:.4f}]. If the data "
                f"are {_LOW_BITS}-bit (e.g. PadChest, column BitsStored_DICOM), pass bit_depth={_LOW_BITS} "
                "(NormalizeRadiographd(bit_depth_key=...) for a per-image value) or write an sBIT chunk; or use "
                "voi='min_max'.",
                stacklevel=4,
            )
        return container

    @staticmethod
    def _infer_bit_depth(img: NdarrayOrTensor, meta: Mapping, filename: Any) -> int:
        mode = meta.get("mode")
        if isinstance(mode, str):
            if mode.startswith("I;16"):
                return 16
            if mode in _PIL_MODE_BITS:
                return _PIL_MODE_BITS[mode]
        dtype = str(img.dtype).replace("torch.", "")
        if dtype in ("uint8", "uint16"):
            return 8 if dtype == "uint8" else 16
        if isinstance(filename, (str, Path)) and Path(filename).is_file():
            try:
                with Image.open(filename) as pil:
                    mode = pil.mode
            except (UnidentifiedImageError, OSError):
                mode = None
            if mode is not None and mode.startswith("I;16"):
                return 16
            if mode in _PIL_MODE_BITS:
                return _PIL_MODE_BITS[mode]
        raise ValueError(
            f"'{filename}': cannot tell the bit depth of this non-DICOM image (dtype {dtype}, PIL mode {mode}); "
            "pass bit_depth=8 or 16, load with LoadImage(dtype=None), or use voi='min_max'"
        )


class NormalizeRadiographd(MapTransform):
    """Dictionary version of :class:`NormalizeRadiograph`; the metadata is each key's ``MetaTensor.meta``.

    Args:
        keys: keys of the images to normalise.
        voi, window_index, loaded_polarity, header, bit_depth: see :class:`NormalizeRadiograph`.
        bit_depth_key: key of the item holding the bit depth of its PNG/JPEG (e.g. a datalist column from PadChest's
            ``BitsStored_DICOM``); used over ``bit_depth`` when the item has it and it is not None/NaN. Defaults to
            None (not used).
        allow_missing_keys: do not raise if a key is missing. Defaults to False.

    Raises:
        ValueError: the item's ``bit_depth_key`` value is not an integer in 1..32 (the message names the key and the
            image).
    """

    backend = NormalizeRadiograph.backend

    def __init__(
        self,
        keys: KeysCollection,
        voi: str | Enum = RadiographVOI.AUTO,
        window_index: int = 0,
        loaded_polarity: str | Enum = LoadedPolarity.AUTO,
        header: str | Enum = DicomHeaderSource.AUTO,
        bit_depth: int | None = None,
        bit_depth_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.normalizer = NormalizeRadiograph(voi, window_index, loaded_polarity, header, bit_depth)
        self.bit_depth_key = bit_depth_key

    def _item_bit_depth(self, d: Mapping, key: Hashable) -> int | None:
        value = d.get(self.bit_depth_key) if self.bit_depth_key is not None else None
        if value is None or (isinstance(value, float) and value != value):  # absent or NaN: not known for this item
            return None
        try:
            return _checked_bit_depth(float(value) if isinstance(value, str) else value)
        except ValueError as e:
            raise ValueError(
                f"item key '{self.bit_depth_key}' (bit depth of '{key}') is {value!r}, not an integer in 1..32"
            ) from e

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer(d[key], bit_depth=self._item_bit_depth(d, key))
        return d
