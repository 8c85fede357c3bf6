# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""PerImageRetinaNetDetector: per-image contributions sum to MONAI's batch loss with the same gradients; the two
ranking losses against independent computations."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from monai_ext.networks import PerImageLossKeys, unreduced_loss


def _batch(square_items, n=3):
    items = square_items(n)
    return [it["image"] for it in items], [{"box": it["box"], "label": it["label"]} for it in items]


def _grads(module):
    return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])


def test_contributions_sum_to_the_batch_loss_with_equal_gradients(detector_pair, square_items):
    parent, ours = detector_pair
    images, targets = _batch(square_items)
    parent.train(), ours.train()
    torch.manual_seed(7)  # the hard-negative sampler draws from torch's global generator
    a = parent(images, copy.deepcopy(targets))
    torch.manual_seed(7)
    b = ours(images, copy.deepcopy(targets))
    for key, per_image in (("classification", PerImageLossKeys.CLS), ("box_regression", PerImageLossKeys.BOX)):
        assert b[per_image.value].shape == (3,)
        assert torch.allclose(b[per_image.value].sum(), a[key], rtol=1e-6, atol=1e-7)
        assert torch.allclose(b[key], a[key], rtol=1e-6, atol=1e-7)
    (a["classification"] + a["box_regression"]).backward()
    (b["classification"] + b["box_regression"]).backward()
    ga, gb = _grads(parent), _grads(ours)
    assert torch.allclose(ga, gb, rtol=1e-5, atol=1e-7 * float(ga.abs().max()))


def test_sampled_mean_is_the_mean_over_the_images_own_samples(detector_pair, square_items):
    _, ours = detector_pair
    images, targets = _batch(square_items)
    ours.train()
    torch.manual_seed(3)
    out = ours(images, copy.deepcopy(targets))
    # independent: redo the matching and sampling with the same draws, BCE mean per image (train mode: BatchNorm
    # normalises with the batch's statistics, as in the training forward)
    with torch.no_grad():
        head = ours.network(torch.stack(images))
        logits = ours._reshape_maps(head["classification"])
        anchors = ours.anchor_generator(torch.stack(images), head["classification"])
        locs = [m.shape[2:].numel() for m in head["classification"]]
        matched = ours.compute_anchor_matched_idxs(anchors, targets, locs)
        torch.manual_seed(3)
        expected, sizes = [], []
        for t, lg, m in zip(targets, logits, matched):
            s_logits, s_target = ours.get_cls_train_sample_per_image(lg, t, m)
            expected.append(F.binary_cross_entropy_with_logits(s_logits, s_target))
            sizes.append(s_logits.numel())
    assert torch.allclose(out[PerImageLossKeys.CLS_SAMPLED_MEAN.value], torch.stack(expected), rtol=1e-5)
    # contributions are the sums over all sampled elements of the batch: mean_i * n_i / sum n
    contrib = torch.stack(expected) * torch.tensor(sizes, dtype=torch.float32) / sum(sizes)
    assert torch.allclose(out[PerImageLossKeys.CLS.value].detach(), contrib, rtol=1e-5)


def test_focal_all_by_the_formula(detector_pair, square_items):
    _, ours = detector_pair
    images, targets = _batch(square_items)
    ours.train()  # BatchNorm on the batch's statistics, as in the training forward below
    with torch.no_grad():
        head = ours.network(torch.stack(images))
        logits = ours._reshape_maps(head["classification"])
        anchors = ours.anchor_generator(torch.stack(images), head["classification"])
        locs = [m.shape[2:].numel() for m in head["classification"]]
        matched = ours.compute_anchor_matched_idxs(anchors, targets, locs)
    out = ours(images, copy.deepcopy(targets))
    for i, (lg, m) in enumerate(zip(logits, matched)):
        p = torch.sigmoid(lg[:, 0].double())
        positive = m >= 0
        valid = m != -2  # BETWEEN_THRESHOLDS anchors are ignored
        # Lin et al. Eq. 5: -alpha (1 - p)^gamma log p (positives), -(1 - alpha) p^gamma log(1 - p) (negatives)
        fl = torch.where(positive, -0.25 * (1 - p) ** 2 * torch.log(p), -0.75 * p**2 * torch.log1p(-p))
        expected = fl[valid].sum() / max(int(positive.sum()), 1)
        assert positive.sum() > 0
        assert float(out[PerImageLossKeys.CLS_FOCAL_ALL.value][i]) == pytest.approx(float(expected), rel=1e-4)


def test_batch_without_positive_anchors_has_zero_box_loss(detector_pair):
    parent, ours = detector_pair
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    targets = [{"box": torch.zeros(0, 4), "label": torch.zeros(0, dtype=torch.long)} for _ in range(2)]
    parent.train(), ours.train()
    torch.manual_seed(1)
    a = parent(images, copy.deepcopy(targets))
    torch.manual_seed(1)
    b = ours(images, copy.deepcopy(targets))
    assert float(a["box_regression"]) == 0.0
    assert b[PerImageLossKeys.BOX.value].tolist() == [0.0, 0.0]
    assert torch.allclose(b["classification"], a["classification"], rtol=1e-6)


def test_unreduced_loss_needs_mean_or_sum():
    loss, reduction = unreduced_loss(torch.nn.BCEWithLogitsLoss(reduction="sum"), "classification")
    assert reduction == "sum" and loss.reduction == "none"
    with pytest.raises(ValueError, match="reduction 'mean' or 'sum'"):
        unreduced_loss(torch.nn.BCEWithLogitsLoss(reduction="none"), "classification")
