# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ignite handlers: per-sample value recording (``per_sample``)."""

from __future__ import annotations

from monai_ext.handlers.per_sample import PerSampleRecorder

__all__ = ["PerSampleRecorder"]
