# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Do MoMBS's difficulty categories find the corrupted training masks? A check against the demo's noise record.

The MoMBS handler writes, after every epoch from the pivot on, ``difficulty_epochNNNN.csv`` with one row per
training sample (``index``, loss, uncertainty, their ranks and the quadrant ``category``,
:class:`monai_ext.samplers.ranking.DifficultyCategory`). The COVID CT demo writer records every lesion's annotation
noise in ``demo_mask_noise.csv`` (``mask, lesion, label, corruption, i_first, ..., k_first, k_last, ...``;
``corruption`` in ``{none, missing, erode, dilate}``, ``k`` the slice index). :func:`slice_corruption` marks each
training slice (datalist items: ``index``, ``source_label``, ``z``) as corrupted when one of the lesions it crosses
has a mapped label and a corruption other than ``none``; :func:`category_vs_corruption` then cross-tabulates the
categories against that mark: if "high loss, low uncertainty" (``poorly_labelled``) picks out badly labelled images,
the corrupted slices fall there more often than the clean ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from monai_ext.data.datalist import DatasetLayoutError, read_csv_checked, require_dir, row_error
from monai_ext.handlers.mombs import DIFFICULTY_COLUMNS
from monai_ext.samplers.ranking import DifficultyCategory

__all__ = [
    "CORRUPTIONS",
    "CATEGORIES",
    "latest_difficulty_csv",
    "slice_corruption",
    "category_vs_corruption",
    "pool_category_tables",
]

CORRUPTIONS = ("missing", "erode", "dilate", "wrong_class")  # demo_mask_noise.csv values other than "none"
UNDER_REPRESENTED = ("tiny", "low_contrast")  # demo_mask_noise.csv ``appearance`` values other than "typical"
CATEGORIES = tuple(c.value for c in DifficultyCategory)
_NOISE_COLUMNS = ["mask", "label", "corruption", "k_first", "k_last"]
_EPOCH_CSV = re.compile(r"^difficulty_epoch(\d+)\.csv$")


def latest_difficulty_csv(difficulty_dir: str | os.PathLike) -> Path:
    """The ``difficulty_epochNNNN.csv`` of the highest epoch in ``difficulty_dir``.

    Raises:
        FileNotFoundError: the folder is missing or holds no such file.
    """
    folder = require_dir(difficulty_dir, "the MoMBS handler's difficulty folder")
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _EPOCH_CSV.match(p.name)))
    if not found:
        raise FileNotFoundError(
            f"no difficulty_epochNNNN.csv in '{folder}'; the MoMBS handler writes them from the pivot epoch on "
            "(sampler mombs or anti_mixed)."
        )
    return found[-1][1]


