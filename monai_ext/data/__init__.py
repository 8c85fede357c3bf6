# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Readers that turn each public dataset's real on-disk layout into MONAI datalists.

Submodules (import the one you need): ``datalist`` (shared checks and helpers), ``cxr`` (the public entry for
NIH ChestX-ray14, CheXpert, OpenI, PadChest, MIMIC-CXR-LT, VinDr-CXR and NVUM label alignment; one ``cxr_<dataset>``
module per reader, ``cxr_labels`` for class lists and label rules, ``cxr_nvum`` for NVUM's sets), ``deeplesion``,
``covid_ct`` (+ ``covid_ct_slices``, its 2D slice cache), ``rop``, ``inference`` (folders/lists for batch inference,
one mechanism with an input kind: DICOM/PNG/JPEG radiographs, or NIfTI volumes and DICOM series) and ``demo`` (writes
small datasets in every layout).
"""

from __future__ import annotations

import importlib

__all__ = [
    "datalist", "cxr", "deeplesion", "covid_ct", "covid_ct_slices", "rop", "inference", "demo",
]  # fmt: skip


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
