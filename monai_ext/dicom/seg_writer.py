# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Write the DICOM SEG and volume SR of every DICOM-series case in a segmentation bundle's output folder.

The bundle's ``SegmentationMaskWriter`` leaves per case ``<case_id>_seg.nii.gz`` (the mask) and ``<case_id>_seg.json``
(``image`` = the source path, voxel counts and mL per class). :func:`write_segmentation_segs` runs after inference (the
bundle's ``finalize``) and scans the folder: every case whose ``image`` is a DICOM series (or file) and which lacks
``<case_id>_seg.dcm`` gets the SEG (:func:`monai_ext.dicom.seg.build_segmentation`) and ``<case_id>_volumes_sr.dcm``
(:func:`monai_ext.dicom.seg_volumes.build_volume_report`), so a crash between the mask and the SEG is back-filled by
the next run. NIfTI inputs get nothing (a SEG must reference DICOM instances).

Never overwritten (the bundles' rule): an existing SEG or SR is kept unless ``overwrite=True``; each file is written
to a hidden temporary file and published atomically (:func:`monai_ext.handlers.prediction_writer.publish_file`).

A case that cannot get a SEG is reported, not fatal (a warning naming the case and the file, and an entry of the
returned summary): its sidecar unreadable, its source gone or unreadable, its mask missing, its mask shape not the
series' ``Columns x Rows x slices``, its mask and sidecar disagreeing, or its sidecar volumes differing from the
volumes computed from the DICOM geometry (the mask was not computed on this series).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset

from monai_ext.dicom.seg import build_segmentation, check_mask_fits_series
from monai_ext.dicom.seg_volumes import build_volume_report, class_volumes_ml
from monai_ext.dicom.sources import read_source_instances, was_dicom_input
from monai_ext.handlers.prediction_writer import publish_file

__all__ = ["SEG_SUFFIX", "VOLUMES_SR_SUFFIX", "SegWriteSummary", "write_case_seg", "write_segmentation_segs"]

SEG_SUFFIX = "_seg.dcm"
"""``<case_id>_seg.dcm``: the DICOM SEG beside ``<case_id>_seg.nii.gz``."""

VOLUMES_SR_SUFFIX = "_volumes_sr.dcm"
"""``<case_id>_volumes_sr.dcm``: the TID 1500 report of the class volumes."""

_MASK_SUFFIX = "_seg.nii.gz"
_SIDECAR_SUFFIX = "_seg.json"
_VOLUME_RTOL = 1e-4


@dataclasses.dataclass
class SegWriteSummary:
    """What :func:`write_segmentation_segs` did, by case id.

    Attributes:
        written: cases whose SEG was written in this call.
        kept: cases whose SEG already existed and was left alone (``overwrite=False``).
        not_dicom: cases whose input is not DICOM (no SEG).
        problems: one message per case that got no SEG (or whose SR could not be written), naming case and file.
    """

    written: list[str] = dataclasses.field(default_factory=list)
    kept: list[str] = dataclasses.field(default_factory=list)
    not_dicom: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)


def _publish(dataset: Dataset, path: Path, overwrite: bool) -> bool:
    """Save ``dataset`` to a hidden temporary file beside ``path`` and publish it (never replacing unless asked)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    dataset.save_as(tmp, enforce_file_format=True)
    return publish_file(tmp, path, overwrite)


def _check_volumes(
    case_id: str, record: dict[str, Any], labels: np.ndarray, dicom_ml: dict[str, float], sidecar: Path
) -> None:
    """The sidecar's voxel counts must be the mask's, its mL the DICOM geometry's (relative 1e-4).

    Raises:
        ValueError: naming the case, the class and both values.
    """
    counts = np.bincount(labels.reshape(-1).astype(np.int64), minlength=len(dicom_ml) + 1)
    for k, name in enumerate(dicom_ml, start=1):
        try:
            voxels, ml = int(record["voxels"][name]), float(record["ml"][name])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"case '{case_id}': '{sidecar}' has no voxels/ml of class '{name}' ({e}).") from e
        if voxels != int(counts[k]):
            raise ValueError(
                f"case '{case_id}': '{sidecar}' counts {voxels} '{name}' voxels but the mask holds {int(counts[k])}; "
                "the mask and its sidecar belong to different runs."
            )
        if not np.isclose(ml, dicom_ml[name], rtol=_VOLUME_RTOL, atol=1e-9):
            raise ValueError(
                f"case '{case_id}': '{sidecar}' gives {ml!r} mL of '{name}' but the DICOM geometry of the source gives "
                f"{dicom_ml[name]!r} mL; the mask's grid is not this series'."
            )


def write_case_seg(
    output_dir: str | os.PathLike,
    case_id: str,
    record: dict[str, Any],
    class_names: Sequence[str],
    model_name: str,
    model_version: str,
    overwrite: bool = False,
) -> tuple[bool, bool]:
    """Write ``<case_id>_seg.dcm`` and ``<case_id>_volumes_sr.dcm`` of one DICOM case.

    Args:
        output_dir: the bundle's output folder.
        case_id: the case (its mask is ``record["seg"]``, default ``<case_id>_seg.nii.gz``).
        record: the case's ``<case_id>_seg.json``.
        class_names: the foreground classes (label ``k`` = ``class_names[k - 1]``).
        model_name: the bundle's name.
        model_version: the bundle's version.
        overwrite: replace an existing SEG/SR. Defaults to False.

    Returns:
        ``(seg_written, sr_written)``; an existing file is kept (False) unless ``overwrite``. A missing SR of a kept
        SEG is written (referencing it); a kept SR beside a new SEG is left for the caller to report.

    Raises:
        FileNotFoundError, ValueError, OSError: the source or mask is missing or unreadable, or they do not fit
            (messages name the case and file).
    """
    out = Path(output_dir)
    sidecar = out / f"{case_id}{_SIDECAR_SUFFIX}"
    seg_path, sr_path = out / f"{case_id}{SEG_SUFFIX}", out / f"{case_id}{VOLUMES_SR_SUFFIX}"
    if not overwrite and seg_path.exists() and sr_path.exists():
        return False, False
    mask_path = out / str(record.get("seg") or f"{case_id}{_MASK_SUFFIX}")
    if not mask_path.is_file():
        raise FileNotFoundError(f"case '{case_id}': mask '{mask_path}' not found.")
    labels = np.asarray(nib.load(str(mask_path)).dataobj)
    source = str(record["image"])
    instances = read_source_instances(source)
    check_mask_fits_series(labels.shape, instances, where=f"case '{case_id}' ('{mask_path}' vs '{source}')")
    dicom_ml = class_volumes_ml(labels, instances, class_names)
    _check_volumes(case_id, record, labels, dicom_ml, sidecar)

    seg_written = False
    if overwrite or not seg_path.exists():
        segmentation: Dataset = build_segmentation(labels, instances, class_names, model_name, model_version)
        seg_written = _publish(segmentation, seg_path, overwrite)
    if not seg_written:
        segmentation = pydicom.dcmread(seg_path, stop_before_pixels=True)  # the SR references the kept SEG
    sr_written = False
    if overwrite or not sr_path.exists():
        report = build_volume_report(segmentation, instances, dicom_ml, model_name, model_version)
        sr_written = _publish(report, sr_path, overwrite)
    return seg_written, sr_written


def write_segmentation_segs(
    output_dir: str | os.PathLike,
    class_names: Sequence[str],
    model_name: str,
    model_version: str,
    enabled: bool = True,
    overwrite: bool = False,
) -> SegWriteSummary:
    """Write the SEG and volume SR of every case of ``output_dir`` whose input was DICOM and whose SEG is missing.

    Scans every ``<case_id>_seg.json`` (hidden files left out) and every ``<case_id>_seg.nii.gz`` without one; see the
    module docstring for what is written and what is reported. Call it in the bundle's ``finalize``:
    ``"$monai_ext.dicom.write_segmentation_segs(@output_dir, @class_names, @_meta_#name, @_meta_#version,
    enabled=monai_ext.bundle.as_flag(@dicom_results, 'dicom_results'), overwrite=monai_ext.bundle.as_flag(@overwrite,
    'overwrite'))"`` (with ``"$import monai_ext.dicom"`` among the config's imports).

    Args:
        output_dir: the bundle's output folder; a missing folder (no case was written) gives an empty summary.
        class_names: the foreground classes, in label order.
        model_name: the bundle's name (metadata ``name``).
        model_version: the bundle's version (metadata ``version``).
        enabled: write anything at all (the bundle's ``dicom_results`` flag, parsed with
            :func:`monai_ext.bundle.as_flag`). Defaults to True.
        overwrite: replace existing SEG/SR files (parsed the same way). Defaults to False.

    Returns:
        A :class:`SegWriteSummary`. Every problem is also logged as a warning.

    Raises:
        ValueError: ``enabled`` or ``overwrite`` is not a flag, or ``class_names`` is empty or repeats a name.
    """
    from monai_ext.bundle.parameters import as_flag

    summary = SegWriteSummary()
    out = Path(output_dir)
    names = [str(c) for c in class_names]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct and non-empty, got {names}.")
    if not as_flag(enabled, "dicom_results") or not out.is_dir():
        return summary
    overwrite = as_flag(overwrite, "overwrite")
    log = logging.getLogger(__name__)

    def report(message: str) -> None:
        summary.problems.append(message)
        log.warning(message)

    sidecars = {p.name[: -len(_SIDECAR_SUFFIX)]: p for p in out.glob(f"*{_SIDECAR_SUFFIX}") if p.name[0] != "."}
    for mask in sorted(out.glob(f"*{_MASK_SUFFIX}")):
        case_id = mask.name[: -len(_MASK_SUFFIX)]
        if mask.name[0] != "." and case_id not in sidecars:
            report(
                f"case '{case_id}': mask '{mask}' has no sidecar '{case_id}{_SIDECAR_SUFFIX}'; its source is "
                "unknown, so no DICOM SEG can be written."
            )
    for case_id, sidecar in sorted(sidecars.items()):
        try:
            record = json.loads(sidecar.read_text(encoding="utf-8"))
            source = str(record["image"]) if isinstance(record, dict) and record.get("image") else ""
        except (OSError, ValueError) as e:
            report(f"case '{case_id}': sidecar '{sidecar}' is unreadable ({type(e).__name__}: {e}); no DICOM SEG.")
            continue
        if not source:
            report(f"case '{case_id}': sidecar '{sidecar}' names no source 'image'; no DICOM SEG.")
            continue
        if not was_dicom_input(source):
            summary.not_dicom.append(case_id)
            continue
        try:
            seg_written, sr_written = write_case_seg(out, case_id, record, names, model_name, model_version, overwrite)
        except Exception as e:  # noqa: BLE001 -- a bad case is reported, the others are still written
            report(f"case '{case_id}' (source '{source}'): no DICOM SEG written: {type(e).__name__}: {e}")
            continue
        (summary.written if seg_written else summary.kept).append(case_id)
        if seg_written and not sr_written:
            report(
                f"case '{case_id}': '{case_id}{VOLUMES_SR_SUFFIX}' already existed and was kept, but it references "
                "an earlier SEG; delete it (or run with overwrite) to get the volumes of the new SEG."
            )
    if summary.written:
        log.info(f"DICOM SEG written for {len(summary.written)} case(s) in '{out}'.")
    return summary
