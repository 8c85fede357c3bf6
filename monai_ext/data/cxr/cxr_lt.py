# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""CXR-LT 2023 training datalists: the patient-disjoint train/val split of MIMIC-CXR-LT ``train.csv``, the official
development and test files, and offline-augmented (DADAM) images appended to the training part.

The augmented folder is a DADAM output (:mod:`monai_ext.data.cxr.dadam_generate`) in the MIMIC-CXR-LT layout: its
``cxr-lt-2023/train.csv`` lists images whose ``subject_id`` is the subject of the original image they were drawn on,
so a patient-level split stays valid only when every such subject is a *training* patient; a validation patient there
would leak validation images into training and is refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.cxr.common import find_label_file, patient_val_split
from monai_ext.data.cxr.labels import MIMIC_CXR_LT_CLASSES
from monai_ext.data.cxr.mimic import MimicCxrLtSplit, mimic_cxr_lt_datalist
from monai_ext.data.datalist import DatasetLayoutError, assign_indices, row_error

__all__ = ["CxrLtSplit", "cxr_lt_val_patients", "cxr_lt_datalist"]


class CxrLtSplit(StrEnum):
    """Splits of a CXR-LT training run: ``train``/``val`` partition ``train.csv`` by patient."""

    TRAIN = "train"
    VAL = "val"
    DEVELOPMENT = "development"
    TEST = "test"


def cxr_lt_val_patients(
    dataset_dir: str | os.PathLike, val_fraction: float = 0.2, seed: int = 0, check_files: bool = False
) -> set[str]:
    """The validation subjects of :func:`cxr_lt_datalist`: :func:`~monai_ext.data.cxr.common.patient_val_split` of
    the subject ids of ``dataset_dir/cxr-lt-2023/train.csv`` with ``val_fraction`` and ``seed``.

    Use it wherever training images are chosen (the DADAM generator's backgrounds) so that no validation patient
    enters training.

    Raises:
        FileNotFoundError, DatasetLayoutError: as :func:`~monai_ext.data.cxr.mimic.mimic_cxr_lt_datalist`.
        ValueError: ``val_fraction`` outside [0, 1).
    """
    items = mimic_cxr_lt_datalist(dataset_dir, MimicCxrLtSplit.TRAIN, check_files=check_files)
    return patient_val_split((d["patient_id"] for d in items), val_fraction, seed)


def cxr_lt_datalist(
    dataset_dir: str | os.PathLike,
    split: CxrLtSplit | str = CxrLtSplit.TRAIN,
    val_fraction: float = 0.2,
    seed: int = 0,
    augmented_dir: str | os.PathLike | None = None,
    classes: Sequence[str] = MIMIC_CXR_LT_CLASSES,
    check_files: bool = True,
) -> list[dict]:
    """MIMIC-CXR-LT 2023 datalist of one split of a training run, optionally with offline-augmented training images.

    ``train`` and ``val`` are a patient-disjoint split of ``train.csv`` (the validation subjects are
    :func:`cxr_lt_val_patients`); ``development`` and ``test`` are the official files as they are. With
    ``augmented_dir``, the rows of ``augmented_dir/cxr-lt-2023/train.csv`` are appended after the original training
    rows of the ``train`` split (other splits ignore it).

    Args:
        dataset_dir: the ``mimic_cxr_lt/`` folder (layout: :func:`~monai_ext.data.cxr.mimic.mimic_cxr_lt_datalist`).
        split: {``"train"``, ``"val"``, ``"development"``, ``"test"``}. Defaults to ``"train"``.
        val_fraction: fraction of ``train.csv`` *patients* in ``val``, in [0, 1). Defaults to 0.2.
        seed: seed of the patient split. Defaults to 0.
        augmented_dir: optional folder in the MIMIC-CXR-LT layout (a DADAM output); every subject there must be a
            training patient of ``train.csv`` (not a validation patient, not a development/test or unknown one).
            Defaults to None.
        classes: label columns, a subset of :data:`MIMIC_CXR_LT_CLASSES` in any order. Defaults to all 26.
        check_files: raise if an image file is missing. Defaults to ``True``.

    Returns:
        Items of :func:`~monai_ext.data.cxr.mimic.mimic_cxr_lt_datalist` with ``"split"`` set to the requested split
        and ``"dataset_id"`` (0 = original image, 1 = augmented), originals first in file order, then the augmented
        rows in file order; ``"index"`` is their position (contiguous from 0).

    Raises:
        FileNotFoundError: a label file or (with ``check_files``) an image is missing.
        DatasetLayoutError: as :func:`~monai_ext.data.cxr.mimic.mimic_cxr_lt_datalist`; an augmented row whose
            subject is a validation patient or no training patient, or whose ``dicom_id`` is also an original
            training image (file, line and subject named).
        ValueError: bad ``split``, ``classes`` or ``val_fraction``.
    """
    split = look_up_option(split, CxrLtSplit)
    if split in (CxrLtSplit.DEVELOPMENT, CxrLtSplit.TEST):
        items = mimic_cxr_lt_datalist(dataset_dir, split.value, classes, check_files)
        for d in items:
            d["dataset_id"] = 0
        return items
    originals = mimic_cxr_lt_datalist(dataset_dir, MimicCxrLtSplit.TRAIN, classes, check_files)
    val_patients = patient_val_split((d["patient_id"] for d in originals), val_fraction, seed)
    keep_val = split == CxrLtSplit.VAL
    out = [d for d in originals if (d["patient_id"] in val_patients) == keep_val]
    for d in out:
        d["split"], d["dataset_id"] = split.value, 0
    if split == CxrLtSplit.TRAIN and augmented_dir is not None:
        out += _augmented_items(augmented_dir, originals, val_patients, classes, check_files)
    return assign_indices(out)


def _augmented_items(
    augmented_dir: str | os.PathLike,
    originals: list[dict],
    val_patients: set[str],
    classes: Sequence[str],
    check_files: bool,
) -> list[dict]:
    """Read the augmented ``train.csv`` and refuse rows that would leak a validation/unknown patient or reuse an id."""
    items = mimic_cxr_lt_datalist(augmented_dir, MimicCxrLtSplit.TRAIN, classes, check_files)
    csv_path = find_label_file(Path(augmented_dir).absolute() / "cxr-lt-2023", ["train.csv"], "augmented train.csv")
    train_patients = {d["patient_id"] for d in originals} - val_patients
    original_ids = {d["dicom_id"] for d in originals}
    how = (
        "augmented images must be drawn on training images only: regenerate them from the training patients "
        "(cxr_lt_val_patients with the same val_fraction and seed) or use the same val_fraction/seed here"
    )
    for r, d in enumerate(items):
        subject = d["patient_id"]
        if subject in val_patients:
            raise row_error(
                csv_path, r, "subject_id", f"subject {subject} is a validation patient (leak into validation); {how}."
            )
        if subject not in train_patients:
            raise row_error(
                csv_path, r, "subject_id", f"subject {subject} is no patient of the original train.csv; {how}."
            )
        if d["dicom_id"] in original_ids:
            raise DatasetLayoutError(
                f"'{csv_path}', line {r + 2}, column 'dicom_id': '{d['dicom_id']}' is also an original training "
                "image; give augmented images their own ids (e.g. 'dadam-cutmix-000001')."
            )
        d["split"], d["dataset_id"] = CxrLtSplit.TRAIN.value, 1
    return items
