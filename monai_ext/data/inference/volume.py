# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The volume input kind: NIfTI files and DICOM series folders are cases, a case's result is the mask
``<case_id>_seg.nii.gz``.

What is a case:

- each NIfTI file (``.nii``, ``.nii.gz``, any case): ``image`` is the file, and the NIfTI suffix is left out of the
  case id;
- each folder that directly holds DICOM files (suffix ``.dcm``/``.dicom``, or the ``DICM`` preamble at byte 128;
  ``DICOMDIR`` and hidden files are left out): ``image`` is the folder, read by MONAI's ``ITKReader`` (GDCM), which
  sorts the slices by ``ImagePositionPatient`` along the slice normal, so any slice orientation and any file
  naming work. An input folder that is itself a series takes its own name as case id.

A DICOM case must be one series. MONAI's readers cannot read one series out of a folder holding several: on a folder,
``ITKReader`` warns and reads only the first series (``series_name`` is a reader-wide setting, not a per-case one)
and ``PydicomReader`` stacks every DICOM file of the folder, sorted by ``InstanceNumber``; on a list of files both
readers stack the files as channels, not as a volume. A folder whose files belong to several ``SeriesInstanceUID``
is therefore reported in ``skipped.csv`` with the UIDs and "put each series in its own folder", as is a folder with
a single slice (not a volume), a DICOM file whose header cannot be read or whose pixel data is shorter than its header
promises (:mod:`~monai_ext.data.inference.dicom_pixels`), and a series whose slices are not evenly spaced along one
normal: a missing slice, a duplicate position or uneven steps (:mod:`~monai_ext.data.inference.series_geometry`),
which the readers would put on a uniform grid, misplacing slices. Their headers are read when the folder is found, so
the header check only parses NIfTI headers (and checks that an uncompressed ``.nii`` is as long as its header says).

Reader: the bundle's ``LoadImaged`` keeps MONAI's automatic choice (``reader=None``), which picks ``NibabelReader``
for ``.nii``/``.nii.gz`` and ``ITKReader`` for a folder (as long as the environment variable ``MONAI_DICOM_READER``
does not promote another DICOM reader); the decode check reads with the same choice and checks that the volume is
``1 X Y Z``. Both give a float32 image in HU with a RAS affine (:mod:`monai_ext.demo.dicom_series` documents the
axis order).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monai.data import ImageReader
from monai.transforms import LoadImage
from pydicom.dataset import Dataset

from monai_ext.data.inference.base import Case, CaseKind
from monai_ext.data.inference.dicom_pixels import pixel_data_error, read_dicom_header
from monai_ext.data.inference.filetypes import NIFTI_SUFFIXES, is_dicom_file, strip_suffix
from monai_ext.data.inference.series_geometry import slice_positions_error
from monai_ext.transforms.finite import nonfinite_summary

__all__ = ["VolumeKind"]


def _is_nifti(path: Path) -> bool:
    return strip_suffix(path.name, NIFTI_SUFFIXES) is not None


def _series_error(files: Sequence[Path]) -> str | None:
    """Why the DICOM files of a folder are not one volume (unreadable header, several series, one slice, a file
    shorter than its header says, slices not evenly spaced along one normal), or None."""
    series: dict[str, list[str]] = {}
    headers: list[tuple[str, Dataset]] = []
    frames = 1
    for f in files:
        try:
            ds = read_dicom_header(f)
        except Exception as e:  # noqa: BLE001 -- any pydicom failure marks the series unreadable
            return f"cannot read the DICOM header of '{f}': {type(e).__name__}: {e}"
        series.setdefault(str(ds.get("SeriesInstanceUID", "<no SeriesInstanceUID>")), []).append(f.name)
        frames = max(frames, int(ds.get("NumberOfFrames", 1) or 1))
        headers.append((f.name, ds))
    if len(series) > 1:
        listed = "; ".join(f"{uid} ({len(names)} files, e.g. {names[0]})" for uid, names in sorted(series.items()))
        return (
            f"the folder holds {len(series)} DICOM series: {listed}. MONAI's readers read one series per folder; "
            "put each series in its own folder."
        )
    if len(files) == 1 and frames < 2:
        return f"the folder holds a single DICOM slice ('{files[0].name}'), not a CT volume."
    for f, (_, ds) in zip(files, headers):
        error = pixel_data_error(ds, f)
        if error is not None:
            return error
    return slice_positions_error(files[0].parent, headers)


