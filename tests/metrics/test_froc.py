# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.metrics.froc: matching rules, a hand-worked FROC on three images, readings at FP rates and a
brute-force check against thresholding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.metrics import compute_froc_score

from monai_ext.metrics.froc import FROCSensitivity, compute_detection_froc, froc_curve, match_detections

# Three images, 3 ground-truth boxes. Detections in score order, with the hand-worked outcome:
#   0.9 image A [0,0,10,10]   IoU 1 with gA1                          -> TP  (tp 1, fp 0)
#   0.8 image A [1,1,10,10]   IoU 81/100 with gA1, already matched    -> FP  (tp 1, fp 1)
#   0.7 image B [0,0,20,8]    IoU 160/400 = 0.4 with gB1              -> FP  (tp 1, fp 2)
#   0.6 image B [0,0,20,12]   IoU 240/400 = 0.6 with gB1              -> TP  (tp 2, fp 2)
#   0.5 image C (no GT)                                               -> FP  (tp 2, fp 3)
#   0.3 image A [20,20,30,31] IoU 100/110 with gA2                    -> TP  (tp 3, fp 3)
#   0.2 image C (no GT)                                               -> FP  (tp 3, fp 4)
# Best sensitivity per FP count (FPs / 3 images): 0 -> 1/3, 1/3 -> 1/3, 2/3 -> 2/3, 1 -> 1, 4/3 -> 1.
PRED_BOXES = [
    [[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 31]],
    [[0, 0, 20, 8], [0, 0, 20, 12]],
    [[50, 50, 60, 60], [70, 70, 80, 80]],
]
PRED_SCORES = [[0.9, 0.8, 0.3], [0.7, 0.6], [0.5, 0.2]]
GT_BOXES = [[[0, 0, 10, 10], [20, 20, 30, 30]], [[0, 0, 20, 20]], []]


@pytest.mark.parametrize(
    "interpolation, expected",
    [
        # 0.5 FP/image lies halfway between (1/3, 1/3) and (2/3, 2/3) -> 1/2; 1, 2, 4 -> 1
        ("linear", [0.5, 1.0, 1.0, 1.0]),
        # at most 0.5 * 3 = 1.5 FPs -> 1 FP -> 1/3; at most 3 FPs -> 1
        ("step", [1 / 3, 1.0, 1.0, 1.0]),
    ],
)
def test_hand_worked_three_images(interpolation, expected):
    r = compute_detection_froc(PRED_BOXES, PRED_SCORES, GT_BOXES, interpolation=interpolation)
    assert r["fp_rates"] == [0.5, 1.0, 2.0, 4.0]
    np.testing.assert_allclose(r["sensitivity"], expected)
    assert r["average_sensitivity"] == pytest.approx(np.mean(expected))
    np.testing.assert_allclose(r["fps_per_image"], [0, 1 / 3, 2 / 3, 1, 4 / 3])
    np.testing.assert_allclose(r["curve_sensitivity"], [1 / 3, 1 / 3, 2 / 3, 1, 1])
    assert (r["num_images"], r["num_targets"], r["num_detections"], r["num_true_positives"]) == (3, 3, 7, 3)


def test_image_without_ground_truth_counts_in_per_image():
    # adding two empty images (no GT, no detection) turns 4 FPs over 3 images into 4 over 5
    r = compute_detection_froc(PRED_BOXES + [[], []], PRED_SCORES + [[], []], GT_BOXES + [[], []], fp_rates=(0.4,))
    np.testing.assert_allclose(r["fps_per_image"], [0, 0.2, 0.4, 0.6, 0.8])
    # at 0.4 FP/image = 2 FPs: sensitivity 2/3 (both readings)
    assert r["sensitivity"] == pytest.approx([2 / 3])
    assert r["num_images"] == 5


G1 = [[0, 0, 10, 10]]


