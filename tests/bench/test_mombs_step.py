# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Epoch-time helpers on a plain ignite engine with a fake clock.

Worked case: every batch fetch advances the clock by 0.5 s and every step by 2 s; an epoch of 3 batches gives
``data_s`` 1.5 and ``iterations_s`` 6.0, the same again in the next epoch (the stopwatch resets at EPOCH_STARTED).
"""

from __future__ import annotations

import pytest
from ignite.engine import Engine

from scripts.bench.mombs_step import EpochStopwatch, TimedCall, run_epoch


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Batches:
    """Three batches; fetching each advances the clock by 0.5 s."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock

    def __len__(self) -> int:
        return 3

    def __iter__(self):
        for k in range(3):
            self.clock.now += 0.5
            yield k


def _engine(clock: _Clock) -> Engine:
    def step(engine, batch):
        clock.now += 2.0
        return batch

    return Engine(step)


def test_timed_call_adds_up_seconds():
    times = iter([0.0, 2.0, 5.0, 6.0])
    timed = TimedCall(lambda x: 2 * x, clock=lambda: next(times))
    assert timed(3) == 6 and timed(4) == 8
    assert (timed.seconds, timed.calls) == (3.0, 2)


def test_timed_call_counts_a_failing_call():
    def boom():
        raise RuntimeError("x")

    times = iter([1.0, 1.5])
    timed = TimedCall(boom, clock=lambda: next(times))
    with pytest.raises(RuntimeError):
        timed()
    assert (timed.seconds, timed.calls) == (0.5, 1)


def test_stopwatch_and_run_epoch():
    clock = _Clock()
    engine = _engine(clock)
    watch = EpochStopwatch(clock=clock)
    watch.attach(engine)
    data = _Batches(clock)
    engine.run(data, max_epochs=1)
    assert (watch.data_s, watch.iterations_s, watch.iterations) == (1.5, 6.0, 3)
    assert run_epoch(engine) >= 0.0
    assert engine.state.epoch == 2 and engine.state.iteration == 6
    assert (watch.data_s, watch.iterations_s, watch.iterations) == (1.5, 6.0, 3)  # epoch 2 only


def test_timing_defaults_follow_the_bundle_batch_size_4_and_assess_every_is_passed_through(tmp_path):
    import inspect

    from scripts.bench.mombs_step import epoch_time_benchmark, timing_overrides

    for function in (timing_overrides, epoch_time_benchmark):
        assert inspect.signature(function).parameters["batch_size"].default == 4  # paper Sec. 4.4, the bundle's
    out = timing_overrides("mombs", tmp_path / "data", tmp_path / "run", epochs=3)
    assert out["batch_size"] == 4 and "mombs_assessor#assess_every" not in out
    assert timing_overrides("mombs", tmp_path, tmp_path, 3, assess_every=2)["mombs_assessor#assess_every"] == 2
