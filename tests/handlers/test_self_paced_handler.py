# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""SelfPacedLossWeights: the sampler's weights of the batch's samples reach the trainer, logged once per epoch."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import torch

from monai_ext.handlers import SelfPacedLossWeights
from monai_ext.samplers import MoMBSSampler

LOSS = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]  # lambda_0 = median = 0.875


class _Writer:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))


def _engine(epoch: int, index: list[int]) -> SimpleNamespace:
    return SimpleNamespace(state=SimpleNamespace(epoch=epoch, output={"index": torch.tensor(index)}))


def test_writes_the_batch_weights_after_the_pivot_and_logs_once_per_epoch(caplog):
    sampler = MoMBSSampler(range(6), batch_size=2, strategy="scl_hard", pivot_epoch=2)
    sampler.update_scores(torch.tensor(LOSS), None, epoch=1)
    writer = _Writer()
    handler = SelfPacedLossWeights(sampler, summary_writer=writer, name="spl_test")
    before = _engine(1, [0, 5])
    handler(before)
    assert "loss_weight" not in before.state.output  # weight 1 before the pivot
    with caplog.at_level(logging.INFO, logger="spl_test"):
        for index in ([5, 0], [3, 2]):
            engine = _engine(2, index)
            handler(engine)
            expected = [1.0 if LOSS[i] < 0.875 else 0.0 for i in index]
            assert engine.state.output["loss_weight"].tolist() == expected
    assert len([r for r in caplog.records if "lambda=0.875" in r.getMessage()]) == 1
    assert "50.0% of 6 samples have a weight > 0" in caplog.text
    assert writer.scalars == [("self_paced/lambda", 0.875, 2), ("self_paced/fraction_weighted", 0.5, 2)]


def test_other_strategies_write_nothing():
    sampler = MoMBSSampler(range(6), batch_size=2, strategy="mombs", pivot_epoch=1)
    sampler.update_scores(torch.tensor(LOSS), None)
    engine = _engine(3, [0, 1])
    SelfPacedLossWeights(sampler)(engine)
    assert set(engine.state.output) == {"index"}


def test_log_dir_gets_tensorboard_events_only_when_there_are_weights(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sampler = MoMBSSampler(range(6), batch_size=2, strategy="scl_linear", pivot_epoch=2)
    sampler.update_scores(torch.tensor(LOSS), None, epoch=1)
    handler = SelfPacedLossWeights(sampler, log_dir=tmp_path / "tb")
    handler(_engine(1, [0, 1]))
    assert not (tmp_path / "tb").exists()  # before the pivot: nothing to log, no writer
    handler(_engine(2, [0, 1]))
    handler.summary_writer.flush()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    (lam,) = events.Scalars("self_paced/lambda")
    (fraction,) = events.Scalars("self_paced/fraction_weighted")
    assert lam.step == 2 and abs(lam.value - 0.875) < 1e-6
    assert abs(fraction.value - 3 / 6) < 1e-6  # linear: v > 0 only for the losses 0.25, 0.5, 0.75 below 0.875
