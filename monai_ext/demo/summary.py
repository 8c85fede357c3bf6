# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Read every demo dataset back through its reader and report datalist sizes and class prevalences.

This is what ``make demo`` prints: it shows that the files the writers made are what the readers expect, split by
split, with the prevalence of every class as the reader sees it (noisy training labels included).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SplitSummary", "summarize_demo", "format_summary"]


@dataclass
class SplitSummary:
    """What a reader returned for one split: item count and per-class prevalence (fraction of items positive)."""

    dataset: str
    split: str
    num_items: int
    prevalence: dict[str, float]


def _multilabel(items: list[dict], classes: Sequence[str]) -> dict[str, float]:
    from monai_ext.data.datalist import class_prevalence

    return class_prevalence(items, classes) if items else {c: math.nan for c in classes}


def _single_label(items: list[dict], classes: Sequence[str]) -> dict[str, float]:
    labels = np.array([it["label"] for it in items])
    return {c: float((labels == k).mean()) if len(labels) else math.nan for k, c in enumerate(classes)}


def _fraction(values: Sequence[int], k: int) -> float:
    return float(np.mean([v == k for v in values])) if len(values) else math.nan


def _deeplesion(root: Path, split: str) -> tuple[list[dict], dict[str, float]]:
    from monai_ext.data.deeplesion import LESION_TYPES, deeplesion_datalist

    items = deeplesion_datalist(root, split=split)
    types = [t for it in items for t in it["lesion_type"]]
    prev = {"lesions per image": float(np.mean([len(it["box"]) for it in items])) if items else math.nan}
    for code, name in LESION_TYPES.items():
        if types:
            prev[f"type {name}"] = float(np.mean([t == code for t in types]))
    return items, prev


def _covid(layout: str) -> Callable[[Path, str], tuple[list[dict], dict[str, float]]]:
    def read(root: Path, split: str) -> tuple[list[dict], dict[str, float]]:
        from monai_ext.data.covid_ct import covid_ct_datalist

        items = covid_ct_datalist(root, layout=layout, split=split)
        return items, {"slices with lesion": float(np.mean([it["has_lesion"] for it in items])) if items else math.nan}

    return read


def _readers() -> dict[str, tuple[Sequence[str], Callable[[Path, str], tuple[list[dict], dict[str, float]]]]]:
    from monai_ext.data import cxr
    from monai_ext.data.eyepacs import EYEPACS_LEVELS, eyepacs_datalist
    from monai_ext.data.rop import ROP_CLASSES, rop_datalist

    def multi(fn: Callable[..., list[dict]], classes: Sequence[str], split_arg: bool = True):
        def read(root: Path, split: str):
            items = fn(root, split=split) if split_arg else fn(root)
            return items, _multilabel(items, classes)

        return read

    def rop(root: Path, split: str):
        items = rop_datalist(root, split=split)
        return items, _single_label(items, ROP_CLASSES)

    def eyepacs(root: Path, split: str):
        items = eyepacs_datalist(root, split=split)
        prev = {"DR (grade 1-4)": float(np.mean([it["label"] for it in items])) if items else math.nan}
        levels = [it["level"] for it in items]
        return items, prev | {f"grade {k} {name}": _fraction(levels, k) for k, name in enumerate(EYEPACS_LEVELS)}

    return {
        "nih": (("train", "test"), multi(cxr.nih_datalist, cxr.NIH_CLASSES)),
        "chexpert": (("train", "valid"), multi(cxr.chexpert_datalist, cxr.CHEXPERT_CLASSES)),
        "openi": (("test",), multi(cxr.openi_datalist, cxr.OPENI_CLASSES, split_arg=False)),
        "padchest": (("test",), multi(cxr.padchest_datalist, cxr.PADCHEST_CLASSES, split_arg=False)),
        "mimic_cxr_lt": (("train", "development", "test"), multi(cxr.mimic_cxr_lt_datalist, cxr.MIMIC_CXR_LT_CLASSES)),
        "vindr": (("train",), multi(cxr.vindr_datalist, cxr.VINDR_CLASSES, split_arg=False)),
        "deeplesion": (("train", "val", "test"), _deeplesion),
        "covid_medseg": (("train", "val", "test"), _covid("medseg")),
        "covid_ma": (("train", "val", "test"), _covid("ma")),
        "rop": (("train", "val", "meta", "test"), rop),
        "eyepacs": (("train", "val"), eyepacs),
    }


def summarize_demo(out_dir: str | os.PathLike, names: Sequence[str] | None = None) -> list[SplitSummary]:
    """Read the demo datasets ``names`` (default: all) under ``out_dir`` back through their readers.

    Raises:
        ValueError: a name has no reader.
        FileNotFoundError / DatasetLayoutError: from the readers, when a dataset was not written or is malformed.
    """
    readers = _readers()
    names = list(readers) if names is None else list(names)
    unknown = [n for n in names if n not in readers]
    if unknown:
        raise ValueError(f"no reader for demo dataset(s) {unknown}; known: {sorted(readers)}.")
    out = []
    for name in names:
        splits, read = readers[name]
        for split in splits:
            items, prevalence = read(Path(out_dir) / name, split)
            out.append(SplitSummary(name, split, len(items), prevalence))
    return out


def format_summary(summaries: Sequence[SplitSummary]) -> str:
    """Markdown: one table per dataset, classes as rows, splits as columns (percent, or a number for counts)."""
    blocks = []
    for dataset in dict.fromkeys(s.dataset for s in summaries):
        rows = [s for s in summaries if s.dataset == dataset]
        header = "| " + dataset + " | " + " | ".join(s.split for s in rows) + " |"
        lines = [
            header,
            "|---" * (len(rows) + 1) + "|",
            "| items | " + " | ".join(str(s.num_items) for s in rows) + " |",
        ]
        for key in rows[0].prevalence:
            cells = []
            for s in rows:
                v = s.prevalence.get(key, math.nan)
                cells.append(
                    "n/a" if math.isnan(v) else (f"{v:.2f}" if key.endswith("per image") else f"{100 * v:.1f}%")
                )
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
