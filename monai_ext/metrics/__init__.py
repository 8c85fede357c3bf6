# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Evaluation metrics: multi-label AUROC / mAP / F1 per class with unknown labels masked (and their MONAI cumulative
metrics; the ignite handlers are in :mod:`monai_ext.handlers.multilabel_metrics`), FROC for box detection, and PNG
curve plots."""

from __future__ import annotations

from monai_ext.metrics.classification import ClassificationAccuracyMetric, class_indices
from monai_ext.metrics.froc import (
    DEEPLESION_AVERAGE_FP_RATES,
    DEEPLESION_FP_RATES,
    FROCDuplicate,
    FROCInterpolation,
    FROCIoUConvention,
    FROCMatch,
    FROCSensitivity,
    compute_detection_froc,
    deeplesion_froc_summary,
    detection_outcomes,
    froc_curve,
    match_detections,
    summarize_froc,
)
from monai_ext.metrics.multilabel import (
    ClassAverage,
    MultiLabelAPMetric,
    MultiLabelAUCMetric,
    MultiLabelF1Metric,
    ScoreActivation,
    check_multilabel_inputs,
    frequency_groups,
    metrics_table,
    multilabel_metrics,
    per_class_auroc,
    per_class_average_precision,
    per_class_f1,
    per_class_precision_recall,
    write_metrics_table,
)
from monai_ext.metrics.plots import save_froc_png, save_pr_curves_png, save_roc_curves_png

__all__ = [
    "ClassificationAccuracyMetric",
    "class_indices",
    "DEEPLESION_FP_RATES",
    "DEEPLESION_AVERAGE_FP_RATES",
    "FROCInterpolation",
    "FROCMatch",
    "FROCDuplicate",
    "FROCIoUConvention",
    "FROCSensitivity",
    "compute_detection_froc",
    "detection_outcomes",
    "summarize_froc",
    "deeplesion_froc_summary",
    "froc_curve",
    "match_detections",
    "ClassAverage",
    "ScoreActivation",
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
    "save_roc_curves_png",
    "save_pr_curves_png",
    "save_froc_png",
]
