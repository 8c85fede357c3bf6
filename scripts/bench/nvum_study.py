# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The powered NVUM efficacy study of ``make bench`` (``shared/DESIGN.md``, "How we show that a method works").

The ``cxr_nvum_classification`` bundle is trained on demo NIH data with noisy labels (the real NIH-vs-radiologist
flip rates of the demo generator) and evaluated on clean OpenI- and PadChest-like test sets, for several *arms*
(:class:`Arm`): the BCE baseline, BCE on the *clean* training labels (the learnability check: the room a
noise-robust method has), NVUM paper mode, NVUM official mode (github FBLADL/NVUM at HEAD 86d431d) and one ablation
that isolates the paper's idea (paper mode without the prior correction: the memory averages raw logits).

Protocol (a :class:`StudyPlan`; ``full`` is the powered study, ``quick`` a smoke run of the same code):

1. **Data** (:func:`write_study_data`): one NIH demo set (noisy labels), a copy of it whose ``Data_Entry`` CSV holds
   the clean labels (same image files, linked), and OpenI / PadChest demo test sets with at least
   ``min_test_positives`` positives of every class.
2. **Tuning** on the *noisy* validation split only (the bundle's patient-disjoint ``val`` split; the clean-label arm
   uses its own, clean, validation split), every arm with the same budget of ``len(grid)`` runs on the tuning seed:
   BCE and BCE-clean tune the learning rate over ``lr_grid``; every NVUM arm tunes ``reg_weight`` over ``reg_grid``
   at the learning rate BCE chose (NVUM is BCE plus a term, trained by the same optimiser). The score of a run is
   the best noisy-validation mean AUROC over its epochs, the same number that picks the checkpoint ``model.pt``
   the test sets are evaluated with.
