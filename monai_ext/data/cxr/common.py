# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Small pieces shared by the chest X-ray readers: locating label files (``.csv`` or ``.csv.gz``), checking that
images exist (each once), and the deterministic patient-level train/val split."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from monai_ext.data.datalist import DatasetLayoutError

__all__ = ["find_label_file", "check_images", "patient_val_split", "records", "MISSING_PREVIEW"]

MISSING_PREVIEW = 5
"""How many missing image paths an error message lists."""


def find_label_file(root: str | os.PathLike, names: Sequence[str], what: str, hint: str = "") -> Path:
    """Return the first of ``root/name`` or ``root/name.gz`` that exists, trying ``names`` in order.

    Raises:
        FileNotFoundError: none exists; the message lists every path tried and ``hint`` (the expected layout).
    """
    tried = []
    for name in names:
        for cand in (Path(root) / name, Path(root) / f"{name}.gz"):
            if cand.is_file():
                return cand
            tried.append(str(cand))
    raise FileNotFoundError(f"{what} not found; tried {tried}. {hint}".rstrip())


def check_images(datalist: Iterable[dict], what: str, hint: str = "", key: str = "image") -> None:
    """Raise if any ``item[key]`` path does not exist, or if two items are one file on disk.

    Two paths are one file when they resolve to the same file (a symbolic link, a hard link, or two spellings on a
    case-insensitive file system): that image would train twice.

    Raises:
        FileNotFoundError: names how many images are missing and the first :data:`MISSING_PREVIEW` paths.
        DatasetLayoutError: two items are the same file; both paths are named.
    """
    items = list(datalist)
    missing, seen = [], {}
    for item in items:
        try:
            st = os.stat(item[key])
        except OSError:
            missing.append(item[key])
            continue
        if not stat.S_ISREG(st.st_mode):
            missing.append(item[key])
            continue
        if st.st_ino == 0:  # a file system without file ids: nothing to compare
            continue
        first = seen.setdefault((st.st_dev, st.st_ino), item[key])
        if first != item[key]:
            raise DatasetLayoutError(
                f"{what} images '{first}' and '{item[key]}' are the same file on disk (a link, or one name in two "
                f"spellings); each image may be listed once. {hint}".rstrip()
            )
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(items)} {what} image(s) are missing, e.g. {missing[:MISSING_PREVIEW]}. "
            f"{hint} (pass check_files=False to list them anyway)".strip()
        )


def patient_val_split(patient_ids: Iterable[str], val_fraction: float, seed: int) -> set[str]:
    """Pick the validation patients of a patient-disjoint train/val split.

    The sorted unique patient ids are permuted by ``numpy.random.default_rng(seed)`` and the first
    ``round(val_fraction * n_patients)`` go to validation, so the split depends only on the patient set, the
    fraction and the seed (never on row order or the global RNG).

    Args:
        patient_ids: patient id of every image (repeats allowed).
        val_fraction: fraction of *patients* in validation, in [0, 1).
        seed: seed of the generator.

    Returns:
        The set of validation patient ids.

    Raises:
        ValueError: ``val_fraction`` outside [0, 1).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    patients = sorted(set(patient_ids))
    n_val = int(round(val_fraction * len(patients)))
    order = np.random.default_rng(seed).permutation(len(patients))
    return {patients[i] for i in order[:n_val]}


def records(df: pd.DataFrame) -> list[dict]:
    """Rows of ``df`` as plain-Python dicts (column -> value), much faster than ``DataFrame.to_dict("records")``."""
    cols = list(df.columns)
    return [dict(zip(cols, vals)) for vals in zip(*(df[c].tolist() for c in cols))]
