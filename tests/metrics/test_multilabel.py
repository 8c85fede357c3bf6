# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.metrics.multilabel: hand-worked AUROC / AP / F1 / precision / recall, NaN masking, skipped
classes, tables, frequency groups and cumulative metrics (the ignite handlers:
tests/handlers/test_multilabel_metrics.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from monai.metrics import compute_roc_auc
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

from monai_ext.metrics.multilabel import (
    MultiLabelAPMetric,
    MultiLabelAUCMetric,
    MultiLabelF1Metric,
    frequency_groups,
    metrics_table,
    multilabel_metrics,
    per_class_auroc,
    per_class_average_precision,
    per_class_f1,
    per_class_precision_recall,
    write_metrics_table,
)

NAN = math.nan


def _col(values):
    """A single-class ``B 1`` array."""
    return np.asarray(values, dtype=float)[:, None]


# AUROC as pair counts: fraction of (positive, negative) pairs ranked correctly, a tie counting 1/2.
AUROC_CASES = [
    # pos {0.8, 0.4}, neg {0.6, 0.2}: (0.8>0.6) (0.8>0.2) (0.4<0.6) (0.4>0.2) -> 3/4
    ([0.8, 0.6, 0.4, 0.2], [1, 0, 1, 0], 3 / 4),
    # pos {0.8, 0.4}, neg {0.4, 0.2}: 1 + 1 + 0.5 (tie) + 1 -> 3.5/4
    ([0.8, 0.4, 0.4, 0.2], [1, 0, 1, 0], 3.5 / 4),
    # pos {0.1}, neg {0.9, 0.5, 0.3}: all three pairs wrong -> 0
    ([0.1, 0.9, 0.5, 0.3], [1, 0, 0, 0], 0.0),
    # pos {0.7, 0.2}, neg {0.9, 0.5}: (0.7<0.9) (0.7>0.5) (0.2<0.9) (0.2<0.5) -> 1/4
    ([0.9, 0.7, 0.5, 0.2], [0, 1, 0, 1], 1 / 4),
]


@pytest.mark.parametrize("scores, labels, expected", AUROC_CASES)
def test_auroc_pair_counts(scores, labels, expected):
    assert per_class_auroc(_col(scores), _col(labels))[0] == pytest.approx(expected)


# Step-wise AP = sum over thresholds of (recall gain) x precision.
AP_CASES = [
    # ranking 1 0 1 0 1: precision at the positives 1/1, 2/3, 3/5 -> (1 + 2/3 + 3/5) / 3 = 34/45
    ([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 1], 34 / 45),
    # ranking 0 1 1 0 0: precision at the positives 1/2, 2/3 -> (1/2 + 2/3) / 2 = 7/12
    ([0.9, 0.8, 0.7, 0.6, 0.5], [0, 1, 1, 0, 0], 7 / 12),
    # same ranking 0 1 1 0 0 given in shuffled row order
    ([0.6, 0.7, 0.5, 0.8, 0.9], [0, 1, 0, 1, 0], 7 / 12),
    # tie at 0.7 is one threshold: (R 1/3, P 1), (R 2/3, P 2/3), (R 1, P 3/4) -> (1 + 2/3 + 3/4) / 3 = 29/36
    ([0.9, 0.7, 0.7, 0.5], [1, 1, 0, 1], 29 / 36),
    # every row positive -> precision 1 everywhere
    ([0.3, 0.2, 0.1], [1, 1, 1], 1.0),
]


@pytest.mark.parametrize("scores, labels, expected", AP_CASES)
def test_average_precision_hand_worked(scores, labels, expected):
    assert per_class_average_precision(_col(scores), _col(labels))[0] == pytest.approx(expected)


# F1 = 2TP / (2TP + FP + FN) at y_pred >= threshold.
F1_CASES = [
    # >= 0.5: TP {0.9, 0.7}, FP {0.6}, FN {0.4} -> 4 / 6
    ([0.9, 0.6, 0.4, 0.2, 0.7, 0.1], [1, 0, 1, 0, 1, 0], 0.5, 2 / 3),
    # >= 0.3: TP {0.9, 0.7, 0.4}, FP {0.6} -> 6 / 7
    ([0.9, 0.6, 0.4, 0.2, 0.7, 0.1], [1, 0, 1, 0, 1, 0], 0.3, 6 / 7),
    # >= 0.95: nothing predicted, FN 3 -> 0
    ([0.9, 0.6, 0.4, 0.2, 0.7, 0.1], [1, 0, 1, 0, 1, 0], 0.95, 0.0),
    # a score equal to the threshold is positive: TP {0.5} -> 2 / 2
    ([0.5, 0.49], [1, 0], 0.5, 1.0),
]


@pytest.mark.parametrize("scores, labels, threshold, expected", F1_CASES)
def test_f1_confusion_table(scores, labels, threshold, expected):
    assert per_class_f1(_col(scores), _col(labels), threshold=threshold)[0] == pytest.approx(expected)


def test_f1_with_logits():
    # sigmoid(x) >= 0.5 iff x >= 0: TP {2.0, 0.0}, FP {0.3}, FN {-0.2} -> 4 / 6
    logits = _col([2.0, 0.3, -0.2, -3.0, 0.0])
    labels = _col([1, 0, 1, 0, 1])
    assert per_class_f1(logits, labels, activation="sigmoid")[0] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="activation='sigmoid'"):
        per_class_f1(logits, labels)


