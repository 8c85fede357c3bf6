# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS efficacy benchmark: the ``covid_ct_mombs_segmentation`` bundle trained on noisy demo masks with MoMBS and
with the other sampling strategies, evaluated against the clean masks.

:func:`run_efficacy` writes the COVID CT demo once (:func:`write_bench_data`: MedSeg layout, training masks with
missing / eroded / dilated lesions, the clean masks under ``demo_clean/``), then for every seed and strategy
(``mombs``, ``random``, ``scl``, ``ohem``, ``anti_mixed``; :class:`monai_ext.samplers.SamplingStrategy`) trains the
bundle in-process (``train.json`` + the ``demo.json`` small-run overlay,
:func:`monai_ext.bundle.workflow.run_bundle_workflow`, overrides from
:func:`scripts.bench.mombs_bundle.bundle_overrides`) and evaluates it with ``evaluate.json`` on the test split
against the clean masks (``eval_mask_dir``), once with the best-validation checkpoint ``model.pt`` (validation Dice
on the *noisy* validation masks, as a user without clean masks would select) and once with ``last.pt``
(:func:`run_bundle`): the per-case mean Dice of :class:`monai_ext.handlers.SegmentationCaseReport`. For the
strategies with the assessor (``mombs``, ``anti_mixed``) the last difficulty CSV is checked against the demo's noise
record (:mod:`scripts.bench.mombs_audit`).

The same seeds serve every strategy and ``split_seed`` follows the seed (or is fixed), so that within a seed every
strategy trains, validates and tests on the same slices (paired comparison).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.utils import look_up_option

from monai_ext.bundle.workflow import run_bundle_workflow
from monai_ext.data.datalist import DatasetLayoutError, read_csv_checked, require_file
from monai_ext.demo import get_writer
from monai_ext.samplers.mombs import SamplingStrategy
from scripts.bench.bundles import DEMO_EVALUATE, DEMO_TRAIN, small_network_def
from scripts.bench.mombs_audit import category_vs_corruption, latest_difficulty_csv, slice_corruption
from scripts.bench.mombs_bundle import BUNDLE_DIR, bundle_overrides
from scripts.bench.mombs_report import aggregate_runs

__all__ = [
    "DATASET",
    "CHECKPOINTS",
    "write_bench_data",
    "run_dir",
    "read_case_dice",
    "label_values",
    "run_bundle",
    "run_efficacy",
]

logger = logging.getLogger(__name__)

DATASET = "covid_medseg"
NOISE_CSV = "demo_mask_noise.csv"
CLEAN_DIR = "demo_clean"
#: evaluated checkpoints: result key -> file under the run's ``models/``
CHECKPOINTS = {"best": "model.pt", "last": "last.pt"}


def write_bench_data(
    root: str | os.PathLike, size: float = 1.0, seed: int = 0, image_size: int = 128
) -> dict[str, Any]:
    """Write the COVID CT demo in the MedSeg layout under ``root/covid_medseg`` (noisy training masks, clean masks
    under ``demo_clean/``, ``demo_mask_noise.csv``) with the demo writer's default noise rates.

    Args:
        root: output folder.
        size: demo size (1.0: 100 Dataset-1 slices and 3 Radiopaedia-like volumes).
        seed: demo seed.
        image_size: slice side in pixels (128, the demo's default).

    Returns:
        the writer's summary.
    """
    return get_writer(DATASET)(Path(root) / DATASET, size=size, seed=seed, image_size=image_size)


def run_dir(work_dir: str | os.PathLike, strategy: SamplingStrategy | str, seed: int) -> Path:
    """The folder of one run under ``work_dir``: ``<strategy>_seed<seed>``.

    Raises:
        ValueError: an unknown strategy.
    """
    return Path(work_dir) / f"{look_up_option(strategy, SamplingStrategy).value}_seed{int(seed)}"


def _optional_float(text: Any) -> float | None:
    value = float(text) if str(text).strip() not in ("", "nan", "None") else math.nan
    return None if math.isnan(value) else value


