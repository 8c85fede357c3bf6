# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ignite metrics for MONAI engines: macro / per-class AUROC, mAP and F1 with unknown (NaN) labels masked per class,
and single-label accuracy.

Thin :class:`monai.handlers.IgniteMetricHandler` wrappers of the cumulative metrics in
:mod:`monai_ext.metrics.multilabel`, for ``key_val_metric`` / ``additional_metrics`` of a ``SupervisedEvaluator``
(``"output_transform": "$monai.handlers.from_engine(['pred', 'label'])"``). Like every ignite metric they compute at
``EPOCH_COMPLETED`` and put one value (``average="macro"``) or a ``C`` array (``average="none"``) into
``engine.state.metrics``; under ``torchrun`` MONAI's cumulative buffers are all-gathered before scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monai.handlers import IgniteMetricHandler

from monai_ext.metrics.classification import ClassificationAccuracyMetric
from monai_ext.metrics.multilabel import (
    ClassAverage,
    MultiLabelAPMetric,
    MultiLabelAUCMetric,
    MultiLabelF1Metric,
    ScoreActivation,
)

__all__ = ["MultiLabelAUC", "MultiLabelAveragePrecision", "MultiLabelF1", "ClassificationAccuracy"]


def _identity(x: Any) -> Any:
    return x


class MultiLabelAUC(IgniteMetricHandler):
    """Ignite metric wrapping :class:`monai_ext.metrics.multilabel.MultiLabelAUCMetric` (AUROC per class / macro).

    Args:
        class_names: ``C`` names for the skip warning. Defaults to None.
        average: {``"macro"``, ``"none"``}; ``"none"`` puts a ``C`` array in ``engine.state.metrics``. Defaults to
            ``"macro"``.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``. Defaults to the identity.

    Raises:
        ValueError: ``average`` is not an allowed value.
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        average: ClassAverage | str = ClassAverage.MACRO,
        output_transform: Callable = _identity,
    ) -> None:
        super().__init__(
            metric_fn=MultiLabelAUCMetric(class_names=class_names, average=average),
            output_transform=output_transform,
            save_details=False,
        )


class MultiLabelAveragePrecision(IgniteMetricHandler):
    """Ignite metric wrapping :class:`monai_ext.metrics.multilabel.MultiLabelAPMetric`: mAP with
    ``average="macro"`` (CXR-LT's key metric).

    Args:
        class_names: ``C`` names for the skip warning. Defaults to None.
        average: {``"macro"``, ``"none"``}. Defaults to ``"macro"``.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``. Defaults to the identity.

    Raises:
        ValueError: ``average`` is not an allowed value.
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        average: ClassAverage | str = ClassAverage.MACRO,
        output_transform: Callable = _identity,
    ) -> None:
        super().__init__(
            metric_fn=MultiLabelAPMetric(class_names=class_names, average=average),
            output_transform=output_transform,
            save_details=False,
        )


class MultiLabelF1(IgniteMetricHandler):
    """Ignite metric wrapping :class:`monai_ext.metrics.multilabel.MultiLabelF1Metric` (F1 at a threshold).

    Args:
        class_names: ``C`` names for the skip warning. Defaults to None.
        threshold: probability threshold in [0, 1]. Defaults to 0.5.
        activation: {``"none"`` (probabilities), ``"sigmoid"`` (logits)}. Defaults to ``"none"``.
        average: {``"macro"``, ``"none"``}. Defaults to ``"macro"``.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``. Defaults to the identity.

    Raises:
        ValueError: ``threshold`` outside [0, 1], or ``activation`` / ``average`` not an allowed value.
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        threshold: float = 0.5,
        activation: ScoreActivation | str = ScoreActivation.NONE,
        average: ClassAverage | str = ClassAverage.MACRO,
        output_transform: Callable = _identity,
    ) -> None:
        super().__init__(
            metric_fn=MultiLabelF1Metric(
                class_names=class_names, threshold=threshold, activation=activation, average=average
            ),
            output_transform=output_transform,
            save_details=False,
        )


class ClassificationAccuracy(IgniteMetricHandler):
    """Ignite metric wrapping :class:`monai_ext.metrics.classification.ClassificationAccuracyMetric`: overall accuracy
    of single-label multi-class predictions (argmax), e.g. the ``key_val_metric`` of the ROP bundle.

    Args:
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``. Defaults to the identity.
    """

    def __init__(self, output_transform: Callable = _identity) -> None:
        super().__init__(
            metric_fn=ClassificationAccuracyMetric(), output_transform=output_transform, save_details=False
        )
