# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""PadChest reader: physician-labelled frontal images, label-list parsing and term-to-class rules.

Citation: Bustos A, Pertusa A, Salinas JM, de la Iglesia-Vaya M. "PadChest: A large chest x-ray image dataset with
multi-label annotated reports", Medical Image Analysis 66, 2020 (arXiv:1901.07441).
http://bimcv.cipf.es/bimcv-projects/padchest/
"""

from __future__ import annotations

import ast
import math
import os
from collections.abc import Mapping, Sequence

import pandas as pd
from monai.utils import look_up_option

from monai_ext.data.cxr.common import check_images, find_label_file, records
from monai_ext.data.cxr.labels import (
    NO_FINDING,
    PADCHEST_CLASSES,
    PADCHEST_TERM_RULES,
    TermMatch,
    TermRule,
    match_terms,
    resolve_classes,
)
from monai_ext.data.datalist import assign_indices, csv_lines, read_csv_checked, require_dir, require_unique, row_error

__all__ = [
    "PADCHEST_CSV",
    "PADCHEST_MISSING_IMAGES",
    "PADCHEST_BROKEN_IMAGES",
    "parse_padchest_labels",
    "padchest_datalist",
]

PADCHEST_CSV = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
PADCHEST_LAYOUT = (
    f"Expected padchest/{PADCHEST_CSV} (or .csv.gz; first column an unnamed index, then the 35 original columns) "
    "and images/<ImageDir>/<ImageID> (or images/<ImageID>) 16-bit PNG."
)
MANUAL_PROJECTION = "Manual review of DICOM fields"

# Image files of the public release that are absent; listed (as "missing") by torchxrayvision's PC_Dataset and by
# NVUM's data/padchest_dataloader_cut.py (github FBLADL/NVUM). Reproducing NVUM's 14,714 / 12,885 needs these 11.
PADCHEST_MISSING_IMAGES: tuple[str, ...] = (
    "216840111366964012819207061112010307142602253_04-014-084.png",
    "216840111366964012989926673512011074122523403_00-163-058.png",
    "216840111366964012959786098432011033083840143_00-176-115.png",
    "216840111366964012558082906712009327122220177_00-102-064.png",
    "216840111366964012339356563862009072111404053_00-043-192.png",
    "216840111366964013076187734852011291090445391_00-196-188.png",
    "216840111366964012373310883942009117084022290_00-064-025.png",
    "216840111366964012283393834152009033102258826_00-059-087.png",
    "216840111366964012373310883942009170084120009_00-097-074.png",
    "216840111366964012819207061112010315104455352_04-024-184.png",
    "216840111366964012819207061112010306085429121_04-020-102.png",
)

# Image files that exist but cannot be decoded (broken PNG chunk / truncated), per torchxrayvision 1.5.7's
# PC_Dataset comments. Not excluded by NVUM.
PADCHEST_BROKEN_IMAGES: tuple[str, ...] = (
    "216840111366964012989926673512011083134050913_00-168-009.png",
    "216840111366964012373310883942009152114636712_00-102-045.png",
    "216840111366964012819207061112010281134410801_00-129-131.png",
    "216840111366964012487858717522009280135853083_00-075-001.png",
    "216840111366964012989926673512011151082430686_00-157-045.png",
    "216840111366964013686042548532013208193054515_02-026-007.png",
    "216840111366964013590140476722013058110301622_02-056-111.png",
    "216840111366964013590140476722013043111952381_02-065-198.png",
    "216840111366964013829543166512013353113303615_02-092-190.png",
    "216840111366964013962490064942014134093945580_01-178-104.png",
)

_COLUMNS = (
    "ImageID",
    "ImageDir",
    "StudyID",
    "PatientID",
    "PatientBirth",
    "PatientSex_DICOM",
    "Projection",
    "MethodProjection",
    "MethodLabel",
    "Labels",
)
_BITS_COLUMN = "BitsStored_DICOM"  # optional: bits of the 16-bit PNG that hold data (12 or 10 in the real CSV)


def _bits_stored(rec: dict, path: str | os.PathLike) -> int | None:
    """The row's ``BitsStored_DICOM`` as an int in 1..16, None when the column is absent or the cell empty.

    Raises:
        DatasetLayoutError: any other value (file, line and column named).
    """
    value = rec.get(_BITS_COLUMN)
    if value is None or value != value:
        return None
    try:
        bits = float(value)
    except ValueError:
        bits = math.nan
    if not (bits.is_integer() and 1 <= bits <= 16):
        raise row_error(path, rec["_row"], _BITS_COLUMN, f"{value!r} is not a bit depth of a 16-bit PNG (1..16)")
    return int(bits)


def parse_padchest_labels(text: str) -> list[str]:
    """Parse one ``Labels`` cell, a Python list literal, into clean terms.

    Terms are stripped of surrounding spaces (the CSV has ``' pleural effusion'``) and empty terms ``''`` are
    dropped; case is kept (``'COPD signs'``).

    Example:
        >>> parse_padchest_labels("['cardiomegaly', ' pleural effusion', '']")
        ['cardiomegaly', 'pleural effusion']

    Raises:
        ValueError: the text is not a list literal of strings.
    """
    value = ast.literal_eval(text)
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        raise ValueError(f"expected a list of strings, got {text!r}")
    return [t.strip() for t in value if t.strip()]


def _select_rows(
    df: pd.DataFrame,
    label_methods: Sequence[str] | None,
    projections: Sequence[str] | None,
    projection_methods: Sequence[str] | None,
    exclude_images: Sequence[str],
    one_per_patient: bool,
    min_age: float | None,
    age_reference_year: int,
    keep_unlabelled: bool,
) -> pd.DataFrame:
    """Apply :func:`padchest_datalist`'s row filters in NVUM's order; the kept rows sorted by ``ImageID``."""
    keep = pd.Series(True, index=df.index)
    for col, allowed in (("MethodLabel", label_methods), ("Projection", projections)):
        if allowed is not None:
            keep &= df[col].isin(list(allowed))
    if projection_methods is not None:
        keep &= df["MethodProjection"].isin(list(projection_methods))
    if not keep_unlabelled:
        keep &= df["Labels"].notna()
    keep &= ~df["ImageID"].isin(list(exclude_images))
    df = df[keep]
    if one_per_patient:
        df = df.drop_duplicates("PatientID", keep="first")
    if min_age is not None:
        births = pd.to_numeric(df["PatientBirth"], errors="coerce")
        df = df[(age_reference_year - births) > min_age]
    return df.sort_values("ImageID", kind="stable")


def padchest_datalist(
    dataset_dir: str | os.PathLike,
    classes: Sequence[str] = PADCHEST_CLASSES,
    rules: Mapping[str, TermRule] = PADCHEST_TERM_RULES,
    term_match: TermMatch | str = TermMatch.SUBSTRING,
    label_methods: Sequence[str] | None = ("Physician",),
    projections: Sequence[str] | None = ("PA", "AP"),
    projection_methods: Sequence[str] | None = (MANUAL_PROJECTION,),
    exclude_images: Sequence[str] = PADCHEST_MISSING_IMAGES + PADCHEST_BROKEN_IMAGES,
    one_per_patient: bool = True,
    min_age: float | None = 10.0,
    age_reference_year: int = 2019,
    keep_unlabelled: bool = False,
    check_files: bool = True,
) -> list[dict]:
    """PadChest as a MONAI datalist (by default the physician-labelled frontal subset NVUM tests on).

    Layout (``dataset_dir`` = ``padchest/``)::

        PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv   # or .csv.gz; 160,861 rows, 67,625 patients
        images/<ImageDir>/<ImageID>                           # 16-bit PNG (or flat images/<ImageID>)

    Columns used: ``ImageID, ImageDir, StudyID, PatientID, PatientBirth, PatientSex_DICOM, Projection, MethodProjection,
    MethodLabel, Labels`` and, when present, ``BitsStored_DICOM`` (the bits of the 16-bit PNG that hold data, 12 or 10:
    item ``bits_stored``, for ``NormalizeRadiographd(bit_depth_key="bits_stored")``; a 12-bit image scaled by the 16-bit
    container would lie in [0, 0.0625]). ``Labels`` is a Python list literal (``"['normal']"``) parsed by
    :func:`parse_padchest_labels`; 103 cells are empty (NaN). Filters, in this order (NVUM's order): ``MethodLabel`` in
    ``label_methods`` (``Physician``: 39,053 rows), ``Projection`` in ``projections`` (PA 91,728, AP 4,559; the supine
    ``AP_horizontal``, 14,346, is excluded by default), ``MethodProjection`` in ``projection_methods``, empty ``Labels``
    dropped, ``exclude_images`` dropped, first image per ``PatientID`` in file order, age filter ``age_reference_year -
    PatientBirth > min_age`` (unknown birth year fails it). The defaults give the 22,419 images (22,419 patients) behind
    NVUM's PadChest test sets (none of the 21 listed missing/broken files is in the physician-labelled PA/AP subset, so
    the exclusion list does not change this number). NVUM takes ``groupby("PatientID").first()``, which can mix columns
    of different rows when a cell is empty; here the whole first row is kept (same count).

    Labels: a class is positive when a term matches its :class:`TermRule` in ``rules`` (torchxrayvision-style
    substring rules by default: ``nodule`` also hits ``pseudonodule``); ``"No Finding"`` (if requested) is 1 when no
    class of ``rules`` is positive (e.g. ``['normal']``).

    Args:
        dataset_dir: the ``padchest/`` folder.
        classes: label columns, names of ``rules`` plus optionally ``"No Finding"``. Defaults to the 28
            :data:`PADCHEST_CLASSES`.
        rules: class -> :class:`TermRule`. Defaults to :data:`PADCHEST_TERM_RULES`.
        term_match: ``{"substring", "exact"}``, see :class:`TermMatch`. Defaults to ``"substring"``.
        label_methods: ``MethodLabel`` values kept (``"Physician"``, ``"RNN_model"``); ``None`` keeps all.
            Defaults to ``("Physician",)``.
        projections: ``Projection`` values kept (``PA, L, AP_horizontal, AP, COSTAL, EXCLUDE, UNK``); ``None`` keeps
            all. Defaults to ``("PA", "AP")``.
        projection_methods: ``MethodProjection`` values kept; ``None`` keeps all. Defaults to
            ``("Manual review of DICOM fields",)`` (drops CNN-predicted views).
        exclude_images: ``ImageID`` values dropped. Defaults to :data:`PADCHEST_MISSING_IMAGES` +
            :data:`PADCHEST_BROKEN_IMAGES` (absent or undecodable files).
        one_per_patient: keep only the first remaining image of each patient (file order). Defaults to ``True``.
        min_age: minimum age in years (exclusive); ``None`` disables the age filter. Defaults to 10.
        age_reference_year: year the age is computed at. Defaults to 2019 (torchxrayvision / NVUM).
        keep_unlabelled: keep rows with an empty ``Labels`` cell, with an all-NaN label. Defaults to ``False``.
        check_files: raise if an image file is missing. Defaults to ``True``.

    Returns:
        Items ``{"image", "label" (len(classes) floats), "terms" (parsed terms), "index", "patient_id", "split"
        ("all"), "image_id", "study_id", "projection", "sex", "birth_year", "bits_stored" (int, or None when the column
        is absent or the cell empty)}``, sorted by ``ImageID``.

    Raises:
        FileNotFoundError: the CSV or (with ``check_files``) an image is missing.
        DatasetLayoutError: missing column or an unparsable ``Labels`` cell (file, line, column named), or an
            ``ImageID`` listed twice (file and both lines named; letter case does not make two rows different).
        ValueError: unknown class names or ``term_match``.
    """
    root = require_dir(dataset_dir, "PadChest", PADCHEST_LAYOUT).absolute()
    classes = resolve_classes(classes, tuple(rules), "PadChest")
    term_match = look_up_option(term_match, TermMatch)
    path = find_label_file(root, [PADCHEST_CSV], "PadChest label CSV", PADCHEST_LAYOUT)
    df = read_csv_checked(
        path,
        _COLUMNS,
        "PadChest label CSV",
        PADCHEST_LAYOUT,
        usecols=lambda c: c in _COLUMNS or c == _BITS_COLUMN,
        dtype={c: str for c in _COLUMNS if c != "PatientBirth"},
        keep_default_na=False,
        na_values={"Labels": [""], "PatientBirth": [""], _BITS_COLUMN: [""]},
    )
    require_unique(df["ImageID"], csv_lines(len(df)), path, "image (column 'ImageID')", hint=PADCHEST_LAYOUT)
    df["_row"] = range(len(df))
    df = _select_rows(
        df, label_methods, projections, projection_methods, exclude_images, one_per_patient, min_age,
        age_reference_year, keep_unlabelled,
    )  # fmt: skip

    parsed: dict[str, tuple[list[str], list[float]]] = {}
    term_cache: dict[str, frozenset[str]] = {}
    out = []
    dir_prefix: dict[str, str] = {}
    images = root / "images"
    for rec in records(df):
        text = rec["Labels"]
        if isinstance(text, float):  # NaN: empty cell kept by keep_unlabelled
            terms, label = [], [math.nan] * len(classes)
        else:
            if text not in parsed:  # ~6.6k distinct cells among the 22k default rows: parse and match each once
                try:
                    terms = parse_padchest_labels(text)
                except (ValueError, SyntaxError) as e:
                    raise row_error(path, rec["_row"], "Labels", f"cannot parse label list {text!r}: {e}") from e
                positive = match_terms(terms, rules, term_match, term_cache)
                label = [float(not positive) if c == NO_FINDING else float(c in positive) for c in classes]
                parsed[text] = (terms, label)
            terms, label = list(parsed[text][0]), list(parsed[text][1])
        sub = rec["ImageDir"]
        if sub not in dir_prefix:
            nested = images / sub
            dir_prefix[sub] = f"{nested if nested.is_dir() else images}{os.sep}"
        image = dir_prefix[sub] + rec["ImageID"]
        birth = rec["PatientBirth"]
        out.append(
            {
                "image": image,
                "label": label,
                "terms": terms,
                "patient_id": rec["PatientID"],
                "split": "all",
                "image_id": rec["ImageID"],
                "study_id": rec["StudyID"],
                "projection": rec["Projection"],
                "sex": rec["PatientSex_DICOM"] or None,
                "birth_year": None if birth != birth else int(birth),
                "bits_stored": _bits_stored(rec, path),
            }
        )
    if check_files:
        check_images(out, "PadChest", PADCHEST_LAYOUT)
    return assign_indices(out)