def test_nan_labels_are_masked_per_class():
    # class a: row 1 unknown -> y (1, 0, 0) with scores (0.2, 0.1, 0.3): pairs (0.2>0.1) (0.2<0.3) -> 1/2
    #   (were the NaN read as 0, the pair 0.2 < 0.9 would give 1/3)
    # class b: rows 0 and 3 unknown -> y (1, 0) with scores (0.7, 0.4) -> 1
    y_pred = np.array([[0.2, 0.1], [0.9, 0.7], [0.1, 0.4], [0.3, 0.8]])
    y = np.array([[1, NAN], [NAN, 1], [0, 0], [0, NAN]])
    np.testing.assert_allclose(per_class_auroc(y_pred, y), [0.5, 1.0])
    # AP class a: ranking by score 0.3(0) 0.2(1) 0.1(0) -> precision 1/2 at the positive
    np.testing.assert_allclose(per_class_average_precision(y_pred, y), [0.5, 1.0])
    r = multilabel_metrics(y_pred, y, ["a", "b"])
    assert (r["per_class"]["a"]["n_known"], r["per_class"]["a"]["n_positive"]) == (3, 1)
    assert (r["per_class"]["b"]["n_known"], r["per_class"]["b"]["n_positive"]) == (2, 1)


def test_skipped_classes_warn_by_name_and_leave_the_mean():
    # Hernia: no positive -> AUROC, AP, F1 skipped; Support Devices: no negative -> AUROC skipped only.
    y_pred = np.array([[0.9, 0.1, 0.8], [0.2, 0.3, 0.6], [0.7, 0.2, 0.9], [0.4, 0.6, 0.7]])
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, NAN, 1]])
    names = ["Effusion", "Hernia", "Support Devices"]
    with pytest.warns(UserWarning) as record:
        r = multilabel_metrics(y_pred, y, names)
    messages = [str(w.message) for w in record]
    assert any("AUROC" in m and "'Hernia'" in m and "'Support Devices'" in m for m in messages)
    assert any(m.startswith("AP ") and "'Hernia'" in m and "Support Devices" not in m for m in messages)
    assert any(m.startswith("F1 ") and "'Hernia'" in m for m in messages)
    assert any(m.startswith("recall ") and "'Hernia'" in m for m in messages)
    assert r["skipped"] == {
        "auroc": ["Hernia", "Support Devices"],
        "ap": ["Hernia"],
        "f1": ["Hernia"],
        "precision": ["Hernia"],
        "recall": ["Hernia"],
    }
    assert math.isnan(r["per_class"]["Hernia"]["ap"]) and math.isnan(r["per_class"]["Support Devices"]["auroc"])
    # Effusion separates perfectly: AUROC 1, AP 1; F1 at 0.5: TP 2, FP 0 -> 1. Support Devices: AP 1,
    # F1 at 0.5: all four predicted positive and positive -> 1.
    assert r["mean_auroc"] == pytest.approx(1.0)
    assert r["map"] == pytest.approx(1.0)
    assert r["macro_f1"] == pytest.approx(1.0)
    assert (r["macro_precision"], r["macro_recall"]) == pytest.approx((1.0, 1.0))


def test_all_classes_skipped_gives_nan_means():
    with pytest.warns(UserWarning, match="'only'"):
        r = multilabel_metrics(_col([0.2, 0.4]), _col([NAN, 0]), ["only"])
    assert math.isnan(r["mean_auroc"]) and math.isnan(r["map"]) and math.isnan(r["macro_f1"])