def read_case_dice(output_dir: str | os.PathLike, prefix: str = "test") -> dict[str, Any]:
    """The results of a ``SegmentationCaseReport``: ``<prefix>_summary.json`` and ``<prefix>_per_case.csv``.

    Returns:
        ``{"mean_dice": mean over cases with a non-empty ground truth (or ``None``), "num_cases": scored cases,
        "per_case": {case_id: mean_dice or None (empty ground truth)}}``.

    Raises:
        FileNotFoundError: a file is missing.
        DatasetLayoutError: the summary has no ``mean_dice`` entry or the CSV no ``case_id``/``mean_dice`` column.
    """
    summary_file = require_file(Path(output_dir) / f"{prefix}_summary.json", "SegmentationCaseReport summary")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    if not isinstance(summary.get("mean_dice"), Mapping) or "mean" not in summary["mean_dice"]:
        raise DatasetLayoutError(f"'{summary_file}' has no 'mean_dice': {{'mean': ...}} entry.")
    table = read_csv_checked(Path(output_dir) / f"{prefix}_per_case.csv", ["case_id", "mean_dice"],
                             "SegmentationCaseReport per-case CSV", keep_default_na=False)  # fmt: skip
    per_case = {str(c): _optional_float(v) for c, v in zip(table["case_id"], table["mean_dice"])}
    mean = summary["mean_dice"]["mean"]
    return {
        "mean_dice": None if mean is None else float(mean),
        "num_cases": int(summary["mean_dice"].get("num_cases", sum(v is not None for v in per_case.values()))),
        "per_case": per_case,
    }


def label_values(label_map: Mapping[str, int | Sequence[int]]) -> set[int]:
    """The source mask values a bundle ``label_map`` keeps, e.g. ``{"infection": [1, 2]}`` -> ``{1, 2}``."""
    values: set[int] = set()
    for v in label_map.values():
        values |= {int(x) for x in v} if isinstance(v, Sequence) and not isinstance(v, str) else {int(v)}
    return values


def run_bundle(
    overrides: Mapping[str, Any],
    eval_mask_dir: str | os.PathLike,
    noise_csv: str | os.PathLike | None = None,
    checkpoints: Mapping[str, str] | None = None,
    bundle_dir: str | os.PathLike = BUNDLE_DIR,
) -> dict[str, Any]:
    """Train the bundle with ``overrides``, evaluate its checkpoints against ``eval_mask_dir``, read the results.

    Runs ``train.json`` + ``demo.json`` and then, per checkpoint, the same with ``evaluate.json`` in-process
    (:func:`monai_ext.bundle.workflow.run_bundle_workflow`, bundle logging left alone) with ``ckpt_path``,
    ``eval_mask_dir`` and ``output_dir = <run>/test_<key>``.

    Args:
        overrides: from :func:`scripts.bench.mombs_bundle.bundle_overrides`.
        eval_mask_dir: root of the masks evaluated against (the demo's ``demo_clean``).
        noise_csv: the demo's ``demo_mask_noise.csv``; with it, a run that wrote difficulty CSVs gets
            ``categories`` (:func:`scripts.bench.mombs_audit.category_vs_corruption` of the last one).
        checkpoints: ``{key: file under ckpt_dir}``, default :data:`CHECKPOINTS`.
        bundle_dir: the bundle folder.

    Returns:
        ``{"dice_<key>": mean case Dice, "per_case_<key>": {case: Dice}, "best_val_dice", "best_val_epoch",
        "n_train", "train_s", "eval_s", "categories": ... or None, "difficulty_csv": path or None}``.
    """
    start = time.perf_counter()
    train = run_bundle_workflow(bundle_dir, DEMO_TRAIN, "train", **overrides)
    result: dict[str, Any] = {"train_s": time.perf_counter() - start}
    state = train.parser.get_parsed_content("validate#evaluator").state
    result["best_val_dice"] = float(state.best_metric)
    result["best_val_epoch"] = int(state.best_metric_epoch)
    datalist = train.parser.get_parsed_content("train#datalist")
    result["n_train"] = len(datalist)
    start = time.perf_counter()
    run_root = Path(overrides["output_dir"]).parent
    for key, name in (CHECKPOINTS if checkpoints is None else checkpoints).items():
        out_dir = run_root / f"test_{key}"
        run_bundle_workflow(
            bundle_dir, DEMO_EVALUATE, "eval",
            **{**overrides, "output_dir": str(out_dir), "ckpt_path": str(Path(overrides["ckpt_dir"]) / name),
               "eval_mask_dir": str(eval_mask_dir)},
        )  # fmt: skip
        dice = read_case_dice(out_dir, "test")
        result[f"dice_{key}"] = dice["mean_dice"]
        result[f"per_case_{key}"] = dice["per_case"]
    result["eval_s"] = time.perf_counter() - start
    result["categories"], result["difficulty_csv"] = None, None
    difficulty_dir = Path(overrides["output_dir"]) / "difficulty"
    if noise_csv is not None and difficulty_dir.is_dir():
        csv_file = latest_difficulty_csv(difficulty_dir)
        corruption = slice_corruption(noise_csv, datalist, overrides["dataset_dir"],
                                      label_values(train.parser.get_parsed_content("label_map")))  # fmt: skip
        result["categories"] = category_vs_corruption(csv_file, corruption)
        result["difficulty_csv"] = str(csv_file)
    return result


