# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.handlers.multilabel_metrics: the ignite wrappers in a plain ignite engine and as the key metric
of a MONAI SupervisedEvaluator, with hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.engines import SupervisedEvaluator
from monai.handlers import from_engine

from monai_ext.handlers.multilabel_metrics import MultiLabelAUC, MultiLabelAveragePrecision, MultiLabelF1

NAN = math.nan


def _worked_two_class():
    """Class a: the 34/45 AP ranking, AUROC 3/6; class b: separable (AP 1, AUROC 1)."""
    y_pred = np.array([[0.9, 0.1], [0.8, 0.6], [0.7, 0.5], [0.6, 0.3], [0.5, 0.2]])
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], dtype=float)
    return y_pred, y


def test_handlers_in_ignite_engine():
    y_pred, y = _worked_two_class()
    y[3, 1] = NAN  # row 3 of class b unknown: b keeps AUROC 1 and AP 1
    batches = [(torch.as_tensor(y_pred[s]), torch.as_tensor(y[s])) for s in (slice(0, 2), slice(2, 5))]
    engine = Engine(lambda e, batch: {"pred": batch[0], "label": batch[1]})
    to_pair = from_engine(["pred", "label"])
    MultiLabelAveragePrecision(class_names=["a", "b"], output_transform=to_pair).attach(engine, "map")
    MultiLabelAUC(average="none", output_transform=to_pair).attach(engine, "auc")
    MultiLabelF1(output_transform=to_pair).attach(engine, "f1")
    engine.run(batches, max_epochs=1)
    # class a: ranking 1 0 1 0 1 -> AP (1 + 2/3 + 3/5) / 3 = 34/45; AUROC 3 of 6 pairs; F1 at 0.5: TP 3 FP 2 -> 6/8
    assert engine.state.metrics["map"] == pytest.approx((34 / 45 + 1) / 2)
    np.testing.assert_allclose(engine.state.metrics["auc"], [0.5, 1.0])
    assert engine.state.metrics["f1"] == pytest.approx((0.75 + 1.0) / 2)


def test_handler_as_key_metric_of_supervised_evaluator():
    # the "network" passes the scores through, so the evaluator's pred is y_pred
    y_pred, y = _worked_two_class()
    data = [{"image": torch.as_tensor(p, dtype=torch.float32), "label": torch.as_tensor(t)} for p, t in zip(y_pred, y)]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=torch.nn.Identity(),
        key_val_metric={"val_map": MultiLabelAveragePrecision(output_transform=from_engine(["pred", "label"]))},
    )
    evaluator.run()
    assert evaluator.state.metrics["val_map"] == pytest.approx((34 / 45 + 1) / 2)
    assert evaluator.state.best_metric == pytest.approx((34 / 45 + 1) / 2)


def test_handler_options_are_checked():
    with pytest.raises(ValueError, match="threshold"):
        MultiLabelF1(threshold=1.5)
    with pytest.raises(ValueError, match="weighted"):
        MultiLabelAUC(average="weighted")
