# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""File types of inference inputs: which suffixes mean DICOM, radiograph images and NIfTI volumes, and which files
hold DICOM whatever their name."""

from __future__ import annotations

from pathlib import Path

from pydicom.misc import is_dicom

__all__ = ["DICOM_SUFFIXES", "RADIOGRAPH_SUFFIXES", "NIFTI_SUFFIXES", "IGNORED_NAMES", "is_dicom_file", "strip_suffix"]

DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom")
"""File suffixes of DICOM files (case-insensitive); a file with another name is DICOM when it holds the preamble."""

RADIOGRAPH_SUFFIXES: tuple[str, ...] = (*DICOM_SUFFIXES, ".png", ".jpg", ".jpeg")
"""File suffixes taken as radiograph images (case-insensitive); any other file is taken when it holds the DICOM
preamble."""

NIFTI_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii")
"""File suffixes of NIfTI volumes (case-insensitive)."""

IGNORED_NAMES: tuple[str, ...] = ("DICOMDIR",)
"""File names never taken as a case (a DICOMDIR holds the DICOM preamble but no image)."""


def is_dicom_file(path: Path) -> bool:
    """Whether ``path`` is a DICOM file: not a ``DICOMDIR``, and suffix ``.dcm``/``.dicom`` or the ``DICM`` preamble
    at byte 128."""
    if path.name in IGNORED_NAMES:
        return False
    return path.suffix.lower() in DICOM_SUFFIXES or is_dicom(path)


def strip_suffix(name: str, suffixes: tuple[str, ...]) -> str | None:
    """``name`` without the first of ``suffixes`` it ends with (case-insensitive, never leaving an empty name), or
    None when it ends with none of them.

    Example:
        >>> strip_suffix("CT1.NII.GZ", NIFTI_SUFFIXES)
        'CT1'
    """
    for suffix in suffixes:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None
