# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import math

import pytest
import torch
from monai.losses import DiceCELoss

from monai_ext.losses import PerSampleDiceCELoss


@pytest.mark.parametrize(
    "kwargs,target_kind",
    [
        ({"softmax": True, "to_onehot_y": True}, "index"),
        ({"softmax": True, "to_onehot_y": True, "include_background": False}, "index"),
        ({"softmax": True}, "onehot"),
        ({"sigmoid": True}, "binary"),
        ({"softmax": True, "to_onehot_y": True, "lambda_dice": 0.3, "lambda_ce": 2.0, "squared_pred": True}, "index"),
    ],
)
def test_mean_equals_monai_dice_ce(kwargs, target_kind):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 3, 8, 8, generator=g)
    classes = torch.randint(0, 3, (3, 1, 8, 8), generator=g)
    target = {
        "index": classes,
        "onehot": torch.nn.functional.one_hot(classes[:, 0], 3).permute(0, 3, 1, 2).float(),
        "binary": (torch.rand(3, 1, 8, 8, generator=g) > 0.5).float(),
    }[target_kind]
    if target_kind == "binary":  # one sigmoid channel: MONAI switches to BCE only then
        logits = logits[:, :1]
    ours = PerSampleDiceCELoss(**kwargs)(logits, target)
    torch.testing.assert_close(ours, DiceCELoss(**kwargs)(logits, target))
    per_sample = PerSampleDiceCELoss(reduction="none", **kwargs)(logits, target)
    assert per_sample.shape == (3,)
    torch.testing.assert_close(per_sample.mean(), ours)
    # each sample alone gives its own entry (no coupling across the batch)
    for b in range(3):
        alone = PerSampleDiceCELoss(**kwargs)(logits[b : b + 1], target[b : b + 1])
        torch.testing.assert_close(per_sample[b], alone)


def test_hand_worked_binary_softmax():
    # one sample, 2 classes, 2 pixels; logits make p(fg) = [0.5, 0.5]; target = [fg, bg]
    logits = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[[1, 0]]]])
    loss = PerSampleDiceCELoss(softmax=True, to_onehot_y=True, reduction="none", smooth_nr=0.0, smooth_dr=0.0)
    # Dice per class: bg: 1 - 2*0.5/(1 + 1) = 0.5, fg the same -> 0.5; CE = ln 2 per pixel
    torch.testing.assert_close(loss(logits, target), torch.tensor([0.5 + math.log(2.0)]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({}, "exactly one"),
        ({"sigmoid": True, "softmax": True}, "exactly one"),
        ({"softmax": True, "lambda_ce": -1}, ">= 0"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PerSampleDiceCELoss(**kwargs)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 2, 8, 8\).*\(2, 1, 8, 6\)"):
        PerSampleDiceCELoss(softmax=True, to_onehot_y=True)(torch.zeros(2, 2, 8, 8), torch.zeros(2, 1, 8, 6))


def test_sigmoid_with_several_channels_uses_binary_cross_entropy():
    """Multi-label sigmoid output: the CE term is BCE per channel (MONAI's DiceCELoss uses softmax CE when C > 1)."""
    g = torch.Generator().manual_seed(1)
    logits, target = torch.randn(2, 3, 4, 4, generator=g), (torch.rand(2, 3, 4, 4, generator=g) > 0.5).float()
    loss = PerSampleDiceCELoss(sigmoid=True, lambda_dice=0.0, reduction="none")(logits, target)
    p = torch.sigmoid(logits)
    expected = -(target * p.log() + (1 - target) * (1 - p).log()).mean(dim=(1, 2, 3))
    torch.testing.assert_close(loss, expected)
