# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Meta soft-label step-time benchmark: one meta-stage iteration against one cross-entropy step.

:func:`meta_step_benchmark` times, on one network, one training batch, one meta batch and one SGD optimizer
(momentum 0.9, weight decay 1e-4), a plain cross-entropy training step (forward, loss, backward, optimizer step;
:func:`scripts.bench.nvum_step.make_train_step`) and one meta-stage iteration of
:class:`monai_ext.engines.MetaSoftLabelTrainer` per label source (``"per_sample"``, ``"network"``): the trainer's own
``_iteration`` on a one-batch loader with ``warmup_epochs = 0`` and ``state.epoch = 1``. Warm-up rounds, then
interleaved repetitions (:func:`scripts.bench.nvum_step.time_interleaved`); ratios of medians to cross-entropy.

Breakdown of a meta iteration (:class:`MetaStopwatch`): time marks are taken inside the timed iterations themselves,
at the trainer's own calls (no partial pipelines, no profiler): the ``FORWARD_COMPLETED`` event, the return of
:func:`~monai_ext.engines.virtual_step.virtual_sgd_parameters` and of
:func:`~monai_ext.engines.virtual_step.functional_forward` (the module attributes the trainer calls, wrapped for the
benchmark), the return of the label network's ``features`` and of the trainer's ``_update_rows`` /
``_update_label_network``. Consecutive marks delimit :data:`PIECES`, which add up to the iteration:

- ``real_forward``: batch preparation, the next meta batch, the network's forward of the training batch;
- ``label_features`` (label network only): the frozen encoder's forward that gives the label network its features;
- ``virtual_step``: the label rows (or label logits), the KL and the virtual SGD step with ``create_graph=True``;
- ``meta_forward``: the functional forward of the virtual network on the meta batch;
- ``label_update``: the meta cross-entropy's backward and the label gradient: the double backward through the virtual
  step, or (``label_gradient="jvp"``) the meta backward at ``theta_hat`` and one forward-mode JVP;
- ``conventional_step``: the row write (for the label network, its Adam step), the KL + entropy loss, its backward and
  the SGD step.

The second-order part is ``virtual_step + meta_forward + label_update``; its share of the iteration is reported.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.engines.utils import IterationEvents
from torch import nn

import monai_ext.engines.meta_soft_label as meta_module
from monai_ext.engines import MetaSoftLabelTrainer, SoftLabelStore
from monai_ext.engines.meta_soft_label import LabelGradient, LabelSource
from monai_ext.networks import LabelNetwork
from scripts.bench.bundles import DEMO_TRAIN, ROP_BUNDLE, TRAIN, shipped_network_def, small_network_def
from scripts.bench.nvum_step import make_train_step, time_interleaved

__all__ = [
    "STEP_TARGET_RATIO",
    "PIECES",
    "SECOND_ORDER_PIECES",
    "MetaStopwatch",
    "rop_step_setting",
    "meta_step_benchmark",
    "step_table",
]

logger = logging.getLogger(__name__)

STEP_TARGET_RATIO = 3.0  # issue 12: meta-stage iteration time / cross-entropy step time
CE = "cross_entropy"
PIECES = ("real_forward", "label_features", "virtual_step", "meta_forward", "label_update", "conventional_step")
"""The pieces of a meta iteration, in order (see the module docstring); ``label_features`` only with the label
network."""
SECOND_ORDER_PIECES = ("virtual_step", "meta_forward", "label_update")
"""The pieces that make the second-order part of the meta step."""


