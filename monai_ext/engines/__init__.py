# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Training engines: the shared per-sample iteration (``per_sample``) that every method builds on."""

from __future__ import annotations

from monai_ext.engines.per_sample import (
    PerSampleKeys,
    PerSampleTrainer,
    batch_filenames,
    batch_index,
    loss_accepts_index,
    loss_extra_inputs,
    loss_keyword_parameters,
    per_sample_loss,
    weighted_mean,
)

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
]
