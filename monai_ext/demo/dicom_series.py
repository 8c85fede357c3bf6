# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Write a CT volume as a real DICOM series (one CT Image Storage file per slice) with pydicom, for tests and demos.

Axis conventions (the same as the demo NIfTI volumes of :mod:`monai_ext.demo.covid_ct`): the volume is
``X Y Z`` with ``X`` = image column (DICOM row direction, ``ImageOrientationPatient[:3]``), ``Y`` = image row (DICOM
column direction, ``ImageOrientationPatient[3:]``) and ``Z`` = slice index along the slice normal (row direction x
column direction). Slice ``k`` holds ``volume[:, :, k].T`` as its ``Rows x Columns`` pixel data and lies at
``ImagePositionPatient = origin + k * dz * normal`` (LPS, mm).

MONAI reads such a folder back in the same ``X Y Z`` order: ``LoadImage(reader="ITKReader")`` (GDCM sorts the files
by position along the normal) and ``LoadImage(reader="PydicomReader")`` (sorts by ``InstanceNumber``; its default
``swap_ij=True``) both return ``volume`` as ``1 X Y Z`` float32 HU (rescale slope/intercept applied) with the RAS
affine ``diag(-1, -1, 1) @ [dx * row_dir | dy * col_dir | dz * normal | origin]``; for the default axial orientation
that is ``diag(-dx, -dy, dz)`` with translation ``(-origin_x, -origin_y, origin_z)``, exactly the affine of the demo
NIfTI volumes, so a NIfTI written from ``volume`` with that affine and the DICOM series are the same image to MONAI.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monai.utils import look_up_option
from monai.utils.enums import StrEnum
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

__all__ = ["AXIAL", "StoredType", "write_ct_dicom_series", "dicom_series_affine", "nifti_to_dicom_series"]

AXIAL: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
"""``ImageOrientationPatient`` of an axial slice: rows run to the patient's left (+x), columns to posterior (+y)."""


class StoredType(StrEnum):
    """Stored pixel type: ``"uint16"`` (``PixelRepresentation`` 0) or ``"int16"`` (``PixelRepresentation`` 1)."""

    UINT16 = "uint16"
    INT16 = "int16"


