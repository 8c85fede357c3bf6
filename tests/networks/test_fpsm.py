# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""FeaturePyramidSumNet: stage heads against an independent timm computation, dataset embedding, concatenate
variant, TResNet-L widths (paper Table 1), local pretrained weights and bad input."""

from __future__ import annotations

import pytest
import timm
import torch

from monai_ext.bundle import check_checkpoint_fits
from monai_ext.networks import FeaturePyramidSumNet, checkpoint_head_options, fpsm_checkpoint_hint, stage_reduction


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _independent_stage_logits(net, x):
    """GAP + Linear per stage, from a separately built timm feature model with the same weights."""
    ref = timm.create_model(net.backbone_name, pretrained=False, features_only=True)
    ref.load_state_dict(net.features.state_dict())
    ref.eval()
    feats = {int(r): f for r, f in zip(ref.feature_info.reduction(), ref(x))}
    return [feats[2 ** (s + 1)].mean(dim=(2, 3)) for s in net.stages]


def test_stage_reduction_is_paper_table_1():
    assert [stage_reduction(s) for s in (1, 2, 3, 4)] == [4, 8, 16, 32]


def test_heads_are_pooled_linear_per_stage_deepest_first(images):
    torch.manual_seed(0)
    net = FeaturePyramidSumNet("resnet10t", num_classes=5, stages=(2, 4, 3)).eval()
    assert net.stages == (4, 3, 2) and net.stage_widths == (512, 256, 128) and net.num_outputs == 3
    with torch.no_grad():
        out = net(images)
        pooled = _independent_stage_logits(net, images)
    assert out.shape == (3, 5, 3)
    for s, (head, f) in enumerate(zip(net.heads, pooled)):
        torch.testing.assert_close(out[:, :, s], f @ head.weight.T + head.bias, rtol=1e-5, atol=1e-5)


def test_single_stage_baseline_and_concatenate(images):
    torch.manual_seed(0)
    single = FeaturePyramidSumNet("resnet10t", num_classes=4, stages=(4,)).eval()
    assert single(images).shape == (3, 4, 1) and single.stage_widths == (512,)
    cat = FeaturePyramidSumNet("resnet10t", num_classes=4, stages=(4, 3, 2, 1), concatenate=True).eval()
    assert cat.num_outputs == 1 and cat.heads[0].in_features == 512 + 256 + 128 + 64
    with torch.no_grad():
        out = cat(images)
        pooled = torch.cat(_independent_stage_logits(cat, images), dim=1)
    torch.testing.assert_close(out[:, :, 0], pooled @ cat.heads[0].weight.T + cat.heads[0].bias, rtol=1e-5, atol=1e-5)


def test_dataset_embedding_adds_the_one_hot_columns_of_each_head(images):
    torch.manual_seed(0)
    net = FeaturePyramidSumNet("resnet10t", num_classes=4, stages=(4, 3), num_datasets=2).eval()
    assert [h.in_features for h in net.heads] == [514, 258]
    with torch.no_grad():
        z0 = net(images, torch.tensor([0, 0, 0]))
        z1 = net(images, torch.tensor([1, 1, 1]))
        default = net(images)
    torch.testing.assert_close(default, z0)
    for s, head in enumerate(net.heads):  # logits differ by W[:, -1] - W[:, -2] (the two embedding columns)
        delta = (head.weight[:, -1] - head.weight[:, -2]).detach()
        torch.testing.assert_close(z1[:, :, s] - z0[:, :, s], delta.expand(3, -1), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"dataset_id 2 at batch position 1 is out of range for num_datasets=2"):
        net(images, torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="3 images"):
        net(images, torch.tensor([0, 1]))


def test_tresnet_l_stage_widths_are_the_papers():
    net = FeaturePyramidSumNet("tresnet_l", num_classes=26, stages=(4, 3, 2, 1))
    assert net.stage_widths == (2432, 1216, 152, 76)
    assert [h.out_features for h in net.heads] == [26] * 4


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match=r"stage\(s\) \[5\] not available .* stages \[1, 2, 3, 4\]"):
        FeaturePyramidSumNet("resnet10t", stages=(4, 5))
    with pytest.raises(ValueError, match="without repeats"):
        FeaturePyramidSumNet("resnet10t", stages=(4, 4))
    with pytest.raises(ValueError, match="unknown timm backbone 'no_such_net'"):
        FeaturePyramidSumNet("no_such_net")
    with pytest.raises(ValueError, match="num_datasets"):
        FeaturePyramidSumNet("resnet10t", num_datasets=-1)


def test_pretrained_backbone_from_a_local_file(tmp_path, images):
    torch.manual_seed(1)
    full = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / "resnet10t.pth"
    torch.save(full.state_dict(), path)
    net = FeaturePyramidSumNet("resnet10t", stages=(4, 3), pretrained_backbone=path)
    for name, value in net.features.state_dict().items():
        torch.testing.assert_close(value, full.state_dict()[name])
    other = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), other)
    with pytest.raises(ValueError, match=r"resnet18.pth' do not fit timm 'resnet10t' \(stage widths \[64, 64, 128"):
        FeaturePyramidSumNet("resnet10t", pretrained_backbone=other)
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        FeaturePyramidSumNet("resnet10t", pretrained_backbone=tmp_path / "missing.pth")


def test_torchscript_export_matches_eager(images):
    """``ckpt_export`` scripts the network: the scripted FPSM (with dataset embedding) gives the eager logits."""
    torch.manual_seed(0)
    net = FeaturePyramidSumNet("resnet10t", num_classes=4, stages=(4, 3, 2), num_datasets=2).eval()
    scripted = torch.jit.script(net)
    ids = torch.tensor([1, 0, 1])
    with torch.no_grad():
        torch.testing.assert_close(scripted(images, ids), net(images, ids), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(scripted(images), net(images), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "stages, num_datasets, concatenate",
    [((4,), 0, False), ((4, 3, 2), 0, False), ((4, 3, 2, 1), 2, False), ((4, 3), 0, True), ((4, 3, 2), 2, True)],
)
def test_checkpoint_head_options_read_the_training_options_off_the_heads(stages, num_datasets, concatenate):
    saved = FeaturePyramidSumNet("resnet10t", 4, stages, num_datasets, concatenate).state_dict()
    other = FeaturePyramidSumNet("resnet10t", 4, (4,))  # the network of another config, same backbone
    # resnet10t widths 64/128/256/512 and an embedding narrower than 64: one answer, the training options
    expected = {"fpsm_stages": list(stages), "num_datasets": num_datasets, "use_concatenate": concatenate}
    assert checkpoint_head_options(saved, other) == [expected]


def test_hint_of_a_checkpoint_of_another_stage_set_or_backbone(tmp_path):
    torch.save({"model": FeaturePyramidSumNet("resnet10t", 4, (4, 3)).state_dict()}, tmp_path / "m.pt")
    with pytest.raises(
        ValueError, match=r"(?s)m\.pt.*--fpsm_stages \"\[4, 3\]\" --num_datasets 0 --use_concatenate false"
    ):
        check_checkpoint_fits(
            tmp_path / "m.pt", FeaturePyramidSumNet("resnet10t", 4, (4, 3, 2)), hint=fpsm_checkpoint_hint
        )
    resnet18 = FeaturePyramidSumNet("resnet18", 4, (4,)).state_dict()
    assert checkpoint_head_options(resnet18, FeaturePyramidSumNet("resnet10t", 4, (4,))) == [
        {"fpsm_stages": [4], "num_datasets": 0, "use_concatenate": False}
    ]  # same stage widths: the heads cannot tell resnet18 from resnet10t (the backbone tensors can)
    tresnet_widths = {"heads.0.weight": torch.zeros(4, 2432)}
    hint = fpsm_checkpoint_hint(tresnet_widths, FeaturePyramidSumNet("resnet10t", 4, (4,)))
    assert "fit no stage set of backbone 'resnet10t'" in hint and "--backbone" in hint
