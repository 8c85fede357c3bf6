# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""EyePACS diabetic retinopathy reader (Kaggle "Diabetic Retinopathy Detection", 2015) for the transfer step.

Algan et al. (meta soft-label learning on ROP, Sec. IV-B) pre-train their ResNet-50 for one epoch on the about 35k
EyePACS training photographs (Cuadros and Bresnick, "EyePACS: an adaptable telemedicine system for diabetic
retinopathy screening", J. Diabetes Sci. Technol. 3(3), 2009), with the clinician's grade 0 (no DR), 1 (mild),
2 (moderate), 3 (severe), 4 (proliferative DR) turned into a binary task. The paper's text writes "diabetic
retinopathy (0) and no diabetic retinopathy (1)", which inverts its own grade scale (grade 0 is no DR); this reader
uses **0 = no DR (grade 0), 1 = DR (grades 1-4)**, the order in which the grade grows. For the pre-training step
only the grouping matters, not which group is called 0.

Kaggle gives labels only for its training folder, so the train/val split here is drawn from ``trainLabels.csv`` at
patient level (both eyes of one patient in the same split), seeded and independent of the row order of the file.
"""

from __future__ import annotations

import math
import os
import re
from enum import Enum
from pathlib import Path

import numpy as np
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.datalist import (
    DatasetLayoutError,
    assign_indices,
    csv_lines,
    read_csv_checked,
    require_dir,
    require_unique,
    row_error,
)

__all__ = ["EyePACSSplit", "EYEPACS_LEVELS", "EYEPACS_BINARY_CLASSES", "eyepacs_patient_splits", "eyepacs_datalist"]

#: clinician grades 0-4 (the ``level`` column), in order.
EYEPACS_LEVELS = ("no DR", "mild", "moderate", "severe", "proliferative DR")

#: classes of the binary task (``binary=True``): 0 = grade 0, 1 = grades 1-4.
EYEPACS_BINARY_CLASSES = ("no DR", "DR")

_LAYOUT = (
    "Expected the Kaggle 'Diabetic Retinopathy Detection' layout: <dataset_dir>/trainLabels.csv with header "
    "'image,level' (image ids such as '10_left', level an integer 0-4) and the photographs "
    "<dataset_dir>/train/<image>.jpeg."
)
_IMAGE_ID = re.compile(r"(?P<patient>.+)_(?P<eye>left|right)")


class EyePACSSplit(StrEnum):
    """Patient-level split drawn from ``trainLabels.csv`` (``all`` = every labelled image)."""

    TRAIN = "train"
    VAL = "val"
    ALL = "all"


def _opt(value: str | Enum) -> str:
    return value.value if isinstance(value, Enum) else value


def _patient_key(patient: str) -> tuple[int, int, str]:
    """Numeric patient ids in numeric order (Kaggle's ``trainLabels.csv`` order), others after them by text."""
    return (0, int(patient), "") if patient.isdigit() else (1, 0, patient)


def eyepacs_patient_splits(patients: list[str], val_fraction: float = 0.1, seed: int = 0) -> dict[str, str]:
    """Split patients into ``"train"`` / ``"val"``, reproducibly.

    The patients are sorted (numbers numerically) and shuffled with ``numpy.random.default_rng(seed)``; the first
    ``round(val_fraction * n)`` go to val (at least one when ``val_fraction > 0`` and there are two or more
    patients, at most ``n - 1``). The result does not depend on the order of ``patients``.

    Args:
        patients: patient ids (duplicates are ignored).
        val_fraction: fraction of patients in val, in ``[0, 1)``. Default 0.1.
        seed: seed of the shuffle. Default 0.

    Returns:
        patient id -> ``"train"`` or ``"val"``.

    Raises:
        ValueError: ``val_fraction`` outside ``[0, 1)``.

    Example:
        >>> sorted(eyepacs_patient_splits(["3", "1", "2"], val_fraction=0.0).items())
        [('1', 'train'), ('2', 'train'), ('3', 'train')]
    """
    if not 0.0 <= val_fraction < 1.0 or math.isnan(val_fraction):
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}.")
    ordered = sorted(set(patients), key=_patient_key)
    n_val = int(round(val_fraction * len(ordered)))
    if val_fraction > 0 and len(ordered) >= 2:
        n_val = min(max(n_val, 1), len(ordered) - 1)
    perm = np.random.default_rng(seed).permutation(len(ordered))
    val = {ordered[i] for i in perm[:n_val]}
    return {p: "val" if p in val else "train" for p in ordered}


def _level(csv: Path, row: int, text: str) -> int:
    """The ``level`` cell of data row ``row`` as an int in 0..4, else an error naming file, line and column."""
    text = str(text).strip()
    if not text:
        raise row_error(csv, row, "level", "empty value; expected an integer grade 0-4")
    try:
        value = float(text)
    except ValueError as e:
        raise row_error(csv, row, "level", f"expected an integer grade 0-4, found {text!r}") from e
    if not value.is_integer() or not 0 <= value <= 4:
        raise row_error(csv, row, "level", f"expected an integer grade 0-4, found {text!r}")
    return int(value)


def eyepacs_datalist(
    dataset_dir: str | os.PathLike,
    split: str | EyePACSSplit = EyePACSSplit.TRAIN,
    binary: bool = True,
    val_fraction: float = 0.1,
    seed: int = 0,
    image_dir: str = "train",
    extension: str = ".jpeg",
    check_files: bool = True,
) -> list[dict]:
    """Read the Kaggle EyePACS training set into a single-label classification datalist.

    On-disk layout (as downloaded from Kaggle, ``train.zip.00x`` unpacked)::

        <dataset_dir>/trainLabels.csv        image,level   e.g. 10_left,0 / 10_right,0 / 15_left,1 ...
        <dataset_dir>/train/<image>.jpeg     colour fundus photograph, e.g. train/10_left.jpeg

    ``image`` is ``<patient>_left`` or ``<patient>_right``; ``level`` the grade 0 no DR, 1 mild, 2 moderate,
    3 severe, 4 proliferative DR. Items are sorted by patient (numerically) and eye, left first.

    Args:
        dataset_dir: EyePACS root.
        split: ``"train"`` (default), ``"val"`` (patient-level split of ``trainLabels.csv``, see
            :func:`eyepacs_patient_splits`) or ``"all"`` (every image; ``split`` of an item still says where the
            draw put its patient).
        binary: ``True`` (default): ``label`` 0 = no DR (grade 0), 1 = DR (grades 1-4) (the paper's "DR (0), no DR
            (1)" inverts its own scale; see the module docstring); ``False``: ``label`` is the grade 0-4.
        val_fraction: fraction of patients in val, in ``[0, 1)``. Default 0.1.
        seed: seed of the patient split. Default 0.
        image_dir: folder of the photographs under ``dataset_dir``. Default ``"train"``.
        extension: file name ending of the photographs. Default ``".jpeg"``.
        check_files: require every selected photograph to exist. Default ``True``.

    Returns:
        list of dicts with ``image`` (absolute path), ``label`` (int), ``level`` (grade 0-4), ``image_id``
        (e.g. ``"10_left"``), ``patient_id`` (``"10"``), ``eye`` (``"left"``/``"right"``), ``split`` and ``index``.

    Raises:
        FileNotFoundError: ``trainLabels.csv`` or (``check_files``) the image folder or photographs are missing
            (count and first paths given).
        DatasetLayoutError: a missing column, an image id not of the form ``<patient>_left``/``<patient>_right``,
            a ``level`` that is empty, not an integer or outside 0-4 (file, line and column named), or an image
            listed twice (both lines named).
        ValueError: an unknown ``split`` or ``val_fraction`` outside ``[0, 1)``.
    """
    split = look_up_option(_opt(split), EyePACSSplit)
    root = Path(dataset_dir).absolute()
    csv = root / "trainLabels.csv"
    df = read_csv_checked(csv, ["image", "level"], "EyePACS trainLabels.csv", _LAYOUT, dtype=str, keep_default_na=False)
    require_unique(df["image"], csv_lines(len(df)), csv, "image (column 'image')", hint=_LAYOUT)

    rows = []
    for row, (image_id, level_text) in enumerate(zip(df["image"], df["level"])):
        image_id = str(image_id).strip()
        match = _IMAGE_ID.fullmatch(image_id)
        if match is None:
            raise row_error(csv, row, "image", f"expected '<patient>_left' or '<patient>_right', found {image_id!r}")
        level = _level(csv, row, level_text)
        rows.append((image_id, match["patient"], match["eye"], level))
    if not rows:
        raise DatasetLayoutError(f"'{csv}' lists no images. {_LAYOUT}")

    splits = eyepacs_patient_splits([r[1] for r in rows], val_fraction=val_fraction, seed=seed)
    rows.sort(key=lambda r: (_patient_key(r[1]), r[2]))
    images = root / image_dir
    items = [
        {
            "image": str(images / f"{image_id}{extension}"),
            "label": (int(level > 0) if binary else level),
            "level": level,
            "image_id": image_id,
            "patient_id": patient,
            "eye": eye,
            "split": splits[patient],
        }
        for image_id, patient, eye, level in rows
        if split == EyePACSSplit.ALL or splits[patient] == split.value
    ]
    if check_files and items:
        require_dir(images, "EyePACS image", _LAYOUT)
        missing = [it["image"] for it in items if not Path(it["image"]).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(items)} EyePACS image(s) listed in '{csv}' are missing, e.g. {missing[:3]}. "
                f"{_LAYOUT}"
            )
    return assign_indices(items)