@pytest.mark.parametrize(
    "pred, scores, gt, kwargs, expected",
    [
        # IoU exactly 0.5 (50 / 100) is a hit; 49 / 100 is not
        ([[0, 0, 10, 5]], [0.9], G1, {}, [True]),
        ([[0, 0, 10, 4.9]], [0.9], G1, {}, [False]),
        # a stricter IoU threshold
        ([[0, 0, 10, 6]], [0.9], G1, {"iou_threshold": 0.7}, [False]),
        # two detections of one lesion: the higher score is the TP whatever the input order
        ([[0, 0, 10, 9], [0, 0, 10, 10]], [0.3, 0.9], G1, {}, [False, True]),
        # d1 (0.9) hits a (IoU 70/130) and b (IoU 90/110) and takes b, the higher IoU; d2 (0.8) then finds a
        ([[3, 0, 13, 10], [0, 0, 10, 10]], [0.9, 0.8], [[0, 0, 10, 10], [4, 0, 14, 10]], {}, [True, True]),
        # no ground truth: every detection is a false positive
        ([[0, 0, 10, 10]], [0.9], [], {}, [False]),
        # no detection
        ([], [], G1, {}, []),
        # centre (5, 8) inside the GT but IoU 20/100: a hit only with match="center"
        ([[4, 7, 6, 9]], [0.9], G1, {}, [False]),
        ([[4, 7, 6, 9]], [0.9], G1, {"match": "center"}, [True]),
        # centre on the border counts; one GT is matched once even in centre mode
        ([[8, 8, 12, 12], [9, 9, 11, 11]], [0.9, 0.8], G1, {"match": "center"}, [True, False]),
        ([[11, 4, 13, 6]], [0.9], G1, {"match": "center"}, [False]),
    ],
)
def test_match_detections(pred, scores, gt, kwargs, expected):
    assert match_detections(pred, scores, gt, **kwargs).tolist() == expected


def test_tensor_inputs_and_ties():
    # tied scores are one threshold: (0.8: a TP and a FP enter together)
    pred = [torch.tensor([[0.0, 0, 10, 10], [30, 30, 40, 40]]), torch.tensor([[0.0, 0, 10, 10]])]
    scores = [torch.tensor([0.8, 0.8]), torch.tensor([0.4])]
    gt = [torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[0.0, 0, 10, 10]])]
    r = compute_detection_froc(pred, scores, gt, fp_rates=(0.5, 1.0))
    # curve: (0, 0) above all scores; at 0.8: 1 TP 1 FP; at 0.4: 2 TP 1 FP -> best per FP count: 0 -> 0, 1/2 -> 1
    np.testing.assert_allclose(r["fps_per_image"], [0, 0.5])
    np.testing.assert_allclose(r["curve_sensitivity"], [0, 1])
    assert r["sensitivity"] == pytest.approx([1.0, 1.0])


def test_froc_curve_direct():
    # scores 0.9 TP, 0.8 FP, 0.7 TP, 0.6 TP, 0.5 FP; 4 targets, 2 images
    fps, sens = froc_curve([0.5, 0.9, 0.6, 0.8, 0.7], [False, True, True, False, True], num_targets=4, num_images=2)
    np.testing.assert_allclose(fps, [0, 0.5, 1.0])
    np.testing.assert_allclose(sens, [0.25, 0.75, 0.75])
    with pytest.raises(ValueError, match="must be positive"):
        froc_curve([0.5], [True], num_targets=0, num_images=1)


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _brute_force_counts(pred, scores, gt, threshold):
    """TP and FP counts when only detections scoring >= threshold are kept (independent greedy matching)."""
    tp = fp = 0
    for boxes, s, gts in zip(pred, scores, gt):
        used = [False] * len(gts)
        for k in sorted((k for k in range(len(s)) if s[k] >= threshold), key=lambda k: -s[k]):
            ious = [(_iou(boxes[k], g), j) for j, g in enumerate(gts) if not used[j]]
            best = max(ious, default=(0.0, -1))
            if best[0] >= 0.5:
                used[best[1]] = True
                tp += 1
            else:
                fp += 1
    return tp, fp


