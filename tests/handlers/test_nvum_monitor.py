# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""NVUMMonitor: the two gradients of NVUM's loss, checked against Eq. 4 of the paper worked in closed form."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents

from monai_ext.handlers import NVUMMonitor
from monai_ext.handlers.nvum_monitor import MONITOR_COLUMNS
from monai_ext.losses import NVUMLoss


def _loss(mode: str = "paper", reg_weight: float = 2.0) -> NVUMLoss:
    loss = NVUMLoss(5, 3, prior=[0.2, 0.5, 0.1], reg_weight=reg_weight, mode=mode, reduction="mean")
    loss.memory.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.2, 3.0], [0.0, 0.0, 0.0], [-1.0, 4.0, 2.0], [0, 0, 0]]))
    loss.num_updates[:4] = 1  # row 4 never visited: left out of the memory range
    return loss


def test_paper_mode_gradients_follow_eq4():
    loss = _loss("paper", reg_weight=2.0)
    z = torch.tensor([[0.5, -1.0, 2.0], [-0.3, 0.8, 0.1]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    index = torch.tensor([0, 3])
    record = NVUMMonitor(loss).measure(z, y, index)
    # Eq. 4 with B = 2, C = 3 and the batch mean: dBCE/dz = (p - y) / (B C);
    # d(w * mean_i log(1 - sigmoid(t_i . p_i)))/dz_ic = -w / B * sigmoid(t_i . p_i) * t_ic * p_ic (1 - p_ic)
    p = torch.sigmoid(z)
    t = loss.memory[index].double()
    g_bce = (p - y) / 6.0
    s = torch.sigmoid((t * p).sum(1, keepdim=True))
    g_reg = -2.0 / 2.0 * s * t * p * (1 - p)
    assert record["bce_grad_norm"] == pytest.approx(float(g_bce.norm()), rel=1e-6)
    assert record["reg_grad_norm"] == pytest.approx(float(g_reg.norm()), rel=1e-6)
    assert record["grad_ratio"] == pytest.approx(float(g_reg.norm() / g_bce.norm()), rel=1e-6)
    assert record["memory_min"] == -2.0 and record["memory_max"] == 4.0  # rows 0-3, not the unvisited row 4
    assert record["memory_abs_mean"] == pytest.approx(float(loss.memory[:4].abs().mean()))
    assert record["memory_dot_p_mean"] == pytest.approx(float((t * p).sum(1).mean()), rel=1e-6)
    assert record["sigmoid_dot_mean"] == pytest.approx(float(s.mean()), rel=1e-6)
    assert record["reg"] == pytest.approx(float(torch.nn.functional.logsigmoid(-(t * p).sum(1)).mean()), rel=1e-6)


def test_detached_regulariser_has_no_gradient_and_the_default_official_one_has():
    z = torch.tensor([[0.5, -1.0, 2.0]])
    y = torch.tensor([[1.0, 0.0, 1.0]])
    detached = NVUMLoss(5, 3, prior=[0.2, 0.5, 0.1], mode="official", detach_reg_prob=True)
    detached.memory.fill_(3.0)
    assert NVUMMonitor(detached).measure(z, y, torch.tensor([1]))["reg_grad_norm"] == 0.0
    official = NVUMLoss(5, 3, prior=[0.2, 0.5, 0.1], mode="official")
    official.memory.fill_(3.0)
    assert NVUMMonitor(official).measure(z, y, torch.tensor([1]))["reg_grad_norm"] > 1e-3


def _engine(loss: NVUMLoss, batches: list[dict]) -> Engine:
    def step(engine, batch):
        engine.state.output = batch
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        return batch

    engine = Engine(step)
    engine.register_events(*IterationEvents)
    return engine


def test_attached_monitor_records_every_interval_and_writes_the_csv(tmp_path):
    loss = _loss()
    batch = {"pred": torch.zeros(2, 3), "label": torch.ones(2, 3), "index": torch.tensor([0, 1])}
    engine = _engine(loss, [batch])
    monitor = NVUMMonitor(loss, interval=2, output_file=tmp_path / "m" / "nvum_monitor.csv")
    monitor.attach(engine)
    engine.run([batch] * 5, max_epochs=2)  # iterations 1..10: records at 1, 3, 5, 7, 9
    assert [r["iteration"] for r in monitor.records] == [1, 3, 5, 7, 9]
    with open(tmp_path / "m" / "nvum_monitor.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == MONITOR_COLUMNS and len(rows) == 5
    assert [float(r["epoch"]) for r in rows] == [1, 1, 1, 2, 2]
    # zero logits: p = 0.5, BCE gradient (0.5 - 1) / (2 * 3) per entry, norm sqrt(6) / 12
    assert float(rows[0]["bce_grad_norm"]) == pytest.approx(math.sqrt(6) / 12, rel=1e-6)


def test_attach_does_nothing_for_a_loss_without_memory_or_when_disabled(tmp_path):
    engine = _engine(_loss(), [])
    NVUMMonitor(torch.nn.BCEWithLogitsLoss(), output_file=tmp_path / "x.csv").attach(engine)
    NVUMMonitor(_loss(), output_file=tmp_path / "y.csv", enabled=False).attach(engine)
    assert not engine.has_event_handler(lambda e: None, Events.COMPLETED)
    assert not engine._event_handlers[IterationEvents.LOSS_COMPLETED]
    with pytest.raises(ValueError, match="interval must be >= 1"):
        NVUMMonitor(_loss(), interval=0)
