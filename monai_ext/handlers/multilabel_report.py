# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Evaluator handler writing a multi-label evaluation report: per-class AUROC / AP / F1 / precision / recall table (CSV
and Markdown) and
ROC curves (PNG), with the macro means put into ``engine.state.metrics``.

It collects ``pred``/``label`` over the evaluation pass, all-gathers them across ranks (MONAI's
:func:`monai.utils.evenly_divisible_all_gather`, built on ignite's ``idist``) and scores them with
:func:`monai_ext.metrics.multilabel.multilabel_metrics` (unknown labels masked per class; a class without positives is
``n/a`` and left out of the means).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import IgniteInfo, evenly_divisible_all_gather, look_up_option, min_version, optional_import

from monai_ext.metrics.multilabel import ScoreActivation, multilabel_metrics, write_metrics_table
from monai_ext.metrics.plots import save_roc_curves_png

idist, _ = optional_import("ignite", IgniteInfo.OPT_IMPORT_VERSION, min_version, "distributed")
Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = ["MultiLabelReport"]

_RESULT_KEYS = ("mean_auroc", "map", "macro_f1", "macro_precision", "macro_recall")


def _plain(value: Any) -> torch.Tensor:
    value = value.as_tensor() if isinstance(value, MetaTensor) else torch.as_tensor(value)
    return value.detach().to("cpu", torch.float64)


def _rows(data: Any, key: str) -> torch.Tensor:
    """``B C`` float64 CPU tensor of ``key`` from a decollated list of dicts or a batch-first dict."""
    hint = "the report needs predictions and labels (an evaluator over a labelled datalist)"
    if isinstance(data, Mapping):
        if key not in data:
            raise KeyError(f"engine.state.output has no '{key}'; {hint} (found keys: {sorted(map(str, data))}).")
        value = _plain(data[key])
        return value.reshape(value.shape[0], -1) if value.ndim else value.reshape(1, 1)
    if isinstance(data, Sequence) and all(isinstance(d, Mapping) for d in data):
        missing = [k for k, d in enumerate(data) if key not in d]
        if missing:
            raise KeyError(f"item(s) {missing[:5]} of engine.state.output have no '{key}'; {hint}.")
        if not data:
            return torch.zeros(0, 0, dtype=torch.float64)
        return torch.stack([_plain(d[key]).reshape(-1) for d in data])
    raise TypeError(f"engine.state.output must be a dict or a list of dicts, got {type(data).__name__}.")


class MultiLabelReport:
    """Per-class multi-label report of an evaluation pass, written to files and ``engine.state.metrics``.

    Collects ``engine.state.output[i][pred_key]`` and ``[label_key]`` (``C`` each, labels in {0, 1}, NaN = unknown)
    at every ``ITERATION_COMPLETED``; at ``EPOCH_COMPLETED`` (the end of the evaluator's single pass) gathers them from
    every rank and

    - computes :func:`monai_ext.metrics.multilabel.multilabel_metrics` (kept as :attr:`result`);
    - writes ``<output_dir>/<prefix>_per_class.csv`` and ``<prefix>_per_class.md`` (one row per class with
      ``n_known, n_positive, auroc, ap, f1, precision, recall``, then the means; ``n/a`` in Markdown / empty in
      CSV for a skipped class) and ``<prefix>_roc.png`` (first rank only);
    - logs the mean AUROC, mAP, macro F1, macro precision and macro recall;
    - puts the means named in ``metric_names`` into ``engine.state.metrics`` on every rank.

    It runs at ``EPOCH_COMPLETED`` rather than ``COMPLETED`` so that handlers reading ``engine.state.metrics`` at
    ``EPOCH_COMPLETED`` (MONAI's ``StatsHandler`` / ``TensorBoardStatsHandler``, ``CheckpointSaver`` key metrics)
    see the values: list it before them in ``val_handlers``. Under ``torchrun`` attach it on every rank (the gather
    is collective) and give the evaluator a ``DistributedSampler(even_divisible=False)`` so no case is counted twice.

    Args:
        output_dir: folder of the report files (created when written).
        class_names: the ``C`` class names in output order.
        prefix: file name prefix. Defaults to ``"eval"``.
        pred_key: key of the scores in the output. Defaults to ``"pred"``.
        label_key: key of the labels in the output. Defaults to ``"label"``.
        threshold: probability threshold of F1, precision and recall. Defaults to 0.5.
        activation: {``"none"`` (``pred`` holds probabilities, e.g. after ``Activationsd(sigmoid=True)``),
            ``"sigmoid"`` (logits)}. Defaults to ``"none"``.
        class_groups: optional named class groups (e.g. :func:`monai_ext.metrics.multilabel.frequency_groups`), whose
            means get their own table rows. Defaults to None.
        metric_names: ``{result key: engine.state.metrics name}`` for result keys in {``"mean_auroc"``, ``"map"``,
            ``"macro_f1"``, ``"macro_precision"``, ``"macro_recall"``}. Defaults to None:
            ``{"mean_auroc": "mean_auroc", "map": "map"}``.
        name: logger name; None uses ``engine.logger``.

    Raises:
        ValueError: ``class_names`` is empty or repeats a name, ``activation`` is not allowed, ``threshold`` is outside
            [0, 1], or ``metric_names`` has another key.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        prefix: str = "eval",
        pred_key: str = "pred",
        label_key: str = "label",
        threshold: float = 0.5,
        activation: ScoreActivation | str = ScoreActivation.NONE,
        class_groups: Mapping[str, Sequence[str]] | None = None,
        metric_names: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        names = [str(c) for c in class_names]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"class_names must name each class once, got {names}.")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}.")
        metric_names = {"mean_auroc": "mean_auroc", "map": "map"} if metric_names is None else dict(metric_names)
        unknown = [k for k in metric_names if k not in _RESULT_KEYS]
        if unknown:
            raise ValueError(f"metric_names keys must be among {list(_RESULT_KEYS)}, got {unknown}.")
        self.output_dir = Path(output_dir)
        self.class_names = names
        self.prefix = prefix
        self.pred_key, self.label_key = pred_key, label_key
        self.threshold = float(threshold)
        self.activation = look_up_option(activation, ScoreActivation)
        self.class_groups = None if class_groups is None else {g: list(m) for g, m in class_groups.items()}
        self.metric_names = metric_names
        self.logger = logging.getLogger(name)
        self._name = name
        self._preds: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self.result: dict[str, Any] | None = None

    def attach(self, engine: Engine) -> None:
        """Reset at ``EPOCH_STARTED``, collect at ``ITERATION_COMPLETED``, report at ``EPOCH_COMPLETED``."""
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
        """Forget the collected predictions and labels."""
        self._preds, self._labels = [], []

    def collect(self, engine: Engine) -> None:
        """Append this iteration's ``B C`` predictions and labels.

        Raises:
            KeyError: the output misses ``pred_key`` or ``label_key``.
            ValueError: predictions and labels do not both have ``C`` columns per sample.
        """
        pred, label = _rows(engine.state.output, self.pred_key), _rows(engine.state.output, self.label_key)
        c = len(self.class_names)
        if pred.shape[0] == 0:
            return
        if pred.shape != label.shape or pred.shape[1] != c:
            raise ValueError(
                f"'{self.pred_key}' {tuple(pred.shape)} and '{self.label_key}' {tuple(label.shape)} must both be "
                f"B x {c} ({c} class names)."
            )
        self._preds.append(pred)
        self._labels.append(label)

    def __call__(self, engine: Engine) -> None:
        """Gather, score, write the report files and set ``engine.state.metrics``.

        Raises:
            ValueError: as :func:`monai_ext.metrics.multilabel.multilabel_metrics` (bad label values, logits with
                ``activation="none"``).
        """
        c = len(self.class_names)
        pred = torch.cat(self._preds) if self._preds else torch.zeros(0, c, dtype=torch.float64)
        label = torch.cat(self._labels) if self._labels else torch.zeros(0, c, dtype=torch.float64)
        pred = evenly_divisible_all_gather(pred, concat=True)
        label = evenly_divisible_all_gather(label, concat=True)
        if pred.shape[0] == 0:
            self.logger.warning(f"MultiLabelReport '{self.prefix}': no prediction was collected; no report written.")
            self.result = None
            return
        y_pred, y = pred.numpy(), label.numpy()
        self.result = multilabel_metrics(
            y_pred, y, self.class_names, self.threshold, self.activation, class_groups=self.class_groups
        )
        for key, metric in self.metric_names.items():
            engine.state.metrics[metric] = self.result[key]
        if idist.get_rank() == 0:
            self._write(y_pred, y)
        self.logger.info(
            f"MultiLabelReport '{self.prefix}' on {y.shape[0]} cases: mean AUROC {self._fmt('mean_auroc')}, "
            f"mAP {self._fmt('map')}, macro F1 {self._fmt('macro_f1')}, "
            f"macro precision {self._fmt('macro_precision')}, macro recall {self._fmt('macro_recall')} "
            f"(at threshold {self.threshold:g})."
        )

    def _fmt(self, key: str) -> str:
        value = self.result[key] if self.result is not None else math.nan
        return "n/a" if math.isnan(value) else f"{value:.4f}"

    def _write(self, y_pred: np.ndarray, y: np.ndarray) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        markdown = write_metrics_table(self.result, self.output_dir / f"{self.prefix}_per_class.csv")
        (self.output_dir / f"{self.prefix}_per_class.md").write_text(markdown, encoding="utf-8")
        # ROC curves depend on the ranking only, so logits and probabilities draw the same curves
        save_roc_curves_png(y_pred, y, self.class_names, self.output_dir / f"{self.prefix}_roc.png")
