# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Evaluator handler reporting segmentation Dice per case (3D) while the evaluator runs on 2D slices.

A 2D evaluator sees one axial slice per sample; a clinical (and benchmark) figure is the Dice of a whole volume.
:class:`SegmentationCaseReport` pools the per-slice pixel counts of all slices that share a ``case_id`` (see
:func:`monai_ext.data.covid_ct.covid_ct_datalist`): the Dice of the pooled counts, ``2 TP / (2 TP + FP + FN)``, is
exactly the Dice of the case's slices stacked into one volume, as MONAI's
``DiceMetric(include_background=False, reduction="none")`` computes it on ``1 C H W Z``. It writes a per-case CSV
and a JSON summary and puts the mean over cases into ``engine.state.metrics``; under ``torch.distributed`` the count
tables are gathered (and the counts of a case split over ranks summed) before scoring.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from monai.data import MetaTensor
from monai.handlers import from_engine
from monai.utils import IgniteInfo, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = ["SegmentationCaseReport"]

_TP, _FP, _FN = 0, 1, 2
_MAX_NAMED = 10


def _plain(value: Any) -> torch.Tensor:
    value = value.as_tensor() if isinstance(value, MetaTensor) else torch.as_tensor(value)
    return value.detach()


def _samples(value: Any) -> list[torch.Tensor]:
    """Per-sample ``C ...`` tensors from a decollated list or a batch-first ``B C ...`` tensor."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    value = _plain(value)
    return list(value.unbind(0)) if value.ndim else [value]


def _column(source: Any, key: str) -> list | None:
    """``key`` of every sample of a decollated list of dicts or of a batch dict; None where it is absent."""
    if isinstance(source, Mapping):
        if key not in source:
            return None
        value = source[key]
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, torch.Tensor, np.ndarray)):
            return [value]
        return value.tolist() if isinstance(value, (torch.Tensor, np.ndarray)) else list(value)
    if isinstance(source, Sequence) and source and all(isinstance(d, Mapping) for d in source):
        if not all(key in d for d in source):
            return None
        return [d[key] for d in source]
    return None


def _case_name(value: Any) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and len(value) == 1:  # a batch of one collated but not decollated
        value = value[0]
    return value.decode() if isinstance(value, bytes) else str(value)


def _nan_stats(values: np.ndarray) -> dict:
    """Mean and (population, ``ddof=0``) standard deviation of the non-NaN values, and their count."""
    kept = values[~np.isnan(values)]
    if kept.size == 0:
        return {"mean": None, "std": None, "num_cases": 0}
    return {"mean": float(kept.mean()), "std": float(kept.std()), "num_cases": int(kept.size)}


def _cell(value: float | int) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return "" if math.isnan(value) else f"{value:.6f}"


class SegmentationCaseReport:
    """Per-case (3D) Dice of a slice-wise segmentation evaluator, written to files and ``engine.state.metrics``.

    At every ``ITERATION_COMPLETED`` it reads ``pred`` and ``label`` through ``output_transform`` (default
    ``from_engine(["pred", "label"])``): discrete one-hot ``C H W`` tensors (any spatial rank works) *including* the
    background channel 0, ``C = len(class_names) + 1``, as MONAI's usual post-processing
    ``AsDiscreted(keys=["pred", "label"], argmax=(True, False), to_onehot=C)`` gives them; values are binarised at
    0.5. The case of each sample is ``case_key`` of ``engine.state.output`` when present, else of
    ``engine.state.batch`` (a ``SupervisedEvaluator`` keeps the datalist keys there). For every case and foreground
    class it adds up, vectorised over the batch, the pixel counts TP, FP, FN (int64), and the number of slices.

    At ``EPOCH_COMPLETED`` (gathered over ranks first):

    - Dice per case and class ``2 TP / (2 TP + FP + FN)``: the 3D Dice of the case's stacked slices;
    - a case whose ground truth of a class is empty gets NaN for that class, whatever was predicted, and is left
      out of that class's mean: MONAI's ``DiceMetric(ignore_empty=True)`` convention. Such cases are counted in the
      summary and named in a warning;
    - ``mean_dice`` per case: mean over the classes that are not NaN (NaN when every class is empty);
    - writes ``<output_dir>/<prefix>_per_case.csv`` (one row per case sorted by ``case_id``; columns ``case_id,
      num_slices, dice_<class>..., mean_dice, gt_pixels_<class>..., pred_pixels_<class>...``; Dice with 6 decimals,
      empty for NaN) and ``<prefix>_summary.json`` (per class and for ``mean_dice``: mean, population standard
      deviation (``ddof=0``) and number of cases over the non-NaN cases; number of cases and slices; empty-GT cases
      per class), both atomically (temporary file + ``os.replace``), on rank 0 only;
    - puts ``metric_name`` (mean over cases of ``mean_dice``, NaN cases left out) into ``engine.state.metrics`` on
      every rank, so a later ``StatsHandler`` or ``CheckpointSaver`` sees it: list this handler before them.

    It resets at ``EPOCH_STARTED``, so a validator run every training epoch reports that run only. Under
    ``torchrun`` attach it on every rank (the gather is collective) and give the evaluator MONAI's
    ``DistributedSampler(even_divisible=False)``: a padded sampler repeats slices, which would be counted twice.

    Args:
        output_dir: folder of the report files (created when written).
        class_names: foreground class names in channel order 1..C-1, e.g. ``["infection"]`` or
            ``["ggo", "consolidation"]``.
        prefix: file name prefix. Defaults to ``"eval"``.
        output_transform: ``engine.state.output -> (pred, label)``, each a list of ``C ...`` tensors or a
            ``B C ...`` tensor. Defaults to ``from_engine(["pred", "label"])``.
        case_key: key of the case id (str) in the output or batch. Defaults to ``"case_id"``.
        metric_name: ``engine.state.metrics`` name of the mean Dice. Defaults to None: ``f"{prefix}_mean_dice"``.
        name: logger name; None uses ``engine.logger``.

    Raises:
        ValueError: ``class_names`` is empty or repeats a name.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        prefix: str = "eval",
        output_transform: Callable[[Any], tuple[Any, Any]] | None = None,
        case_key: str = "case_id",
        metric_name: str | None = None,
        name: str | None = None,
    ) -> None:
        names = [str(c) for c in class_names]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"class_names must name each foreground class once, got {names}.")
        self.output_dir = Path(output_dir)
        self.class_names = names
        self.prefix = prefix
        self.output_transform = from_engine(["pred", "label"]) if output_transform is None else output_transform
        self.case_key = case_key
        self.metric_name = f"{prefix}_mean_dice" if metric_name is None else metric_name
        self.logger = logging.getLogger(name)
        self._name = name
        self.result: dict[str, Any] | None = None
        self.reset()

    def attach(self, engine: Engine) -> None:
        """Reset at ``EPOCH_STARTED``, count at ``ITERATION_COMPLETED``, report at ``EPOCH_COMPLETED``."""
        if self._name is None:
            self.logger = engine.logger
        for event, handler in (
            (Events.EPOCH_STARTED, self.reset),
            (Events.ITERATION_COMPLETED, self.collect),
            (Events.EPOCH_COMPLETED, self),
        ):
            if not engine.has_event_handler(handler, event):
                engine.add_event_handler(event, handler)

    def reset(self, engine: Engine | None = None) -> None:
        """Forget the counted cases."""
        self._row: dict[str, int] = {}
        self._counts = torch.zeros(0, len(self.class_names), 3, dtype=torch.int64)  # N K (TP, FP, FN)
        self._slices = torch.zeros(0, dtype=torch.int64)

    def collect(self, engine: Engine) -> None:
        """Add this iteration's per-slice TP / FP / FN counts to their cases.

        Raises:
            KeyError: no ``case_key`` in the output or the batch.
            ValueError: a prediction and its label differ in shape (the case named), a channel count other than
                ``len(class_names) + 1``, or a number of case ids other than the number of predictions.
        """
        preds, labels = (_samples(v) for v in self.output_transform(engine.state.output))
        if not preds:
            return
        ids = _column(engine.state.output, self.case_key)
        ids = _column(engine.state.batch, self.case_key) if ids is None else ids
        if ids is None:
            raise KeyError(
                f"neither engine.state.output nor engine.state.batch has '{self.case_key}'; give every datalist item "
                f"a case id (e.g. covid_ct_datalist's 'case_id') or set case_key."
            )
        cases = [_case_name(c) for c in ids]
        if not len(cases) == len(preds) == len(labels):
            raise ValueError(f"{len(preds)} predictions, {len(labels)} labels and {len(cases)} case ids per batch.")
        channels = len(self.class_names) + 1
        for case, p, y in zip(cases, preds, labels):
            if p.shape != y.shape:
                raise ValueError(
                    f"case '{case}': pred shape {tuple(p.shape)} differs from label shape {tuple(y.shape)}."
                )
            if p.ndim < 2 or p.shape[0] != channels:
                raise ValueError(
                    f"case '{case}': pred and label have shape {tuple(p.shape)}; expected one-hot C x spatial with "
                    f"C = {channels} (background + {self.class_names}), e.g. from AsDiscreted(keys=['pred', 'label'], "
                    f"argmax=(True, False), to_onehot={channels})."
                )
        same_shape = all(p.shape == preds[0].shape for p in preds)
        groups = [(preds, labels)] if same_shape else [([p], [y]) for p, y in zip(preds, labels)]
        counts = torch.cat([self._pixel_counts(torch.stack(p), torch.stack(y)) for p, y in groups])
        rows = torch.tensor([self._row.setdefault(c, len(self._row)) for c in cases], dtype=torch.int64)
        grow = len(self._row) - self._counts.shape[0]
        if grow:
            self._counts = torch.cat([self._counts, self._counts.new_zeros(grow, *self._counts.shape[1:])])
            self._slices = torch.cat([self._slices, self._slices.new_zeros(grow)])
        self._counts.index_add_(0, rows, counts)
        self._slices.index_add_(0, rows, torch.ones_like(rows))

    @staticmethod
    def _pixel_counts(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """``B K 3`` int64 CPU counts (TP, FP, FN) of the foreground channels of ``B C ...`` one-hot tensors."""
        p, y = pred[:, 1:] > 0.5, label.to(pred.device)[:, 1:] > 0.5
        dims = tuple(range(2, p.ndim))
        tp = (p & y).sum(dims)
        counts = torch.stack([tp, p.sum(dims) - tp, y.sum(dims) - tp], dim=-1)
        return counts.to("cpu", torch.int64)

    def _gathered(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Case ids (sorted), ``N K 3`` counts and ``N`` slice numbers, summed over every rank."""
        local = (list(self._row), self._counts.numpy(), self._slices.numpy())
        parts = [local]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts = [None] * dist.get_world_size()
            dist.all_gather_object(parts, local)
        cases = sorted({c for ids, _, _ in parts for c in ids})
        pos = {c: i for i, c in enumerate(cases)}
        counts = np.zeros((len(cases), len(self.class_names), 3), dtype=np.int64)
        slices = np.zeros(len(cases), dtype=np.int64)
        for ids, part_counts, part_slices in parts:
            index = np.array([pos[c] for c in ids], dtype=np.int64)
            np.add.at(counts, index, part_counts)
            np.add.at(slices, index, part_slices)
        return cases, counts, slices

    def __call__(self, engine: Engine) -> None:
        """Gather, score, write the report files (rank 0) and set ``engine.state.metrics`` (every rank)."""
        cases, counts, slices = self._gathered()
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if not cases:
            self.logger.warning(f"SegmentationCaseReport '{self.prefix}': no case was collected; no report written.")
            self.result = None
            engine.state.metrics[self.metric_name] = math.nan
            return
        tp, fp, fn = counts[..., _TP], counts[..., _FP], counts[..., _FN]
        gt, denominator = tp + fn, 2 * tp + fp + fn
        dice = np.where(gt > 0, 2.0 * tp / np.maximum(denominator, 1), np.nan)  # N K
        empty = ~(gt > 0)
        mean_dice = np.full(len(cases), np.nan)
        scored = (~empty).any(axis=1)
        mean_dice[scored] = np.nanmean(dice[scored], axis=1)
        empty_cases = {n: [c for c, e in zip(cases, empty[:, k]) if e] for k, n in enumerate(self.class_names)}
        summary = {
            "num_cases": len(cases),
            "num_slices": int(slices.sum()),
            "classes": {
                n: {**_nan_stats(dice[:, k]), "empty_gt_cases": len(empty_cases[n])}
                for k, n in enumerate(self.class_names)
            },
            "mean_dice": _nan_stats(mean_dice),
            "empty_gt_cases": empty_cases,
            "empty_gt_convention": "Dice is NaN for a case whose ground truth of the class is empty, left out of means",
        }
        self.result = {
            "case_ids": cases,
            "num_slices": slices,
            "counts": counts,
            "dice": dice,
            "mean_dice": mean_dice,
            "summary": summary,
        }
        value = summary["mean_dice"]["mean"]
        engine.state.metrics[self.metric_name] = math.nan if value is None else value
        for n, ids in empty_cases.items():
            if ids:
                self.logger.warning(
                    f"SegmentationCaseReport '{self.prefix}': {len(ids)} case(s) with empty '{n}' ground truth "
                    f"(Dice NaN, left out of the mean): {ids[:_MAX_NAMED]}{' ...' if len(ids) > _MAX_NAMED else ''}"
                )
        if rank == 0:
            self._write(gt, tp + fp)
        shown = "n/a" if value is None else f"{value:.4f}"
        self.logger.info(
            f"SegmentationCaseReport '{self.prefix}': mean case Dice {shown} over {summary['mean_dice']['num_cases']} "
            f"of {len(cases)} cases ({summary['num_slices']} slices)."
        )

    def _write(self, gt: np.ndarray, pred: np.ndarray) -> None:
        res, names = self.result, self.class_names
        header = ["case_id", "num_slices"] + [f"dice_{n}" for n in names] + ["mean_dice"]
        header += [f"gt_pixels_{n}" for n in names] + [f"pred_pixels_{n}" for n in names]
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / f"{self.prefix}_per_case.csv"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for i, case in enumerate(res["case_ids"]):
                values = [res["num_slices"][i], *res["dice"][i], res["mean_dice"][i], *gt[i], *pred[i]]
                writer.writerow([case] + [_cell(v) for v in values])
        os.replace(tmp, path)
        path = self.output_dir / f"{self.prefix}_summary.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(res["summary"], indent=2), encoding="utf-8")
        os.replace(tmp, path)
