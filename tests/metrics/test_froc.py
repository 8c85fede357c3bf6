# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.metrics.froc: matching rules and IoU conventions, a hand-worked FROC on three images under the
official DeepLesion and the strict convention, readings at FP rates, the official per-detection curve read with scipy
and a brute-force check against thresholding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.metrics import compute_froc_score
from scipy.interpolate import interp1d

from monai_ext.metrics.froc import (
    FROCSensitivity,
    compute_detection_froc,
    deeplesion_froc_summary,
    detection_outcomes,
    froc_curve,
    match_detections,
    summarize_froc,
)

# the strict one-to-one convention this module computed before the official DeepLesion one became the default
STRICT = {"duplicate": "false_positive", "iou_convention": "continuous"}

# Three images, 3 ground-truth boxes. Detections in score order, with the hand-worked outcome (strict convention;
# the +1-pixel IoUs, 100/121, 189/441, 273/441 and 121/132, hit and miss alike):
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
def test_hand_worked_three_images_strict(interpolation, expected):
    r = compute_detection_froc(PRED_BOXES, PRED_SCORES, GT_BOXES, interpolation=interpolation, **STRICT)
    assert r["fp_rates"] == [0.5, 1.0, 2.0, 4.0]
    np.testing.assert_allclose(r["sensitivity"], expected)
    assert r["average_sensitivity"] == pytest.approx(np.mean(expected))
    np.testing.assert_allclose(r["fps_per_image"], [0, 1 / 3, 2 / 3, 1, 4 / 3])
    np.testing.assert_allclose(r["curve_sensitivity"], [1 / 3, 1 / 3, 2 / 3, 1, 1])
    assert (r["num_images"], r["num_targets"], r["num_detections"], r["num_true_positives"]) == (3, 3, 7, 3)
    assert (r["num_false_positives"], r["num_ignored"]) == (4, 0)


