# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Powered efficacy study of meta soft-label learning on the ROP demo data (DESIGN.md, "How we show that a method
works").

Arms, each trained through the bundle ``rop_meta_softlabel_classification`` (``train.json`` + ``demo.json``) and
evaluated with its ``evaluate.json`` on the clean (unanimous) test images:

- ``ce``: cross-entropy on the majority vote (the paper's baseline, Table I);
- ``ce_annotator_average``: cross-entropy to the average of the three annotators' readings;
- ``meta_per_sample``: meta soft labels with per-sample label logits (Eq. 1-4, the default);
- ``meta_network``: meta soft labels from the label network (official ROP code's ``meta_train``);
- ``ce_clean``: cross-entropy on the demo generator's true labels (the learnability check: it must beat ``ce``).

Budget: the learning rate is chosen for ``ce`` on the tuning seed from ``plan.lr_grid`` by the best accuracy on the
clean meta set (the bundle's validation set, as in the official code), and every arm trains with it; each meta arm
chooses its label learning rate ``beta`` (Eq. 2) from ``plan.beta_grid`` the same way (as many runs as ``ce``'s
search; the paper's 4000 is in the grid), keeping ``alpha = 0.5`` and ``K = 10``. Model selection inside a run is the
bundle's: the epoch with the best meta-set accuracy. The test set is used only for the reported numbers. Paired
seeds: the data are fixed, the seed sets the initialisation, shuffling and augmentation of every arm alike.

Also reported for the meta arms, from the run's ``soft_labels.csv``: how often the soft label's argmax equals the
demo generator's true label, over all training images and over those whose majority vote was wrong.
"""

from __future__ import annotations

import copy
import csv
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from monai.utils.enums import StrEnum

from monai_ext.bundle.workflow import run_bundle_workflow
from monai_ext.data import rop_datalist
from monai_ext.demo.rop import write_rop_demo
from scripts.bench import study
from scripts.bench.bundles import (
    DEMO_EVALUATE,
    DEMO_TRAIN,
    ROP_BUNDLE,
    cached_datasets,
    plain_tensors_after_caching,
    restore_track_meta,
    run_folders,
)

__all__ = ["Arm", "ARM_LABELS", "StudyPlan", "PLANS", "write_study_data", "run_overrides", "train_and_evaluate"]
__all__ += ["run_study", "aggregate_study", "soft_label_truth"]

logger = logging.getLogger(__name__)

VAL_METRIC = "val_accuracy"


class Arm(StrEnum):
    """The study's arms (see the module docstring)."""

    CE = "ce"
    CE_ANNOTATOR_AVERAGE = "ce_annotator_average"
    META_PER_SAMPLE = "meta_per_sample"
    META_NETWORK = "meta_network"
    CE_CLEAN = "ce_clean"


ARM_LABELS = {
    Arm.CE.value: "CE (majority vote)",
    Arm.CE_ANNOTATOR_AVERAGE.value: "CE (annotator average)",
    Arm.META_PER_SAMPLE.value: "meta soft labels (per-sample)",
    Arm.META_NETWORK.value: "meta soft labels (label network)",
    Arm.CE_CLEAN.value: "CE (true labels, learnability)",
}

#: ``(soft_label_method, soft_label_source)`` of each arm
_METHOD = {
    Arm.CE: ("cross_entropy", "per_sample"),
    Arm.CE_ANNOTATOR_AVERAGE: ("annotator_average", "per_sample"),
    Arm.META_PER_SAMPLE: ("meta", "per_sample"),
    Arm.META_NETWORK: ("meta", "network"),
    Arm.CE_CLEAN: ("cross_entropy", "per_sample"),
}

STUDY_NETWORK = {
    "_target_": "monai.networks.nets.ResNet",
    "block": "basic",
    "layers": [1, 1, 1, 1],
    "block_inplanes": [16, 32, 64, 128],
    "spatial_dims": 2,
    "n_input_channels": 3,
    "num_classes": "@num_classes",
}
"""The study's network: the demo overlay's small MONAI ResNet (basic blocks, one per stage, 16-128 channels; its
classifier layer is ``fc`` as in ResNet-50, so the label network works unchanged)."""


@dataclass(frozen=True)
class StudyPlan:
    """Sizes, schedule and seeds of one form of the study.

    Attributes:
        name: ``"full"``, ``"default"`` or ``"quick"``.
        size: ROP demo size (1.0 = 30 infants, about 270 images).
        split_fractions: infant fractions train / val / test / meta of the demo writer.
        image_size: written image side; ``resize_size`` / ``crop_size``: the bundle's resize and centre crop.
        epochs, warmup_epochs, lr_milestones: the schedule. Sec. IV-C trains a pre-trained ResNet-50 30 epochs, 10 of
            them warm-up, and divides the learning rate by 10 at epochs 10 and 20; the study's network starts from
            scratch, which at the paper's milestones (in proportion, 5 and 10 of 15) stopped learning at a meta-set
            accuracy of 0.63 in a probe run, so ``default`` keeps the warm-up third and divides at 10 and 13 of 15
            (``full`` keeps the paper's schedule).
        batch_size, meta_batch_size: training and meta batch (Sec. IV-C: 16).
        lr_grid: learning rates ``ce`` chooses from on ``seeds[0]``.
        beta_grid: label learning rates (Eq. 2) each meta arm chooses from on ``seeds[0]`` at ``ce``'s learning rate
            (the same number of tuning runs as ``ce``).
        seeds: evaluation seeds (``seeds[0]`` also tunes).
    """

    name: str
    size: float
    image_size: int
    resize_size: int
    crop_size: int
    epochs: int
    warmup_epochs: int
    lr_milestones: tuple[int, ...]
    seeds: tuple[int, ...]
    lr_grid: tuple[float, ...]
    beta_grid: tuple[float, ...] = (100.0, 400.0, 4000.0)
    batch_size: int = 16
    meta_batch_size: int = 16
    split_fractions: tuple[float, float, float, float] = (0.35, 0.05, 0.45, 0.15)
    workers: int = 2
    data_seed: int = 101
    network_def: Mapping[str, Any] = field(default_factory=lambda: copy.deepcopy(STUDY_NETWORK))


PLANS: dict[str, StudyPlan] = {
    "default": StudyPlan("default", size=19.0, image_size=40, resize_size=36, crop_size=32, epochs=15,
                         warmup_epochs=5, lr_milestones=(10, 13), seeds=(0, 1, 2, 3, 4), lr_grid=(0.01, 0.03, 0.1)),
    "full": StudyPlan("full", size=19.0, image_size=72, resize_size=72, crop_size=64, epochs=30, warmup_epochs=10,
                      lr_milestones=(10, 20), seeds=(0, 1, 2, 3, 4, 5, 6, 7), lr_grid=(0.003, 0.01, 0.03, 0.1)),
    "quick": StudyPlan("quick", size=2.0, image_size=40, resize_size=36, crop_size=32, epochs=3, warmup_epochs=1,
                       lr_milestones=(1, 2), seeds=(0, 1), lr_grid=(0.03,), meta_batch_size=8,
                       beta_grid=(4000.0,)),
}  # fmt: skip


# ---- data --------------------------------------------------------------------------------------------------------


def _clean_copy(noisy_dir: Path, out_dir: Path) -> Path:
    """A copy of the ROP layout in which every annotator of every *training* infant reads the true label (so its
    majority vote is the truth); val / test / meta rows, images (linked) and splits are unchanged."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for name in ("splits.csv", "annotators.json", "demo_truth.csv"):
        shutil.copy2(noisy_dir / name, out_dir / name)
    (out_dir / "images").symlink_to((noisy_dir / "images").resolve(), target_is_directory=True)
    labels = pd.read_csv(noisy_dir / "labels.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(noisy_dir / "demo_truth.csv").set_index("image_id")["label_true"]
    splits = pd.read_csv(noisy_dir / "splits.csv", dtype=str).set_index("infant_id")["split"]
    train = labels["infant_id"].map(splits) == "train"
    true = labels.loc[train, "image_id"].map(truth).astype(int).astype(str)
    for a in ("A1", "A2", "A3"):
        labels.loc[train, f"label_{a}"] = true
    labels.loc[train, "label_majority"] = true
    labels.loc[train, "label_consensus"] = true
    labels.loc[train, "n_agree"] = "3"
    labels.loc[train, "consensus"] = "1"
    labels.to_csv(out_dir / "labels.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    return out_dir


def write_study_data(root: str | os.PathLike, plan: StudyPlan) -> dict[str, Any]:
    """Write the noisy ROP demo (``root/rop``) and its clean-label copy (``root/rop_clean``).

    Returns:
        ``{"folders": {"rop", "rop_clean"}, "sizes": {split: images}, "majority_errors": fraction of training images
        whose majority vote differs from the true label, "writer": the demo writer's summary}``.
    """
    root = Path(root)
    summary = write_rop_demo(root / "rop", size=plan.size, seed=plan.data_seed, image_size=plan.image_size,
                             split_fractions=plan.split_fractions)  # fmt: skip
    _clean_copy(root / "rop", root / "rop_clean")
    truth = pd.read_csv(root / "rop" / "demo_truth.csv").set_index("image_id")["label_true"]
    lists = {s: rop_datalist(root / "rop", s, check_files=False) for s in ("train", "meta", "test")}
    train = lists["train"]
    wrong = [it for it in train if int(truth[it["image_id"]]) != it["label"]]
    return {
        "folders": {"rop": str(root / "rop"), "rop_clean": str(root / "rop_clean")},
        "sizes": {s: len(v) for s, v in lists.items()},
        "class_counts": {s: np.bincount([it["label"] for it in v], minlength=3).tolist() for s, v in lists.items()},
        "majority_errors": len(wrong) / max(1, len(train)),
        "writer": summary,
    }


# ---- one run -----------------------------------------------------------------------------------------------------


def run_overrides(
    arm: Arm | str, seed: int, learning_rate: float, data: Mapping[str, Any], run_dir: str | os.PathLike,
    plan: StudyPlan, beta: float = 4000.0,
) -> dict[str, Any]:  # fmt: skip
    """The bundle overrides of one run (``train.json`` + ``demo.json``)."""
    arm = Arm(arm)
    method, source = _METHOD[arm]
    overrides = {
        "dataset_dir": data["folders"]["rop_clean" if arm == Arm.CE_CLEAN else "rop"],
        **run_folders(run_dir),
        "resize_size": plan.resize_size,
        "image_size": plan.crop_size,
        "epochs": plan.epochs,
        "warmup_epochs": plan.warmup_epochs,
        "lr_milestones": list(plan.lr_milestones),
        "batch_size": plan.batch_size,
        "meta_batch_size": plan.meta_batch_size,
        "learning_rate": float(learning_rate),
        "meta_beta": float(beta),
        "seed": int(seed),
        "soft_label_method": method,
        "soft_label_source": source,
        "network_def": copy.deepcopy(dict(plan.network_def)),
        "overwrite": True,
        **cached_datasets(),
        "meta#dataset#_target_": "CacheDataset",
        "meta#dataset#progress": False,
    }
    return overrides


def soft_label_truth(soft_csv: str | os.PathLike, truth_csv: str | os.PathLike) -> dict[str, Any]:
    """How the learned soft labels relate to the demo's true labels (``soft_labels.csv`` of a run).

    Returns:
        ``{"n", "moved" (argmax != noisy label), "argmax_true" (argmax == truth, all images), "noisy_true" (noisy
        label == truth), "n_majority_wrong", "fixed_when_wrong" (argmax == truth where the noisy label was wrong),
        "broken_when_right" (argmax != truth where the noisy label was right)}`` (fractions).
    """
    soft = pd.read_csv(soft_csv)
    truth = pd.read_csv(truth_csv)
    truth["image_stem"] = truth["image_id"]
    soft["image_id"] = soft["image"].map(lambda p: "_".join(Path(str(p)).parts[-3:-1] + (Path(str(p)).stem,)))
    merged = soft.merge(truth[["image_id", "label_true"]], on="image_id", how="left")
    if merged["label_true"].isna().any():
        raise ValueError(f"{int(merged['label_true'].isna().sum())} rows of '{soft_csv}' have no true label.")
    noisy, argmax, true = merged["noisy_label"], merged["soft_argmax"], merged["label_true"].astype(int)
    wrong = noisy != true
    return {
        "n": int(len(merged)),
        "moved": float((argmax != noisy).mean()),
        "argmax_true": float((argmax == true).mean()),
        "noisy_true": float((noisy == true).mean()),
        "n_majority_wrong": int(wrong.sum()),
        "fixed_when_wrong": float((argmax[wrong] == true[wrong]).mean()) if wrong.any() else float("nan"),
        "broken_when_right": float((argmax[~wrong] != true[~wrong]).mean()) if (~wrong).any() else float("nan"),
    }


def train_and_evaluate(
    arm: str, seed: int, learning_rate: float, data: Mapping[str, Any], run_dir: str, plan: StudyPlan,
    beta: float = 4000.0, bundle_dir: str = str(ROP_BUNDLE),
) -> dict[str, Any]:  # fmt: skip
    """Train one run through the bundle, evaluate it on the clean test images, read its results (a worker job).

    Returns:
        ``{"arm", "seed", "learning_rate", "val_accuracy" (best meta-set accuracy), "best_epoch", "test_accuracy",
        "test_macro_f1", "test_per_class_f1", "soft_labels" (meta arms: :func:`soft_label_truth`), "train_s",
        "eval_s"}``.
    """
    overrides = run_overrides(arm, seed, learning_rate, data, run_dir, plan, beta)
    start = time.perf_counter()
    with restore_track_meta():
        workflow = run_bundle_workflow(bundle_dir, DEMO_TRAIN, "train", hooks=[plain_tensors_after_caching],
                                       **overrides)  # fmt: skip
    state = workflow.parser.get_parsed_content("validate#evaluator").state
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    test_overrides = {**overrides, "output_dir": str(Path(run_dir) / "test")}
    with restore_track_meta():
        run_bundle_workflow(bundle_dir, DEMO_EVALUATE, "eval", hooks=[plain_tensors_after_caching], **test_overrides)
    report = pd.read_json(Path(run_dir) / "test" / "classification_report.json", typ="series")
    result: dict[str, Any] = {
        "arm": str(arm),
        "seed": int(seed),
        "learning_rate": float(learning_rate),
        "beta": float(beta),
        VAL_METRIC: float(state.best_metric),
        "best_epoch": int(state.best_metric_epoch),
        "test_accuracy": float(report["accuracy"]),
        "test_macro_f1": float(report["macro_f1"]),
        "test_per_class_f1": {c["class"]: float(c["f1"]) for c in report["per_class"]},
        "soft_labels": None,
        "train_s": train_s,
        "eval_s": time.perf_counter() - start,
    }
    soft_csv = Path(overrides["output_dir"]) / "soft_labels.csv"
    if Arm(arm) in (Arm.META_PER_SAMPLE, Arm.META_NETWORK):
        result["soft_labels"] = soft_label_truth(soft_csv, Path(overrides["dataset_dir"]) / "demo_truth.csv")
    logger.info(
        f"ROP study: {arm} seed {seed} lr {learning_rate:g} beta {beta:g}: val {result[VAL_METRIC]:.4f} (epoch "
        f"{result['best_epoch']}), test accuracy {result['test_accuracy']:.4f}, macro F1 {result['test_macro_f1']:.4f}"
        f", train {train_s:.0f} s."
    )
    return result


# ---- the study ---------------------------------------------------------------------------------------------------


META_ARMS = (Arm.META_PER_SAMPLE, Arm.META_NETWORK)


def _job(
    arm: Arm | str, seed: int, lr: float, data: Mapping[str, Any], work: Path, plan: StudyPlan, beta: float = 4000.0
) -> dict:
    arm = Arm(arm)
    tag = f"_beta{beta:g}" if arm in META_ARMS else ""
    return dict(arm=arm.value, seed=int(seed), learning_rate=float(lr), beta=float(beta), data=data, plan=plan,
                run_dir=str(work / f"{arm.value}_lr{lr:g}{tag}_seed{seed}"))  # fmt: skip


def run_study(
    work_dir: str | os.PathLike, plan: StudyPlan, arms: Sequence[Arm | str] = tuple(Arm), workers: int | None = None
) -> dict[str, Any]:
    """Write the data; on the tuning seed choose ``ce``'s learning rate, then each meta arm's ``beta`` at that
    learning rate; train every arm on the other seeds with its choice; aggregate (:func:`aggregate_study`).

    Raises:
        ValueError: ``ce`` is not among ``arms``.
    """
    arms = [Arm(a) for a in arms]
    if Arm.CE not in arms:
        raise ValueError("the study needs the 'ce' arm: it is the baseline and sets every arm's learning rate.")
    workers = plan.workers if workers is None else int(workers)
    work = Path(work_dir)
    start = time.perf_counter()
    data = write_study_data(work / "data", plan)
    logger.info(f"ROP study data: {data['sizes']}, majority-vote errors {data['majority_errors']:.3f}.")
    tuning_seed, other_seeds = plan.seeds[0], plan.seeds[1:]
    jobs = [_job(Arm.CE, tuning_seed, lr, data, work, plan) for lr in plan.lr_grid]
    tuning = {Arm.CE.value: study.run_parallel(train_and_evaluate, jobs, workers)}
    lr = float(study.select_best(tuning[Arm.CE.value], VAL_METRIC)["learning_rate"])
    logger.info(f"ROP study: ce chose learning rate {lr:g}.")
    meta = [a for a in arms if a in META_ARMS]
    plain = [a for a in arms if a not in META_ARMS and a != Arm.CE]
    jobs = [_job(a, tuning_seed, lr, data, work, plan, beta) for a in meta for beta in plan.beta_grid]
    jobs += [_job(a, tuning_seed, lr, data, work, plan) for a in plain]
    for job, result in zip(jobs, study.run_parallel(train_and_evaluate, jobs, workers)):
        tuning.setdefault(job["arm"], []).append(result)
    chosen = {a: study.select_best(trials, VAL_METRIC) for a, trials in tuning.items()}
    betas = {a: float(chosen[a.value]["beta"]) for a in meta}
    logger.info(f"ROP study: meta arms chose beta {betas}.")
    jobs = [_job(a, s, lr, data, work, plan, betas.get(a, 4000.0)) for s in other_seeds for a in arms]
    runs = [chosen[a.value] for a in arms] + study.run_parallel(train_and_evaluate, jobs, workers)
    keys = ("arm", "learning_rate", "beta", VAL_METRIC, "best_epoch", "test_accuracy", "soft_labels")
    out = {
        "plan": {**asdict(plan), "network_def": dict(plan.network_def)},
        "data": data,
        "tuning": {a: [{k: t[k] for k in keys} for t in trials] for a, trials in tuning.items()},
        "learning_rate": lr,
        "betas": {a.value: b for a, b in betas.items()},
        "runs": runs,
        "wall_s": time.perf_counter() - start,
        "workers": workers,
    }
    out["summary"] = aggregate_study(runs)
    return out


METRICS = ("test_accuracy", "test_macro_f1")


def aggregate_study(runs: Sequence[Mapping[str, Any]], baseline: str = Arm.CE.value) -> dict[str, Any]:
    """Per arm: mean +- std over seeds of :data:`METRICS` and the soft-label truth fractions, and the paired
    difference to ``baseline`` with its 95 % CI (:func:`scripts.bench.study.paired_difference`)."""
    by_arm: dict[str, dict[int, Mapping[str, Any]]] = {}
    for run in runs:
        by_arm.setdefault(run["arm"], {})[int(run["seed"])] = run
    summary: dict[str, Any] = {}
    for arm, seeds in by_arm.items():
        entry: dict[str, Any] = {}
        for metric in METRICS:
            values = {s: r[metric] for s, r in seeds.items()}
            entry[metric] = study.summarise([values[s] for s in sorted(values)])
            entry[metric]["per_seed"] = values
            if baseline in by_arm and arm != baseline:
                base = {s: r[metric] for s, r in by_arm[baseline].items()}
                entry[f"delta_{metric}"] = study.paired_difference(values, base)
        soft = [r["soft_labels"] for r in seeds.values() if r.get("soft_labels")]
        if soft:
            entry["soft_labels"] = {k: study.summarise([s[k] for s in soft]) for k in soft[0]}
        entry["best_epoch"] = study.summarise([r["best_epoch"] for r in seeds.values()])
        entry["train_s"] = study.summarise([r["train_s"] for r in seeds.values()])
        summary[arm] = entry
    return summary
