# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Benchmarks behind ``make bench``: step-time ratios and demo-data efficacy of each method against its baseline.

NVUM: :mod:`.nvum_bundle` (the bundle's config, network and run overrides), :mod:`.nvum_step` (step time),
:mod:`.nvum` (training and evaluating the bundle on demo data), :mod:`.nvum_audit` (label audit from the saved
memory) and :mod:`.nvum_report` (aggregation, table, plot, JSON); ``scripts/bench_nvum.py`` is a thin command line.

MoMBS: :mod:`.mombs_bundle` (the bundle's config, handler ids and run overrides), :mod:`.mombs_step` (epoch time
against random sampling), :mod:`.mombs_study` (the powered efficacy study: every sampling strategy, training fraction
and seed through the bundle on demo data, aggregation), :mod:`.mombs_audit` (difficulty categories against the demo's
corrupted masks and under-represented lesions) and :mod:`.mombs_report` (tables, plot, JSON);
``scripts/bench_mombs.py`` is a thin command line.

Both reports write through :mod:`.results_io` (JSON without NaN or numpy scalars, PNG figures).
"""

from __future__ import annotations

__all__ = ["nvum", "nvum_audit", "nvum_bundle", "nvum_report", "nvum_step"]
__all__ += ["mombs_audit", "mombs_bundle", "mombs_report", "mombs_step", "mombs_study", "results_io"]
