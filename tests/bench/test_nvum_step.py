# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import math

import pytest
import torch

from monai_ext.handlers.ema import EMATeacher
from monai_ext.losses import NVUMLoss
from scripts.bench.nvum_step import make_train_step, step_time_benchmark, time_interleaved


def test_time_interleaved_rotates_order_and_times_each_call():
    calls: list[str] = []
    ticks = iter(range(100))  # the clock advances by one per reading -> every timed call lasts 1 tick
    steps = {name: (lambda n=name: calls.append(n)) for name in "abc"}
    times = time_interleaved(steps, warmup=1, repeats=3, clock=lambda: float(next(ticks)))
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert times == {"a": [1.0, 1.0, 1.0], "b": [1.0, 1.0, 1.0], "c": [1.0, 1.0, 1.0]}


def test_time_interleaved_calls_sync_around_each_timed_call():
    events: list[str] = []
    time_interleaved({"a": lambda: events.append("step")}, warmup=1, repeats=2, sync=lambda: events.append("s"))
    assert events == ["step", "s", "step", "s", "s", "step", "s"]


@pytest.mark.parametrize(
    "steps, kwargs, match",
    [
        ({}, {}, "at least one step"),
        ({"a": int}, {"repeats": 0}, "repeats >= 1"),
        ({"a": int}, {"warmup": -1}, "warmup must be >= 0"),
    ],
)
def test_time_interleaved_rejects_bad_settings(steps, kwargs, match):
    with pytest.raises(ValueError, match=match):
        time_interleaved(steps, **kwargs)


def _toy_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))


def test_make_train_step_bce_updates_weights_and_returns_loss():
    torch.manual_seed(0)
    net = _toy_net()
    torch.nn.init.zeros_(net[1].weight), torch.nn.init.zeros_(net[1].bias)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    images, labels = torch.ones(2, 3, 4, 4), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    step = make_train_step(net, opt, torch.nn.BCEWithLogitsLoss(reduction="none"), images, labels)
    assert step() == pytest.approx(math.log(2.0))  # zero logits: BCE = log 2 for every entry
    # d loss / d bias = mean over B and C of (sigmoid(0) - y) / ... = (0.5 - 1) / 2 and (0.5 - 0) / 2 per class
    assert net[1].bias.detach().tolist() == pytest.approx([0.25, -0.25])


def test_make_train_step_feeds_nvum_index_and_teacher_logits():
    net = _toy_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    images, labels = torch.rand(2, 3, 4, 4), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    teacher = EMATeacher(net, decay=0.5)
    loss = NVUMLoss(5, 2, [0.5, 0.5], mode="official", reduction="none")
    index = torch.tensor([3, 1])
    step = make_train_step(net, opt, loss, images, labels, {"index": index}, teacher=teacher)
    assert math.isfinite(step())
    assert loss.num_updates.tolist() == [0, 1, 0, 1, 0]  # rows 1 and 3 written once
    assert teacher.num_updates == 1  # one EMA update after the optimizer step


def test_step_time_benchmark_structure_on_toy_net():
    result = step_time_benchmark(
        _toy_net(), batch_size=2, image_size=4, num_classes=2, num_samples=10, warmup=0, repeats=4
    )
    variants = ["bce", "paper", "official_loss", "official_teacher"]
    assert list(result["times_s"]) == variants
    assert all(len(result["times_s"][v]) == 4 for v in variants)
    assert result["batch_shape"] == [2, 3, 4, 4]
    assert result["ratio_to_bce"]["bce"] == 1.0
    assert result["target_ratio"] == 1.03
