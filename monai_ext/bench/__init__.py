# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Benchmarks behind ``make bench``: step-time ratios and demo-data efficacy of each method against its baseline.

NVUM: :mod:`.nvum_bundle` (the bundle's config, network and run overrides), :mod:`.nvum_step` (step time),
:mod:`.nvum` (training and evaluating the bundle on demo data), :mod:`.nvum_audit` (label audit from the saved
memory) and :mod:`.nvum_report` (aggregation, table, plot, JSON); ``scripts/bench_nvum.py`` is a thin command line.
"""

from __future__ import annotations

__all__ = ["nvum", "nvum_audit", "nvum_bundle", "nvum_report", "nvum_step"]
