# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""PyramidSumLoss: the sum over stages of the multi-label soft-margin loss, worked by hand (FPSM Sec. 3.1)."""

from __future__ import annotations

import math

import pytest
import torch

from monai_ext.losses import PyramidSumLoss


def _soft_margin(z, y):
    """-1/C sum_c [y log sigmoid(z) + (1 - y) log sigmoid(-z)], mean over the batch (by hand)."""
    total = 0.0
    for zb, yb in zip(z.tolist(), y.tolist()):
        s = 0.0
        for zc, yc in zip(zb, yb):
            s += yc * math.log(1 / (1 + math.exp(-zc))) + (1 - yc) * math.log(1 / (1 + math.exp(zc)))
        total += -s / len(zb)
    return total / len(z)


def test_sum_of_stage_losses_by_hand():
    z = torch.tensor([[[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]], [[-1.5, 1.0, 0.1], [2.0, -2.0, 0.7]]]).transpose(1, 2)
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    loss = PyramidSumLoss()
    value = loss(z, y)
    expected = [_soft_margin(z[:, :, s], y) for s in range(2)]
    assert value.item() == pytest.approx(sum(expected), rel=1e-6)
    assert loss.last_stage_losses.tolist() == pytest.approx(expected, rel=1e-6)


def test_one_stage_equals_torch_multilabel_soft_margin_and_gradients_split_per_stage():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 6, 3, generator=g, requires_grad=True)
    y = torch.randint(0, 2, (4, 6), generator=g).float()
    torch_loss = torch.nn.MultiLabelSoftMarginLoss()
    assert PyramidSumLoss()(z[:, :, :1], y).item() == pytest.approx(torch_loss(z[:, :, 0], y).item(), rel=1e-6)
    assert PyramidSumLoss()(z[:, :, 0], y).item() == pytest.approx(torch_loss(z[:, :, 0], y).item(), rel=1e-6)
    PyramidSumLoss()(z, y).backward()
    for s in range(3):  # each head's gradient is its own loss's gradient: (sigmoid(z) - y) / (B C)
        torch.testing.assert_close(z.grad[:, :, s], (torch.sigmoid(z[:, :, s]) - y).detach() / (4 * 6))


def test_bad_shapes_and_non_finite_loss():
    with pytest.raises(ValueError, match="B x C x S"):
        PyramidSumLoss()(torch.zeros(2, 4, 3), torch.zeros(2, 5))
    z = torch.zeros(2, 3, 2)
    z[0, 0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"not finite \(head\(s\) \[1\] of 2\)"):
        PyramidSumLoss()(z, torch.zeros(2, 3))
