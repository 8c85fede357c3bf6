# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The powered MoMBS detection study of ``make bench`` (``shared/DESIGN.md``, "How we show that a method works"):
universal lesion detection on a demo DeepLesion set with the ``deeplesion_mombs_detection`` bundle, MoMBS against
the paper's baselines at 25 % and 50 % of the training patients (MoMBS paper, Table I).

Protocol (a :class:`StudyPlan`; ``default`` is what ``make bench`` runs, ``full`` the longer form, ``quick`` a smoke
run of the same code):

1. **Data** (:func:`write_study_data`): one demo DeepLesion set
   (:func:`monai_ext.demo.deeplesion.write_deeplesion_demo`, size 8: ~400 training, ~90 validation, ~100 test key
   images) with DeepLesion's kinds of diverse quality in the training split: half of the training lesions
   unannotated (no box), loose boxes, tiny / low-contrast lesions, ``Possibly_noisy`` rows; the validation and test
   splits are completely annotated, so sensitivity is measured against every drawn lesion. The official split
   (``Train_Val_Test``) is used; the training fractions are nested patient subsets (the bundle's ``train_fraction``,
   :func:`monai_ext.data.deeplesion_subset`, ``split_seed`` 0). The lesions are drawn with
   ``lesion_contrast`` (default 3) times their types' HU difference to the host tissue: at 1, a small detector trained
   from scratch on a CPU does not learn the demo in the study's budget (validation FROC ~0 after 1,500 steps, also
   with clean boxes), and a study of sampling strategies needs a detector that learns.