def test_agrees_with_sklearn_and_monai_on_random_data():
    rng = np.random.default_rng(20260101)
    b, c = 300, 6
    y = (rng.random((b, c)) < np.linspace(0.05, 0.5, c)).astype(float)
    y_pred = np.round(np.clip(0.35 * y + rng.random((b, c)) * 0.7, 0, 1), 2)  # rounding makes ties
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no class is skipped here
        r = multilabel_metrics(y_pred, y, [f"c{k}" for k in range(c)])
    # MONAI's own AUROC (its own tie handling) and sklearn's multi-label macro averages
    monai_auc = np.asarray(compute_roc_auc(torch.as_tensor(y_pred), torch.as_tensor(y), average="none"))
    np.testing.assert_allclose([r["per_class"][f"c{k}"]["auroc"] for k in range(c)], monai_auc, rtol=1e-12)
    assert r["mean_auroc"] == pytest.approx(roc_auc_score(y, y_pred, average="macro"))
    assert r["map"] == pytest.approx(average_precision_score(y, y_pred, average="macro"))
    # with unknown labels: each class equals sklearn on its known rows only
    y_nan = y.copy()
    y_nan[rng.random((b, c)) < 0.2] = NAN
    auc = per_class_auroc(y_pred, y_nan)
    for k in range(c):
        known = ~np.isnan(y_nan[:, k])
        assert auc[k] == pytest.approx(roc_auc_score(y_nan[known, k], y_pred[known, k]))


def test_average_precision_matches_brute_force_definition():
    # Without ties AP is the mean, over the positives, of the precision at the positive's rank.
    rng = np.random.default_rng(7)
    scores = rng.permutation(np.arange(40)) / 40.0
    labels = (rng.random(40) < 0.3).astype(float)
    order = np.argsort(-scores)
    hits = labels[order]
    precision_at_rank = np.cumsum(hits) / np.arange(1, 41)
    expected = precision_at_rank[hits == 1].mean()
    assert per_class_average_precision(_col(scores), _col(labels))[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    "y_pred, y, names, match",
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), None, "does not match"),
        (np.zeros(3), np.zeros(3), None, "shape B C"),
        (np.zeros((2, 1)), np.array([[1.0], [2.0]]), None, r"0, 1 or NaN \(unknown\), found values \[2.0\]"),
        (np.array([[NAN], [0.1]]), np.array([[1.0], [0.0]]), None, "y_pred contains NaN"),
        (np.zeros((2, 2)), np.zeros((2, 2)), ["one"], "1 class names were given but y_pred has 2 classes"),
    ],
)
def test_bad_inputs(y_pred, y, names, match):
    with pytest.raises(ValueError, match=match):
        per_class_auroc(y_pred, y, names)


def test_bad_options():
    with pytest.raises(ValueError, match="softmax"):
        per_class_f1(_col([0.1]), _col([1]), activation="softmax")
    with pytest.raises(ValueError, match=r"threshold must be a probability in \[0, 1\], got 1.5"):
        multilabel_metrics(_col([0.1, 0.9]), _col([0, 1]), ["a"], threshold=1.5)
    with pytest.raises(ValueError, match="threshold"):
        MultiLabelF1Metric(threshold=-0.1)
    with pytest.raises(ValueError, match="weighted"):
        MultiLabelAPMetric(average="weighted")


def _worked_two_class():
    """Class a: the 34/45 AP ranking, AUROC 3/6; class b: separable (AP 1, AUROC 1)."""
    y_pred = np.array([[0.9, 0.1], [0.8, 0.6], [0.7, 0.5], [0.6, 0.3], [0.5, 0.2]])
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], dtype=float)
    return y_pred, y


