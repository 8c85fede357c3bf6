# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""FPSM step-time benchmark: training and inference steps of the Feature Pyramid Sum Model against the single-stage
head on the same backbone weights (issue 13, "Measured in make bench").

:func:`fpsm_step_benchmark` builds one :class:`monai_ext.networks.FeaturePyramidSumNet` per variant
(:data:`DEFAULT_VARIANTS`: the single-stage head ``{4}``, FPSM ``{4,3}``, ``{4,3,2}``, ``{4,3,2,1}`` and the
concatenate variant on ``{4,3,2}``) from the bundle's ``network_def``, copies the backbone state of the single-stage
network into every other variant (all start from identical backbone weights; the heads differ by design) and times,
on one batch and one device:

- a training step per variant: forward, :class:`monai_ext.losses.PyramidSumLoss`, backward, ``Adam`` step (the
  bundle's learning rate and weight decay; each variant has its own optimizer);
- an inference step per variant: ``eval()`` forward under ``torch.no_grad()`` and the bundle's stage combination
  (:func:`monai_ext.transforms.combine_stage_logits`).

Warm-up rounds, then interleaved repetitions (:func:`scripts.bench.nvum_step.time_interleaved`). Per variant: the
median and spread of the seconds per step, the ratio of medians to the single-stage head and the per-round (paired)
ratios. The issue's target is FPSM ``{4,3,2}`` / single-stage <= :data:`STEP_TARGET_RATIO` (the heads are tiny); it
is reported, never asserted.
"""

from __future__ import annotations

import copy
import logging
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.bundle import ConfigParser
from torch import nn

from monai_ext.losses import PyramidSumLoss
from monai_ext.transforms import combine_stage_logits
from scripts.bench.bundles import BUNDLES_DIR, DEMO_TRAIN, TRAIN, shipped_network_def, small_network_def
from scripts.bench.nvum_step import make_train_step, time_interleaved

__all__ = [
    "FPSM_BUNDLE",
    "STEP_TARGET_RATIO",
    "BASELINE",
    "TARGET_VARIANT",
    "DEFAULT_VARIANTS",
    "fpsm_step_setting",
    "build_variant",
    "build_variants",
    "summarize_times",
    "fpsm_step_benchmark",
    "fpsm_step_table",
    "fpsm_step_flops",
    "fpsm_flops_table",
]

logger = logging.getLogger(__name__)

FPSM_BUNDLE = BUNDLES_DIR / "cxr_lt_fpsm_classification"
STEP_TARGET_RATIO = 1.05  # issue 13: FPSM {4,3,2} step time / single-stage step time
BASELINE = "single_4"
"""The single-stage head (stage 4 only): the denominator of every ratio."""
TARGET_VARIANT = "fpsm_432"
"""The variant the issue's target ratio is about: FPSM on stages {4, 3, 2}."""
DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    BASELINE: {"stages": (4,), "concatenate": False},
    "fpsm_43": {"stages": (4, 3), "concatenate": False},
    TARGET_VARIANT: {"stages": (4, 3, 2), "concatenate": False},
    "fpsm_4321": {"stages": (4, 3, 2, 1), "concatenate": False},
    "concat_432": {"stages": (4, 3, 2), "concatenate": True},
}
"""``{name: {"stages", "concatenate"}}``: the variants timed by default, the baseline first."""


