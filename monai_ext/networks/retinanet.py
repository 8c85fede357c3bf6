# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MONAI's RetinaNet split for MoMBS: the key features are the FPN levels, ``decode`` re-runs the anchor classifier.

MoMBS (paper 004, Sec. 3.2 and 4.1) measures a training image's uncertainty as the entropy of the mean prediction
under ``K`` multiplicative disturbances of key feature maps. For its two-stage detectors the paper disturbs the
feature maps "after the first CNN block" of the backbone and takes the entropy of the RPN classification maps.
MONAI's detector is the one-stage RetinaNet, whose classification head *is* the anchor classifier, so
:class:`SplitRetinaNet` offers two split points (``disturb_at``):

- ``"fpn"`` (default): ``key`` = the FPN levels (a tuple, highest resolution first); ``decode`` runs only the
  classification head on them. The ``K`` re-runs then cost ``K`` classification-head passes.
- ``"stem"`` (paper-style): ``key`` = the output of the backbone's first block (ResNet ``conv1``, norm, activation
  and max pool, i.e. the stem before ``layer1``); ``decode`` runs the rest of the backbone, the FPN and the
  classification head.

In both cases ``decode`` returns the anchor classification logits as the detector reshapes them,
``B x sum_l(H_l W_l A) x num_classes`` (levels concatenated in FPN order, anchors of a location contiguous), so
that the entropy can be aggregated over anchors (:func:`monai_ext.handlers.mombs_assessor.disturbed_uncertainty`
with ``top_k``). ``forward`` is RetinaNet's (same operations in the same order, same ``state_dict`` keys, so
zoo checkpoints load), with the key features passed through the parameter-free ``tap``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from monai.apps.detection.networks.retinanet_network import RetinaNet
from monai.networks.blocks.backbone_fpn_utils import BackboneWithFPN
from monai.networks.nets import resnet
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.networks.split import FeatureTap, SplitFeatures

__all__ = ["DisturbancePoint", "SplitRetinaNet", "anchor_logits", "resnet_fpn_features"]


class DisturbancePoint(StrEnum):
    """Where :class:`SplitRetinaNet` splits (see the module docstring): ``"fpn"`` or ``"stem"``."""

    FPN = "fpn"
    STEM = "stem"


def anchor_logits(maps: list[torch.Tensor], num_classes: int) -> torch.Tensor:
    """Per-level head maps ``B x (A C) x H_l x W_l [x D_l]`` -> ``B x sum_l(H_l W_l [D_l] A) x C``.

    The layout of ``RetinaNetDetector._reshape_maps`` (MONAI 1.6.1): per level, channels split as ``A x C``,
    moved last, spatial positions then anchors flattened; levels concatenated in order.
    """
    out = []
    for m in maps:
        b, ac = m.shape[:2]
        spatial = m.shape[2:]
        a = ac // num_classes
        m = m.view(b, a, num_classes, *spatial)
        m = m.permute(0, *range(3, 3 + len(spatial)), 1, 2)  # B, spatial..., A, C
        out.append(m.reshape(b, -1, num_classes))
    return torch.cat(out, dim=1)


