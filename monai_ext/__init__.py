# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MONAI extensions for learning from noisy, imbalanced, diverse-quality medical images.

Subpackages are imported on first access so that ``import monai_ext`` stays cheap and bundle configs can write
``"$monai_ext.data.cxr.nih_datalist(@dataset_dir)"`` after a plain ``"$import monai_ext"``.
"""

from __future__ import annotations

import importlib

__version__ = "0.9.0"

__all__ = [
    "bundle",
    "data",
    "demo",
    "dicom",
    "engines",
    "handlers",
    "inferers",
    "losses",
    "metrics",
    "networks",
    "samplers",
    "serve",
    "transforms",
    "utils",
    "__version__",
]


def __getattr__(name: str):
    if name in __all__ and name != "__version__":
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
