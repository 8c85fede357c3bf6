# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DICOM Structured Reports of the classification bundles: one TID 1500 report per case, one finding per class.

For each case whose per-case JSON (:class:`monai_ext.handlers.PredictionWriter`: ``<output_dir>/<case_id>.json``)
names a DICOM ``image``, :func:`write_classification_srs` writes ``<output_dir>/<case_id>_sr.dcm``: a
``Comprehensive3DSR`` (:mod:`monai_ext.dicom.sr` lists the codes) whose TID 1501 measurement group per class holds

- the class as finding type and tracking identifier (the class name; a new tracking UID),
- the probability: ``(122157, DCM, "Probability")`` in UCUM ``{probability}``, exactly the JSON's value,
- the decision: a qualitative evaluation named by the class concept, ``Present`` or ``Absent``: multi-label
  (sigmoid) ``p >= threshold``; single-label (softmax) the JSON's ``predicted_class`` (the argmax) is present, every
  other class absent,
- the algorithm (TID 4019): the bundle's name and version, the rule as a parameter (``threshold=0.5`` or
  ``decision=argmax``),
- the source image (SOP class and instance UID) it was computed from.

:func:`read_classification_sr` reads a report back with highdicom's content API.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
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
from monai_ext.handlers.prediction_writer import PREDICTED_CLASS

__all__ = ["CLASSIFICATION_SR_SUFFIX", "build_classification_sr", "read_classification_sr", "write_classification_srs"]

CLASSIFICATION_SR_SUFFIX = "_sr.dcm"
"""A case's report is ``<output_dir>/<case_id>_sr.dcm``, beside ``<case_id>.json``."""


def _decisions(record: dict, classes: list[str], threshold: float, single_label: bool) -> dict[str, bool]:
    probs = record["probabilities"]
    if not single_label:
        return {c: float(probs[c]) >= threshold for c in classes}
    if PREDICTED_CLASS not in record:
        raise KeyError(f"the result has no '{PREDICTED_CLASS}' (a single-label result must name its class)")
    predicted = str(record[PREDICTED_CLASS])
    if predicted not in classes:
        raise ValueError(f"'{PREDICTED_CLASS}' {predicted!r} is none of its classes {classes}")
    return {c: c == predicted for c in classes}


def build_classification_sr(
    record: dict,
    class_names: Sequence[str] | None,
    model_name: str,
    model_version: str,
    threshold: float = 0.5,
    single_label: bool = False,
) -> hd.sr.Comprehensive3DSR:
    """The report of one per-case result (a parsed ``<case_id>.json``); see the module docstring.

    Args:
        record: the result: ``case_id``, ``image`` (a DICOM file), ``probabilities`` ``{class: p}`` and, single-label,
            ``predicted_class``.
        class_names: the order of the findings; classes of the result not named here follow in its order. None: the
            result's order.
        model_name, model_version: the bundle's name and version.
        threshold: multi-label decision threshold, ``p >= threshold`` is present. Defaults to 0.5.
        single_label: the result is a softmax classifier's (decision = ``predicted_class``). Defaults to False.

    Raises:
        FileNotFoundError: the source image is gone.
        ValueError: the source is not readable DICOM, or ``predicted_class`` is not a class of the result.
        KeyError: a single-label result lacks ``predicted_class``.
    """
    probs = record["probabilities"]
    classes = [c for c in (class_names or []) if c in probs] + [c for c in probs if c not in (class_names or [])]
    decisions = _decisions(record, classes, threshold, single_label)
    source = read_source_instances(record["image"])[0]
    rule = "decision=argmax" if single_label else f"threshold={threshold!r}"
    algorithm = algorithm_identification(model_name, model_version, [rule])
    groups = []
    for c in classes:
        concept = finding_concept(c)
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=c),
                finding_type=concept,
                algorithm_id=algorithm,
                measurements=[
                    hd.sr.Measurement(
                        name=codes.DCM.Probability, value=float(probs[c]), unit=PROBABILITY_UNIT, algorithm_id=algorithm
                    )
                ],
                qualitative_evaluations=[
                    hd.sr.QualitativeEvaluation(
                        name=concept, value=codes.SCT.Present if decisions[c] else codes.SCT.Absent
                    )
                ],
                source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
            )
        )
    return build_measurement_report([source], groups, model_name, model_version, "classification results")


def write_classification_srs(
    output_dir: str | os.PathLike,
    class_names: Sequence[str] | None,
    model_name: str,
    model_version: str,
    threshold: float = 0.5,
    single_label: bool = False,
    overwrite: bool | str = False,
    enabled: bool | str = True,
) -> SRSummary:
    """Write ``<output_dir>/<case_id>_sr.dcm`` for every per-case result whose input is DICOM and whose report is
    missing (so a second run, or one after a crash, fills in only what is missing); the bundles' ``finalize`` step.

    Each report is written to a hidden temporary file and linked into place (never replacing an existing one
    unless ``overwrite``). A case whose source DICOM is gone or unreadable, or whose result cannot be reported, is
    logged (a warning naming the case, its result and its source) and listed in the summary's ``failed``; the
    others are still written.

    Args:
        output_dir: the folder of per-case results; a missing folder writes nothing.
        class_names: the order of the findings (see :func:`build_classification_sr`).
        model_name, model_version: the bundle's name and version (``@_meta_#name``, ``@_meta_#version``).
        threshold: the multi-label decision threshold, in (0, 1). Defaults to 0.5.
        single_label: softmax results (the decision is ``predicted_class``). Defaults to False.
        overwrite: replace existing reports (``--overwrite true`` rewrites the results too). Defaults to False.
        enabled: write reports at all (the bundles' ``dicom_results``). Defaults to True.

    Returns:
        The :class:`~monai_ext.dicom.sr.SRSummary`.

    Raises:
        ValueError: ``threshold`` is not strictly between 0 and 1, or a flag is not a boolean.
    """
    if not as_flag(enabled, "dicom_results"):
        return SRSummary()
    single = as_flag(single_label, "single_label")
    if not single and not (isinstance(threshold, (int, float)) and 0.0 < float(threshold) < 1.0):
        raise ValueError(f"decision_threshold must be a number strictly between 0 and 1, got {threshold!r}.")
    out = Path(output_dir)
    if not out.is_dir():
        return SRSummary()
    names = None if class_names is None else [str(c) for c in class_names]
    return write_missing_srs(
        out.glob("*.json"),
        lambda path: path.with_name(f"{path.stem}{CLASSIFICATION_SR_SUFFIX}"),
        lambda record: build_classification_sr(record, names, model_name, model_version, float(threshold), single),
        required=("case_id", "image", "probabilities"),
        overwrite=as_flag(overwrite, "overwrite"),
        logger=logging.getLogger(__name__),
    )


def read_classification_sr(path: str | os.PathLike) -> dict[str, tuple[float, bool]]:
    """``{class: (probability, present)}`` of a classification report, read with highdicom's content API (the class
    is each measurement group's tracking identifier).

    Raises:
        ValueError: a group lacks the probability or the decision.
    """
    sr = hd.sr.srread(path)
    found = {}
    for group in sr.content.get_image_measurement_groups():
        measurements = group.get_measurements(name=codes.DCM.Probability)
        evaluations = group.get_qualitative_evaluations()
        if len(measurements) != 1 or len(evaluations) != 1:
            raise ValueError(f"'{path}': group '{group.tracking_identifier}' lacks its probability or decision.")
        found[str(group.tracking_identifier)] = (
            float(measurements[0].value),
            evaluations[0].value == codes.SCT.Present,
        )
    return found