def test_multilabel_metrics_result_and_groups():
    y_pred, y = _worked_two_class()
    r = multilabel_metrics(y_pred, y, ["a", "b"], class_groups={"head": ["a"], "tail": ["b"]})
    # class a, F1 at 0.5: all five predicted positive, TP 3, FP 2 -> 6/8; class b: predicted {0.6, 0.5}, TP 2 -> 1
    assert r["per_class"]["a"] == pytest.approx(
        {"n_known": 5, "n_positive": 3, "auroc": 3 / 6, "ap": 34 / 45, "f1": 6 / 8, "precision": 3 / 5, "recall": 1.0}
    )
    assert r["per_class"]["b"] == pytest.approx(
        {"n_known": 5, "n_positive": 2, "auroc": 1.0, "ap": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0}
    )
    assert (r["macro_precision"], r["macro_recall"]) == pytest.approx(((3 / 5 + 1) / 2, 1.0))
    assert (r["mean_auroc"], r["map"], r["macro_f1"]) == pytest.approx((0.75, (34 / 45 + 1) / 2, (0.75 + 1) / 2))
    head = r["groups"]["head"]
    assert head["classes"] == ["a"]
    assert (head["mean_auroc"], head["map"], head["macro_f1"]) == pytest.approx((0.5, 34 / 45, 0.75))
    assert (head["macro_precision"], head["macro_recall"]) == pytest.approx((3 / 5, 1.0))
    assert r["groups"]["tail"]["map"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"class group 'x' names class\(es\) \['c'\]"):
        multilabel_metrics(y_pred, y, ["a", "b"], class_groups={"x": ["c"]})


def test_write_metrics_table_csv_and_markdown(tmp_path):
    y_pred, y = _worked_two_class()
    y = np.c_[y, np.zeros(5)]
    y_pred = np.c_[y_pred, np.full(5, 0.3)]
    with pytest.warns(UserWarning, match="'Hernia'"):
        r = multilabel_metrics(y_pred, y, ["a", "b", "Hernia"], class_groups={"tail": ["b", "Hernia"]})
    csv_path = tmp_path / "eval" / "per_class.csv"
    md = write_metrics_table(r, csv_path, digits=3)
    table = pd.read_csv(csv_path)
    assert table["class"].tolist() == ["a", "b", "Hernia", "mean", "mean (tail)"]
    np.testing.assert_allclose(table["ap"], [34 / 45, 1.0, NAN, (34 / 45 + 1) / 2, 1.0])
    np.testing.assert_allclose(table["n_positive"], [3, 2, 0, NAN, NAN])
    lines = md.splitlines()
    np.testing.assert_allclose(table["precision"], [3 / 5, 1.0, NAN, 0.8, 1.0])
    np.testing.assert_allclose(table["recall"], [1.0, 1.0, NAN, 1.0, 1.0])
    lines = md.splitlines()
    assert lines[0] == "| class | n_known | n_positive | auroc | ap | f1 | precision | recall |"
    assert lines[2] == "| a | 5 | 3 | 0.500 | 0.756 | 0.750 | 0.600 | 1.000 |"
    assert lines[4] == "| Hernia | 5 | 0 | n/a | n/a | n/a | n/a | n/a |"
    assert lines[5] == "| mean |  |  | 0.750 | 0.878 | 0.875 | 0.800 | 1.000 |"
    assert metrics_table(r).shape == (5, 8)


def test_metrics_table_of_an_older_result_leaves_precision_recall_empty():
    y_pred, y = _worked_two_class()
    r = multilabel_metrics(y_pred, y, ["a", "b"])
    for row in r["per_class"].values():
        del row["precision"], row["recall"]
    del r["macro_precision"], r["macro_recall"]
    table = metrics_table(r)
    assert table["precision"].isna().all() and table["recall"].isna().all()
    assert table["f1"].tolist() == pytest.approx([0.75, 1.0, 0.875])


# (scores, labels, threshold, precision, recall) from the confusion table of ``score >= threshold``
PRECISION_RECALL_CASES = [
    # predicted {0.9, 0.6, 0.5}: TP 2 (0.9, 0.5), FP 1 (0.6); FN 1 (0.2) -> P 2/3, R 2/3
    ([0.9, 0.6, 0.5, 0.2, 0.1], [1, 0, 1, 1, 0], 0.5, 2 / 3, 2 / 3),
    # threshold 0.55: predicted {0.9, 0.6}: TP 1, FP 1; FN 2 -> P 1/2, R 1/3
    ([0.9, 0.6, 0.5, 0.2, 0.1], [1, 0, 1, 1, 0], 0.55, 1 / 2, 1 / 3),
    # nothing predicted positive: precision 0 (zero_division=0), recall 0
    ([0.4, 0.3, 0.2], [1, 0, 1], 0.5, 0.0, 0.0),
    # everything predicted positive: P = prevalence 1/4, R 1
    ([0.7, 0.8, 0.9, 0.6], [0, 0, 1, 0], 0.5, 1 / 4, 1.0),
]


