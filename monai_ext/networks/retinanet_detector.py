# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MONAI's ``RetinaNetDetector`` with per-image losses, for MoMBS's ranking of training images by their loss.

``RetinaNetDetector.compute_loss`` (MONAI 1.6.1) samples every image's anchors (matcher, then the
``HardNegativeSampler`` image by image), concatenates all images' samples and applies the configured losses once
(``reduction="mean"``: the mean over all sampled anchor x class elements of the batch). The batch loss is therefore
a sum of per-image *contributions*

    ``L_cls = sum_i S_i / N``,   ``S_i`` = summed loss of image ``i``'s ``n_i`` sampled elements, ``N = sum_i n_i``

(and likewise for the box loss over the positive anchors). :class:`PerImageRetinaNetDetector` computes the same
samples in the same order (same matcher, same sampler calls, so the same random draws) and applies an unreduced copy
of each configured loss, so its per-image contributions sum to the parent's batch loss (to float rounding) with the
same gradients. Besides the contributions it returns, without gradient, two per-image classification losses that
MoMBS can rank by (:class:`RankingLoss`):

- ``"sampled_mean"``: ``S_i / n_i``, the mean loss over the image's own sampled anchors. Images contribute different
  anchor counts, so these means do not average to the batch loss; and the sampler draws negatives at random, so the
  value has sampling noise.
- ``"focal_all"``: deterministic, from the same logits: the sigmoid focal loss (alpha 0.25, gamma 2; Lin et al.,
  "Focal Loss for Dense Object Detection", ICCV 2017, Eq. 5) summed over *all* the image's anchors except those the
  matcher leaves between thresholds, divided by the number of its positive anchors (at least 1), RetinaNet's own
  normalisation.
- ``"contribution"``: ``S_i / N`` itself (depends on the other images of the batch).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
from monai.utils import look_up_option, optional_import
from monai.utils.enums import StrEnum
from torch import Tensor

sigmoid_focal_loss, _ = optional_import("torchvision.ops", name="sigmoid_focal_loss")

__all__ = ["RankingLoss", "PerImageLossKeys", "PerImageRetinaNetDetector", "ranking_key", "unreduced_loss"]


class RankingLoss(StrEnum):
    """Which per-image classification loss MoMBS ranks by (see the module docstring)."""

    SAMPLED_MEAN = "sampled_mean"
    FOCAL_ALL = "focal_all"
    CONTRIBUTION = "contribution"


class PerImageLossKeys(StrEnum):
    """Extra entries of :class:`PerImageRetinaNetDetector`'s training output (each ``B``)."""

    CLS = "cls_per_image"  # contributions to the classification loss, with gradient
    BOX = "box_per_image"  # contributions to the box regression loss, with gradient
    CLS_SAMPLED_MEAN = "cls_sampled_mean_per_image"  # detached
    CLS_FOCAL_ALL = "cls_focal_all_per_image"  # detached


_RANKING_KEYS = {
    RankingLoss.SAMPLED_MEAN: PerImageLossKeys.CLS_SAMPLED_MEAN,
    RankingLoss.FOCAL_ALL: PerImageLossKeys.CLS_FOCAL_ALL,
    RankingLoss.CONTRIBUTION: PerImageLossKeys.CLS,
}


def ranking_key(ranking_loss: RankingLoss | str) -> str:
    """The :class:`PerImageLossKeys` entry that holds the per-image loss ``ranking_loss`` names."""
    return _RANKING_KEYS[look_up_option(ranking_loss, RankingLoss)].value


def unreduced_loss(loss: torch.nn.Module, what: str) -> tuple[torch.nn.Module, str]:
    """``(a copy of loss with reduction "none", the original reduction)``.

    Raises:
        ValueError: the loss has no ``reduction`` attribute, or one other than ``"mean"`` / ``"sum"``.
    """
    reduction = getattr(loss, "reduction", None)
    if reduction not in ("mean", "sum"):
        raise ValueError(
            f"PerImageRetinaNetDetector splits the {what} loss per image and needs a loss with reduction 'mean' or "
            f"'sum' (torch or MONAI losses), got {type(loss).__name__} with reduction {reduction!r}."
        )
    unreduced = copy.copy(loss)
    unreduced.reduction = "none"
    return unreduced, reduction


def _split(elements: list[Tensor], reduction: str, like: Tensor) -> tuple[Tensor, Tensor]:
    """``(per-image contributions, per-image means)`` from each image's unreduced element losses."""
    sums = torch.stack([e.sum() for e in elements]) if elements else like.new_zeros(0)
    counts = torch.tensor([e.numel() for e in elements], dtype=sums.dtype, device=sums.device)
    total = counts.sum()
    contributions = sums / total if (reduction == "mean" and total > 0) else sums
    return contributions, (sums.detach() / counts.clamp(min=1))


