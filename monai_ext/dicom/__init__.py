# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DICOM results of the bundles: the source instances of a case (:mod:`~monai_ext.dicom.sources`)."""

from monai_ext.dicom.sources import is_dicom_source, read_source_instances, slice_normal_positions

__all__ = ["is_dicom_source", "read_source_instances", "slice_normal_positions"]
