# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Small demo datasets in each public dataset's real on-disk layout, with learnable signal and realistic noise.

``python -m monai_ext.demo --out demo_data`` writes every dataset under ``demo_data/<name>/``; the bundles'
``dataset_dir`` defaults point there. Each writer is deterministic given its seed.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["DEMO_WRITERS", "DEMO_OPTIONS", "get_writer", "write_demo_datasets"]

# dataset folder name -> (module, writer function); the folder names are the ones the readers' docs use.
DEMO_WRITERS: dict[str, tuple[str, str]] = {
    "nih": ("monai_ext.demo.cxr", "write_nih_demo"),
    "chexpert": ("monai_ext.demo.cxr", "write_chexpert_demo"),
    "openi": ("monai_ext.demo.cxr", "write_openi_demo"),
    "padchest": ("monai_ext.demo.cxr", "write_padchest_demo"),
    "mimic_cxr_lt": ("monai_ext.demo.cxr", "write_mimic_cxr_lt_demo"),
    "vindr": ("monai_ext.demo.cxr", "write_vindr_demo"),
    "deeplesion": ("monai_ext.demo.deeplesion", "write_deeplesion_demo"),
    "covid_medseg": ("monai_ext.demo.covid_ct", "write_covid_medseg_demo"),
    "covid_ma": ("monai_ext.demo.covid_ct", "write_covid_ma_demo"),
    "rop": ("monai_ext.demo.rop", "write_rop_demo"),
    "eyepacs": ("monai_ext.demo.eyepacs", "write_eyepacs_demo"),
}

#: Options :func:`write_demo_datasets` (``make demo``) gives a writer instead of its own defaults; ``size`` multiplies
#: the requested size. The NVUM demo trains on NIH and tests on OpenI and PadChest: with the writers' defaults (about
#: 170 training images, 2-4 noisy positives for most classes, lesion contrast 0.2, 3 test positives per class) its
#: printed AUC stays near chance. Twice the NIH patients with at least 30 clean positives per class and split, and
#: 1.5 times the test reports/studies with at least 10 positives per class, all at lesion contrast 0.5, let the demo
#: overlay's 8 epochs reach a mean disease AUC of about 0.8 in about a minute and a half on 2 CPUs. The ROP demo at
#: three times the default size (about 90 infants, 800 images) gives the meta soft-label bundle a meta set and a test
#: set of about 50 unanimous images each. The CXR-LT (FPSM + DADAM) demo trains on MIMIC-CXR-LT at twice the default
#: size (about 190 training images with a long tail of 1-3 noisy positives for the rarest classes, development and
#: test with at least 5 clean positives per class) at lesion contrast 0.5, and takes DADAM's lesion boxes from NIH
#: (every boxable lesion of both official lists: about 250 boxes, 20-40 per class; only BBox_List_2017.csv differs
#: from the NVUM options alone) and VinDr-CXR (twice the images, at least 10 per class: 8-30 agreed boxes per class).
#: The DeepLesion demo is written at four times the default size (about 200 training key images) with lesion contrast
#: 3 (three times each lesion type's HU difference to its host): at contrast 1 the detector of the demo overlay does
#: not learn it on a CPU (see ``write_deeplesion_demo``); DeepLesion's annotation noise (unannotated lesions, loose
#: boxes, tiny and low-contrast lesions) is kept.
#: Callers of a writer itself (the benchmarks) keep its defaults.
DEMO_OPTIONS: dict[str, dict[str, Any]] = {
    "nih": {"size": 2.0, "min_positives": 30, "lesion_contrast": 0.5, "bbox_fraction": 1.0,
            "bbox_splits": ("test", "train_val")},  # fmt: skip
    "openi": {"size": 1.5, "min_positives": 10, "lesion_contrast": 0.5},
    "padchest": {"size": 1.5, "min_positives": 10, "lesion_contrast": 0.5},
    "rop": {"size": 3.0},
    "mimic_cxr_lt": {"size": 2.0, "lesion_contrast": 0.5, "eval_min_positives": 5},
    "vindr": {"size": 2.0, "min_positives": 10},
    "deeplesion": {"size": 4.0, "lesion_contrast": 3.0},
}


def get_writer(name: str) -> Callable[..., dict[str, Any]]:
    """The writer function of demo dataset ``name`` (a key of :data:`DEMO_WRITERS`).

    Raises:
        ValueError: ``name`` is not a known demo dataset.
    """
    if name not in DEMO_WRITERS:
        raise ValueError(f"unknown demo dataset {name!r}; choose from {sorted(DEMO_WRITERS)}.")
    module, func = DEMO_WRITERS[name]
    return getattr(importlib.import_module(module), func)


def write_demo_datasets(
    out_dir: str | os.PathLike, size: float = 1.0, seed: int = 0, names: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Write the demo datasets ``names`` (default: all) under ``out_dir/<name>``.

    Args:
        out_dir: root folder; each dataset goes to its own sub-folder.
        size: scale of the number of cases (1.0 = the default demo size); multiplied by the dataset's
            :data:`DEMO_OPTIONS` ``size`` when it has one.
        seed: base seed; dataset ``k`` in :data:`DEMO_WRITERS` order uses ``seed + k`` so datasets differ.

    Returns:
        the writers' summaries keyed by dataset name.
    """
    names = list(DEMO_WRITERS) if names is None else list(names)
    order = list(DEMO_WRITERS)
    summaries = {}
    for name in names:
        writer = get_writer(name)
        options = dict(DEMO_OPTIONS.get(name, {}))
        scaled = size * options.pop("size", 1.0)
        summaries[name] = writer(Path(out_dir) / name, size=scaled, seed=seed + order.index(name), **options)
    return summaries
