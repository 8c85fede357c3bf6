# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Per-class volumes (mL) of a segmentation as a DICOM TID 1500 Measurement Report referencing the SEG's segments.

The volume of class ``k`` is its voxel count times the voxel volume of the source series: ``PixelSpacing`` (row
spacing x column spacing, mm) times the slice step along the normal (the distance between consecutive slices,
``ImagePositionPatient`` projected on ``ImageOrientationPatient``'s row x column; ``SpacingBetweenSlices`` or
``SliceThickness`` for a one-slice series), in mm^3, / 1000 for mL. This is the DICOM geometry, independent of the
NIfTI affine that the bundle's ``<case_id>_seg.json`` volumes come from; the writer checks that both agree.

The report (highdicom ``Comprehensive3DSR``, TID 1500) has one TID 1411 volumetric ROI group per segment: tracking
identifier = class name, ``ReferencedSegment`` = (the SEG, segment ``k``, the source series), finding type = the
class's code (:func:`monai_ext.dicom.identity.finding_concept`), algorithm (bundle name and version), and one
measurement SCT 118565006 "Volume" in UCUM ``ml`` "milliliter". Empty classes get their group too, with 0 mL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from monai_ext.dicom.identity import (
    device_observation_context,
    finding_concept,
    local_coding_scheme,
    new_object_attributes,
)
from monai_ext.dicom.sources import slice_normal_positions

__all__ = [
    "MILLILITER",
    "VOLUMES_SR_SERIES_NUMBER",
    "SegmentVolume",
    "series_voxel_volume_mm3",
    "class_volumes_ml",
    "build_volume_report",
    "read_volume_report",
]

MILLILITER = Code("ml", "UCUM", "milliliter")
"""UCUM unit of the volumes."""

VOLUMES_SR_SERIES_NUMBER = 9902
"""``SeriesNumber`` of the volume SR series."""

_SLICE_STEP_TOLERANCE = 0.01


class SegmentVolume(NamedTuple):
    """One volume of a report: the segment it measures, its label (the tracking identifier), value and unit code."""

    segment_number: int
    label: str
    value: float
    unit: str
    seg_sop_instance_uid: str


def series_voxel_volume_mm3(instances: Sequence[Dataset]) -> float:
    """Volume of one voxel of a series in slice order, mm^3: ``PixelSpacing[0] * PixelSpacing[1] * slice step``.

    Raises:
        ValueError: ``PixelSpacing`` is missing, the slices are not evenly spaced (steps differ by more than 1 %) or
            coincide, or a one-slice series has neither ``SpacingBetweenSlices`` nor ``SliceThickness``.
    """
    first = instances[0]
    if "PixelSpacing" not in first:
        raise ValueError(f"series {first.get('SeriesInstanceUID', '?')} has no PixelSpacing (0028,0030).")
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    if len(instances) > 1:
        steps = np.diff(slice_normal_positions(list(instances)))
        step = float(np.mean(steps))
        if step <= 0 or np.max(np.abs(steps - step)) > _SLICE_STEP_TOLERANCE * step:
            raise ValueError(
                f"series {first.get('SeriesInstanceUID', '?')}: slice steps {np.round(steps, 4).tolist()} mm are not "
                "one even spacing; a voxel volume is not defined."
            )
    else:
        thickness = first.get("SpacingBetweenSlices") or first.get("SliceThickness")
        if not thickness:
            raise ValueError(
                f"one-slice series {first.get('SeriesInstanceUID', '?')} has neither SpacingBetweenSlices nor "
                "SliceThickness; its voxel volume is unknown."
            )
        step = float(thickness)
    return row_spacing * column_spacing * step


def class_volumes_ml(labels: np.ndarray, instances: Sequence[Dataset], class_names: Sequence[str]) -> dict[str, float]:
    """``{class: mL}`` of an ``X Y Z`` label map (label ``k`` = ``class_names[k - 1]``) over its source series."""
    counts = np.bincount(np.asarray(labels).reshape(-1).astype(np.int64), minlength=len(class_names) + 1)
    voxel = series_voxel_volume_mm3(instances)
    return {str(c): float(counts[k]) * voxel / 1000.0 for k, c in enumerate(class_names, start=1)}


def build_volume_report(
    segmentation: Dataset,
    source_instances: Sequence[Dataset],
    volumes_ml: Mapping[str, float],
    model_name: str,
    model_version: str,
    series_number: int = VOLUMES_SR_SERIES_NUMBER,
) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 measurement report of one volume per segment of ``segmentation``.

    Args:
        segmentation: the SEG (a highdicom ``Segmentation`` or its dataset) whose segment labels are the classes.
        source_instances: the source series (evidence; patient and study come from the SEG).
        volumes_ml: ``{segment label: mL}``, one entry per segment.
        model_name: the bundle's name (observer device, algorithm).
        model_version: the bundle's version.
        series_number: ``SeriesNumber``. Defaults to :data:`VOLUMES_SR_SERIES_NUMBER`.

    Raises:
        KeyError: a segment label has no volume in ``volumes_ml``.
    """
    algorithm = hd.sr.AlgorithmIdentification(name=str(model_name), version=str(model_version))
    source_series = hd.sr.SourceSeriesForSegmentation(str(source_instances[0].SeriesInstanceUID))
    groups = []
    for segment in segmentation.SegmentSequence:
        label = str(segment.SegmentLabel)
        if label not in volumes_ml:
            raise KeyError(f"no volume for segment {segment.SegmentNumber} '{label}' (have {sorted(volumes_ml)}).")
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=label),
                referenced_segment=hd.sr.ReferencedSegment(
                    sop_class_uid=segmentation.SOPClassUID,
                    sop_instance_uid=segmentation.SOPInstanceUID,
                    segment_number=int(segment.SegmentNumber),
                    source_series=source_series,
                ),
                finding_type=finding_concept(label),
                algorithm_id=algorithm,
                measurements=[
                    hd.sr.Measurement(
                        name=codes.SCT.Volume, value=float(volumes_ml[label]), unit=MILLILITER, algorithm_id=algorithm
                    )
                ],
            )
        )
    report = hd.sr.MeasurementReport(
        observation_context=device_observation_context(model_name, model_version),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[segmentation, *source_instances],
        content=report[0],
        is_complete=True,
        **new_object_attributes(model_name, model_version, series_number, f"{model_name} volumes"),
        coding_schemes=[local_coding_scheme()],
    )


def read_volume_report(path: str | os.PathLike) -> list[SegmentVolume]:
    """The volumes of a report written by :func:`build_volume_report`, read with highdicom (``srread``).

    Returns:
        One :class:`SegmentVolume` per TID 1411 group, in report order.

    Raises:
        ValueError: a group has no "Volume" measurement or no referenced segment.
    """
    sr = hd.sr.srread(str(path))
    volumes = []
    for group in sr.content.get_volumetric_roi_measurement_groups():
        segment, measurements = group.referenced_segment, group.get_measurements(name=codes.SCT.Volume)
        if segment is None or not measurements:
            raise ValueError(f"SR '{path}': measurement group '{group.tracking_identifier}' lacks a segment or volume.")
        volumes.append(
            SegmentVolume(
                segment_number=int(segment.referenced_segment_numbers[0]),
                label=str(group.tracking_identifier),
                value=float(measurements[0].value),
                unit=str(measurements[0].unit.value),
                seg_sop_instance_uid=str(segment.referenced_sop_instance_uid),
            )
        )
    return volumes
