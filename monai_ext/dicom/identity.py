# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Who wrote a DICOM result and how its classes are coded: shared by the SEG (:mod:`~monai_ext.dicom.seg`) and the
Structured Reports (:mod:`~monai_ext.dicom.sr`, :mod:`~monai_ext.dicom.seg_volumes`).

- Equipment: ``Manufacturer`` :data:`MANUFACTURER`, ``ManufacturerModelName`` the bundle's name (cut to the 64
  characters of the LO value representation, :func:`model_name_lo`), ``SoftwareVersions``
  ``[bundle version, "monai_ext <version>"]`` (:func:`software_versions`), ``DeviceSerialNumber`` ``"none"`` (no
  hardware device).
- Observer of a report: the model as a device (TID 1004, :func:`device_observation_context`), its UID derived from
  the bundle's name and version, so all reports of one model version name the same device.
- Classes: SNOMED CT where pydicom's code dictionary (DICOM PS3.16) has a concept that means the class (``lesion``:
  ``(52988006, SCT, "Lesion")``); pydicom 3.0's ``codes.SCT`` has none for the CXR findings, ROP stages or
  ground-glass opacity / consolidation / infection, so those are ``(class, 99RMB, class)`` in a local scheme
  (PS3.3 8.2.1: a designator starting ``99``), declared in each object's ``CodingSchemeIdentificationSequence``
  (:func:`local_coding_scheme`). No SNOMED code is invented.
"""

from __future__ import annotations

import highdicom as hd
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

import monai_ext

__all__ = [
    "MANUFACTURER",
    "LOCAL_SCHEME",
    "DEVICE_SERIAL_NUMBER",
    "software_versions",
    "model_name_lo",
    "finding_concept",
    "local_coding_scheme",
    "device_observation_context",
    "new_object_attributes",
]

MANUFACTURER = "robust-medical-bundles"
"""``Manufacturer`` of every DICOM result of the bundles."""

LOCAL_SCHEME = "99RMB"
"""Coding scheme designator of the class names no standard concept means (value = meaning = class name)."""

DEVICE_SERIAL_NUMBER = "none"
"""``DeviceSerialNumber`` (Type 1 in SEG and SR equipment): the results come from software, not a device."""

_KNOWN_FINDINGS = {"lesion": codes.SCT.Lesion}
"""Class names (lower case) that a standard concept means."""


def software_versions(model_version: str) -> list[str]:
    """``SoftwareVersions``: the bundle version, then ``"monai_ext <version>"``."""
    return [str(model_version), f"monai_ext {monai_ext.__version__}"]


def model_name_lo(model_name: str) -> str:
    """``ManufacturerModelName``: the bundle's name cut to 64 characters (LO), e.g. ``cxr_lt_fpsm_classification``
    fits; a longer fork name is cut, not refused."""
    return str(model_name)[:64]


def finding_concept(class_name: str) -> hd.sr.CodedConcept:
    """The coded concept of a class: SNOMED CT where one means it (``lesion``), else ``(class, 99RMB, class)``."""
    known = _KNOWN_FINDINGS.get(str(class_name).lower())
    if known is not None:
        return hd.sr.CodedConcept(value=known.value, scheme_designator=known.scheme_designator, meaning=known.meaning)
    return hd.sr.CodedConcept(value=str(class_name), scheme_designator=LOCAL_SCHEME, meaning=str(class_name))


def local_coding_scheme() -> CodingSchemeIdentificationItem:
    """The ``CodingSchemeIdentificationSequence`` item declaring :data:`LOCAL_SCHEME`."""
    return CodingSchemeIdentificationItem(
        designator=LOCAL_SCHEME, name="robust-medical-bundles class names", responsible_organization=MANUFACTURER
    )


def device_observation_context(model_name: str, model_version: str) -> hd.sr.ObservationContext:
    """TID 1001 with the model as the device observer (TID 1004); its UID is derived from name and version."""
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=[MANUFACTURER, str(model_name), str(model_version)]),
        name=str(model_name),
        manufacturer_name=MANUFACTURER,
        model_name=model_name_lo(model_name),
        serial_number=DEVICE_SERIAL_NUMBER,
    )
    return hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )


def new_object_attributes(
    model_name: str, model_version: str, series_number: int, series_description: str
) -> dict[str, object]:
    """The keyword arguments every new highdicom SEG/SR of a bundle takes alike: a new series (``series_number``,
    ``series_description`` cut to 64 characters) holding instance 1 with new UIDs, and the equipment identity."""
    return {
        "series_instance_uid": generate_uid(),
        "series_number": int(series_number),
        "sop_instance_uid": generate_uid(),
        "instance_number": 1,
        "manufacturer": MANUFACTURER,
        "manufacturer_model_name": model_name_lo(model_name),
        "software_versions": software_versions(model_version),
        "device_serial_number": DEVICE_SERIAL_NUMBER,
        "series_description": str(series_description)[:64],
    }
