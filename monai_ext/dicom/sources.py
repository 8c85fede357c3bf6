# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The source DICOM instances of an inference case, in the order the bundle's volume holds them.

A DICOM result (SEG, SR) must reference the instances the model saw, and a slice index ``k`` of the inferred volume
must map to the instance that MONAI read as slice ``k``. For a DICOM series folder, MONAI's ``ITKReader`` (GDCM) sorts
the slices by ``ImagePositionPatient`` projected on the slice normal (the cross product of the two
``ImageOrientationPatient`` cosines); :func:`read_source_instances` sorts the same way, so
``read_source_instances(folder)[k]`` is slice ``k`` of the volume (:mod:`monai_ext.demo.dicom_series` documents the
axis order: volume ``X`` = DICOM column, ``Y`` = DICOM row, ``Z`` = slice along the normal). A single DICOM file (a
radiograph, a fundus photograph) is one instance.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from monai_ext.data.inference.filetypes import is_dicom_file

__all__ = ["is_dicom_source", "was_dicom_input", "read_source_instances", "slice_normal_positions"]

_DICOM_SUFFIXES = {".dcm", ".dicom", ""}

_MAX_NAMED = 5


def is_dicom_source(path: str | os.PathLike) -> bool:
    """Whether an inference case's ``image`` is DICOM: a DICOM file, or a folder directly holding DICOM files."""
    p = Path(path)
    if p.is_file():
        return is_dicom_file(p)
    if p.is_dir():
        return any(f.is_file() and not f.name.startswith(".") and is_dicom_file(f) for f in p.iterdir())
    return False


def was_dicom_input(image: str | os.PathLike) -> bool:
    """Whether a case's recorded input (``"image"`` of its per-case result) is DICOM: a DICOM file or a folder of
    DICOM files; when the path is gone, judged by its name (suffix ``.dcm``, ``.dicom`` or none: a series folder or a
    DICOM without suffix), so that a DICOM result whose source disappeared is reported rather than skipped."""
    path = Path(image)
    if not str(image):
        return False
    if path.exists():
        return is_dicom_source(path)
    return path.suffix.lower() in _DICOM_SUFFIXES


def slice_normal_positions(instances: list[Dataset]) -> np.ndarray:
    """Position (mm) of each instance along the slice normal of the first: ``ImagePositionPatient . (r x c)``.

    Raises:
        ValueError: an instance lacks ``ImagePositionPatient`` or ``ImageOrientationPatient`` (names its SOP
            instance UID).
    """
    for ds in instances:
        if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
            raise ValueError(
                f"DICOM instance {ds.get('SOPInstanceUID', '?')} lacks ImagePositionPatient (0020,0032) or "
                "ImageOrientationPatient (0020,0037); the slices of its series cannot be ordered. Re-export the "
                "series with its geometry."
            )
    cosines = np.asarray([float(v) for v in instances[0].ImageOrientationPatient], dtype=np.float64)
    normal = np.cross(cosines[:3], cosines[3:])
    return np.asarray([np.asarray([float(v) for v in ds.ImagePositionPatient]) @ normal for ds in instances])


def read_source_instances(path: str | os.PathLike, pixels: bool = False) -> list[Dataset]:
    """The DICOM instances of the case at ``path``: ``[dataset]`` for a DICOM file; for a series folder, every DICOM
    file directly in it (hidden files and ``DICOMDIR`` left out), sorted along the slice normal as MONAI's
    ``ITKReader`` stacks them.

    Args:
        path: a DICOM file or a folder holding one DICOM series.
        pixels: read the pixel data too. Defaults to False (headers only, ``stop_before_pixels``).

    Returns:
        The datasets; a folder's are in volume slice order (index ``k`` = slice ``k`` along ``Z``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not DICOM, a file cannot be parsed (named), the folder holds several
            ``SeriesInstanceUID`` (listed) or instances without geometry.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"source DICOM '{p}' not found; it was the case's input, was it moved or deleted?")
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    files = [f for f in files if is_dicom_file(f)]
    if not files:
        raise ValueError(f"'{p}' is not DICOM: no DICOM file (suffix .dcm/.dicom or the DICM preamble) found.")
    instances = []
    for f in files:
        try:
            instances.append(pydicom.dcmread(f, stop_before_pixels=not pixels))
        except Exception as e:  # noqa: BLE001 -- any pydicom parse failure names the file
            raise ValueError(f"source DICOM '{f}' cannot be read ({type(e).__name__}: {e}).") from e
    if p.is_file():
        return instances
    series = sorted({str(ds.get("SeriesInstanceUID", "")) for ds in instances})
    if len(series) > 1:
        raise ValueError(
            f"DICOM folder '{p}' holds {len(series)} series {series[:_MAX_NAMED]}; put each series in its own folder."
        )
    if len(instances) == 1:
        return instances
    order = np.argsort(slice_normal_positions(instances), kind="stable")
    return [instances[k] for k in order]
