# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Self-paced learning (SPL) regularisers: closed-form per-sample loss weights and the threshold schedule.

Self-paced learning minimises ``sum_i v_i l_i + f(v; lambda)`` over the model and the per-sample weights
``v_i in [0, 1]``; for fixed losses the weights have a closed form that depends on the regulariser ``f``:

- ``hard`` (Kumar, Packer, Koller, "Self-paced learning for latent variable models", NIPS 2010):
  ``f = -lambda sum_i v_i`` gives ``v_i = 1 if l_i < lambda else 0``;
- ``linear`` (Jiang, Meng, Mitamura, Hauptmann, "Easy samples first: self-paced reranking for zero-example
  multimedia search", ACM MM 2014; ref. [6] of the MoMBS paper): ``f = lambda/2 sum_i (v_i^2 - 2 v_i)`` gives
  ``v_i = max(0, 1 - l_i / lambda)``.

``lambda`` (the "age" of the model) grows over training, so that the samples left out at first come back:
:func:`self_paced_threshold` starts at a quantile of the losses (Kumar et al. start with about half of the samples
easy) and multiplies it by ``growth`` every epoch (Kumar et al. use 1.3).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

__all__ = ["SelfPacedRegularizer", "self_paced_weights", "self_paced_start", "self_paced_threshold"]


class SelfPacedRegularizer(StrEnum):
    """The self-paced regulariser, which fixes the closed form of the weights (:func:`self_paced_weights`).

    - ``hard``: binary weights, ``v = 1`` for ``l < lambda``, else 0 (Kumar et al., NIPS 2010).
    - ``linear``: ``v = max(0, 1 - l / lambda)``, easier samples weigh more (Jiang et al., ACM MM 2014).
    """

    HARD = "hard"
    LINEAR = "linear"


def self_paced_weights(loss: Any, threshold: float, regularizer: str | SelfPacedRegularizer) -> torch.Tensor:
    """Closed-form SPL weights of the losses ``loss`` at the threshold ``lambda = threshold``.

    Example: losses ``[0.2, 0.5, 1.0]`` at ``lambda = 0.5``: ``hard`` gives ``[1, 0, 0]``, ``linear`` gives
    ``[0.6, 0, 0]``.

    Args:
        loss: ``N`` losses (``+inf`` gets weight 0, ``-inf`` weight 1); ``NaN`` is not allowed (fill it first).
        threshold: ``lambda``; at ``lambda <= 0`` every non-negative loss gets weight 0.
        regularizer: a :class:`SelfPacedRegularizer`.

    Returns:
        ``N`` float32 weights in ``[0, 1]``.

    Raises:
        ValueError: an unknown ``regularizer``, a ``NaN`` loss or a ``NaN`` threshold.
    """
    kind = look_up_option(regularizer, SelfPacedRegularizer)
    t = (loss.as_tensor() if hasattr(loss, "as_tensor") else torch.as_tensor(loss)).detach().to("cpu", torch.float64)
    if bool(torch.isnan(t).any()) or math.isnan(float(threshold)):
        raise ValueError("self-paced weights need finite or infinite losses and threshold, got NaN.")
    lam = float(threshold)
    if kind == SelfPacedRegularizer.HARD:
        return (t < lam).to(torch.float32)
    if lam <= 0.0:
        return (t < lam).to(torch.float32)  # the limit of max(0, 1 - l / lambda) for lambda -> 0+ at l >= 0
    return (1.0 - t / lam).clamp(0.0, 1.0).nan_to_num(1.0).to(torch.float32)


def self_paced_start(loss: Any, start_fraction: float) -> float:
    """``lambda_0``: the ``start_fraction`` quantile (linear interpolation) of the finite losses.

    Args:
        loss: ``N`` losses; non-finite values (never visited) are left out.
        start_fraction: in ``(0, 1]``; 0.5 = the median loss, so about half of the samples start easy.

    Returns:
        the threshold, or ``NaN`` when no loss is finite.

    Raises:
        ValueError: ``start_fraction`` outside ``(0, 1]``.
    """
    if not 0.0 < float(start_fraction) <= 1.0:
        raise ValueError(f"self_paced_start_fraction must lie in (0, 1], got {start_fraction}.")
    t = torch.as_tensor(loss).detach().to("cpu", torch.float64).reshape(-1)
    t = t[torch.isfinite(t)]
    if t.numel() == 0:
        return float("nan")
    return float(torch.quantile(t, float(start_fraction)))


def self_paced_threshold(start: float, growth: float, epochs_since_start: int) -> float:
    """``lambda_e = lambda_0 * growth ** (e - e_0)``.

    Example: ``lambda_0 = 0.4``, ``growth = 1.3``: epochs 0, 1, 2 after the start give 0.4, 0.52, 0.676.

    Args:
        start: ``lambda_0``.
        growth: ``mu >= 1``, the factor per epoch.
        epochs_since_start: ``e - e_0 >= 0``.

    Raises:
        ValueError: ``growth < 1`` or ``epochs_since_start < 0``.
    """
    if not float(growth) >= 1.0:
        raise ValueError(f"self_paced_growth must be >= 1 (lambda may not shrink), got {growth}.")
    if int(epochs_since_start) < 0:
        raise ValueError(f"epochs_since_start must be >= 0, got {epochs_since_start}.")
    return float(start) * float(growth) ** int(epochs_since_start)
