# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Writing benchmark results: JSON without NaN or numpy scalars, figures saved as PNG, and the record of the machine
and command a benchmark ran with."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import monai
import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["json_ready", "write_json", "save_figure", "run_environment"]


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


def run_environment(
    argv: list[str] | None, wall_s: Any, script: str | None = None, device: str | None = None
) -> dict[str, Any]:
    """The ``environment`` entry of a benchmark's results: where and how it ran.

    Args:
        argv: the script's arguments (None: ``sys.argv[1:]``).
        wall_s: the wall time in seconds (a number, or a dict of times per part).
        script: the script's name in ``command``. Defaults to None (``sys.argv[0]``).
        device: the device the benchmark used. Defaults to None (``"cuda"`` when available, else ``"cpu"``).

    Returns:
        ``platform``, ``cpu_count``, ``torch``, ``monai``, ``torch_threads``, ``device``, ``load_average`` (1, 5 and
        15 minutes; None where the platform has none), ``command`` and ``wall_s``.
    """
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device or ("cuda" if torch.cuda.is_available() else "cpu"),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "command": " ".join([script or Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "wall_s": wall_s,
    }
