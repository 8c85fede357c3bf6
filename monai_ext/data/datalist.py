# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Shared pieces of every dataset reader: file and column checks with clear errors, the duplicate-entry check,
stable sample indices, per-class totals.

A datalist is a list of dicts as MONAI's ``Dataset`` expects. Every reader in :mod:`monai_ext.data` returns items
with at least ``image`` (absolute path), ``label``, ``index`` (position in the returned list, see
:func:`assign_indices`), ``patient_id`` and ``split``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DatasetLayoutError",
    "require_file",
    "require_dir",
    "read_csv_checked",
    "row_error",
    "csv_lines",
    "spelling_key",
    "require_unique",
    "assign_indices",
    "class_totals",
    "class_prevalence",
]


class DatasetLayoutError(ValueError):
    """The files on disk do not match the documented layout. The message names the file, row and column."""


def require_file(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    """Return ``path`` as a ``Path`` or raise ``FileNotFoundError`` naming ``what`` and how to fix it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: '{p}'. {hint}".rstrip())
    return p


def require_dir(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    """Return ``path`` as a ``Path`` or raise ``FileNotFoundError`` naming ``what`` and how to fix it."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{what} directory not found: '{p}'. {hint}".rstrip())
    return p


def read_csv_checked(
    path: str | os.PathLike, required_columns: Sequence[str], what: str, hint: str = "", **read_kwargs: Any
) -> pd.DataFrame:
    """Read a CSV and check that it holds ``required_columns``.

    Args:
        path: CSV file (``.csv`` or ``.csv.gz``).
        required_columns: column names that must be present (exact spelling).
        what: human name of the file for messages, e.g. ``"NIH Data_Entry_2017 CSV"``.
        hint: what the user should do when the file is wrong.
        read_kwargs: forwarded to :func:`pandas.read_csv`.

    Raises:
        FileNotFoundError: the file does not exist.
        DatasetLayoutError: the file cannot be parsed or misses a required column; the message lists the
            missing and the found columns.
    """
    p = require_file(path, what, hint)
    try:
        df = pd.read_csv(p, **read_kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DatasetLayoutError(f"{what} '{p}' could not be parsed as CSV: {e}. {hint}".rstrip()) from e
    missing = [c for c in required_columns if c not in df.columns]
    if missing:
        raise DatasetLayoutError(
            f"{what} '{p}' is missing column(s) {missing}; found columns {list(df.columns)}. {hint}".rstrip()
        )
    return df


def row_error(path: str | os.PathLike, row: int, column: str | None, message: str) -> DatasetLayoutError:
    """Build a :class:`DatasetLayoutError` for data row ``row`` (0-based, header excluded) of a CSV.

    The message gives the 1-based line number in the file (the header is line 1), so that
    ``row_error("x.csv", 0, "Labels", "...")`` points at line 2.
    """
    where = f"'{path}', line {row + 2}"
    if column is not None:
        where += f", column '{column}'"
    return DatasetLayoutError(f"{where}: {message}")


def csv_lines(num_rows: int) -> range:
    """1-based file line of each of ``num_rows`` CSV data rows (the header is line 1), for :func:`require_unique`."""
    return range(2, num_rows + 2)


def spelling_key(text: Any) -> Any:
    """What two spellings of one path or id have in common: surrounding spaces, ``\\`` vs ``/``, ``.``/``..``
    segments and doubled separators are normalised and letter case is folded (``train/./A.PNG`` and ``train/a.png``
    give the same key, as they name one file on a case-insensitive file system). A tuple is keyed element by element;
    other non-strings are returned as given.
    """
    if isinstance(text, tuple):
        return tuple(spelling_key(t) for t in text)
    if not isinstance(text, str):
        return text
    return os.path.normpath(text.strip().replace("\\", "/")).casefold()


def require_unique(
    values: Iterable[Any],
    lines: Iterable[int],
    path: str | os.PathLike,
    what: str,
    key: Callable[[Any], Hashable] = spelling_key,
    hint: str = "",
) -> None:
    """Raise when two entries of a label file or list name the same sample.

    Readers promise one item per image; an image listed twice would silently train twice (or a later row would
    replace an earlier one), so every CSV/list reader passes the values that identify a sample here.

    Args:
        values: the identifying value of each entry (a path, an id, or a tuple of them), in file order.
        lines: the 1-based file line of each entry (:func:`csv_lines` for CSV data rows).
        path: the file, for the message.
        what: what a value is, e.g. ``"image (column 'Path')"``.
        key: maps a value to what must be unique. Defaults to :func:`spelling_key` (path spellings and letter case
            do not make two entries different).
        hint: what the user should do, appended to the message.

    Raises:
        DatasetLayoutError: two entries share a key; the message names the file, both lines and both values.
    """
    first: dict[Hashable, tuple[int, Any]] = {}
    for value, line in zip(values, lines):
        k = key(value)
        if k in first:
            line0, value0 = first[k]
            again = "twice" if value0 == value else f"again as {value!r}"
            raise DatasetLayoutError(
                f"'{path}', lines {line0} and {line}: {what} {value0!r} is listed {again}; each may appear only once. "
                f"Remove one of the two lines. {hint}".rstrip()
            )
        first[k] = (line, value)


def assign_indices(datalist: list[dict]) -> list[dict]:
    """Give every item its stable integer ``index`` (its position in ``datalist``), in place, and return it.

    This is the one place where sample indices are made; NVUM memory rows, meta soft labels and MoMBS scores
    are addressed by it. Call it once on the final, sorted training list.
    """
    for i, item in enumerate(datalist):
        item["index"] = i
    return datalist


def _label_matrix(datalist: Iterable[dict], num_classes: int, key: str) -> np.ndarray:
    rows = [np.asarray(item[key], dtype=np.float64).reshape(-1) for item in datalist]
    if not rows:
        return np.zeros((0, num_classes))
    mat = np.stack(rows)
    if mat.shape[1] != num_classes:
        raise ValueError(f"labels under '{key}' have {mat.shape[1]} entries but {num_classes} class names were given")
    return mat


def class_totals(datalist: Sequence[dict], class_names: Sequence[str], key: str = "label") -> dict[str, int]:
    """Number of positive (value > 0.5) labels per class; NaN (unknown) counts as not positive."""
    mat = _label_matrix(datalist, len(class_names), key)
    return {name: int(np.nansum(mat[:, c] > 0.5)) for c, name in enumerate(class_names)}


def class_prevalence(datalist: Sequence[dict], class_names: Sequence[str], key: str = "label") -> dict[str, float]:
    """Fraction of items positive per class among items whose label for that class is known (not NaN)."""
    mat = _label_matrix(datalist, len(class_names), key)
    out = {}
    for c, name in enumerate(class_names):
        known = ~np.isnan(mat[:, c])
        out[name] = float((mat[known, c] > 0.5).mean()) if known.any() else math.nan
    return out