def fpsm_step_setting(network: str = "small", bundle_dir: str | os.PathLike = FPSM_BUNDLE) -> dict[str, Any]:
    """The network and sizes of the FPSM step benchmark, as the ``cxr_lt_fpsm_classification`` configs give them.

    Args:
        network: ``"shipped"``: ``network_def`` and the sizes of ``configs/train.json`` (TResNet-L, 448 px, batch
            16); ``"small"``: ``small_network_def`` of ``configs/demo.json`` with the sizes of ``train.json`` +
            ``demo.json`` (the demo run's: ResNet-10t at the demo image size, batch 16).
        bundle_dir: the ``cxr_lt_fpsm_classification`` folder.

    Returns:
        ``{"network", "network_def" (raw config), "backbone", "num_classes", "num_datasets", "image_size",
        "batch_size", "learning_rate", "weight_decay", "stage_combination"}``.

    Raises:
        ValueError: another ``network``.
        FileNotFoundError, KeyError: the bundle's configs are missing or define no such network (see
            :func:`scripts.bench.bundles.shipped_network_def`).
    """
    if network not in ("shipped", "small"):
        raise ValueError(f"network must be 'shipped' or 'small', got {network!r}.")
    configs = [TRAIN] if network == "shipped" else list(DEMO_TRAIN)
    parser = ConfigParser()
    parser.read_config([os.path.join(str(bundle_dir), c) for c in configs])
    raw = shipped_network_def(bundle_dir) if network == "shipped" else small_network_def(bundle_dir)
    parser["network_def"] = copy.deepcopy(raw)
    backbone = parser.get_parsed_content("network_def#backbone")
    ints = {k: int(parser.get_parsed_content(k)) for k in ("num_classes", "num_datasets", "image_size", "batch_size")}
    floats = {k: float(parser.get_parsed_content(k)) for k in ("learning_rate", "weight_decay")}
    return {"network": network, "network_def": raw, "backbone": str(backbone), **ints, **floats,
            "stage_combination": str(parser.get_parsed_content("stage_combination"))}  # fmt: skip


def build_variant(
    network_def: Mapping[str, Any],
    stages: Sequence[int],
    concatenate: bool = False,
    num_classes: int = 26,
    num_datasets: int = 0,
    backbone: str | None = None,
) -> nn.Module:
    """Instantiate a raw FPSM ``network_def`` (as in the bundle's configs) for one stage set.

    The config ids the definition refers to get these values: ``fpsm_stages`` = ``stages``, ``use_concatenate`` =
    ``concatenate``, ``num_classes``, ``num_datasets``, ``backbone`` (default: the definition's own literal backbone)
    and ``pretrained_backbone`` = None (random weights: nothing is loaded or downloaded).
    """
    config = {
        "imports": ["$import monai_ext"],
        "fpsm_stages": [int(s) for s in stages],
        "use_concatenate": bool(concatenate),
        "num_classes": int(num_classes),
        "num_datasets": int(num_datasets),
        "backbone": backbone if backbone is not None else network_def.get("backbone"),
        "pretrained_backbone": None,
        "network_def": copy.deepcopy(dict(network_def)),
    }
    return ConfigParser(config).get_parsed_content("network_def")


def build_variants(
    setting: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]] = DEFAULT_VARIANTS, seed: int = 0
) -> dict[str, nn.Module]:
    """One network per variant from a :func:`fpsm_step_setting`, all with the backbone weights of the first.

    The first variant is built after ``torch.manual_seed(seed)``; its ``features`` state (parameters and buffers) is
    loaded into every other variant's ``features``; variant ``i``'s heads are initialised after
    ``torch.manual_seed(seed + i)``.

    Raises:
        ValueError: no variants.
    """
    if not variants:
        raise ValueError("build_variants needs at least one variant.")
    nets: dict[str, nn.Module] = {}
    backbone_state: dict[str, torch.Tensor] | None = None
    for i, (name, spec) in enumerate(variants.items()):
        torch.manual_seed(int(seed) + i)
        net = build_variant(
            setting["network_def"], spec["stages"], bool(spec.get("concatenate", False)), setting["num_classes"],
            setting["num_datasets"], setting["backbone"],
        )  # fmt: skip
        if backbone_state is None:
            backbone_state = copy.deepcopy(net.features.state_dict())
        else:
            net.features.load_state_dict(backbone_state)
        nets[name] = net
    return nets


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return float(values[0]), float(values[0])
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return float(q1), float(q3)


