# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""NIH ChestX-ray14 reader: image-level labels from ``Data_Entry_2017*.csv`` and the 984 expert boxes of
``BBox_List_2017.csv``.

Citation: Wang X, Peng Y, Lu L, Lu Z, Bagheri M, Summers RM. "ChestX-ray8: Hospital-scale chest X-ray database and
benchmarks on weakly-supervised classification and localization of common thorax diseases", CVPR 2017.
https://nihcc.app.box.com/v/ChestXray-NIHCC
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.cxr.common import check_images, find_label_file, patient_val_split, records
from monai_ext.data.cxr.labels import NIH_CLASSES, NO_FINDING, resolve_classes
from monai_ext.data.datalist import (
    DatasetLayoutError,
    assign_indices,
    csv_lines,
    read_csv_checked,
    require_dir,
    require_unique,
    row_error,
)

__all__ = ["NIHSplit", "nih_datalist", "nih_boxes"]

NIH_LAYOUT = (
    "Expected nih/Data_Entry_2017_v2020.csv (or Data_Entry_2017.csv, optionally .gz), train_val_list.txt, "
    "test_list.txt, BBox_List_2017.csv and images/<Image Index> (or images_*/images/<Image Index>)."
)
_ENTRY_NAMES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
_ENTRY_COLUMNS = (
    "Image Index",
    "Finding Labels",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "Patient Sex",
    "View Position",
)
_BOX_COLUMNS = ["Bbox [x", "y", "w", "h]"]
_BOX_LABEL_ALIASES = {"Infiltrate": "Infiltration"}