@pytest.mark.parametrize("scores, labels, threshold, precision, recall", PRECISION_RECALL_CASES)
def test_precision_recall_confusion_table(scores, labels, threshold, precision, recall):
    p, r = per_class_precision_recall(_col(scores), _col(labels), threshold=threshold)
    assert (p[0], r[0]) == pytest.approx((precision, recall))


def test_precision_recall_agree_with_sklearn_with_unknown_labels_and_logits():
    rng = np.random.default_rng(7)
    b, c = 200, 5
    y = (rng.random((b, c)) < np.linspace(0.1, 0.5, c)).astype(float)
    logits = 2.0 * y + rng.normal(0, 1.5, (b, c)) - 1.0
    y_nan = y.copy()
    y_nan[rng.random((b, c)) < 0.25] = NAN
    r = multilabel_metrics(logits, y_nan, [f"c{k}" for k in range(c)], threshold=0.4, activation="sigmoid")
    pred = (1 / (1 + np.exp(-logits)) >= 0.4).astype(int)
    want_p, want_r = [], []
    for k in range(c):
        known = ~np.isnan(y_nan[:, k])
        want_p.append(precision_score(y_nan[known, k].astype(int), pred[known, k]))
        want_r.append(recall_score(y_nan[known, k].astype(int), pred[known, k]))
        assert r["per_class"][f"c{k}"]["precision"] == pytest.approx(want_p[-1], rel=1e-12)
        assert r["per_class"][f"c{k}"]["recall"] == pytest.approx(want_r[-1], rel=1e-12)
    # without unknown labels the macro means are sklearn's multi-label "macro" averages
    assert r["macro_precision"] == pytest.approx(np.mean(want_p))
    full = multilabel_metrics(logits, y, [f"c{k}" for k in range(c)], threshold=0.4, activation="sigmoid")
    assert full["macro_precision"] == pytest.approx(precision_score(y.astype(int), pred, average="macro"))
    assert full["macro_recall"] == pytest.approx(recall_score(y.astype(int), pred, average="macro"))


@pytest.mark.parametrize(
    "counts, kwargs, expected",
    [
        (
            {"Effusion": 5000, "Cardiomegaly": 1001, "Edema": 1000, "Mass": 100, "Hernia": 99, "Pneumoperitoneum": 0},
            {},
            {"head": ["Effusion", "Cardiomegaly"], "medium": ["Edema", "Mass"], "tail": ["Hernia", "Pneumoperitoneum"]},
        ),
        ({"x": 50, "y": 20, "z": 5}, {"head_min": 30, "tail_max": 10}, {"head": ["x"], "medium": ["y"], "tail": ["z"]}),
        ({}, {}, {"head": [], "medium": [], "tail": []}),
    ],
)
def test_frequency_groups(counts, kwargs, expected):
    assert frequency_groups(counts, **kwargs) == expected


def test_frequency_groups_errors():
    with pytest.raises(ValueError, match="tail_max"):
        frequency_groups({"a": 1}, head_min=10, tail_max=50)
    with pytest.raises(ValueError, match="'a' is negative"):
        frequency_groups({"a": -1})


def test_cumulative_metrics_accumulate_batches():
    y_pred, y = _worked_two_class()
    tp, ty = torch.as_tensor(y_pred), torch.as_tensor(y)
    ap = MultiLabelAPMetric(class_names=["a", "b"])
    ap(tp[:3], ty[:3])  # batch-first tensors
    ap([p for p in tp[3:]], [t for t in ty[3:]])  # lists of channel-first tensors
    assert ap.aggregate() == pytest.approx((34 / 45 + 1) / 2)
    np.testing.assert_allclose(ap.aggregate(average="none"), [34 / 45, 1.0])
    auc = MultiLabelAUCMetric(average="none")
    auc(tp, ty)
    np.testing.assert_allclose(auc.aggregate(), [0.5, 1.0])
    f1 = MultiLabelF1Metric(threshold=0.55)
    f1(tp, ty)
    # >= 0.55: class a predicted {0.9, 0.8, 0.7, 0.6}, TP 2 FP 2 FN 1 -> 4/7; class b predicted {0.6}, TP 1 FN 1 -> 2/3
    assert f1.aggregate() == pytest.approx((4 / 7 + 2 / 3) / 2)
    ap.reset()
    with pytest.raises(ValueError, match="no data"):
        ap.aggregate()
    with pytest.raises(ValueError, match="shape B C"):
        ap(torch.zeros(2, 3), torch.zeros(2, 2))
