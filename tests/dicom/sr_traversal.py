# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Plain-pydicom reading of the bundles' TID 1500 reports, independent of highdicom and of ``monai_ext.dicom``: the
tests compare its reading with the per-case JSON and with ``read_classification_sr`` / ``read_detection_sr``.

DICOM PS3.16 codes used: Measurement Group ``(125007, DCM)``, Tracking Identifier ``(112039, DCM)``, Finding
``(121071, DCM)``, Probability ``(122157, DCM)``, Present ``(52101004, SCT)``, Absent ``(272519000, SCT)``."""

from __future__ import annotations

from pydicom.dataset import Dataset

MEASUREMENT_GROUP = ("125007", "DCM")
TRACKING_IDENTIFIER = ("112039", "DCM")
FINDING = ("121071", "DCM")
PROBABILITY = ("122157", "DCM")
PRESENT, ABSENT = ("52101004", "SCT"), ("272519000", "SCT")


def code(seq_item: Dataset) -> tuple[str, str]:
    """``(value, scheme)`` of a code sequence item (``CodeValue`` or ``LongCodeValue``)."""
    value = seq_item.get("CodeValue") or seq_item.get("LongCodeValue")
    return str(value), str(seq_item.CodingSchemeDesignator)


def concept(item: Dataset) -> tuple[str, str]:
    return code(item.ConceptNameCodeSequence[0])


def walk(items) -> list[Dataset]:
    """Every content item below ``items``, depth first."""
    found = []
    for item in items:
        found.append(item)
        found.extend(walk(item.get("ContentSequence", [])))
    return found


def measurement_groups(ds: Dataset) -> list[Dataset]:
    return [i for i in walk(ds.ContentSequence) if i.ValueType == "CONTAINER" and concept(i) == MEASUREMENT_GROUP]


def group_fields(group: Dataset) -> dict:
    """The direct children of one measurement group: tracking identifier text, finding type code, the probability
    (``FloatingPointValue``, ``NumericValue`` and unit code), the decision code(s) keyed by their concept name, the
    referenced image UIDs and the SCOORD (graphic type, flat data, referenced image UIDs)."""
    out: dict = {"decisions": {}, "images": [], "scoords": []}
    for item in group.ContentSequence:
        name = concept(item)
        if item.ValueType == "TEXT" and name == TRACKING_IDENTIFIER:
            out["tracking"] = str(item.TextValue)
        elif item.ValueType == "CODE" and name == FINDING:
            out["finding"] = code(item.ConceptCodeSequence[0])
        elif item.ValueType == "NUM" and name == PROBABILITY:
            value = item.MeasuredValueSequence[0]
            out["fd"] = float(value.FloatingPointValue)
            out["ds"] = float(value.NumericValue)
            out["unit"] = code(value.MeasurementUnitsCodeSequence[0])
        elif item.ValueType == "CODE":
            out["decisions"][name] = code(item.ConceptCodeSequence[0])
        elif item.ValueType == "IMAGE":
            ref = item.ReferencedSOPSequence[0]
            out["images"].append((str(ref.ReferencedSOPClassUID), str(ref.ReferencedSOPInstanceUID)))
        elif item.ValueType == "SCOORD":
            ref = item.ContentSequence[0].ReferencedSOPSequence[0]
            image = (str(ref.ReferencedSOPClassUID), str(ref.ReferencedSOPInstanceUID))
            out["scoords"].append((str(item.GraphicType), [float(v) for v in item.GraphicData], image))
    return out
