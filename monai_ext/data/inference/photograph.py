# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The photograph input kind: colour (or grey) photographs such as fundus images, one case per DICOM, PNG or JPEG
file; the result of a case is ``<case_id>.json``.

Files are found exactly as radiographs are (:mod:`~monai_ext.data.inference.radiograph`: suffix ``.dcm``, ``.dicom``,
``.png``, ``.jpg``, ``.jpeg`` or the DICOM preamble). The header check adds to the radiograph one what
:class:`monai_ext.transforms.LoadPhotographd` can turn into a ``3 x H x W`` image in [0, 1]:

- DICOM: PhotometricInterpretation in :data:`PHOTOGRAPH_PHOTOMETRICS` (``RGB``, ``YBR_FULL``, ``YBR_FULL_422``, 3
  samples per pixel; ``MONOCHROME2``, 1 sample), one frame, BitsAllocated 8 or 16;
- PNG/JPEG: PIL mode in :data:`PHOTOGRAPH_MODES` (``L``, ``LA``, ``RGB``, ``RGBA``; 8 bits per sample).

Anything else (``PALETTE COLOR``, ``MONOCHROME1``, multi-frame, CMYK or 16-bit PNG, ...) is reported as unreadable
with the reason and so listed in ``skipped.csv`` by :func:`~monai_ext.data.inference.prepare_inference_datalist`
rather than stopping the run. The decode check reads a case with :class:`monai_ext.transforms.LoadPhotograph`, as the
pipeline does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monai.data import ImageReader
from PIL import Image

from monai_ext.data.inference.dicom_pixels import read_dicom_header
from monai_ext.data.inference.radiograph import RadiographKind, _is_dicom_path

__all__ = ["PHOTOGRAPH_PHOTOMETRICS", "PHOTOGRAPH_MODES", "PhotographKind", "photograph_header_error"]

PHOTOGRAPH_PHOTOMETRICS: dict[str, int] = {"RGB": 3, "YBR_FULL": 3, "YBR_FULL_422": 3, "MONOCHROME2": 1}
"""DICOM PhotometricInterpretation values a photograph may have, with their SamplesPerPixel."""

PHOTOGRAPH_MODES: tuple[str, ...] = ("L", "LA", "RGB", "RGBA")
"""PIL modes of a PNG/JPEG photograph (8 bits per sample; alpha is dropped when loading)."""


def _dicom_photograph_error(path: Path) -> str | None:
    try:
        ds = read_dicom_header(path)
    except Exception as e:  # noqa: BLE001 -- any pydicom failure: the header cannot be read
        return f"cannot read the DICOM header of '{path}': {type(e).__name__}: {e}"
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in PHOTOGRAPH_PHOTOMETRICS:
        return (
            f"'{path}': PhotometricInterpretation '{photometric}' is not supported for photographs (supported: "
            f"{list(PHOTOGRAPH_PHOTOMETRICS)}); re-export the image as RGB."
        )
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != PHOTOGRAPH_PHOTOMETRICS[photometric]:
        return f"'{path}': SamplesPerPixel {samples} does not fit PhotometricInterpretation '{photometric}'."
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        return f"'{path}' holds {frames} frames; give one photograph per file."
    bits = ds.get("BitsAllocated")
    if bits not in (8, 16):
        return f"'{path}': BitsAllocated {bits} is not supported for photographs (8 or 16)."
    return None


def photograph_header_error(path: str | Path) -> str | None:
    """Why the file ``path`` is not a photograph :class:`monai_ext.transforms.LoadPhotographd` can read (see the
    module docstring), or None. Reads the header only (DICOM tags, PIL's mode)."""
    p = Path(path)
    if _is_dicom_path(p):
        return _dicom_photograph_error(p)
    try:
        with Image.open(p) as img:
            mode = img.mode
    except Exception as e:  # noqa: BLE001 -- any PIL failure: unreadable
        return f"{type(e).__name__}: {e}"
    if mode not in PHOTOGRAPH_MODES:
        return (
            f"'{path}': image mode '{mode}' is not supported for photographs (supported: {list(PHOTOGRAPH_MODES)}, "
            "8 bits per sample); convert it to 8-bit RGB."
        )
    return None


class PhotographKind(RadiographKind):
    """Colour photographs for batch classification (see the module docstring): found as radiographs are, checked for
    a colour layout :class:`monai_ext.transforms.LoadPhotographd` reads; the result of a case is the JSON of
    :class:`monai_ext.handlers.prediction_writer.PredictionWriter`."""

    name = "photograph"
    noun = "image"
    result_suffix = ".json"
    wanted = "DICOM/PNG/JPEG photograph"

    def header_error(self, path: str) -> str | None:
        """The radiograph header check (DICOM pixel data length, PIL ``verify``), then
        :func:`photograph_header_error`."""
        return super().header_error(path) or photograph_header_error(path)

    def loader(self, reader: str | type | ImageReader | None) -> Any:
        """:class:`monai_ext.transforms.LoadPhotograph`, the pipeline's loader (``reader`` is not used: the loader
        picks ``PydicomReader`` or ``PILReader`` by file type)."""
        from monai_ext.transforms.photograph import LoadPhotograph  # lazy: transforms import this package

        return LoadPhotograph()

    def loaded_error(self, image: Any) -> str | None:
        """Error text when the loaded image is not ``3 x H x W`` in [0, 1], else None."""
        shape = tuple(getattr(image, "shape", ()))
        if len(shape) != 3 or shape[0] != 3:
            return f"the photograph loaded as shape {shape}, not 3 x H x W."
        return None