def run_efficacy(
    work_dir: str | os.PathLike,
    strategies: Sequence[SamplingStrategy | str] = ("mombs", "random", "scl", "ohem", "anti_mixed"),
    seeds: Sequence[int] = (0, 1, 2),
    image_size: int = 64,
    epochs: int = 12,
    pivot_epoch: int = 4,
    batch_size: int = 8,
    num_disturbances: int = 8,
    network_def: Mapping[str, Any] | None = None,
    split_seed: int | None = None,
    data_size: float = 1.0,
    data_seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    bundle_dir: str | os.PathLike = BUNDLE_DIR,
) -> dict[str, Any]:
    """Write the demo data once (unless ``data_dir`` is given), then train and evaluate every strategy for every
    seed (seed-major order).

    Args:
        work_dir: holds ``data/`` and one ``<strategy>_seed<seed>/`` folder per run (:func:`run_dir`).
        strategies: subset of :class:`monai_ext.samplers.SamplingStrategy`; default all five.
        seeds: training seeds, default ``(0, 1, 2)``.
        image_size, epochs, pivot_epoch, batch_size, num_disturbances, network_def: see
            :func:`scripts.bench.mombs_bundle.bundle_overrides` (defaults 64 px, 12 epochs, pivot 4, batch 8,
            ``K`` 8, the demo overlay's small ``SplitUNet``).
        split_seed: seed of the train/val/test split; ``None`` (default) uses each run's training seed (the split
            changes with the seed, every strategy of a seed shares it).
        data_size: demo size, default 1.0.
        data_seed: demo seed, default 0.
        data_dir: an existing ``covid_medseg`` demo folder to use instead of writing one.
        bundle_dir: the bundle folder.

    Returns:
        ``{"settings", "data": {"n_slices", "n_lesions", "corruptions": {kind: lesions}}, "runs": [{"strategy",
        "seed", ...}], "summary": (see :func:`scripts.bench.mombs_report.aggregate_runs`)}``.
    """
    strategies = [look_up_option(s, SamplingStrategy) for s in strategies]
    work_dir = Path(work_dir)
    dataset_dir = Path(data_dir) if data_dir is not None else work_dir / "data" / DATASET
    if data_dir is None:
        write_bench_data(work_dir / "data", data_size, data_seed)
    noise_csv = require_file(dataset_dir / NOISE_CSV, "the demo's mask-noise record",
                             "Write the demo with python -m monai_ext.demo --only covid_medseg.")  # fmt: skip
    clean_dir = dataset_dir / CLEAN_DIR
    runs = []
    for seed in seeds:
        for strategy in strategies:
            overrides = bundle_overrides(
                strategy, seed, dataset_dir, run_dir(work_dir, strategy, seed), image_size, epochs, pivot_epoch,
                batch_size, num_disturbances, split_seed, network_def,
            )  # fmt: skip
            result = run_bundle(overrides, clean_dir, noise_csv if strategy.uses_uncertainty else None,
                                bundle_dir=bundle_dir)  # fmt: skip
            runs.append({"strategy": strategy.value, "seed": int(seed), **result})
            logger.info(
                f"MoMBS bench: {strategy.value} seed {seed}: clean-test Dice {result['dice_best']} (best val epoch "
                f"{result['best_val_epoch']}), last {result['dice_last']}, train {result['train_s']:.0f} s."
            )
    noise = read_csv_checked(noise_csv, ["mask", "label", "corruption"], "demo mask-noise CSV")
    settings = {
        "strategies": [s.value for s in strategies], "seeds": [int(s) for s in seeds], "image_size": image_size,
        "epochs": epochs, "pivot_epoch": pivot_epoch, "batch_size": batch_size, "num_disturbances": num_disturbances,
        "split_seed": "training seed" if split_seed is None else int(split_seed), "data_size": data_size,
        "data_seed": data_seed,
        "network_def": dict(network_def) if network_def is not None else small_network_def(bundle_dir),
        "checkpoints": dict(CHECKPOINTS),
    }  # fmt: skip
    return {
        "settings": settings,
        "data": {
            "dataset_dir": str(dataset_dir),
            "n_lesions": int(len(noise)),
            "corruptions": {str(k): int(v) for k, v in noise["corruption"].astype(str).value_counts().items()},
        },
        "runs": runs,
        "summary": aggregate_runs(runs),
    }
