# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS epoch-time benchmark: a training epoch of the bundle with MoMBS against the same epoch with random sampling.

:func:`epoch_time_benchmark` builds the ``covid_ct_mombs_segmentation`` bundle's training workflow twice in one
process (:func:`monai_ext.bundle.workflow.bundle_workflow` on its ``train.json``: the bundle's U-Net, loss and data
pipeline): once with ``sampling_strategy="mombs"`` (so the bundle's ``MoMBSAssessor`` runs its ``K`` disturbances
and the difficulty CSV and map are written every epoch) and once with ``sampling_strategy="random"`` (the assessor,
always attached, skips its passes and records ``NaN``). With ``pivot_epoch = 1`` every epoch after the first is
planned by MoMBS. Each workflow runs one warm-up epoch (random order for both: no scores yet), then the two
alternate epoch by epoch (:func:`scripts.bench.nvum_step.time_interleaved`), so that a slow phase of a shared machine
hits both. Validation is switched off (identical for both and not part of an epoch of sampling); the per-epoch
checkpoint, LR schedule, logging and the MoMBS handler stay on, and so does the final ``last.pt`` the bundle writes
when a run completes (each timed epoch is one ``run``, for both variants alike).

Per epoch it records the wall time of the whole epoch (:func:`run_epoch`) and, with :class:`EpochStopwatch`, the time
spent fetching batches (loading and transforms, ``num_workers = 0``), inside iterations (forward, loss, backward,
optimizer step and, for MoMBS, the assessor) and, for MoMBS, inside the assessor's ``K`` no-grad decoder re-runs
(:meth:`monai_ext.handlers.mombs_assessor.MoMBSAssessor.assess`).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events
from monai.engines import Workflow

from monai_ext.bundle.workflow import bundle_workflow
from scripts.bench.bundles import TRAIN, shipped_network_def
from scripts.bench.mombs_bundle import BUNDLE_DIR, bundle_overrides
from scripts.bench.nvum_step import time_interleaved

__all__ = ["EPOCH_TARGET_RATIO", "TimedCall", "EpochStopwatch", "run_epoch", "timing_overrides", "epoch_time_benchmark"]

logger = logging.getLogger(__name__)

EPOCH_TARGET_RATIO = 1.35  # MoMBS issue: epoch time with MoMBS (K = 8) / epoch time with random sampling
_VARIANTS = ("mombs", "random")


class TimedCall:
    """A callable that calls ``function`` and adds the seconds each call took to :attr:`seconds`.

    Args:
        function: the wrapped callable.
        clock: seconds as a float, default ``time.perf_counter``.
    """

    def __init__(self, function: Callable[..., Any], clock: Callable[[], float] = time.perf_counter) -> None:
        self.function = function
        self.clock = clock
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = self.clock()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += self.clock() - start
            self.calls += 1