def slice_corruption(
    noise_csv: str | os.PathLike,
    datalist: Sequence[Mapping[str, Any]],
    dataset_dir: str | os.PathLike,
    label_values: Collection[int],
    wrong_class_visible: bool = True,
) -> pd.DataFrame:
    """The demo's mask corruptions and lesion appearances per training slice.

    A lesion row of ``noise_csv`` belongs to the datalist item whose ``source_label``, relative to ``dataset_dir``
    (POSIX form), equals its ``mask`` and whose ``z`` lies in ``[k_first, k_last]``; lesions whose ``label`` is not
    in ``label_values`` (e.g. pleural effusion 3 when the label map keeps 1 and 2: mapped to background either way)
    are left out. A slice is ``under_represented`` when a lesion crossing it has an ``appearance`` of
    :data:`UNDER_REPRESENTED` (a noise CSV without that column: every lesion ``typical``).

    Args:
        noise_csv: the demo's ``demo_mask_noise.csv``.
        datalist: training items with ``index``, ``source_label`` and ``z`` (from ``covid_ct_datalist``).
        dataset_dir: the dataset root the ``mask`` column is relative to.
        label_values: source mask values the label map keeps.
        wrong_class_visible: whether a ``wrong_class`` lesion (GGO <-> consolidation) is an error under the label
            map (multiclass: ``True``, the default); with ``False`` (binary infection) it counts as clean.

    Returns:
        one row per item, sorted by ``index``: ``index``, ``mask``, ``z``, ``lesions`` (mapped lesions crossing the
        slice), ``corrupted`` (bool), one int column per :data:`CORRUPTIONS` kind (lesions of that kind),
        ``corruptions`` (the kinds, ``;``-joined in that order; ``""`` for none), ``under_represented`` (bool) and
        ``appearance`` (the under-represented appearances, ``;``-joined; ``"typical"`` otherwise).

    Raises:
        FileNotFoundError: ``noise_csv`` is missing.
        DatasetLayoutError: a missing column, or an unknown ``corruption`` value (file, line and column named).
    """
    noise = read_csv_checked(noise_csv, _NOISE_COLUMNS, "demo mask-noise CSV",
                             "Write it with python -m monai_ext.demo.")  # fmt: skip
    kinds = set(CORRUPTIONS) | {"none"}
    for row, value in enumerate(noise["corruption"].astype(str)):
        if value not in kinds:
            raise row_error(noise_csv, row, "corruption", f"{value!r} is not one of {sorted(kinds)}.")
    if "appearance" not in noise.columns:
        noise = noise.assign(appearance="typical")
    looks = set(UNDER_REPRESENTED) | {"typical"}
    for row, value in enumerate(noise["appearance"].astype(str)):
        if value not in looks:
            raise row_error(noise_csv, row, "appearance", f"{value!r} is not one of {sorted(looks)}.")
    visible = [k for k in CORRUPTIONS if wrong_class_visible or k != "wrong_class"]
    noise = noise[noise["label"].astype(int).isin({int(v) for v in label_values})]
    by_mask = {str(m): rows for m, rows in noise.groupby(noise["mask"].astype(str))}
    root = Path(dataset_dir).absolute()
    rows = []
    for item in sorted(datalist, key=lambda d: int(d["index"])):
        mask = Path(str(item["source_label"])).absolute()
        rel = mask.relative_to(root).as_posix() if mask.is_relative_to(root) else mask.name
        z = int(item["z"])
        lesions = by_mask.get(rel)
        hit = lesions[(lesions["k_first"] <= z) & (lesions["k_last"] >= z)] if lesions is not None else noise.iloc[:0]
        counts = {k: int((hit["corruption"] == k).sum()) for k in CORRUPTIONS}
        rare = [a for a in UNDER_REPRESENTED if (hit["appearance"] == a).any()]
        rows.append(
            {
                "index": int(item["index"]),
                "mask": rel,
                "z": z,
                "lesions": len(hit),
                "corrupted": any(counts[k] for k in visible),
                **counts,
                "corruptions": ";".join(k for k in visible if counts[k]),
                "under_represented": bool(rare),
                "appearance": ";".join(rare) or "typical",
            }
        )
    columns = ["index", "mask", "z", "lesions", "corrupted", *CORRUPTIONS, "corruptions", "under_represented",
               "appearance"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def category_vs_corruption(difficulty: pd.DataFrame | str | os.PathLike, corruption: pd.DataFrame) -> dict[str, Any]:
    """Cross-tabulate MoMBS's difficulty categories against the corrupted / clean training slices.

    Args:
        difficulty: a ``difficulty_epochNNNN.csv`` (path or DataFrame with ``index`` and ``category``).
        corruption: from :func:`slice_corruption` (``index``, ``corrupted``, one count column per kind and,
            optionally, ``under_represented``).

    Returns:
        ``{"counts": {category: {"slices", "corrupted", "clean", "under_represented", one per kind}},
        "precision": {"precision_poorly_labelled" (corrupted / poorly_labelled slices), "base_rate_corrupted"
        (corrupted / all slices), "precision_under_represented" (under-represented / under_represented slices),
        "base_rate_under_represented", "lift_poorly_labelled", "lift_under_represented" (precision / base rate)},
        "n_slices", "n_corrupted", "base_rate" (corrupted / slices),
        "p_category_given_corrupted": {category: share}, "p_category_given_clean": {category: share},
        "corrupted_share": {category: corrupted / slices of the category (nan when empty)},
        "p_high_loss_given_corrupted", "p_high_loss_given_clean" (high loss = under_represented or poorly_labelled),
        "p_poorly_given_corrupted_high_loss", "p_poorly_given_clean_high_loss" (among high-loss slices: the share
        the uncertainty calls poorly labelled)}``; a kind column counts slices with at least one lesion of that kind
        (a slice may count under several). Shares of an empty group are ``nan``.

    Raises:
        FileNotFoundError: a difficulty CSV path that does not exist.
        DatasetLayoutError: a missing column, an unknown category, or indices that do not match.
    """
    source = "difficulty table" if isinstance(difficulty, pd.DataFrame) else difficulty
    if not isinstance(difficulty, pd.DataFrame):
        difficulty = read_csv_checked(difficulty, list(DIFFICULTY_COLUMNS), "MoMBS difficulty CSV")
    for row, value in enumerate(difficulty["category"].astype(str)):
        if value not in CATEGORIES:
            raise row_error(source, row, "category", f"{value!r} is not one of {list(CATEGORIES)}.")
    merged = difficulty[["index", "category"]].merge(corruption, on="index", how="outer", indicator=True)
    if not (merged["_merge"] == "both").all():
        lost = merged.loc[merged["_merge"] != "both", "index"].tolist()
        raise DatasetLayoutError(
            f"the difficulty table and the training slices disagree on sample indices, e.g. {lost[:5]}: was the "
            "difficulty CSV written by a run with this training datalist (same dataset, split_seed, fold)?"
        )
    corrupted = merged["corrupted"].astype(bool).to_numpy()
    rare = merged["under_represented"] if "under_represented" in merged else pd.Series(False, merged.index)
    rare = rare.astype(bool).to_numpy()
    counts: dict[str, dict[str, int]] = {}
    for category in CATEGORIES:
        sel = (merged["category"] == category).to_numpy()
        counts[category] = {
            "slices": int(sel.sum()),
            "corrupted": int((sel & corrupted).sum()),
            "clean": int((sel & ~corrupted).sum()),
            "under_represented": int((sel & rare).sum()),
            **{k: int((sel & (merged[k].to_numpy() > 0)).sum()) for k in CORRUPTIONS if k in merged},
        }
    return _shares(counts)


def _share(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def _shares(counts: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Add the totals and conditional shares of :func:`category_vs_corruption` to a ``counts`` table."""
    n = sum(c["slices"] for c in counts.values())
    n_bad = sum(c["corrupted"] for c in counts.values())
    n_good = n - n_bad
    high = (DifficultyCategory.UNDER_REPRESENTED.value, DifficultyCategory.POORLY_LABELLED.value)
    poorly = counts.get(DifficultyCategory.POORLY_LABELLED.value, {"corrupted": 0, "clean": 0})
    high_bad = sum(counts[c]["corrupted"] for c in high if c in counts)
    high_good = sum(counts[c]["clean"] for c in high if c in counts)
    n_rare = sum(c.get("under_represented", 0) for c in counts.values())
    under = counts.get(DifficultyCategory.UNDER_REPRESENTED.value, {"slices": 0})
    precision = {
        "precision_poorly_labelled": _share(poorly["corrupted"], poorly.get("slices", 0)),
        "base_rate_corrupted": _share(n_bad, n),
        "precision_under_represented": _share(under.get("under_represented", 0), under["slices"]),
        "base_rate_under_represented": _share(n_rare, n),
    }
    precision["lift_poorly_labelled"] = _share(precision["precision_poorly_labelled"], precision["base_rate_corrupted"])
    precision["lift_under_represented"] = _share(
        precision["precision_under_represented"], precision["base_rate_under_represented"]
    )
    return {
        "counts": {c: dict(v) for c, v in counts.items()},
        "precision": precision,
        "n_slices": n,
        "n_corrupted": n_bad,
        "base_rate": _share(n_bad, n),
        "p_category_given_corrupted": {c: _share(v["corrupted"], n_bad) for c, v in counts.items()},
        "p_category_given_clean": {c: _share(v["clean"], n_good) for c, v in counts.items()},
        "corrupted_share": {c: _share(v["corrupted"], v["slices"]) for c, v in counts.items()},
        "p_high_loss_given_corrupted": _share(high_bad, n_bad),
        "p_high_loss_given_clean": _share(high_good, n_good),
        "p_poorly_given_corrupted_high_loss": _share(poorly["corrupted"], high_bad),
        "p_poorly_given_clean_high_loss": _share(poorly["clean"], high_good),
    }


def pool_category_tables(tables: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Add up the ``counts`` of several :func:`category_vs_corruption` results (e.g. one per seed) and recompute
    every share from the pooled counts; an empty sequence gives zero counts and ``nan`` shares."""
    pooled = {
        c: {k: 0 for k in ("slices", "corrupted", "clean", "under_represented", *CORRUPTIONS)} for c in CATEGORIES
    }
    for table in tables:
        for category, row in table["counts"].items():
            for key, value in row.items():
                pooled[category][key] += int(value)
    return _shares(pooled)
