# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DICOM Structured Reports of the detection bundle: one TID 1500 report per case, one planar region per box.

For each case whose per-case result (:class:`monai_ext.handlers.DetectionWriter`:
``<output_dir>/<case_id>/<case_id>_boxes.json``) names a DICOM series folder (or file) as ``image``,
:func:`write_detection_srs` writes ``<output_dir>/<case_id>/<case_id>_sr.dcm``: a ``Comprehensive3DSR``
(:mod:`monai_ext.dicom.sr` lists the codes) with, per detected box ``k`` (in the result's order), a TID 1410 planar
ROI measurement group holding

- the box as a closed ``POLYLINE`` (5 points: ``(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)``) on the source
  slice instance ``read_source_instances(image)[slice[k]]`` (the slice MONAI read as volume slice ``k``),
- the class as finding type, the tracking identifier ``"<class> <k + 1>"`` and a new tracking UID,
- the score: ``(122157, DCM, "Probability")`` in UCUM ``{probability}``, exactly the JSON's ``label_scores[k]``,
- the algorithm (TID 4019): the bundle's name and version.

A case without a box gets one TID 1501 group per class whose decision is ``Absent`` (a TID 1500 report needs a
group), referencing no single image (the whole series is the report's evidence).

Coordinates: the result's ``box`` is ``[x1, y1, x2, y2]`` in the original voxel grid with MONAI's voxel convention
(coordinate ``i`` is the centre of voxel ``i``; :func:`monai_ext.inferers.slice_boxes_to_world`), ``x`` along volume
``X`` = DICOM column, ``y`` along ``Y`` = DICOM row (:mod:`monai_ext.dicom.sources`). DICOM SCOORD pixel
coordinates put ``(0, 0)`` at the top-left corner of the top-left pixel, so the centre of the pixel with 0-based
column ``i`` and row ``j`` is ``(i + 0.5, j + 0.5)`` (PS3.3 C.18.6.1.2). The report's points are therefore
``(column, row) = (x + 0.5, y + 0.5)``: each corner lands on the same patient position as the result's
``world_corners`` (``ImagePositionPatient`` is the centre of the first pixel).

:func:`read_detection_sr` reads a report back with highdicom's content API.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from monai_ext.bundle.parameters import as_flag
from monai_ext.dicom.identity import finding_concept
from monai_ext.dicom.sources import read_source_instances
from monai_ext.dicom.sr import (
    PROBABILITY_UNIT,
    SRSummary,
    algorithm_identification,
    build_measurement_report,
    write_missing_srs,
)

__all__ = [
    "DETECTION_SR_SUFFIX",
    "PIXEL_CENTRE_OFFSET",
    "box_polyline",
    "build_detection_sr",
    "read_detection_sr",
    "write_detection_srs",
]

DETECTION_SR_SUFFIX = "_sr.dcm"
"""A case's report is ``<output_dir>/<case_id>/<case_id>_sr.dcm``, beside ``<case_id>_boxes.json``."""

PIXEL_CENTRE_OFFSET = 0.5
"""DICOM SCOORD coordinate of the centre of the pixel with 0-based index 0 (MONAI's voxel coordinate 0)."""

_BOXES_SUFFIX = "_boxes.json"


def box_polyline(box: Sequence[float]) -> np.ndarray:
    """The closed 5-point SCOORD polyline ``(column, row)`` of a MONAI voxel box ``[x1, y1, x2, y2]`` (module
    docstring: ``+ 0.5`` from MONAI's voxel centres to DICOM pixel coordinates).

    Example:
        >>> box_polyline([1.0, 2.0, 3.0, 5.0]).tolist()
        [[1.5, 2.5], [3.5, 2.5], [3.5, 5.5], [1.5, 5.5], [1.5, 2.5]]

    Raises:
        ValueError: ``box`` is not 4 finite numbers with ``x1 <= x2`` and ``y1 <= y2``.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x1 > x2 or y1 > y2:
        raise ValueError(f"box {list(box)} is not a finite xyxy box with x1 <= x2 and y1 <= y2")
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)]
    return np.asarray(corners, dtype=np.float64) + PIXEL_CENTRE_OFFSET


def _slice_index(value: Any, count: int, k: int) -> int:
    number = float(value)
    if not number.is_integer() or not 0 <= number < count:
        raise ValueError(
            f"box {k} lies on slice {value!r}, which is no slice of the {count}-slice source series (the result was "
            "made from another volume, or the pipeline resampled across slices)"
        )
    return int(number)


def _class_name(record: dict, k: int, class_names: Sequence[str] | None) -> str:
    if "label_name" in record:
        return str(record["label_name"][k])
    label = int(record["label"][k])
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    raise ValueError(f"box {k} has label {label} and the result no label_name; pass the bundle's class_names")


def build_detection_sr(
    record: dict, class_names: Sequence[str] | None, model_name: str, model_version: str
) -> hd.sr.Comprehensive3DSR:
    """The report of one per-case result (a parsed ``<case_id>_boxes.json``); see the module docstring.

    Args:
        record: the result: ``case_id``, ``image`` (a DICOM series folder or file), ``box``, ``slice``, ``label``,
            ``label_scores`` and optionally ``label_name``.
        class_names: the detector's classes, for results without ``label_name`` and for a case without boxes. None:
            ``["lesion"]``.
        model_name, model_version: the bundle's name and version.

    Raises:
        FileNotFoundError: the source is gone.
        KeyError: the result lacks a list.
        ValueError: the source is not readable DICOM, the lists differ in length, a box is not finite xyxy, or a
            slice index is no slice of the source.
    """
    boxes, slices, scores = record["box"], record["slice"], record["label_scores"]
    if not len(boxes) == len(slices) == len(scores) == len(record["label"]):
        raise ValueError(
            f"{len(boxes)} boxes, {len(slices)} slices, {len(scores)} scores and {len(record['label'])} labels"
        )
    instances = read_source_instances(record["image"])
    algorithm = algorithm_identification(model_name, model_version)
    groups: list[Any] = []
    for k, (box, z, score) in enumerate(zip(boxes, slices, scores)):
        source = instances[_slice_index(z, len(instances), k)]
        name = _class_name(record, k, class_names)
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=box_polyline(box),
            source_image=hd.sr.SourceImageForRegion.from_source_image(source),
        )
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=f"{name} {k + 1}"),
                referenced_region=region,
                finding_type=finding_concept(name),
                algorithm_id=algorithm,
                measurements=[
                    hd.sr.Measurement(
                        name=codes.DCM.Probability, value=float(score), unit=PROBABILITY_UNIT, algorithm_id=algorithm
                    )
                ],
            )
        )
    if not groups:
        for name in class_names or ["lesion"]:
            concept = finding_concept(name)
            groups.append(
                hd.sr.MeasurementsAndQualitativeEvaluations(
                    tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=str(name)),
                    finding_type=concept,
                    algorithm_id=algorithm,
                    qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=concept, value=codes.SCT.Absent)],
                )
            )
    return build_measurement_report(instances, groups, model_name, model_version, "detection results")


def write_detection_srs(
    output_dir: str | os.PathLike,
    class_names: Sequence[str] | None,
    model_name: str,
    model_version: str,
    overwrite: bool | str = False,
    enabled: bool | str = True,
) -> SRSummary:
    """Write ``<output_dir>/<case_id>/<case_id>_sr.dcm`` for every per-case result whose input is DICOM and whose
    report is missing (a later run, or one after a crash, fills in only what is missing); the bundle's ``finalize``
    step.

    Written atomically, never replacing an existing report unless ``overwrite``; a case whose source DICOM is gone
    or unreadable, or whose result cannot be reported, is logged (a warning naming the case, its result and its
    source) and listed in the summary's ``failed``, and the others are still written.

    Args:
        output_dir: the folder of per-case results; a missing folder writes nothing.
        class_names: the detector's classes (label ``k`` is ``class_names[k]``).
        model_name, model_version: the bundle's name and version (``@_meta_#name``, ``@_meta_#version``).
        overwrite: replace existing reports. Defaults to False.
        enabled: write reports at all (the bundle's ``dicom_results``). Defaults to True.

    Returns:
        The :class:`~monai_ext.dicom.sr.SRSummary`.

    Raises:
        ValueError: a flag is not a boolean.
    """
    if not as_flag(enabled, "dicom_results"):
        return SRSummary()
    out = Path(output_dir)
    if not out.is_dir():
        return SRSummary()
    names = None if class_names is None else [str(c) for c in class_names]
    return write_missing_srs(
        out.glob(f"*/*{_BOXES_SUFFIX}"),
        lambda path: path.with_name(f"{path.name[: -len(_BOXES_SUFFIX)]}{DETECTION_SR_SUFFIX}"),
        lambda record: build_detection_sr(record, names, model_name, model_version),
        required=("case_id", "image", "box", "slice", "label", "label_scores"),
        overwrite=as_flag(overwrite, "overwrite"),
        logger=logging.getLogger(__name__),
    )


def read_detection_sr(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The boxes of a detection report, in its order, read with highdicom's content API: per planar ROI group
    ``{"name": tracking identifier, "finding": finding type meaning, "score": float, "polyline": N x 2 (column,
    row) array, "sop_instance_uid": ..., "sop_class_uid": ...}`` of the referenced slice. A report without boxes
    gives ``[]``.

    Raises:
        ValueError: a group lacks its score or region.
    """
    sr = hd.sr.srread(path)
    boxes = []
    for group in sr.content.get_planar_roi_measurement_groups():
        measurements = group.get_measurements(name=codes.DCM.Probability)
        region = group.roi
        if len(measurements) != 1 or region is None:
            raise ValueError(f"'{path}': group '{group.tracking_identifier}' lacks its score or region.")
        reference = region.ContentSequence[0].ReferencedSOPSequence[0]
        boxes.append(
            {
                "name": str(group.tracking_identifier),
                "finding": str(group.finding_type.meaning),
                "score": float(measurements[0].value),
                "polyline": np.asarray(region.value, dtype=np.float64),
                "sop_instance_uid": str(reference.ReferencedSOPInstanceUID),
                "sop_class_uid": str(reference.ReferencedSOPClassUID),
            }
        )
    return boxes
