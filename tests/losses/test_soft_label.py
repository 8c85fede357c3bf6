# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Soft-label KL, entropy (Eq. 3) and the conventional objective (Eq. 4) against hand-worked values."""

from __future__ import annotations

import math

import pytest
import torch

from monai_ext.losses.soft_label import (
    SoftLabelLoss,
    prediction_entropy,
    soft_label_kl,
    soft_target_cross_entropy,
)


def test_kl_matches_hand_worked_value_and_direction():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))  # f = (1/2, 1/4, 1/4)
    y = torch.tensor([[0.25, 0.5, 0.25]])
    # KL(f || y) = 1/2 log 2 + 1/4 log(1/2) + 0 = 1/4 log 2 (sum); mean over C = log 2 / 12
    kl_sum = soft_label_kl(logits, y, "samples")
    assert kl_sum.item() == pytest.approx(0.25 * math.log(2), abs=1e-6)
    assert soft_label_kl(logits, y, "elements").item() == pytest.approx(math.log(2) / 12, abs=1e-6)
    # the other direction KL(y || f) = 1/4 log(1/2) + 1/2 log 2 = 1/4 log 2 here too: use a skewed pair
    y2 = torch.tensor([[0.8, 0.1, 0.1]])
    forward = 0.5 * math.log(0.5 / 0.8) + 2 * 0.25 * math.log(0.25 / 0.1)
    assert soft_label_kl(logits, y2, "samples").item() == pytest.approx(forward, abs=1e-6)


def test_kl_is_zero_for_equal_distributions_and_batch_mean_is_all_element_mean():
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    assert soft_label_kl(logits, torch.softmax(logits, 1)).abs().max() < 1e-6
    y = torch.softmax(torch.randn(5, 4), 1)
    f = torch.softmax(logits, 1)
    official = torch.mean(f * (torch.log_softmax(logits + 1e-10, 1) - torch.log(y + 1e-10)))  # MSLG criterion_meta
    assert soft_label_kl(logits, y).mean().item() == pytest.approx(official.item(), rel=1e-6)


def test_entropy_of_uniform_and_of_one_hot():
    c = 3
    uniform = prediction_entropy(torch.zeros(2, c), "samples")
    assert torch.allclose(uniform, torch.full((2,), math.log(c)))
    assert torch.allclose(prediction_entropy(torch.zeros(2, c)), torch.full((2,), math.log(c) / c))
    peaked = prediction_entropy(torch.tensor([[100.0, 0.0, 0.0]]), "samples")
    assert peaked.item() < 1e-6


def test_soft_target_cross_entropy_and_conventional_loss():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]))
    q = torch.tensor([[2 / 3, 1 / 3, 0.0], [0.0, 0.0, 1.0]])
    hand = torch.tensor([-(2 / 3) * math.log(0.5) - (1 / 3) * math.log(0.25), -math.log(0.6)])
    assert torch.allclose(soft_target_cross_entropy(logits, q), hand, atol=1e-6)
    loss = SoftLabelLoss(entropy_weight=0.5, batch_reduction="none")
    y = torch.softmax(torch.randn(2, 3), 1)
    expected = soft_label_kl(logits, y) + 0.5 * prediction_entropy(logits)
    assert torch.allclose(loss(logits, y), expected)
    assert SoftLabelLoss()(logits, y).ndim == 0


def test_bad_shapes_and_options_are_refused():
    with pytest.raises(ValueError, match="does not match"):
        soft_label_kl(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="entropy_weight"):
        SoftLabelLoss(entropy_weight=-1)
    with pytest.raises(ValueError):
        soft_label_kl(torch.zeros(2, 3), torch.zeros(2, 3), reduction="batchmean")
