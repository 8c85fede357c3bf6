# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Benchmarks behind ``make bench``: step-time ratios and demo-data efficacy of each method against its baseline.

Each method has one module (``nvum``) that holds the logic; ``scripts/bench_<method>.py`` is a thin command line.
"""

from __future__ import annotations

__all__ = ["nvum"]
