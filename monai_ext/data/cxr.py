# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Chest X-ray dataset readers: NIH ChestX-ray14, CheXpert, OpenI, PadChest, MIMIC-CXR-LT, VinDr-CXR, and NVUM's
label alignment. This module is the public entry; the code lives in focused modules:

- :mod:`monai_ext.data.cxr_labels`: class lists, torchxrayvision-style term rules, :func:`align_labels`;
- :mod:`monai_ext.data.cxr_nih`, :mod:`~monai_ext.data.cxr_chexpert`, :mod:`~monai_ext.data.cxr_openi`,
  :mod:`~monai_ext.data.cxr_padchest`, :mod:`~monai_ext.data.cxr_mimic`, :mod:`~monai_ext.data.cxr_vindr`: readers;
- :mod:`monai_ext.data.cxr_nvum`: NVUM's training and test sets (:func:`nvum_datalist`);
- :mod:`monai_ext.data.cxr_common`: file lookup, image checks and the patient-level split.

Every reader returns a MONAI datalist (``image`` absolute path, ``label`` float list over its ``classes``,
``index``, ``patient_id``, ``split`` plus metadata), sorted deterministically, and takes ``check_files``.

Example (bundle config)::

    "$monai_ext.data.cxr.nvum_datalist(@dataset_dir, 'nih', split='train')"
"""

from __future__ import annotations

from monai_ext.data.cxr_chexpert import BlankPolicy, CheXpertSplit, UncertainPolicy, chexpert_datalist
from monai_ext.data.cxr_common import patient_val_split
from monai_ext.data.cxr_labels import (
    CHEXPERT_CLASSES,
    MIMIC_CXR_LT_CLASSES,
    NIH_CLASSES,
    NO_FINDING,
    NVUM_CHEXPERT_SETTING_CLASSES,
    NVUM_NIH_SETTING_CLASSES,
    OPENI_CLASSES,
    OPENI_TERM_RULES,
    PADCHEST_CLASSES,
    PADCHEST_TERM_RULES,
    VINDR_CLASSES,
    TermMatch,
    TermRule,
    align_labels,
    disease_names,
    match_terms,
)
from monai_ext.data.cxr_mimic import MimicCxrLtSplit, mimic_cxr_lt_datalist
from monai_ext.data.cxr_nih import NIHSplit, nih_boxes, nih_datalist
from monai_ext.data.cxr_nvum import NVUMDataset, NVUMSetting, nvum_datalist, nvum_setting_classes
from monai_ext.data.cxr_openi import MeshField, OpenIProjection, openi_datalist, read_openi_reports
from monai_ext.data.cxr_padchest import (
    PADCHEST_BROKEN_IMAGES,
    PADCHEST_MISSING_IMAGES,
    padchest_datalist,
    parse_padchest_labels,
)
from monai_ext.data.cxr_vindr import ReaderAggregation, vindr_datalist

__all__ = [
    "NO_FINDING",
    "NIH_CLASSES",
    "CHEXPERT_CLASSES",
    "MIMIC_CXR_LT_CLASSES",
    "VINDR_CLASSES",
    "PADCHEST_CLASSES",
    "OPENI_CLASSES",
    "NVUM_NIH_SETTING_CLASSES",
    "NVUM_CHEXPERT_SETTING_CLASSES",
    "PADCHEST_TERM_RULES",
    "OPENI_TERM_RULES",
    "PADCHEST_MISSING_IMAGES",
    "PADCHEST_BROKEN_IMAGES",
    "TermRule",
    "TermMatch",
    "NIHSplit",
    "CheXpertSplit",
    "UncertainPolicy",
    "BlankPolicy",
    "MeshField",
    "OpenIProjection",
    "MimicCxrLtSplit",
    "ReaderAggregation",
    "NVUMDataset",
    "NVUMSetting",
    "match_terms",
    "align_labels",
    "disease_names",
    "patient_val_split",
    "parse_padchest_labels",
    "read_openi_reports",
    "nih_datalist",
    "nih_boxes",
    "chexpert_datalist",
    "openi_datalist",
    "padchest_datalist",
    "mimic_cxr_lt_datalist",
    "vindr_datalist",
    "nvum_setting_classes",
    "nvum_datalist",
]
