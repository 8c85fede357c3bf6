# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DICOM results of the bundles: the source instances of a case (:mod:`~monai_ext.dicom.sources`), the DICOM SEG of a
segmentation mask (:mod:`~monai_ext.dicom.seg`), its volume report (:mod:`~monai_ext.dicom.seg_volumes`) and the
output-folder writer of both (:mod:`~monai_ext.dicom.seg_writer`)."""

from monai_ext.dicom.seg import build_segmentation, finding_code, read_segmentation_seg, segment_descriptions
from monai_ext.dicom.seg_volumes import SegmentVolume, build_volume_report, class_volumes_ml, read_volume_report
from monai_ext.dicom.seg_writer import (
    SEG_SUFFIX,
    VOLUMES_SR_SUFFIX,
    SegWriteSummary,
    write_case_seg,
    write_segmentation_segs,
)
from monai_ext.dicom.sources import is_dicom_source, read_source_instances, slice_normal_positions

__all__ = [
    "is_dicom_source",
    "read_source_instances",
    "slice_normal_positions",
    "SEG_SUFFIX",
    "VOLUMES_SR_SUFFIX",
    "SegWriteSummary",
    "SegmentVolume",
    "build_segmentation",
    "build_volume_report",
    "class_volumes_ml",
    "finding_code",
    "read_segmentation_seg",
    "read_volume_report",
    "segment_descriptions",
    "write_case_seg",
    "write_segmentation_segs",
]
