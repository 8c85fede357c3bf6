# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""CheXpert reader (CheXpert-v1.0-small ``train.csv`` / ``valid.csv``) with explicit policies for uncertain and
blank labels, view selection and a patient-disjoint train/val split.

Citation: Irvin J, Rajpurkar P, Ko M, et al. "CheXpert: A Large Chest Radiograph Dataset with Uncertainty Labels
and Expert Comparison", AAAI 2019. https://stanfordmlgroup.github.io/competitions/chexpert/
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.cxr.common import check_images, find_label_file, patient_val_split
from monai_ext.data.cxr.labels import CHEXPERT_CLASSES, resolve_classes
from monai_ext.data.datalist import assign_indices, csv_lines, read_csv_checked, require_dir, require_unique, row_error

__all__ = ["CheXpertSplit", "UncertainPolicy", "BlankPolicy", "chexpert_datalist"]

CHEXPERT_LAYOUT = (
    "Expected chexpert/CheXpert-v1.0-small/train.csv and valid.csv (.csv.gz accepted) with the original header "
    "(Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,...,Support Devices) and Path values relative to chexpert/, "
    "e.g. CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg."
)
_META = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
_PATIENT = re.compile(r"(?:^|/)(patient\d+)/")


class CheXpertSplit(StrEnum):
    """``train``: ``train.csv`` minus the held-out patients; ``val``: the held-out ``val_fraction`` of
    ``train.csv`` patients; ``valid``: the official ``valid.csv`` (radiologist-labelled, 234 images)."""

    TRAIN = "train"
    VAL = "val"
    VALID = "valid"


class UncertainPolicy(StrEnum):
    """What an uncertain label (``-1.0``) becomes: ``zeros`` -> 0 (U-Zeros), ``ones`` -> 1 (U-Ones),
    ``ignore`` -> NaN (masked)."""

    ZEROS = "zeros"
    ONES = "ones"
    IGNORE = "ignore"


class BlankPolicy(StrEnum):
    """What a blank (not mentioned) label becomes: ``zeros`` -> 0 (negative), ``ignore`` -> NaN."""

    ZEROS = "zeros"
    IGNORE = "ignore"


def _label_matrix(df: pd.DataFrame, path, uncertain: str, blank: str) -> np.ndarray:
    """C-column float matrix from the class columns (blank already NaN), checking every value is 1/0/-1/blank."""
    cols = []
    for c in CHEXPERT_CLASSES:
        num = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, copy=True)
        unparsed = np.isnan(num) & df[c].notna().to_numpy()
        bad = np.flatnonzero(unparsed | (~np.isin(num, (1.0, 0.0, -1.0)) & ~np.isnan(num)))
        if bad.size:
            r = int(bad[0])
            raise row_error(path, r, c, f"label value '{df[c].iloc[r]}' is not one of 1.0, 0.0, -1.0 or blank")
        blanks = np.isnan(num)
        num[num == -1.0] = {"zeros": 0.0, "ones": 1.0, "ignore": np.nan}[uncertain]
        num[blanks] = 0.0 if blank == BlankPolicy.ZEROS else np.nan
        cols.append(num)
    return np.stack(cols, axis=1)


