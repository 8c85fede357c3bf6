# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Readers that turn each public dataset's real on-disk layout into MONAI datalists.

Submodules (import the one you need): ``datalist`` (shared checks and helpers), ``cxr`` (a package whose
``__init__`` is the public entry for NIH ChestX-ray14, CheXpert, OpenI, PadChest, MIMIC-CXR-LT, VinDr-CXR and NVUM
label alignment; one ``cxr.<dataset>`` module per reader, ``cxr.labels`` for class lists and label rules,
``cxr.nvum`` for NVUM's sets, ``cxr.common`` for file lookup and the patient split), ``deeplesion``,
``covid_ct`` (+ ``covid_ct_layouts``, where the two releases keep their files, and ``covid_ct_slices``, its 2D
slice cache), ``rop`` and ``inference`` (folders/lists for batch inference, one mechanism with an input kind:
DICOM/PNG/JPEG radiographs, or NIfTI volumes and DICOM series).
The synthetic demo datasets written in these layouts live in :mod:`monai_ext.demo`.
"""

from __future__ import annotations

import importlib

__all__ = [
    "datalist", "cxr", "deeplesion", "covid_ct", "covid_ct_layouts", "covid_ct_slices", "rop", "inference",
]  # fmt: skip


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
