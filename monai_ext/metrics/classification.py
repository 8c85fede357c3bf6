# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Single-label multi-class accuracy as a MONAI cumulative metric.

MONAI 1.6.1 has no overall accuracy for single-label multi-class outputs: ``ConfusionMatrixMetric(metric_name=
"accuracy")`` scores each class one-vs-rest, ``(TP_c + TN_c) / N``, and averages over classes, which equals
``1 - 2 (1 - acc) / C`` rather than the fraction of correctly classified images (the number the meta soft-label paper
reports, Table I).
"""

from __future__ import annotations

from typing import Any

import torch
from monai.metrics import CumulativeIterationMetric
from monai.utils import MetricReduction

__all__ = ["ClassificationAccuracyMetric", "class_indices"]


def class_indices(labels: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """``B`` int64 class indices from ``B`` / ``B 1`` indices or ``B C`` one-hot labels.

    Raises:
        ValueError: another shape, or a one-hot row that is not exactly one 1.
    """
    labels = torch.as_tensor(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 2:
        if num_classes is not None and labels.shape[1] != num_classes:
            raise ValueError(f"one-hot labels have {labels.shape[1]} columns, predictions {num_classes} classes.")
        if not bool((labels.sum(dim=1) == 1).all()):
            raise ValueError("one-hot labels must hold exactly one 1 per row.")
        return labels.argmax(dim=1)
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (B,), (B, 1) or (B, C), got {tuple(labels.shape)}.")
    return labels.round().long()


class ClassificationAccuracyMetric(CumulativeIterationMetric):
    """Fraction of images whose predicted class (argmax of ``y_pred``) equals the label.

    ``y_pred``: ``B C`` probabilities or logits; ``y``: ``B`` / ``B 1`` class indices or ``B C`` one-hot. Each call
    buffers one 0/1 value per image; :meth:`aggregate` returns their mean (all ranks' buffers under ``torchrun``).
    """

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if y_pred.ndim != 2:
            raise ValueError(f"y_pred must have shape (B, C), got {tuple(y_pred.shape)}.")
        labels = class_indices(y, y_pred.shape[1]).to(y_pred.device)
        if labels.shape[0] != y_pred.shape[0]:
            raise ValueError(f"{labels.shape[0]} labels for {y_pred.shape[0]} predictions.")
        return (y_pred.argmax(dim=1) == labels).float().unsqueeze(1)

    def aggregate(self, reduction: MetricReduction | str | None = None) -> Any:
        """Mean correctness over every buffered image (``nan`` when none was seen)."""
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor) or data.numel() == 0:
            return torch.tensor(float("nan"))
        return data.float().mean()
