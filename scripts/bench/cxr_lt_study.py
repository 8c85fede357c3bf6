# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Powered efficacy study of FPSM and DADAM on the MIMIC-CXR-LT demo data (DESIGN.md, "How we show that a method
works"; issue 13).

Arms, each trained through the bundle ``cxr_lt_fpsm_classification`` (``train.json`` + ``demo.json``) on the same
data, initialisation seed and schedule, and evaluated on the demo's clean ``test`` split:

- ``single``: the single-stage head (stage 4 only), the baseline of the paper's Tables 2-3;
- ``fpsm_43``, ``fpsm_432``, ``fpsm_4321``: FPSM with stage sets {4, 3}, {4, 3, 2} (the paper's best mAP) and
  {4, 3, 2, 1} (best F1);
- each of the four again with ``_dadam``: trained on the training split plus a DADAM set written once by
  :func:`monai_ext.data.cxr.generate_dadam_dataset` (CutMix of tail-class box patches on "No Finding" images and
  Mixup of correlated patches on tail-class images, boxes from the NIH and VinDr demos), in the paper's proportion
  (50k + 50k added to 210k training images, Sec. 4.1).

Every run's test pass keeps the raw stage logits, so the three stage combinations of
:class:`monai_ext.transforms.StageCombination` are scored from one forward pass; the arm's reported numbers use the
bundle default (``mean_prob``). An ensemble (Sec. 4.3: the mean of the probabilities of several checkpoints) is
scored per arm from the seeds' test probabilities (leave-one-out groups of the other seeds are not formed: the
ensemble of all seeds is one number per arm, reported beside the single models).

