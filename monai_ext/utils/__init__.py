# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Small utilities shared across ``monai_ext``: ``distributed`` (gathering per-sample ``(index, value)`` pairs
across ranks) and ``runtime`` (the device and process-group choices that bundle configs name)."""

from __future__ import annotations

from monai_ext.utils.distributed import all_gather_indexed, first_rank_decides, last_occurrence
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
__all__ += ["finalize_distributed", "is_secondary_rank"]
