# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The FPSM training loss: a multi-label soft-margin loss per pyramid stage, summed over the stages.

Kim et al., "Chest X-Ray Feature Pyramid Sum Model with Diseased Area Data Augmentation Method", ICCV 2023 workshops,
Sec. 3.1: "we calculate the multi-label soft margin loss on each separate feature map. Secondly, we sum those four
losses into one scalar value in one training step."
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PyramidSumLoss"]


class PyramidSumLoss(nn.Module):
    """``L = sum_s MultiLabelSoftMargin(logits[:, :, s], y)`` over the ``S`` stage heads of
    :class:`monai_ext.networks.FeaturePyramidSumNet`.

    ``MultiLabelSoftMargin(z, y) = -1/C sum_c [y_c log sigmoid(z_c) + (1 - y_c) log sigmoid(-z_c)]``, averaged over the
    batch (``torch.nn.MultiLabelSoftMarginLoss``, reduction ``"mean"``). With one stage this is the single-head
    baseline's loss exactly.

    The per-stage values of the last call are kept in :attr:`last_stage_losses` (``S``, detached) for logging.

    Args:
        weight: optional per-class weight ``C`` of ``MultiLabelSoftMarginLoss``. Defaults to None.

    Raises:
        ValueError: (on call) ``input`` is not ``B x C x S`` / ``B x C`` matching ``target`` ``B x C``, or the loss is
            not finite (the message names the stage).
    """

    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.stage_loss = nn.MultiLabelSoftMarginLoss(weight=weight, reduction="mean")
        self.last_stage_losses = torch.zeros(0)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Summed loss of stage logits ``input`` (``B x C x S``, or ``B x C`` for one head) and labels ``target``
        (``B x C`` in [0, 1])."""
        logits = input.unsqueeze(2) if input.ndim == 2 else input
        if logits.ndim != 3 or target.ndim != 2 or logits.shape[:2] != target.shape:
            raise ValueError(
                f"PyramidSumLoss expects stage logits B x C x S and labels B x C, got {tuple(input.shape)} and "
                f"{tuple(target.shape)}"
            )
        target = target.to(logits.dtype)
        losses = torch.stack([self.stage_loss(logits[:, :, s], target) for s in range(logits.shape[2])])
        total = losses.sum()
        self.last_stage_losses = losses.detach()
        if not torch.isfinite(total):
            bad = torch.nonzero(~torch.isfinite(self.last_stage_losses)).flatten().tolist()
            raise ValueError(
                f"PyramidSumLoss is not finite (head(s) {bad} of {logits.shape[2]}); check the images for NaN/Inf "
                "(monai_ext.transforms.RequireFinited) or lower the learning rate."
            )
        return total
