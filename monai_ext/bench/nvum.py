# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""NVUM benchmark: step time against BCE, and clean-test AUC against BCE on demo data with realistic label noise.

- **Step time** (:func:`step_time_benchmark`): one network, one batch, one optimizer; a training step (forward, loss,
  backward, optimizer step) with ``BCEWithLogitsLoss`` and with :class:`monai_ext.losses.NVUMLoss` in paper mode,
  in official mode with fixed teacher logits (the loss's own overhead) and in official mode with the EMA teacher's
  extra no-grad forward and EMA update (:class:`monai_ext.handlers.ema.EMATeacher`). Warm-up steps, then
  interleaved repetitions (:func:`time_interleaved`); ratios of medians to BCE.
- **Efficacy** (:func:`run_efficacy`): the ``cxr_nvum_classification`` bundle trained in-process
  (``monai.bundle.ConfigWorkflow``) with the BCE baseline (:func:`bundle_overrides`), NVUM paper mode and NVUM
  official mode for several seeds on the same demo data (noisy NIH training labels, clean OpenI and PadChest test
  sets), then evaluated; mean disease AUROC per test set, and the label audit's precision@k against the demo's
  recorded flips (:func:`audit_precision`).

:func:`write_results` writes ``nvum_bench.json``, ``nvum_bench.png`` and ``README_table.md``.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.datalist import DatasetLayoutError, read_csv_checked, require_file
from monai_ext.data.demo import get_writer
from monai_ext.handlers.ema import EMATeacher
from monai_ext.handlers.label_audit import precision_at_k
from monai_ext.losses.nvum import NVUMLoss

__all__ = [
    "StepVariant",
    "Method",
    "time_interleaved",
    "make_train_step",
    "bundle_network",
    "step_time_benchmark",
    "write_bench_data",
    "bundle_overrides",
    "read_mean_auc",
    "audit_precision",
    "run_bundle",
    "run_efficacy",
    "summarise",
    "aggregate_runs",
    "results_table",
    "plot_results",
    "write_results",
]

logger = logging.getLogger(__name__)

BUNDLE_DIR = Path(__file__).resolve().parents[2] / "bundles" / "cxr_nvum_classification"
NIH_TRAIN_SIZE = 83672  # NVUM NIH-setting training images (Table 4): rows of the memory in the step benchmark
STEP_TARGET_RATIO = 1.03  # issue 3: NVUM step time / BCE step time
DISEASE_ROW = "mean (diseases)"  # MultiLabelReport CSV row of the mean AUROC over diseases
TEST_SETS = ("openi", "padchest")


class StepVariant(StrEnum):
    """Training steps timed by :func:`step_time_benchmark`.

    - ``bce``: ``BCEWithLogitsLoss`` (the baseline).
    - ``paper``: ``NVUMLoss(mode="paper")``, memory fed by the network's own logits.
    - ``official_loss``: ``NVUMLoss(mode="official")`` fed fixed teacher logits: the loss's overhead alone.
    - ``official_teacher``: official mode with the EMA teacher's no-grad forward before the loss and its EMA
      update after the optimizer step: what an official-mode step costs.
    """

    BCE = "bce"
    PAPER = "paper"
    OFFICIAL_LOSS = "official_loss"
    OFFICIAL_TEACHER = "official_teacher"


class Method(StrEnum):
    """Training methods compared by :func:`run_efficacy`: the BCE baseline and NVUM's two modes."""

    BCE = "bce"
    PAPER = "paper"
    OFFICIAL = "official"


# ---- step time ---------------------------------------------------------------------------------------------------


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


def bundle_network(bundle_dir: str | os.PathLike = BUNDLE_DIR, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The network of the bundle's ``configs/train.json`` (``network_def``), built as the bundle builds it.

    Raises:
        FileNotFoundError: ``configs/train.json`` is missing under ``bundle_dir``.
    """
    parser = ConfigParser()
    parser.read_config(str(require_file(Path(bundle_dir) / "configs" / "train.json", "the NVUM bundle's config")))
    return parser.get_parsed_content("network_def").to(device)


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

    teacher = EMATeacher(network, decay=0.99)
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


# ---- efficacy ----------------------------------------------------------------------------------------------------


def write_bench_data(
    root: str | os.PathLike,
    train_size: float = 3.0,
    test_size: float = 6.0,
    image_size: int = 64,
    lesion_contrast: float = 0.2,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Write the demo NIH (noisy training labels), OpenI and PadChest (clean) datasets under ``root/<name>``.

    Uses the demo writers (:func:`monai_ext.data.demo.get_writer`) with seeds ``seed``, ``seed + 1``, ``seed + 2``.

    Args:
        root: output folder.
        train_size: NIH demo size (1.0 = 90 patients, about 225 images before the NVUM class trim).
        test_size: OpenI and PadChest demo size (1.0 = 80 reports / 100 studies).
        image_size: written image side in pixels.
        lesion_contrast: display-intensity change of a unit-strength lesion pattern (writers' default 0.2).
        seed: base seed.

    Returns:
        the writers' summaries keyed by dataset name.
    """
    sizes = {"nih": train_size, "openi": test_size, "padchest": test_size}
    return {
        name: get_writer(name)(
            Path(root) / name, size=size, seed=seed + k, image_size=image_size, lesion_contrast=lesion_contrast
        )
        for k, (name, size) in enumerate(sizes.items())
    }


def _find_id(config: Any, predicate: Callable[[Any], bool], what: str, prefix: str = "") -> str:
    """Config id (``a#b#0``) of the first entry, depth first in file order, that satisfies ``predicate``."""
    found = _search_id(config, predicate, prefix)
    if found is None:
        raise ValueError(f"the NVUM bundle's train.json has no {what}; the benchmark overrides need one.")
    return found


def _search_id(config: Any, predicate: Callable[[Any], bool], prefix: str) -> str | None:
    if prefix and predicate(config):
        return prefix
    items = config.items() if isinstance(config, Mapping) else enumerate(config) if isinstance(config, list) else ()
    for key, value in items:
        found = _search_id(value, predicate, f"{prefix}#{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


def _is_audit_writer(value: Any) -> bool:
    return isinstance(value, Mapping) and str(value.get("_target_", "")).endswith("LabelAuditWriter")


def bundle_overrides(
    method: Method | str,
    seed: int,
    dataset_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    image_size: int = 64,
    epochs: int = 8,
    batch_size: int = 16,
    network_def: Mapping[str, Any] | None = None,
    bundle_dir: str | os.PathLike = BUNDLE_DIR,
) -> dict[str, Any]:
    """Overrides of the bundle's ``train.json`` for one benchmark run.

    - every method: ``dataset_dir``, ``ckpt_dir = run_dir/models``, ``output_dir = run_dir/eval``, ``image_size``,
      ``epochs``, ``batch_size``, ``num_workers = 0``, ``network_def`` when given, the training seed in
      ``initialize`` (``set_determinism(seed=seed)``), and ``CacheDataset`` for the training and validation sets
      (the deterministic loading is cached; the random crop and flip still run every epoch);
    - ``bce``: ``loss_def = BCEWithLogitsLoss(reduction="none")`` through the same ``PerSampleTrainer`` (and the
      same EMA network for evaluation), with the ``LabelAuditWriter`` disabled (it reads NVUM's memory);
    - ``paper`` / ``official``: ``nvum_mode``.

    Args:
        method: ``{"bce", "paper", "official"}``.
        seed: training seed.
        dataset_dir: the NIH demo folder.
        run_dir: folder of this run's checkpoints and outputs.
        image_size: network input side in pixels, default 64.
        epochs: training epochs, default 8.
        batch_size: default 16.
        network_def: replacement ``network_def`` (e.g. a small MONAI ``DenseNet``); default the bundle's.
        bundle_dir: the bundle folder; its ``train.json`` is searched (depth first) for the ``set_determinism``
            entry of ``initialize`` and the ``LabelAuditWriter`` under ``train``, whose ids (e.g.
            ``train#handlers#8``) the overrides patch, so a reordered handler list needs no change here.

    Returns:
        ``{config id: value}`` for ``ConfigWorkflow(**overrides)`` / ``monai.bundle run``.

    Raises:
        ValueError: an unknown method, or a ``train.json`` without the ``LabelAuditWriter`` handler or the
            ``set_determinism`` entry in ``initialize``.
    """
    method = look_up_option(method, Method)
    parser = ConfigParser()
    parser.read_config(str(require_file(Path(bundle_dir) / "configs" / "train.json", "the NVUM bundle's config")))
    init = _find_id(parser["initialize"], lambda v: isinstance(v, str) and "set_determinism" in v, "set_determinism initializer",
                    "initialize")  # fmt: skip
    run_dir = Path(run_dir)
    out: dict[str, Any] = {
        "dataset_dir": str(dataset_dir),
        "ckpt_dir": str(run_dir / "models"),
        "output_dir": str(run_dir / "eval"),
        "image_size": int(image_size),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "num_workers": 0,
        init: f"$monai.utils.set_determinism(seed={int(seed)})",
        "nvum_mode": "paper" if method == Method.BCE else method.value,
    }
    for part in ("train", "validate"):
        out[f"{part}#dataset#_target_"] = "CacheDataset"
        out[f"{part}#dataset#progress"] = False
    if network_def is not None:
        out["network_def"] = copy.deepcopy(dict(network_def))
    if method == Method.BCE:
        audit = _find_id(parser["train"], _is_audit_writer, "LabelAuditWriter under train", "train")
        out["loss_def"] = {"_target_": "torch.nn.BCEWithLogitsLoss", "reduction": "none"}
        out[f"{audit}#_disabled_"] = True
    return out


def read_mean_auc(csv_file: str | os.PathLike, row: str = DISEASE_ROW) -> float:
    """The ``auroc`` of row ``row`` in a ``MultiLabelReport`` CSV (``class,n_known,n_positive,auroc,ap,f1``).

    Raises:
        FileNotFoundError: the CSV is missing.
        DatasetLayoutError: no ``class`` or ``auroc`` column, or no ``class == row`` line.
    """
    table = read_csv_checked(csv_file, ["class", "auroc"], "MultiLabelReport CSV")
    if row not in set(table["class"].astype(str)):
        raise DatasetLayoutError(f"MultiLabelReport CSV '{csv_file}' has no '{row}' row in column 'class'.")
    return float(table.loc[table["class"].astype(str) == row, "auroc"].iloc[0])


def audit_precision(
    audit_csv: str | os.PathLike, noise_csv: str | os.PathLike, datalist: Sequence[Mapping], class_names: Sequence[str]
) -> dict[str, Any]:
    """Precision of the bundle's ``label_audit.csv`` ranking against the demo generator's recorded label flips.

    A flip is a ``demo_label_noise.csv`` row (``image, class, clean, noisy``) whose image is in the training
    ``datalist`` (matched by file name) and whose class is one of ``class_names``. ``k`` is the number of such flips
    (so precision@k is also recall@k), capped at the audit's length (it lists only pairs with disagreement >= 0.5).

    Args:
        audit_csv: the bundle's ``label_audit.csv`` (columns ``index, class_index`` among others).
        noise_csv: the NIH demo's ``demo_label_noise.csv``.
        datalist: the training datalist (items with ``index`` and ``image``).
        class_names: the bundle's class names, in output order.

    Returns:
        ``{"k", "precision_at_k", "n_flips", "n_pairs", "base_rate"}``; ``base_rate = n_flips / n_pairs`` is the
        expected precision of a random ranking. ``precision_at_k`` is ``nan`` when the audit or the flips are empty.

    Raises:
        FileNotFoundError: a CSV is missing.
        DatasetLayoutError: a CSV misses a needed column.
    """
    audit = read_csv_checked(audit_csv, ["index", "class_index"], "label audit CSV (LabelAuditWriter)")
    noise = read_csv_checked(noise_csv, ["image", "class"], "demo label-noise CSV (image,class,clean,noisy)")
    position = {Path(str(item["image"])).name: int(item["index"]) for item in datalist}
    column = {str(name): c for c, name in enumerate(class_names)}
    flips = {
        (position[str(img)], column[str(cls)])
        for img, cls in zip(noise["image"], noise["class"])
        if str(img) in position and str(cls) in column
    }
    n_pairs = len(position) * len(column)
    k = min(len(flips), len(audit))
    return {
        "k": k,
        "precision_at_k": precision_at_k(audit, flips, k) if k > 0 else float("nan"),
        "n_flips": len(flips),
        "n_pairs": n_pairs,
        "base_rate": len(flips) / n_pairs if n_pairs else float("nan"),
    }


def run_bundle(
    overrides: Mapping[str, Any],
    openi_dir: str | os.PathLike,
    padchest_dir: str | os.PathLike,
    noise_csv: str | os.PathLike | None = None,
    bundle_dir: str | os.PathLike = BUNDLE_DIR,
) -> dict[str, Any]:
    """Train the bundle with ``overrides``, evaluate it on OpenI and PadChest, and read the results.

    Runs ``configs/train.json`` and then ``['configs/train.json', 'configs/evaluate.json']`` in-process
    (``monai.bundle.ConfigWorkflow``, bundle logging left alone); the evaluation keeps ``evaluate.json``'s own
    ``initialize`` (the seed override is for training).

    Args:
        overrides: from :func:`bundle_overrides`.
        openi_dir: the OpenI demo folder.
        padchest_dir: the PadChest demo folder.
        noise_csv: the NIH demo's ``demo_label_noise.csv``; with it (and a ``label_audit.csv`` written by the run)
            the result holds ``audit`` (see :func:`audit_precision`).
        bundle_dir: the bundle folder.

    Returns:
        ``{"openi_auc", "padchest_auc", "clean_test_auc" (their mean), "train_s", "eval_s", "audit" (or None)}``;
        AUCs are the mean AUROC over the diseases (``No Finding`` left out).
    """
    configs = Path(bundle_dir) / "configs"
    start = time.perf_counter()
    train = ConfigWorkflow(config_file=str(configs / "train.json"), workflow_type="train", logging_file=False,
                           **overrides)  # fmt: skip
    train.initialize()
    train.run()
    train.finalize()
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    evaluate = ConfigWorkflow(
        config_file=[str(configs / "train.json"), str(configs / "evaluate.json")],
        workflow_type="eval",
        logging_file=False,
        openi_dir=str(openi_dir),
        padchest_dir=str(padchest_dir),
        **{k: v for k, v in overrides.items() if not k.startswith("initialize")},  # evaluate.json has its own
    )
    evaluate.initialize()
    evaluate.run()
    evaluate.finalize()
    out_dir = Path(overrides["output_dir"])
    result: dict[str, Any] = {f"{name}_auc": read_mean_auc(out_dir / f"{name}_per_class.csv") for name in TEST_SETS}
    result["clean_test_auc"] = float(np.mean([result[f"{name}_auc"] for name in TEST_SETS]))
    result.update(train_s=train_s, eval_s=time.perf_counter() - start, audit=None)
    if noise_csv is not None and (out_dir / "label_audit.csv").is_file():
        parser = train.parser
        result["audit"] = audit_precision(
            out_dir / "label_audit.csv",
            noise_csv,
            parser.get_parsed_content("train#datalist"),
            parser.get_parsed_content("class_names"),
        )
    return result


def run_efficacy(
    work_dir: str | os.PathLike,
    methods: Sequence[Method | str] = tuple(Method),
    seeds: Sequence[int] = (0, 1, 2),
    train_size: float = 3.0,
    test_size: float = 6.0,
    image_size: int = 64,
    lesion_contrast: float = 0.2,
    epochs: int = 8,
    batch_size: int = 16,
    network_def: Mapping[str, Any] | None = None,
    data_seed: int = 0,
    bundle_dir: str | os.PathLike = BUNDLE_DIR,
) -> dict[str, Any]:
    """Write the demo data once, then train and evaluate every method for every seed (seed-major order).

    Args:
        work_dir: holds ``data/`` and one ``<method>_seed<seed>/`` folder per run.
        methods: subset of :class:`Method`, default all three.
        seeds: training seeds, default ``(0, 1, 2)``.
        train_size, test_size, image_size, lesion_contrast: see :func:`write_bench_data` (``image_size`` is also
            the network input side).
        epochs, batch_size, network_def: see :func:`bundle_overrides`.
        data_seed: base seed of the demo data.
        bundle_dir: the bundle folder.

    Returns:
        ``{"settings", "data": {name: {"n_images", "n_flips"}}, "runs": [{"method", "seed", ...}],
        "summary": (see :func:`aggregate_runs`)}``.
    """
    methods = [look_up_option(m, Method) for m in methods]
    work_dir = Path(work_dir)
    data = write_bench_data(work_dir / "data", train_size, test_size, image_size, lesion_contrast, data_seed)
    noise_csv = data["nih"]["files"].get("label_noise")
    runs = []
    for seed in seeds:
        for method in methods:
            overrides = bundle_overrides(
                method, seed, work_dir / "data" / "nih", work_dir / f"{method.value}_seed{seed}", image_size,
                epochs, batch_size, network_def, bundle_dir,
            )  # fmt: skip
            result = run_bundle(overrides, work_dir / "data" / "openi", work_dir / "data" / "padchest", noise_csv,
                                bundle_dir)  # fmt: skip
            runs.append({"method": method.value, "seed": int(seed), **result})
            logger.info(
                f"NVUM bench: {method.value} seed {seed}: clean-test AUC {result['clean_test_auc']:.4f} (OpenI "
                f"{result['openi_auc']:.4f}, PadChest {result['padchest_auc']:.4f}), train {result['train_s']:.0f} s."
            )
    settings = {
        "train_size": train_size, "test_size": test_size, "image_size": image_size,
        "lesion_contrast": lesion_contrast, "epochs": epochs, "batch_size": batch_size,
        "seeds": [int(s) for s in seeds], "data_seed": data_seed,
        "network_def": dict(network_def) if network_def is not None else "bundle default",
    }  # fmt: skip
    return {
        "settings": settings,
        "data": {name: {"n_images": s["n_images"], "n_flips": s.get("n_flips", 0)} for name, s in data.items()},
        "runs": runs,
        "summary": aggregate_runs(runs),
    }


# ---- aggregation and output --------------------------------------------------------------------------------------


def summarise(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}`` of finite-or-not values; ``std`` is the sample standard deviation
    (``ddof=1``, ``nan`` for fewer than 2 values); ``nan`` values are kept in ``values`` and left out of the rest."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return {
        "mean": float(np.mean(finite)) if finite else float("nan"),
        "std": float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan"),
        "n": len(finite),
        "values": [float("nan") if v is None else float(v) for v in values],
    }


_RUN_METRICS = ("clean_test_auc", "openi_auc", "padchest_auc")


def aggregate_runs(runs: Sequence[Mapping[str, Any]], baseline: str = Method.BCE.value) -> dict[str, Any]:
    """Per method: :func:`summarise` of each AUC over seeds (in seed order), of the audit precision, and of the
    per-seed difference to the baseline (paired by seed).

    Example: runs ``bce`` seeds 0, 1 with clean-test AUC 0.6, 0.7 and ``paper`` 0.65, 0.8 give
    ``summary["paper"]["delta_clean_test_auc"]`` mean 0.075, std 0.0354 (differences 0.05 and 0.1).

    Args:
        runs: items with ``method``, ``seed``, the AUCs of ``_RUN_METRICS`` and ``audit`` (a dict or None).
        baseline: method the deltas are taken against; deltas are left out when it is missing.

    Returns:
        ``{method: {"seeds": [...], "clean_test_auc": summary, "openi_auc": ..., "padchest_auc": ...,
        "audit_precision": summary, "audit_base_rate": float, "delta_clean_test_auc": summary}}`` in first-seen
        method order.
    """
    by_method: dict[str, dict[int, Mapping[str, Any]]] = {}
    for run in runs:
        by_method.setdefault(str(run["method"]), {})[int(run["seed"])] = run
    out: dict[str, Any] = {}
    for method, per_seed in by_method.items():
        seeds = sorted(per_seed)
        entry: dict[str, Any] = {"seeds": seeds}
        for metric in _RUN_METRICS:
            entry[metric] = summarise([per_seed[s][metric] for s in seeds])
        audits = [per_seed[s].get("audit") for s in seeds]
        entry["audit_precision"] = summarise([a["precision_at_k"] if a else None for a in audits])
        entry["audit_base_rate"] = next((a["base_rate"] for a in audits if a), None)
        base = by_method.get(baseline, {})
        paired = [s for s in seeds if s in base]
        if method != baseline and paired:
            diffs = [per_seed[s]["clean_test_auc"] - base[s]["clean_test_auc"] for s in paired]
            entry["delta_clean_test_auc"] = summarise(diffs)
        out[method] = entry
    return out


def _pm(summary: Mapping[str, Any] | None, digits: int = 3) -> str:
    if not summary or not np.isfinite(summary["mean"]):
        return "n/a"
    std = summary["std"]
    return f"{summary['mean']:.{digits}f} ± {std:.{digits}f}" if np.isfinite(std) else f"{summary['mean']:.{digits}f}"


_STEP_LABELS = {
    StepVariant.BCE.value: "BCE (`BCEWithLogitsLoss`)",
    StepVariant.PAPER.value: "NVUM paper mode",
    StepVariant.OFFICIAL_LOSS.value: "NVUM official mode, loss only (fixed teacher logits)",
    StepVariant.OFFICIAL_TEACHER.value: "NVUM official mode + EMA teacher forward and update",
}
_METHOD_LABELS = {Method.BCE.value: "BCE baseline", Method.PAPER.value: "NVUM paper",
                  Method.OFFICIAL.value: "NVUM official"}  # fmt: skip


def results_table(results: Mapping[str, Any]) -> str:
    """Markdown tables of a benchmark result (``{"step_time": ..., "efficacy": ..., "environment": ...}``, either
    part may be missing), for the bundle README."""
    lines: list[str] = []
    env = results.get("environment", {})
    step = results.get("step_time")
    if step:
        shape = " x ".join(map(str, step["batch_shape"]))
        lines += [
            f"**Step time** (forward + loss + backward + Adam step; {step.get('network', 'network')}, batch {shape}, "
            f"{step['num_classes']} classes, NVUM memory of {step['num_samples']:,} rows; {step['warmup']} warm-up "
            f"rounds, {step['repeats']} interleaved timed rounds, median; {step['device']}, "
            f"{env.get('torch_threads', '?')} torch thread(s), measured in one run; target ratio <= "
            f"{step['target_ratio']}):",
            "",
            "| step | median (s) | ratio to BCE |",
            "|---|---:|---:|",
        ]
        for name, median in step["median_s"].items():
            lines.append(f"| {_STEP_LABELS.get(name, name)} | {median:.3f} | {step['ratio_to_bce'][name]:.3f} |")
        lines.append("")
    eff = results.get("efficacy")
    if eff:
        s = eff["settings"]
        data = eff["data"]
        nih = data.get("nih", {})
        lines += [
            f"**Efficacy on demo data** (bundle `train.json` + `evaluate.json` run in-process with overrides; NIH demo "
            f"size {s['train_size']} ({nih.get('n_images', '?')} images, {nih.get('n_flips', '?')} label flips "
            f"from the NIH-vs-radiologist rates), clean OpenI/PadChest demo size {s['test_size']}; written at "
            f"{s['image_size']} px, lesion contrast {s['lesion_contrast']}; network {_network_text(s['network_def'])}; "
            f"{s['epochs']} epochs, batch {s['batch_size']}, evaluated with the EMA network at the best noisy-val "
            f"epoch; seeds {s['seeds']}; AUROC = mean over the 13 diseases, No Finding left out; mean ± sample std "
            "over seeds):",
            "",
            "| method | clean-test AUC (mean of OpenI, PadChest) | per seed | Δ vs BCE (paired) | OpenI AUC | "
            "PadChest AUC | label-audit precision@k |",
            "|---|---:|---|---:|---:|---:|---:|",
        ]
        for method, m in eff["summary"].items():
            per_seed = ", ".join(f"{v:.3f}" for v in m["clean_test_auc"]["values"])
            audit = _pm(m["audit_precision"])
            if audit != "n/a" and m.get("audit_base_rate") is not None:
                audit += f" (random: {m['audit_base_rate']:.3f})"
            lines.append(
                f"| {_METHOD_LABELS.get(method, method)} | {_pm(m['clean_test_auc'])} | {per_seed} | "
                f"{_pm(m.get('delta_clean_test_auc'))} | {_pm(m['openi_auc'])} | {_pm(m['padchest_auc'])} | {audit} |"
            )
        lines += [
            "",
            "Label audit: `label_audit.csv` ranked by |label - sigmoid(memory)|, k = number of flipped training "
            "(image, class) labels (capped at the audit's length); random ranking gives the base rate in brackets.",
            "",
        ]
    if env:
        lines.append(
            f"Environment: {env.get('platform', '?')}, {env.get('cpu_count', '?')} CPUs, "
            f"torch {env.get('torch', '?')}, "
            f"MONAI {env.get('monai', '?')}; total wall time {env.get('wall_s', float('nan')) / 60:.1f} min."
        )
    return "\n".join(lines).rstrip() + "\n"


def _network_text(network_def: Any) -> str:
    if not isinstance(network_def, Mapping):
        return "the bundle's DenseNet121"
    args = ", ".join(f"{k}={v}" for k, v in network_def.items() if k != "_target_")
    return f"`{network_def.get('_target_', '?')}({args})`"


def plot_results(results: Mapping[str, Any], png_file: str | os.PathLike) -> Path:
    """Draw the step-time ratios (left, with the target line) and the clean-test AUC per method (right: one dot
    per seed, mean ± std bar) into a PNG; a missing part leaves its panel with a note. Returns the path."""
    fig = Figure(figsize=(11, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax_step, ax_auc = fig.subplots(1, 2)
    step = results.get("step_time")
    if step:
        names = list(step["ratio_to_bce"])
        ratios = [step["ratio_to_bce"][n] for n in names]
        ax_step.bar(range(len(names)), ratios, color=[f"C{i}" for i in range(len(names))])
        ax_step.axhline(step["target_ratio"], color="k", linestyle="--", linewidth=1,
                        label=f"target {step['target_ratio']}")  # fmt: skip
        ax_step.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names])
        ax_step.set_ylabel("median step time / BCE")
        ax_step.legend(loc="upper left")
        for i, r in enumerate(ratios):
            ax_step.text(i, r, f"{r:.3f}", ha="center", va="bottom")
    else:
        ax_step.text(0.5, 0.5, "step time not measured", ha="center", va="center", transform=ax_step.transAxes)
    ax_step.set_title("Step time")
    eff = results.get("efficacy")
    if eff:
        for i, (method, m) in enumerate(eff["summary"].items()):
            values = [v for v in m["clean_test_auc"]["values"] if np.isfinite(v)]
            ax_auc.scatter([i] * len(values), values, color=f"C{i}", alpha=0.6, zorder=3)
            summary = m["clean_test_auc"]
            std = summary["std"] if np.isfinite(summary["std"]) else 0.0
            ax_auc.errorbar([i + 0.15], [summary["mean"]], yerr=[std], fmt="s", color=f"C{i}", capsize=4)
        ax_auc.set_xticks(range(len(eff["summary"])), [_METHOD_LABELS.get(m, m) for m in eff["summary"]])
        ax_auc.set_ylabel("clean-test AUROC (mean over diseases)")
        ax_auc.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    else:
        ax_auc.text(0.5, 0.5, "efficacy not measured", ha="center", va="center", transform=ax_auc.transAxes)
    ax_auc.set_title("Efficacy on demo data (dots: seeds; square: mean ± std)")
    fig.tight_layout()
    png_file = Path(png_file)
    png_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_file)
    return png_file


def _json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_results(results: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``nvum_bench.json`` (``nan`` as ``null``), ``nvum_bench.png`` and ``README_table.md`` into ``out_dir``.

    Returns:
        ``{"json", "png", "table"}`` paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {"json": "nvum_bench.json", "png": "nvum_bench.png", "table": "README_table.md"}
    paths = {kind: out_dir / name for kind, name in names.items()}
    paths["json"].write_text(json.dumps(_json_ready(results), indent=2) + "\n", encoding="utf-8")
    plot_results(results, paths["png"])
    paths["table"].write_text(results_table(results), encoding="utf-8")
    return paths
