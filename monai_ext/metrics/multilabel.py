# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Multi-label classification metrics per class: AUROC, average precision (mAP), and F1, precision and recall at a
threshold, with unknown labels masked.

Inputs are ``y_pred`` of shape ``B C`` (probabilities in [0, 1], or logits with ``activation="sigmoid"``) and ``y`` of
shape ``B C`` with values in {0, 1} and ``NaN`` for an unknown label. Each class is scored on the rows where its label
is known. A class whose known labels hold no positive (AP, F1, precision, recall) or no positive or no negative (AUROC)
is skipped: it is reported as ``NaN``, left out of the macro mean, and named in a ``warnings.warn``.

mAP is the CXR-LT ranking metric: per-class step-wise average precision
(:func:`sklearn.metrics.average_precision_score`, ``AP = sum_n (R_n - R_{n-1}) P_n``) macro-averaged over the classes
(Holste et al., "Towards long-tailed, multi-label disease classification from chest X-ray: Overview of the CXR-LT
challenge", Medical Image Analysis 97:103224, 2024; the challenge scorer's exact estimator is not verified).

Why not :class:`monai.metrics.ROCAUCMetric`: MONAI 1.6.1 returns ``NaN`` for a class with a single label value and
then takes ``np.mean`` over all classes, so one such class turns the macro AUROC into ``NaN``; a ``NaN`` (unknown) label
makes the whole class ``NaN`` ("y values must be 0 or 1"); its warning does not name the class. The classes below mask
per class, skip by name and average the rest; the per-class numbers come from scikit-learn.

Their ignite wrappers for MONAI engines (``key_val_metric``) are in :mod:`monai_ext.handlers.multilabel_metrics`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from monai.metrics import CumulativeIterationMetric
from monai.utils import look_up_option
from monai.utils.enums import StrEnum
from scipy.special import expit
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

__all__ = [
    "ScoreActivation",
    "ClassAverage",
    "check_multilabel_inputs",
    "per_class_auroc",
    "per_class_average_precision",
    "per_class_f1",
    "per_class_precision_recall",
    "multilabel_metrics",
    "metrics_table",
    "write_metrics_table",
    "frequency_groups",
    "MultiLabelAUCMetric",
    "MultiLabelAPMetric",
    "MultiLabelF1Metric",
]


class ScoreActivation(StrEnum):
    """What ``y_pred`` holds: ``"none"`` = probabilities in [0, 1]; ``"sigmoid"`` = logits (sigmoid is applied)."""

    NONE = "none"
    SIGMOID = "sigmoid"


class ClassAverage(StrEnum):
    """``"macro"``: unweighted mean over the classes that are not skipped; ``"none"``: one value per class."""

    MACRO = "macro"
    NONE = "none"


_METRIC_LABELS = {"auroc": "AUROC", "ap": "AP", "f1": "F1", "precision": "precision", "recall": "recall"}
# result key of the macro mean of each per-class metric, in table column order
_MEAN_KEYS = {"auroc": "mean_auroc", "ap": "map", "f1": "macro_f1", "precision": "macro_precision",
              "recall": "macro_recall"}  # fmt: skip


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def check_multilabel_inputs(
    y_pred: Any,
    y: Any,
    class_names: Sequence[str] | None = None,
    activation: ScoreActivation | str = ScoreActivation.NONE,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate multi-label scores and labels and convert them to float64 arrays.

    The one input check shared by every function of this module and by :mod:`monai_ext.metrics.plots`.

    Args:
        y_pred: ``B C`` scores (tensor, array or nested list): probabilities in [0, 1], or logits with
            ``activation="sigmoid"``; must be finite.
        y: ``B C`` labels in {0, 1}, ``NaN`` = unknown.
        class_names: ``C`` names; defaults to None (``"class 0"``, ``"class 1"``, ...).
        activation: {``"none"``, ``"sigmoid"``}, see :class:`ScoreActivation`; with ``"sigmoid"`` the returned scores
            are ``sigmoid(y_pred)``. Defaults to ``"none"``.

    Returns:
        ``(scores, labels, names)``: two ``B C`` float64 arrays (scores after the activation) and the ``C`` names.

    Raises:
        ValueError: shapes differ or are not ``B C``, ``y_pred`` is not finite, ``y`` holds a value other than 0, 1,
            NaN, the number of class names differs from ``C``, or ``activation`` is not an allowed value.
    """
    scores, labels = _to_numpy(y_pred), _to_numpy(y)
    if scores.ndim != 2:
        raise ValueError(f"y_pred must have shape B C (batch, classes), got shape {tuple(scores.shape)}.")
    if labels.shape != scores.shape:
        raise ValueError(f"y shape {tuple(labels.shape)} does not match y_pred shape {tuple(scores.shape)}.")
    if not np.isfinite(scores).all():
        raise ValueError("y_pred contains NaN or infinite values; only y may hold NaN (unknown label).")
    known = labels[~np.isnan(labels)]
    bad = np.unique(known[(known != 0) & (known != 1)])
    if bad.size:
        raise ValueError(f"y must hold 0, 1 or NaN (unknown), found values {bad[:5].tolist()}.")
    names = [f"class {c}" for c in range(scores.shape[1])] if class_names is None else list(class_names)
    if len(names) != scores.shape[1]:
        raise ValueError(f"{len(names)} class names were given but y_pred has {scores.shape[1]} classes.")
    if look_up_option(activation, ScoreActivation) == ScoreActivation.SIGMOID:
        scores = expit(scores)
    return scores, labels, names


def _per_class(
    scores: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    metric: str,
    fn: Callable[[np.ndarray, np.ndarray], float],
) -> np.ndarray:
    """Apply ``fn(y_true, y_score)`` per class on the known rows; NaN and one warning for the skipped classes."""
    values = np.full(scores.shape[1], math.nan)
    skipped = []
    for c in range(scores.shape[1]):
        known = ~np.isnan(labels[:, c])
        y_c = labels[known, c]
        n_pos = int(y_c.sum())
        if n_pos == 0 or (metric == "auroc" and n_pos == y_c.size):
            skipped.append(names[c])
            continue
        values[c] = float(fn(y_c, scores[known, c]))
    if skipped:
        need = "no positive or no negative" if metric == "auroc" else "no positive"
        warnings.warn(
            f"{_METRIC_LABELS[metric]} is undefined for class(es) {skipped} ({need} among the known labels); "
            "reported as NaN and left out of the mean.",
            stacklevel=3,
        )
    return values


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-NaN values; NaN when every value is NaN (without numpy's empty-slice warning)."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _check_threshold(scores: np.ndarray, threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}.")
    if scores.size and (scores.min() < 0.0 or scores.max() > 1.0):
        raise ValueError(
            f"y_pred holds values in [{scores.min():.4g}, {scores.max():.4g}], outside [0, 1], so a probability "
            "threshold does not apply; pass activation='sigmoid' for logits."
        )


def _f1_at(threshold: float) -> Callable[[np.ndarray, np.ndarray], float]:
    """F1 of ``score >= threshold`` against 0/1 labels, as a ``fn(y_true, y_score)`` for :func:`_per_class`."""
    return lambda t, s: f1_score(t.astype(int), (s >= threshold).astype(int), zero_division=0)


def _precision_at(threshold: float) -> Callable[[np.ndarray, np.ndarray], float]:
    """Precision ``TP / (TP + FP)`` of ``score >= threshold`` (0 when nothing is predicted positive)."""
    return lambda t, s: precision_score(t.astype(int), (s >= threshold).astype(int), zero_division=0)


def _recall_at(threshold: float) -> Callable[[np.ndarray, np.ndarray], float]:
    """Recall (sensitivity) ``TP / (TP + FN)`` of ``score >= threshold``."""
    return lambda t, s: recall_score(t.astype(int), (s >= threshold).astype(int), zero_division=0)


def per_class_auroc(y_pred: Any, y: Any, class_names: Sequence[str] | None = None) -> np.ndarray:
    """Area under the ROC curve per class (:func:`sklearn.metrics.roc_auc_score`, ties count one half).

    AUROC = P(score of a random positive > score of a random negative) + 0.5 P(equal), over the known rows.

    Args:
        y_pred: ``B C`` scores (probabilities or logits: AUROC only depends on the ranking).
        y: ``B C`` labels in {0, 1}, ``NaN`` = unknown (masked out for that class).
        class_names: ``C`` names used in the warning; defaults to ``"class 0"``, ``"class 1"``, ...

    Returns:
        float64 array of shape ``C``; ``NaN`` for a class without both a positive and a negative known label
        (named in a ``warnings.warn``).

    Raises:
        ValueError: shapes differ or are not ``B C``, ``y_pred`` is not finite, ``y`` holds a value other than 0, 1,
            NaN, or the number of class names differs from ``C``.
    """
    scores, labels, names = check_multilabel_inputs(y_pred, y, class_names)
    return _per_class(scores, labels, names, "auroc", roc_auc_score)


def per_class_average_precision(y_pred: Any, y: Any, class_names: Sequence[str] | None = None) -> np.ndarray:
    """Average precision per class, step-wise as :func:`sklearn.metrics.average_precision_score`.

    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the score thresholds in decreasing order (no interpolation), on the known
    rows of each class. Arguments, return value and errors as :func:`per_class_auroc`; a class is skipped (``NaN``)
    when its known labels hold no positive.
    """
    scores, labels, names = check_multilabel_inputs(y_pred, y, class_names)
    return _per_class(scores, labels, names, "ap", average_precision_score)


def per_class_f1(
    y_pred: Any,
    y: Any,
    class_names: Sequence[str] | None = None,
    threshold: float = 0.5,
    activation: ScoreActivation | str = ScoreActivation.NONE,
) -> np.ndarray:
    """F1 per class with the prediction ``y_pred >= threshold`` (:func:`sklearn.metrics.f1_score`).

    ``F1 = 2 TP / (2 TP + FP + FN)`` on the known rows of each class.

    Args:
        y_pred: ``B C`` probabilities in [0, 1], or logits with ``activation="sigmoid"``.
        y: ``B C`` labels in {0, 1}, ``NaN`` = unknown.
        class_names: ``C`` names used in the warning.
        threshold: probability threshold in [0, 1] (applied after the sigmoid for logits). Defaults to 0.5.
        activation: {``"none"``, ``"sigmoid"``}, see :class:`ScoreActivation`. Defaults to ``"none"``.

    Returns:
        float64 array of shape ``C``; ``NaN`` for a class without a positive known label (named in a warning).

    Raises:
        ValueError: as :func:`per_class_auroc`; also when ``threshold`` is outside [0, 1] or, with
            ``activation="none"``, ``y_pred`` is outside [0, 1].
    """
    scores, labels, names = check_multilabel_inputs(y_pred, y, class_names, activation)
    _check_threshold(scores, threshold)
    return _per_class(scores, labels, names, "f1", _f1_at(threshold))


def per_class_precision_recall(
    y_pred: Any,
    y: Any,
    class_names: Sequence[str] | None = None,
    threshold: float = 0.5,
    activation: ScoreActivation | str = ScoreActivation.NONE,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall per class with the prediction ``y_pred >= threshold``
    (:func:`sklearn.metrics.precision_score` / :func:`~sklearn.metrics.recall_score`).

    ``precision = TP / (TP + FP)`` (0 when no known row is predicted positive), ``recall = TP / (TP + FN)``, on the
    known rows of each class. Arguments and errors as :func:`per_class_f1`.

    Returns:
        ``(precision, recall)``: two float64 arrays of shape ``C``; ``NaN`` for a class without a positive known
        label (recall is undefined there and precision would only count false positives; both named in a warning).
    """
    scores, labels, names = check_multilabel_inputs(y_pred, y, class_names, activation)
    _check_threshold(scores, threshold)
    return (
        _per_class(scores, labels, names, "precision", _precision_at(threshold)),
        _per_class(scores, labels, names, "recall", _recall_at(threshold)),
    )


def multilabel_metrics(
    y_pred: Any,
    y: Any,
    class_names: Sequence[str],
    threshold: float = 0.5,
    activation: ScoreActivation | str = ScoreActivation.NONE,
    class_groups: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Per-class AUROC, AP, F1, precision and recall with their macro means (mean AUROC, mAP, macro F1 as CXR-LT
    reports them; macro precision and recall).

    Args:
        y_pred: ``B C`` probabilities in [0, 1], or logits with ``activation="sigmoid"``.
        y: ``B C`` labels in {0, 1}, ``NaN`` = unknown (masked per class).
        class_names: the ``C`` class names, in column order.
        threshold: probability threshold of F1, precision and recall (``y_pred >= threshold`` is positive).
            Defaults to 0.5.
        activation: {``"none"``, ``"sigmoid"``}. Defaults to ``"none"`` (probabilities).
        class_groups: optional named groups of class names, e.g. :func:`frequency_groups`'s head/medium/tail; the
            macro means are then also reported per group. Defaults to None.

    Returns:
        A dict (JSON-serialisable) with

        - ``"per_class"``: ``{name: {"n_known", "n_positive", "auroc", "ap", "f1", "precision", "recall"}}`` in
          column order, NaN = skipped (precision is 0, not NaN, for a class with positives but no predicted positive);
        - ``"mean_auroc"``, ``"map"``, ``"macro_f1"``, ``"macro_precision"``, ``"macro_recall"``: macro means over
          the classes not skipped (NaN if none is left);
        - ``"skipped"``: ``{"auroc": [...], "ap": [...], "f1": [...], "precision": [...], "recall": [...]}`` class
          names left out of each mean;
        - ``"threshold"``: the threshold of F1, precision and recall;
        - ``"groups"`` (only with ``class_groups``): ``{group: {"classes", "mean_auroc", "map", "macro_f1",
          "macro_precision", "macro_recall"}}``.

    Raises:
        ValueError: bad shapes or values (see :func:`per_class_auroc` and :func:`per_class_f1`), or a group names a
            class not in ``class_names``.

    Example:
        >>> import numpy as np
        >>> r = multilabel_metrics(np.array([[0.9, 0.2], [0.1, 0.8]]), np.array([[1, 0], [0, 1]]), ["a", "b"])
        >>> r["map"], r["per_class"]["a"]["auroc"]
        (1.0, 1.0)
    """
    scores, labels, names = check_multilabel_inputs(y_pred, y, class_names, activation)
    _check_threshold(scores, threshold)
    values = {
        "auroc": _per_class(scores, labels, names, "auroc", roc_auc_score),
        "ap": _per_class(scores, labels, names, "ap", average_precision_score),
        "f1": _per_class(scores, labels, names, "f1", _f1_at(threshold)),
        "precision": _per_class(scores, labels, names, "precision", _precision_at(threshold)),
        "recall": _per_class(scores, labels, names, "recall", _recall_at(threshold)),
    }
    known = ~np.isnan(labels)
    n_known, n_pos = known.sum(axis=0), np.nansum(labels, axis=0)
    result: dict[str, Any] = {
        "per_class": {
            name: {
                "n_known": int(n_known[c]),
                "n_positive": int(n_pos[c]),
                **{key: float(v[c]) for key, v in values.items()},
            }
            for c, name in enumerate(names)
        },
        **{_MEAN_KEYS[key]: _nanmean(v) for key, v in values.items()},
        "skipped": {key: [names[c] for c in np.flatnonzero(np.isnan(v))] for key, v in values.items()},
        "threshold": float(threshold),
    }
    if class_groups is not None:
        result["groups"] = {}
        for group, members in class_groups.items():
            unknown = [m for m in members if m not in names]
            if unknown:
                raise ValueError(f"class group '{group}' names class(es) {unknown} not in class_names {names}.")
            idx = [names.index(m) for m in members]
            result["groups"][group] = {
                "classes": list(members),
                **{_MEAN_KEYS[key]: _nanmean(v[idx]) for key, v in values.items()},
            }
    return result


def metrics_table(result: Mapping[str, Any]) -> pd.DataFrame:
    """The per-class table of a :func:`multilabel_metrics` result, one row per class then one per mean.

    Columns ``class, n_known, n_positive, auroc, ap, f1, precision, recall``; the mean rows are ``mean`` and, with
    groups, ``mean (<group>)``, with empty counts. A result without precision/recall (written before they were
    added) leaves those cells empty.
    """
    rows = [{"class": name, **row} for name, row in result["per_class"].items()]
    means = [("mean", result)] + [(f"mean ({g})", v) for g, v in result.get("groups", {}).items()]
    for label, m in means:
        rows.append({"class": label, **{key: m.get(mean, math.nan) for key, mean in _MEAN_KEYS.items()}})
    table = pd.DataFrame(rows, columns=["class", "n_known", "n_positive", *_MEAN_KEYS])
    return table.astype({"n_known": "Int64", "n_positive": "Int64"})


def write_metrics_table(result: Mapping[str, Any], csv_path: str | os.PathLike | None = None, digits: int = 4) -> str:
    """Write the per-class table of a :func:`multilabel_metrics` result as CSV and return it as Markdown.

    Args:
        result: the dict returned by :func:`multilabel_metrics`.
        csv_path: where to write the CSV (full precision; empty cell = skipped / not applicable); the parent folder
            is created. Defaults to None (no file).
        digits: decimals in the Markdown table. Defaults to 4.

    Returns:
        A GitHub-flavoured Markdown table; ``n/a`` marks a skipped class.
    """
    table = metrics_table(result)
    if csv_path is not None:
        path = Path(csv_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)

    def cell(v: Any, col: str) -> str:
        if v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return "" if col in ("n_known", "n_positive") else "n/a"
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(":---" if c == "class" else "---:" for c in cols) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v, c) for v, c in zip(row, cols)) + " |")
    return "\n".join(lines) + "\n"


def frequency_groups(
    train_counts: Mapping[str, int], head_min: int = 1000, tail_max: int = 100
) -> dict[str, list[str]]:
    """Split classes into ``head`` / ``medium`` / ``tail`` by their number of positive training images.

    ``head``: count > ``head_min``; ``tail``: count < ``tail_max``; ``medium``: the rest. The default bins
    (> 1,000 / 100-1,000 / < 100) are the many/medium/few-shot bins of the long-tailed CXR literature (Holste et al.,
    "Long-Tailed Classification of Thorax Diseases on Chest X-Ray: A New Benchmark Study", MICCAI DALI 2022; the
    exact bins of that paper are not verified here): pass your own for another convention.
    Use :func:`monai_ext.data.datalist.class_totals` on the training datalist to get ``train_counts``.

    Args:
        train_counts: ``{class name: positive training images}``; groups keep this order.
        head_min: a class with more than this many is ``head``. Defaults to 1000.
        tail_max: a class with fewer than this many is ``tail``. Defaults to 100.

    Returns:
        ``{"head": [...], "medium": [...], "tail": [...]}`` (a group may be empty).

    Raises:
        ValueError: ``tail_max > head_min + 1`` (the bins would overlap) or a count is negative.

    Example:
        >>> frequency_groups({"Effusion": 5000, "Hernia": 40, "Mass": 300})
        {'head': ['Effusion'], 'medium': ['Mass'], 'tail': ['Hernia']}
    """
    if tail_max > head_min + 1:
        raise ValueError(f"tail_max ({tail_max}) must be at most head_min + 1 ({head_min + 1}).")
    groups: dict[str, list[str]] = {"head": [], "medium": [], "tail": []}
    for name, count in train_counts.items():
        if count < 0:
            raise ValueError(f"training count of class '{name}' is negative: {count}.")
        groups["head" if count > head_min else "tail" if count < tail_max else "medium"].append(name)
    return groups


class _MaskedMultiLabelMetric(CumulativeIterationMetric):
    """Collects ``B C`` predictions and labels (NaN = unknown) over iterations; scores them per class in aggregate."""

    def __init__(self, class_names: Sequence[str] | None = None, average: ClassAverage | str = ClassAverage.MACRO):
        super().__init__()
        self.class_names = None if class_names is None else list(class_names)
        self.average = look_up_option(average, ClassAverage)

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if y is None:
            raise ValueError(f"{type(self).__name__} needs the labels y.")
        if y_pred.ndim != 2 or y.shape != y_pred.shape:
            raise ValueError(f"y_pred and y must both have shape B C, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
        return y_pred, y

    def _per_class_values(self, y_pred: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _per_class_values.")

    def aggregate(self, average: ClassAverage | str | None = None) -> float | np.ndarray:  # type: ignore[override]
        """Score everything collected so far.

        Args:
            average: {``"macro"``, ``"none"``}; defaults to the one given at construction.

        Returns:
            The macro mean (float, NaN if every class is skipped) or the ``C`` per-class values (NaN = skipped).
        """
        buffer = self.get_buffer()
        if not isinstance(buffer, list) or len(buffer) != 2 or not all(isinstance(b, torch.Tensor) for b in buffer):
            raise ValueError(f"{type(self).__name__} has no data to aggregate; call it on a batch first.")
        y_pred, y = buffer
        values = self._per_class_values(y_pred, y)
        mode = self.average if average is None else look_up_option(average, ClassAverage)
        return values if mode == ClassAverage.NONE else _nanmean(values)


class MultiLabelAUCMetric(_MaskedMultiLabelMetric):
    """Per-class / macro AUROC over all collected batches, unknown (NaN) labels masked per class.

    Use instead of :class:`monai.metrics.ROCAUCMetric` when labels may be unknown or a class may lack positives in
    the evaluated set (see the module docstring). ``y_pred``/``y``: ``B C`` batch-first tensors or lists of ``C``
    channel-first tensors, as every MONAI cumulative metric.

    Args:
        class_names: ``C`` names for the skip warning. Defaults to None (``"class 0"``, ...).
        average: {``"macro"``, ``"none"``}. Defaults to ``"macro"``.
    """

    def _per_class_values(self, y_pred: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        return per_class_auroc(y_pred, y, self.class_names)


class MultiLabelAPMetric(_MaskedMultiLabelMetric):
    """Per-class average precision / mAP (CXR-LT's ranking metric) over all collected batches, NaN labels masked.

    Args:
        class_names: ``C`` names for the skip warning. Defaults to None.
        average: {``"macro"`` (mAP), ``"none"``}. Defaults to ``"macro"``.
    """

    def _per_class_values(self, y_pred: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        return per_class_average_precision(y_pred, y, self.class_names)


class MultiLabelF1Metric(_MaskedMultiLabelMetric):
    """Per-class / macro F1 at a probability threshold over all collected batches, NaN labels masked.

    Args:
        class_names: ``C`` names for the skip warning. Defaults to None.
        threshold: probability threshold in [0, 1]. Defaults to 0.5.
        activation: {``"none"`` (probabilities), ``"sigmoid"`` (logits)}. Defaults to ``"none"``.
        average: {``"macro"``, ``"none"``}. Defaults to ``"macro"``.

    Raises:
        ValueError: ``threshold`` outside [0, 1].
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        threshold: float = 0.5,
        activation: ScoreActivation | str = ScoreActivation.NONE,
        average: ClassAverage | str = ClassAverage.MACRO,
    ):
        super().__init__(class_names=class_names, average=average)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}.")
        self.threshold = threshold
        self.activation = look_up_option(activation, ScoreActivation)

    def _per_class_values(self, y_pred: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        return per_class_f1(y_pred, y, self.class_names, self.threshold, self.activation)
