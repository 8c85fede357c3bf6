# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DICOM results of the bundles: the source instances of a case (:mod:`~monai_ext.dicom.sources`) and the
Structured Reports of the classification and detection bundles (:mod:`~monai_ext.dicom.sr_classification`,
:mod:`~monai_ext.dicom.sr_detection`)."""

from monai_ext.dicom.sources import is_dicom_source, read_source_instances, slice_normal_positions
from monai_ext.dicom.sr import SRSummary, finding_concept
from monai_ext.dicom.sr_classification import (
    build_classification_sr,
    read_classification_sr,
    write_classification_srs,
)
from monai_ext.dicom.sr_detection import box_polyline, build_detection_sr, read_detection_sr, write_detection_srs

__all__ = [
    "is_dicom_source",
    "read_source_instances",
    "slice_normal_positions",
    "SRSummary",
    "finding_concept",
    "build_classification_sr",
    "read_classification_sr",
    "write_classification_srs",
    "box_polyline",
    "build_detection_sr",
    "read_detection_sr",
    "write_detection_srs",
]
