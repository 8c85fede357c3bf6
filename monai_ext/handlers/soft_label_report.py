# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Trainer handler writing the learned soft labels of a soft-label training run (``soft_labels.csv``) and how many
training labels they moved, by annotator agreement (``soft_labels_moved.png``).

A soft label "moved" a training label when its argmax differs from the noisy (training) label. Grouping by ``n_agree``
(the largest number of readers agreeing on the image, from :func:`monai_ext.data.rop.rop_datalist`) shows whether the
labels that moved are the disputed ones, as meta soft-label learning intends (Algan et al.).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from monai.utils import IgniteInfo, min_version, optional_import

from monai_ext.bundle.parameters import as_flag
from monai_ext.handlers.prediction_writer import publish_file
from monai_ext.utils.runtime import is_secondary_rank

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = ["SOFT_LABELS_CSV", "SOFT_LABELS_MOVED_PNG", "SoftLabelSource", "SoftLabelReport", "soft_label_rows"]

SOFT_LABELS_CSV = "soft_labels.csv"
SOFT_LABELS_MOVED_PNG = "soft_labels_moved.png"
_MAX_NAMED = 5


class SoftLabelSource(Protocol):
    """What the report reads: ``soft_labels()`` -> ``N x C`` probabilities (row ``i`` = dataset index ``i``) and
    ``num_samples`` (``N``), e.g. :class:`monai_ext.engines.soft_labels.SoftLabelStore`."""

    num_samples: int

    def soft_labels(self) -> torch.Tensor: ...


