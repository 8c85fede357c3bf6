# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Bundle tooling: offline metadata validation (``verify``), model-zoo checks (``zoo``), checkpoint checks
(``checkpoint``) and the demo runner (``demo``). Submodules load on first access."""

from __future__ import annotations

import importlib

__all__ = ["checkpoint", "demo", "verify", "zoo"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
