# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Small utilities shared across ``monai_ext``: ``distributed`` (gathering per-sample ``(index, value)`` pairs
across ranks), ``runtime`` (the device and process-group choices that bundle configs name) and ``rng_state`` (a
run's random states as one checkpoint entry)."""

from __future__ import annotations

from monai_ext.utils.distributed import all_gather_indexed, first_rank_decides, last_occurrence
from monai_ext.utils.rng_state import RNGState, randomizable_transforms
from monai_ext.utils.runtime import (
    ddp_device_ids,
    default_backend,
    default_device,
    finalize_distributed,
    init_distributed,
    is_secondary_rank,
    rank_device,
)

__all__ = ["all_gather_indexed", "first_rank_decides", "last_occurrence"]
__all__ += ["default_device", "default_backend", "rank_device", "ddp_device_ids", "init_distributed"]
__all__ += ["finalize_distributed", "is_secondary_rank", "RNGState", "randomizable_transforms"]
