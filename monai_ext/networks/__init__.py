# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Networks: MONAI networks split at a key feature map (``split``) for MoMBS's feature disturbances, and the label
network of meta soft-label learning (``label_network``), the Feature Pyramid Sum Model (``fpsm``) and ensemble
members from checkpoints (``ensemble``), and MONAI's RetinaNet split at its FPN levels with per-image losses
(``retinanet``, ``retinanet_detector``)."""

from __future__ import annotations

from monai_ext.networks.ensemble import ensemble_pred_keys, load_ensemble_members
from monai_ext.networks.fpsm import (
    FeaturePyramidSumNet,
    checkpoint_head_options,
    fpsm_checkpoint_hint,
    stage_reduction,
)
from monai_ext.networks.label_network import LabelNetwork
from monai_ext.networks.retinanet import DisturbancePoint, SplitRetinaNet, anchor_logits, resnet_fpn_features
from monai_ext.networks.retinanet_detector import (
    PerImageLossKeys,
    PerImageRetinaNetDetector,
    RankingLoss,
    ranking_key,
    unreduced_loss,
)
from monai_ext.networks.split import (
    FeatureTap,
    SplitBasicUNet,
    SplitDenseNet121,
    SplitFeatures,
    SplitModel,
    SplitNetwork,
    SplitUNet,
    bound_decoder,
    is_split_network,
)
from monai_ext.networks.unwrap import unwrap_network

__all__ = [
    "FeatureTap",
    "SplitBasicUNet",
    "SplitDenseNet121",
    "SplitFeatures",
    "SplitModel",
    "SplitNetwork",
    "SplitUNet",
    "bound_decoder",
    "is_split_network",
    "LabelNetwork",
    "unwrap_network",
    "FeaturePyramidSumNet",
    "stage_reduction",
    "checkpoint_head_options",
    "fpsm_checkpoint_hint",
    "ensemble_pred_keys",
    "load_ensemble_members",
    "DisturbancePoint",
    "SplitRetinaNet",
    "anchor_logits",
    "resnet_fpn_features",
    "PerImageLossKeys",
    "PerImageRetinaNetDetector",
    "RankingLoss",
    "ranking_key",
    "unreduced_loss",
]