Budget: the learning rate is chosen for ``single`` on the tuning seed from ``plan.lr_grid`` by the validation mAP
(the bundle's patient-level 20 % of ``train.csv``) and every arm trains with it; model selection inside a run is the
bundle's (the epoch with the best validation mAP). The test split is used only for the reported numbers. Paired
seeds: the data are fixed, the seed sets the initialisation, shuffling and augmentation of every arm alike.

Network: a small timm backbone (RegNetX-200MF, ``regnetx_002``, strides 4-32 like TResNet) at 64 px: one TResNet-L
step at 448 px takes seconds on a CPU, and the study trains dozens of runs on 2 CPU cores. Tail classes: below the
median class count of the training labels (:func:`monai_ext.transforms.tail_class_indices`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils.enums import StrEnum

from monai_ext.bundle.workflow import run_bundle_workflow
from monai_ext.data.cxr import MIMIC_CXR_LT_CLASSES, cxr_lt_datalist, generate_dadam_dataset
from monai_ext.demo import get_writer
from monai_ext.metrics.multilabel import multilabel_metrics
from monai_ext.transforms import (
    StageCombination,
    combine_stage_logits,
    correlation_distance,
    label_correlation,
    tail_class_indices,
)
from scripts.bench import study
from scripts.bench.bundles import (
    DEMO_EVALUATE,
    DEMO_TRAIN,
    cached_datasets,
    plain_tensors_after_caching,
    restore_track_meta,
    run_folders,
)

__all__ = ["Arm", "ARM_STAGES", "StudyPlan", "PLANS", "write_study_data", "run_overrides", "train_and_evaluate"]
__all__ += ["run_study", "aggregate_study", "score_logits", "ensemble_scores"]

logger = logging.getLogger(__name__)

CXR_LT_BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "cxr_lt_fpsm_classification"
VAL_METRIC = "val_map"


class Arm(StrEnum):
    """Study arms: stage set, with or without the DADAM training set."""

    SINGLE = "single"
    FPSM_43 = "fpsm_43"
    FPSM_432 = "fpsm_432"
    FPSM_4321 = "fpsm_4321"
    SINGLE_DADAM = "single_dadam"
    FPSM_43_DADAM = "fpsm_43_dadam"
    FPSM_432_DADAM = "fpsm_432_dadam"
    FPSM_4321_DADAM = "fpsm_4321_dadam"


ARM_STAGES: dict[str, list[int]] = {"single": [4], "fpsm_43": [4, 3], "fpsm_432": [4, 3, 2], "fpsm_4321": [4, 3, 2, 1]}
"""The stage set of each arm's name without the ``_dadam`` suffix."""


def arm_stages(arm: Arm | str) -> list[int]:
    """The FPSM stage set of ``arm``."""
    return list(ARM_STAGES[str(Arm(arm)).removesuffix("_dadam")])


def arm_uses_dadam(arm: Arm | str) -> bool:
    """Whether ``arm`` trains on the DADAM-augmented set."""
    return str(Arm(arm)).endswith("_dadam")


STUDY_BACKBONE = "regnetx_002"


@dataclass(frozen=True)
class StudyPlan:
    """Sizes, schedule and seeds of one form of the study.

    Attributes:
        name: ``"default"``, ``"full"``, ``"long"`` or ``"quick"``.
        size: MIMIC-CXR-LT demo size (the writer's ``size``; 60 / 15 / 25 % of subjects in train / development /
            test).
        box_size: size of the NIH and VinDr demos that supply the DADAM boxes.
        written_size: side of the written demo images; ``image_size``: the bundle's training/evaluation size.
        epochs, batch_size: the schedule (cosine learning rate to 0 over ``epochs``, the bundle's).
        dadam_fraction: CutMix and Mixup images each, as a fraction of the training images (paper: 50k each on 210k).
        test_min_positives: clean positives per class at least in the demo's development and test splits (the
            writer's ``eval_min_positives``), so that every class's test AP is defined and not a 3-positive lottery.
        lr_grid: learning rates ``single`` chooses from on ``seeds[0]``.
        seeds: evaluation seeds (``seeds[0]`` also tunes).
    """

    name: str
    size: float
    box_size: float
    written_size: int
    image_size: int
    epochs: int
    seeds: tuple[int, ...]
    lr_grid: tuple[float, ...]
    batch_size: int = 32
    dadam_fraction: float = 0.24
    test_min_positives: int = 30
    lesion_contrast: float = 0.3
    workers: int = 2
    data_seed: int = 113
    backbone: str = STUDY_BACKBONE


PLANS: dict[str, StudyPlan] = {
    "default": StudyPlan("default", size=25.0, box_size=4.0, written_size=128, image_size=64, epochs=8,
                         seeds=(0, 1, 2, 3, 4), lr_grid=(1e-3, 3e-3)),
    "full": StudyPlan("full", size=50.0, box_size=8.0, written_size=128, image_size=96, epochs=20,
                      seeds=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), lr_grid=(3e-4, 1e-3, 3e-3)),
    # the default plan's data and learning rate (its tuning chose 3e-3), 2.5x the epochs: whether the comparison of
    # the default plan (every run's best epoch its last) changes with longer training; run with --arms single fpsm_432
    "long": StudyPlan("long", size=25.0, box_size=4.0, written_size=128, image_size=64, epochs=20,
                      seeds=(0, 1, 2, 3, 4), lr_grid=(3e-3,)),
    "quick": StudyPlan("quick", size=3.0, box_size=1.0, written_size=64, image_size=32, epochs=2, seeds=(0, 1),
                       lr_grid=(1e-3,), batch_size=16, test_min_positives=5),
}  # fmt: skip


# ---- data --------------------------------------------------------------------------------------------------------


def write_study_data(root: str | os.PathLike, plan: StudyPlan) -> dict[str, Any]:
    """Write the MIMIC-CXR-LT demo, the NIH and VinDr box sources and the DADAM set under ``root``.

    Returns:
        ``{"folders": {"mimic_cxr_lt", "nih", "vindr", "dadam"}, "sizes": {split: images}, "train_counts",
        "tail_classes", "dadam_report"}``.
    """
    root = Path(root)
    folders = {name: str(root / name) for name in ("mimic_cxr_lt", "nih", "vindr", "dadam")}
    common = dict(image_size=plan.written_size, lesion_contrast=plan.lesion_contrast)
    get_writer("mimic_cxr_lt")(folders["mimic_cxr_lt"], size=plan.size, seed=plan.data_seed,
                               eval_min_positives=plan.test_min_positives, **common)  # fmt: skip
    get_writer("nih")(folders["nih"], size=plan.box_size, seed=plan.data_seed + 1, bbox_fraction=1.0,
                      bbox_splits=("test", "train_val"), **common)  # fmt: skip
    get_writer("vindr")(folders["vindr"], size=plan.box_size, seed=plan.data_seed + 2, min_positives=10, **common)
    train = cxr_lt_datalist(folders["mimic_cxr_lt"], "train")
    labels = np.asarray([item["label"] for item in train])
    n_aug = int(round(plan.dadam_fraction * len(train)))
    report = generate_dadam_dataset(
        folders["mimic_cxr_lt"], {"nih": folders["nih"], "vindr": folders["vindr"]}, folders["dadam"],
        n_cutmix=n_aug, n_mixup=n_aug, seed=plan.data_seed,
    )  # fmt: skip
    sizes = {s: len(cxr_lt_datalist(folders["mimic_cxr_lt"], s)) for s in ("train", "val", "test")}
    tail = [MIMIC_CXR_LT_CLASSES[i] for i in tail_class_indices(labels)]
    counts = dict(zip(MIMIC_CXR_LT_CLASSES, labels.sum(0).astype(int).tolist()))
    return {"folders": folders, "sizes": sizes, "n_dadam": 2 * n_aug, "train_counts": counts, "tail_classes": tail,
            "dadam_report": report, "correlation_reference": correlation_reference(labels, plan.data_seed)}  # fmt: skip


def correlation_reference(labels: np.ndarray, seed: int, repeats: int = 20) -> dict[str, float]:
    """Scales to read the DADAM set's correlation distance against: the Frobenius norm of the training labels'
    correlation matrix off the diagonal, and the mean Frobenius distance between the correlation matrices of two
    random halves of the training images (sampling noise alone)."""
    rng = np.random.default_rng(seed)
    corr = label_correlation(labels)
    off = corr - np.diag(np.diag(corr))
    halves = []
    for _ in range(repeats):
        perm = rng.permutation(len(labels))
        a, b = perm[: len(labels) // 2], perm[len(labels) // 2 :]
        halves.append(correlation_distance(label_correlation(labels[a]), label_correlation(labels[b])))
    return {"off_diagonal_norm": float(np.linalg.norm(off)), "split_half_distance": float(np.mean(halves))}


# ---- one run -----------------------------------------------------------------------------------------------------


def study_network_def(stages: Sequence[int], backbone: str) -> dict[str, Any]:
    """The study's ``network_def`` override: FPSM on ``backbone`` with ``stages``."""
    return {"_target_": "monai_ext.networks.FeaturePyramidSumNet", "backbone": backbone,
            "num_classes": "@num_classes", "stages": list(stages)}  # fmt: skip


def run_overrides(
    arm: Arm | str, seed: int, learning_rate: float, data: Mapping[str, Any], run_dir: str | os.PathLike,
    plan: StudyPlan,
) -> dict[str, Any]:  # fmt: skip
    """The bundle overrides of one run (``train.json`` + ``demo.json``)."""
    stages = arm_stages(arm)
    return {
        "dataset_dir": data["folders"]["mimic_cxr_lt"],
        "dadam_dir": data["folders"]["dadam"] if arm_uses_dadam(arm) else None,
        **run_folders(run_dir),
        "image_size": plan.image_size,
        "epochs": plan.epochs,
        "batch_size": plan.batch_size,
        "learning_rate": float(learning_rate),
        "seed": int(seed),
        "fpsm_stages": stages,
        "backbone": plan.backbone,  # what the bundle's parameter check records; network_def names it too
        "network_def": study_network_def(stages, plan.backbone),
        "overwrite": True,
        **cached_datasets(),
    }


class _LogitCollector:
    """Keeps the raw stage logits and labels of an evaluation pass (``validate#postprocessing`` left empty)."""

    def __init__(self) -> None:
        self.logits: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def __call__(self, engine) -> None:
        for item in engine.state.output:
            self.logits.append(torch.as_tensor(item["pred"]).detach().float().cpu())
            self.labels.append(torch.as_tensor(item["label"]).detach().float().cpu())


def score_logits(logits: np.ndarray, labels: np.ndarray, tail: Sequence[str]) -> dict[str, dict[str, float]]:
    """mAP, mean AUROC, macro F1 and the tail classes' mean AP of stage logits ``N x C x S`` for every
    :class:`StageCombination`."""
    out = {}
    for mode in StageCombination:
        probs = combine_stage_logits(torch.as_tensor(logits), mode).numpy()
        out[mode.value] = probability_scores(probs, labels, tail)
    return out


def probability_scores(probs: np.ndarray, labels: np.ndarray, tail: Sequence[str]) -> dict[str, float]:
    """The study's metrics of probabilities ``N x C``: ``map``, ``mean_auroc``, ``macro_f1``, ``tail_map`` (mean AP
    of the ``tail`` classes with a test positive)."""
    result = multilabel_metrics(
        probs, labels, class_names=list(MIMIC_CXR_LT_CLASSES), class_groups={"tail": list(tail)}
    )
    return {"map": float(result["map"]), "mean_auroc": float(result["mean_auroc"]),
            "macro_f1": float(result["macro_f1"]), "tail_map": float(result["groups"]["tail"]["map"])}  # fmt: skip


def train_and_evaluate(
    arm: str, seed: int, learning_rate: float, data: Mapping[str, Any], run_dir: str, plan: StudyPlan,
    bundle_dir: str = str(CXR_LT_BUNDLE),
) -> dict[str, Any]:  # fmt: skip
    """Train one run through the bundle, keep its test-set stage logits, score them (a worker job).

    Returns:
        ``{"arm", "seed", "learning_rate", "val_map", "best_epoch", "test" ({combination: scores}), "logits_file",
        "train_s", "eval_s"}``.
    """
    overrides = run_overrides(arm, seed, learning_rate, data, run_dir, plan)
    start = time.perf_counter()
    with restore_track_meta():
        workflow = run_bundle_workflow(bundle_dir, DEMO_TRAIN, "train", hooks=[plain_tensors_after_caching],
                                       **overrides)  # fmt: skip
    state = workflow.parser.get_parsed_content("validate#evaluator").state
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    collector = _LogitCollector()

    def attach(wf) -> None:
        from ignite.engine import Events

        wf.parser.get_parsed_content("validate#evaluator").add_event_handler(Events.ITERATION_COMPLETED, collector)

    test = {
        **overrides,
        "output_dir": str(Path(run_dir) / "test"),
        "test_set": "test",
        "validate#postprocessing": {"_target_": "Compose", "transforms": []},
        "validate#key_metric": None,
        "validate#handlers": [{"_target_": "CheckpointLoader", "load_path": "@ckpt_path",
                               "load_dict": {"model": "@network"}, "map_location": "@device"}],  # fmt: skip
    }
    for key in cached_datasets():
        test.pop(key, None)
    with restore_track_meta():
        run_bundle_workflow(bundle_dir, DEMO_EVALUATE, "eval", hooks=[attach], **test)
    logits = torch.stack(collector.logits).numpy()
    labels = torch.stack(collector.labels).numpy()
    logits_file = Path(run_dir) / "test_logits.npz"
    np.savez_compressed(logits_file, logits=logits, labels=labels)
    result = {
        "arm": str(arm),
        "seed": int(seed),
        "learning_rate": float(learning_rate),
        VAL_METRIC: float(state.best_metric),
        "best_epoch": int(state.best_metric_epoch),
        "test": score_logits(logits, labels, data["tail_classes"]),
        "logits_file": str(logits_file),
        "train_s": train_s,
        "eval_s": time.perf_counter() - start,
    }
    logger.info(
        f"CXR-LT study: {arm} seed {seed} lr {learning_rate:g}: val mAP {result[VAL_METRIC]:.4f} (epoch "
        f"{result['best_epoch']}), test mAP {result['test']['mean_prob']['map']:.4f}, tail mAP "
        f"{result['test']['mean_prob']['tail_map']:.4f}, train {train_s:.0f} s."
    )
    return result


# ---- the study ---------------------------------------------------------------------------------------------------


def _job(arm: Arm | str, seed: int, lr: float, data: Mapping[str, Any], work: Path, plan: StudyPlan) -> dict:
    arm = Arm(arm)
    return dict(arm=arm.value, seed=int(seed), learning_rate=float(lr), data=data, plan=plan,
                run_dir=str(work / f"{arm.value}_lr{lr:g}_seed{seed}"))  # fmt: skip


def run_study(
    work_dir: str | os.PathLike, plan: StudyPlan, arms: Sequence[Arm | str] = tuple(Arm), workers: int | None = None
) -> dict[str, Any]:
    """Write the data; on the tuning seed choose ``single``'s learning rate; train every arm on every seed with it;
    aggregate (:func:`aggregate_study`).

    Raises:
        ValueError: ``single`` is not among ``arms``.
    """
    arms = [Arm(a) for a in arms]
    if Arm.SINGLE not in arms:
        raise ValueError("the study needs the 'single' arm: it is the baseline and sets every arm's learning rate.")
    workers = plan.workers if workers is None else int(workers)
    work = Path(work_dir)
    start = time.perf_counter()
    data = write_study_data(work / "data", plan)
    logger.info(f"CXR-LT study data: {data['sizes']}, DADAM {data['n_dadam']}, tail {data['tail_classes']}.")
    tuning_seed = plan.seeds[0]
    jobs = [_job(Arm.SINGLE, tuning_seed, lr, data, work, plan) for lr in plan.lr_grid]
    tuning = study.run_parallel(train_and_evaluate, jobs, workers)
    best = study.select_best(tuning, VAL_METRIC)
    lr = float(best["learning_rate"])
    logger.info(f"CXR-LT study: single chose learning rate {lr:g}.")
    done = {(Arm.SINGLE, tuning_seed)}
    jobs = [_job(a, s, lr, data, work, plan) for s in plan.seeds for a in arms if (a, s) not in done]
    runs = [best] + study.run_parallel(train_and_evaluate, jobs, workers)
    out = {
        "plan": asdict(plan),
        "data": data,
        "tuning": [{k: t[k] for k in ("learning_rate", VAL_METRIC, "best_epoch")} for t in tuning],
        "learning_rate": lr,
        "runs": runs,
        "wall_s": time.perf_counter() - start,
        "workers": workers,
    }
    out["summary"] = aggregate_study(runs)
    out["ensembles"] = ensemble_scores(runs, data["tail_classes"])
    out["class_groups"] = class_group_scores(runs, study_class_groups(data))
    return out


def study_class_groups(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """The classes by where a DADAM gain can come from: ``head`` (at or above the median training count),
    ``tail_boxed`` (tail classes with lesion boxes: CutMix patches and Mixup patches) and ``tail_unboxed`` (tail
    classes without boxes: only Mixup backgrounds, i.e. more copies of their own images)."""
    tail = list(data["tail_classes"])
    unboxed = set((data.get("dadam_report") or {}).get("tail_classes_without_boxes", []))
    return {
        "head": [c for c in MIMIC_CXR_LT_CLASSES if c not in tail],
        "tail_boxed": [c for c in tail if c not in unboxed],
        "tail_unboxed": [c for c in tail if c in unboxed],
    }


def class_group_scores(
    runs: Sequence[Mapping[str, Any]], groups: Mapping[str, Sequence[str]], baseline: str = Arm.SINGLE.value
) -> dict[str, dict[str, Any]]:
    """Per arm and class group: the group's mean test AP (``mean_prob``) from each run's saved logits, mean +- std
    over seeds and the paired difference to ``baseline`` (``{arm: {group: summary, "delta_" + group: diff}}``)."""
    per_seed: dict[str, dict[str, dict[int, float]]] = {}
    for run in runs:
        saved = np.load(run["logits_file"])
        probs = combine_stage_logits(torch.as_tensor(saved["logits"])).numpy()
        result = multilabel_metrics(probs, saved["labels"], class_names=list(MIMIC_CXR_LT_CLASSES),
                                    class_groups={g: list(c) for g, c in groups.items() if c})  # fmt: skip
        arm = per_seed.setdefault(run["arm"], {})
        for group in result["groups"]:
            arm.setdefault(group, {})[int(run["seed"])] = float(result["groups"][group]["map"])
    out: dict[str, dict[str, Any]] = {}
    for arm, by_group in per_seed.items():
        entry: dict[str, Any] = {}
        for group, values in by_group.items():
            entry[group] = study.summarise([values[s] for s in sorted(values)])
            entry[group]["per_seed"] = values
            if baseline in per_seed and arm != baseline and group in per_seed[baseline]:
                entry[f"delta_{group}"] = study.paired_difference(values, per_seed[baseline][group])
        out[arm] = entry
    return out


METRICS = ("map", "tail_map", "mean_auroc", "macro_f1")


def aggregate_study(
    runs: Sequence[Mapping[str, Any]], baseline: str = Arm.SINGLE.value, combination: str = "mean_prob"
) -> dict[str, Any]:
    """Per arm: mean +- std over seeds of :data:`METRICS` (``combination``), the paired difference to ``baseline``
    with its 95 % CI, the other combinations' mAP, and the best epochs."""
    by_arm: dict[str, dict[int, Mapping[str, Any]]] = {}
    for run in runs:
        by_arm.setdefault(run["arm"], {})[int(run["seed"])] = run
    summary: dict[str, Any] = {}
    for arm, seeds in by_arm.items():
        entry: dict[str, Any] = {}
        for metric in METRICS:
            values = {s: r["test"][combination][metric] for s, r in seeds.items()}
            entry[metric] = study.summarise([values[s] for s in sorted(values)])
            entry[metric]["per_seed"] = values
            if baseline in by_arm and arm != baseline:
                base = {s: r["test"][combination][metric] for s, r in by_arm[baseline].items()}
                entry[f"delta_{metric}"] = study.paired_difference(values, base)
        ordered = [seeds[s] for s in sorted(seeds)]
        for mode in StageCombination:
            entry[f"map_{mode.value}"] = study.summarise([r["test"][mode.value]["map"] for r in ordered])
        entry["best_epoch"] = study.summarise([r["best_epoch"] for r in ordered])
        entry["train_s"] = study.summarise([r["train_s"] for r in ordered])
        summary[arm] = entry
    return summary


def ensemble_scores(runs: Sequence[Mapping[str, Any]], tail: Sequence[str]) -> dict[str, Any]:
    """Per arm: the scores of the mean of its seeds' test probabilities (Sec. 4.3's ensemble by probability
    averaging), and the mean single-model mAP for comparison."""
    by_arm: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        by_arm.setdefault(run["arm"], []).append(run)
    out = {}
    for arm, arm_runs in by_arm.items():
        probs, labels = [], None
        for run in sorted(arm_runs, key=lambda r: r["seed"]):
            saved = np.load(run["logits_file"])
            probs.append(combine_stage_logits(torch.as_tensor(saved["logits"])).numpy())
            labels = saved["labels"]
        out[arm] = {"members": len(probs), **probability_scores(np.mean(probs, axis=0), labels, tail),
                    "single_model_map": float(np.mean([r["test"]["mean_prob"]["map"] for r in arm_runs]))}  # fmt: skip
    return out
