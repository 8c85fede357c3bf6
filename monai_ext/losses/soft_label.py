# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Losses of meta soft-label learning (Algan et al., "Learning from Small Amount of Medical Data with Noisy Labels: A
Meta-Learning Approach", Sec. III-B; Meta Soft Label Generation, Algan & Ulusoy, ICPR 2020).

- :func:`soft_label_kl`: ``L_KL(f_theta(x), y_soft)`` of Eq. 1 and Eq. 4, in the direction of the official code,
  ``KL(f || y) = sum_j f_j (log f_j - log y_j)`` (``criterion_meta`` of gorkemalgan/MSLG_noisy_label ``main.py`` at
  HEAD 7b6e5f76c2d4aac4eace4210c7a6ac9df8eb8341, identical in gorkemalgan/rop_noisylabel_meta ``main.py`` at HEAD
  f02f69a64d0d2cf83bbcc1aa354ede175ad61313).
- :func:`prediction_entropy`: ``L_e`` of Eq. 3, the entropy of the prediction that makes it peak at one class.
- :class:`SoftLabelLoss`: the conventional objective of Eq. 4, ``L_KL + entropy_weight * L_e``.

**Reductions decide the scale of the meta step.** The official code averages both terms over all ``B x C`` elements
(``torch.mean`` of a ``B C`` tensor), so its ``alpha = 0.5`` and ``beta = 4000`` belong to that scale; Eq. 3 writes
the entropy as a mean over samples of a sum over classes, ``C`` times larger. :class:`SoftLabelReduction` names both:
``"elements"`` (default, the official scale) and ``"samples"`` (sum over classes, mean over the batch; use
``alpha / C`` and ``beta / C`` for the same step). Every function returns one value per sample, whose batch mean is
the loss, so per-sample handlers can record it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.utils import LossReduction, look_up_option
from monai.utils.enums import StrEnum
from torch import nn

__all__ = ["SoftLabelReduction", "soft_label_kl", "prediction_entropy", "soft_target_cross_entropy", "SoftLabelLoss"]

#: added to the soft label inside ``log`` as the official ``criterion_meta`` does (``torch.log(labels + 1e-10)``).
LOG_EPS = 1e-10


class SoftLabelReduction(StrEnum):
    """How the ``C`` class terms of one sample are reduced.

    - ``"elements"``: mean over classes, so the batch mean is the mean over all ``B x C`` elements (official code).
    - ``"samples"``: sum over classes (Eq. 3 as printed), the batch mean is a mean over samples.
    """

    ELEMENTS = "elements"
    SAMPLES = "samples"


def _check_pair(logits: torch.Tensor, soft_labels: torch.Tensor) -> None:
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (B, C), got {tuple(logits.shape)}.")
    if tuple(soft_labels.shape) != tuple(logits.shape):
        raise ValueError(f"soft labels shape {tuple(soft_labels.shape)} does not match logits {tuple(logits.shape)}.")


def _reduce_classes(terms: torch.Tensor, reduction: SoftLabelReduction | str) -> torch.Tensor:
    reduction = look_up_option(reduction, SoftLabelReduction)
    return terms.mean(dim=1) if reduction == SoftLabelReduction.ELEMENTS else terms.sum(dim=1)


def soft_label_kl(
    logits: torch.Tensor, soft_labels: torch.Tensor, reduction: SoftLabelReduction | str = SoftLabelReduction.ELEMENTS
) -> torch.Tensor:
    """Per-sample ``KL(f || y)`` between the prediction ``f = softmax(logits)`` and a soft label ``y``.

    ``KL_i = red_j f_ij (log f_ij - log(y_ij + 1e-10))`` with ``red`` the mean (``"elements"``) or the sum
    (``"samples"``) over classes. Gradients flow into both ``logits`` and ``soft_labels``.

    Args:
        logits: ``B C`` network outputs before softmax.
        soft_labels: ``B C`` probabilities (rows sum to 1).
        reduction: see :class:`SoftLabelReduction`.

    Returns:
        ``B`` per-sample values.

    Example:
        >>> p = torch.tensor([[0.0, 0.0]])
        >>> float(soft_label_kl(p, torch.tensor([[0.5, 0.5]])).abs()) < 1e-6
        True
    """
    _check_pair(logits, soft_labels)
    log_f = F.log_softmax(logits, dim=1)
    return _reduce_classes(log_f.exp() * (log_f - torch.log(soft_labels + LOG_EPS)), reduction)


def prediction_entropy(
    logits: torch.Tensor, reduction: SoftLabelReduction | str = SoftLabelReduction.ELEMENTS
) -> torch.Tensor:
    """Per-sample entropy ``-red_j f_ij log f_ij`` of ``f = softmax(logits)`` (Eq. 3).

    Args:
        logits: ``B C`` network outputs before softmax.
        reduction: see :class:`SoftLabelReduction`.

    Returns:
        ``B`` per-sample values (nats, divided by ``C`` with ``"elements"``).
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (B, C), got {tuple(logits.shape)}.")
    log_f = F.log_softmax(logits, dim=1)
    return _reduce_classes(-(log_f.exp() * log_f), reduction)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy ``-sum_j q_ij log f_ij`` to probability targets ``q`` (e.g. the annotators' average).

    This is ``torch.nn.functional.cross_entropy`` with class-probability targets and ``reduction="none"``; the
    official ROP code trains its ``"soft"`` labeller baseline with ``nn.CrossEntropyLoss`` on such targets.

    Args:
        logits: ``B C`` network outputs before softmax.
        targets: ``B C`` probabilities.

    Returns:
        ``B`` per-sample values.
    """
    _check_pair(logits, targets)
    return F.cross_entropy(logits, targets.to(logits.dtype), reduction="none")


class SoftLabelLoss(nn.Module):
    """The conventional step's objective (Eq. 4): ``L_KL(f_theta(x), y_soft) + entropy_weight * L_e(f_theta(x))``.

    Args:
        entropy_weight: weight of the entropy term (Eq. 4 writes 1; the MSLG code's ``gamma`` is 1 for every dataset,
            the ROP code's ``mslg`` path takes ``gamma`` = 0.1 from its command line). Default 1.0.
        reduction: class reduction of both terms, see :class:`SoftLabelReduction`. Default ``"elements"``.
        batch_reduction: ``"none"`` (``B`` values), ``"mean"`` or ``"sum"``. Default ``"mean"``.

    Shapes:
        logits ``B C``; soft_labels ``B C`` probabilities.

    Raises:
        ValueError: a negative ``entropy_weight`` or an unknown reduction.
    """

    def __init__(
        self,
        entropy_weight: float = 1.0,
        reduction: SoftLabelReduction | str = SoftLabelReduction.ELEMENTS,
        batch_reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__()
        if entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0, got {entropy_weight}.")
        self.entropy_weight = float(entropy_weight)
        self.reduction = look_up_option(reduction, SoftLabelReduction)
        self.batch_reduction = look_up_option(batch_reduction, LossReduction)

    def forward(self, logits: torch.Tensor, soft_labels: torch.Tensor) -> torch.Tensor:
        """Eq. 4's loss of every sample, reduced over the batch by ``batch_reduction``."""
        per_sample = soft_label_kl(logits, soft_labels, self.reduction)
        if self.entropy_weight:
            per_sample = per_sample + self.entropy_weight * prediction_entropy(logits, self.reduction)
        if self.batch_reduction == LossReduction.MEAN:
            return per_sample.mean()
        if self.batch_reduction == LossReduction.SUM:
            return per_sample.sum()
        return per_sample
