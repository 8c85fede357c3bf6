# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The powered MoMBS efficacy study of ``make bench`` (``shared/DESIGN.md``, "How we show that a method works").

The ``covid_ct_mombs_segmentation`` bundle is trained on a demo COVID CT set (MedSeg layout, Dataset 1 only:
independent 2D slices) whose training and validation masks carry realistic annotation noise (lesions missed,
eroded, dilated, or given the wrong class: GGO <-> consolidation) and whose minority of slices hold
under-represented lesions (tiny or low-contrast), and tested on >= 100 held-out slices against the *clean* masks.

Protocol (a :class:`StudyPlan`; ``default`` is what ``make bench`` runs, ``full`` the longer form, ``quick`` a
smoke run of the same code):

1. **Data** (:func:`write_study_data`): one demo set, one fixed patient-level split (``split_seed`` 0: test fold
   20 %, validation fold 20 %, training 60 %); the training fractions (25 / 50 / 100 %) are nested subsets of the
   training slices (the bundle's ``train_fraction``). The study is **multiclass** (the bundle's
   ``configs/multiclass.json``: GGO and consolidation), so that a wrong-class mask is a real error; with the binary
   infection target it would be invisible. Dice = per-slice mean over the classes present in the clean mask.
2. **Runs**: every strategy of :data:`STRATEGIES` for every fraction and seed, with the same epochs, pivot epoch and
   network; seed ``s`` gives every strategy the same initialisation and augmentation seed (the bundle's
   ``set_determinism``). No strategy is tuned (each at the bundle's defaults); the checkpoint tested is
   ``model.pt``, the best Dice on the *noisy* validation masks.
3. **Audit** (:func:`audit_run`): the last difficulty CSV of each ``mombs`` run at the largest fraction, scored
   against the generator's record (:mod:`scripts.bench.mombs_audit`): the precision of ``poorly_labelled`` for
   slices with a corrupted mask and of ``under_represented`` for slices with tiny / low-contrast lesions, each
   against its base rate; the same run's ``last.pt`` is evaluated on the training slices against the clean masks,
   so that the report says whether the model fits the clean, typical slices (a difficulty map of an unfitted model
   says little). With ``audit_epochs`` set, the audit uses one extra, longer ``mombs`` run per seed instead.

Settings of the ``default`` plan (``make bench``: 9 arms x 3 fractions x 5 seeds = 135 runs of 10 epochs plus 5 audit
runs of 30 epochs, on 2 CPU cores with 2 workers; the measured wall time is in the report): 600 slices
written at 64 px (test fold: 100 slices with a lesion), the demo overlay's small SplitUNet, batch 4 (paper Sec. 4.4),
10 epochs, pivot epoch 4 (3 random warm-up epochs), validation every epoch, K = 8, Adam at 3e-3 with the bundle's
cosine decay (at the bundle's 1e-3 the 25 % runs did not learn in 10 epochs: clean-test Dice 0.03 against 0.30 at
3e-3 in two random-sampling probes; chosen on the test Dice, not on validation, shared by every arm); noise: per lesion 10 % missing, 10 % eroded, 10 % dilated (2 px), 10 % wrong class; 10 % tiny and 10 %
low-contrast slices.

Runs go through the bundle in worker processes (:func:`scripts.bench.study.run_parallel`) with cached datasets and
plain tensors after caching (:func:`scripts.bench.bundles.plain_tensors_after_caching`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from monai_ext.bundle.workflow import run_bundle_workflow
from monai_ext.data.datalist import DatasetLayoutError, read_csv_checked, require_file
from monai_ext.demo.covid_ct import write_covid_medseg_demo
from scripts.bench import study
from scripts.bench.bundles import DEMO_EVALUATE, DEMO_TRAIN, plain_tensors_after_caching, restore_track_meta
from scripts.bench.mombs_audit import category_vs_corruption, latest_difficulty_csv, slice_corruption
from scripts.bench.mombs_bundle import BUNDLE_DIR, bundle_overrides

__all__ = [
    "STRATEGIES",
    "UNCERTAINTY_STRATEGIES",
    "ARM_OVERRIDES",
    "merge_studies",
    "PLANNED_ARMS",
    "DIAGNOSTIC_ARMS",
    "BASELINE",
    "StudyPlan",
    "PLANS",
    "with_plan_overrides",
    "write_study_data",
    "read_case_dice",
    "label_values",
    "run_overrides",
    "train_and_evaluate",
    "run_study",
    "aggregate_study",
]

logger = logging.getLogger(__name__)

STRATEGIES = (
    "random", "scl_hard", "scl_linear", "ohem", "mombs_loss", "mombs_uncertainty", "mombs", "anti_mixed",
    "mombs_assess3", "mombs_mutual_information", "random_clean",
)  # fmt: skip
"""The arms known to the study, in report order: the bundle's ``sampling_strategy`` values, plus the variants of
:data:`ARM_OVERRIDES`."""
DIAGNOSTIC_ARMS = ("mombs_mutual_information",)
"""Arms run only on request (``--strategies ... --add-to-study``), to test a reading of the results."""
PLANNED_ARMS = tuple(arm for arm in STRATEGIES if arm not in DIAGNOSTIC_ARMS)
"""The arms of the ``default`` and ``full`` plans (the 60-minute budget of the default plan holds 10 arms)."""
ARM_OVERRIDES: dict[str, dict[str, Any]] = {
    "mombs_assess3": {"sampling_strategy": "mombs", "assess_every": 3},
    "mombs_mutual_information": {"sampling_strategy": "mombs", "mombs_assessor#measure": "mutual_information"},
    "random_clean": {"sampling_strategy": "random", "train_masks": "clean"},
}
"""Arms that are a strategy with further bundle overrides: ``mombs_assess3`` is MoMBS with the assessor's documented
deviation ``assess_every=3`` (uncertainty refreshed every third epoch from ``pivot_epoch - 1``), the cheaper epoch
measured by the timing part; ``mombs_mutual_information`` is MoMBS whose uncertainty is only the part the
disturbances cause (``H(mean p) - mean H(p)``, :class:`monai_ext.handlers.mombs_assessor.UncertaintyMeasure`) instead of
Eq. 1's entropy of the mean prediction, to test whether the prediction's own ambiguity is what sends corrupted masks
to the high-uncertainty side; ``random_clean`` is random sampling trained on the CLEAN masks (validation stays noisy),
the learnability check of ``../shared/DESIGN.md``: it must beat random on the noisy masks clearly, or the benchmark
cannot show robustness to label noise."""
UNCERTAINTY_STRATEGIES = ("mombs", "mombs_uncertainty", "anti_mixed", "mombs_assess3", "mombs_mutual_information")
"""Strategies whose assessor measures uncertainty (their difficulty CSVs hold all four categories)."""
BASELINE = "random"
AUDIT_STRATEGY = "mombs"
DATASET = "covid_medseg"
NOISE_CSV = "demo_mask_noise.csv"
CLEAN_DIR = "demo_clean"
MULTICLASS = "configs/multiclass.json"
METRIC = "dice"


@dataclass(frozen=True)
class StudyPlan:
    """Sizes, schedule and seeds of one form of the study (see :data:`PLANS`).

    Attributes:
        name: the plan's name.
        n_slices: Dataset 1 slices written (test fold ~20 % of them, ~85 % of those with a lesion).
        write_size: written slice side (pixels); ``image_size`` the network input side.
        missing_rate, erode_rate, dilate_rate, wrong_class_rate: per-lesion corruption rates of the noisy masks.
        tiny_rate, low_contrast_rate: shares of slices whose lesions are tiny / low-contrast.
        fractions: training fractions (nested subsets of the training slices).
        strategies: sampler strategies; must contain :data:`BASELINE`.
        seeds: training seeds (paired across strategies).
        epochs, pivot_epoch, batch_size, learning_rate, val_interval, num_disturbances: the schedule (Adam with the
            bundle's cosine decay over ``epochs``), the same for every strategy.
        audit_epochs: ``None``: audit the study's ``mombs`` runs at the largest fraction; else one extra ``mombs``
            run per seed at the largest fraction with these epochs.
        workers: parallel runs (one torch thread each).
    """

    name: str
    n_slices: int
    write_size: int
    image_size: int
    fractions: tuple[float, ...]
    strategies: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int
    pivot_epoch: int
    batch_size: int = 4
    learning_rate: float = 3e-3
    val_interval: int = 1
    num_disturbances: int = 8
    missing_rate: float = 0.1
    erode_rate: float = 0.1
    dilate_rate: float = 0.1
    wrong_class_rate: float = 0.1
    tiny_rate: float = 0.1
    low_contrast_rate: float = 0.1
    noise_radius: int = 2
    audit_epochs: int | None = None
    workers: int = 2
    data_seed: int = 0
    split_seed: int = 0


PLANS: dict[str, StudyPlan] = {
    "default": StudyPlan("default", n_slices=600, write_size=64, image_size=64, fractions=(0.25, 0.5, 1.0),
                         strategies=PLANNED_ARMS, seeds=(0, 1, 2, 3, 4), epochs=10, pivot_epoch=4, audit_epochs=30),
    "full": StudyPlan("full", n_slices=600, write_size=64, image_size=64, fractions=(0.25, 0.5, 1.0),
                      strategies=PLANNED_ARMS, seeds=tuple(range(10)), epochs=30, pivot_epoch=8, audit_epochs=60),
    "quick": StudyPlan("quick", n_slices=120, write_size=64, image_size=64, fractions=(1.0,),
                       strategies=("random", "mombs"), seeds=(0, 1), epochs=3, pivot_epoch=2),
}  # fmt: skip


def with_plan_overrides(plan: StudyPlan, **changes: Any) -> StudyPlan:
    """``plan`` with the given fields replaced (``None`` values are ignored), e.g. from command-line options."""
    return replace(plan, **{k: v for k, v in changes.items() if v is not None})


# ---- data --------------------------------------------------------------------------------------------------------


def write_study_data(root: str | os.PathLike, plan: StudyPlan) -> dict[str, Any]:
    """Write the study's demo set under ``root/covid_medseg`` (no Dataset 2 volumes) and describe it.

    Returns:
        ``{"dataset_dir", "noise_csv", "clean_dir", "writer": the writer's summary, "settings": the writer's
        arguments}``.
    """
    dataset_dir = Path(root) / DATASET
    settings = dict(
        n_slices=plan.n_slices, n_volumes=0, seed=plan.data_seed, image_size=plan.write_size,
        missing_rate=plan.missing_rate, erode_rate=plan.erode_rate, dilate_rate=plan.dilate_rate,
        wrong_class_rate=plan.wrong_class_rate, tiny_rate=plan.tiny_rate, low_contrast_rate=plan.low_contrast_rate,
        noise_radius=plan.noise_radius,
    )  # fmt: skip
    summary = write_covid_medseg_demo(dataset_dir, **settings)
    return {
        "dataset_dir": str(dataset_dir),
        "noise_csv": str(dataset_dir / NOISE_CSV),
        "clean_dir": str(dataset_dir / CLEAN_DIR),
        "writer": summary,
        "settings": settings,
    }


# ---- reading a run's results -------------------------------------------------------------------------------------


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


def _class_of(label_map: Mapping[str, int | Sequence[int]]) -> dict[int, str]:
    out = {}
    for name, v in label_map.items():
        for x in v if isinstance(v, Sequence) and not isinstance(v, str) else [v]:
            out[int(x)] = str(name)
    return out


def wrong_class_visible(label_map: Mapping[str, int | Sequence[int]]) -> bool:
    """Whether GGO (1) and consolidation (2) are different classes of ``label_map`` (a swap between them is then an
    error the network sees), e.g. ``{"ggo": 1, "consolidation": 2}`` -> ``True``, ``{"infection": [1, 2]}`` ->
    ``False``."""
    classes = _class_of(label_map)
    return 1 in classes and 2 in classes and classes[1] != classes[2]


# ---- one run -----------------------------------------------------------------------------------------------------


def run_overrides(
    strategy: str,
    seed: int,
    fraction: float,
    data: Mapping[str, Any],
    run_dir: str | os.PathLike,
    plan: StudyPlan,
    epochs: int | None = None,
) -> dict[str, Any]:
    """The bundle overrides of one run (``train.json`` + ``demo.json`` + ``multiclass.json``) of the arm ``strategy``
    (a ``sampling_strategy`` value or a key of :data:`ARM_OVERRIDES`):
    :func:`scripts.bench.mombs_bundle.bundle_overrides` (strategy, seed, folders, schedule, the demo overlay's small
    network, cached datasets) plus ``split_seed`` (the plan's, fixed), ``train_fraction``, ``learning_rate`` and
    ``val_interval``.
    """
    extra = dict(ARM_OVERRIDES.get(strategy, {}))
    clean_training = extra.pop("train_masks", None) == "clean"
    out = bundle_overrides(
        extra.get("sampling_strategy", strategy), seed, data["dataset_dir"], run_dir, plan.image_size,
        plan.epochs if epochs is None else epochs, plan.pivot_epoch, plan.batch_size, plan.num_disturbances,
        plan.split_seed,
    )  # fmt: skip
    out["train_fraction"] = float(fraction)
    out["learning_rate"] = float(plan.learning_rate)
    out["val_interval"] = int(plan.val_interval)
    out.update({k: v for k, v in extra.items() if k != "sampling_strategy"})
    if clean_training:
        out["train#datalist"] = (f"$monai_ext.data.covid_ct.covid_ct_datalist(split='train', "
                                 f"mask_dir={str(data['clean_dir'])!r}, **@datalist_args)")  # fmt: skip
    return out


def _evaluate(bundle_dir, overrides, ckpt: str, clean_dir: str, out_dir: Path, split: str) -> dict[str, Any]:
    extra = {"output_dir": str(out_dir), "ckpt_path": str(Path(overrides["ckpt_dir"]) / ckpt),
             "eval_mask_dir": clean_dir}  # fmt: skip
    if split != "test":
        extra["validate#datalist"] = (f"$monai_ext.data.covid_ct.covid_ct_datalist(split='{split}', "
                                      "mask_dir=@eval_mask_dir, **@datalist_args)")  # fmt: skip
    with restore_track_meta():
        run_bundle_workflow(bundle_dir, (*DEMO_EVALUATE, MULTICLASS), "eval", hooks=[plain_tensors_after_caching],
                            **{**overrides, **extra})  # fmt: skip
    return read_case_dice(out_dir, "test")


def train_and_evaluate(
    strategy: str,
    seed: int,
    fraction: float,
    data: Mapping[str, Any],
    run_dir: str,
    plan: StudyPlan,
    audit: bool = False,
    epochs: int | None = None,
    bundle_dir: str = str(BUNDLE_DIR),
) -> dict[str, Any]:
    """Train one run through the bundle, evaluate ``model.pt`` on the test split against the clean masks (a worker
    job); with ``audit``, also :func:`audit_run`.

    Returns:
        ``{"strategy", "seed", "fraction", "epochs", "dice" (mean clean-test Dice over slices with a lesion),
        "num_cases", "per_case", "best_val_dice", "best_val_epoch", "n_train", "train_s", "eval_s", "audit"
        (``None`` without ``audit``)}``.
    """
    overrides = run_overrides(strategy, seed, fraction, data, run_dir, plan, epochs)
    start = time.perf_counter()
    with restore_track_meta():
        workflow = run_bundle_workflow(bundle_dir, (*DEMO_TRAIN, MULTICLASS), "train",
                                       hooks=[plain_tensors_after_caching], **overrides)  # fmt: skip
    train_s = time.perf_counter() - start
    state = workflow.parser.get_parsed_content("validate#evaluator").state
    datalist = workflow.parser.get_parsed_content("train#datalist")
    label_map = workflow.parser.get_parsed_content("label_map")
    start = time.perf_counter()
    test = _evaluate(bundle_dir, overrides, "model.pt", data["clean_dir"], Path(run_dir) / "test", "test")
    result: dict[str, Any] = {
        "strategy": str(strategy),
        "seed": int(seed),
        "fraction": float(fraction),
        "epochs": int(overrides["epochs"]),
        METRIC: test["mean_dice"],
        "num_cases": test["num_cases"],
        "per_case": test["per_case"],
        "best_val_dice": float(state.best_metric),
        "best_val_epoch": int(state.best_metric_epoch),
        "n_train": len(datalist),
        "train_s": train_s,
        "audit": None,
    }
    if audit:
        result["audit"] = audit_run(bundle_dir, overrides, datalist, label_map, data, Path(run_dir))
    result["eval_s"] = time.perf_counter() - start
    logger.info(
        f"MoMBS study: {strategy} fraction {fraction:g} seed {seed}: clean-test Dice {result[METRIC]} (best noisy "
        f"val epoch {result['best_val_epoch']}), train {train_s:.0f} s, eval {result['eval_s']:.0f} s."
    )
    return result


def audit_run(
    bundle_dir,
    overrides: Mapping[str, Any],
    datalist: Sequence[Mapping[str, Any]],
    label_map: Mapping[str, Any],
    data: Mapping[str, Any],
    run_dir: Path,
) -> dict[str, Any]:
    """The difficulty-map audit of one finished run: :func:`scripts.bench.mombs_audit.category_vs_corruption` of its
    last difficulty CSV, and the fit check: ``last.pt`` evaluated on the training slices against the clean masks,
    mean Dice over the slices whose lesions are all clean and typical and over the corrupted ones.

    Returns:
        ``{"categories": the cross-table, "difficulty_csv", "fit": {"clean_typical": mean Dice, "corrupted",
        "under_represented", "n_clean_typical", ...}}``.
    """
    corruption = slice_corruption(data["noise_csv"], datalist, data["dataset_dir"], label_values(label_map),
                                  wrong_class_visible=wrong_class_visible(label_map))  # fmt: skip
    csv_file = latest_difficulty_csv(Path(overrides["output_dir"]) / "difficulty")
    train_dice = _evaluate(bundle_dir, overrides, "last.pt", data["clean_dir"], run_dir / "train_fit", "train")
    index_of = {str(item["case_id"]): int(item["index"]) for item in datalist}
    per_index = {index_of[c]: v for c, v in train_dice["per_case"].items() if c in index_of and v is not None}
    groups = {
        "clean_typical": (~corruption["corrupted"]) & (~corruption["under_represented"]),
        "corrupted": corruption["corrupted"],
        "under_represented": corruption["under_represented"],
    }
    fit: dict[str, Any] = {}
    for name, mask in groups.items():
        values = [per_index[i] for i in corruption.loc[mask.to_numpy(), "index"] if i in per_index]
        fit[name] = float(np.mean(values)) if values else None
        fit[f"n_{name}"] = len(values)
    return {"categories": category_vs_corruption(csv_file, corruption), "difficulty_csv": str(csv_file), "fit": fit}


# ---- the study ---------------------------------------------------------------------------------------------------


def run_dir_name(strategy: str, fraction: float, seed: int, audit: bool = False) -> str:
    """``<strategy>_f<percent>_seed<seed>`` (``audit_`` prefix for an extra audit run), e.g. ``mombs_f25_seed0``."""
    return f"{'audit_' if audit else ''}{strategy}_f{round(100 * fraction)}_seed{int(seed)}"


def study_jobs(plan: StudyPlan, data: Mapping[str, Any], work: Path) -> list[dict[str, Any]]:
    """The worker jobs of :func:`run_study`: every (fraction, strategy, seed), largest fraction first (the longest
    runs start first, which balances the workers), plus the audit runs when ``plan.audit_epochs`` is set."""
    top = max(plan.fractions)
    jobs = []
    for fraction in sorted(plan.fractions, reverse=True):
        for seed in plan.seeds:
            for strategy in plan.strategies:
                audit = plan.audit_epochs is None and strategy == AUDIT_STRATEGY and fraction == top
                jobs.append(dict(strategy=strategy, seed=int(seed), fraction=float(fraction), data=data, plan=plan,
                                 run_dir=str(work / run_dir_name(strategy, fraction, seed)), audit=audit))  # fmt: skip
    if plan.audit_epochs is not None and AUDIT_STRATEGY in plan.strategies:
        jobs = [dict(strategy=AUDIT_STRATEGY, seed=int(s), fraction=float(top), data=data, plan=plan, audit=True,
                     epochs=int(plan.audit_epochs), run_dir=str(work / run_dir_name(AUDIT_STRATEGY, top, s, True)))
                for s in plan.seeds] + jobs  # fmt: skip
    return jobs


def run_study(work_dir: str | os.PathLike, plan: StudyPlan, workers: int | None = None) -> dict[str, Any]:
    """Write the data, train and evaluate every run, aggregate (:func:`aggregate_study`).

    Returns:
        ``{"plan", "data", "runs": [result], "audit_runs": [result], "summary", "wall_s", "workers"}``.

    Raises:
        ValueError: ``plan.strategies`` lacks :data:`BASELINE`.
    """
    if BASELINE not in plan.strategies:
        raise ValueError(f"the study needs the '{BASELINE}' strategy (the baseline); got {list(plan.strategies)}.")
    workers = plan.workers if workers is None else int(workers)
    work = Path(work_dir)
    start = time.perf_counter()
    data = write_study_data(work / "data", plan)
    logger.info(f"MoMBS study data: {data['writer']} ({time.perf_counter() - start:.0f} s).")
    jobs = study_jobs(plan, data, work)
    results = study.run_parallel(train_and_evaluate, jobs, workers)
    extra = [r for job, r in zip(jobs, results) if job.get("epochs") is not None]
    runs = [r for job, r in zip(jobs, results) if job.get("epochs") is None]
    return {
        "plan": asdict(plan),
        "data": data,
        "runs": runs,
        "audit_runs": extra,
        "summary": aggregate_study(runs, extra),
        "wall_s": time.perf_counter() - start,
        "workers": workers,
    }


def merge_studies(earlier: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``new`` with the runs of the arms it did not run taken from ``earlier`` (the same study extended by arms).

    The arms ``new`` ran (it always runs the baseline) replace ``earlier``'s; ``max_rerun_difference`` records the
    largest absolute Dice difference between the two runs of a (arm, fraction, seed) run by both (0 when the runs are
    deterministic). The audit runs are ``new``'s when it has any, else ``earlier``'s; the summary is recomputed.

    Raises:
        ValueError: the two studies differ in data or schedule (anything of the plan but its arms and workers).
    """
    ignored = {"strategies", "workers", "name"}
    # compared as JSON (a plan read back from study.json holds lists where a fresh one holds tuples)
    a = json.loads(json.dumps({k: v for k, v in earlier["plan"].items() if k not in ignored}))
    b = json.loads(json.dumps({k: v for k, v in new["plan"].items() if k not in ignored}))
    if a != b:
        differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise ValueError(f"cannot merge MoMBS studies with different plans (differing: {differing}).")
    new_arms = set(new["plan"]["strategies"])
    key = lambda r: (r["strategy"], float(r["fraction"]), int(r["seed"]))  # noqa: E731
    reran = {key(r): r[METRIC] for r in new["runs"]}
    differences = [abs(reran[key(r)] - r[METRIC]) for r in earlier["runs"] if key(r) in reran]
    runs = [r for r in earlier["runs"] if r["strategy"] not in new_arms] + list(new["runs"])
    order = {arm: i for i, arm in enumerate(STRATEGIES)}
    runs.sort(key=lambda r: (-float(r["fraction"]), order.get(r["strategy"], len(order)), int(r["seed"])))
    audit_runs = list(new["audit_runs"]) or list(earlier["audit_runs"])
    arms = [arm for arm in STRATEGIES if arm in {r["strategy"] for r in runs}]
    return {
        **dict(new),
        "plan": {**dict(new["plan"]), "strategies": arms},
        "runs": runs,
        "audit_runs": audit_runs,
        "summary": aggregate_study(runs, audit_runs),
        "wall_s": float(earlier.get("wall_s", 0.0)) + float(new.get("wall_s", 0.0)),
        "max_rerun_difference": max(differences) if differences else None,
    }


AUDIT_KEYS = ("precision_poorly_labelled", "base_rate_corrupted", "precision_under_represented",
              "base_rate_under_represented")  # fmt: skip
FIT_KEYS = ("clean_typical", "corrupted", "under_represented")


def aggregate_study(
    runs: Sequence[Mapping[str, Any]], audit_runs: Sequence[Mapping[str, Any]] = (), baseline: str = BASELINE
) -> dict[str, Any]:
    """Per fraction and strategy (first-seen order): :func:`scripts.bench.study.summarise` over seeds of the
    clean-test Dice, the best validation epoch and the training time, and the paired difference of the Dice to
    ``baseline`` (:func:`scripts.bench.study.paired_difference`); and the audit: per seed the precisions and base
    rates (:data:`AUDIT_KEYS`) and the fit Dice (:data:`FIT_KEYS`) summarised over the audited runs (``audit_runs``
    when given, else the runs with an ``audit``).

    Example: fraction 1.0, ``random`` seeds 0, 1 with Dice 0.50, 0.60 and ``mombs`` 0.55, 0.60 give
    ``summary["fractions"]["1"]["mombs"]["delta_dice"]["differences"] == [0.05, 0.0]``.

    Returns:
        ``{"fractions": {fraction key: {strategy: {"seeds", "dice", "delta_dice" (not for the baseline),
        "best_val_epoch", "train_s"}}}, "audit": {"n_runs", "seeds", key: summary} or None}``; fraction keys are
        ``f"{fraction:g}"``.
    """
    by: dict[str, dict[str, dict[int, Mapping[str, Any]]]] = {}
    for run in runs:
        by.setdefault(f"{float(run['fraction']):g}", {}).setdefault(str(run["strategy"]), {})[int(run["seed"])] = run
    fractions: dict[str, Any] = {}
    for key, per_strategy in by.items():
        base = {s: r.get(METRIC) for s, r in per_strategy.get(baseline, {}).items()}
        table = {}
        for strategy, per_seed in per_strategy.items():
            seeds = sorted(per_seed)
            entry: dict[str, Any] = {"seeds": seeds}
            entry[METRIC] = study.summarise([per_seed[s].get(METRIC) for s in seeds])
            if strategy != baseline and base:
                entry[f"delta_{METRIC}"] = study.paired_difference({s: per_seed[s].get(METRIC) for s in seeds}, base)
            for k in ("best_val_epoch", "train_s"):
                entry[k] = study.summarise([per_seed[s].get(k) for s in seeds])
            table[strategy] = entry
        fractions[key] = table
    audited = list(audit_runs) or [r for r in runs if r.get("audit")]
    audit = None
    if audited:
        audit = {"n_runs": len(audited), "seeds": [int(r["seed"]) for r in audited],
                 "strategy": str(audited[0]["strategy"]), "epochs": int(audited[0].get("epochs", 0)),
                 "fraction": float(audited[0]["fraction"])}  # fmt: skip
        for k in AUDIT_KEYS:
            audit[k] = study.summarise([r["audit"]["categories"]["precision"][k] for r in audited])
        for k in FIT_KEYS:
            audit[f"fit_{k}"] = study.summarise([r["audit"]["fit"][k] for r in audited])
    return {"fractions": fractions, "audit": audit}