def test_step_reading_matches_brute_force_thresholding():
    rng = np.random.default_rng(3)
    pred, scores, gt = [], [], []
    for _ in range(10):
        centres = rng.uniform(10, 90, size=(rng.integers(0, 3), 2))
        gts = np.c_[centres - 5, centres + 5]
        jitter = [g + rng.normal(0, 1.0, 4) for g in gts for _ in range(rng.integers(0, 3))]
        noise = [np.r_[c - 4, c + 4] for c in rng.uniform(10, 90, size=(rng.integers(0, 4), 2))]
        boxes = np.array(jitter + noise).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
        pred.append(boxes)
        scores.append(np.round(rng.random(len(boxes)), 3))
        gt.append(gts)
    n_images, n_targets = len(gt), sum(len(g) for g in gt)
    rates = (0.25, 0.5, 1.0, 2.0)
    r = compute_detection_froc(pred, scores, gt, fp_rates=rates, interpolation="step")
    thresholds = sorted(set(np.concatenate(scores).tolist())) + [np.inf]
    counts = [_brute_force_counts(pred, scores, gt, t) for t in thresholds]
    for rate, got in zip(rates, r["sensitivity"]):
        best = max(tp for tp, fp in counts if fp <= rate * n_images) / n_targets
        assert got == pytest.approx(best)
    assert r["num_true_positives"] == counts[0][0]


def test_linear_reading_equals_monai_froc_score():
    r = compute_detection_froc(PRED_BOXES, PRED_SCORES, GT_BOXES, fp_rates=(0.25, 0.5, 1.0, 2.0))
    monai_score = compute_froc_score(r["fps_per_image"][::-1], r["curve_sensitivity"][::-1], (0.25, 0.5, 1.0, 2.0))
    assert r["average_sensitivity"] == pytest.approx(monai_score)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((PRED_BOXES, PRED_SCORES[:2], GT_BOXES), {}, "same images, got 3, 2 and 3"),
        (([], [], []), {}, "no images"),
        (([[]], [[]], [[]]), {}, "none of the 1 images has a ground-truth box"),
        (([[[0, 0, 1]]], [[0.5]], [G1]), {}, r"shape \(n, 4\)"),
        (([[[5, 0, 1, 1]]], [[0.5]], [G1]), {}, "x2 >= x1"),
        (([[[0, 0, 1, 1]]], [[0.5, 0.4]], [G1]), {}, "2 scores for 1 boxes"),
        (([[[0, 0, 1, 1]]], [[np.nan]], [G1]), {}, "NaN"),
        ((PRED_BOXES, PRED_SCORES, GT_BOXES), {"fp_rates": (0.0, 1.0)}, "positive"),
        ((PRED_BOXES, PRED_SCORES, GT_BOXES), {"iou_threshold": 0.0}, r"iou_threshold must be in \(0, 1\]"),
        ((PRED_BOXES, PRED_SCORES, GT_BOXES), {"match": "overlap"}, "overlap"),
        ((PRED_BOXES, PRED_SCORES, GT_BOXES), {"interpolation": "cubic"}, "cubic"),
    ],
)
def test_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute_detection_froc(*args, **kwargs)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, 0.875),  # the hand-worked average (1/2 + 1 + 1 + 1) / 4
        ({"fp_rates": (0.5,), "interpolation": "step"}, 1 / 3),
        ({"fp_rates": (1.0,)}, 1.0),
    ],
)
def test_froc_sensitivity_in_ignite_engine(kwargs, expected):
    # batch 1 = images A and B, batch 2 = image C (no GT); the engine output is a dict as a MONAI evaluator's
    batches = [slice(0, 2), slice(2, 3)]
    engine = Engine(lambda e, sl: {"box": PRED_BOXES[sl], "score": PRED_SCORES[sl], "gt": GT_BOXES[sl]})
    metric = FROCSensitivity(output_transform=lambda o: (o["box"], o["score"], o["gt"]), **kwargs)
    metric.attach(engine, "froc")
    engine.run(batches, max_epochs=1)
    assert engine.state.metrics["froc"] == pytest.approx(expected)


def test_froc_sensitivity_errors():
    metric = FROCSensitivity()
    metric.update(([[[0, 0, 1, 1]]], [[0.5]], [[]]))
    with pytest.raises(ValueError, match="none of the 1 images seen has a ground-truth box"):
        metric.compute()
    with pytest.raises(ValueError, match="same images"):
        metric.update(([[[0, 0, 1, 1]]], [], [[]]))
    # after reset the extra no-GT image (1 FP) is gone: the hand-worked three images give 0.875 again
    metric.reset()
    metric.update((PRED_BOXES, PRED_SCORES, GT_BOXES))
    assert metric.compute() == pytest.approx(0.875)
    with pytest.raises(ValueError, match="positive"):
        FROCSensitivity(fp_rates=(-1.0,))
