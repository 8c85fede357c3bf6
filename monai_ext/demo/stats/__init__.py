# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Real-data statistics that the demo generators are built from, shipped as JSON package data.

The JSON files in this folder are verbatim copies of the project's measured statistics (see ``README.md`` here for
where each one was measured): ``cxr_label_stats.json`` (prevalences, NIH co-occurrence, No-Finding fractions, CheXpert
value fractions, NIH-vs-adjudicated flip rates), ``nih_bbox_stats.json`` (NIH box quantiles) and
``nvum_split_reproduction.json`` (NVUM's OpenI/PadChest test-set rates). The generators
(:mod:`monai_ext.demo.label_noise`, :mod:`monai_ext.demo.cxr_patterns`, :mod:`monai_ext.demo.cxr.chexpert`) derive
their module-level constants from :func:`load_stats` once, at import.

Example::

    >>> load_stats("nih_bbox_stats")["n_boxes"]
    984
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from typing import Any

__all__ = ["STATS_MD5", "load_stats"]

#: md5 of each shipped file (identical to its source file, of which it is a verbatim copy); checked on load.
STATS_MD5: dict[str, str] = {
    "cxr_label_stats.json": "62d140e7e34e4937696acedbb71085fb",
    "nih_bbox_stats.json": "589b8bb1d52e61cab5bb4353decec0e0",
    "nvum_split_reproduction.json": "b1abcc3a1aae33e36eda5f730aaddc80",
}


@functools.lru_cache(maxsize=None)
def _read_bytes(file_name: str) -> bytes:
    resource = resources.files(__name__).joinpath(file_name)
    if not resource.is_file():
        raise FileNotFoundError(
            f"demo statistics file '{file_name}' is missing from the package folder '{resources.files(__name__)}'; "
            "reinstall monai-ext (pyproject.toml [tool.setuptools.package-data] ships monai_ext/demo/stats/*.json)."
        )
    data = resource.read_bytes()
    digest = hashlib.md5(data).hexdigest()
    if digest != STATS_MD5[file_name]:
        raise ValueError(
            f"demo statistics file '{file_name}' has md5 {digest}, expected {STATS_MD5[file_name]}; it was modified. "
            "Restore the shipped copy, or, when the statistics were re-measured on purpose, update STATS_MD5 and "
            "monai_ext/demo/stats/README.md."
        )
    return data


def load_stats(name: str) -> dict[str, Any]:
    """Parsed contents of the shipped statistics file ``<name>.json``.

    Args:
        name: file stem, one of ``{"cxr_label_stats", "nih_bbox_stats", "nvum_split_reproduction"}``.

    Returns:
        a fresh dict parsed from the file (the bytes are read and md5-checked once per process).

    Raises:
        ValueError: ``name`` is not a shipped statistics file, or the file's md5 differs from :data:`STATS_MD5`.
        FileNotFoundError: the file is missing from the installed package.
    """
    file_name = f"{name}.json"
    if file_name not in STATS_MD5:
        raise ValueError(f"unknown demo statistics {name!r}; choose from {sorted(n[:-5] for n in STATS_MD5)}.")
    return json.loads(_read_bytes(file_name))
