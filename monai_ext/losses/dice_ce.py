# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Dice + cross-entropy loss that can keep one value per sample (``reduction="none"``).

MONAI's ``DiceCELoss`` reduces over the batch (it accepts only ``"mean"`` and ``"sum"``), but MoMBS
(Li, Han, Zhou, arXiv:2505.18741) ranks every training image by its own loss, and
:class:`monai_ext.engines.PerSampleTrainer` needs the loss of each sample. :class:`PerSampleDiceCELoss` composes
MONAI's ``DiceLoss`` (``batch=False``, ``reduction="none"``: one Dice loss per sample and class) with PyTorch's
cross-entropy (``reduction="none"``: one value per pixel):

    ``L_b = lambda_dice * mean_c DiceLoss_{b,c} + lambda_ce * mean_v CE_{b,v}``

so that ``mean_b L_b`` equals ``monai.losses.DiceCELoss(batch=False)`` on the same inputs (same size images), which
the tests check. One deliberate difference: with ``sigmoid=True`` and several channels (multi-label) the CE term is
binary cross-entropy per channel; MONAI's ``DiceCELoss`` switches to BCE only for a single output channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from monai.utils import LossReduction, look_up_option
from torch import nn

__all__ = ["PerSampleDiceCELoss"]


class PerSampleDiceCELoss(nn.Module):
    """Dice loss + cross-entropy per sample, as ``monai.losses.DiceCELoss`` with ``batch=False``.

    Args:
        include_background: keep channel 0 in the Dice term (the cross-entropy always uses every channel, as in
            MONAI). Default True.
        to_onehot_y: the target is a class-index map ``B 1 H W[ D]`` (the usual MONAI label), converted to one-hot
            for the Dice term. Default False.
        sigmoid: sigmoid activation (binary/multi-label); the CE term is binary cross-entropy with logits.
        softmax: softmax activation over channels (multi-class); the CE term is categorical cross-entropy.
            Exactly one of ``sigmoid`` / ``softmax`` must be True.
        squared_pred, jaccard, smooth_nr, smooth_dr: as ``monai.losses.DiceLoss``.
        lambda_dice: weight of the Dice term (>= 0). Default 1.0.
        lambda_ce: weight of the cross-entropy term (>= 0). Default 1.0.
        reduction: ``"none"`` (one loss per sample, shape ``B``), ``"mean"`` or ``"sum"`` over the batch.
            Default ``"mean"``.

    Shapes:
        input: ``B C H W[ D]`` logits. target: ``B 1 H W[ D]`` class indices (``to_onehot_y=True``, softmax) or
        ``B C H W[ D]`` one-hot / probabilities.

    Raises:
        ValueError: not exactly one activation, a negative weight, an unknown reduction, or input/target shapes
            that do not match (batch or spatial sizes).
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        squared_pred: bool = False,
        jaccard: bool = False,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__()
        if bool(sigmoid) == bool(softmax):
            raise ValueError(
                f"exactly one of sigmoid / softmax must be True, got sigmoid={sigmoid}, softmax={softmax}."
            )
        if lambda_dice < 0 or lambda_ce < 0:
            raise ValueError(f"lambda_dice and lambda_ce must be >= 0, got {lambda_dice} and {lambda_ce}.")
        self.reduction = look_up_option(reduction, LossReduction)
        self.to_onehot_y = bool(to_onehot_y)
        self.sigmoid = bool(sigmoid)
        self.dice = DiceLoss(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            squared_pred=squared_pred,
            jaccard=jaccard,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=False,
            reduction=LossReduction.NONE,
        )
        self.lambda_dice = float(lambda_dice)
        self.lambda_ce = float(lambda_ce)

    def _cross_entropy(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy per pixel, averaged per sample: ``B``."""
        if self.sigmoid:
            ce = F.binary_cross_entropy_with_logits(input, target.to(input.dtype), reduction="none")
        elif target.shape[1] == 1 and input.shape[1] != 1:  # class indices, as MONAI's DiceCELoss squeezes them
            ce = F.cross_entropy(input, target[:, 0].long(), reduction="none")
        else:  # one-hot or soft targets over the C channels
            ce = F.cross_entropy(input, target.to(input.dtype), reduction="none")
        return ce.reshape(ce.shape[0], -1).mean(dim=1)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of ``input`` logits against ``target``: ``B`` (``reduction="none"``) or a scalar."""
        if input.shape[0] != target.shape[0] or input.shape[2:] != target.shape[2:]:
            raise ValueError(
                f"input {tuple(input.shape)} and target {tuple(target.shape)} differ in batch or spatial size; "
                "check that each mask was resampled to its image (same grid) before batching."
            )
        dice = self.dice(input, target).reshape(input.shape[0], -1).mean(dim=1)
        loss = self.lambda_dice * dice + self.lambda_ce * self._cross_entropy(input, target)
        if self.reduction == LossReduction.MEAN:
            return loss.mean()
        if self.reduction == LossReduction.SUM:
            return loss.sum()
        return loss
