# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ignite handlers: per-sample recording (``per_sample``), EMA teacher (``ema``), NVUM label audit (``label_audit``) and
gradient monitor (``nvum_monitor``),
multi-label metrics and reports, MoMBS re-planning, assessor and self-paced loss weights (``mombs``,
``mombs_assessor``, ``self_paced``), per-case Dice
(``segmentation_report``), single-label classification and soft-label reports (``classification_report``,
``soft_label_report``) and inference writers (``prediction_writer``, ``mask_writer``,
``detection_writer``).

Every handler a bundle config names is exported here: ``monai_ext.handlers.EMATeacher``.
"""

from __future__ import annotations

from monai_ext.handlers.classification_report import ClassificationReport
from monai_ext.handlers.detection_report import DetectionFROCReport, original_pixel_boxes
from monai_ext.handlers.detection_writer import DetectionWriter, write_detections_csv
from monai_ext.handlers.ema import EMABufferMode, EMATeacher, TeacherMode
from monai_ext.handlers.label_audit import LabelAuditWriter, MemoryScore
from monai_ext.handlers.mask_writer import SegmentationMaskWriter, write_volume_predictions_csv
from monai_ext.handlers.mombs import MoMBSHandler
from monai_ext.handlers.mombs_assessor import EntropyActivation, MoMBSAssessor, NormStatistics, UncertaintyMeasure
from monai_ext.handlers.multilabel_metrics import (
    ClassificationAccuracy,
    MultiLabelAUC,
    MultiLabelAveragePrecision,
    MultiLabelF1,
)
from monai_ext.handlers.multilabel_report import MultiLabelReport
from monai_ext.handlers.nvum_monitor import NVUMMonitor
from monai_ext.handlers.per_sample import PerSampleRecorder
from monai_ext.handlers.prediction_writer import PredictionWriter, write_predictions_csv
from monai_ext.handlers.segmentation_report import SegmentationCaseReport
from monai_ext.handlers.self_paced import SelfPacedLossWeights
from monai_ext.handlers.soft_label_report import SoftLabelReport

__all__ = [
    "PerSampleRecorder",
    "EMATeacher",
    "EMABufferMode",
    "TeacherMode",
    "LabelAuditWriter",
    "NVUMMonitor",
    "MemoryScore",
    "ClassificationAccuracy",
    "MultiLabelAUC",
    "MultiLabelAveragePrecision",
    "MultiLabelF1",
    "MultiLabelReport",
    "ClassificationReport",
    "SoftLabelReport",
    "MoMBSHandler",
    "MoMBSAssessor",
    "EntropyActivation",
    "UncertaintyMeasure",
    "NormStatistics",
    "SelfPacedLossWeights",
    "SegmentationCaseReport",
    "PredictionWriter",
    "write_predictions_csv",
    "SegmentationMaskWriter",
    "write_volume_predictions_csv",
    "DetectionWriter",
    "write_detections_csv",
    "DetectionFROCReport",
    "original_pixel_boxes",
]
