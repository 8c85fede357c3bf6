# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Shared pieces of the bundles' DICOM Structured Reports (TID 1500 measurement reports, highdicom).

The classification report (:mod:`~monai_ext.dicom.sr_classification`) and the detection report
(:mod:`~monai_ext.dicom.sr_detection`) are both a ``Comprehensive3DSR`` holding a TID 1500 "Imaging Measurement
Report" whose observer is the model (a device, TID 1004) and whose measurement groups name the algorithm (TID 4019,
the bundle's name and version). This module holds what both share: the coded concepts, the identity of the report,
writing it atomically without ever replacing an existing one, and the scan of an output folder for the cases that
still lack a report.

Codes (DICOM PS3.16 via ``pydicom.sr.codedict.codes``; none invented):

- a finding (a class): SNOMED CT where pydicom's dictionary has a concept that means the class (``lesion``:
  ``(52988006, SCT, "Lesion")``), otherwise the local scheme ``99RMB`` with the class name as value and meaning;
- the probability or score: ``(122157, DCM, "Probability")`` in UCUM ``{probability}`` (a unity annotation);
- a decision: the finding's concept as the name of a qualitative evaluation whose value is
  ``(52101004, SCT, "Present")`` or ``(272519000, SCT, "Absent")``;
- the procedure reported: ``(77477000, SCT, "Computed tomography")`` for CT, ``(168537006, SCT, "Plain
  radiography")`` for CR/DX, ``(363679005, SCT, "Imaging procedure")`` otherwise.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from monai_ext.dicom.identity import (
    device_observation_context,
    local_coding_scheme,
    new_object_attributes,
)
from monai_ext.dicom.sources import was_dicom_input
from monai_ext.handlers.prediction_writer import publish_file

__all__ = [
    "PROBABILITY_UNIT",
    "SR_SERIES_NUMBER",
    "SRSummary",
    "algorithm_identification",
    "build_measurement_report",
    "write_missing_srs",
]

PROBABILITY_UNIT = hd.sr.CodedConcept(value="{probability}", scheme_designator="UCUM", meaning="probability")
"""UCUM unit of a probability or score in [0, 1] (an annotation of unity)."""

SR_SERIES_NUMBER = 9001
"""``SeriesNumber`` of a report (a new series per report, in the source's study)."""

_PROCEDURES = {"CT": codes.SCT.ComputedTomography, "CR": codes.SCT.PlainRadiography, "DX": codes.SCT.PlainRadiography}

_REQUIRED_SOURCE_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")

_TYPE_2_SOURCE_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                       "ReferringPhysicianName", "StudyID", "AccessionNumber")  # fmt: skip


def algorithm_identification(
    model_name: str, model_version: str, parameters: Sequence[str] | None = None
) -> hd.sr.AlgorithmIdentification:
    """TID 4019 of the model: the bundle's name and version, and its decision rule as parameters."""
    return hd.sr.AlgorithmIdentification(
        name=str(model_name), version=str(model_version), parameters=list(parameters or []) or None
    )


def build_measurement_report(
    evidence: Sequence[Dataset],
    groups: Sequence[Any],
    model_name: str,
    model_version: str,
    series_description: str,
) -> hd.sr.Comprehensive3DSR:
    """A ``Comprehensive3DSR`` holding a TID 1500 report of ``groups`` (TID 1501 / TID 1410 measurement groups).

    The report joins the study of ``evidence[0]`` (patient and study copied by highdicom; a Type 2 attribute the
    source lacks, e.g. ``PatientName`` of a secondary capture, is set empty on ``evidence``) in a new series; its
    identity is ``Manufacturer`` :data:`MANUFACTURER`, ``ManufacturerModelName`` the model name (cut to the 64
    characters of the LO value representation), ``SoftwareVersions`` the model version and ``monai_ext``'s,
    ``DeviceSerialNumber`` ``"none"``.

    Args:
        evidence: the source instances the report is about (all of them are listed as evidence).
        groups: at least one measurement group.
        model_name: the bundle's name.
        model_version: the bundle's version.
        series_description: ``SeriesDescription`` of the report.

    Raises:
        ValueError: a source instance lacks its study, series or SOP instance UID or its SOP class UID.
    """
    for ds in evidence:
        missing = [k for k in _REQUIRED_SOURCE_KEYS if not ds.get(k)]
        if missing:
            raise ValueError(
                f"source instance {ds.get('SOPInstanceUID', '?')} lacks {missing}; a report joins its source's study "
                "and references its series and instance, so the source must carry them (re-export it from the PACS)."
            )
    for ds in evidence:  # Type 2 (present, possibly empty) in the source's Patient and Study modules
        for keyword in _TYPE_2_SOURCE_KEYS:
            if keyword not in ds:
                setattr(ds, keyword, None)
    modality = str(evidence[0].get("Modality", ""))
    report = hd.sr.MeasurementReport(
        observation_context=device_observation_context(model_name, model_version),
        procedure_reported=_PROCEDURES.get(modality, codes.SCT.ImagingProcedure),
        imaging_measurements=list(groups),
    )
    return hd.sr.Comprehensive3DSR(
        evidence=list(evidence),
        content=report,
        is_complete=True,
        coding_schemes=[local_coding_scheme()],
        **new_object_attributes(model_name, model_version, SR_SERIES_NUMBER, series_description),
    )


@dataclass
class SRSummary:
    """What a scan of an output folder did: per case id, the report ``written`` or ``kept`` (it existed), the cases
    whose input was not DICOM (``not_dicom``), and the ``failed`` ones with the reason (a gone or unreadable source,
    a result that cannot be reported)."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    not_dicom: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def write_missing_srs(
    results: Iterable[Path],
    sr_path: Callable[[Path], Path],
    build: Callable[[dict], hd.sr.Comprehensive3DSR],
    required: Sequence[str],
    overwrite: bool,
    logger: logging.Logger,
) -> SRSummary:
    """Write the report of every per-case result whose input was DICOM and whose report is missing.

    Args:
        results: the per-case JSON files.
        sr_path: the report path of a result.
        build: the report of a parsed result; raises ``FileNotFoundError``/``ValueError`` (the source) or
            ``KeyError``/``ValueError`` (the result) for a case it cannot report.
        required: keys a result must have (others are left out silently: not a result of this kind).
        overwrite: replace existing reports.
        logger: where the failures are reported.

    Returns:
        The :class:`SRSummary`; a failing case is logged (a warning naming the case and the file) and listed, never
        raised.
    """
    summary = SRSummary()
    for path in sorted(results):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            logger.warning(f"no DICOM SR for '{path}': not readable JSON ({e}).")
            continue
        if not (isinstance(record, dict) and all(k in record for k in required)):
            continue
        case, image = str(record["case_id"]), str(record.get("image", ""))
        if not was_dicom_input(image):
            summary.not_dicom.append(case)
            continue
        target = sr_path(path)
        if target.exists() and not overwrite:
            summary.kept.append(target)
            continue
        try:
            sr = build(record)
        except (FileNotFoundError, KeyError, ValueError) as e:
            message = f"{type(e).__name__}: {e}"
            logger.warning(f"no DICOM SR for case '{case}' (result '{path}', source '{image}'): {message}")
            summary.failed[case] = message
            continue
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            sr.save_as(tmp, enforce_file_format=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        (summary.written if publish_file(tmp, target, overwrite) else summary.kept).append(target)
    if summary.written or summary.failed:
        logger.info(
            f"DICOM SR: {len(summary.written)} written, {len(summary.kept)} kept, {len(summary.failed)} failed "
            f"{sorted(summary.failed)[:5]}."
        )
    return summary
