# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Single-label accuracy against hand counts, and the MONAI "accuracy" it replaces."""

from __future__ import annotations

import pytest
import torch
from monai.metrics import ConfusionMatrixMetric

from monai_ext.metrics import ClassificationAccuracyMetric, class_indices


def test_accuracy_is_the_fraction_of_correct_argmax_over_batches_and_label_forms():
    metric = ClassificationAccuracyMetric()
    pred = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    metric(pred, torch.tensor([0, 2, 2, 1]))  # 2 of 4 correct
    metric(torch.tensor([[0.1, 0.1, 0.8]]), torch.tensor([[0.0, 0.0, 1.0]]))  # one-hot, correct
    assert metric.aggregate().item() == pytest.approx(3 / 5)
    # decollated lists, as from_engine gives them
    metric.reset()
    metric([p for p in pred], [t for t in torch.tensor([0, 1, 2, 0])])
    assert metric.aggregate().item() == pytest.approx(1.0)


def test_monai_confusion_matrix_accuracy_is_not_top1_accuracy():
    pred = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = torch.tensor([0, 2, 2, 1])
    ours = ClassificationAccuracyMetric()
    ours(pred, labels)
    monai_acc = ConfusionMatrixMetric(metric_name="accuracy")
    onehot = torch.nn.functional.one_hot
    monai_acc(onehot(pred.argmax(1), 3), onehot(labels, 3))
    value = float(monai_acc.aggregate()[0])
    assert ours.aggregate().item() == pytest.approx(0.5)
    assert value == pytest.approx(1 - 2 * (1 - 0.5) / 3)  # one-vs-rest mean, as the module docstring says


def test_class_indices_refuses_bad_labels():
    assert class_indices(torch.tensor([[1.0], [2.0]])).tolist() == [1, 2]
    with pytest.raises(ValueError, match="exactly one"):
        class_indices(torch.tensor([[1.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="shape"):
        class_indices(torch.zeros(2, 1, 3))
