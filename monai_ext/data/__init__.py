# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Readers that turn each public dataset's real on-disk layout into MONAI datalists.

Submodules (import the one you need): ``datalist`` (shared checks and helpers), ``cxr`` (a package whose
``__init__`` is the public entry for NIH ChestX-ray14, CheXpert, OpenI, PadChest, MIMIC-CXR-LT, VinDr-CXR and NVUM
label alignment; one ``cxr.<dataset>`` module per reader, ``cxr.labels`` for class lists and label rules,
``cxr.nvum`` for NVUM's sets, ``cxr.common`` for file lookup and the patient split), ``deeplesion``,
``covid_ct`` (+ ``covid_ct_layouts``, where the two releases keep their files, and ``covid_ct_slices``, its 2D
slice cache), ``rop``, ``eyepacs`` (Kaggle EyePACS diabetic retinopathy, for transfer pre-training) and
``inference`` (folders/lists for batch inference, one mechanism with an input kind: DICOM/PNG/JPEG radiographs, or
NIfTI volumes and DICOM series).
The synthetic demo datasets written in these layouts live in :mod:`monai_ext.demo`.
"""

from __future__ import annotations

from monai_ext.data import (
    covid_ct,
    covid_ct_layouts,
    covid_ct_slices,
    cxr,
    datalist,
    deeplesion,
    eyepacs,
    inference,
    rop,
)
from monai_ext.data.covid_ct import covid_ct_datalist
from monai_ext.data.cxr import nvum_datalist
from monai_ext.data.datalist import DatasetLayoutError, assign_indices
from monai_ext.data.deeplesion import deeplesion_datalist, deeplesion_subset
from monai_ext.data.eyepacs import eyepacs_datalist
from monai_ext.data.inference import InputKind, prepare_inference_datalist
from monai_ext.data.rop import check_meta_splits, rop_datalist

__all__ = ["datalist", "cxr", "deeplesion", "covid_ct", "covid_ct_layouts", "covid_ct_slices", "rop", "eyepacs"]
__all__ += ["inference"]
__all__ += ["DatasetLayoutError", "assign_indices", "nvum_datalist", "covid_ct_datalist", "deeplesion_datalist"]
__all__ += ["deeplesion_subset"]
__all__ += ["rop_datalist", "check_meta_splits", "eyepacs_datalist", "InputKind", "prepare_inference_datalist"]
