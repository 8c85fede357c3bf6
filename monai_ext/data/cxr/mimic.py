# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MIMIC-CXR-LT 2023 reader (CXR-LT challenge, ICCV CVAMD 2023): 26 long-tailed classes over MIMIC-CXR-JPG.

Citation: Holste G, Zhou Y, Wang S, et al. "Towards long-tailed, multi-label disease classification from chest
X-ray: Overview of the CXR-LT challenge", Medical Image Analysis, 2024. PhysioNet ``cxr-lt-iccv-workshop-cvamd``
v1.1.0 (labels) and Johnson AEW et al., MIMIC-CXR-JPG v2.0.0 (images).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.cxr.common import check_images, find_label_file
from monai_ext.data.cxr.labels import MIMIC_CXR_LT_CLASSES, resolve_classes
from monai_ext.data.datalist import assign_indices, csv_lines, read_csv_checked, require_dir, require_unique, row_error

__all__ = ["MimicCxrLtSplit", "mimic_cxr_lt_datalist"]

MIMIC_LAYOUT = (
    "Expected mimic_cxr_lt/cxr-lt-2023/{train,development,test}.csv (subject_id,study_id,dicom_id,ViewPosition,"
    "split,path + the 26 class columns) and images mimic_cxr_lt/files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg."
)
_SUBJECT = re.compile(r"(?:^|/)p(\d{8})/")


class MimicCxrLtSplit(StrEnum):
    """The three CXR-LT 2023 label files."""

    TRAIN = "train"
    DEVELOPMENT = "development"
    TEST = "test"


def mimic_cxr_lt_datalist(
    dataset_dir: str | os.PathLike,
    split: MimicCxrLtSplit | str = MimicCxrLtSplit.TRAIN,
    classes: Sequence[str] = MIMIC_CXR_LT_CLASSES,
    check_files: bool = True,
) -> list[dict]:
    """MIMIC-CXR-LT 2023 as a MONAI datalist.

    Layout (``dataset_dir`` = ``mimic_cxr_lt/``)::

        cxr-lt-2023/train.csv, development.csv, test.csv    # one row per image (dicom); 377,110 CXRs in all
        files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg          # 8-bit JPEG (path column, relative to mimic_cxr_lt/)

    Columns: ``dicom_id``, ``path`` and the 26 class columns (:data:`MIMIC_CXR_LT_CLASSES`) are required, found by
    name in any order; ``subject_id``, ``study_id``, ``ViewPosition`` are copied when present. Class values must be
    0 or 1 (text-mined labels; ``No Finding`` is a class, every image has at least one positive).

    Args:
        dataset_dir: the ``mimic_cxr_lt/`` folder.
        split: ``{"train", "development", "test"}``. Defaults to ``"train"``.
        classes: label columns, a subset of :data:`MIMIC_CXR_LT_CLASSES` in any order. Defaults to all 26.
        check_files: raise if an image file is missing. Defaults to ``True``.

    Returns:
        Items ``{"image", "label" (len(classes) floats in {0, 1}), "index", "patient_id" (subject id), "split",
        "dicom_id", "study_id", "view"}`` in file order.

    Raises:
        FileNotFoundError: the CSV or (with ``check_files``) an image is missing.
        DatasetLayoutError: a missing column, a class value other than 0/1, or a path without ``pXXXXXXXX/``
            when ``subject_id`` is absent (file, line, column named), or a ``dicom_id`` or ``path`` listed twice
            (file and both lines named; path spelling and letter case do not make two rows different).
        ValueError: bad ``split`` or ``classes``.
    """
    root = require_dir(dataset_dir, "MIMIC-CXR-LT", MIMIC_LAYOUT).absolute()
    split = look_up_option(split, MimicCxrLtSplit)
    classes = resolve_classes(classes, MIMIC_CXR_LT_CLASSES, "MIMIC-CXR-LT")
    path = find_label_file(root / "cxr-lt-2023", [f"{split}.csv"], f"MIMIC-CXR-LT {split}.csv", MIMIC_LAYOUT)
    meta = ("subject_id", "study_id", "dicom_id", "ViewPosition", "path")
    df = read_csv_checked(
        path,
        ("dicom_id", "path") + MIMIC_CXR_LT_CLASSES,
        f"MIMIC-CXR-LT {split}.csv",
        MIMIC_LAYOUT,
        dtype={c: str for c in meta},
        keep_default_na=False,
    )
    for column in ("dicom_id", "path"):
        require_unique(df[column], csv_lines(len(df)), path, f"image (column '{column}')", hint=MIMIC_LAYOUT)
    cols = []
    for c in classes:
        num = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isin(num, (0.0, 1.0)))
        if bad.size:
            r = int(bad[0])
            raise row_error(path, r, c, f"label value '{df[c].iloc[r]}' is not 0 or 1")
        cols.append(num)
    labels = np.stack(cols, axis=1).tolist() if len(df) else []
    paths = df["path"].tolist()
    if "subject_id" in df.columns:
        subjects = [s.strip() for s in df["subject_id"].tolist()]
    else:
        subjects = []
        for r, p in enumerate(paths):
            m = _SUBJECT.search(p)
            if m is None:
                raise row_error(path, r, "path", f"cannot find 'pXXXXXXXX/' in path {p!r}")
            subjects.append(m.group(1))
    n = len(df)
    studies = df["study_id"].tolist() if "study_id" in df.columns else [None] * n
    views = df["ViewPosition"].tolist() if "ViewPosition" in df.columns else [None] * n
    prefix = f"{root}{os.sep}"
    out = [
        {
            "image": prefix + paths[r],
            "label": labels[r],
            "patient_id": subjects[r],
            "split": str(split),
            "dicom_id": d,
            "study_id": studies[r],
            "view": views[r] or None,
        }
        for r, d in enumerate(df["dicom_id"].tolist())
    ]
    if check_files:
        check_images(out, "MIMIC-CXR-LT", MIMIC_LAYOUT)
    return assign_indices(out)
