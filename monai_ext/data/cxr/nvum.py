# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The training and test sets of NVUM (Liu F, Chen Y, Tian Y, Liu Y, Wang C, Belagiannis V, Carneiro G. "NVUM:
Non-volatile unbiased memory for robust medical image classification", MICCAI 2022; github FBLADL/NVUM), built
from the readers of :mod:`monai_ext.data.cxr` with NVUM's label alignment
(:func:`~monai_ext.data.cxr.labels.align_labels`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.cxr.chexpert import chexpert_datalist
from monai_ext.data.cxr.labels import (
    CHEXPERT_CLASSES,
    NIH_CLASSES,
    NO_FINDING,
    NVUM_CHEXPERT_SETTING_CLASSES,
    NVUM_NIH_SETTING_CLASSES,
    OPENI_CLASSES,
    PADCHEST_CLASSES,
    align_labels,
)
from monai_ext.data.cxr.nih import nih_datalist
from monai_ext.data.cxr.openi import openi_datalist
from monai_ext.data.cxr.padchest import PADCHEST_MISSING_IMAGES, padchest_datalist
from monai_ext.data.datalist import assign_indices

__all__ = ["NVUMDataset", "NVUMSetting", "nvum_setting_classes", "nvum_datalist"]


class NVUMDataset(StrEnum):
    """Source dataset: NIH and CheXpert are NVUM's training sets, OpenI and PadChest its external test sets."""

    NIH = "nih"
    CHEXPERT = "chexpert"
    OPENI = "openi"
    PADCHEST = "padchest"


class NVUMSetting(StrEnum):
    """NVUM label space: ``nih`` (:data:`NVUM_NIH_SETTING_CLASSES`, 14) or ``chexpert``
    (:data:`NVUM_CHEXPERT_SETTING_CLASSES`, 8)."""

    NIH = "nih"
    CHEXPERT = "chexpert"


_TRAIN_SETTING = {NVUMDataset.NIH: NVUMSetting.NIH, NVUMDataset.CHEXPERT: NVUMSetting.CHEXPERT}
_SPLITS = {
    NVUMDataset.NIH: ("train", "val", "test"),
    NVUMDataset.CHEXPERT: ("train", "val", "valid"),
    NVUMDataset.OPENI: ("test",),
    NVUMDataset.PADCHEST: ("test",),
}


def nvum_setting_classes(setting: NVUMSetting | str) -> tuple[str, ...]:
    """The class names (output order) of an NVUM setting."""
    setting = look_up_option(setting, NVUMSetting)
    return NVUM_NIH_SETTING_CLASSES if setting == NVUMSetting.NIH else NVUM_CHEXPERT_SETTING_CLASSES


def nvum_datalist(
    dataset_dir: str | os.PathLike,
    dataset: NVUMDataset | str,
    setting: NVUMSetting | str | None = None,
    split: str | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
    reader_kwargs: Mapping[str, Any] | None = None,
    check_files: bool = True,
) -> list[dict]:
    """A dataset of NVUM's experiments with NVUM's label alignment.

    Label spaces: the NIH setting (:data:`NVUM_NIH_SETTING_CLASSES`: 13 NIH diseases without Consolidation, then
    ``No Finding``) and the CheXpert setting (:data:`NVUM_CHEXPERT_SETTING_CLASSES`: Cardiomegaly, Edema,
    Pneumonia, Atelectasis, Pneumothorax, Effusion, Fracture, No Finding). Alignment (NVUM's ``--trim_data``):
    every image positive for a source class outside the setting (and for Consolidation) is dropped, the columns are
    reordered to the setting, and images left without any positive are dropped.

    Per dataset (the reader and its NVUM options; ``reader_kwargs`` override them):

    - ``"nih"`` (setting ``nih`` only): :func:`~monai_ext.data.cxr.nih.nih_datalist`, ``split`` ``"train"``
      (``train_val_list.txt``; 86,524 - 2,852 Consolidation = 83,672 as in NVUM Table 4), ``"val"`` (with
      ``val_fraction``, default 0) or ``"test"``; ``No Finding`` = no NIH disease.
    - ``"chexpert"`` (setting ``chexpert`` only): :func:`~monai_ext.data.cxr.chexpert.chexpert_datalist` with
      frontal rows (``Frontal/Lateral == "Frontal"``), ``Age != 0``, blank -> 0, uncertain -> 0 (U-Zeros);
      ``No Finding`` is the CSV column; ``"train"``/``"val"`` are a patient-disjoint split of ``train.csv`` with
      ``val_fraction`` of the patients in val (default 0.1, NVUM's 90/10), ``"valid"`` the official ``valid.csv``.
      **Differs from the official NVUM code on purpose**: its split shuffles a per-image patient list and indexes a
      non-unique patient index, so each patient's rows are repeated once per image (k images -> ~0.9 k^2 rows) and
      train and val share patients; that is how it reaches 170,958 training rows. Here every image appears once
      and the split is patient-disjoint: 32,010 unique frontal images survive the class trim over all patients
      (about 28.8k in a 90 % train split).
    - ``"padchest"`` (either setting, ``split="test"``): :func:`~monai_ext.data.cxr.padchest.padchest_datalist`
      with its defaults (physician-labelled, ``Projection`` PA/AP, manually reviewed views, one image per patient,
      age > 10 in 2019) and NVUM's 11 missing files excluded; torchxrayvision substring rules over 28 classes,
      ``No Finding`` = none of the 28. Gives 14,714 images (NIH setting) and 12,885 (CheXpert setting), NVUM
      Table 4 exactly.
    - ``"openi"`` (either setting, ``split="test"``): :func:`~monai_ext.data.cxr.openi.openi_datalist`, every
      ``Frontal`` image of ``indiana_projections.csv`` (3,818), MeSH ``<automatic>`` terms with torchxrayvision
      substring rules over 18 classes, ``No Finding`` = none of the 18 (about 2,973 / 2,822 images vs NVUM's
      2,971 / 2,823).

    Args:
        dataset_dir: the dataset's folder (``nih/``, ``chexpert/``, ``openi/`` or ``padchest/``).
        dataset: ``{"nih", "chexpert", "openi", "padchest"}``.
        setting: ``{"nih", "chexpert"}``. Defaults to ``None``: the training set's own setting (``nih`` for NIH and
            ``chexpert`` for CheXpert); required for OpenI and PadChest.
        split: see above. Defaults to ``None``: ``"train"`` for NIH and CheXpert, ``"test"`` for OpenI and PadChest.
        val_fraction: fraction of training patients held out as ``"val"``. Defaults to ``None``: 0 for NIH, 0.1
            for CheXpert; ignored for OpenI and PadChest.
        seed: seed of the patient split. Defaults to 0.
        reader_kwargs: extra keyword arguments for the reader (override the NVUM options above). Defaults to none.
        check_files: raise if an image file is missing. Defaults to ``True``.

    Returns:
        Items of the reader with ``label`` over :func:`nvum_setting_classes` (floats in {0, 1}), ``split`` set to the
        requested split and fresh ``index`` values, in the reader's order.

    Raises:
        ValueError: an unknown dataset / setting / split or a combination NVUM does not use (e.g. NIH with the
            CheXpert setting), or conflicting ``reader_kwargs``.
        FileNotFoundError, DatasetLayoutError: from the reader.
    """
    dataset = look_up_option(dataset, NVUMDataset)
    if setting is None:
        if dataset not in _TRAIN_SETTING:
            raise ValueError(f"dataset '{dataset}' is a test set: pass setting='nih' or setting='chexpert'")
        setting = _TRAIN_SETTING[dataset]
    setting = look_up_option(setting, NVUMSetting)
    if dataset in _TRAIN_SETTING and setting != _TRAIN_SETTING[dataset]:
        raise ValueError(f"NVUM trains on '{dataset}' only in the '{_TRAIN_SETTING[dataset]}' setting, not '{setting}'")
    split = _SPLITS[dataset][0] if split is None else split
    if split not in _SPLITS[dataset]:
        raise ValueError(f"split '{split}' is not available for '{dataset}'; expected one of {list(_SPLITS[dataset])}")
    target = nvum_setting_classes(setting)
    extra = dict(reader_kwargs or {})
    clash = {"classes", "check_files", "split"} & set(extra)
    if clash:
        raise ValueError(f"reader_kwargs may not set {sorted(clash)}; use the nvum_datalist arguments")
    rename: dict[str, str] = {}
    if dataset == NVUMDataset.NIH:
        source = NIH_CLASSES + (NO_FINDING,)
        opts = {"val_fraction": 0.0 if val_fraction is None else val_fraction, "seed": seed, **extra}
        items = nih_datalist(dataset_dir, split=split, classes=source, check_files=check_files, **opts)
    elif dataset == NVUMDataset.CHEXPERT:
        source, rename = CHEXPERT_CLASSES, {"Pleural Effusion": "Effusion"}
        opts = {
            "uncertain": "zeros",
            "blank": "zeros",
            "frontal_only": True,
            "drop_zero_age": True,
            "val_fraction": 0.1 if val_fraction is None else val_fraction,
            "seed": seed,
            **extra,
        }
        items = chexpert_datalist(dataset_dir, split=split, classes=source, check_files=check_files, **opts)
    elif dataset == NVUMDataset.PADCHEST:
        source = PADCHEST_CLASSES + (NO_FINDING,)
        opts = {"exclude_images": PADCHEST_MISSING_IMAGES, **extra}
        items = padchest_datalist(dataset_dir, classes=source, check_files=check_files, **opts)
    else:
        source = OPENI_CLASSES + (NO_FINDING,)
        opts = {"mesh": "automatic", "projection": "frontal", **extra}
        items = openi_datalist(dataset_dir, classes=source, check_files=check_files, **opts)
    out = align_labels(items, source, target, rename=rename, drop_positive=("Consolidation",), drop_unlabelled=True)
    for item in out:
        item["split"] = split
    return assign_indices(out)
