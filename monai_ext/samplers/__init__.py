# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Samplers: MoMBS difficulty ranking (``ranking``), mixed-order minibatch planning (``mombs``) and self-paced loss
weights (``self_paced``)."""

from __future__ import annotations

from monai_ext.samplers.mombs import MixedLayout, MoMBSSampler, SamplingStrategy, plan_blocks
from monai_ext.samplers.ranking import (
    DifficultyCategory,
    MissingScore,
    categorize,
    difficulty_order,
    difficulty_score,
    fill_missing,
    ordinal_rank,
)
from monai_ext.samplers.self_paced import (
    SelfPacedRegularizer,
    self_paced_start,
    self_paced_threshold,
    self_paced_weights,
)

__all__ = ["MoMBSSampler", "SamplingStrategy", "MixedLayout", "plan_blocks"]
__all__ += ["MissingScore", "DifficultyCategory", "ordinal_rank", "fill_missing", "difficulty_score"]
__all__ += ["difficulty_order", "categorize"]
__all__ += ["SelfPacedRegularizer", "self_paced_weights", "self_paced_start", "self_paced_threshold"]
