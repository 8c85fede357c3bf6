# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Losses: NVUM's memory-regularised BCE (``nvum``), a per-sample Dice + cross-entropy (``dice_ce``) and the soft-label
KL and entropy of meta soft-label learning (``soft_label``), the FPSM stage-summed soft-margin loss
(``pyramid_sum``)."""

from __future__ import annotations

from monai_ext.losses.dice_ce import PerSampleDiceCELoss
from monai_ext.losses.nvum import (
    NVUMLoss,
    NVUMMemorySource,
    NVUMMode,
    NVUMRegulariser,
    PriorConvention,
    memory_logits_key,
    nvum_prior,
)
from monai_ext.losses.pyramid_sum import PyramidSumLoss
from monai_ext.losses.soft_label import (
    SoftLabelLoss,
    SoftLabelReduction,
    prediction_entropy,
    soft_label_kl,
    soft_target_cross_entropy,
)

__all__ = ["PerSampleDiceCELoss"]
__all__ += ["NVUMLoss", "NVUMMemorySource", "NVUMMode", "NVUMRegulariser", "PriorConvention", "nvum_prior"]
__all__ += ["memory_logits_key"]
__all__ += ["SoftLabelLoss", "SoftLabelReduction", "prediction_entropy", "soft_label_kl", "soft_target_cross_entropy"]
__all__ += ["PyramidSumLoss"]