class MetaStopwatch:
    """Time marks inside a :class:`MetaSoftLabelTrainer` meta iteration, one record of piece durations per iteration.

    :meth:`instrument` wraps, while its block runs, the trainer module's ``virtual_sgd_parameters`` and
    ``functional_forward``, the trainer's ``_update_rows`` / ``_update_label_network`` and its label network's
    ``features``, and registers a ``FORWARD_COMPLETED`` handler; :meth:`timed_iteration` runs one iteration between
    a start and an end mark and appends ``{piece: seconds}`` to :attr:`records`.

    Args:
        sync: called before every clock reading (e.g. ``torch.cuda.synchronize``); default none.
        clock: seconds as a float, default ``time.perf_counter``.
    """

    def __init__(self, sync: Callable[[], None] | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.sync = sync
        self.clock = clock
        self.records: list[dict[str, float]] = []
        self._marks: list[tuple[str, float]] | None = None

    def mark(self, piece: str) -> None:
        """End ``piece`` now (ignored outside :meth:`timed_iteration`)."""
        if self._marks is None:
            return
        if self.sync is not None:
            self.sync()
        self._marks.append((piece, self.clock()))

    def _after(self, function: Callable[..., Any], piece: str) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            out = function(*args, **kwargs)
            self.mark(piece)
            return out

        return wrapped

    @contextmanager
    def instrument(self, trainer: MetaSoftLabelTrainer) -> Iterator[MetaStopwatch]:
        """Wrap the trainer's calls (see the class docstring) while the block runs; restored afterwards."""
        saved = {name: getattr(meta_module, name) for name in ("virtual_sgd_parameters", "functional_forward")}
        meta_module.virtual_sgd_parameters = self._after(saved["virtual_sgd_parameters"], "virtual_step")
        meta_module.functional_forward = self._after(saved["functional_forward"], "meta_forward")
        trainer._label_gradient = self._after(trainer._label_gradient, "label_update")
        label_net = trainer.label_network
        if label_net is not None:
            label_net.features = self._after(label_net.features, "label_features")

        def on_forward(engine: Any) -> None:
            self.mark("real_forward")

        trainer.add_event_handler(IterationEvents.FORWARD_COMPLETED, on_forward)
        try:
            yield self
        finally:
            for name, function in saved.items():
                setattr(meta_module, name, function)
            trainer.__dict__.pop("_label_gradient", None)
            if label_net is not None:
                label_net.__dict__.pop("features", None)
            trainer.remove_event_handler(on_forward, IterationEvents.FORWARD_COMPLETED)

    def timed_iteration(self, trainer: MetaSoftLabelTrainer, batch: Mapping[str, Any]) -> None:
        """Run ``trainer._iteration(trainer, batch)`` and record its pieces.

        Raises:
            RuntimeError: the marks did not come in the order of :data:`PIECES` (the trainer's meta step changed).
        """
        self._marks = []
        self.mark("start")
        try:
            trainer._iteration(trainer, batch)
            self.mark("end")
            marks = self._marks
        finally:
            self._marks = None
        names = [name for name, _ in marks[1:-1]] + ["conventional_step"]
        expected = [p for p in PIECES if p != "label_features" or trainer.label_source == LabelSource.NETWORK]
        if names != expected:
            raise RuntimeError(f"meta iteration marks came as {names}, expected {expected}: update MetaStopwatch.")
        self.records.append({name: t1 - t0 for name, (_, t0), (_, t1) in zip(names, marks[:-1], marks[1:])})


def rop_step_setting(network: str = "small", bundle_dir: str | os.PathLike = ROP_BUNDLE) -> dict[str, Any]:
    """The network and sizes of a step benchmark, as the ROP bundle's configs give them.

    Args:
        network: ``"shipped"``: ``network_def``, ``image_size``, ``batch_size``, ``meta_batch_size`` of
            ``configs/train.json`` (torchvision ResNet-50, 224 px, 16, 16); ``"small"``: ``small_network_def`` of
            ``configs/demo.json`` with the sizes of ``train.json`` + ``demo.json`` (the demo run's).
        bundle_dir: the ``rop_meta_softlabel_classification`` folder.

    Returns:
        ``{"network", "network_def" (raw config), "num_classes", "image_size", "batch_size", "meta_batch_size"}``.

    Raises:
        ValueError: another ``network``.
    """
    if network not in ("shipped", "small"):
        raise ValueError(f"network must be 'shipped' or 'small', got {network!r}.")
    configs = [TRAIN] if network == "shipped" else list(DEMO_TRAIN)
    parser = ConfigParser()
    parser.read_config([os.path.join(str(bundle_dir), c) for c in configs])
    raw = shipped_network_def(bundle_dir) if network == "shipped" else small_network_def(bundle_dir)
    keys = ("num_classes", "image_size", "batch_size", "meta_batch_size")
    return {"network": network, "network_def": raw, **{k: int(parser.get_parsed_content(k)) for k in keys}}


def build_network(network_def: Mapping[str, Any], num_classes: int) -> nn.Module:
    """Instantiate a raw ``network_def`` whose ``@num_classes`` reference becomes ``num_classes``."""
    parser = ConfigParser({"num_classes": int(num_classes), "network_def": dict(network_def)})
    return parser.get_parsed_content("network_def")


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if len(values) else float("nan")


def meta_step_benchmark(
    network: nn.Module,
    input_shape: Sequence[int],
    num_classes: int = 3,
    batch_size: int = 16,
    meta_batch_size: int = 16,
    label_sources: Sequence[str] = ("per_sample", "network"),
    label_gradients: Sequence[str] = ("double_backward", "jvp"),
    num_samples: int = 1000,
    warmup: int = 2,
    repeats: int = 5,
    seed: int = 0,
    device: str | torch.device = "cpu",
    feature_layer: str = "fc",
) -> dict[str, Any]:
    """Median time of a cross-entropy step and of a meta-stage iteration per label source, their ratios and the
    pieces of the meta iteration (:class:`MetaStopwatch`).

    All steps share ``network`` and one SGD optimizer (lr 1e-3, momentum 0.9, weight decay 1e-4, as the bundle): the
    weights change between steps, the cost does not. Each label source gets its own trainer (``warmup_epochs = 0``,
    ``alpha = 0.5``, ``beta = 4000``, a :class:`SoftLabelStore` of ``num_samples`` rows and, for ``"network"``, a
    :class:`LabelNetwork` over a frozen copy of ``network`` with Adam lr 1e-3, as the bundle builds them).

    Args:
        network: takes ``B *input_shape`` inputs and returns ``B num_classes`` logits; its classifier layer is
            ``feature_layer`` (for the label network).
        input_shape: one sample's shape, e.g. ``(3, 224, 224)``.
        num_classes: ``C``, default 3.
        batch_size: training batch ``B``, default 16.
        meta_batch_size: meta batch, default 16.
        label_sources: :class:`~monai_ext.engines.meta_soft_label.LabelSource` values to time.
        label_gradients: :class:`~monai_ext.engines.meta_soft_label.LabelGradient` values to time (each with each
            label source; the steps are ``meta_<source>`` for ``double_backward`` and ``meta_<source>_jvp``).
        num_samples: rows of the soft-label store (the meta step reads and writes only the batch's rows).
        warmup: untimed rounds (see :func:`time_interleaved`), default 2.
        repeats: timed rounds, default 5.
        seed: seed of the ``torch.Generator`` that draws the batches, labels and indices.
        device: where to run.
        feature_layer: the label network's ``feature_layer``, default ``"fc"``.

    Returns:
        ``{"settings", "times_s": {step: [s]}, "median_s": {step: s}, "ratio_to_ce": {step: median / median of
        cross_entropy}, "target_ratio": 3.0, "breakdown_method", "pieces_s": {source: {piece: median s}},
        "piece_share": {source: {piece: median share}}, "second_order_s": {source: median s},
        "second_order_share": {source: median over iterations of second-order / iteration}}``; the steps are
        ``cross_entropy`` and ``meta_<source>``.
    """
    device = torch.device(device)
    network = network.to(device)
    gen = torch.Generator().manual_seed(int(seed))
    images = torch.randn(batch_size, *input_shape, generator=gen)
    labels = torch.randint(0, num_classes, (batch_size,), generator=gen)
    index = torch.randperm(num_samples, generator=gen)[:batch_size]
    meta_images = torch.randn(meta_batch_size, *input_shape, generator=gen)
    meta_labels = torch.arange(meta_batch_size) % num_classes  # every class in the meta batch
    batch = {"image": images, "label": labels, "index": index}
    meta_batch = {"image": meta_images, "label": meta_labels}
    store_labels = torch.randint(0, num_classes, (num_samples,), generator=gen)
    store_labels[index] = labels
    datalist = [{"index": i, "label": int(store_labels[i])} for i in range(num_samples)]
    optimizer = torch.optim.SGD(network.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    sync = torch.cuda.synchronize if device.type == "cuda" else None

    steps: dict[str, Callable[[], Any]] = {
        CE: make_train_step(
            network, optimizer, nn.CrossEntropyLoss(reduction="none"), images.to(device), labels.to(device)
        )
    }
    stopwatches: dict[str, MetaStopwatch] = {}
    trainers: dict[str, MetaSoftLabelTrainer] = {}
    for source in label_sources:
        for mode in label_gradients:
            source, mode = LabelSource(source).value, LabelGradient(mode).value
            variant = source if mode == LabelGradient.DOUBLE_BACKWARD.value else f"{source}_{mode}"
            label_network = label_optimizer = None
            if source == LabelSource.NETWORK.value:
                label_network = LabelNetwork(network, num_classes, feature_layer).to(device)
                label_optimizer = torch.optim.Adam(label_network.linear.parameters(), lr=1e-3, weight_decay=1e-4)
            trainer = MetaSoftLabelTrainer(
                device=device,
                max_epochs=1,
                train_data_loader=[batch],
                network=network,
                optimizer=optimizer,
                loss_function=nn.CrossEntropyLoss(reduction="none"),
                soft_labels=SoftLabelStore(datalist, num_classes).to(device),
                meta_data_loader=[meta_batch],
                method="meta",
                label_source=source,
                label_gradient=mode,
                warmup_epochs=0,
                label_network=label_network,
                label_optimizer=label_optimizer,
                epoch_length=1,
            )
            trainer.state.epoch = 1  # past warm-up: the meta stage
            trainers[variant] = trainer
            stopwatches[variant] = MetaStopwatch(sync=sync)
            steps[f"meta_{variant}"] = lambda trainer=trainer, watch=stopwatches[variant]: watch.timed_iteration(
                trainer, batch
            )

    with _instrumented(stopwatches, trainers):
        times = time_interleaved({name: _logged(name, step) for name, step in steps.items()}, warmup=warmup,
                                 repeats=repeats, sync=sync)  # fmt: skip

    median = {name: _median(values) for name, values in times.items()}
    result: dict[str, Any] = {
        "settings": {
            "input_shape": [int(s) for s in input_shape], "batch_size": int(batch_size),
            "meta_batch_size": int(meta_batch_size), "num_classes": int(num_classes), "num_samples": int(num_samples),
            "warmup": int(warmup), "repeats": int(repeats), "seed": int(seed), "device": str(device),
            "optimizer": "SGD lr 1e-3, momentum 0.9, weight decay 1e-4", "alpha": 0.5, "beta": 4000.0,
            "torch_threads": torch.get_num_threads(),
        },  # fmt: skip
        "times_s": times,
        "median_s": median,
        "ratio_to_ce": {name: value / median[CE] for name, value in median.items()},
        "target_ratio": STEP_TARGET_RATIO,
        "breakdown_method": "time marks at the trainer's own calls inside the timed meta iterations (FORWARD_COMPLETED "
        "event, returns of virtual_sgd_parameters, functional_forward, label features, label update); pieces add up "
        "to the iteration",
        "pieces_s": {},
        "piece_share": {},
        "second_order_s": {},
        "second_order_share": {},
    }
    for source, watch in stopwatches.items():
        timed = watch.records[len(watch.records) - int(repeats) :]
        pieces = list(timed[0])
        result["pieces_s"][source] = {p: _median([r[p] for r in timed]) for p in pieces}
        result["piece_share"][source] = {p: _median([r[p] / sum(r.values()) for r in timed]) for p in pieces}
        second = [sum(r[p] for p in SECOND_ORDER_PIECES) for r in timed]
        result["second_order_s"][source] = _median(second)
        result["second_order_share"][source] = _median([s / sum(r.values()) for s, r in zip(second, timed)])
    return result


def _logged(name: str, step: Callable[[], Any]) -> Callable[[], Any]:
    """``step`` logging its wall time at INFO (progress of long runs: the shipped network takes seconds per step)."""

    def run() -> Any:
        start = time.perf_counter()
        out = step()
        logger.info("meta step benchmark: %s %.3f s", name, time.perf_counter() - start)
        return out

    return run


@contextmanager
def _instrumented(stopwatches: Mapping[str, MetaStopwatch], trainers: Mapping[str, MetaSoftLabelTrainer]) -> Iterator:
    """Each trainer instrumented by its stopwatch (module attributes wrapped once per stopwatch: nested, all mark
    the stopwatch of the iteration running, the others ignore marks outside their iterations)."""
    if not stopwatches:
        yield
        return
    source, *rest = list(stopwatches)
    with stopwatches[source].instrument(trainers[source]):
        with _instrumented({s: stopwatches[s] for s in rest}, {s: trainers[s] for s in rest}):
            yield


_PIECE_LABELS = {
    "real_forward": "real forward (training batch)",
    "label_features": "label-network features (frozen encoder forward)",
    "virtual_step": "virtual step (KL + grad, create_graph)",
    "meta_forward": "meta forward (virtual network, meta batch)",
    "label_update": "meta loss + label gradient (double backward, or meta backward + JVP)",
    "conventional_step": "conventional step (KL + entropy, backward, SGD)",
}


def step_table(result: Mapping[str, Any], title: str = "") -> str:
    """Markdown: the medians and ratios of :func:`meta_step_benchmark`, then the pieces of each meta iteration."""
    s = result["settings"]
    shape = " x ".join(map(str, [s["batch_size"], *s["input_shape"]]))
    head = f"{title}: " if title else ""
    lines = [
        f"**{head}meta-stage iteration vs cross-entropy step** (batch {shape}, meta batch {s['meta_batch_size']}, "
        f"{s['num_classes']} classes, {s['optimizer']}; {s['warmup']} warm-up rounds, {s['repeats']} interleaved "
        f"timed rounds, median; {s['device']}, {s['torch_threads']} torch thread(s); target ratio <= "
        f"{result['target_ratio']}):",
        "",
        "| step | median (s) | ratio to CE |",
        "|---|---:|---:|",
    ]
    for name, median in result["median_s"].items():
        lines.append(f"| {name} | {median:.3f} | {result['ratio_to_ce'][name]:.2f} |")
    lines += ["", f"Pieces of the meta iteration ({result['breakdown_method']}):", ""]
    sources = list(result["pieces_s"])
    lines += ["| piece | " + " | ".join(f"{src} (s) | share" for src in sources) + " |",
              "|---|" + "---:|---:|" * len(sources)]  # fmt: skip
    for piece in PIECES:
        if not any(piece in result["pieces_s"][src] for src in sources):
            continue
        cells = []
        for src in sources:
            if piece in result["pieces_s"][src]:
                cells.append(f"{result['pieces_s'][src][piece]:.4f} | {100 * result['piece_share'][src][piece]:.0f} %")
            else:
                cells.append("- | -")
        lines.append(f"| {_PIECE_LABELS[piece]} | " + " | ".join(cells) + " |")
    cells = [
        f"{result['second_order_s'][src]:.4f} | {100 * result['second_order_share'][src]:.0f} %" for src in sources
    ]
    lines.append("| **second-order part** (virtual step + meta forward + label gradient) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