def _nifti_size_error(path: str) -> str | None:
    """Error text when an uncompressed NIfTI file is shorter than its header's shape and data type need, else
    None (a compressed ``.nii.gz`` cannot be measured without decompressing it; the decode check reads it).

    Raises:
        Exception: whatever ``nibabel.load`` raises on a header it cannot parse.
    """
    image = nib.load(path)
    if not path.lower().endswith(".nii") or not hasattr(image, "dataobj") or not hasattr(image.dataobj, "offset"):
        return None
    header = image.header
    needed = int(image.dataobj.offset) + int(np.prod(header.get_data_shape(), dtype=np.int64)) * int(
        header.get_data_dtype().itemsize
    )
    size = os.path.getsize(path)
    if size < needed:
        return (
            f"'{path}' is shorter than its header says: shape {tuple(header.get_data_shape())} of "
            f"{header.get_data_dtype()} from byte {int(image.dataobj.offset)} needs {needed} bytes, the file has "
            f"{size}; re-export or re-download it."
        )
    return None


class VolumeKind(CaseKind):
    """CT volumes for batch segmentation: NIfTI files and DICOM series folders are cases (see the module docstring);
    the result of a case is the mask of :class:`monai_ext.handlers.mask_writer.SegmentationMaskWriter`."""

    name = "volume"
    noun = "volume"
    result_suffix = "_seg.nii.gz"
    wanted = "NIfTI file (.nii, .nii.gz) and no DICOM file"
    accepted = "accepted: NIfTI files, and folders directly holding DICOM files"
    inputs_hint = (
        "Give a folder (searched recursively for NIfTI files and DICOM series folders), a .txt list, a NIfTI file, or "
        "a list of NIfTI files and DICOM series folders."
    )
    files_hint = "NIfTI files or series folders"

    def cases_in_folder(self, folder: Path, files: Sequence[Path]) -> list[Case]:
        """Every NIfTI file of ``files`` is a case, and ``folder`` itself is one when it holds DICOM files (with the
        reason it cannot be read when they are not one series of several slices)."""
        cases = [Case(p) for p in files if _is_nifti(p)]
        dicoms = [p for p in files if not _is_nifti(p) and is_dicom_file(p)]
        if dicoms:
            cases.append(Case(folder, _series_error(dicoms)))
        return cases

    def listed_cases(self, paths: Sequence[Path], source: str) -> list[Case]:
        """Each listed path must be a NIfTI file or a folder directly holding DICOM files, checked in order.

        Raises:
            FileNotFoundError: a listed path does not exist.
            ValueError: a listed folder holds no DICOM file directly, or a listed file is not NIfTI (a DICOM file:
                list its series folder instead).
        """
        return [self._listed_case(p, source) for p in paths]

    def _listed_case(self, path: Path, source: str) -> Case:
        if not path.exists():
            raise FileNotFoundError(
                f"input '{path}' listed in {source} does not exist. List NIfTI files (.nii, .nii.gz) or DICOM series "
                "folders (one series per folder)."
            )
        if path.is_dir():
            dicoms = sorted(
                p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and is_dicom_file(p)
            )
            if not dicoms:
                raise ValueError(
                    f"folder '{path}' listed in {source} holds no DICOM file directly; list DICOM series folders, or "
                    "pass a folder as the only input to search it recursively."
                )
            return Case(path, _series_error(dicoms))
        if not _is_nifti(path):
            hint = " (a DICOM file: list its series folder instead)" if is_dicom_file(path) else ""
            raise ValueError(f"'{path}' listed in {source} is not a NIfTI file (.nii, .nii.gz){hint}.")
        return Case(path)

    def id_path(self, relative: str) -> str:
        """``relative`` without its NIfTI suffix."""
        return strip_suffix(relative, NIFTI_SUFFIXES) or relative

    def header_error(self, path: str) -> str | None:
        """Error text when a NIfTI header cannot be parsed or an uncompressed ``.nii`` is shorter than its header's
        shape needs, else None (a series' headers, pixel data lengths and slice positions were checked when it was
        found)."""
        if Path(path).is_dir():
            return None
        try:
            return _nifti_size_error(path)
        except Exception as e:  # noqa: BLE001 -- any nibabel failure marks the case unreadable
            return f"{type(e).__name__}: {e}"

    def loader(self, reader: str | type | ImageReader | None) -> LoadImage:
        """``LoadImage(reader, image_only=True, ensure_channel_first=True)``."""
        return LoadImage(reader=reader, image_only=True, ensure_channel_first=True)

    def loaded_error(self, image: Any) -> str | None:
        """Error text unless the decoded image is a one-channel 3D volume (``1 X Y Z``) of finite values.

        A volume holding NaN or infinite voxels is refused (see :mod:`monai_ext.transforms.finite`): the network
        answers nothing on them, so the mask would be silently empty there.
        """
        shape = tuple(image.shape)
        if len(shape) != 4 or shape[0] != 1:
            return f"not a one-channel 3D volume: loaded shape (channel first) {shape}, expected (1, X, Y, Z)."
        problem = nonfinite_summary(image)
        if problem is not None:
            return (
                f"the volume holds {problem} voxels; NaN/infinite voxels cannot be segmented. Fix the export (or "
                "replace them with a value you choose) and run again."
            )
        return None