2. **Runs**: every arm of :data:`ARMS` for every fraction and seed (the ``default`` plan: all six arms at 25 %, the
   baseline and MoMBS at 50 %, to fit about an hour on 2 CPUs) with the same schedule: the demo overlay's small
   network (``small_network_def``), Adam at ``learning_rate`` with the bundle's cosine decay, ``epochs`` epochs,
   ``pivot_epoch``, batch 4 (the paper's), K = 8 FPN disturbances, top-100-anchor entropy; seed ``s`` gives every arm
   the same initialisation and augmentation seed. The checkpoint tested is ``model.pt``: the best validation FROC
   (mean sensitivity at 0.5-2 FPs per image on the validation split). No arm is tuned on its own.
3. **Metric**: the bundle's ``evaluate.json`` on the test split: sensitivity at 0.5, 1, 2, 4 FPs per image and their
   mean over 0.5-2 (the paper's "Avg.[0.5,1,2]"), official DeepLesion convention, in the original pixel grid.

Runs go through the bundle in worker processes (:func:`scripts.bench.study.run_parallel`) with cached datasets.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from monai_ext.bundle.workflow import run_bundle_workflow
from monai_ext.data.datalist import require_file
from monai_ext.demo.deeplesion import CLEAN_DL_INFO, write_deeplesion_demo
from scripts.bench import study
from scripts.bench.bundles import (
    BUNDLES_DIR,
    DEMO_EVALUATE,
    DEMO_TRAIN,
    SMALL_NETWORK,
    cached_datasets,
    plain_tensors_after_caching,
    restore_track_meta,
    run_folders,
)

__all__ = [
    "BUNDLE_DIR",
    "ARMS",
    "ARM_LABELS",
    "BASELINE",
    "StudyPlan",
    "PLANS",
    "with_plan_overrides",
    "write_study_data",
    "read_froc",
    "run_overrides",
    "train_and_evaluate",
    "study_jobs",
    "run_study",
    "aggregate_study",
    "merge_runs",
    "collect_runs",
    "METRICS",
    "ARM_OVERRIDES",
    "PLANNED_ARMS",
]

logger = logging.getLogger(__name__)

BUNDLE_DIR = BUNDLES_DIR / "deeplesion_mombs_detection"
ARMS = (
    "random", "scl_hard", "ohem", "mombs_loss", "mombs_uncertainty", "mombs",
    "mombs_coarse_uncertainty", "random_clean",
)  # fmt: skip
"""The arms known to the study, in the paper's Table I order: the bundle's ``sampling_strategy`` values, plus the
variants of :data:`ARM_OVERRIDES`."""
ARM_OVERRIDES: dict[str, dict[str, Any]] = {
    "mombs_coarse_uncertainty": {"sampling_strategy": "mombs", "uncertainty_levels": [1, 2, 3]},
    "random_clean": {"sampling_strategy": "random", "labels": "clean"},
}
"""Arms that are a strategy with further bundle overrides: ``mombs_coarse_uncertainty`` is MoMBS whose uncertainty
leaves out the stride-4 FPN level (about 0.72 of the classification head's cost, so of the ``K`` re-runs), to
measure what the cheaper assessment costs in FROC; ``random_clean`` is random sampling trained (and validated) on the
demo's complete annotation (``DL_info_clean.csv``: every drawn lesion boxed, no loose or noisy box), tested on the same
test split as every arm: the learnability check of ``../shared/DESIGN.md`` (it must beat random on the noisy boxes
clearly, or the benchmark cannot show robustness to DeepLesion's annotation noise)."""
PLANNED_ARMS = ARMS[:6]
"""The arms of the ``default`` and ``full`` plans."""
ARM_LABELS = {
    "random": "random (baseline)",
    "scl_hard": "SCL (hard)",
    "ohem": "OHEM",
    "mombs_loss": "Mo+l",
    "mombs_uncertainty": "Mo+u",
    "mombs": "Mo+l+u (MoMBS)",
    "mombs_coarse_uncertainty": "Mo+l+u, uncertainty without the stride-4 level",
    "random_clean": "random on the clean boxes (learnability check)",
}
BASELINE = "random"
METRICS = {"avg": "avg[0.5,1,2]", "sens@0.5": "sens@0.5", "sens@1": "sens@1", "sens@2": "sens@2", "sens@4": "sens@4"}
"""Result key -> key of the ``official`` part of ``test_froc.json``."""
ADAM = {
    "_target_": "torch.optim.Adam",
    "params": "$@network.parameters()",
    "lr": "@learning_rate",
    "weight_decay": "@weight_decay",
}


@dataclass(frozen=True)
class StudyPlan:
    """Sizes, schedule and seeds of one form of the study (see :data:`PLANS`).

    Attributes:
        name: the plan's name.
        demo_size: ``size`` of the demo writer (1.0 = 24 patients, ~65 key images; train/val/test 70/15/15 %).
        write_size: slice side written (pixels); ``pixel_spacing`` the working spacing (mm) and ``image_size`` the
            padded working side.
        lesion_contrast: the demo writer's factor on the lesions' HU difference to their host tissue.
        ct_window: HU window scaled to [0, 1] (the bundle's ``ct_window``).
        fractions, arms, seeds: the grid; ``fraction_arms`` restricts the arms of some fractions (``{fraction:
            arms}``, e.g. only the baseline and MoMBS at 50 % when the budget does not hold every arm twice).
        epochs, pivot_epoch, batch_size, learning_rate, val_interval, num_disturbances: the schedule.
        workers: parallel runs (one torch thread each).
    """

    name: str
    demo_size: float
    fractions: tuple[float, ...]
    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int
    pivot_epoch: int
    write_size: int = 160
    pixel_spacing: float = 2.5
    image_size: int = 160
    lesion_contrast: float = 3.0
    ct_window: tuple[float, float] = (-160.0, 240.0)
    batch_size: int = 4
    learning_rate: float = 1e-3
    val_interval: int = 1
    num_disturbances: int = 8
    workers: int = 2
    data_seed: int = 1
    split_seed: int = 0
    fraction_arms: tuple[tuple[float, tuple[str, ...]], ...] = ()

    def arms_for(self, fraction: float) -> tuple[str, ...]:
        """The arms run at ``fraction``."""
        return dict(self.fraction_arms).get(float(fraction), self.arms)


PLANS: dict[str, StudyPlan] = {
    "default": StudyPlan("default", demo_size=8.0, fractions=(0.25, 0.5), arms=PLANNED_ARMS, seeds=(0, 1, 2, 3, 4),
                         epochs=10, pivot_epoch=4, fraction_arms=((0.5, ("random", "mombs")),)),
    "full": StudyPlan("full", demo_size=16.0, fractions=(0.25, 0.5, 1.0), arms=PLANNED_ARMS, seeds=tuple(range(10)),
                      epochs=40, pivot_epoch=20),
    "quick": StudyPlan("quick", demo_size=1.0, fractions=(0.5,), arms=("random", "mombs"), seeds=(0, 1), epochs=2,
                       pivot_epoch=2, write_size=64, pixel_spacing=6.0, image_size=64),
}  # fmt: skip


def with_plan_overrides(plan: StudyPlan, **changes: Any) -> StudyPlan:
    """``plan`` with the given fields replaced (``None`` values are ignored), e.g. from command-line options."""
    return replace(plan, **{k: v for k, v in changes.items() if v is not None})


def write_study_data(root: str | os.PathLike, plan: StudyPlan) -> dict[str, Any]:
    """Write the study's demo DeepLesion set under ``root/deeplesion``.

    Returns:
        ``{"dataset_dir", "writer": the writer's summary, "settings": the writer's arguments}``.
    """
    dataset_dir = Path(root) / "deeplesion"
    settings = dict(size=plan.demo_size, seed=plan.data_seed, image_size=plan.write_size,
                    lesion_contrast=plan.lesion_contrast)  # fmt: skip
    summary = write_deeplesion_demo(dataset_dir, **settings)
    clean_dir = Path(root) / "deeplesion_clean"  # the same slices, the complete annotation as DL_info.csv
    clean_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dataset_dir / CLEAN_DL_INFO, clean_dir / "DL_info.csv")
    if not (clean_dir / "Images_png").exists():
        (clean_dir / "Images_png").symlink_to((dataset_dir / "Images_png").resolve(), target_is_directory=True)
    return {"dataset_dir": str(dataset_dir), "clean_dir": str(clean_dir), "writer": summary, "settings": settings}


def read_froc(output_dir: str | os.PathLike, prefix: str = "test") -> dict[str, Any]:
    """The ``official`` numbers of a ``DetectionFROCReport`` (``<prefix>_froc.json``) under :data:`METRICS` keys,
    plus ``num_images`` and ``num_lesions``.

    Raises:
        FileNotFoundError: the report is missing.
        KeyError: it lacks an official number.
    """
    path = require_file(Path(output_dir) / f"{prefix}_froc.json", "DetectionFROCReport")
    report = json.loads(path.read_text(encoding="utf-8"))
    out = {key: float(report["official"][name]) for key, name in METRICS.items()}
    out.update(num_images=int(report["num_images"]), num_lesions=int(report["num_lesions"]))
    return out


def run_overrides(
    arm: str, seed: int, fraction: float, data: Mapping[str, Any], run_dir: str | os.PathLike, plan: StudyPlan
) -> dict[str, Any]:
    """The bundle overrides of one run (``train.json`` + ``demo.json``) of the arm ``arm`` (a ``sampling_strategy``
    value or a key of :data:`ARM_OVERRIDES`)."""
    extra = dict(ARM_OVERRIDES.get(arm, {}))
    clean = extra.pop("labels", None) == "clean"
    return {
        "dataset_dir": str(data["clean_dir"] if clean else data["dataset_dir"]),
        **run_folders(run_dir),
        "sampling_strategy": str(extra.pop("sampling_strategy", arm)),
        **extra,
        "network_def": SMALL_NETWORK,
        "optimizer": dict(ADAM),
        "learning_rate": float(plan.learning_rate),
        "pixel_spacing": float(plan.pixel_spacing),
        "image_size": int(plan.image_size),
        "ct_window": [float(v) for v in plan.ct_window],
        "epochs": int(plan.epochs),
        "pivot_epoch": int(plan.pivot_epoch),
        "batch_size": int(plan.batch_size),
        "val_interval": int(plan.val_interval),
        "num_disturbances": int(plan.num_disturbances),
        "num_workers": 0,
        "seed": int(seed),
        "split_seed": int(plan.split_seed),
        "train_fraction": float(fraction),
        **cached_datasets(),
    }


def train_and_evaluate(
    arm: str,
    seed: int,
    fraction: float,
    data: Mapping[str, Any],
    run_dir: str,
    plan: StudyPlan,
    bundle_dir: str = str(BUNDLE_DIR),
) -> dict[str, Any]:
    """Train one run through the bundle and evaluate ``model.pt`` on the test split (a worker job).

    Returns:
        ``{"arm", "seed", "fraction", the :data:`METRICS` keys, "num_images", "num_lesions", "best_val",
        "best_val_epoch", "n_train", "train_s", "eval_s"}``.
    """
    overrides = run_overrides(arm, seed, fraction, data, run_dir, plan)
    start = time.perf_counter()
    with restore_track_meta():
        workflow = run_bundle_workflow(bundle_dir, DEMO_TRAIN, "train", hooks=[plain_tensors_after_caching],
                                       **overrides)  # fmt: skip
    train_s = time.perf_counter() - start
    state = workflow.parser.get_parsed_content("validate#evaluator").state
    n_train = len(workflow.parser.get_parsed_content("train#datalist"))
    start = time.perf_counter()
    test_dir = Path(run_dir) / "test"
    extra = {  # every arm is tested on the same (noisy dataset's) test split
        "output_dir": str(test_dir),
        "ckpt_path": str(Path(overrides["ckpt_dir"]) / "model.pt"),
        "dataset_dir": str(data["dataset_dir"]),
    }
    with restore_track_meta():
        run_bundle_workflow(bundle_dir, DEMO_EVALUATE, "eval", **{**overrides, **extra})
    result: dict[str, Any] = {"arm": arm, "seed": int(seed), "fraction": float(fraction), **read_froc(test_dir)}
    result.update(
        best_val=float(state.best_metric),
        best_val_epoch=int(state.best_metric_epoch),
        n_train=n_train,
        train_s=train_s,
        eval_s=time.perf_counter() - start,
    )
    logger.info(
        f"DeepLesion study: {arm} fraction {fraction:g} seed {seed}: test avg sensitivity {result['avg']:.3f} (best "
        f"val epoch {result['best_val_epoch']}), train {train_s:.0f} s."
    )
    return result


def run_dir_name(arm: str, fraction: float, seed: int) -> str:
    """``<arm>_f<percent>_seed<seed>``, e.g. ``mombs_f25_seed0``."""
    return f"{arm}_f{round(100 * fraction)}_seed{int(seed)}"


def study_jobs(plan: StudyPlan, data: Mapping[str, Any], work: Path) -> list[dict[str, Any]]:
    """Every (fraction, seed, arm) job, smallest fraction first (its complete seeds come first if time runs out)."""
    return [
        dict(arm=arm, seed=int(seed), fraction=float(fraction), data=data, plan=plan,
             run_dir=str(work / run_dir_name(arm, fraction, seed)))  # fmt: skip
        for fraction in sorted(plan.fractions)
        for seed in plan.seeds
        for arm in plan.arms_for(fraction)
    ]


def run_study(work_dir: str | os.PathLike, plan: StudyPlan, workers: int | None = None) -> dict[str, Any]:
    """Write the data, run every job (``workers`` processes, default the plan's) and aggregate.

    Returns:
        ``{"plan", "data", "runs", "aggregate", "wall_s"}``.
    """
    work = Path(work_dir)
    start = time.perf_counter()
    data = write_study_data(work / "data", plan)
    jobs = study_jobs(plan, data, work / "runs")
    logger.info(f"DeepLesion study '{plan.name}': {len(jobs)} runs on {workers or plan.workers} workers.")
    runs = study.run_parallel(train_and_evaluate, jobs, workers or plan.workers)
    return {
        "plan": asdict(plan),
        "data": {k: v for k, v in data.items() if k != "dataset_dir"},
        "runs": runs,
        "aggregate": aggregate_study(runs),
        "wall_s": time.perf_counter() - start,
    }


def aggregate_study(runs: Sequence[Mapping[str, Any]], baseline: str = BASELINE) -> dict[str, Any]:
    """Per fraction and arm: mean +- std over seeds of every metric (:func:`scripts.bench.study.summarise`) and the
    paired difference to ``baseline`` with its 95 % CI (:func:`scripts.bench.study.paired_difference`).

    Returns:
        ``{fraction (str, e.g. "0.25"): {arm: {metric: summary, "delta_" + metric: difference}}}``.
    """
    out: dict[str, Any] = {}
    for fraction in sorted({float(r["fraction"]) for r in runs}):
        table: dict[str, Any] = {}
        rows = [r for r in runs if float(r["fraction"]) == fraction]
        arms = [a for a in ARMS if any(r["arm"] == a for r in rows)]
        per_seed = {a: {int(r["seed"]): r for r in rows if r["arm"] == a} for a in arms}
        for arm in arms:
            entry: dict[str, Any] = {}
            for metric in (*METRICS, "best_val", "train_s"):
                values = {s: per_seed[arm][s].get(metric) for s in sorted(per_seed[arm])}
                entry[metric] = study.summarise(list(values.values()))
                if baseline in per_seed and arm != baseline and metric in METRICS:
                    base = {s: r.get(metric) for s, r in per_seed[baseline].items()}
                    entry[f"delta_{metric}"] = study.paired_difference(values, base)
            table[arm] = entry
        out[f"{fraction:g}"] = table
    return out


def merge_runs(*studies: Mapping[str, Any]) -> dict[str, Any]:
    """One study from several invocations of the same plan and data (e.g. an arm added later): the first study's
    plan and data, every run (a later run of the same arm, fraction and seed replaces the earlier), aggregated anew.

    Raises:
        ValueError: the studies' data were written with different settings (their runs are not paired).
    """
    first = studies[0]
    runs: dict[tuple, Mapping[str, Any]] = {}
    for s in studies:
        if s["data"]["settings"] != first["data"]["settings"]:
            raise ValueError(f"studies on different data cannot be paired: {s['data']['settings']} vs "
                             f"{first['data']['settings']}.")  # fmt: skip
        for r in s["runs"]:
            runs[(r["arm"], float(r["fraction"]), int(r["seed"]))] = r
    merged = [runs[k] for k in sorted(runs, key=lambda k: (k[1], k[2], ARMS.index(k[0])))]
    return {**first, "runs": merged, "aggregate": aggregate_study(merged),
            "wall_s": sum(float(s.get("wall_s", 0.0)) for s in studies)}  # fmt: skip


def collect_runs(runs_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The finished runs of a study's ``runs`` folder, read back from disk (each ``<arm>_f<percent>_seed<seed>/test``
    report): for a study stopped before :func:`run_study` returned. Only the test metrics are on disk (no training
    times or best validation epoch).

    Returns:
        run results as :func:`train_and_evaluate` gives them, without ``best_val``, ``best_val_epoch``, ``n_train``,
        ``train_s`` and ``eval_s``; runs without a test report are left out.
    """
    pattern = re.compile(r"^(?P<arm>[a-z_]+)_f(?P<percent>\d+)_seed(?P<seed>\d+)$")
    runs = []
    for folder in sorted(Path(runs_dir).iterdir()):
        match = pattern.match(folder.name)
        if match is None or not (folder / "test" / "test_froc.json").is_file():
            continue
        runs.append({"arm": match["arm"], "seed": int(match["seed"]), "fraction": int(match["percent"]) / 100,
                     **read_froc(folder / "test")})  # fmt: skip
    return runs