def summarize_times(times: Mapping[str, Sequence[float]], baseline: str = BASELINE) -> dict[str, Any]:
    """Medians, spread and ratios to ``baseline`` of :func:`time_interleaved` output.

    Returns:
        ``{"median_s": {name: s}, "spread_s": {name: {"min", "q1", "q3", "max"}}, "ratio": {name: median /
        median of baseline}, "paired_ratio": {name: {"median", "min", "max"}}}``: the paired ratios are those of the
        same round (``times[name][r] / times[baseline][r]``), which a slow phase of a shared machine hits alike.

    Raises:
        KeyError: ``baseline`` is not timed.
        ValueError: the variants have different numbers of rounds.
    """
    if baseline not in times:
        raise KeyError(f"baseline '{baseline}' is not among the timed steps {list(times)}.")
    rounds = {len(v) for v in times.values()}
    if len(rounds) != 1 or 0 in rounds:
        raise ValueError(f"every step needs the same, non-zero number of timed rounds, got {rounds}.")
    median = {name: float(statistics.median(v)) for name, v in times.items()}
    spread = {name: dict(zip(("min", "q1", "q3", "max"), (min(v), *_quartiles(v), max(v)))) for name, v in
              times.items()}  # fmt: skip
    base = times[baseline]
    paired = {}
    for name, values in times.items():
        r = [t / b for t, b in zip(values, base)]
        paired[name] = {"median": float(statistics.median(r)), "min": float(min(r)), "max": float(max(r))}
    return {
        "median_s": median,
        "spread_s": spread,
        "ratio": {name: m / median[baseline] for name, m in median.items()},
        "paired_ratio": paired,
    }


def make_inference_step(
    network: nn.Module, images: torch.Tensor, combination: str = "mean_prob"
) -> Callable[[], torch.Tensor]:
    """One inference step as a function: ``eval()`` forward without gradients and the stage combination
    (:func:`combine_stage_logits`); returns the ``B x C`` probabilities (moved to the CPU, which waits for the
    device)."""

    def step() -> torch.Tensor:
        network.eval()
        with torch.no_grad():
            return combine_stage_logits(network(images), combination).cpu()

    return step


