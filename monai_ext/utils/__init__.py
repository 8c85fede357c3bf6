# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Small utilities shared across ``monai_ext``: ``distributed`` (gathering per-sample ``(index, value)`` pairs
across ranks)."""

from __future__ import annotations

from monai_ext.utils.distributed import all_gather_indexed, last_occurrence

__all__ = ["all_gather_indexed", "last_occurrence"]
