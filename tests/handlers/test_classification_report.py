# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.handlers.classification_report: a hand-worked 3-class example (confusion matrix, accuracy,
precision / recall / F1, macro F1), the report written by a SupervisedEvaluator with the bundle's postprocessing
(JSON, PNG, predictions.csv row by row), MONAI's ConfusionMatrix as the key metric (micro sensitivity = accuracy;
its "accuracy" is not), and the errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import ConfusionMatrix, from_engine
from monai.transforms import Activationsd, AsDiscreted, Compose, CopyItemsd

from monai_ext.handlers import ClassificationReport
from monai_ext.handlers.classification_report import classification_metrics

CLASSES = ["normal", "pre-plus", "plus"]
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1]
Y_PRED = [0, 1, 0, 1, 2, 2, 2, 0, 2, 0]
# by hand: rows true, columns predicted
CM = [[2, 1, 0], [1, 1, 1], [1, 0, 3]]
# precision = diagonal / column sums (4, 2, 4); recall = diagonal / row sums (3, 3, 4)
PRECISION = [2 / 4, 1 / 2, 3 / 4]
RECALL = [2 / 3, 1 / 3, 3 / 4]
F1 = [4 / 7, 2 / 5, 3 / 4]  # 2PR / (P + R)
MACRO_F1 = 241 / 420  # (4/7 + 2/5 + 3/4) / 3
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_hand_worked_example():
    result = classification_metrics(Y_PRED, Y_TRUE, CLASSES)
    assert result["confusion_matrix"] == CM
    assert result["num_cases"] == 10
    assert result["accuracy"] == pytest.approx(0.6)
    assert result["macro_f1"] == pytest.approx(MACRO_F1)
    assert [c["class"] for c in result["per_class"]] == CLASSES
    assert [c["precision"] for c in result["per_class"]] == pytest.approx(PRECISION)
    assert [c["recall"] for c in result["per_class"]] == pytest.approx(RECALL)
    assert [c["f1"] for c in result["per_class"]] == pytest.approx(F1)
    assert [c["support"] for c in result["per_class"]] == [3, 3, 4]


def test_a_class_never_predicted_scores_zero():
    result = classification_metrics([0, 0, 1], [0, 2, 1], CLASSES)
    plus = result["per_class"][2]
    assert (plus["precision"], plus["recall"], plus["f1"], plus["support"]) == (0.0, 0.0, 0.0, 1)
    assert result["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)  # normal: P 1/2, R 1 -> F1 2/3


def _logits() -> torch.Tensor:
    """One row of logits per case whose argmax is Y_PRED (margins differ so that probabilities differ)."""
    logits = torch.zeros(len(Y_PRED), 3)
    for k, p in enumerate(Y_PRED):
        logits[k, p] = 1.0 + 0.25 * k
    return logits


def _evaluator(tmp_path, report: ClassificationReport) -> SupervisedEvaluator:
    data = [
        {"image": row, "label": torch.tensor([y]), "name": f"case{k}.png"}
        for k, (row, y) in enumerate(zip(_logits(), Y_TRUE))
    ]
    post = Compose(
        [
            Activationsd(keys="pred", softmax=True),
            CopyItemsd(keys="pred", names="probs"),
            AsDiscreted(keys=["pred", "label"], argmax=[True, False], to_onehot=3),
        ]
    )
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=4),
        network=torch.nn.Identity(),
        postprocessing=post,
        key_val_metric={
            "val_accuracy": ConfusionMatrix(metric_name="sensitivity", output_transform=from_engine(["pred", "label"]))
        },
        additional_metrics={
            "monai_accuracy": ConfusionMatrix(metric_name="accuracy", output_transform=from_engine(["pred", "label"]))
        },
        val_handlers=[report],
    )


def test_evaluator_writes_the_report(tmp_path):
    out = tmp_path / "eval"
    report = ClassificationReport(
        out, CLASSES, pred_key="probs", image_key="name", metric_names={"accuracy": "accuracy", "macro_f1": "f1"}
    )
    evaluator = _evaluator(tmp_path, report)
    evaluator.run()
    metrics = evaluator.state.metrics
    # micro-averaged sensitivity of one-hot single-label predictions is the fraction of correct cases
    assert metrics["val_accuracy"] == pytest.approx(0.6)
    # MONAI's "accuracy" averages (TP + TN) / N over classes: 1 - 2 * 4 errors / (3 classes * 10) -- not top-1
    assert metrics["monai_accuracy"] == pytest.approx(1 - 8 / 30)
    assert metrics["accuracy"] == pytest.approx(0.6) and metrics["f1"] == pytest.approx(MACRO_F1)

    result = json.loads((out / "classification_report.json").read_text())
    assert result["confusion_matrix"] == CM and result["num_cases"] == 10
    assert result["class_names"] == CLASSES
    assert [c["recall"] for c in result["per_class"]] == pytest.approx(RECALL)
    png = (out / "confusion_matrix.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5000

    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image", "true_label", "predicted_label", "prob_normal", "prob_pre-plus", "prob_plus"]
    assert len(rows) == 11
    probs = torch.softmax(_logits().double(), dim=1)
    for k, row in enumerate(rows[1:]):
        assert row[:3] == [f"case{k}.png", CLASSES[Y_TRUE[k]], CLASSES[Y_PRED[k]]]
        assert np.allclose([float(v) for v in row[3:]], probs[k].numpy(), atol=1e-6)
    assert not list(out.glob(".*tmp*"))


def test_index_labels_and_logits(tmp_path):
    report = ClassificationReport(tmp_path, CLASSES, activation="softmax")

    class _State:
        output = [{"pred": row, "label": torch.tensor(y)} for row, y in zip(_logits() * 5, Y_TRUE)]
        batch = {}
        metrics: dict = {}

    class _Engine:
        state = _State()

    report.collect(_Engine())
    report(_Engine())
    assert report.result["confusion_matrix"] == CM


def test_errors(tmp_path):
    report = ClassificationReport(tmp_path, CLASSES)

    class _Engine:
        class state:  # noqa: N801 -- stands in for engine.state
            output = [{"pred": torch.tensor([2.0, -1.0, 0.5]), "label": torch.tensor(0)}]
            batch: dict = {}

    with pytest.raises(ValueError, match="not probabilities summing to 1.*softmax"):
        report.collect(_Engine())
    _Engine.state.output = [{"pred": torch.tensor([0.2, 0.3, 0.5]), "label": torch.tensor(3)}]
    with pytest.raises(ValueError, match=r"label 3 is not a class index in \[0, 3\)"):
        report.collect(_Engine())
    _Engine.state.output = [{"pred": torch.tensor([0.2, 0.3, 0.5]), "label": torch.tensor([1.0, 1.0, 0.0])}]
    with pytest.raises(ValueError, match="neither a class index nor a one-hot row"):
        report.collect(_Engine())
    _Engine.state.output = [{"probs": torch.tensor([0.2, 0.8])}]
    with pytest.raises(KeyError, match=r"item\(s\) \[0\] of engine.state.output have no 'pred'"):
        report.collect(_Engine())
    with pytest.raises(ValueError, match="at least two classes"):
        ClassificationReport(tmp_path, ["only"])
    with pytest.raises(ValueError, match="metric_names keys"):
        ClassificationReport(tmp_path, CLASSES, metric_names={"auc": "auc"})
