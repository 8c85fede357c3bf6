# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.inferers.slice_detection: which slices each 2.5D image holds (edge repetition), how often the
detector is called, that boxes come back with their slice, the filters, and a real tiny MONAI RetinaNetDetector
checked slice by slice against calling it directly."""

from __future__ import annotations

import pytest
import torch
from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
from monai.apps.detection.networks.retinanet_network import RetinaNet, resnet_fpn_feature_extractor
from monai.apps.detection.utils.anchor_utils import AnchorGeneratorWithAnchorShape
from monai.data import MetaTensor
from monai.networks.nets import resnet10

from monai_ext.inferers import SliceDetectionInferer, context_slice_indices


class RecordingDetector(torch.nn.Module):
    """Stands in for a RetinaNetDetector in eval mode: records each call's images; for an image whose channels are
    constant slices, returns ``boxes_per_image`` boxes that encode the middle channel's value (the key slice) and
    scores ``0.9, 0.8, ...``."""

    target_box_key, target_label_key, pred_score_key = "boxes", "labels", "labels_scores"

    def __init__(self, boxes_per_image: int = 2) -> None:
        super().__init__()
        self.calls: list[torch.Tensor] = []
        self.kwargs: list[dict] = []
        self.boxes_per_image = boxes_per_image
        self.eval()

    def forward(self, images, use_inferer=True):
        self.calls.append(images.clone())
        self.kwargs.append({"use_inferer": use_inferer})
        out = []
        for image in images:
            key = float(image[image.shape[0] // 2, 0, 0])
            n = self.boxes_per_image
            boxes = torch.tensor([[key, 1.0 + j, key + 2.0, 3.0 + j] for j in range(n)]).reshape(n, 4)
            scores = torch.tensor([0.9 - 0.1 * j for j in range(n)])[torch.arange(n - 1, -1, -1)]  # ascending
            out.append({"boxes": boxes, "labels": torch.zeros(n, dtype=torch.long), "labels_scores": scores})
        return out


def _volume(depth: int, size: tuple[int, int] = (6, 5)) -> torch.Tensor:
    """``1 x A0 x A1 x D`` whose slice z is filled with z."""
    return torch.arange(depth, dtype=torch.float32).reshape(1, 1, 1, depth).expand(1, *size, depth).clone()


def test_context_indices_repeat_the_edge_slice():
    # worked by hand: 5 channels around z in a 4-slice volume, offsets -2..2, clamped to 0..3
    assert context_slice_indices([0, 1, 3], depth=4, num_slices=5).tolist() == [
        [0, 0, 0, 1, 2],
        [0, 0, 1, 2, 3],
        [1, 2, 3, 3, 3],
    ]
    assert context_slice_indices([2], depth=6, num_slices=3, step=2).tolist() == [[0, 2, 4]]
    assert context_slice_indices([0], depth=1, num_slices=9).tolist() == [[0] * 9]


def test_each_slice_gets_its_neighbours_in_batches_and_boxes_keep_their_slice():
    detector = RecordingDetector()
    (result,) = SliceDetectionInferer(num_slices=3, batch_size=2)(_volume(5), detector)
    assert len(detector.calls) == 3  # ceil(5 / 2)
    assert [tuple(c.shape) for c in detector.calls] == [(2, 3, 6, 5), (2, 3, 6, 5), (1, 3, 6, 5)]
    assert all(k == {"use_inferer": False} for k in detector.kwargs)
    got = [image[:, 0, 0].tolist() for call in detector.calls for image in call]
    assert got == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4]]
    assert result["slice"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert result["box"][:, 0].tolist() == result["slice"].float().tolist()  # the box drawn on slice z encodes z
    assert result["label_scores"].tolist() == pytest.approx([0.9, 0.8] * 5)  # by decreasing score within a slice
    assert result["box"].dtype == torch.float32 and result["label"].dtype == torch.long
    assert result["box"].shape == (10, 4)


def test_nine_channels_first_channel_only_and_a_batch_of_two_volumes():
    first = torch.cat([_volume(4), torch.full((1, 6, 5, 4), 99.0)])  # 2 channels: only the first is used
    second = _volume(4) + 10
    detector = RecordingDetector(boxes_per_image=1)
    results = SliceDetectionInferer(num_slices=9, batch_size=16)(torch.stack([first, first]), detector)
    assert len(results) == 2 and len(detector.calls) == 2
    assert detector.calls[0][3, :, 0, 0].tolist() == [0, 0, 1, 2, 3, 3, 3, 3, 3]  # z = 3: 3-4 .. 3+4 clamped
    listed = SliceDetectionInferer(num_slices=3, batch_size=16)([second, _volume(2)], detector)
    assert listed[0]["box"][:, 0].tolist() == [10, 11, 12, 13] and listed[1]["slice"].tolist() == [0, 1]


def test_chosen_slices_threshold_and_max_per_slice():
    detector = RecordingDetector(boxes_per_image=3)
    inferer = SliceDetectionInferer(slices=[-1, 1, 1], score_threshold=0.75, max_per_slice=1, batch_size=8)
    (result,) = inferer(MetaTensor(_volume(6)), detector)
    assert len(detector.calls) == 1 and detector.calls[0][:, 1, 0, 0].tolist() == [1, 5]
    assert result["slice"].tolist() == [1, 5] and result["label_scores"].tolist() == pytest.approx([0.9, 0.9])
    (none,) = SliceDetectionInferer(score_threshold=0.95)(_volume(2), RecordingDetector())
    assert none["box"].shape == (0, 4) and none["slice"].shape == (0,)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="positive odd number"):
        SliceDetectionInferer(num_slices=4)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        SliceDetectionInferer(batch_size=0)
    with pytest.raises(ValueError, match=r"slices \[7\] are outside the volume's 3 slices"):
        SliceDetectionInferer(slices=[0, 7])(_volume(3), RecordingDetector())
    with pytest.raises(ValueError, match="C x A0 x A1 x D"):
        SliceDetectionInferer()([torch.zeros(6, 5, 3)], RecordingDetector())
    with pytest.raises(ValueError, match=r"training mode.*\.eval\(\)"):
        SliceDetectionInferer()(_volume(3), RecordingDetector().train())


def _tiny_detector() -> RetinaNetDetector:
    torch.manual_seed(0)
    backbone = resnet10(spatial_dims=2, n_input_channels=3, conv1_t_stride=2)
    extractor = resnet_fpn_feature_extractor(backbone, 2, False, [1, 2])
    network = RetinaNet(2, num_classes=1, num_anchors=1, feature_extractor=extractor, size_divisible=16)
    anchors = AnchorGeneratorWithAnchorShape(feature_map_scales=(1, 2, 4), base_anchor_shapes=((8, 8),))
    detector = RetinaNetDetector(network, anchors, spatial_dims=2, num_classes=1, size_divisible=16)
    detector.set_box_selector_parameters(score_thresh=0.0, topk_candidates_per_level=50, detections_per_img=4)
    return detector.eval()


def test_real_retinanet_detector_slice_by_slice():
    detector = _tiny_detector()
    volume = torch.rand(1, 32, 24, 4, generator=torch.Generator().manual_seed(1))
    (result,) = SliceDetectionInferer(num_slices=3, batch_size=3)(volume, detector)
    assert set(result["slice"].tolist()) == {0, 1, 2, 3}
    for z, (lo, mid, hi) in enumerate([(0, 0, 1), (0, 1, 2), (1, 2, 3), (2, 3, 3)]):
        image = torch.stack([volume[0, :, :, lo], volume[0, :, :, mid], volume[0, :, :, hi]])
        with torch.no_grad():
            (direct,) = detector([image], use_inferer=False)
        order = torch.argsort(direct[detector.pred_score_key], descending=True)
        mine = result["slice"] == z
        torch.testing.assert_close(result["box"][mine], direct[detector.target_box_key][order], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(result["label_scores"][mine], direct[detector.pred_score_key][order])


def test_progress_bar_on_request_and_off_when_not_a_terminal(capsys):
    SliceDetectionInferer(batch_size=2, progress=True)(_volume(4), RecordingDetector())
    assert "slices" in capsys.readouterr().err  # tqdm's description
    SliceDetectionInferer(batch_size=2, progress_min_slices=1)(_volume(4), RecordingDetector())
    assert "slices" not in capsys.readouterr().err  # pytest's stderr is no terminal
