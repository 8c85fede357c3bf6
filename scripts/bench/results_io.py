# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Writing benchmark results: JSON without NaN or numpy scalars, and figures saved as PNG."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["json_ready", "write_json", "save_figure"]


def json_ready(value: Any) -> Any:
    """``value`` with mapping keys as strings, tuples as lists, numpy scalars as Python numbers and NaN/inf as None."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(data: Any, path: str | os.PathLike) -> Path:
    """Write :func:`json_ready` ``data`` as indented JSON (folder created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_ready(data), indent=2) + "\n", encoding="utf-8")
    return path


def save_figure(fig: Figure, png_file: str | os.PathLike) -> Path:
    """Lay out ``fig`` and save it as ``png_file`` (folder created); returns the path."""
    fig.tight_layout()
    png_file = Path(png_file)
    png_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_file)
    return png_file
