# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Small RetinaNet detectors for the detection tests: a 2-D ResNet-FPN with 16 FPN channels, 3 anchors per location
on 4 levels (strides 4-32), one class; and a few 64 x 64 images with bright squares and their boxes."""

from __future__ import annotations

import pytest
import torch
from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
from monai.apps.detection.utils.anchor_utils import AnchorGeneratorWithAnchorShape
from monai.networks.nets import resnet

from monai_ext.networks import PerImageRetinaNetDetector, SplitRetinaNet, resnet_fpn_features

SIZE = 64


def _build_detector(cls=PerImageRetinaNetDetector, disturb_at: str = "fpn", seed: int = 0, channels: int = 16):
    torch.manual_seed(seed)
    backbone = resnet.ResNet(
        block="basic", layers=[1, 1, 1, 1], block_inplanes=[8, 16, 32, 64], spatial_dims=2, n_input_channels=3,
        conv1_t_stride=2,
    )  # fmt: skip
    features = resnet_fpn_features(backbone, 2, (1, 2, 3), channels)
    net = SplitRetinaNet(
        spatial_dims=2, num_classes=1, num_anchors=3, feature_extractor=features, size_divisible=32,
        disturb_at=disturb_at,
    )  # fmt: skip
    anchors = AnchorGeneratorWithAnchorShape(
        feature_map_scales=[1, 2, 4, 8], base_anchor_shapes=[[6, 6], [12, 12], [24, 24]]
    )
    detector = cls(net, anchors)
    detector.set_atss_matcher(num_candidates=4, center_in_gt=False)
    detector.set_hard_negative_sampler(batch_size_per_image=32, positive_fraction=0.3, pool_size=20, min_neg=8)
    detector.set_target_keys(box_key="box", label_key="label")
    detector.set_box_selector_parameters(score_thresh=0.0, topk_candidates_per_level=100, nms_thresh=0.3,
                                         detections_per_img=20)  # fmt: skip
    return detector


def _square_items(n: int, seed: int = 0) -> list[dict]:
    """``n`` items: 3 x 64 x 64 noise with one (every third item: two) bright 12-px squares, boxes ``xyxy`` in array
    axis order, labels 0, ``index`` = position."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        image = 0.2 * torch.rand(3, SIZE, SIZE, generator=g)
        boxes = []
        for _ in range(2 if i % 3 == 0 else 1):
            x, y = (int(v) for v in torch.randint(2, SIZE - 14, (2,), generator=g))
            image[:, x : x + 12, y : y + 12] += 0.8
            boxes.append([x, y, x + 12, y + 12])
        items.append(
            {
                "image": image,
                "box": torch.tensor(boxes, dtype=torch.float32),
                "label": torch.zeros(len(boxes), dtype=torch.long),
                "index": i,
                "file_name": f"case_{i:03d}.png",
            }
        )
    return items


@pytest.fixture
def build_detector():
    """The detector builder: ``build_detector(cls=PerImageRetinaNetDetector, disturb_at="fpn", seed=0)``."""
    return _build_detector


@pytest.fixture
def square_items():
    """The item maker: ``square_items(n, seed=0)``."""
    return _square_items


@pytest.fixture
def detector_pair():
    """A MONAI ``RetinaNetDetector`` and a ``PerImageRetinaNetDetector`` with identical weights."""
    return _build_detector(RetinaNetDetector), _build_detector(PerImageRetinaNetDetector)
