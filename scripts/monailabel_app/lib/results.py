# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The JSON a classification infer request answers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["classification_result"]


def classification_result(scores: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """One entry per class: ``{"prediction": [{"idx": k, "label": name, "score": p}, ...]}``.

    The layout of monailabel's ``ClassificationWriter`` (``monailabel/transform/writer.py``), with every class of
    the bundle under its own name (monailabel lower-cases them).

    Args:
        scores: the post-processed output of one image, ``C`` (or ``1 x C``) probabilities in [0, 1].
        class_names: the bundle's ``C`` class names, in channel order.

    Raises:
        ValueError: the number of scores differs from the number of classes, or a score is not finite or outside
            [0, 1] (the bundle's post-processing did not end in probabilities).
    """
    values = torch.as_tensor(scores).detach().cpu().reshape(-1).double().tolist()
    if len(values) != len(class_names):
        raise ValueError(f"{len(values)} scores for {len(class_names)} classes {list(class_names)}.")
    bad = [(n, v) for n, v in zip(class_names, values) if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise ValueError(f"scores must be probabilities in [0, 1]; got {bad[:3]} (check the bundle's postprocessing).")
    return {
        "prediction": [{"idx": k, "label": n, "score": float(v)} for k, (n, v) in enumerate(zip(class_names, values))]
    }
