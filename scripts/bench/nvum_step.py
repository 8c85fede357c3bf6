# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""NVUM step-time benchmark: a training step with NVUM against the same step with BCE.

:func:`step_time_benchmark` times, on one network, one batch and one optimizer, a training step (forward, loss,
backward, optimizer step) with ``BCEWithLogitsLoss`` and with :class:`monai_ext.losses.NVUMLoss` in paper mode, in
official mode with fixed teacher logits (the loss's own overhead) and in official mode with the EMA teacher's extra
no-grad forward and EMA update (:class:`monai_ext.handlers.ema.EMATeacher`): warm-up rounds, then interleaved
repetitions (:func:`time_interleaved`); ratios of medians to BCE.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from monai.utils.enums import StrEnum

from monai_ext.handlers.ema import EMATeacher
from monai_ext.losses.nvum import NVUMLoss, NVUMMode
from scripts.bench.nvum_bundle import bundle_network

__all__ = ["StepVariant", "time_interleaved", "make_train_step", "step_time_benchmark"]

NIH_TRAIN_SIZE = 83672  # NVUM NIH-setting training images (Table 4): rows of the memory in the step benchmark
STEP_TARGET_RATIO = 1.03  # issue 3: NVUM step time / BCE step time


class StepVariant(StrEnum):
    """Training steps timed by :func:`step_time_benchmark`.

    - ``bce``: ``BCEWithLogitsLoss`` (the baseline).
    - ``paper``: ``NVUMLoss(mode="paper")``, memory fed by the network's own logits.
    - ``official_loss``: ``NVUMLoss(mode="official")`` fed fixed teacher logits: the loss's overhead alone (its
      regulariser backpropagates through the prediction, as the official code at its HEAD).
    - ``official_teacher``: official mode with the EMA teacher's no-grad forward before the loss and its EMA
      update after the optimizer step: what an official-mode step costs.
    """

    BCE = "bce"
    PAPER = "paper"
    OFFICIAL_LOSS = "official_loss"
    OFFICIAL_TEACHER = "official_teacher"


def time_interleaved(
    steps: Mapping[str, Callable[[], Any]],
    warmup: int = 2,
    repeats: int = 5,
    sync: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Time several step functions in interleaved order, so that a slow phase of a shared machine hits all of them.

    First ``warmup`` untimed rounds call every step once. Then round ``r`` (0-based) of ``repeats`` calls the steps
    in their given order rotated left by ``r`` (steps ``a, b, c``: round 0 ``a b c``, round 1 ``b c a``, round 2
    ``c a b``), so with ``repeats`` a multiple of the number of steps each step takes each position equally often.

    Args:
        steps: ``{name: function}``; each call is one step.
        warmup: untimed rounds, >= 0; default 2.
        repeats: timed rounds, >= 1; default 5.
        sync: called before starting and before stopping the clock (e.g. ``torch.cuda.synchronize``); default none.
        clock: seconds as a float, default ``time.perf_counter``.

    Returns:
        ``{name: [seconds per timed call, in round order]}``.

    Raises:
        ValueError: no steps, ``warmup`` < 0 or ``repeats`` < 1.
    """
    names = list(steps)
    if not names:
        raise ValueError("time_interleaved needs at least one step.")
    if int(warmup) < 0 or int(repeats) < 1:
        raise ValueError(f"warmup must be >= 0 and repeats >= 1, got warmup={warmup}, repeats={repeats}.")
    for _ in range(int(warmup)):
        for name in names:
            steps[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(int(repeats)):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if sync is not None:
                sync()
            start = clock()
            steps[name]()
            if sync is not None:
                sync()
            times[name].append(clock() - start)
    return times


def make_train_step(
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_function: Callable[..., torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    loss_kwargs: Mapping[str, Any] | None = None,
    teacher: EMATeacher | None = None,
) -> Callable[[], float]:
    """One training step as a function: forward, loss, backward, optimizer step (as ``PerSampleTrainer`` does).

    With ``teacher``, the teacher's no-grad forward runs after the network's forward and its logits go to the loss
    as ``memory_logits``; the EMA update runs after the optimizer step (as :class:`EMATeacher` does in a trainer).

    Args:
        network: the trained network, called on ``images`` in training mode.
        optimizer: optimizer over ``network``'s parameters.
        loss_function: called as ``loss_function(logits, labels, **loss_kwargs)``; a ``B`` or ``B ...`` result is
            averaged to a scalar.
        images: ``B C H W`` network input.
        labels: ``B K`` binary labels.
        loss_kwargs: extra loss inputs (``index``, ``memory_logits``); default none.
        teacher: EMA teacher whose logits feed the loss; default none.

    Returns:
        a function that runs one step and returns the loss value (a float, which also waits for the device).
    """
    extra = dict(loss_kwargs or {})

    def step() -> float:
        network.train()
        optimizer.zero_grad(set_to_none=True)
        logits = network(images)
        kwargs = dict(extra)
        if teacher is not None:
            kwargs["memory_logits"] = teacher.predict(images)
        loss = loss_function(logits, labels, **kwargs)
        loss = loss.reshape(loss.shape[0], -1).mean() if loss.ndim > 0 else loss
        loss.backward()
        optimizer.step()
        if teacher is not None:
            teacher.update()
        return float(loss.detach())

    return step


def step_time_benchmark(
    network: torch.nn.Module | None = None,
    batch_size: int = 16,
    image_size: int = 224,
    num_classes: int = 14,
    num_samples: int = NIH_TRAIN_SIZE,
    warmup: int = 2,
    repeats: int = 8,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Median step time of every :class:`StepVariant` on one network and one random batch, and ratios to BCE.

    All variants share the network and one ``Adam`` optimizer (the weights change between steps, the cost does
    not); NVUM gets a memory of ``num_samples`` rows, a prior of 0.05 per class and random dataset indices.

    Args:
        network: takes ``B 3 image_size image_size`` images and returns ``B num_classes`` logits; default the
            bundle's DenseNet121 (:func:`bundle_network`).
        batch_size: ``B``, default 16.
        image_size: square input side in pixels, default 224.
        num_classes: logits per sample, default 14.
        num_samples: NVUM memory rows, default 83,672 (the NIH training set).
        warmup: untimed rounds (see :func:`time_interleaved`), default 2.
        repeats: timed rounds, default 8 (a multiple of the 4 variants).
        seed: seed of the ``torch.Generator`` that draws the batch, labels and indices.
        device: where to run.

    Returns:
        ``{"batch_shape", "num_samples", "warmup", "repeats", "device", "times_s": {variant: [s]},
        "median_s": {variant: s}, "ratio_to_bce": {variant: median / median of bce}, "target_ratio": 1.03}``.
    """
    device = torch.device(device)
    network = (bundle_network(device=device) if network is None else network).to(device)
    gen = torch.Generator().manual_seed(int(seed))
    images = torch.randn(batch_size, 3, image_size, image_size, generator=gen).to(device)
    labels = (torch.rand(batch_size, num_classes, generator=gen) < 0.1).float().to(device)
    index = torch.randperm(num_samples, generator=gen)[:batch_size].to(device)
    with torch.no_grad():
        fixed_teacher = network.eval()(images).detach()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    prior = torch.full((num_classes,), 0.05)

    def nvum(mode: str) -> NVUMLoss:
        return NVUMLoss(num_samples, num_classes, prior, mode=mode, reduction="none").to(device)

    official = NVUMMode.OFFICIAL  # its EMA teacher runs in train mode and averages the buffers, as at HEAD
    teacher = EMATeacher(network, decay=0.99, teacher_mode=official.teacher_mode, buffer_mode=official.ema_buffer_mode)
    steps = {
        StepVariant.BCE.value: make_train_step(
            network, optimizer, torch.nn.BCEWithLogitsLoss(reduction="none"), images, labels
        ),
        StepVariant.PAPER.value: make_train_step(network, optimizer, nvum("paper"), images, labels, {"index": index}),
        StepVariant.OFFICIAL_LOSS.value: make_train_step(
            network, optimizer, nvum("official"), images, labels, {"index": index, "memory_logits": fixed_teacher}
        ),
        StepVariant.OFFICIAL_TEACHER.value: make_train_step(
            network, optimizer, nvum("official"), images, labels, {"index": index}, teacher=teacher
        ),
    }
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    times = time_interleaved(steps, warmup=warmup, repeats=repeats, sync=sync)
    median = {name: statistics.median(values) for name, values in times.items()}
    base = median[StepVariant.BCE.value]
    return {
        "batch_shape": [batch_size, 3, image_size, image_size],
        "num_classes": num_classes,
        "num_samples": num_samples,
        "warmup": warmup,
        "repeats": repeats,
        "device": str(device),
        "times_s": times,
        "median_s": median,
        "ratio_to_bce": {name: value / base for name, value in median.items()},
        "target_ratio": STEP_TARGET_RATIO,
    }