def resnet_fpn_features(
    backbone: resnet.ResNet,
    spatial_dims: int = 2,
    returned_layers: tuple[int, ...] | list[int] = (1, 2, 3),
    out_channels: int = 256,
) -> BackboneWithFPN:
    """A trainable ResNet-FPN feature extractor with ``out_channels`` FPN channels.

    MONAI's ``resnet_fpn_feature_extractor`` fixes the FPN (and so both RetinaNet heads) at 256 channels; a CPU
    study or a small-image demo needs fewer. Same structure otherwise: ``BackboneWithFPN`` over the ResNet returning
    ``layer{i}`` for ``i`` in ``returned_layers`` plus the extra max-pool level, so ``len(returned_layers) + 1`` levels
    at strides ``2**(i+1)`` when the ResNet's stem halves twice (``conv1_t_stride=2`` and its max pool, as the
    model-zoo detection bundle; MONAI's default ``conv1_t_stride=1`` gives half those strides), and every layer
    trainable (training from scratch).

    Args:
        backbone: a MONAI ``ResNet`` (``monai.networks.nets.resnet.ResNet``).
        spatial_dims: 2 or 3.
        returned_layers: ResNet layers (1-4) feeding the FPN, default (1, 2, 3).
        out_channels: FPN channels, a multiple of 8 (the heads' GroupNorm has 8 groups); default 256 (MONAI's).

    Raises:
        ValueError: a returned layer outside 1-4, or ``out_channels`` not a positive multiple of 8.
    """
    layers = sorted(int(i) for i in returned_layers)
    if not layers or layers[0] < 1 or layers[-1] > 4:
        raise ValueError(f"returned_layers must be ResNet layers in 1..4, got {list(returned_layers)}.")
    if out_channels < 8 or out_channels % 8:
        raise ValueError(
            f"out_channels must be a positive multiple of 8 (GroupNorm(8) in the heads), got {out_channels}."
        )
    in_channels = [getattr(backbone, f"layer{i}")[0].conv1.in_channels for i in (2, 3, 4)]  # outputs of layers 1-3
    last = getattr(backbone, "layer4")[-1]
    out4 = last.conv3.out_channels if hasattr(last, "conv3") else last.conv2.out_channels
    widths = {1: in_channels[0], 2: in_channels[1], 3: in_channels[2], 4: out4}
    return BackboneWithFPN(
        backbone,
        return_layers={f"layer{i}": str(i) for i in layers},
        in_channels_list=[widths[i] for i in layers],
        out_channels=out_channels,
        spatial_dims=spatial_dims,
    )


