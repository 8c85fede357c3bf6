# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""NVUM efficacy benchmark: the ``cxr_nvum_classification`` bundle trained with NVUM and with BCE on demo data.

:func:`run_efficacy` writes the demo data once (:func:`write_bench_data`: noisy NIH training labels, clean OpenI
and PadChest test sets), then trains the bundle in-process (``train.json`` + the ``demo.json`` small-run overlay,
:func:`monai_ext.bundle.workflow.run_bundle_workflow`) with the BCE baseline,
NVUM paper mode and NVUM official mode (:class:`scripts.bench.nvum_bundle.Method`, overrides from
:func:`scripts.bench.nvum_bundle.bundle_overrides`) for several seeds and evaluates each run
(:func:`run_bundle`): mean disease AUROC per test set, and the label audit of the run's saved memory against the
demo's recorded flips (:func:`scripts.bench.nvum_audit.audit_saved_memory`). :func:`recompute_audits` redoes the
audits of finished runs from their checkpoints without training again.

The step-time part is :mod:`scripts.bench.nvum_step`; tables, plot and JSON are :mod:`scripts.bench.nvum_report`.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.utils import look_up_option

from monai_ext.bundle.workflow import run_bundle_workflow
from monai_ext.data.datalist import DatasetLayoutError, read_csv_checked, require_dir
from monai_ext.demo import get_writer
from scripts.bench.bundles import DEMO_EVALUATE, DEMO_TRAIN, small_network_def
from scripts.bench.nvum_audit import audit_saved_memory
from scripts.bench.nvum_bundle import BUNDLE_DIR, Method, bundle_overrides
from scripts.bench.nvum_report import aggregate_runs

__all__ = ["write_bench_data", "run_dir", "read_mean_auc", "run_bundle", "run_efficacy", "recompute_audits"]

logger = logging.getLogger(__name__)

DISEASE_ROW = "mean (diseases)"  # MultiLabelReport CSV row of the mean AUROC over diseases
TEST_SETS = ("openi", "padchest")
NOISE_CSV = "demo_label_noise.csv"  # the NIH demo's record of flipped labels


