# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DICOM results of the bundles, written beside the JSON/NIfTI results when a case's input was DICOM.

- :mod:`~monai_ext.dicom.sources`: the source instances of a case, in volume slice order;
- :mod:`~monai_ext.dicom.identity`: the equipment, observer and class codes every result shares;
- :mod:`~monai_ext.dicom.seg`, :mod:`~monai_ext.dicom.seg_volumes`, :mod:`~monai_ext.dicom.seg_writer`: the DICOM SEG
  of a segmentation mask, its TID 1500 volume report and the output-folder writer of both;
- :mod:`~monai_ext.dicom.sr_classification`, :mod:`~monai_ext.dicom.sr_detection` (shared parts in
  :mod:`~monai_ext.dicom.sr`): the TID 1500 Structured Reports of the classification and detection bundles.
"""

from monai_ext.dicom.identity import finding_concept
from monai_ext.dicom.seg import build_segmentation, read_segmentation_seg, segment_descriptions
from monai_ext.dicom.seg_volumes import SegmentVolume, build_volume_report, class_volumes_ml, read_volume_report
from monai_ext.dicom.seg_writer import (
    SEG_SUFFIX,
    VOLUMES_SR_SUFFIX,
    SegWriteSummary,
    write_case_seg,
    write_segmentation_segs,
)
from monai_ext.dicom.sources import is_dicom_source, read_source_instances, slice_normal_positions, was_dicom_input
from monai_ext.dicom.sr import SRSummary
from monai_ext.dicom.sr_classification import (
    build_classification_sr,
    read_classification_sr,
    write_classification_srs,
)
from monai_ext.dicom.sr_detection import box_polyline, build_detection_sr, read_detection_sr, write_detection_srs

__all__ = [
    "is_dicom_source",
    "was_dicom_input",
    "read_source_instances",
    "slice_normal_positions",
    "SEG_SUFFIX",
    "VOLUMES_SR_SUFFIX",
    "SegWriteSummary",
    "SegmentVolume",
    "build_segmentation",
    "build_volume_report",
    "class_volumes_ml",
    "read_segmentation_seg",
    "read_volume_report",
    "segment_descriptions",
    "write_case_seg",
    "write_segmentation_segs",
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