class SplitRetinaNet(RetinaNet):
    """``monai.apps.detection.networks.retinanet_network.RetinaNet`` with ``encode`` / ``decode`` / ``tap``.

    Same arguments as ``RetinaNet`` plus ``disturb_at``; a bundle swaps ``"_target_": "RetinaNet"`` for
    ``"_target_": "monai_ext.networks.SplitRetinaNet"``.

    Example::

        backbone = monai.networks.nets.resnet.ResNet(block="basic", layers=[1, 1, 1, 1], block_inplanes=[16, 32, 64,
            128], spatial_dims=2, n_input_channels=3)
        fe = monai.apps.detection.networks.retinanet_network.resnet_fpn_feature_extractor(backbone, 2,
            returned_layers=[1, 2, 3])
        net = SplitRetinaNet(spatial_dims=2, num_classes=1, num_anchors=3, feature_extractor=fe, size_divisible=32)
        feats = net.encode(torch.zeros(2, 3, 128, 128))   # key: 4 FPN levels, 32/16/8/4 px
        logits = net.decode(feats)                         # 2 x (32*32 + 16*16 + 8*8 + 4*4)*3 x 1

    Args:
        disturb_at: ``{"fpn", "stem"}``, see :class:`DisturbancePoint`; default ``"fpn"``. ``"stem"`` needs a
            ``BackboneWithFPN`` feature extractor (``resnet_fpn_feature_extractor``).
        uncertainty_levels: 0-based FPN levels (0 = the finest) whose anchors ``decode`` returns; ``None`` (default)
            all. A cheaper assessment: the finest level holds most anchors and most of the head's cost (``[1, 2, 3]``
            skips the stride-4 level of a 4-level pyramid in the ``K`` re-runs; training and inference are unchanged).
        args, kwargs: as for ``RetinaNet`` (``spatial_dims``, ``num_classes``, ``num_anchors``,
            ``feature_extractor``, ``size_divisible``, ``use_list_output``).

    Raises:
        ValueError: unknown ``disturb_at``; ``"stem"`` with a feature extractor that is not a ``BackboneWithFPN``
            over a network with a ``conv1`` ... ``maxpool`` stem.
    """

    def __init__(
        self,
        *args: Any,
        disturb_at: DisturbancePoint | str = DisturbancePoint.FPN,
        uncertainty_levels: list[int] | tuple[int, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.disturb_at = look_up_option(disturb_at, DisturbancePoint)
        if uncertainty_levels is not None:
            levels = [int(v) for v in uncertainty_levels]
            if not levels or min(levels) < 0 or len(set(levels)) != len(levels):
                raise ValueError(f"uncertainty_levels must be distinct 0-based FPN levels, got {uncertainty_levels!r}.")
            uncertainty_levels = sorted(levels)
        self.uncertainty_levels = uncertainty_levels
        self.tap = FeatureTap()
        if self.disturb_at == DisturbancePoint.STEM:
            self._stem_names, self._rest_names = self._stem_split()

    def _stem_split(self) -> tuple[list[str], list[str]]:
        body = getattr(self.feature_extractor, "body", None)
        fpn = getattr(self.feature_extractor, "fpn", None)
        names = list(body.keys()) if body is not None and hasattr(body, "keys") else []
        first_block = next((i for i, n in enumerate(names) if n.startswith("layer")), None)
        if fpn is None or first_block is None or first_block == 0:
            raise ValueError(
                'disturb_at="stem" needs a BackboneWithFPN feature extractor over a ResNet (conv1, ..., maxpool, '
                f"layer1, ...), e.g. resnet_fpn_feature_extractor; got {type(self.feature_extractor).__name__} with "
                f"body modules {names}. Use disturb_at='fpn' for other feature extractors."
            )
        return names[:first_block], names[first_block:]

    def _fpn_levels(self, features: Any) -> tuple[torch.Tensor, ...]:
        if isinstance(features, torch.Tensor):
            return (features,)
        if isinstance(features, dict):
            return tuple(features.values())
        return tuple(features)

    def _from_stem(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Backbone after the stem, then the FPN: the FPN levels from the stem output ``x``."""
        body = self.feature_extractor.body
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for name in self._rest_names:
            x = body[name](x)
            if name in body.return_layers:
                out[body.return_layers[name]] = x
        return self._fpn_levels(self.feature_extractor.fpn(out))

    def encode(self, x: torch.Tensor) -> SplitFeatures:
        """``SplitFeatures(key=FPN levels)`` (``"fpn"``) or ``SplitFeatures(key=stem output)`` (``"stem"``)."""
        if self.disturb_at == DisturbancePoint.FPN:
            return SplitFeatures(self._fpn_levels(self.feature_extractor(x)))
        body = self.feature_extractor.body
        for name in self._stem_names:
            x = body[name](x)
        return SplitFeatures(x)

    def _levels(self, features: SplitFeatures) -> list[torch.Tensor]:
        if self.disturb_at == DisturbancePoint.FPN:
            return list(self._fpn_levels(features.key))
        return list(self._from_stem(features.key))

    def decode(self, features: SplitFeatures) -> torch.Tensor:
        """Anchor classification logits ``B x sum_l(H_l W_l A) x num_classes`` (see :func:`anchor_logits`) of all
        levels, or of ``uncertainty_levels``.

        Raises:
            ValueError: an ``uncertainty_levels`` entry beyond the network's levels.
        """
        levels = self._levels(features)
        if self.uncertainty_levels is not None:
            if self.uncertainty_levels[-1] >= len(levels):
                raise ValueError(
                    f"uncertainty_levels {self.uncertainty_levels} but the network has {len(levels)} levels."
                )
            levels = [levels[i] for i in self.uncertainty_levels]
        return anchor_logits(self.classification_head(levels), self.num_classes)

    def forward(self, images: torch.Tensor) -> Any:
        """RetinaNet's forward (``{cls_key: [maps], box_reg_key: [maps]}``, or the list form) through ``tap``."""
        levels = self._levels(self.tap(self.encode(images)))
        cls_maps = self.classification_head(levels)
        box_maps = self.regression_head(levels)
        if self.use_list_output:
            return cls_maps + box_maps
        return {self.cls_key: cls_maps, self.box_reg_key: box_maps}