def write_bench_data(
    root: str | os.PathLike,
    train_size: float = 3.0,
    test_size: float = 6.0,
    image_size: int = 64,
    lesion_contrast: float = 0.2,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Write the demo NIH (noisy training labels), OpenI and PadChest (clean) datasets under ``root/<name>``.

    Uses the demo writers (:func:`monai_ext.demo.get_writer`) with seeds ``seed``, ``seed + 1``, ``seed + 2``.

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


def run_dir(work_dir: str | os.PathLike, method: Method | str, seed: int) -> Path:
    """The folder of one run under ``work_dir``: ``<method>_seed<seed>`` (holds ``models/`` and ``eval/``).

    Raises:
        ValueError: an unknown method.
    """
    return Path(work_dir) / f"{look_up_option(method, Method).value}_seed{int(seed)}"


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


def run_bundle(
    overrides: Mapping[str, Any],
    openi_dir: str | os.PathLike,
    padchest_dir: str | os.PathLike,
    noise_csv: str | os.PathLike | None = None,
    bundle_dir: str | os.PathLike = BUNDLE_DIR,
) -> dict[str, Any]:
    """Train the bundle with ``overrides``, evaluate it on OpenI and PadChest, and read the results.

    Runs ``train.json`` + ``demo.json`` (:data:`scripts.bench.bundles.DEMO_TRAIN`) and then, once per test set
    (``test_set`` / ``test_dir``), the same with ``evaluate.json`` in-process
    (:func:`monai_ext.bundle.workflow.run_bundle_workflow`, bundle logging left alone; the evaluation keeps
    ``evaluate.json``'s own ``initialize``), then audits the memory saved in ``models/last.pt`` (NVUM runs only).

    Args:
        overrides: from :func:`scripts.bench.nvum_bundle.bundle_overrides`.
        openi_dir: the OpenI demo folder.
        padchest_dir: the PadChest demo folder.
        noise_csv: the NIH demo's ``demo_label_noise.csv``; with it the result holds ``audit`` (see
            :func:`scripts.bench.nvum_audit.audit_saved_memory`; ``None`` for the BCE baseline).
        bundle_dir: the bundle folder.

    Returns:
        ``{"openi_auc", "padchest_auc", "clean_test_auc" (their mean), "train_s", "eval_s", "audit"}`` with
        ``audit = {score: {"k", "precision_at_k", "n_flips", "n_pairs", "base_rate",
        "labels_only_precision_at_k"}}`` or ``None``; AUCs are
        the mean AUROC over the diseases (``No Finding`` left out).
    """
    start = time.perf_counter()
    run_bundle_workflow(bundle_dir, DEMO_TRAIN, "train", **overrides)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    for test_set, test_dir in (("openi", openi_dir), ("padchest", padchest_dir)):
        run_bundle_workflow(bundle_dir, DEMO_EVALUATE, "eval", test_set=test_set, test_dir=str(test_dir), **overrides)
    out_dir = Path(overrides["output_dir"])
    result: dict[str, Any] = {f"{name}_auc": read_mean_auc(out_dir / f"{name}_per_class.csv") for name in TEST_SETS}
    result["clean_test_auc"] = float(np.mean([result[f"{name}_auc"] for name in TEST_SETS]))
    result.update(train_s=train_s, eval_s=time.perf_counter() - start, audit=None)
    if noise_csv is not None:
        result["audit"] = audit_saved_memory(overrides, noise_csv, bundle_dir)
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
        work_dir: holds ``data/`` and one ``<method>_seed<seed>/`` folder per run (:func:`run_dir`).
        methods: subset of :class:`Method`, default all three.
        seeds: training seeds, default ``(0, 1, 2)``.
        train_size, test_size, image_size, lesion_contrast: see :func:`write_bench_data` (``image_size`` is also
            the network input side).
        epochs, batch_size, network_def: see :func:`scripts.bench.nvum_bundle.bundle_overrides` (``network_def``
            ``None``: the demo overlay's small DenseNet).
        data_seed: base seed of the demo data.
        bundle_dir: the bundle folder.

    Returns:
        ``{"settings", "data": {name: {"n_images", "n_flips"}}, "runs": [{"method", "seed", ...}],
        "summary": (see :func:`scripts.bench.nvum_report.aggregate_runs`)}``.
    """
    methods = [look_up_option(m, Method) for m in methods]
    work_dir = Path(work_dir)
    data = write_bench_data(work_dir / "data", train_size, test_size, image_size, lesion_contrast, data_seed)
    noise_csv = data["nih"]["files"].get("label_noise")
    runs = []
    for seed in seeds:
        for method in methods:
            overrides = bundle_overrides(
                method, seed, work_dir / "data" / "nih", run_dir(work_dir, method, seed), image_size, epochs,
                batch_size, network_def, bundle_dir,
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
        "network_def": dict(network_def) if network_def is not None else small_network_def(bundle_dir),
    }  # fmt: skip
    return {
        "settings": settings,
        "data": {name: {"n_images": s["n_images"], "n_flips": s.get("n_flips", 0)} for name, s in data.items()},
        "runs": runs,
        "summary": aggregate_runs(runs),
    }


def recompute_audits(
    efficacy: Mapping[str, Any], work_dir: str | os.PathLike, bundle_dir: str | os.PathLike = BUNDLE_DIR
) -> dict[str, Any]:
    """Redo the label audit of finished runs from the memories saved in their checkpoints, without training.

    Every run of ``efficacy["runs"]`` is looked up as ``work_dir/<method>_seed<seed>`` (its overrides rebuilt
    from ``efficacy["settings"]``) and audited with :func:`scripts.bench.nvum_audit.audit_saved_memory`
    against ``work_dir/data/nih/demo_label_noise.csv``; everything else (AUCs, timings) is kept as it is.

    Args:
        efficacy: the ``"efficacy"`` part of a benchmark result (:func:`run_efficacy`, e.g. read back from
            ``nvum_bench.json``).
        work_dir: the ``work_dir`` those runs were trained in (``data/`` and the run folders).
        bundle_dir: the bundle folder (its config gives the training datalist and the prior convention).

    Returns:
        a copy of ``efficacy`` with each run's ``audit`` replaced, ``summary`` recomputed and
        ``audit_recomputed = {"work_dir", "checkpoint"}`` added.

    Raises:
        FileNotFoundError: ``work_dir/data/nih``, its noise CSV or a run's ``models/last.pt`` is missing.
    """
    work_dir = Path(work_dir)
    nih_dir = require_dir(work_dir / "data" / "nih", "the benchmark's NIH demo data", "Pass the run's --work-dir.")
    noise_csv = nih_dir / NOISE_CSV
    settings = efficacy["settings"]
    network_def = settings.get("network_def")
    runs = []
    for run in efficacy["runs"]:
        overrides = bundle_overrides(
            run["method"], run["seed"], nih_dir, run_dir(work_dir, run["method"], run["seed"]),
            settings["image_size"], settings["epochs"], settings["batch_size"],
            network_def if isinstance(network_def, Mapping) else None, bundle_dir,
        )  # fmt: skip
        runs.append({**copy.deepcopy(dict(run)), "audit": audit_saved_memory(overrides, noise_csv, bundle_dir)})
    out = copy.deepcopy(dict(efficacy))
    out.update(runs=runs, summary=aggregate_runs(runs),
               audit_recomputed={"work_dir": str(work_dir), "checkpoint": "models/last.pt"})  # fmt: skip
    return out