def _directions(orientation: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = np.asarray(orientation, dtype=np.float64).reshape(-1)
    if values.size != 6:
        raise ValueError(f"image_orientation must hold 6 direction cosines, got {list(orientation)}.")
    row, col = values[:3], values[3:]
    if not (np.isclose(np.linalg.norm(row), 1.0) and np.isclose(np.linalg.norm(col), 1.0) and abs(row @ col) < 1e-6):
        raise ValueError(f"image_orientation must be two orthonormal unit vectors, got {list(orientation)}.")
    return row, col, np.cross(row, col)


def dicom_series_affine(
    spacing: Sequence[float], origin: Sequence[float] = (0.0, 0.0, 0.0), image_orientation: Sequence[float] = AXIAL
) -> np.ndarray:
    """The 4x4 RAS affine of the ``X Y Z`` volume written by :func:`write_ct_dicom_series` (mm).

    Column ``i`` of the upper 3x3 is the step of voxel index ``i`` in RAS: ``LPS -> RAS`` flips x and y.

    Example:
        >>> dicom_series_affine((0.5, 0.5, 2.0), origin=(10.0, 20.0, 30.0)).tolist()[0]
        [-0.5, 0.0, 0.0, -10.0]
    """
    dx, dy, dz = (float(s) for s in spacing)
    row, col, normal = _directions(image_orientation)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = row * dx, col * dy, normal * dz
    lps[:3, 3] = np.asarray(origin, dtype=np.float64)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def write_ct_dicom_series(
    volume_hu: np.ndarray,
    spacing: Sequence[float],
    out_dir: str | os.PathLike,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    image_orientation: Sequence[float] = AXIAL,
    rescale_intercept: float = -1024.0,
    rescale_slope: float = 1.0,
    stored_type: StoredType | str = StoredType.UINT16,
    patient_id: str = "DEMO0001",
    uid_seed: str = "robust-medical-bundles demo CT",
    series_number: int = 1,
    file_order: Sequence[int] | None = None,
) -> list[Path]:
    """Write ``volume_hu`` as a CT Image Storage series, one ``IM<nnnn>.dcm`` per slice, in ``out_dir``.

    Every file carries the same ``StudyInstanceUID``, ``SeriesInstanceUID`` and ``FrameOfReferenceUID`` (derived
    from ``uid_seed``, so the same arguments give the same UIDs), ``ImagePositionPatient``,
    ``ImageOrientationPatient``, ``PixelSpacing`` (``[dy, dx]``: row spacing first), ``SliceThickness`` = ``dz``,
    ``SliceLocation``, ``InstanceNumber`` (1-based slice index), ``RescaleIntercept``/``RescaleSlope``
    (``HU = stored * slope + intercept``, ``RescaleType`` HU) and a default lung window. Stored values are
    ``round((HU - intercept) / slope)`` in 16 bits, ``MONOCHROME2``, explicit VR little endian.

    Args:
        volume_hu: ``X Y Z`` CT in HU (see the module docstring for the axis conventions), ``Z >= 1``.
        spacing: ``(dx, dy, dz)`` in mm: column spacing, row spacing, distance between slices.
        out_dir: folder of the series (created); existing ``IM*.dcm`` files with the same names are replaced.
        origin: LPS position (mm) of the centre of voxel ``(0, 0, 0)``. Defaults to ``(0, 0, 0)``.
        image_orientation: ``ImageOrientationPatient`` (row then column direction cosines, LPS). Defaults to
            :data:`AXIAL`; e.g. ``(1, 0, 0, 0, 0, -1)`` writes coronal slices.
        rescale_intercept: ``RescaleIntercept`` in HU. Defaults to -1024 (typical for uint16 storage).
        rescale_slope: ``RescaleSlope``, > 0. Defaults to 1.
        stored_type: {``"uint16"``, ``"int16"``}. Defaults to ``"uint16"``.
        patient_id: ``PatientID`` (and ``PatientName``). Defaults to ``"DEMO0001"``.
        uid_seed: text the UIDs are derived from; give two series different seeds (or series numbers) to get two
            series. Defaults to a fixed text.
        series_number: ``SeriesNumber`` (also part of the series UID seed). Defaults to 1.
        file_order: file number of each slice (a permutation of ``range(Z)``), to test readers that must sort by
            position rather than by file name: slice ``k`` goes to ``IM<file_order[k] + 1>.dcm``. Defaults to None
            (slice ``k`` in ``IM<k + 1>.dcm``).

    Returns:
        The ``Z`` file paths, in slice order.

    Raises:
        ValueError: ``volume_hu`` is not 3D, a spacing is not positive, ``rescale_slope`` <= 0, the orientation is
            not orthonormal, ``file_order`` is not a permutation, ``stored_type`` is unknown, or a stored value
            falls outside the range of ``stored_type`` (choose another intercept).
    """
    volume = np.asarray(volume_hu, dtype=np.float64)
    if volume.ndim != 3 or min(volume.shape) < 1:
        raise ValueError(f"volume_hu must be a non-empty X Y Z array, got shape {volume.shape}.")
    dx, dy, dz = (float(s) for s in spacing)
    if min(dx, dy, dz) <= 0:
        raise ValueError(f"spacing must be three positive mm values (dx, dy, dz), got {list(spacing)}.")
    if rescale_slope <= 0:
        raise ValueError(f"rescale_slope must be > 0, got {rescale_slope}.")
    stored_type = look_up_option(stored_type, StoredType)
    row, col, normal = _directions(image_orientation)
    n_slices = volume.shape[2]
    order = list(range(n_slices)) if file_order is None else [int(k) for k in file_order]
    if sorted(order) != list(range(n_slices)):
        raise ValueError(f"file_order must be a permutation of range({n_slices}), got {list(file_order or [])}.")
    dtype = np.dtype(stored_type.value)
    stored = np.rint((volume - rescale_intercept) / rescale_slope)
    info = np.iinfo(dtype)
    if stored.min() < info.min or stored.max() > info.max:
        raise ValueError(
            f"HU range [{volume.min():g}, {volume.max():g}] with intercept {rescale_intercept:g} and slope "
            f"{rescale_slope:g} gives stored values outside {stored_type.value} [{info.min}, {info.max}]; "
            "change rescale_intercept or stored_type."
        )
    stored = stored.astype(dtype)
    study_uid = generate_uid(entropy_srcs=[uid_seed, "study"])
    series_uid = generate_uid(entropy_srcs=[uid_seed, "series", str(series_number)])
    frame_uid = generate_uid(entropy_srcs=[uid_seed, "frame"])
    now = datetime.date(2026, 1, 1).strftime("%Y%m%d")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    origin_lps = np.asarray(origin, dtype=np.float64)
    paths = []
    for k in range(n_slices):
        sop_uid = generate_uid(entropy_srcs=[uid_seed, "instance", str(series_number), str(k)])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.Modality, ds.Manufacturer = "CT", "robust-medical-bundles demo"
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient_id, patient_id, "", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = now
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "", ""
        ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = series_number, k + 1, 1
        ds.PositionReferenceIndicator = ""
        ds.KVP = 120
        position = origin_lps + k * dz * normal
        ds.ImagePositionPatient = [f"{v:.6g}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6g}" for v in (*row, *col)]
        ds.PixelSpacing = [f"{dy:.6g}", f"{dx:.6g}"]
        ds.SliceThickness = f"{dz:.6g}"
        ds.SliceLocation = f"{float(position @ normal):.6g}"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1 if stored_type == StoredType.INT16 else 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = f"{rescale_intercept:g}", f"{rescale_slope:g}", "HU"
        ds.WindowCenter, ds.WindowWidth = "-600", "1500"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).astype(dtype.newbyteorder("<")).tobytes()
        path = out / f"IM{order[k] + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def nifti_to_dicom_series(nifti_path: str | os.PathLike, out_dir: str | os.PathLike, **kwargs: Any) -> list[Path]:
    """Write a NIfTI CT volume (HU, e.g. a demo case of :mod:`monai_ext.demo.covid_ct`) as a DICOM series that
    MONAI loads as the same voxels on the same grid (same array and RAS affine).

    Spacing, origin and orientation come from the NIfTI affine (``LPS = diag(-1, -1, 1) @ affine``); the third axis
    must run along ``row x column`` (true for the demo volumes, ``diag(-dx, -dy, dz)``).

    Args:
        nifti_path: the ``.nii``/``.nii.gz`` volume in HU.
        out_dir: folder of the series.
        kwargs: further arguments of :func:`write_ct_dicom_series` (``rescale_intercept``, ``patient_id``, ...).

    Raises:
        ValueError: the affine has shear or its third axis is not ``row x column``; as :func:`write_ct_dicom_series`.
    """
    img = nib.load(str(nifti_path))
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(img.affine, dtype=np.float64)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row, col, normal = (lps[:3, i] / spacing[i] for i in range(3))
    if abs(row @ col) > 1e-4 or not np.allclose(np.cross(row, col), normal, atol=1e-4):
        raise ValueError(
            f"'{nifti_path}': the affine's third axis {normal.round(4).tolist()} is not row x column "
            f"{np.cross(row, col).round(4).tolist()} (or the axes are not orthogonal); reorient the volume first."
        )
    volume = np.asarray(img.dataobj, dtype=np.float64)
    return write_ct_dicom_series(
        volume, tuple(spacing), out_dir, origin=tuple(lps[:3, 3]), image_orientation=(*row, *col), **kwargs
    )