class EpochStopwatch:
    """Ignite handler adding up, per epoch, the seconds spent fetching batches and inside iterations.

    ``data_s``: from ``GET_BATCH_STARTED`` to ``GET_BATCH_COMPLETED`` (the ``DataLoader``'s ``next``: loading and
    transforms when ``num_workers = 0``). ``iterations_s``: from ``ITERATION_STARTED`` to ``ITERATION_COMPLETED`` as
    seen by this handler (attach it last: it then covers the step and the other handlers' iteration work). Both are
    reset at ``EPOCH_STARTED``.

    Args:
        clock: seconds as a float, default ``time.perf_counter``.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.data_s = 0.0
        self.iterations_s = 0.0
        self.iterations = 0
        self._start = {"data": 0.0, "iteration": 0.0}

    def attach(self, engine: Engine) -> None:
        """Register on the six events of ``engine``."""
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.GET_BATCH_STARTED, self._mark, "data")
        engine.add_event_handler(Events.GET_BATCH_COMPLETED, self._stop, "data")
        engine.add_event_handler(Events.ITERATION_STARTED, self._mark, "iteration")
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._stop, "iteration")

    def reset(self, engine: Engine | None = None) -> None:
        """Zero the counters."""
        self.data_s, self.iterations_s, self.iterations = 0.0, 0.0, 0

    def _mark(self, engine: Engine, what: str) -> None:
        self._start[what] = self.clock()

    def _stop(self, engine: Engine, what: str) -> None:
        elapsed = self.clock() - self._start[what]
        if what == "data":
            self.data_s += elapsed
        else:
            self.iterations_s += elapsed
            self.iterations += 1


def run_epoch(trainer: Engine) -> float:
    """Run one more epoch of a MONAI trainer or an ignite ``Engine`` that has run before (``max_epochs`` raised by
    one, then ``run`` on the same data); returns its wall time in seconds, including the ``STARTED``/``COMPLETED``
    and epoch-level handlers."""
    trainer.state.max_epochs = int(trainer.state.epoch) + 1
    start = time.perf_counter()
    if isinstance(trainer, Workflow):
        trainer.run()  # a MONAI workflow runs on its own data loader
    else:
        trainer.run(trainer.state.dataloader, max_epochs=trainer.state.max_epochs)
    return time.perf_counter() - start


def timing_overrides(
    strategy: str,
    dataset_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    epochs: int,
    image_size: int = 128,
    batch_size: int = 4,
    num_disturbances: int = 8,
    seed: int = 0,
    cache: bool = False,
    bundle_dir: str | os.PathLike = BUNDLE_DIR,
    assess_every: int = 1,
) -> dict[str, Any]:
    """Overrides of one timed workflow: :func:`scripts.bench.mombs_bundle.bundle_overrides` with ``pivot_epoch = 1``
    (run on the bundle's own ``train.json``, so with its shipped ``SplitUNet``), plus validation switched off
    (``val_interval`` beyond the last epoch: the ``ValidationHandler`` never fires).

    Args:
        strategy: ``"mombs"`` or ``"random"`` (any :class:`monai_ext.samplers.SamplingStrategy`).
        dataset_dir: the ``covid_medseg`` demo folder.
        run_dir: the workflow's checkpoints and outputs.
        epochs: the bundle's ``epochs`` (the cosine schedule's length; the epochs run are driven by
            :func:`run_epoch`).
        image_size: network input side, default 128 (the demo's native size).
        batch_size: default 4 (the bundle's ``batch_size``, paper Sec. 4.4).
        num_disturbances: ``K``, default 8.
        seed: training seed (and split seed), default 0.
        cache: ``CacheDataset`` instead of the bundle's ``Dataset``; default ``False`` (the bundle's pipeline).
        bundle_dir: the bundle folder.
        assess_every: the assessor's ``assess_every`` (a documented deviation from the paper: every ``n``-th used
            epoch assessed, the others carry each sample's last uncertainty over); default 1 (off, the bundle's).
    """
    out = bundle_overrides(strategy, seed, dataset_dir, run_dir, image_size, epochs, 1, batch_size, num_disturbances,
                           network_def=shipped_network_def(bundle_dir), cache=cache)  # fmt: skip
    out["val_interval"] = int(epochs) + 1  # never due: validation is not part of an epoch of sampling
    if int(assess_every) != 1:
        out["mombs_assessor#assess_every"] = int(assess_every)
    return out


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def epoch_time_benchmark(
    dataset_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    image_size: int = 128,
    batch_size: int = 4,
    num_disturbances: int = 8,
    warmup: int = 1,
    repeats: int = 3,
    seed: int = 0,
    cache: bool = False,
    bundle_dir: str | os.PathLike = BUNDLE_DIR,
    assess_every: int = 1,
) -> dict[str, Any]:
    """Median epoch time of the bundle with MoMBS and with random sampling, their ratio and a breakdown.

    Both workflows (:func:`timing_overrides`) are initialised in this process, then run ``warmup`` untimed and
    ``repeats`` timed epochs each, alternating (round ``r`` rotates the order, see
    :func:`scripts.bench.nvum_step.time_interleaved`). Threads are whatever ``torch.set_num_threads`` set before.

    Args:
        dataset_dir: the ``covid_medseg`` demo folder.
        work_dir: holds ``mombs/`` and ``random/`` (checkpoints, difficulty files, TensorBoard logs).
        image_size: network input side in pixels, default 128.
        batch_size: default 4 (the bundle's ``batch_size``, paper Sec. 4.4).
        num_disturbances: ``K`` of the assessor, default 8.
        warmup: untimed epochs per variant, >= 1 (the first epoch is random for both), default 1.
        repeats: timed epochs per variant, default 3.
        seed: training and split seed, default 0.
        cache: ``CacheDataset`` (see :func:`timing_overrides`), default ``False``.
        bundle_dir: the bundle folder.
        assess_every: see :func:`timing_overrides`; default 1 (every epoch assessed, the paper).

    Returns:
        ``{"settings", "epoch_s": {variant: [s]}, "median_s": {variant: s}, "ratio": mombs / random (ratio of the
        medians), "ratio_paired": median over rounds of the round's mombs / random (the two epochs of a round run
        back to back, so a slow phase of a shared machine cancels out), "target_ratio": 1.35,
        "breakdown": {variant: {"data_s", "iterations_s", "assessor_s", "outside_s"}},
        "assessor_share": assessor / mombs epoch, "ratio_without_assessor": (mombs - assessor) / random}``;
        breakdown entries are medians over the timed epochs, ``outside_s`` = epoch - data - iterations (epoch-level
        work: planning, difficulty files, checkpoint, logging).

    Raises:
        ValueError: ``warmup`` < 1 or ``repeats`` < 1.
    """
    if int(warmup) < 1 or int(repeats) < 1:
        raise ValueError(f"warmup and repeats must be >= 1, got warmup={warmup}, repeats={repeats}.")
    epochs = int(warmup) + int(repeats)
    records: dict[str, list[dict[str, float]]] = {name: [] for name in _VARIANTS}
    steps: dict[str, Callable[[], None]] = {}
    info: dict[str, Any] = {}
    for name in _VARIANTS:
        overrides = timing_overrides(name, dataset_dir, Path(work_dir) / name, epochs, image_size, batch_size,
                                     num_disturbances, seed, cache, bundle_dir, assess_every)  # fmt: skip
        workflow = bundle_workflow(bundle_dir, TRAIN, "train", **overrides)
        workflow.initialize()
        trainer = workflow.parser.get_parsed_content("train#trainer")
        assessor = workflow.parser.get_parsed_content("mombs_assessor") if name == "mombs" else None
        timed = None
        if assessor is not None:
            timed = TimedCall(assessor.assess)
            assessor.assess = timed  # the assessor calls self.assess: the instance attribute is timed
        stopwatch = EpochStopwatch()
        stopwatch.attach(trainer)
        info[name] = {"n_train": len(workflow.parser.get_parsed_content("train#datalist")),
                      "iterations_per_epoch": int(trainer.state.epoch_length)}  # fmt: skip

        def step(trainer=trainer, stopwatch=stopwatch, timed=timed, name=name) -> None:
            before = timed.seconds if timed is not None else 0.0
            total = run_epoch(trainer)
            assess = (timed.seconds - before) if timed is not None else 0.0
            data, iterations = stopwatch.data_s, stopwatch.iterations_s
            records[name].append({"epoch_s": total, "data_s": data, "iterations_s": iterations, "assessor_s": assess,
                                  "outside_s": total - data - iterations})  # fmt: skip
            logger.info(f"MoMBS epoch time: {name} epoch {trainer.state.epoch}: {total:.2f} s, assessor {assess:.2f} s")

        steps[name] = step
    time_interleaved(steps, warmup=int(warmup), repeats=int(repeats))
    timed_records = {name: recs[int(warmup) :] for name, recs in records.items()}
    epoch_s = {name: [r["epoch_s"] for r in recs] for name, recs in timed_records.items()}
    median = {name: _median(values) for name, values in epoch_s.items()}
    breakdown = {
        name: {key: _median([r[key] for r in recs]) for key in ("data_s", "iterations_s", "assessor_s", "outside_s")}
        for name, recs in timed_records.items()
    }
    without = _median([r["epoch_s"] - r["assessor_s"] for r in timed_records["mombs"]])
    paired = _median([m / r for m, r in zip(epoch_s["mombs"], epoch_s["random"])])
    return {
        "settings": {
            "image_size": int(image_size), "batch_size": int(batch_size), "num_disturbances": int(num_disturbances),
            "warmup": int(warmup), "repeats": int(repeats), "seed": int(seed), "pivot_epoch": 1,
            "dataset": "CacheDataset" if cache else "Dataset (the bundle's)", "num_workers": 0,
            "final_checkpoint": "last.pt written after every timed epoch (each epoch is one run)",
            "network": "the bundle's SplitUNet", "assess_every": int(assess_every), **info["mombs"],
        },  # fmt: skip
        "epoch_s": epoch_s,
        "median_s": median,
        "ratio": median["mombs"] / median["random"],
        "ratio_paired": paired,
        "target_ratio": EPOCH_TARGET_RATIO,
        "breakdown": breakdown,
        "assessor_share": breakdown["mombs"]["assessor_s"] / median["mombs"],
        "ratio_without_assessor": without / median["random"],
    }