class PerImageRetinaNetDetector(RetinaNetDetector):
    """``RetinaNetDetector`` whose training output adds per-image losses (see the module docstring).

    Same arguments and set-up calls as ``RetinaNetDetector`` (``set_atss_matcher``, ``set_hard_negative_sampler``,
    ``set_target_keys``, ``set_cls_loss`` ...). In training mode ``forward(images, targets)`` returns the parent's
    ``{cls_key: L_cls, box_reg_key: L_box}`` (equal to the parent's up to float rounding) plus the
    :class:`PerImageLossKeys` entries: ``cls_per_image`` and ``box_per_image`` (``B`` contributions with gradient,
    summing to ``L_cls`` and ``L_box``), ``cls_sampled_mean_per_image`` and ``cls_focal_all_per_image`` (``B``,
    detached). Inference is the parent's.

    Args:
        focal_alpha: alpha of the ``"focal_all"`` ranking loss, default 0.25.
        focal_gamma: gamma of the ``"focal_all"`` ranking loss, default 2.
        args, kwargs: as for ``RetinaNetDetector``.
    """

    def __init__(self, *args, focal_alpha: float = 0.25, focal_gamma: float = 2.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.focal_alpha = float(focal_alpha)
        self.focal_gamma = float(focal_gamma)

    def _focal_all(self, logits: Tensor, target: dict[str, Tensor], matched: Tensor) -> Tensor:
        """Deterministic focal loss of one image over all its anchors (between-threshold ones excluded)."""
        foreground = matched >= 0
        gt = torch.zeros_like(logits)
        gt[foreground, target[self.target_label_key][matched[foreground]]] = 1.0
        valid = matched != self.proposal_matcher.BETWEEN_THRESHOLDS
        loss = sigmoid_focal_loss(
            logits[valid].float(), gt[valid].float(), alpha=self.focal_alpha, gamma=self.focal_gamma, reduction="sum"
        )
        return loss / foreground.sum().clamp(min=1)

    def compute_loss(
        self,
        head_outputs_reshape: dict[str, Tensor],
        targets: list[dict[str, Tensor]],
        anchors: list[Tensor],
        num_anchor_locs_per_level: Sequence[int],
    ) -> dict[str, Tensor]:
        """The parent's losses, plus the per-image entries (see the class docstring).

        Args:
            head_outputs_reshape: ``{cls_key: B x sum(HWA) x C, box_reg_key: B x sum(HWA) x 2*spatial_dims}``.
            targets: one dict per image with the target box and label keys.
            anchors: one ``sum(HWA) x 2*spatial_dims`` tensor per image.
            num_anchor_locs_per_level: ``HW`` of every level.
        """
        matched_idxs = self.compute_anchor_matched_idxs(anchors, targets, num_anchor_locs_per_level)
        cls_logits = head_outputs_reshape[self.cls_key]
        box_regression = head_outputs_reshape[self.box_reg_key]
        cls_loss, cls_reduction = unreduced_loss(self.cls_loss_func, "classification")
        box_loss, box_reduction = unreduced_loss(self.box_loss_func, "box regression")

        cls_elements, box_elements, focal = [], [], []
        for target, logits, matched in zip(targets, cls_logits, matched_idxs):
            sampled_logits, sampled_target = self.get_cls_train_sample_per_image(logits, target, matched)
            cls_elements.append(cls_loss(sampled_logits, sampled_target).to(sampled_logits.dtype))
            with torch.no_grad():
                focal.append(self._focal_all(logits.detach(), target, matched))
        for target, box_reg, anchor, matched in zip(targets, box_regression, anchors, matched_idxs):
            pred, gt = self.get_box_train_sample_per_image(box_reg, target, anchor, matched)
            box_elements.append(box_loss(pred, gt).to(pred.dtype))

        cls_per_image, cls_means = _split(cls_elements, cls_reduction, cls_logits)
        if sum(e.numel() for e in box_elements) == 0:  # as the parent: no positive anchor in the batch
            box_per_image = box_regression.new_zeros(len(targets))
        else:
            box_per_image, _ = _split(box_elements, box_reduction, box_regression)
        return {
            self.cls_key: cls_per_image.sum(),
            self.box_reg_key: box_per_image.sum(),
            PerImageLossKeys.CLS.value: cls_per_image,
            PerImageLossKeys.BOX.value: box_per_image,
            PerImageLossKeys.CLS_SAMPLED_MEAN.value: cls_means,
            PerImageLossKeys.CLS_FOCAL_ALL.value: torch.stack(focal).detach().float(),
        }
