# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Chest X-ray dataset readers: NIH ChestX-ray14, CheXpert, OpenI, PadChest, MIMIC-CXR-LT, VinDr-CXR, and NVUM's
label alignment. This package's ``__init__`` is the public entry; the code lives in one module per concern:

- :mod:`monai_ext.data.cxr.labels`: class lists, torchxrayvision-style term rules, :func:`align_labels`;
- :mod:`monai_ext.data.cxr.nih`, :mod:`~monai_ext.data.cxr.chexpert`, :mod:`~monai_ext.data.cxr.openi`,
  :mod:`~monai_ext.data.cxr.padchest`, :mod:`~monai_ext.data.cxr.mimic`, :mod:`~monai_ext.data.cxr.vindr`: readers;
- :mod:`monai_ext.data.cxr.cxr_lt`: CXR-LT train/val/development/test with augmented training images;
- :mod:`monai_ext.data.cxr.nvum`: NVUM's training and test sets (:func:`nvum_datalist`);
- :mod:`monai_ext.data.cxr.common`: file lookup, image checks and the patient-level split;
- :mod:`monai_ext.data.cxr.lesion_boxes`: NIH / VinDr-CXR expert boxes mapped to CXR-LT classes (DADAM);
- :mod:`monai_ext.data.cxr.dadam_generate`: the offline DADAM dataset generator and report.

Every reader returns a MONAI datalist (``image`` absolute path, ``label`` float list over its ``classes``,
``index``, ``patient_id``, ``split`` plus metadata), sorted deterministically, and takes ``check_files``.

Example (bundle config)::

    "$monai_ext.data.cxr.nvum_datalist(@dataset_dir, 'nih', split='train')"
"""

from __future__ import annotations

from monai_ext.data.cxr.chexpert import BlankPolicy, CheXpertSplit, UncertainPolicy, chexpert_datalist
from monai_ext.data.cxr.common import patient_val_split
from monai_ext.data.cxr.cxr_lt import CxrLtSplit, cxr_lt_datalist, cxr_lt_val_patients
from monai_ext.data.cxr.dadam_generate import DADAM_OUTPUTS, generate_dadam_dataset
from monai_ext.data.cxr.labels import (
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
from monai_ext.data.cxr.lesion_boxes import (
    BOX_CLASS_MAPS,
    BoxSource,
    LesionBox,
    boxes_per_class,
    image_size,
    lesion_box_library,
)
from monai_ext.data.cxr.long_tail import long_tail_groups
from monai_ext.data.cxr.mimic import MimicCxrLtSplit, mimic_cxr_lt_datalist
from monai_ext.data.cxr.nih import NIHSplit, nih_boxes, nih_datalist
from monai_ext.data.cxr.nvum import NVUMDataset, NVUMSetting, nvum_datalist, nvum_setting_classes
from monai_ext.data.cxr.openi import MeshField, OpenIProjection, openi_datalist, read_openi_reports
from monai_ext.data.cxr.padchest import (
    PADCHEST_BROKEN_IMAGES,
    PADCHEST_MISSING_IMAGES,
    padchest_datalist,
    parse_padchest_labels,
)
from monai_ext.data.cxr.vindr import ReaderAggregation, vindr_datalist

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
    "CxrLtSplit",
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
    "cxr_lt_datalist",
    "cxr_lt_val_patients",
    "vindr_datalist",
    "nvum_setting_classes",
    "nvum_datalist",
    "BoxSource",
    "LesionBox",
    "BOX_CLASS_MAPS",
    "image_size",
    "lesion_box_library",
    "boxes_per_class",
    "DADAM_OUTPUTS",
    "generate_dadam_dataset",
]
__all__ += ["long_tail_groups"]
