# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Head and tail classes of a long-tailed training datalist, for per-group reporting (CXR-LT: mean AP of the tail)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["long_tail_groups"]


def long_tail_groups(
    datalist: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    tail_threshold: float | None = None,
    label_key: str = "label",
    original_key: str = "dataset_id",
) -> dict[str, list[str]]:
    """``{"head": [...], "tail": [...]}`` of ``class_names`` by the positive counts of the *original* training images
    (items whose ``original_key`` is 0 or absent; DADAM rows are left out), with the tail defined as in DADAM
    (:func:`monai_ext.transforms.tail_class_indices`: below the median class count by default, or a training
    prevalence below ``tail_threshold``; ``"No Finding"`` is never tail). Pass it as ``class_groups`` of
    :class:`monai_ext.handlers.MultiLabelReport`.

    Raises:
        ValueError: the datalist has no original image, or a label has another length than ``class_names``.
    """
    from monai_ext.transforms.dadam import tail_class_indices

    labels = [item[label_key] for item in datalist if not item.get(original_key)]
    if not labels:
        raise ValueError("long_tail_groups needs the training datalist's original images; none was given.")
    y = np.asarray(labels, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] != len(class_names):
        raise ValueError(f"labels have shape {y.shape}; expected N x {len(class_names)} (one value per class name)")
    tail = set(tail_class_indices(y, tail_threshold, classes=class_names))
    return {
        "head": [c for i, c in enumerate(class_names) if i not in tail],
        "tail": [c for i, c in enumerate(class_names) if i in tail],
    }
