# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Training engines: the shared per-sample iteration (``per_sample``) that every method builds on, detection on
MONAI's RetinaNet with per-image losses (``detection``), and meta soft-label learning (``meta_soft_label``: the
trainer, ``soft_labels``: the per-sample label store, ``virtual_step``: Eq. 1)."""

from __future__ import annotations

from monai_ext.engines.detection import (
    DetectionEvaluator,
    DetectionTrainer,
    detection_froc_input,
    detection_inputs,
    froc_input_for,
)
from monai_ext.engines.meta_soft_label import (
    LabelGradient,
    LabelSource,
    MetaKeys,
    MetaSoftLabelTrainer,
    SoftLabelMethod,
    class_targets,
)
from monai_ext.engines.per_sample import (
    PerSampleKeys,
    PerSampleTrainer,
    batch_filenames,
    batch_index,
    loss_accepts_index,
    loss_extra_inputs,
    loss_keyword_parameters,
    per_sample_loss,
    weighted_losses,
    weighted_mean,
)
from monai_ext.engines.soft_labels import SoftLabelStore
from monai_ext.engines.virtual_step import functional_forward, functional_jvp, virtual_sgd_parameters

__all__ = [
    "PerSampleKeys",
    "PerSampleTrainer",
    "batch_filenames",
    "batch_index",
    "loss_accepts_index",
    "loss_extra_inputs",
    "loss_keyword_parameters",
    "per_sample_loss",
    "weighted_mean",
    "weighted_losses",
]
__all__ += [
    "LabelGradient",
    "LabelSource",
    "MetaKeys",
    "MetaSoftLabelTrainer",
    "SoftLabelMethod",
    "SoftLabelStore",
    "class_targets",
]
__all__ += ["DetectionTrainer", "DetectionEvaluator", "detection_inputs", "detection_froc_input", "froc_input_for"]
__all__ += ["functional_forward", "functional_jvp", "virtual_sgd_parameters"]
