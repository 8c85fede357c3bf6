# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""SplitRetinaNet: the same forward as MONAI's RetinaNet; ``decode`` = the detector's reshaped anchor logits."""

from __future__ import annotations

import pytest
import torch
from monai.apps.detection.networks.retinanet_network import RetinaNet

from monai_ext.networks import SplitFeatures, SplitRetinaNet, anchor_logits, is_split_network, resnet_fpn_features


def test_forward_equals_monai_retinanet(build_detector):
    split = build_detector(disturb_at="fpn").network.eval()
    plain = RetinaNet(
        spatial_dims=2, num_classes=1, num_anchors=3, feature_extractor=split.feature_extractor, size_divisible=32
    )
    plain.load_state_dict(split.state_dict())  # same keys: zoo checkpoints load into the split network
    plain.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a, b = split(x), plain(x)
    for key in ("classification", "box_regression"):
        assert len(a[key]) == len(b[key]) == 4
        for m, n in zip(a[key], b[key]):
            assert torch.equal(m, n)


@pytest.mark.parametrize("disturb_at", ["fpn", "stem"])
def test_decode_is_the_detectors_anchor_logits(build_detector, disturb_at):
    detector = build_detector(disturb_at=disturb_at).eval()
    net = detector.network
    assert is_split_network(net)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        features = net.encode(x)
        logits = net.decode(features)
        reshaped = detector._reshape_maps(net(x)["classification"])  # MONAI's own reshape, an independent layout
    # 4 levels at strides 4, 8, 16, 32 of 64 px: (16^2 + 8^2 + 4^2 + 2^2) locations x 3 anchors, 1 class
    assert logits.shape == (2, (256 + 64 + 16 + 4) * 3, 1)
    assert torch.allclose(logits, reshaped, atol=1e-6)
    if disturb_at == "fpn":
        assert [tuple(k.shape) for k in features.key] == [(2, 16, s, s) for s in (16, 8, 4, 2)]
    else:  # the stem: conv1 (stride 2) and max pool (stride 2) -> 16 x 16 with block_inplanes[0] = 8 channels
        assert tuple(features.key.shape) == (2, 8, 16, 16)


def test_tap_sees_the_training_features_once(build_detector):
    net = build_detector().network.train()
    seen = []
    net.tap.register_forward_hook(lambda module, args, output: seen.append(output))
    net(torch.rand(1, 3, 64, 64))
    assert len(seen) == 1 and isinstance(seen[0], SplitFeatures) and len(seen[0].key) == 4


def test_anchor_logits_layout_by_hand():
    # one level, 2 anchors x 2 classes, 1 x 2 spatial: channel c = a * C + k
    m = torch.arange(8.0).reshape(1, 4, 1, 2)  # value = channel * 2 + position
    out = anchor_logits([m], num_classes=2)
    # rows are (position, anchor): (0, a0) -> channels 0, 1 at position 0 -> values 0, 2
    assert out.tolist() == [[[0.0, 2.0], [4.0, 6.0], [1.0, 3.0], [5.0, 7.0]]]


def test_stem_needs_a_resnet_fpn_extractor():
    class Plain(torch.nn.Module):
        out_channels = 8

        def forward(self, x):
            return [x]

    with pytest.raises(ValueError, match="disturb_at='fpn'"):
        SplitRetinaNet(spatial_dims=2, num_classes=1, num_anchors=1, feature_extractor=Plain(), disturb_at="stem")
    with pytest.raises(ValueError):
        SplitRetinaNet(spatial_dims=2, num_classes=1, num_anchors=1, feature_extractor=Plain(), disturb_at="rpn")


def test_resnet_fpn_features_checks():
    from monai.networks.nets import resnet

    backbone = resnet.ResNet(block="basic", layers=[1, 1, 1, 1], block_inplanes=[8, 16, 32, 64], spatial_dims=2)
    with pytest.raises(ValueError, match="multiple of 8"):
        resnet_fpn_features(backbone, 2, (1, 2), 12)
    with pytest.raises(ValueError, match="1..4"):
        resnet_fpn_features(backbone, 2, (0, 2), 16)
    levels = resnet_fpn_features(backbone, 2, (2, 4), 16)(torch.rand(1, 3, 64, 64))
    # MONAI's default conv1 stride 1: layer2 at stride 4, layer4 at 16, the extra max-pool level at 32
    assert [tuple(v.shape[-2:]) for v in levels.values()] == [(16, 16), (4, 4), (2, 2)]


def test_uncertainty_levels_keep_the_coarser_anchors(build_detector):
    full = build_detector().network.eval()
    coarse = build_detector().network.eval()
    coarse.uncertainty_levels = [1, 2, 3]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = full.decode(full.encode(x)), coarse.decode(coarse.encode(x))
    finest = 16 * 16 * 3  # the stride-4 level's anchors come first
    assert b.shape == (1, a.shape[1] - finest, 1)
    assert torch.equal(b, a[:, finest:])
    with pytest.raises(ValueError, match="distinct"):
        SplitRetinaNet(spatial_dims=2, num_classes=1, num_anchors=3, feature_extractor=full.feature_extractor,
                       uncertainty_levels=[1, 1])  # fmt: skip