# The same detections under the official convention: the 0.8 duplicate on gA1 is ignored (neither TP nor FP):
#   0.9 TP (found 1, fp 0); 0.8 ignored (1, 0); 0.7 FP (1, 1); 0.6 TP (2, 1); 0.5 FP (2, 2); 0.3 TP (3, 2);
#   0.2 FP (3, 3)
# Best sensitivity per FP count (FPs / 3 images): 0 -> 1/3, 1/3 -> 2/3, 2/3 -> 1, 1 -> 1.
@pytest.mark.parametrize(
    "interpolation, expected",
    [
        # at most 0.5 * 3 = 1.5 FPs -> 1 FP -> 2/3; at most 3 FPs -> 1; 2 and 4 lie beyond the last FP
        ("step", [2 / 3, 1.0, 1.0, 1.0]),
        # 0.5 is halfway between (1/3, 2/3) and (2/3, 1) -> 5/6
        ("linear", [5 / 6, 1.0, 1.0, 1.0]),
    ],
)
def test_hand_worked_three_images_official(interpolation, expected):
    r = compute_detection_froc(PRED_BOXES, PRED_SCORES, GT_BOXES, interpolation=interpolation)
    np.testing.assert_allclose(r["sensitivity"], expected)
    np.testing.assert_allclose(r["fps_per_image"], [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(r["curve_sensitivity"], [1 / 3, 2 / 3, 1, 1])
    assert (r["num_true_positives"], r["num_false_positives"], r["num_ignored"]) == (3, 3, 1)
    assert (r["duplicate"], r["iou_convention"], r["interpolation"]) == ("ignore", "plus_one", interpolation)


def test_step_reading_at_an_integer_fp_count():
    # 2 images, 1 lesion: 0.9 FP (image 1), 0.8 TP (image 2). Curve: 0 FP -> 0, 1 FP (0.5 / image) -> 1.
    # 0.25 FP/image = 0.5 FPs -> 0 FPs -> 0; 0.5 FP/image = 1 FP, which the official reading includes -> 1;
    # linear: halfway between (0, 0) and (0.5, 1) at 0.25 -> 0.5
    args = ([[[50, 50, 60, 60]], [[0, 0, 9, 9]]], [[0.9], [0.8]], [[], [[0, 0, 9, 9]]], (0.25, 0.5, 1.0))
    assert compute_detection_froc(*args)["sensitivity"] == [0.0, 1.0, 1.0]
    assert compute_detection_froc(*args, interpolation="linear")["sensitivity"] == [0.5, 1.0, 1.0]


def test_image_without_ground_truth_counts_in_per_image():
    # adding two empty images (no GT, no detection) turns 4 FPs over 3 images into 4 over 5
    r = compute_detection_froc(
        PRED_BOXES + [[], []],
        PRED_SCORES + [[], []],
        GT_BOXES + [[], []],
        fp_rates=(0.4,),
        interpolation="step",
        **STRICT,
    )
    np.testing.assert_allclose(r["fps_per_image"], [0, 0.2, 0.4, 0.6, 0.8])
    # at 0.4 FP/image = at most 2 FPs: sensitivity 2/3
    assert r["sensitivity"] == pytest.approx([2 / 3])
    assert r["num_images"] == 5


G1 = [[0, 0, 10, 10]]


@pytest.mark.parametrize(
    "pred, scores, gt, kwargs, expected",
    [
        # continuous IoU exactly 0.5 (50 / 100) is a hit; 49 / 100 is not
        ([[0, 0, 10, 5]], [0.9], G1, STRICT, [True]),
        ([[0, 0, 10, 4.9]], [0.9], G1, STRICT, [False]),
        # a stricter IoU threshold (60 / 100)
        ([[0, 0, 10, 6]], [0.9], G1, {"iou_threshold": 0.7, **STRICT}, [False]),
        # two detections of one lesion: the higher score is the TP whatever the input order
        ([[0, 0, 10, 9], [0, 0, 10, 10]], [0.3, 0.9], G1, STRICT, [False, True]),
        ([[0, 0, 10, 9], [0, 0, 10, 10]], [0.3, 0.9], G1, {}, [False, True]),
        # d1 (0.9) hits a (IoU 70/130) and b (IoU 90/110); strict: it takes b, the higher IoU, and d2 (0.8) then
        # finds a; official: d1 finds both and d2 is an ignored duplicate
        ([[3, 0, 13, 10], [0, 0, 10, 10]], [0.9, 0.8], [[0, 0, 10, 10], [4, 0, 14, 10]], STRICT, [True, True]),
        ([[3, 0, 13, 10], [0, 0, 10, 10]], [0.9, 0.8], [[0, 0, 10, 10], [4, 0, 14, 10]], {}, [True, False]),
        # no ground truth: every detection is a false positive
        ([[0, 0, 10, 10]], [0.9], [], {}, [False]),
        # no detection
        ([], [], G1, {}, []),
        # centre (5, 8) inside the GT but IoU 20/100 (+1 pixel: 9/121): a hit only with match="center"
        ([[4, 7, 6, 9]], [0.9], G1, {}, [False]),
        ([[4, 7, 6, 9]], [0.9], G1, {"match": "center"}, [True]),
        # centre on the border counts; one GT is found once even in centre mode
        ([[8, 8, 12, 12], [9, 9, 11, 11]], [0.9, 0.8], G1, {"match": "center"}, [True, False]),
        ([[8, 8, 12, 12], [9, 9, 11, 11]], [0.9, 0.8], G1, {"match": "center", **STRICT}, [True, False]),
        ([[11, 4, 13, 6]], [0.9], G1, {"match": "center"}, [False]),
    ],
)
def test_match_detections(pred, scores, gt, kwargs, expected):
    assert match_detections(pred, scores, gt, **kwargs).tolist() == expected


# +1-pixel IoU by hand: [x1, y1, x2, y2] are inclusive pixel indices, width x2 - x1 + 1.
#   GT [0, 0, 9, 9] is 10 x 10 = 100 px; detection [0, 0, 9, 4] is 10 x 5 = 50 px, inside it: IoU 50 / 100 = 0.5 -> hit.
#   Continuous: 9 x 9 = 81 and 9 x 4 = 36: IoU 36 / 81 = 0.444 -> miss. The convention flips the hit.
#   Touching boxes [0, 0, 4, 4] and [4, 0, 8, 4]: continuous intersection 0 x 4 = 0 -> IoU 0; +1: intersection
#   1 x 5 = 5 of two 5 x 5 = 25 px boxes, IoU 5 / (25 + 25 - 5) = 1/9 = 0.111.
#   [0, 0, 9, 9] vs GT [0, 0, 9, 8]: +1 IoU 90 / 100 = 0.9, so the 0.9 threshold holds; continuous 72 / 81 = 0.889.
@pytest.mark.parametrize(
    "pred, gt, iou_threshold, plus_one, continuous",
    [
        ([[0, 0, 9, 4]], [[0, 0, 9, 9]], 0.5, [True], [False]),
        ([[4, 0, 8, 4]], [[0, 0, 4, 4]], 0.11, [True], [False]),
        ([[4, 0, 8, 4]], [[0, 0, 4, 4]], 0.112, [False], [False]),
        ([[0, 0, 9, 9]], [[0, 0, 9, 8]], 0.9, [True], [False]),
    ],
)
def test_plus_one_pixel_iou(pred, gt, iou_threshold, plus_one, continuous):
    for conv, expected in (("plus_one", plus_one), ("continuous", continuous)):
        for dup in ("ignore", "false_positive"):
            got = match_detections(pred, [0.9], gt, iou_threshold, duplicate=dup, iou_convention=conv)
            assert got.tolist() == expected, (conv, dup)


def test_duplicate_detection_official_vs_strict():
    # two detections on one lesion ([0, 0, 9, 9], 100 px): 0.9 identical (IoU 1), 0.8 [0, 0, 9, 7] (IoU 80 / 100)
    pred, scores, gt = [[0, 0, 9, 9], [0, 0, 9, 7]], [0.9, 0.8], [[0, 0, 9, 9]]
    found, is_fp = detection_outcomes(pred, scores, gt)
    assert found.tolist() == [1, 0] and is_fp.tolist() == [False, False]  # official: duplicate ignored
    found, is_fp = detection_outcomes(pred, scores, gt, duplicate="false_positive")
    assert found.tolist() == [1, 0] and is_fp.tolist() == [False, True]  # strict: 1 TP + 1 FP
    # with a third, missing detection the FP count is 1 (official) against 2 (strict); sensitivity 1 either way
    pred3, scores3 = [pred + [[50, 50, 59, 59]]], [scores + [0.7]]
    official = compute_detection_froc(pred3, scores3, [gt], fp_rates=(1.0,))
    strict = compute_detection_froc(pred3, scores3, [gt], fp_rates=(1.0,), duplicate="false_positive")
    assert (official["num_true_positives"], official["num_false_positives"], official["num_ignored"]) == (1, 1, 1)
    assert (strict["num_true_positives"], strict["num_false_positives"], strict["num_ignored"]) == (1, 2, 0)
    np.testing.assert_allclose(official["fps_per_image"], [0, 1])
    np.testing.assert_allclose(strict["fps_per_image"], [0, 1, 2])


def test_one_detection_finds_two_overlapping_lesions_officially():
    # lesions a [0, 0, 9, 9] (100 px) and b [0, 0, 9, 7] (80 px); detection [0, 0, 9, 9]: IoU 1 with a, 80/100 with b.
    # Official: it finds both (the official loop marks every unfound lesion with IoU >= 0.5); strict: only a.
    gt = [[0, 0, 9, 9], [0, 0, 9, 7]]
    found, is_fp = detection_outcomes([[0, 0, 9, 9]], [0.9], gt)
    assert found.tolist() == [2] and is_fp.tolist() == [False]
    found, is_fp = detection_outcomes([[0, 0, 9, 9]], [0.9], gt, duplicate="false_positive")
    assert found.tolist() == [1] and is_fp.tolist() == [False]
    assert compute_detection_froc([[[0, 0, 9, 9]]], [[0.9]], [gt], (1.0,))["sensitivity"] == [1.0]


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
    # linear: 0.5 is the point (0.5, 1)
    r = compute_detection_froc(pred, scores, gt, fp_rates=(0.25, 0.5), interpolation="linear")
    assert r["sensitivity"] == pytest.approx([0.5, 1.0])


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
    r = compute_detection_froc(pred, scores, gt, fp_rates=rates, interpolation="step", **STRICT)
    thresholds = sorted(set(np.concatenate(scores).tolist())) + [np.inf]
    counts = [_brute_force_counts(pred, scores, gt, t) for t in thresholds]
    for rate, got in zip(rates, r["sensitivity"]):
        best = max(tp for tp, fp in counts if fp <= rate * n_images) / n_targets
        assert got == pytest.approx(best)
    assert r["num_true_positives"] == counts[0][0]


def _iou_plus_one(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = iw * ih
    return inter / ((a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter)


def _official_reference(pred, scores, gt, rates):
    """The official DeepLesion evaluation as its code describes it (CADLab e6963e8, MULAN detection_eval.py), written
    independently: all detections in decreasing score; a detection whose best +1 IoU is < 0.5 is a miss, otherwise it
    marks every unmarked lesion with IoU >= 0.5; one (FPs / images, found / lesions) point per detection, FP counts
    repeating; the sensitivity at a rate from scipy's interp1d, or the last point beyond the last FP rate."""
    order = sorted(((s, i, k) for i, ss in enumerate(scores) for k, s in enumerate(ss)), reverse=True)
    marked = [[False] * len(g) for g in gt]
    n_hit = n_miss = 0
    curve_x, curve_y = [], []
    for _, i, k in order:
        ious = [_iou_plus_one(pred[i][k], g) for g in gt[i]]
        if not ious or max(ious) < 0.5:
            n_miss += 1
        for j, v in enumerate(ious):
            if v >= 0.5 and not marked[i][j]:
                marked[i][j] = True
                n_hit += 1
        curve_x.append(n_miss / len(gt))
        curve_y.append(n_hit / sum(len(g) for g in gt))
    f = interp1d(np.array(curve_x), np.array(curve_y))
    return [float(f(r)) if r <= curve_x[-1] else curve_y[-1] for r in rates]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_defaults_match_the_official_evaluation(seed):
    # 20 images with integer pixel boxes, duplicates, misses and lesion-free images; rates with integer and
    # fractional FP counts (0.25 * 20 = 5, 0.33 * 20 = 6.6)
    rng = np.random.default_rng(seed)
    pred, scores, gt = [], [], []
    for _ in range(20):
        centres = rng.integers(10, 90, size=(rng.integers(0, 3), 2))
        gts = np.c_[centres - 5, centres + 5].astype(float)
        jitter = [g + rng.integers(-2, 3, 4) for g in gts for _ in range(rng.integers(0, 3))]
        noise = [np.r_[c - 4, c + 4] for c in rng.integers(10, 90, size=(rng.integers(0, 4), 2))]
        boxes = np.array(jitter + noise, dtype=float).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
        pred.append(boxes.tolist())
        scores.append(rng.random(len(boxes)).tolist())  # distinct scores: the official order is then unique
        gt.append(gts.tolist())
    rates = (0.25, 0.33, 0.5, 1.0, 2.0, 4.0)
    r = compute_detection_froc(pred, scores, gt, fp_rates=rates)
    assert r["num_ignored"] > 0 and r["num_false_positives"] > 20
    np.testing.assert_allclose(r["sensitivity"], _official_reference(pred, scores, gt, rates), atol=1e-12)


def test_linear_reading_equals_monai_froc_score():
    r = compute_detection_froc(
        PRED_BOXES, PRED_SCORES, GT_BOXES, fp_rates=(0.25, 0.5, 1.0, 2.0), interpolation="linear"
    )
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
        ((PRED_BOXES, PRED_SCORES, GT_BOXES), {"duplicate": "count"}, "count"),
        ((PRED_BOXES, PRED_SCORES, GT_BOXES), {"iou_convention": "plus_two"}, "plus_two"),
    ],
)
def test_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute_detection_froc(*args, **kwargs)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"interpolation": "linear", **STRICT}, 0.875),  # the hand-worked strict average (1/2 + 1 + 1 + 1) / 4
        ({"fp_rates": (0.5,), "interpolation": "step", **STRICT}, 1 / 3),
        ({"fp_rates": (1.0,), **STRICT}, 1.0),
        ({}, 11 / 12),  # the hand-worked official average (2/3 + 1 + 1 + 1) / 4
        ({"fp_rates": (0.5, 1.0, 2.0)}, 8 / 9),  # the MoMBS average (2/3 + 1 + 1) / 3
        ({"fp_rates": (0.5,), "duplicate": "ignore", "iou_convention": "continuous"}, 2 / 3),
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
    # after reset the extra no-GT image (1 FP) is gone: the hand-worked three images give 11/12 again
    metric.reset()
    metric.update((PRED_BOXES, PRED_SCORES, GT_BOXES))
    assert metric.compute() == pytest.approx(11 / 12)
    with pytest.raises(ValueError, match="positive"):
        FROCSensitivity(fp_rates=(-1.0,))
    with pytest.raises(ValueError, match="count"):
        FROCSensitivity(duplicate="count")
    with pytest.raises(ValueError, match="plus_two"):
        FROCSensitivity(iou_convention="plus_two")