def fpsm_step_benchmark(
    setting: Mapping[str, Any],
    variants: Mapping[str, Mapping[str, Any]] = DEFAULT_VARIANTS,
    batch_size: int | None = None,
    image_size: int | None = None,
    modes: Sequence[str] = ("train", "inference"),
    warmup: int = 2,
    repeats: int = 10,
    seed: int = 0,
    device: str | torch.device = "cpu",
    networks: Mapping[str, nn.Module] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Seconds per training and inference step of each FPSM variant and the ratios to the single-stage head.

    Args:
        setting: a :func:`fpsm_step_setting` (network definition, sizes, optimizer settings).
        variants: ``{name: {"stages", "concatenate"}}``; the first is the baseline of the ratios (default
            :data:`DEFAULT_VARIANTS`, baseline ``single_4``).
        batch_size: ``B``; default the setting's.
        image_size: square input side; default the setting's.
        modes: any of ``"train"`` (forward, :class:`PyramidSumLoss`, backward, Adam step) and ``"inference"``
            (no-grad forward + stage combination); each mode is timed in its own interleaved series.
        warmup: untimed rounds per mode (see :func:`time_interleaved`), default 2.
        repeats: timed rounds per mode, default 10 (a multiple of the 5 default variants).
        seed: seed of the weights (:func:`build_variants`) and of the ``torch.Generator`` drawing the batch
            (images uniform in [0, 1], as timm's TResNet expects; labels Bernoulli(0.1)).
        device: where to run.
        networks: prebuilt ``{name: network}`` for ``variants`` (default: :func:`build_variants`).
        clock: seconds as a float; default ``time.perf_counter`` (wall). On a CPU shared with other jobs,
            ``time.process_time`` (this process's CPU seconds) keeps their load out of the ratios.

    Returns:
        ``{"settings", "variants": {name: {"stages", "concatenate", "heads", "num_parameters"}}, "baseline",
        "target_variant", "target_ratio": 1.05, "<mode>": {"times_s": {name: [s]}, **summarize_times(...)}}`` for each
        mode; ``"train"`` also has ``"final_loss"`` per variant.

    Raises:
        ValueError: an unknown mode, or ``networks`` not matching ``variants``.
    """
    unknown = [m for m in modes if m not in ("train", "inference")]
    if unknown or not modes:
        raise ValueError(f"modes must be a non-empty subset of ('train', 'inference'), got {list(modes)}.")
    device = torch.device(device)
    batch_size = int(setting["batch_size"] if batch_size is None else batch_size)
    image_size = int(setting["image_size"] if image_size is None else image_size)
    if networks is None:
        networks = build_variants(setting, variants, seed)
    if list(networks) != list(variants):
        raise ValueError(f"networks {list(networks)} do not match the variants {list(variants)}.")
    networks = {name: net.to(device) for name, net in networks.items()}
    baseline = next(iter(variants))
    num_classes = int(setting["num_classes"])
    gen = torch.Generator().manual_seed(int(seed))
    images = torch.rand(batch_size, 3, image_size, image_size, generator=gen).to(device)
    labels = (torch.rand(batch_size, num_classes, generator=gen) < 0.1).float().to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    combination = str(setting.get("stage_combination", "mean_prob"))

    result: dict[str, Any] = {
        "settings": {
            "network": setting.get("network"), "backbone": setting["backbone"],
            "input_shape": [batch_size, 3, image_size, image_size], "num_classes": num_classes,
            "num_datasets": int(setting["num_datasets"]), "modes": list(modes), "warmup": int(warmup),
            "repeats": int(repeats), "seed": int(seed), "device": str(device),
            "optimizer": f"Adam lr {setting['learning_rate']:g}, weight decay {setting['weight_decay']:g}",
            "loss": "PyramidSumLoss", "stage_combination": combination, "torch_threads": torch.get_num_threads(),
            "clock": getattr(clock, "__name__", str(clock)),
        },  # fmt: skip
        "variants": {
            name: {"stages": [int(s) for s in net.stages], "concatenate": bool(net.concatenate),
                   "heads": int(net.num_outputs), "num_parameters": sum(p.numel() for p in net.parameters())}
            for name, net in networks.items()
        },  # fmt: skip
        "baseline": baseline,
        "target_variant": TARGET_VARIANT,
        "target_ratio": STEP_TARGET_RATIO,
    }
    for mode in modes:
        if mode == "train":
            losses: dict[str, list[float]] = {name: [] for name in networks}
            steps = {}
            for name, net in networks.items():
                optimizer = torch.optim.Adam(
                    net.parameters(), lr=float(setting["learning_rate"]), weight_decay=float(setting["weight_decay"])
                )
                train = make_train_step(net, optimizer, PyramidSumLoss().to(device), images, labels)
                steps[name] = _recorded(train, losses[name])
        else:
            steps = {name: make_inference_step(net, images, combination) for name, net in networks.items()}
        times = time_interleaved({n: _logged(f"{mode} {n}", s) for n, s in steps.items()}, warmup=warmup,
                                 repeats=repeats, sync=sync, clock=clock)  # fmt: skip
        result[mode] = {"times_s": times, **summarize_times(times, baseline)}
        if mode == "train":
            result[mode]["final_loss"] = {name: values[-1] for name, values in losses.items()}
    return result


def _recorded(step: Callable[[], float], sink: list[float]) -> Callable[[], float]:
    def run() -> float:
        value = step()
        sink.append(value)
        return value

    return run


def _logged(name: str, step: Callable[[], Any]) -> Callable[[], Any]:
    """``step`` logging its wall time at DEBUG (progress of the shipped network's seconds-long steps)."""

    def run() -> Any:
        start = time.perf_counter()
        out = step()
        logger.debug("fpsm step benchmark: %s %.3f s", name, time.perf_counter() - start)
        return out

    return run


def _stage_set(spec: Mapping[str, Any]) -> str:
    stages = "{" + ",".join(str(int(s)) for s in spec["stages"]) + "}"
    return f"concat {stages}" if spec["concatenate"] else stages


def fpsm_step_table(result: Mapping[str, Any], title: str = "") -> str:
    """Markdown: per mode, each variant's median seconds per step, spread (min / quartiles / max), ratio of medians
    to the baseline and the paired per-round ratios."""
    s = result["settings"]
    shape = " x ".join(map(str, s["input_shape"]))
    head = f"{title}: " if title else ""
    lines = [
        f"**{head}FPSM vs single-stage head, seconds per step** (backbone {s['backbone']}, batch {shape}, "
        f"{s['num_classes']} classes, {s['loss']}, {s['optimizer']}; {s['warmup']} warm-up rounds, {s['repeats']} "
        f"interleaved timed rounds; {s['device']}, {s['torch_threads']} torch thread(s), clock "
        f"{s.get('clock', 'perf_counter')}; target "
        f"{result['target_variant']} / {result['baseline']} <= {result['target_ratio']}):",
        "",
    ]
    for mode in s["modes"]:
        what = "training step (forward, loss, backward, Adam)" if mode == "train" else "inference (no-grad forward)"
        lines += [f"*{what}*", "", "| variant | stages | heads | median (s) | min / q1 / q3 / max (s) | ratio | "
                  "paired ratio median [min, max] |", "|---|---|---:|---:|---|---:|---|"]  # fmt: skip
        res = result[mode]
        for name, spec in result["variants"].items():
            sp = res["spread_s"][name]
            pr = res["paired_ratio"][name]
            lines.append(
                f"| {name} | {_stage_set(spec)} | {spec['heads']} | {res['median_s'][name]:.4f} | "
                f"{sp['min']:.4f} / {sp['q1']:.4f} / {sp['q3']:.4f} / {sp['max']:.4f} | {res['ratio'][name]:.3f} | "
                f"{pr['median']:.3f} [{pr['min']:.3f}, {pr['max']:.3f}] |"
            )
        lines.append("")
    return "\n".join(lines)


def fpsm_step_flops(
    setting: Mapping[str, Any],
    variants: Mapping[str, Mapping[str, Any]] = DEFAULT_VARIANTS,
    batch_size: int = 1,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Floating-point operations of one training step (forward, :class:`~monai_ext.losses.PyramidSumLoss`, backward)
    of every variant, counted by ``torch.utils.flop_counter.FlopCounterMode``: a count, not a timing, so it does not
    depend on what else the machine runs. Work done twice (e.g. a second backbone pass per stage) would show as a
    ratio near the number of stages; the heads alone add a fraction of a percent.

    Returns:
        ``{"batch_size", "input_shape", "flops": {variant: int}, "ratio": {variant: flops / baseline's},
        "backbone_calls": {variant: forward calls of the backbone per step}, "baseline"}``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from monai_ext.losses import PyramidSumLoss

    nets = build_variants(setting, variants, seed)
    size = int(setting["image_size"])
    generator = torch.Generator().manual_seed(int(seed))
    x = torch.rand(int(batch_size), 3, size, size, generator=generator).to(device)
    y = (torch.rand(int(batch_size), int(setting["num_classes"]), generator=generator) < 0.3).float().to(device)
    loss_fn = PyramidSumLoss()
    flops, calls = {}, {}
    for name, net in nets.items():
        net = net.to(device).train()
        count = [0]
        handle = net.features.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
        with FlopCounterMode(display=False) as counter:
            loss_fn(net(x), y).backward()
        handle.remove()
        flops[name], calls[name] = int(counter.get_total_flops()), count[0]
    baseline = next(iter(nets))
    return {
        "batch_size": int(batch_size),
        "input_shape": [int(batch_size), 3, size, size],
        "flops": flops,
        "ratio": {name: f / flops[baseline] for name, f in flops.items()},
        "backbone_calls": calls,
        "baseline": baseline,
    }


def fpsm_flops_table(result: Mapping[str, Any], title: str = "") -> str:
    """Markdown of :func:`fpsm_step_flops`."""
    head = f"{title}: " if title else ""
    lines = [
        f"**{head}training-step FLOPs** (FlopCounterMode, input {' x '.join(map(str, result['input_shape']))}; "
        f"ratio to {result['baseline']}):",
        "",
        "| variant | GFLOP per step | ratio | backbone passes |",
        "|---|---:|---:|---:|",
    ]
    for name, f in result["flops"].items():
        lines.append(f"| {name} | {f / 1e9:.3f} | {result['ratio'][name]:.5f} | {result['backbone_calls'][name]} |")
    return "\n".join(lines) + "\n"
