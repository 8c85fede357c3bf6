# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Losses: NVUM's memory-regularised BCE (``nvum``) and a per-sample Dice + cross-entropy (``dice_ce``)."""

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

__all__ = ["PerSampleDiceCELoss"]
__all__ += ["NVUMLoss", "NVUMMemorySource", "NVUMMode", "NVUMRegulariser", "PriorConvention", "nvum_prior"]
__all__ += ["memory_logits_key"]