3. **Evaluation**: each arm with its chosen setting for every seed of ``seeds`` (the tuning runs are the runs of the
   tuning seed, ``seeds[0]``). Seed ``s`` gives every arm the same data order and network initialisation
   (the bundle's ``set_determinism(seed)``), so arms are paired by seed.

Runs go through the bundle itself (``train.json`` + ``demo.json`` + the run's overrides, then ``evaluate.json``
once per test set) in worker processes (:func:`scripts.bench.study.run_parallel`). Once a run's datasets are
cached, MONAI's metadata tracking is switched off (:func:`scripts.bench.bundles.plain_tensors_after_caching`): the
random transforms and the network then work on plain tensors, which makes a CPU run about 4x faster per image and
changes no pixel.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from monai.utils.enums import StrEnum

from monai_ext.bundle.workflow import run_bundle_workflow
from monai_ext.data.cxr import nvum_datalist, nvum_setting_classes
from monai_ext.data.datalist import DatasetLayoutError, read_csv_checked
from monai_ext.demo import get_writer
from scripts.bench import study
from scripts.bench.bundles import (
    DEMO_EVALUATE,
    DEMO_TRAIN,
    cached_datasets,
    plain_tensors_after_caching,
    restore_track_meta,
    run_folders,
)
from scripts.bench.nvum_audit import audit_saved_memory
from scripts.bench.nvum_bundle import BUNDLE_DIR

__all__ = [
    "Arm",
    "ARM_LABELS",
    "StudyPlan",
    "PLANS",
    "TINY_NETWORK",
    "write_study_data",
    "clean_label_copy",
    "run_overrides",
    "train_and_evaluate",
    "head_tail_classes",
    "run_study",
    "aggregate_study",
]

logger = logging.getLogger(__name__)

TEST_SETS = ("openi", "padchest")
DISEASE_ROW = "mean (diseases)"  # MultiLabelReport CSV row of the mean AUROC over diseases
NOISE_CSV = "demo_label_noise.csv"
ENTRY_CSV = "Data_Entry_2017_v2020.csv"
VAL_METRIC = "val_auc"
TRACE_COLUMNS = ("iteration", "bce_grad_norm", "reg_grad_norm", "memory_min", "memory_max", "sigmoid_dot_mean")


class Arm(StrEnum):
    """The arms of the study: one training method (and label set) each."""

    BCE = "bce"
    BCE_CLEAN = "bce_clean"
    PAPER = "nvum_paper"
    OFFICIAL = "nvum_official"
    PAPER_NO_PRIOR = "nvum_paper_no_prior"


ARM_LABELS = {
    Arm.BCE.value: "BCE (noisy labels, baseline)",
    Arm.BCE_CLEAN.value: "BCE on clean labels (upper bound)",
    Arm.PAPER.value: "NVUM paper mode",
    Arm.OFFICIAL.value: "NVUM official mode (HEAD)",
    Arm.PAPER_NO_PRIOR.value: "NVUM paper, no prior correction",
}
NVUM_ARMS = (Arm.PAPER, Arm.OFFICIAL, Arm.PAPER_NO_PRIOR)

TINY_NETWORK: dict[str, Any] = {
    "_target_": "DenseNet",
    "spatial_dims": 2,
    "in_channels": 3,
    "out_channels": "@num_classes",
    "init_features": 8,
    "growth_rate": 8,
    "block_config": [2, 2, 2, 2],
}
"""The study's network: a MONAI DenseNet with 4 dense blocks of 2 layers (26k parameters), small enough for 35 CPU
runs; the bundle's DenseNet121 is what the step-time part measures."""


@dataclass(frozen=True)
class StudyPlan:
    """Sizes, schedule, grids and seeds of one form of the study (see :data:`PLANS`).

    Attributes:
        name: ``"full"`` or ``"quick"``.
        nih_size: NIH demo size (1.0 = 90 patients, ~225 images); ``nih_test_fraction`` of patients go to its own
            test list (unused here).
        test_size: OpenI and PadChest sizes (1.0 = 80 reports / 100 studies), one frontal image each.
        min_test_positives: every class of both test sets has at least this many positives.
        image_size: written image side and network input side, pixels.
        lesion_contrast: the demo writers' lesion strength.
        epochs, batch_size: training schedule (Adam, the bundle's betas and eps, MultiStepLR at 70 % / 90 %).
        seeds: evaluation seeds; ``seeds[0]`` is also the tuning seed.
        lr_grid: learning rates BCE and BCE-clean choose from.
        reg_grid: ``reg_weight`` values each NVUM arm chooses from (at BCE's learning rate).
        workers: parallel runs (one torch thread each).
        adam_eps: Adam's eps, the bundle's ``train.json`` value (0.1, the official NVUM setting), set explicitly so
            that the small-run overlay's optimiser (``demo.json``) does not apply.
    """

    name: str
    nih_size: float
    test_size: float
    min_test_positives: int
    image_size: int
    lesion_contrast: float
    epochs: int
    batch_size: int
    seeds: tuple[int, ...]
    lr_grid: tuple[float, ...]
    reg_grid: tuple[float, ...]
    workers: int = 2
    adam_eps: float = 0.1
    nih_test_fraction: float = 0.02
    data_seed: int = 0
    network_def: Mapping[str, Any] = field(default_factory=lambda: copy.deepcopy(TINY_NETWORK))


PLANS: dict[str, StudyPlan] = {
    "full": StudyPlan("full", nih_size=27.0, test_size=31.0, min_test_positives=30, image_size=40,
                      lesion_contrast=0.6, epochs=8, batch_size=32, seeds=(0, 1, 2, 3, 4),
                      lr_grid=(0.02, 0.05, 0.1), reg_grid=(0.1, 1.0, 10.0)),
    "quick": StudyPlan("quick", nih_size=3.0, test_size=3.0, min_test_positives=5, image_size=32,
                       lesion_contrast=0.6, epochs=2, batch_size=32, seeds=(0, 1),
                       lr_grid=(0.05, 0.1), reg_grid=(1.0,)),
}  # fmt: skip


# ---- data --------------------------------------------------------------------------------------------------------


def clean_label_copy(nih_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """A copy of a demo NIH folder whose ``Data_Entry_2017_v2020.csv`` holds the *clean* labels of
    ``demo_clean_labels.csv``; the images, split lists and box file are symbolic links to the originals (the same
    pixels, the same patients in the same splits).

    Raises:
        FileNotFoundError: a file of ``nih_dir`` is missing.
        DatasetLayoutError: a CSV lacks a column, or an image of the Data_Entry CSV has no clean-label row.
    """
    nih_dir, out_dir = Path(nih_dir), Path(out_dir)
    entry = read_csv_checked(nih_dir / ENTRY_CSV, ["Image Index", "Finding Labels"], "NIH Data_Entry CSV")
    clean = read_csv_checked(nih_dir / "demo_clean_labels.csv", ["image", "split"], "demo clean-label CSV")
    clean = clean.set_index("image")
    missing = sorted(set(entry["Image Index"]) - set(clean.index))
    if missing:
        raise DatasetLayoutError(
            f"'{nih_dir / 'demo_clean_labels.csv'}' has no row for {len(missing)} image(s) of {ENTRY_CSV}, e.g. "
            f"{missing[:3]}: write both with the same demo writer call."
        )
    classes = [c for c in clean.columns if c not in ("split", "No Finding")]
    labels = clean.loc[entry["Image Index"], classes].to_numpy()
    entry["Finding Labels"] = ["|".join(c for c, v in zip(classes, row) if v) or "No Finding" for row in labels]
    out_dir.mkdir(parents=True, exist_ok=True)
    entry.to_csv(out_dir / ENTRY_CSV, index=False)
    for name in ("images", "train_val_list.txt", "test_list.txt", "BBox_List_2017.csv"):
        link = out_dir / name
        if not link.exists():
            os.symlink((nih_dir / name).resolve(), link)
    return out_dir


def _positives(datalist: Sequence[Mapping[str, Any]], class_names: Sequence[str]) -> dict[str, int]:
    labels = np.array([np.asarray(item["label"], dtype=float) for item in datalist]).reshape(-1, len(class_names))
    return {c: int(v) for c, v in zip(class_names, (labels == 1).sum(axis=0))}


def write_study_data(root: str | os.PathLike, plan: StudyPlan) -> dict[str, Any]:
    """Write the study's datasets under ``root`` (``nih``, ``nih_clean``, ``openi``, ``padchest``) and describe them
    as the bundle reads them (NVUM's NIH setting: 13 diseases + No Finding, Consolidation images dropped).

    Returns:
        ``{"folders": {name: path}, "sizes": {"train", "val", "openi", "padchest"}, "n_flips",
        "train_positives_noisy", "train_positives_clean", "test_positives": {test set: {class: n}},
        "class_names"}``.
    """
    root = Path(root)
    folders = {name: root / name for name in ("nih", "nih_clean", *TEST_SETS)}
    nih = get_writer("nih")(folders["nih"], size=plan.nih_size, seed=plan.data_seed, image_size=plan.image_size,
                            lesion_contrast=plan.lesion_contrast, test_fraction=plan.nih_test_fraction,
                            bbox_fraction=0.0)  # fmt: skip
    clean_label_copy(folders["nih"], folders["nih_clean"])
    for k, name in enumerate(TEST_SETS, start=1):
        get_writer(name)(folders[name], size=plan.test_size, seed=plan.data_seed + k, image_size=plan.image_size,
                         lesion_contrast=plan.lesion_contrast, min_positives=plan.min_test_positives,
                         lateral_fraction=0.0)  # fmt: skip
    lists = {
        "train": nvum_datalist(folders["nih"], "nih", split="train", val_fraction=0.1),
        "train_clean": nvum_datalist(folders["nih_clean"], "nih", split="train", val_fraction=0.1),
        "val": nvum_datalist(folders["nih"], "nih", split="val", val_fraction=0.1),
        **{name: nvum_datalist(folders[name], name, setting="nih") for name in TEST_SETS},
    }
    class_names = list(nvum_setting_classes("nih"))
    return {
        "folders": {k: str(v) for k, v in folders.items()},
        "sizes": {k: len(v) for k, v in lists.items()},
        "n_flips": int(nih.get("n_flips", 0)),
        "class_names": class_names,
        "train_positives_noisy": _positives(lists["train"], class_names),
        "train_positives_clean": _positives(lists["train_clean"], class_names),
        "test_positives": {name: _positives(lists[name], class_names) for name in TEST_SETS},
    }


def head_tail_classes(train_positives: Mapping[str, int], class_names: Sequence[str]) -> dict[str, list[str]]:
    """Diseases split at the median of their training positives: ``head`` the more frequent half (with the median
    class when their number is odd), ``tail`` the rest; ``No Finding`` is left out.

    Example: positives ``{A: 50, B: 10, C: 30, No Finding: 90}`` give head ``[A, C]`` and tail ``[B]``.
    """
    diseases = [c for c in class_names if c != "No Finding"]
    ranked = sorted(diseases, key=lambda c: (-train_positives[c], diseases.index(c)))
    n_head = (len(ranked) + 1) // 2
    head = set(ranked[:n_head])
    return {"head": [c for c in diseases if c in head], "tail": [c for c in diseases if c not in head]}


# ---- one run -----------------------------------------------------------------------------------------------------


def run_overrides(
    arm: Arm | str,
    seed: int,
    params: Mapping[str, float],
    data: Mapping[str, Any],
    run_dir: str | os.PathLike,
    plan: StudyPlan,
) -> dict[str, Any]:
    """The bundle overrides of one run (``train.json`` + ``demo.json``).

    - every arm: ``dataset_dir`` (``nih``, or ``nih_clean`` for BCE-clean), ``ckpt_dir``/``output_dir`` under
      ``run_dir``, ``image_size``, ``epochs``, ``batch_size``, ``seed``, ``learning_rate``, ``adam_eps``, the
      plan's ``network_def`` and cached datasets;
    - BCE arms: ``loss_def = BCEWithLogitsLoss(reduction="none")`` through the same ``PerSampleTrainer`` and EMA
      evaluation network;
    - NVUM arms: ``nvum_mode`` and ``nvum_reg_weight``; the no-prior ablation passes a prior of ones to paper mode
      (``log(1) = 0``: the memory averages the raw logits).

    Args:
        params: ``{"learning_rate": ..., "reg_weight": ...}`` (``reg_weight`` only for NVUM arms).
    """
    arm = Arm(arm)
    out: dict[str, Any] = {
        "dataset_dir": data["folders"]["nih_clean" if arm == Arm.BCE_CLEAN else "nih"],
        **run_folders(run_dir),
        "image_size": plan.image_size,
        "epochs": plan.epochs,
        "batch_size": plan.batch_size,
        "seed": int(seed),
        "learning_rate": float(params["learning_rate"]),
        "adam_eps": plan.adam_eps,
        "network_def": copy.deepcopy(dict(plan.network_def)),
        "nvum_mode": "official" if arm == Arm.OFFICIAL else "paper",
        **cached_datasets(),
    }
    if arm in (Arm.BCE, Arm.BCE_CLEAN):
        out["loss_def"] = {"_target_": "torch.nn.BCEWithLogitsLoss", "reduction": "none"}
    else:
        out["nvum_reg_weight"] = float(params["reg_weight"])
    if arm == Arm.PAPER_NO_PRIOR:
        out["loss_def#prior"] = [1.0] * len(data["class_names"])
    return out


def _per_class(csv_file: Path) -> dict[str, float]:
    table = read_csv_checked(csv_file, ["class", "auroc"], "MultiLabelReport CSV")
    return {str(c): float(a) for c, a in zip(table["class"], table["auroc"])}


def _monitor_summary(csv_file: Path) -> dict[str, Any] | None:
    if not csv_file.is_file():
        return None
    table = pd.read_csv(csv_file)
    if table.empty:
        return None
    last_epoch = table[table["epoch"] == table["epoch"].max()]
    return {
        "grad_ratio_first_epoch": float(table[table["epoch"] == table["epoch"].min()]["grad_ratio"].median()),
        "grad_ratio_last_epoch": float(last_epoch["grad_ratio"].median()),
        "memory_min": float(table["memory_min"].min()),
        "memory_max": float(table["memory_max"].max()),
        "sigmoid_dot_last_epoch": float(last_epoch["sigmoid_dot_mean"].mean()),
        "trace": {k: table[k].tolist() for k in TRACE_COLUMNS},
    }


def train_and_evaluate(
    arm: str,
    seed: int,
    params: Mapping[str, float],
    data: Mapping[str, Any],
    run_dir: str,
    plan: StudyPlan,
    bundle_dir: str = str(BUNDLE_DIR),
) -> dict[str, Any]:
    """Train one run through the bundle, evaluate it on both test sets, and read its results (a worker job).

    Returns:
        ``{"arm", "seed", "params", "val_auc" (best noisy-validation mean AUROC), "best_epoch", "openi_auc",
        "padchest_auc", "clean_test_auc" (their mean), "per_class": {test set: {class: auroc}}, "monitor"
        (NVUM arms: :class:`monai_ext.handlers.NVUMMonitor` summary), "audit" (NVUM arms: label audit of the
        memory), "train_s", "eval_s"}``.
    """
    overrides = run_overrides(arm, seed, params, data, run_dir, plan)
    start = time.perf_counter()
    with restore_track_meta():
        workflow = run_bundle_workflow(bundle_dir, DEMO_TRAIN, "train", hooks=[plain_tensors_after_caching],
                                       **overrides)  # fmt: skip
    state = workflow.parser.get_parsed_content("validate#evaluator").state
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    for name in TEST_SETS:
        with restore_track_meta():
            run_bundle_workflow(bundle_dir, DEMO_EVALUATE, "eval", hooks=[plain_tensors_after_caching],
                                test_set=name, test_dir=data["folders"][name], **overrides)  # fmt: skip
    out_dir = Path(overrides["output_dir"])
    per_class = {name: _per_class(out_dir / f"{name}_per_class.csv") for name in TEST_SETS}
    result: dict[str, Any] = {
        "arm": str(arm),
        "seed": int(seed),
        "params": dict(params),
        VAL_METRIC: float(state.best_metric),
        "best_epoch": int(state.best_metric_epoch),
        **{f"{name}_auc": per_class[name][DISEASE_ROW] for name in TEST_SETS},
        "per_class": per_class,
        "monitor": _monitor_summary(out_dir / "nvum_monitor.csv"),
        "audit": None,
        "train_s": train_s,
        "eval_s": time.perf_counter() - start,
    }
    result["clean_test_auc"] = float(np.mean([result[f"{name}_auc"] for name in TEST_SETS]))
    if Arm(arm) in NVUM_ARMS:
        noise_csv = Path(data["folders"]["nih"]) / NOISE_CSV
        result["audit"] = audit_saved_memory(overrides, noise_csv, bundle_dir)
    logger.info(
        f"NVUM study: {arm} seed {seed} {dict(params)}: val {result[VAL_METRIC]:.4f} (epoch {result['best_epoch']}), "
        f"OpenI {result['openi_auc']:.4f}, PadChest {result['padchest_auc']:.4f}, train {train_s:.0f} s."
    )
    return result


# ---- the study ---------------------------------------------------------------------------------------------------


def _jobs(arm: Arm, grid: Sequence[Mapping[str, float]], seeds: Sequence[int], work: Path, data, plan) -> list[dict]:
    jobs = []
    for seed in seeds:
        for params in grid:
            tag = "_".join(f"{k}{v:g}" for k, v in params.items())
            jobs.append(dict(arm=arm.value, seed=int(seed), params=dict(params), data=data, plan=plan,
                             run_dir=str(work / f"{arm.value}_{tag}_seed{seed}")))  # fmt: skip
    return jobs


def run_study(
    work_dir: str | os.PathLike, plan: StudyPlan, arms: Sequence[Arm | str] = tuple(Arm), workers: int | None = None
) -> dict[str, Any]:
    """Write the data, tune every arm on the tuning seed, train the chosen settings for the other seeds, and
    aggregate (:func:`aggregate_study`).

    Args:
        work_dir: holds ``data/`` and one folder per run.
        plan: see :class:`StudyPlan`.
        arms: subset of :class:`Arm`; must contain ``bce`` (the baseline, whose learning rate the NVUM arms use).
        workers: parallel runs (default ``plan.workers``).

    Returns:
        ``{"plan", "data", "tuning": {arm: [trial]}, "selected": {arm: params}, "runs": [result], "summary"}``.

    Raises:
        ValueError: ``bce`` is not among ``arms``.
    """
    arms = [Arm(a) for a in arms]
    if Arm.BCE not in arms:
        raise ValueError("the study needs the 'bce' arm: it is the baseline and sets the NVUM arms' learning rate.")
    workers = plan.workers if workers is None else int(workers)
    work = Path(work_dir)
    start = time.perf_counter()
    data = write_study_data(work / "data", plan)
    logger.info(
        f"NVUM study data: {data['sizes']}, {data['n_flips']} flipped labels ({time.perf_counter() - start:.0f} s)."
    )
    tuning_seed, other_seeds = plan.seeds[0], plan.seeds[1:]
    lr_grid = study.expand_grid({"learning_rate": plan.lr_grid})
    stage1 = [a for a in (Arm.BCE, Arm.BCE_CLEAN) if a in arms]
    jobs = [job for a in stage1 for job in _jobs(a, lr_grid, [tuning_seed], work, data, plan)]
    results = study.run_parallel(train_and_evaluate, jobs, workers)
    tuning: dict[str, list] = {}
    for job, result in zip(jobs, results):
        tuning.setdefault(job["arm"], []).append(result)
    selected = {a: dict(study.select_best(tuning[a], VAL_METRIC)["params"]) for a in tuning}
    nvum_grid = study.expand_grid({"learning_rate": [selected[Arm.BCE.value]["learning_rate"]],
                                   "reg_weight": plan.reg_grid})  # fmt: skip
    stage2 = [a for a in NVUM_ARMS if a in arms]
    jobs = [job for a in stage2 for job in _jobs(a, nvum_grid, [tuning_seed], work, data, plan)]
    for job, result in zip(jobs, study.run_parallel(train_and_evaluate, jobs, workers)):
        tuning.setdefault(job["arm"], []).append(result)
    for a in stage2:
        selected[a.value] = dict(study.select_best(tuning[a.value], VAL_METRIC)["params"])
    runs = [study.select_best(tuning[a.value], VAL_METRIC) for a in arms]
    jobs = [job for a in arms for job in _jobs(a, [selected[a.value]], other_seeds, work, data, plan)]
    runs += study.run_parallel(train_and_evaluate, jobs, workers)
    out = {
        "plan": {**asdict(plan), "network_def": dict(plan.network_def)},
        "data": data,
        "tuning": {a: [_brief(t) for t in trials] for a, trials in tuning.items()},
        "selected": selected,
        "runs": runs,
        "wall_s": time.perf_counter() - start,
        "workers": workers,
    }
    out["summary"] = aggregate_study(runs, head_tail_classes(data["train_positives_noisy"], data["class_names"]))
    return out


def _brief(trial: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("arm", "seed", "params", VAL_METRIC, "best_epoch", "clean_test_auc", "train_s")
    return {k: trial[k] for k in keys}


def aggregate_study(
    runs: Sequence[Mapping[str, Any]], groups: Mapping[str, Sequence[str]], baseline: str = Arm.BCE.value
) -> dict[str, Any]:
    """Per arm (in first-seen order): :func:`scripts.bench.study.summarise` over seeds of the validation AUROC, of
    each test set's mean disease AUROC and their mean (``clean_test_auc``), and of the mean AUROC of each class group
    (``head``/``tail``) per test set; for every metric but the validation one, the paired difference to
    ``baseline`` (:func:`scripts.bench.study.paired_difference`); and the per-class AUROC means.

    Example: ``bce`` seeds 0, 1 with clean-test AUROC 0.80, 0.82 and ``nvum_paper`` 0.81, 0.84 give
    ``summary["nvum_paper"]["delta_clean_test_auc"]["differences"] == [0.01, 0.02]``.

    Returns:
        ``{arm: {"seeds", "params", metric: summary, "delta_" + metric: paired difference, "per_class":
        {test set: {class: mean}}}}`` with metrics ``val_auc``, ``openi_auc``, ``padchest_auc``,
        ``clean_test_auc``, ``<group>_<test set>_auc`` and ``<group>_auc`` (mean over the test sets).
    """

    def metrics_of(run: Mapping[str, Any]) -> dict[str, float]:
        out = {k: float(run[k]) for k in (VAL_METRIC, "openi_auc", "padchest_auc", "clean_test_auc")}
        for group, classes in groups.items():
            per_set = [float(np.mean([run["per_class"][t][c] for c in classes])) for t in TEST_SETS]
            out.update({f"{group}_{t}_auc": v for t, v in zip(TEST_SETS, per_set)})
            out[f"{group}_auc"] = float(np.mean(per_set))
        return out

    by_arm: dict[str, dict[int, Mapping[str, Any]]] = {}
    for run in runs:
        by_arm.setdefault(str(run["arm"]), {})[int(run["seed"])] = run
    values = {arm: {seed: metrics_of(run) for seed, run in per_seed.items()} for arm, per_seed in by_arm.items()}
    summary: dict[str, Any] = {"groups": {k: list(v) for k, v in groups.items()}}
    for arm, per_seed in values.items():
        seeds = sorted(per_seed)
        entry: dict[str, Any] = {"seeds": seeds, "params": dict(next(iter(by_arm[arm].values()))["params"])}
        for metric in next(iter(per_seed.values())):
            entry[metric] = study.summarise([per_seed[s][metric] for s in seeds])
            if baseline in values and metric != VAL_METRIC:
                entry[f"delta_{metric}"] = study.paired_difference(
                    {s: per_seed[s][metric] for s in seeds},
                    {s: v[metric] for s, v in values[baseline].items()},
                )
        entry["per_class"] = {
            t: {c: float(np.mean([by_arm[arm][s]["per_class"][t][c] for s in seeds]))
                for c in next(iter(by_arm[arm].values()))["per_class"][t]}
            for t in TEST_SETS
        }  # fmt: skip
        summary[arm] = entry
    return summary


def with_plan_overrides(plan: StudyPlan, **changes: Any) -> StudyPlan:
    """``plan`` with the given fields replaced (``None`` values are ignored), e.g. from command-line options."""
    return replace(plan, **{k: v for k, v in changes.items() if v is not None})