def chexpert_datalist(
    dataset_dir: str | os.PathLike,
    split: CheXpertSplit | str = CheXpertSplit.TRAIN,
    classes: Sequence[str] = CHEXPERT_CLASSES,
    uncertain: UncertainPolicy | str = UncertainPolicy.ZEROS,
    blank: BlankPolicy | str = BlankPolicy.ZEROS,
    frontal_only: bool = True,
    projections: Sequence[str] | None = None,
    drop_zero_age: bool = False,
    val_fraction: float = 0.0,
    seed: int = 0,
    check_files: bool = True,
) -> list[dict]:
    """CheXpert as a MONAI datalist.

    Layout (``dataset_dir`` = ``chexpert/``)::

        CheXpert-v1.0-small/train.csv   # 223,414 rows, 64,540 patients (191,027 Frontal / 32,387 Lateral)
        CheXpert-v1.0-small/valid.csv   # 234 rows, 200 patients
        CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg   # 8-bit JPEG, path = Path column

    Label values: ``1.0`` positive, ``0.0`` negative, ``-1.0`` uncertain, blank = not mentioned. Views: with
    ``frontal_only`` the ``Frontal/Lateral == "Frontal"`` rows are kept (191,027 in train.csv). That includes 17
    frontal rows whose ``AP/PA`` code is ``LL`` (16) or ``RL`` (1); they are frontal files (``*_frontal.jpg``) with a
    wrong projection code, so they are kept by default (NVUM keeps them too); pass ``projections=("PA", "AP")`` to
    drop them as torchxrayvision does (191,010). Prevalences on the 191,027 frontal rows (U-zeros / U-ones):
    Atelectasis 15.6 / 31.2 %, Consolidation 6.8 / 19.6 %, Pneumonia 2.5 / 10.8 %, Edema 26.0 / 32.2 %.

    Args:
        dataset_dir: the ``chexpert/`` folder.
        split: ``{"train", "val", "valid"}``, see :class:`CheXpertSplit`. Defaults to ``"train"``.
        classes: label columns, a subset of :data:`CHEXPERT_CLASSES` in any order. Defaults to all 14.
            ``No Finding`` is the CSV column (1.0 or blank), not derived.
        uncertain: ``{"zeros", "ones", "ignore"}`` for ``-1.0`` (see :class:`UncertainPolicy`). Defaults to
            ``"zeros"`` (U-Zeros, as NVUM).
        blank: ``{"zeros", "ignore"}`` for blank cells (see :class:`BlankPolicy`). Defaults to ``"zeros"``.
        frontal_only: keep only ``Frontal/Lateral == "Frontal"`` rows. Defaults to ``True``.
        projections: if given, keep only rows whose ``AP/PA`` value is listed (e.g. ``("PA", "AP")``).
            Defaults to ``None`` (no projection filter).
        drop_zero_age: drop rows with ``Age == 0`` (3 frontal train rows; NVUM drops them). Defaults to ``False``.
        val_fraction: fraction of ``train.csv`` *patients* held out as ``"val"`` (patient-disjoint, deterministic
            given ``seed``, see :func:`monai_ext.data.cxr.common.patient_val_split`; the split is drawn over the
            patients left after the view/age filters). Defaults to 0 (``"train"`` = all of train.csv).
        seed: seed of the patient split. Defaults to 0.
        check_files: raise if an image file is missing. Defaults to ``True``.

    Returns:
        Items ``{"image", "label" (len(classes) floats, NaN = unknown), "index", "patient_id" ("patient00001"),
        "split", "view" (AP/PA value), "sex", "age"}`` in CSV row order (the CSV is sorted by path).

    Raises:
        FileNotFoundError: the CSV or (with ``check_files``) an image is missing.
        DatasetLayoutError: missing column, a label value other than 1/0/-1/blank, a Path without
            ``patientNNNNN`` (file, line, column named), or a Path listed twice (file and both lines named; path
            spelling and letter case do not make two rows different).
        ValueError: bad option values, or ``split="val"`` with ``val_fraction=0``.
    """
    root = require_dir(dataset_dir, "CheXpert", CHEXPERT_LAYOUT).absolute()
    split = look_up_option(split, CheXpertSplit)
    uncertain = look_up_option(uncertain, UncertainPolicy)
    blank = look_up_option(blank, BlankPolicy)
    classes = resolve_classes(classes, CHEXPERT_CLASSES, "CheXpert")
    if split == CheXpertSplit.VAL and val_fraction <= 0:
        raise ValueError("split='val' needs val_fraction > 0")
    name = "valid.csv" if split == CheXpertSplit.VALID else "train.csv"
    path = find_label_file(root / "CheXpert-v1.0-small", [name], f"CheXpert {name}", CHEXPERT_LAYOUT)
    df = read_csv_checked(
        path,
        _META + CHEXPERT_CLASSES,
        f"CheXpert {name}",
        CHEXPERT_LAYOUT,
        dtype={c: str for c in _META},
        keep_default_na=False,
        na_values={c: [""] for c in CHEXPERT_CLASSES},
    )
    require_unique(df["Path"], csv_lines(len(df)), path, "image (column 'Path')", hint=CHEXPERT_LAYOUT)
    labels = _label_matrix(df, path, uncertain, blank)
    keep = np.ones(len(df), dtype=bool)
    if frontal_only:
        keep &= (df["Frontal/Lateral"] == "Frontal").to_numpy()
    if projections is not None:
        keep &= df["AP/PA"].isin(list(projections)).to_numpy()
    ages = pd.to_numeric(df["Age"], errors="coerce").to_numpy()
    if drop_zero_age:
        keep &= ages != 0
    paths = df["Path"].tolist()
    patients = []
    for r, p in enumerate(paths):
        m = _PATIENT.search(p)
        if m is None:
            raise row_error(path, r, "Path", f"cannot find 'patientNNNNN/' in path {p!r}")
        patients.append(m.group(1))
    rows = np.flatnonzero(keep)
    if split != CheXpertSplit.VALID:
        val = patient_val_split((patients[r] for r in rows), val_fraction, seed)
        want_val = split == CheXpertSplit.VAL
        rows = np.array([r for r in rows if (patients[r] in val) == want_val], dtype=np.int64)
    cols = [CHEXPERT_CLASSES.index(c) for c in classes]
    mat = labels[np.ix_(rows, cols)].tolist() if rows.size else []
    views, sexes = df["AP/PA"].tolist(), df["Sex"].tolist()
    age_list = [None if np.isnan(a) else int(a) for a in ages.tolist()]
    prefix, split_name = f"{root}{os.sep}", str(split)
    out = [
        {
            "image": prefix + paths[r],
            "label": mat[k],
            "patient_id": patients[r],
            "split": split_name,
            "view": views[r] or None,
            "sex": sexes[r] or None,
            "age": age_list[r],
        }
        for k, r in enumerate(rows.tolist())
    ]
    if check_files:
        check_images(out, "CheXpert", CHEXPERT_LAYOUT)
    return assign_indices(out)