class NIHSplit(StrEnum):
    """NIH subsets: ``train``/``val`` come from ``train_val_list.txt`` (split by patient with ``val_fraction``),
    ``test`` from ``test_list.txt``, ``all`` is every row of the Data_Entry CSV."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"
    ALL = "all"


def _image_locator(root: Path):
    """Map an image name to its path: ``images/<name>``, or ``images_*/images/<name>`` (NIH tarballs).

    The returned function raises :class:`DatasetLayoutError` for a name found in two of these folders (both paths
    named): which copy is the image would be a guess.
    """
    found: dict[str, str] = {}
    twice: dict[str, list[str]] = {}
    for sub in sorted(root.glob("images_*/images")) + [root / "images"]:
        if sub.is_dir():
            for n in os.listdir(sub):
                path = f"{sub}{os.sep}{n}"
                if n in found:
                    twice.setdefault(n, [found[n]]).append(path)
                found[n] = path
    default = f"{root / 'images'}{os.sep}"

    def locate(name: str) -> str:
        if name in twice:
            raise DatasetLayoutError(
                f"NIH image '{name}' exists in more than one image folder: {twice[name]}; keep one copy "
                f"(either images/ or the images_*/images/ folders of the NIH tarballs). {NIH_LAYOUT}"
            )
        return found.get(name) or default + name

    return locate


def _read_list(path: Path, known: set[str]) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"NIH split list not found: '{path}'. {NIH_LAYOUT}")
    names, lines = [], []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if name not in known:
            raise DatasetLayoutError(f"'{path}', line {line_no}: image '{name}' is not in the Data_Entry CSV")
        names.append(name)
        lines.append(line_no)
    require_unique(names, lines, path, "image", hint=NIH_LAYOUT)
    return names


def nih_datalist(
    dataset_dir: str | os.PathLike,
    split: NIHSplit | str = NIHSplit.TRAIN,
    classes: Sequence[str] = NIH_CLASSES,
    val_fraction: float = 0.0,
    seed: int = 0,
    check_files: bool = True,
) -> list[dict]:
    """NIH ChestX-ray14 as a MONAI datalist.

    Layout (``dataset_dir`` = ``nih/``)::

        Data_Entry_2017_v2020.csv   # or Data_Entry_2017.csv (.csv.gz accepted); 112,120 rows, 30,805 patients
        train_val_list.txt          # 86,524 image names, one per line (patient-disjoint from test)
        test_list.txt               # 25,596 image names
        images/<Image Index>        # 1024x1024 8-bit grey PNG (or images_001/images/<Image Index> ...)

    Data_Entry columns used: ``Image Index``, ``Finding Labels`` (``|``-separated, ``No Finding`` alone for a
    healthy image), ``Patient ID``; ``Patient Age``, ``View Position`` and ``Patient Gender`` (v2020) or
    ``Patient Sex`` (later NIH file) are copied when present. Labels are matched as whole tokens.

    Args:
        dataset_dir: the ``nih/`` folder.
        split: ``{"train", "val", "test", "all"}``, see :class:`NIHSplit`. Defaults to ``"train"``.
        classes: label columns, any of :data:`NIH_CLASSES` plus ``"No Finding"`` (1 when the image has none of the
            14 diseases). Defaults to :data:`NIH_CLASSES`.
        val_fraction: fraction of train_val *patients* moved to ``"val"`` (see
            :func:`monai_ext.data.cxr.common.patient_val_split`). Defaults to 0 (``"train"`` = the whole list).
        seed: seed of the patient split. Defaults to 0.
        check_files: raise if an image file is missing. Defaults to ``True``.

    Returns:
        Items ``{"image", "label" (len(classes) floats in {0, 1}), "index", "patient_id", "split", "image_name",
        "view", "age", "sex"}``, sorted by image name.

    Raises:
        FileNotFoundError: a label/list file or (with ``check_files``) an image is missing.
        DatasetLayoutError: missing column, unknown label token (file, line, column named), list entry unknown,
            an image listed twice in the CSV or a list (file and both lines named; path spelling and letter case
            do not make two entries different), an image found in two image folders.
        ValueError: bad ``split``, ``classes`` or ``val_fraction``, or ``split="val"`` with ``val_fraction=0``.
    """
    root = require_dir(dataset_dir, "NIH ChestX-ray14", NIH_LAYOUT).absolute()
    split = look_up_option(split, NIHSplit)
    classes = resolve_classes(classes, NIH_CLASSES, "NIH")
    if split == NIHSplit.VAL and val_fraction <= 0:
        raise ValueError("split='val' needs val_fraction > 0")
    path = find_label_file(root, _ENTRY_NAMES, "NIH Data_Entry CSV", NIH_LAYOUT)
    df = read_csv_checked(
        path,
        ["Image Index", "Finding Labels", "Patient ID"],
        "NIH Data_Entry CSV",
        NIH_LAYOUT,
        dtype=str,
        keep_default_na=False,
        usecols=lambda c: c in _ENTRY_COLUMNS,
    )
    require_unique(df["Image Index"], csv_lines(len(df)), path, "image (column 'Image Index')", hint=NIH_LAYOUT)
    sex_col = next((c for c in ("Patient Gender", "Patient Sex") if c in df.columns), None)
    known = set(NIH_CLASSES)
    rows: dict[str, dict] = {}
    for i, rec in enumerate(records(df)):
        tokens = [t.strip() for t in rec["Finding Labels"].split("|")]
        bad = [t for t in tokens if t not in known and t != NO_FINDING]
        if bad or not rec["Finding Labels"]:
            expected = f"expected '|'-separated names from {list(NIH_CLASSES)} or '{NO_FINDING}'"
            raise row_error(path, i, "Finding Labels", f"unknown label token(s) {bad or ['']}; {expected}")
        if NO_FINDING in tokens and len(tokens) > 1:
            raise row_error(path, i, "Finding Labels", f"'{NO_FINDING}' combined with diseases: {tokens}")
        rows[rec["Image Index"]] = {"row": i, "findings": set(tokens) - {NO_FINDING}, "rec": rec}

    if split == NIHSplit.ALL:
        names = list(rows)
    elif split == NIHSplit.TEST:
        names = _read_list(root / "test_list.txt", set(rows))
    else:
        names = _read_list(root / "train_val_list.txt", set(rows))
        val = patient_val_split((rows[n]["rec"]["Patient ID"] for n in names), val_fraction, seed)
        want_val = split == NIHSplit.VAL
        names = [n for n in names if (rows[n]["rec"]["Patient ID"] in val) == want_val]

    locate = _image_locator(root)
    split_name = str(split)
    out = []
    for name in sorted(names):
        r = rows[name]
        rec, findings = r["rec"], r["findings"]
        age = rec.get("Patient Age", "")
        out.append(
            {
                "image": locate(name),
                "label": [float(not findings) if c == NO_FINDING else float(c in findings) for c in classes],
                "patient_id": rec["Patient ID"],
                "split": split_name,
                "image_name": name,
                "view": rec.get("View Position"),
                "age": int(age) if str(age).strip().isdigit() else None,
                "sex": rec[sex_col] if sex_col else None,
            }
        )
    if check_files:
        check_images(out, "NIH", NIH_LAYOUT)
    return assign_indices(out)


def nih_boxes(dataset_dir: str | os.PathLike) -> dict[str, list[dict]]:
    """Expert boxes of ``nih/BBox_List_2017.csv`` (984 boxes on 880 images, 8 classes).

    The CSV header is ``Image Index,Finding Label,Bbox [x,y,w,h],,,`` (pandas columns ``Bbox [x``, ``y``, ``w``,
    ``h]``); values are float pixels of the 1024x1024 PNG, (x, y) = top-left corner. ``Infiltrate`` is renamed to
    the image-label spelling ``Infiltration``.

    Args:
        dataset_dir: the ``nih/`` folder (``BBox_List_2017.csv`` or ``.csv.gz``).

    Returns:
        ``{image name: [{"label": NIH class name, "box": [x1, y1, x2, y2]}, ...]}`` (0-based pixels,
        x2 = x + w, y2 = y + h), keys sorted, boxes of an image in file order.

    Raises:
        FileNotFoundError: the CSV is missing.
        DatasetLayoutError: wrong header, unknown label or a non-numeric / negative-size box (file, line, column).
    """
    root = require_dir(dataset_dir, "NIH ChestX-ray14", NIH_LAYOUT)
    path = find_label_file(root, ["BBox_List_2017.csv"], "NIH BBox_List_2017 CSV", NIH_LAYOUT)
    df = read_csv_checked(path, ["Image Index", "Finding Label"], "NIH BBox_List_2017 CSV", NIH_LAYOUT, dtype=str)
    cols = list(df.columns)
    start = cols.index("Finding Label") + 1
    if cols[start : start + 4] != _BOX_COLUMNS:
        raise DatasetLayoutError(
            f"NIH BBox_List_2017 CSV '{path}': expected the 4 box columns {_BOX_COLUMNS} after 'Finding Label' "
            f"(header 'Image Index,Finding Label,Bbox [x,y,w,h],,,'), found {cols}"
        )
    boxes: dict[str, list[dict]] = {}
    for i, rec in enumerate(records(df)):
        raw = rec["Finding Label"]
        label = _BOX_LABEL_ALIASES.get(raw, raw)
        if label not in NIH_CLASSES:
            raise row_error(path, i, "Finding Label", f"unknown box label {raw!r}; expected one of {list(NIH_CLASSES)}")
        vals = []
        for col in _BOX_COLUMNS:
            try:
                v = float(rec[col])
            except (TypeError, ValueError):
                v = math.nan
            if not math.isfinite(v):
                raise row_error(path, i, col, f"box value {rec[col]!r} is not a number")
            vals.append(v)
        x, y, w, h = vals
        if w < 0 or h < 0:
            raise row_error(path, i, "w" if w < 0 else "h]", f"negative box size w={w}, h={h}")
        boxes.setdefault(rec["Image Index"], []).append({"label": label, "box": [x, y, x + w, y + h]})
    return {k: boxes[k] for k in sorted(boxes)}
