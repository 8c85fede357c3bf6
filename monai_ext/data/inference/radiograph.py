# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The radiograph input kind: every DICOM, PNG or JPEG file is a case, its result is ``<case_id>.json``.

A file is a radiograph when its suffix is ``.dcm``, ``.dicom``, ``.png``, ``.jpg`` or ``.jpeg`` (any case), or when it
holds the DICOM preamble (``DICM`` at byte 128) whatever its name; ``DICOMDIR`` is never a case. The header check reads
a DICOM with :func:`~monai_ext.data.inference.dicom_pixels.dicom_pixel_data_error` (the tags, and whether the pixel
data element is present and as long as Rows, Columns, SamplesPerPixel, NumberOfFrames and BitsAllocated promise, and
the file that long) and a PNG/JPEG with PIL's ``verify`` (chunk CRCs): fast, but a DICOM with a valid preamble and
garbage after it, or corrupt compressed pixel data, passes. The decode check runs the header check, then reads the
whole image with ``LoadImage(reader)``, as the pipeline will, which catches corrupt pixel data too, and checks that a
DICOM decoded to as many values as its header promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai.utils import ImageMetaKey
from PIL import Image
from pydicom.misc import is_dicom

from monai_ext.data.inference.base import Case, CaseKind
from monai_ext.data.inference.dicom_pixels import decoded_size_error, dicom_pixel_data_error
from monai_ext.data.inference.filetypes import DICOM_SUFFIXES, IGNORED_NAMES, RADIOGRAPH_SUFFIXES

__all__ = ["RadiographKind"]

_MAX_NAMED = 5


def _is_dicom_path(path: Path) -> bool:
    """Whether ``path`` is read as DICOM: suffix ``.dcm``/``.dicom``, or the ``DICM`` preamble at byte 128."""
    return path.suffix.lower() in DICOM_SUFFIXES or is_dicom(path)


def _is_radiograph(path: Path) -> bool:
    """Whether ``path`` is taken as an image: a radiograph suffix, or the ``DICM`` preamble at byte 128."""
    return path.name not in IGNORED_NAMES and (path.suffix.lower() in RADIOGRAPH_SUFFIXES or is_dicom(path))


class RadiographKind(CaseKind):
    """Radiographs for batch classification: each DICOM/PNG/JPEG file is a case (see the module docstring); the
    result of a case is the JSON of :class:`monai_ext.handlers.prediction_writer.PredictionWriter`."""

    name = "radiograph"
    noun = "image"
    result_suffix = ".json"
    wanted = "DICOM/PNG/JPEG image"
    accepted = f"accepted: DICOM preamble or suffix {list(RADIOGRAPH_SUFFIXES)}"
    inputs_hint = (
        "Give a folder of DICOM/PNG/JPEG images (searched recursively), a .txt file listing image paths, or image "
        "files."
    )
    files_hint = "image files"

    def cases_in_folder(self, folder: Path, files: Sequence[Path]) -> list[Case]:
        """Every image of ``files`` is a case; other files are ignored."""
        return [Case(f) for f in files if _is_radiograph(f)]

    def listed_cases(self, paths: Sequence[Path], source: str) -> list[Case]:
        """Each listed path must be an image file; every offending path is named (up to five per message).

        Raises:
            FileNotFoundError: listed paths do not exist.
            ValueError: listed paths are folders, or files that are neither DICOM nor PNG/JPEG.
        """
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            more = f" and {len(missing) - _MAX_NAMED} more" if len(missing) > _MAX_NAMED else ""
            raise FileNotFoundError(
                f"{len(missing)} input path(s) listed in {source} do not exist: {missing[:_MAX_NAMED]}{more}."
            )
        folders = [str(p) for p in paths if p.is_dir()]
        if folders:
            raise ValueError(
                f"{source} lists folder(s) {folders[:_MAX_NAMED]}; list image files, or pass one folder as the input."
            )
        unsupported = [str(p) for p in paths if not _is_radiograph(p)]
        if unsupported:
            raise ValueError(
                f"{source} lists file(s) that are neither DICOM (preamble 'DICM' at byte 128, or suffix .dcm/.dicom) "
                f"nor PNG/JPEG (suffix .png/.jpg/.jpeg): {unsupported[:_MAX_NAMED]}."
            )
        return [Case(p) for p in paths]

    def header_error(self, path: str) -> str | None:
        """Error text if the header cannot be read or, for a DICOM (by suffix or preamble), promises more pixel data
        than the file holds (see :func:`~monai_ext.data.inference.dicom_pixels.dicom_pixel_data_error`); PNG/JPEG
        with PIL's ``verify``; else None."""
        p = Path(path)
        if _is_dicom_path(p):
            return dicom_pixel_data_error(p)
        try:
            with Image.open(p) as img:
                img.verify()
        except Exception as e:  # noqa: BLE001 -- any failure of a third-party reader marks the case unreadable
            return f"{type(e).__name__}: {e}"
        return None

    def loaded_error(self, image: Any) -> str | None:
        """Error text when a decoded DICOM has not as many values as its header promises (Rows, Columns,
        SamplesPerPixel, NumberOfFrames), else None."""
        meta = getattr(image, "meta", {})
        filename = meta.get(ImageMetaKey.FILENAME_OR_OBJ)
        if not isinstance(filename, (str, Path)) or not Path(filename).is_file() or not _is_dicom_path(Path(filename)):
            return None
        return decoded_size_error(filename, int(image.numel()) if hasattr(image, "numel") else int(image.size))