def soft_label_rows(
    soft: torch.Tensor | np.ndarray, datalist: Sequence[Mapping[str, Any]], class_names: Sequence[str]
) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of ``soft_labels.csv``, one row per datalist item in datalist order.

    Columns: ``image, index, noisy_label, label_<annotator>... (-1 = not read), n_agree, soft_<class>...,
    soft_argmax, changed`` (``yes`` when the soft label's argmax differs from the noisy label). Labels are written as
    class indices; probabilities with Python's round-trip ``repr``.

    Args:
        soft: ``N x C`` probabilities, row ``i`` for the item whose ``index`` is ``i``.
        datalist: the training items (``image``, ``index``, ``label``; ``annotators`` + ``annotator_labels`` and
            ``n_agree`` when present, else those columns are left out / empty).
        class_names: the ``C`` class names.

    Raises:
        ValueError: ``soft`` is not ``N x C`` with ``N`` the datalist's length, an item's ``index`` or ``label`` is
            missing or out of range, indices repeat, or items disagree on the annotators.
    """
    soft = torch.as_tensor(soft).detach().to("cpu", torch.float64)
    c, n = len(class_names), len(datalist)
    if soft.ndim != 2 or soft.shape[1] != c:
        raise ValueError(f"soft labels must be N x {c} ({c} class names), got shape {tuple(soft.shape)}.")
    if soft.shape[0] != n:
        raise ValueError(
            f"{soft.shape[0]} soft labels but {n} datalist items; pass the training datalist the soft labels were "
            "learned on (row i is the item with index i)."
        )
    annotators: list[str] | None = None
    seen: set[int] = set()
    for k, item in enumerate(datalist):
        for key in ("index", "label"):
            if key not in item:
                raise ValueError(f"datalist item {k} ('{item.get('image', '?')}') has no '{key}'.")
        index, label = int(item["index"]), int(item["label"])
        if not 0 <= index < n:
            raise ValueError(f"datalist item {k} ('{item.get('image', '?')}'): index {index} is outside [0, {n}).")
        if index in seen:
            raise ValueError(f"datalist item {k} ('{item.get('image', '?')}'): index {index} repeats.")
        seen.add(index)
        if not 0 <= label < c:
            raise ValueError(f"datalist item {k} ('{item.get('image', '?')}'): label {label} is outside [0, {c}).")
        names = [str(a) for a in item.get("annotators", [])]
        if annotators is None:
            annotators = names
        elif names != annotators:
            raise ValueError(f"datalist item {k} names annotators {names} but item 0 names {annotators}.")
    annotators = annotators or []
    header = [
        "image",
        "index",
        "noisy_label",
        *(f"label_{a}" for a in annotators),
        "n_agree",
        *(f"soft_{name}" for name in class_names),
        "soft_argmax",
        "changed",
    ]
    argmax = soft.argmax(dim=1).tolist()
    rows = []
    for item in datalist:
        index, label = int(item["index"]), int(item["label"])
        readings = [int(v) for v in item.get("annotator_labels", [])]
        if len(readings) != len(annotators):
            raise ValueError(
                f"datalist item with index {index}: {len(readings)} annotator_labels for {len(annotators)} annotators."
            )
        rows.append(
            [
                str(item.get("image", "")),
                index,
                label,
                *readings,
                "" if item.get("n_agree") is None else int(item["n_agree"]),
                *(repr(float(v)) for v in soft[index].tolist()),
                argmax[index],
                "yes" if argmax[index] != label else "no",
            ]
        )
    return header, rows


def _moved_by_agreement(rows: list[list[Any]], header: list[str]) -> list[tuple[str, int, int]]:
    """``(group, samples, moved)`` per ``n_agree`` value (sorted; ``"?"`` when unknown)."""
    col_agree, col_changed = header.index("n_agree"), header.index("changed")
    groups: dict[Any, list[int]] = {}
    for row in rows:
        key = row[col_agree]
        counts = groups.setdefault(key, [0, 0])
        counts[0] += 1
        counts[1] += row[col_changed] == "yes"
    order = sorted(groups, key=lambda g: (g == "", g if g != "" else 0))
    return [(str(g) if g != "" else "?", groups[g][0], groups[g][1]) for g in order]


def _save_moved_png(groups: list[tuple[str, int, int]], path: Path, dpi: int = 120) -> None:
    fig = Figure(figsize=(1.8 + 1.4 * len(groups), 3.6))
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    width = 0.38
    totals = [g[1] for g in groups]
    moved = [g[2] for g in groups]
    bars_total = ax.bar(x - width / 2, totals, width, label="samples", color="0.75")
    bars_moved = ax.bar(x + width / 2, moved, width, label="label moved (argmax changed)", color="C3")
    ax.bar_label(bars_total, labels=[str(t) for t in totals], fontsize=8)
    ax.bar_label(
        bars_moved, labels=[f"{m} ({100 * m / t:.1f}%)" if t else "0" for m, t in zip(moved, totals)], fontsize=8
    )
    ax.set_xticks(x, labels=[f"n_agree={g[0]}" for g in groups])
    ax.set_ylabel("training samples")
    total, total_moved = sum(totals), sum(moved)
    share = f"{100 * total_moved / total:.1f}%" if total else "n/a"
    ax.set_title(f"soft labels moved: {total_moved} of {total} ({share})", fontsize=10)
    ax.set_ylim(0, max(totals + [1]) * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, format="png", bbox_inches="tight")


class SoftLabelReport:
    """Write ``<output_dir>/soft_labels.csv`` (:func:`soft_label_rows`) and ``soft_labels_moved.png`` (per
    ``n_agree`` group: samples, and labels whose soft argmax differs from the noisy label, count and percentage) at
    the trainer's ``COMPLETED``, or when :meth:`write` is called.

    Files are written to a hidden temporary name and published atomically
    (:func:`monai_ext.handlers.prediction_writer.publish_file`). ``overwrite`` defaults to True because the folder is
    the training run's own and a resumed or repeated run should refresh its report; with ``overwrite=False`` an
    existing file is kept and a warning says so. Under ``torchrun`` only rank 0 writes (every rank holds the same
    soft labels), so the handler can be listed by reference without ``_disabled_``.

    Args:
        soft_labels: the learned labels, see :class:`SoftLabelSource`.
        datalist: the training items (as :func:`monai_ext.data.rop.rop_datalist` gives them; ``index`` must be the
            row of ``soft_labels``).
        output_dir: folder of the files (created when written).
        class_names: the ``C`` class names.
        overwrite: replace existing files. Defaults to True.
        name: logger name; None uses ``engine.logger`` when attached.

    Raises:
        ValueError: ``class_names`` is empty or repeats a name, or ``overwrite`` is not a boolean.
    """

    def __init__(
        self,
        soft_labels: SoftLabelSource,
        datalist: Sequence[Mapping[str, Any]],
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        overwrite: bool = True,
        name: str | None = None,
    ) -> None:
        names = [str(c) for c in class_names]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"class_names must name each class once, got {names}.")
        self.soft_labels = soft_labels
        self.datalist = datalist
        self.output_dir = Path(output_dir)
        self.class_names = names
        self.overwrite = as_flag(overwrite, "overwrite")
        self.logger = logging.getLogger(name)
        self._name = name

    def attach(self, engine: Engine) -> None:
        """Write the report at ``COMPLETED``."""
        if self._name is None:
            self.logger = engine.logger
        if not engine.has_event_handler(self, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine | None = None) -> None:
        self.write()

    def write(self) -> dict[str, Path | None]:
        """Write both files now.

        Returns:
            ``{"csv": path or None, "png": path or None}`` (None: the file existed and ``overwrite`` is False).

        Raises:
            ValueError: as :func:`soft_label_rows`, or ``num_samples`` disagrees with ``soft_labels()``.
        """
        if is_secondary_rank():
            return {"csv": None, "png": None}
        soft = self.soft_labels.soft_labels()
        n = int(self.soft_labels.num_samples)
        if int(soft.shape[0]) != n:
            raise ValueError(f"soft_labels() has {soft.shape[0]} rows but num_samples is {n}.")
        header, rows = soft_label_rows(soft, self.datalist, self.class_names)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path | None] = {}
        tmp = self.output_dir / f".{SOFT_LABELS_CSV}.{os.getpid()}.tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
        written["csv"] = self._publish(tmp, self.output_dir / SOFT_LABELS_CSV)
        groups = _moved_by_agreement(rows, header)
        tmp = self.output_dir / f".{SOFT_LABELS_MOVED_PNG}.{os.getpid()}.tmp.png"
        _save_moved_png(groups, tmp)
        written["png"] = self._publish(tmp, self.output_dir / SOFT_LABELS_MOVED_PNG)
        moved = sum(g[2] for g in groups)
        by_group = ", ".join(f"n_agree={g}: {m}/{t}" for g, t, m in groups)
        self.logger.info(f"SoftLabelReport: {moved} of {len(rows)} labels moved ({by_group}); '{self.output_dir}'.")
        return written

    def _publish(self, tmp: Path, path: Path) -> Path | None:
        if publish_file(tmp, path, self.overwrite):
            return path
        self.logger.warning(f"SoftLabelReport: '{path}' exists and was kept (overwrite=False).")
        return None
