# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS epoch-time benchmark on the ``deeplesion_mombs_detection`` bundle (issue 14): MoMBS against random sampling.

:func:`epoch_time_benchmark` builds the bundle's training workflow (``train.json`` + ``demo.json``, through
:func:`monai_ext.bundle.workflow.bundle_workflow`; the shipped ``network_def``, a ResNet-18 FPN
:class:`monai_ext.networks.SplitRetinaNet` with the overlay's ``fpn_channels``) once per variant of
:data:`VARIANTS` in one process:

- ``random``: ``sampling_strategy="random"`` (the assessor, always attached, skips its passes);
- ``mombs``: MoMBS with ``K`` disturbed re-runs of the classification head on the FPN levels (``disturb_at="fpn"``,
  the bundle's default);
- ``mombs_stem``: MoMBS with the paper-style split point (``disturb_at="stem"``: the disturbance after the
  backbone's first block, so each of the ``K`` passes re-runs the rest of the backbone, the FPN and the head);
- ``mombs_coarse``: as ``mombs`` with the stride-4 FPN level left out of the ``K`` re-runs (``uncertainty_levels``);
- ``mombs_undisturbed``: the free mode, the undisturbed entropy of the training forward (``num_disturbances=1``,
  ``disturbance_ratio=0``: one head pass, multipliers exactly 1).

With ``pivot_epoch = 1`` every epoch is planned by the variant's strategy (the first from no scores, so at random).
Each workflow runs ``warmup`` untimed epochs, then the variants alternate epoch by epoch
(:func:`scripts.bench.nvum_step.time_interleaved`, the order rotated every round), so that a slow phase of a shared
machine hits all of them. Validation is off (``val_interval`` beyond the last epoch); the checkpoint, LR schedule,
logging, MoMBS handler (scores, difficulty CSV and PNG) and the final ``last.pt`` stay on, as in
:mod:`scripts.bench.mombs_step`, whose :class:`~scripts.bench.mombs_step.EpochStopwatch`,
:class:`~scripts.bench.mombs_step.TimedCall` and :func:`~scripts.bench.mombs_step.run_epoch` do the timing.

:func:`head_level_times` times the classification head on each FPN level separately (the share of the stride-4
level in the ``K`` passes of ``mombs``).
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.apps.detection.utils.detector_utils import preprocess_images

from monai_ext.bundle.workflow import bundle_parser, bundle_workflow
from monai_ext.data.deeplesion import deeplesion_subset
from monai_ext.handlers.mombs_assessor import decoder_inputs, frozen_statistics
from monai_ext.networks.split import SplitFeatures
from scripts.bench.bundles import BUNDLES_DIR, DEMO_TRAIN, run_folders
from scripts.bench.mombs_step import EpochStopwatch, TimedCall, run_epoch
from scripts.bench.nvum_step import time_interleaved

__all__ = [
    "DEEPLESION_BUNDLE",
    "EPOCH_TARGET_RATIO",
    "VARIANTS",
    "BREAKDOWN_KEYS",
    "training_subset",
    "timing_overrides",
    "time_event_handler",
    "head_level_times",
    "epoch_time_benchmark",
    "results_table",
]

logger = logging.getLogger(__name__)

DEEPLESION_BUNDLE = BUNDLES_DIR / "deeplesion_mombs_detection"
EPOCH_TARGET_RATIO = 1.5  # issue 14: epoch time with MoMBS (K = 8, head-only) / epoch time with random sampling
TARGET_VARIANT = "mombs"
BASELINE = "random"
VARIANTS: dict[str, dict[str, Any]] = {
    "random": {"sampling_strategy": "random"},
    "mombs": {"sampling_strategy": "mombs", "disturb_at": "fpn"},
    "mombs_stem": {"sampling_strategy": "mombs", "disturb_at": "stem"},
    "mombs_coarse": {"sampling_strategy": "mombs", "disturb_at": "fpn", "uncertainty_levels": [1, 2, 3]},
    "mombs_undisturbed": {"sampling_strategy": "mombs", "disturb_at": "fpn", "num_disturbances": 1,
                          "disturbance_ratio": 0.0},
}  # fmt: skip
"""Config overrides of each timed variant (``num_disturbances`` of ``mombs``, ``mombs_stem`` and ``mombs_coarse``: the
``K`` of :func:`epoch_time_benchmark`). ``mombs_coarse`` leaves the stride-4 FPN level out of the ``K`` re-runs
(``uncertainty_levels``); the free mode is ``disturbance_ratio`` 0 with one pass."""
BREAKDOWN_KEYS = ("data_s", "train_step_s", "assessor_s", "handler_s", "plan_s", "planning_s", "outside_s")
"""Per-epoch parts recorded by :func:`epoch_time_benchmark` (see its Returns)."""


def training_subset(parser_or_items: Any, num_images: int, seed: int = 0) -> list[dict]:
    """``num_images`` key images of the training datalist drawn at random (``deeplesion_subset(by="image")``),
    re-indexed ``0..num_images-1``.

    Args:
        parser_or_items: a bundle ``ConfigParser`` (its ``train#datalist`` is built) or a datalist.
        num_images: how many, >= 1 and at most the datalist's length.
        seed: seed of the draw, default 0.

    Raises:
        ValueError: ``num_images`` < 1 or more than the datalist holds (the message gives both numbers).
    """
    items = parser_or_items
    if hasattr(parser_or_items, "get_parsed_content"):
        items = parser_or_items.get_parsed_content("train#datalist")
    items = list(items)
    if not 1 <= int(num_images) <= len(items):
        raise ValueError(
            f"num_images must lie in 1..{len(items)} (the training key images of the demo data), got {num_images}; "
            "write a larger demo (size) or ask for fewer images."
        )
    return deeplesion_subset(items, int(num_images) / len(items), seed, by="image")


def timing_overrides(
    variant: str,
    dataset_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    epochs: int,
    num_disturbances: int = 8,
    batch_size: int = 4,
    seed: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Overrides of one timed workflow on ``train.json`` + ``demo.json``.

    ``dataset_dir``, ``ckpt_dir = run_dir/models``, ``output_dir = run_dir/eval``, ``epochs``, ``pivot_epoch = 1``,
    ``val_interval = epochs + 1`` (validation never runs), ``num_workers = 0``, ``batch_size``, ``seed``, the
    variant's :data:`VARIANTS` entry (``mombs`` and ``mombs_stem`` with ``num_disturbances = K``), then ``extra``
    (e.g. ``train#datalist``, a smaller ``network_def`` for tests).

    Raises:
        KeyError: an unknown ``variant`` (the message lists :data:`VARIANTS`).
        ValueError: ``epochs`` < 1 or ``num_disturbances`` < 1.
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown variant {variant!r}; choose from {sorted(VARIANTS)}.")
    if int(epochs) < 1 or int(num_disturbances) < 1:
        raise ValueError(f"epochs and num_disturbances must be >= 1, got {epochs} and {num_disturbances}.")
    out: dict[str, Any] = {
        "dataset_dir": str(dataset_dir),
        **run_folders(run_dir),
        "epochs": int(epochs),
        "pivot_epoch": 1,
        "val_interval": int(epochs) + 1,
        "num_workers": 0,
        "batch_size": int(batch_size),
        "seed": int(seed),
    }
    if VARIANTS[variant]["sampling_strategy"] != "random":
        out["num_disturbances"] = int(num_disturbances)
    out.update(VARIANTS[variant])
    out.update(dict(extra or {}))
    return out


def time_event_handler(
    engine: Engine, event: Any, handler: Any, clock: Callable[[], float] = time.perf_counter
) -> TimedCall:
    """Replace ``handler`` on ``engine``'s ``event`` by a :class:`TimedCall` of it, in place (same position, so the
    handlers around it run in the same order); returns the timer.

    Ignite has no public call to replace a handler in place; this edits ``engine._event_handlers[event]`` (ignite
    0.4-0.5: a list of ``(handler, args, kwargs)``).

    Raises:
        ValueError: ``handler`` is not attached to ``event`` (the message names its type).
    """
    entries = engine._event_handlers[event]
    for i, (h, args, kwargs) in enumerate(entries):
        if h is handler:
            timed = TimedCall(handler, clock=clock)
            entries[i] = (timed, args, kwargs)
            return timed
    raise ValueError(f"{type(handler).__name__} is not attached to {event}; nothing to time.")


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def head_level_times(
    network: torch.nn.Module, images: torch.Tensor, repeats: int = 5, clock: Callable[[], float] = time.perf_counter
) -> dict[str, Any]:
    """Mean time of one classification-head pass on each FPN level alone, as the assessor's ``K`` passes run it.

    The FPN levels of ``images`` come from ``network.feature_extractor`` (inference mode); each level then goes,
    alone, through ``network.classification_head`` in the assessor's setting (:func:`frozen_statistics`, eval mode;
    :func:`decoder_inputs` layout) once untimed and ``repeats`` times timed; the all-level pass too.

    Args:
        network: a :class:`monai_ext.networks.SplitRetinaNet` (any RetinaNet with ``feature_extractor`` and
            ``classification_head``).
        images: ``B x C x H x W``, on the network's device.
        repeats: timed passes per level, >= 1; default 5.
        clock: seconds as a float, default ``time.perf_counter``.

    Returns:
        ``{"levels": [{"level", "shape" (B C H W), "stride" (image side / level side), "ms"}], "all_levels_ms",
        "sum_levels_ms", "stride4_share": ms of the stride-4 level / sum over levels (NaN without one)}``.

    Raises:
        ValueError: ``repeats`` < 1.
    """
    if int(repeats) < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    with torch.inference_mode(), frozen_statistics(network):
        raw = network.feature_extractor(images)
        levels = list(raw.values()) if isinstance(raw, dict) else list(raw)
        levels = list(decoder_inputs(SplitFeatures(tuple(levels))).key)

        def mean_ms(maps: list[torch.Tensor]) -> float:
            network.classification_head(maps)
            start = clock()
            for _ in range(int(repeats)):
                network.classification_head(maps)
            return (clock() - start) / int(repeats) * 1000.0

        rows = []
        for i, level in enumerate(levels):
            stride = images.shape[-1] / level.shape[-1]
            rows.append({"level": i, "shape": list(level.shape), "stride": stride, "ms": mean_ms([level])})
        all_ms = mean_ms(levels)
    total = sum(r["ms"] for r in rows)
    stride4 = [r["ms"] for r in rows if math.isclose(r["stride"], 4.0)]
    return {"levels": rows, "all_levels_ms": all_ms, "sum_levels_ms": total,
            "stride4_share": stride4[0] / total if stride4 and total > 0 else float("nan")}  # fmt: skip


def _first_images(workflow: Any, batch_size: int, device: torch.device) -> torch.Tensor:
    """The first ``batch_size`` training images padded as the detector pads a batch (``preprocess_images``)."""
    dataset = workflow.parser.get_parsed_content("train#dataset")
    image_key = workflow.parser.get_parsed_content("image_key")
    network = workflow.parser.get_parsed_content("network")
    images = []
    for i in range(min(int(batch_size), len(dataset))):
        image = dataset[i][image_key]
        images.append((image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)).float().to(device))
    return preprocess_images(images, network.spatial_dims, network.size_divisible)[0]


def _attach_timers(workflow: Any, name: str, clock: Callable[[], float]) -> dict[str, Any]:
    parser = workflow.parser
    trainer = parser.get_parsed_content("train#trainer")
    stopwatch = EpochStopwatch(clock=clock)
    stopwatch.attach(trainer)  # attached last: covers the step and the other handlers' iteration work
    assessor = parser.get_parsed_content("mombs_assessor")
    assess = None
    if VARIANTS[name]["sampling_strategy"] != "random":
        assess = TimedCall(assessor.assess, clock=clock)
        assessor.assess = assess  # the assessor calls self.assess: the instance attribute is timed
    sampler = parser.get_parsed_content("train#sampler")
    plan = TimedCall(sampler.plan, clock=clock)
    sampler.plan = plan  # local_indices calls self.plan (at the DataLoader's first batch: inside data_s)
    handler = time_event_handler(trainer, Events.EPOCH_COMPLETED, parser.get_parsed_content("mombs_handler"), clock)
    return {"trainer": trainer, "stopwatch": stopwatch, "assess": assess, "plan": plan, "handler": handler}


def epoch_time_benchmark(
    dataset_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    num_images: int = 64,
    batch_size: int = 4,
    num_disturbances: int = 8,
    warmup: int = 1,
    repeats: int = 3,
    seed: int = 0,
    variants: tuple[str, ...] = tuple(VARIANTS),
    head_repeats: int = 5,
    bundle_dir: str | os.PathLike = DEEPLESION_BUNDLE,
    extra_overrides: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Median epoch time of each variant, its ratio to ``random`` and a breakdown; the head's cost per FPN level.

    Every workflow (:func:`timing_overrides`, the same ``num_images`` training images of
    :func:`training_subset`) is initialised in this process, then runs ``warmup`` untimed and ``repeats`` timed
    epochs, the variants alternating (:func:`scripts.bench.nvum_step.time_interleaved`). Threads are whatever
    ``torch.set_num_threads`` set before. After the epochs, :func:`head_level_times` runs on the ``mombs`` variant's
    network (the first variant's when ``mombs`` is not timed) on its first ``batch_size`` training images.

    Args:
        dataset_dir: a DeepLesion folder (e.g. :func:`monai_ext.demo.deeplesion.write_deeplesion_demo`).
        work_dir: holds one run folder per variant.
        num_images: training key images, default 64 (``batch_size`` * iterations; ``drop_last``).
        batch_size: default 4 (the bundle's; paper Sec. 4.1).
        num_disturbances: ``K`` of ``mombs`` and ``mombs_stem``, default 8.
        warmup: untimed epochs per variant, >= 1 (the first epoch has no scores to plan from), default 1.
        repeats: timed epochs per variant, default 3.
        seed: training seed and seed of the image draw, default 0.
        variants: names of :data:`VARIANTS`; must include ``random`` (the baseline). Default all four.
        head_repeats: timed passes per level of :func:`head_level_times`, default 5.
        bundle_dir: the ``deeplesion_mombs_detection`` folder.
        extra_overrides: further config overrides for every variant (e.g. a small ``network_def`` in tests).
        clock: seconds as a float for every recorded time, default ``time.perf_counter`` (wall);
            ``time.process_time`` counts this process's CPU seconds (all its threads), which keeps other jobs on a
            shared CPU out of the numbers (with one torch thread it is the wall time of an idle machine).

    Returns:
        ``{"settings", "epoch_s": {variant: [s]}, "median_s", "ratio": {variant: median / median of random},
        "ratio_paired": {variant: median over rounds of the round's variant / random}, "target_ratio": 1.5,
        "target_variant": "mombs", "breakdown": {variant: {key: median s}}, "epochs": {variant: [per-epoch
        records]}, "head_levels", "ratio_without_stride4_estimate"}``, in ``clock`` seconds except ``wall_s``.
        Per epoch: ``epoch_s`` (the epoch, :func:`run_epoch`), ``wall_s`` (its wall time), ``data_s`` (batch
        fetching without the plan), ``train_step_s`` (iterations without the assessor: forward, losses, backward,
        optimizer step, per-iteration handlers), ``assessor_s`` (the ``K`` passes, :meth:`MoMBSAssessor.assess`),
        ``handler_s`` (:class:`monai_ext.handlers.MoMBSHandler` at the epoch's end: scores to the sampler,
        difficulty CSV and PNG), ``plan_s`` (the sampler's ``plan``: ranking and minibatch blocks),
        ``planning_s`` = ``handler_s + plan_s``, ``outside_s`` = epoch - data - iterations - planning (checkpoint,
        LR schedule, logging, run start/end). ``ratio_without_stride4_estimate``: ``mombs`` / ``random`` with the
        stride-4 level's share of :func:`head_level_times` taken off each epoch's ``K`` passes (an estimate of the
        head-only cost without that level, not a run; ``None`` without ``mombs`` or a stride-4 level; what dropping
        the level costs in FROC needs the efficacy study).

    Raises:
        ValueError: ``warmup`` < 1, ``repeats`` < 1, ``random`` not among ``variants``, or ``num_images`` outside
            the datalist (:func:`training_subset`).
        KeyError: an unknown variant.
    """
    if int(warmup) < 1 or int(repeats) < 1:
        raise ValueError(f"warmup and repeats must be >= 1, got warmup={warmup}, repeats={repeats}.")
    if BASELINE not in variants:
        raise ValueError(f"variants must include '{BASELINE}' (the baseline of the ratios), got {list(variants)}.")
    for name in variants:
        if name not in VARIANTS:
            raise KeyError(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}.")
    epochs = int(warmup) + int(repeats)
    base = timing_overrides(BASELINE, dataset_dir, Path(work_dir) / "datalist", epochs, num_disturbances,
                            batch_size, seed, extra_overrides)  # fmt: skip
    datalist = training_subset(bundle_parser(bundle_dir, list(DEMO_TRAIN), base), num_images, seed)
    records: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    steps: dict[str, Callable[[], None]] = {}
    workflows: dict[str, Any] = {}
    for name in variants:
        extra = {**dict(extra_overrides or {}), "train#datalist": datalist}
        overrides = timing_overrides(name, dataset_dir, Path(work_dir) / name, epochs, num_disturbances, batch_size,
                                     seed, extra)  # fmt: skip
        workflow = bundle_workflow(bundle_dir, list(DEMO_TRAIN), "train", **overrides)
        workflow.initialize()
        workflows[name] = workflow
        timers = _attach_timers(workflow, name, clock)

        def step(timers=timers, name=name) -> None:
            assess, plan, handler = timers["assess"], timers["plan"], timers["handler"]
            before = (assess.seconds if assess is not None else 0.0, plan.seconds, handler.seconds)
            start = clock()
            wall = run_epoch(timers["trainer"])
            total = clock() - start
            assessor_s = (assess.seconds - before[0]) if assess is not None else 0.0
            plan_s, handler_s = plan.seconds - before[1], handler.seconds - before[2]
            data, iterations = timers["stopwatch"].data_s, timers["stopwatch"].iterations_s
            records[name].append({
                "epoch_s": total, "data_s": data - plan_s, "train_step_s": iterations - assessor_s,
                "assessor_s": assessor_s, "handler_s": handler_s, "plan_s": plan_s, "planning_s": handler_s + plan_s,
                "outside_s": total - data - iterations - handler_s, "iterations": timers["stopwatch"].iterations,
                "wall_s": wall,
            })  # fmt: skip
            logger.info(f"DeepLesion epoch time: {name} epoch {timers['trainer'].state.epoch}: {total:.2f} s, "
                        f"K passes {assessor_s:.2f} s")  # fmt: skip

        steps[name] = step
    time_interleaved(steps, warmup=int(warmup), repeats=int(repeats))
    timed = {name: recs[int(warmup) :] for name, recs in records.items()}
    epoch_s = {name: [r["epoch_s"] for r in recs] for name, recs in timed.items()}
    median = {name: _median(values) for name, values in epoch_s.items()}
    ratio = {name: median[name] / median[BASELINE] for name in variants}
    paired = {name: _median([v / r for v, r in zip(epoch_s[name], epoch_s[BASELINE])]) for name in variants}
    breakdown = {name: {key: _median([r[key] for r in recs]) for key in BREAKDOWN_KEYS} for name, recs in timed.items()}
    head_name = TARGET_VARIANT if TARGET_VARIANT in workflows else variants[0]
    parser = workflows[head_name].parser
    network = parser.get_parsed_content("network")
    device = next(network.parameters()).device
    head = head_level_times(network, _first_images(workflows[head_name], batch_size, device), head_repeats, clock)
    head["variant"] = head_name
    without_stride4 = None
    if TARGET_VARIANT in timed and math.isfinite(head["stride4_share"]):
        saved = [r["assessor_s"] * head["stride4_share"] for r in timed[TARGET_VARIANT]]
        without_stride4 = _median([r["epoch_s"] - x for r, x in zip(timed[TARGET_VARIANT], saved)]) / median[BASELINE]
    first = workflows[variants[0]].parser
    return {
        "settings": {
            "num_images": len(datalist), "batch_size": int(batch_size), "num_disturbances": int(num_disturbances),
            "warmup": int(warmup), "repeats": int(repeats), "seed": int(seed), "pivot_epoch": 1,
            "variants": {name: VARIANTS[name] for name in variants}, "num_workers": 0,
            "iterations_per_epoch": int(workflows[variants[0]].parser.get_parsed_content("train#trainer")
                                        .state.epoch_length),
            "image_size": int(first.get_parsed_content("image_size")),
            "pixel_spacing": float(first.get_parsed_content("pixel_spacing")),
            "fpn_channels": int(first.get_parsed_content("fpn_channels")),
            "network": type(network).__name__, "configs": list(DEMO_TRAIN),
            "validation": "off (val_interval beyond the last epoch)",
            "final_checkpoint": "last.pt written after every timed epoch (each epoch is one run)",
            "clock": getattr(clock, "__name__", str(clock)),
        },  # fmt: skip
        "epoch_s": epoch_s,
        "median_s": median,
        "ratio": ratio,
        "ratio_paired": paired,
        "target_ratio": EPOCH_TARGET_RATIO,
        "target_variant": TARGET_VARIANT,
        "breakdown": breakdown,
        "epochs": timed,
        "head_levels": head,
        "ratio_without_stride4_estimate": without_stride4,
    }


def results_table(result: Mapping[str, Any]) -> str:
    """Markdown: one row per variant (median seconds of the epoch and its parts, ratios to ``random``), the target
    verdict, and the classification head's time per FPN level."""
    lines = [
        "| variant | epoch s | / random | paired | data s | train step s | K passes s | planning s | outside s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, b in result["breakdown"].items():
        lines.append(
            f"| {name} | {result['median_s'][name]:.2f} | {result['ratio'][name]:.3f} | "
            f"{result['ratio_paired'][name]:.3f} | {b['data_s']:.2f} | {b['train_step_s']:.2f} | "
            f"{b['assessor_s']:.2f} | {b['planning_s']:.3f} | {b['outside_s']:.2f} |"
        )
    target = result["ratio"].get(result["target_variant"])
    if target is not None:
        verdict = "meets" if target <= result["target_ratio"] else "misses"
        lines.append(f"\n{result['target_variant']} / random = {target:.3f}: {verdict} the target <= "
                     f"{result['target_ratio']}.")  # fmt: skip
    if result.get("ratio_without_stride4_estimate") is not None:
        lines.append(
            f"Estimate without the stride-4 level in the K passes (its head share "
            f"{result['head_levels']['stride4_share']:.3f}): {result['ratio_without_stride4_estimate']:.3f}."
        )
    head = result["head_levels"]
    lines += ["", "| FPN level | shape (B C H W) | stride | head ms | share |", "|---|---|---|---|---|"]
    for row in head["levels"]:
        share = row["ms"] / head["sum_levels_ms"] if head["sum_levels_ms"] > 0 else float("nan")
        lines.append(f"| {row['level']} | {' x '.join(str(s) for s in row['shape'])} | {row['stride']:g} | "
                     f"{row['ms']:.2f} | {share:.3f} |")  # fmt: skip
    lines.append(f"| all levels (one call) | | | {head['all_levels_ms']:.2f} | |")
    return "\n".join(lines) + "\n"