def test_summary_keys_and_values():
    # official hand-worked three images: 2/3, 1, 1, 1 at 0.5, 1, 2, 4 FP/image; mean over 0.5, 1, 2 = 8/9
    summary = deeplesion_froc_summary(PRED_BOXES, PRED_SCORES, GT_BOXES)
    assert list(summary) == ["sens@0.5", "sens@1", "sens@2", "sens@4", "avg[0.5,1,2]"]
    np.testing.assert_allclose(list(summary.values()), [2 / 3, 1, 1, 1, 8 / 9])
    # strict: the duplicate is a FP, 0.5 FP/image = at most 1 FP ("step") -> 1/3; mean (1/3 + 1 + 1) / 3 = 7/9
    strict = deeplesion_froc_summary(PRED_BOXES, PRED_SCORES, GT_BOXES, interpolation="step", **STRICT)
    assert strict["sens@0.5"] == pytest.approx(1 / 3) and strict["avg[0.5,1,2]"] == pytest.approx(7 / 9)
    # an averaging rate outside fp_rates is evaluated too; the MULAN-style mean over 0.5-4 from a result
    summary = deeplesion_froc_summary(PRED_BOXES, PRED_SCORES, GT_BOXES, fp_rates=(4.0,), average_over=(0.5,))
    assert summary == pytest.approx({"sens@0.5": 2 / 3, "sens@4": 1.0, "avg[0.5]": 2 / 3})
    r = compute_detection_froc(PRED_BOXES, PRED_SCORES, GT_BOXES)
    assert summarize_froc(r, (0.5, 1, 2, 4))["avg[0.5,1,2,4]"] == pytest.approx(11 / 12)
    with pytest.raises(ValueError, match=r"average_over rates \['8'\] are not among"):
        summarize_froc(r, (8.0,))
    with pytest.raises(ValueError, match="misses key"):
        summarize_froc({"fp_rates": [1.0]})
    with pytest.raises(ValueError, match="average_over must be positive"):
        summarize_froc(r, ())
