# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The FPSM + DADAM efficacy study (``scripts.bench.cxr_lt_study``), its tables (``scripts.bench.cxr_lt_report``)
and its entry point (``scripts.bench_cxr_lt``): plans, arms and run overrides, the scores and the aggregation against
independent computations (scikit-learn, numpy, hand-worked cases), the report on a fabricated result, and one tiny
end-to-end study through the bundle."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import expit
from sklearn.metrics import average_precision_score, roc_auc_score

from monai_ext.data.cxr import MIMIC_CXR_LT_CLASSES, cxr_lt_datalist
from monai_ext.transforms import combine_stage_logits
from scripts import bench_cxr_lt
from scripts.bench import cxr_lt_report, cxr_lt_study
from scripts.bench.cxr_lt_study import (
    ARM_STAGES,
    CXR_LT_BUNDLE,
    PLANS,
    Arm,
    aggregate_study,
    arm_stages,
    arm_uses_dadam,
    class_group_scores,
    correlation_reference,
    ensemble_scores,
    probability_scores,
    run_overrides,
    run_study,
    score_logits,
    study_class_groups,
)

CLASSES = list(MIMIC_CXR_LT_CLASSES)
MODES = ("mean_prob", "sum_logits", "deepest")
EXPECTED_STAGES = {"single": [4], "fpsm_43": [4, 3], "fpsm_432": [4, 3, 2], "fpsm_4321": [4, 3, 2, 1]}

# ---- independent computations ------------------------------------------------------------------------------------


def _combine(logits: np.ndarray, mode: str) -> np.ndarray:
    """``N x C x S`` stage logits -> ``N x C`` probabilities, written out with numpy."""
    if mode == "mean_prob":
        return expit(logits).mean(axis=-1)
    if mode == "sum_logits":
        return expit(logits.sum(axis=-1))
    return expit(logits[..., 0])


def _scores(probs: np.ndarray, labels: np.ndarray, tail: list[str]) -> dict[str, float]:
    """mAP, mean AUROC, macro F1 (threshold 0.5, ``2 TP / (2 TP + FP + FN)``) and the tail classes' mean AP, each
    over the classes where it is defined, class by class with scikit-learn."""
    ap, auc, f1 = {}, {}, {}
    for c, name in enumerate(CLASSES):
        y, p = labels[:, c], probs[:, c]
        if y.sum() > 0:
            ap[name] = average_precision_score(y, p)
            pred = p >= 0.5
            tp, fp, fn = np.sum(pred & (y == 1)), np.sum(pred & (y == 0)), np.sum(~pred & (y == 1))
            f1[name] = 2 * tp / (2 * tp + fp + fn)
        if 0 < y.sum() < len(y):
            auc[name] = roc_auc_score(y, p)
    tail_ap = [ap[name] for name in tail if name in ap]
    return {"map": np.mean(list(ap.values())), "mean_auroc": np.mean(list(auc.values())),
            "macro_f1": np.mean(list(f1.values())), "tail_map": np.mean(tail_ap)}  # fmt: skip


def _labels(rng: np.random.Generator, n: int, empty: tuple[int, ...] = ()) -> np.ndarray:
    """``n x 26`` 0/1 labels with a positive and a negative in every class except the ``empty`` ones (no positive)."""
    labels = (rng.random((n, len(CLASSES))) < 0.3).astype(np.float32)
    for c in range(len(CLASSES)):
        labels[c % n, c], labels[(c + 1) % n, c] = 1.0, 0.0
    labels[:, list(empty)] = 0.0
    return labels


def _mean_std(values) -> str:
    return f"{np.mean(values):.3f} +- {np.std(values, ddof=1):.3f}"


def _paired(values, baseline) -> str:
    d = np.subtract(values, baseline)
    half = stats.t.ppf(0.975, len(d) - 1) * np.std(d, ddof=1) / math.sqrt(len(d))
    return f"{d.mean():+.3f} [{d.mean() - half:+.3f}, {d.mean() + half:+.3f}]"


# ---- plans, arms, overrides --------------------------------------------------------------------------------------


def test_default_and_full_plans_meet_the_powered_standard():
    # DESIGN.md "How we show that a method works": >= 5 paired seeds, a tuning budget on the validation split
    for name in ("default", "full"):
        plan = PLANS[name]
        assert plan.name == name
        assert len(plan.seeds) >= 5 and len(set(plan.seeds)) == len(plan.seeds)
        assert len(plan.lr_grid) >= 1 and all(lr > 0 for lr in plan.lr_grid)
        assert plan.test_min_positives >= 30  # every class's test AP is defined by >= 30 positives
        assert plan.image_size <= plan.written_size and plan.epochs >= 1
        assert plan.dadam_fraction == pytest.approx(50 / 210, abs=0.005)  # paper: 50k CutMix + 50k Mixup on 210k
    assert len(PLANS["full"].seeds) >= len(PLANS["default"].seeds) and PLANS["full"].size > PLANS["default"].size
    parser = bench_cxr_lt.build_parser()
    assert parser.parse_args([]).plan == "default"  # make bench runs the powered plan
    assert set(parser._option_string_actions["--plan"].choices) == set(PLANS) >= {"default", "full", "quick"}


def test_arms_stages_and_dadam_twins():
    expected = {**EXPECTED_STAGES, **{f"{a}_dadam": s for a, s in EXPECTED_STAGES.items()}}
    assert {a.value for a in Arm} == set(expected)
    for arm, stages in expected.items():
        assert arm_stages(arm) == stages and arm_stages(Arm(arm)) == stages
        assert arm_uses_dadam(arm) is arm.endswith("_dadam")
    assert {a for a in expected if arm_uses_dadam(a)} == {f"{a}_dadam" for a in EXPECTED_STAGES}
    stages = arm_stages("fpsm_43")
    stages.append(1)  # a copy: the table of stage sets stays as it is
    assert ARM_STAGES["fpsm_43"] == [4, 3] and arm_stages("fpsm_43_dadam") == [4, 3]
    with pytest.raises(ValueError):
        arm_stages("fpsm_42")
    assert set(cxr_lt_report.ARM_LABELS) == set(expected)  # every arm has a row title in the report


def test_run_overrides_per_arm(tmp_path):
    plan = dataclasses.replace(PLANS["default"], backbone="resnet10t", epochs=3, batch_size=7, image_size=48)
    data = {"folders": {"mimic_cxr_lt": "/d/mimic", "nih": "/d/nih", "vindr": "/d/vindr", "dadam": "/d/dadam"}}
    train = json.loads((CXR_LT_BUNDLE / "configs" / "train.json").read_text())
    for arm in Arm:
        out = run_overrides(arm, 3, 3e-3, data, tmp_path / arm.value, plan)
        stages = EXPECTED_STAGES[arm.value.removesuffix("_dadam")]
        assert out["fpsm_stages"] == stages and out["backbone"] == "resnet10t"
        assert out["network_def"] == {"_target_": "monai_ext.networks.FeaturePyramidSumNet", "backbone": "resnet10t",
                                      "num_classes": "@num_classes", "stages": stages}  # fmt: skip
        assert out["dataset_dir"] == "/d/mimic"
        assert out["dadam_dir"] == ("/d/dadam" if arm.value.endswith("_dadam") else None)
        assert out["seed"] == 3 and isinstance(out["seed"], int) and out["learning_rate"] == 3e-3
        assert (out["epochs"], out["batch_size"], out["image_size"]) == (3, 7, 48) and out["overwrite"] is True
        assert out["ckpt_dir"] == str(tmp_path / arm.value / "models")
        assert out["output_dir"] == str(tmp_path / arm.value / "eval")
        assert out["train#dataset#_target_"] == out["validate#dataset#_target_"] == "CacheDataset"
        for key in out:  # every override names an id of train.json (for a nested one: its parent at least)
            node = train
            for part in key.split("#")[:-1]:
                node = node[part]
            assert "#" in key or key in train, key
    numpy_args = run_overrides("single", np.int64(2), np.float32(0.5), data, tmp_path, plan)
    assert type(numpy_args["seed"]) is int and type(numpy_args["learning_rate"]) is float  # JSON-ready overrides


def test_correlation_reference_worked_by_hand_and_against_numpy():
    # columns a, b, c = a, d constant: corr(a, b) = 0, corr(a, c) = 1, corr(b, c) = 0, d has none (0):
    # off-diagonal Frobenius norm sqrt(1^2 + 1^2) = sqrt(2)
    a, b = [1, 1, 0, 0], [1, 0, 1, 0]
    labels = np.array([a, b, a, [0] * 4], dtype=float).T
    assert correlation_reference(labels, seed=0)["off_diagonal_norm"] == pytest.approx(math.sqrt(2))

    def corr(x):  # numpy's Pearson correlation, constant columns 0 off the diagonal
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.nan_to_num(np.corrcoef(x, rowvar=False))
        np.fill_diagonal(r, 1.0)
        return r

    rng = np.random.default_rng(7)
    labels = (rng.random((41, 5)) < [0.5, 0.3, 0.2, 0.1, 0.0]).astype(float)
    labels[:, 2] = np.maximum(labels[:, 2], labels[:, 0] * (rng.random(41) < 0.6))  # a correlated pair
    off = corr(labels) - np.eye(5)
    ref = correlation_reference(labels, seed=11, repeats=6)
    assert ref["off_diagonal_norm"] == pytest.approx(np.sqrt((off**2).sum()))
    # split halves: seed 11's permutations, first n // 2 images against the rest
    perm_rng, distances = np.random.default_rng(11), []
    for _ in range(6):
        perm = perm_rng.permutation(41)
        distances.append(np.sqrt(((corr(labels[perm[:20]]) - corr(labels[perm[20:]])) ** 2).sum()))
    assert ref["split_half_distance"] == pytest.approx(np.mean(distances)) and ref["split_half_distance"] > 0
    assert correlation_reference(labels, seed=12, repeats=6)["split_half_distance"] != ref["split_half_distance"]


# ---- scores ------------------------------------------------------------------------------------------------------


def test_stage_combinations_worked_by_hand():
    # stage logits 0 (deepest) and ln 3: sigmoids 0.5 and 0.75
    z = torch.tensor([[[0.0, math.log(3.0)], [math.log(3.0), math.log(3.0)]]])
    np.testing.assert_allclose(combine_stage_logits(z, "mean_prob"), [[0.625, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(combine_stage_logits(z, "sum_logits"), [[0.75, 0.9]], rtol=1e-6)  # sigmoid(ln 9) = 0.9
    np.testing.assert_allclose(combine_stage_logits(z, "deepest"), [[0.5, 0.75]], rtol=1e-6)


def test_score_logits_matches_sklearn_for_every_stage_combination():
    rng = np.random.default_rng(0)
    labels = _labels(rng, 30, empty=(CLASSES.index("Pneumomediastinum"),))
    logits = rng.normal(size=(30, len(CLASSES), 3)) + 1.5 * (labels[..., None] - 0.5) * rng.random((1, 1, 3))
    tail = ["Pneumomediastinum", "Hernia", "Mass"]  # the first has no test positive: left out of the tail mAP
    with pytest.warns(UserWarning, match="Pneumomediastinum"):
        out = score_logits(logits, labels, tail)
    assert set(out) == set(MODES)
    for mode in MODES:
        expected = _scores(_combine(logits, mode), labels, tail)
        assert out[mode] == pytest.approx(expected), mode
        assert set(out[mode]) == {"map", "mean_auroc", "macro_f1", "tail_map"}
    maps = [out[m]["map"] for m in MODES]
    assert len(set(maps)) == 3  # the combinations differ here, so a mix-up would show
    with pytest.warns(UserWarning):
        single_stage = score_logits(logits[..., :1], labels, tail)
    assert single_stage["mean_prob"] == single_stage["sum_logits"] == single_stage["deepest"]  # one stage: one head


def test_probability_scores_matches_sklearn():
    rng = np.random.default_rng(1)
    labels = _labels(rng, 25)
    probs = np.clip(0.5 * rng.random(labels.shape) + 0.4 * labels, 0, 1)
    tail = ["Fracture", "Hernia"]
    out = probability_scores(probs, labels, tail)
    assert out == pytest.approx(_scores(probs, labels, tail))
    assert out["tail_map"] == pytest.approx(
        np.mean([average_precision_score(labels[:, c], probs[:, c]) for c in map(CLASSES.index, tail)])
    )


# ---- aggregation -------------------------------------------------------------------------------------------------


def _run(arm: str, seed: int, value: float, logits_file: str = "") -> dict:
    """A run result with mAP ``value`` (``mean_prob``), the other metrics and combinations offset from it."""
    test = {
        mode: {"map": value - shift, "tail_map": value - 0.1 - shift, "mean_auroc": 0.5 + value - shift,
               "macro_f1": value / 2 - shift}
        for mode, shift in zip(MODES, (0.0, 0.01, 0.02))
    }  # fmt: skip
    return {"arm": arm, "seed": seed, "learning_rate": 3e-3, "val_map": value, "best_epoch": seed + 1, "test": test,
            "logits_file": logits_file, "train_s": 10.0 + seed, "eval_s": 1.0}  # fmt: skip


def test_study_class_groups_split_the_classes():
    tail = ["Hernia", "Fibrosis", "Mass"]
    data = {"tail_classes": tail, "dadam_report": {"tail_classes_without_boxes": ["Hernia"]}}
    groups = study_class_groups(data)
    assert groups["tail_boxed"] == ["Fibrosis", "Mass"] and groups["tail_unboxed"] == ["Hernia"]
    assert len(groups["head"]) == len(CLASSES) - 3 and not set(groups["head"]) & set(tail)
    assert study_class_groups({"tail_classes": tail})["tail_unboxed"] == []  # no DADAM report: every tail is boxed


def test_class_group_scores_against_sklearn(tmp_path):
    rng = np.random.default_rng(5)
    labels = (rng.random((60, len(CLASSES))) < 0.3).astype(np.float32)
    labels[:3] = 1.0  # every class has a positive
    groups = {"head": CLASSES[:20], "tail_boxed": CLASSES[20:23], "tail_unboxed": CLASSES[23:]}
    runs, expected = [], {}
    for arm in ("single", "fpsm_432"):
        for seed in (0, 1, 2):
            logits = rng.normal(size=(60, len(CLASSES), 1 if arm == "single" else 2)) + labels[..., None]
            path = tmp_path / f"{arm}_{seed}.npz"
            np.savez(path, logits=logits, labels=labels)
            runs.append(_run(arm, seed, 0.3, str(path)))
            probs = expit(logits).mean(-1)  # mean_prob
            for group, names in groups.items():
                idx = [CLASSES.index(c) for c in names]
                expected[arm, group, seed] = np.mean([average_precision_score(labels[:, i], probs[:, i]) for i in idx])
    out = class_group_scores(runs, groups)
    for arm in ("single", "fpsm_432"):
        for group in groups:
            assert out[arm][group]["values"] == pytest.approx([expected[arm, group, s] for s in (0, 1, 2)])
    diff = out["fpsm_432"]["delta_tail_boxed"]
    assert diff["differences"] == pytest.approx([expected["fpsm_432", "tail_boxed", s]
                                                 - expected["single", "tail_boxed", s] for s in (0, 1, 2)])  # fmt: skip
    assert not [k for k in out["single"] if k.startswith("delta_")]
    table = cxr_lt_report.study_tables({**_study_result(), "class_groups": out})
    assert "Where the differences come from" in table
    assert (
        f"| FPSM {{4,3,2}} | 3 | {out['fpsm_432']['head']['mean']:.3f} +- {out['fpsm_432']['head']['std']:.3f} |"
        in table
    )


def test_aggregate_study_pairs_by_seed():
    runs = [_run("fpsm_43", 2, 0.52), _run("single", 0, 0.30), _run("fpsm_43", 0, 0.32), _run("single", 2, 0.50),
            _run("single", 1, 0.40), _run("fpsm_43", 1, 0.45), _run("fpsm_4321", 3, 0.9), _run("fpsm_4321", 1, 0.41),
            _run("fpsm_4321", 2, 0.57)]  # fmt: skip
    summary = aggregate_study(runs)
    assert list(summary) == ["fpsm_43", "single", "fpsm_4321"]
    single, fpsm = summary["single"], summary["fpsm_43"]
    assert single["map"]["values"] == pytest.approx([0.30, 0.40, 0.50]) and single["map"]["n"] == 3
    assert single["map"]["mean"] == pytest.approx(0.4) and single["map"]["std"] == pytest.approx(0.1)
    assert single["map"]["per_seed"] == {0: 0.30, 1: 0.40, 2: 0.50}
    assert not [k for k in single if k.startswith("delta_")]  # the baseline has no difference to itself
    # fpsm_43 - single per seed: 0.02, 0.05, 0.02: mean 0.03, std sqrt(0.0003) = 0.01732,
    # half width t_{0.975, 2} * 0.01732 / sqrt(3) = 4.3027 * 0.01 = 0.04303
    delta = fpsm["delta_map"]
    assert delta["seeds"] == [0, 1, 2] and delta["differences"] == pytest.approx([0.02, 0.05, 0.02])
    assert delta["mean"] == pytest.approx(0.03) and delta["std"] == pytest.approx(math.sqrt(0.0003))
    assert (delta["ci_low"], delta["ci_high"]) == pytest.approx((0.03 - 0.043027, 0.03 + 0.043027), abs=1e-5)
    assert not delta["excludes_zero"]
    assert fpsm["delta_macro_f1"]["differences"] == pytest.approx([0.01, 0.025, 0.01])
    assert fpsm["delta_tail_map"]["mean"] == pytest.approx(0.03)
    # fpsm_4321 has seeds 1, 2, 3: paired on 1 and 2 only (0.01, 0.07)
    assert summary["fpsm_4321"]["delta_map"]["seeds"] == [1, 2]
    assert summary["fpsm_4321"]["delta_map"]["differences"] == pytest.approx([0.01, 0.07])
    assert summary["fpsm_4321"]["map"]["mean"] == pytest.approx((0.9 + 0.41 + 0.57) / 3)
    # the other stage combinations' mAP, the best epochs and the training time
    assert fpsm["map_mean_prob"]["mean"] == pytest.approx(0.43)
    assert fpsm["map_sum_logits"]["mean"] == pytest.approx(0.42) and fpsm["map_deepest"]["mean"] == pytest.approx(0.41)
    assert fpsm["best_epoch"]["mean"] == pytest.approx(2.0) and fpsm["train_s"]["mean"] == pytest.approx(11.0)
    assert fpsm["train_s"]["values"] == pytest.approx([10.0, 11.0, 12.0])  # in seed order, as the metrics' values
    # another combination as the reported one
    deepest = aggregate_study(runs, combination="deepest")
    assert deepest["fpsm_43"]["map"]["mean"] == pytest.approx(0.41)
    assert deepest["fpsm_43"]["tail_map"]["mean"] == pytest.approx(0.31)
    # no baseline among the runs: no differences
    alone = aggregate_study([r for r in runs if r["arm"] != "single"])
    assert not [k for entry in alone.values() for k in entry if k.startswith("delta_")]


def test_ensemble_scores_average_the_seeds_probabilities(tmp_path):
    rng = np.random.default_rng(2)
    labels = _labels(rng, 40)
    tail = ["Hernia", "Fibrosis", "Pneumoperitoneum"]
    logits, runs = {}, []
    for seed, recorded in zip((2, 0, 1), (0.30, 0.10, 0.20)):  # out of seed order
        logits[seed] = rng.normal(size=(40, len(CLASSES), 2)) + labels[..., None] * rng.random()
        path = tmp_path / f"fpsm_43_seed{seed}.npz"
        np.savez_compressed(path, logits=logits[seed], labels=labels)
        runs.append(_run("fpsm_43", seed, recorded, str(path)))
    solo = rng.normal(size=(40, len(CLASSES), 1))
    np.savez_compressed(tmp_path / "single.npz", logits=solo, labels=labels)
    runs.append(_run("single", 0, 0.25, str(tmp_path / "single.npz")))
    out = ensemble_scores(runs, tail)
    probs = np.mean([expit(logits[s]).mean(axis=-1) for s in (0, 1, 2)], axis=0)
    ens = out["fpsm_43"]
    assert ens["members"] == 3 and ens["single_model_map"] == pytest.approx(0.20)
    assert {k: ens[k] for k in ("map", "mean_auroc", "macro_f1", "tail_map")} == pytest.approx(
        _scores(probs, labels, tail)
    )
    one_seed = _scores(expit(logits[0]).mean(axis=-1), labels, tail)["map"]
    assert not math.isclose(ens["map"], one_seed)  # the ensemble is not one member's score
    assert out["single"]["members"] == 1 and out["single"]["single_model_map"] == pytest.approx(0.25)
    assert out["single"]["map"] == pytest.approx(_scores(expit(solo[..., 0]), labels, tail)["map"])


# ---- report ------------------------------------------------------------------------------------------------------

SEED_MAPS = {"single": [0.30, 0.40, 0.50], "fpsm_432": [0.32, 0.45, 0.52], "fpsm_432_dadam": [0.35, 0.41, 0.56]}


def _study_result() -> dict:
    """A result as ``run_study`` returns it: 3 seeds of ``single``, ``fpsm_432`` and ``fpsm_432_dadam``."""
    plan = dataclasses.replace(PLANS["quick"], name="tiny", written_size=32, image_size=32, epochs=1, seeds=(0, 1, 2),
                               lr_grid=(1e-3, 3e-3))  # fmt: skip
    runs = [_run(arm, s, v) for arm in ("fpsm_432_dadam", "single", "fpsm_432") for s, v in enumerate(SEED_MAPS[arm])]
    data = {
        "folders": {"mimic_cxr_lt": "/d/m", "nih": "/d/n", "vindr": "/d/v", "dadam": "/d/dadam"},
        "sizes": {"train": 68, "val": 19, "test": 38},
        "n_dadam": 32,
        "train_counts": {"Emphysema": 1, "Hernia": 2},
        "tail_classes": ["Emphysema", "Hernia"],
        "dadam_report": {"n_cutmix": 16, "n_mixup": 16, "correlation_frobenius": 2.0318,
                         "counts_before": {"Emphysema": 1, "Hernia": 2}, "counts_after": {"Emphysema": 7, "Hernia": 5},
                         "tail_classes_without_boxes": ["Emphysema"]},  # fmt: skip
        "correlation_reference": {"off_diagonal_norm": 3.0332, "split_half_distance": 4.8406},
    }
    ensembles = {
        "single": {"members": 3, "map": 0.45, "mean_auroc": 0.8, "macro_f1": 0.1, "tail_map": 0.35,
                   "single_model_map": 0.40},
        "fpsm_432": {"members": 3, "map": 0.46, "mean_auroc": 0.8, "macro_f1": 0.1, "tail_map": 0.36,
                     "single_model_map": 0.43},
    }  # fmt: skip
    return {"plan": dataclasses.asdict(plan), "data": data,
            "tuning": [{"learning_rate": 1e-3, "val_map": 0.2, "best_epoch": 1},
                       {"learning_rate": 3e-3, "val_map": 0.3, "best_epoch": 1}],
            "learning_rate": 3e-3, "runs": runs, "wall_s": 5.0, "workers": 1, "summary": aggregate_study(runs),
            "ensembles": ensembles}  # fmt: skip


def test_study_tables_show_the_input_numbers():
    result = _study_result()
    table = cxr_lt_report.study_tables(result)
    assert "Powered study (plan `tiny`): 68 training images (+ 32 DADAM images for the `+ DADAM` arms)" in table
    assert "19 validation images (model selection), 38 clean test images" in table
    assert "backbone `regnetx_002` at 32 px, 1 epochs, batch 16" in table
    assert "learning rate 0.003 chosen for the single-stage head on the validation mAP from [0.001, 0.003]" in table
    assert "3 paired seeds. Tail classes (below the median training count): Emphysema, Hernia." in table
    lines = table.splitlines()
    header = "| arm | seeds | test mAP | test mAP: paired diff. to single stage {4} [95 % CI] | tail-class mean AP |"
    assert [line for line in lines if line.startswith(header)]
    maps = {arm: np.array(v) for arm, v in SEED_MAPS.items()}
    base = maps["single"]
    expected_rows = {}
    for arm, label in (("single", "single stage {4}"), ("fpsm_432", "FPSM {4,3,2}"),
                       ("fpsm_432_dadam", "FPSM {4,3,2} + DADAM")):  # fmt: skip
        v = maps[arm]
        cells = []
        for value, ref in ((v, base), (v - 0.1, base - 0.1), (0.5 + v, 0.5 + base), (v / 2, base / 2)):
            cells += [_mean_std(value), "" if arm == "single" else _paired(value, ref)]
        expected_rows[arm] = f"| {label} | 3 | " + " | ".join(cells) + " |"
    rows = [line for line in lines if line in expected_rows.values()]
    assert rows == [expected_rows[a] for a in ("single", "fpsm_432", "fpsm_432_dadam")]  # in the order of Arm
    # worked by hand: differences 0.02, 0.05, 0.02 -> +0.030 +- 4.3027 * 0.01
    assert "| FPSM {4,3,2} | 3 | 0.430 +- 0.101 | +0.030 [-0.013, +0.073] |" in table
    # the stage combinations' mAP: sum_logits 0.01 and deepest 0.02 below mean_prob in every run
    assert "| single stage {4} | 0.400 +- 0.100 | 0.390 +- 0.100 | 0.380 +- 0.100 |" in lines
    stage_row = " | ".join(_mean_std(maps["fpsm_432_dadam"] - s) for s in (0, 0.01, 0.02))
    assert f"| FPSM {{4,3,2}} + DADAM | {stage_row} |" in lines
    # the ensembles: only the arms that have one
    assert "| single stage {4} | 3 | 0.4500 | 0.4000 | 0.3500 |" in lines
    assert "| FPSM {4,3,2} | 3 | 0.4600 | 0.4300 | 0.3600 |" in lines
    assert len([line for line in lines if line.startswith("| FPSM {4,3,2} + DADAM |")]) == 2  # no ensemble row
    # the DADAM set's checks
    assert "DADAM set (16 CutMix + 16 Mixup images)" in table
    assert "training + DADAM labels 2.032" in table and "off-diagonal norm 3.033" in table
    assert "differ by 4.841" in table and "Emphysema 1 -> 7, Hernia 2 -> 5" in table
    assert "(Mixup backgrounds only): Emphysema." in table
    no_dadam = {**result, "data": {**result["data"], "dadam_report": None}, "ensembles": {}}
    plain = cxr_lt_report.study_tables(no_dadam)
    assert "DADAM set (" not in plain and "Ensemble (Sec. 4.3)" not in plain and expected_rows["fpsm_432"] in plain


def test_write_results_writes_json_png_and_markdown(tmp_path):
    results = {"study": _study_result(), "interpretation": "FPSM helps.", "environment": {"wall_s": 6.0}}
    paths = cxr_lt_report.write_results(results, tmp_path / "out")
    assert {k: p.name for k, p in paths.items()} == cxr_lt_report.RESULT_FILES
    assert all(p.parent == tmp_path / "out" and p.is_file() for p in paths.values())
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["png"].stat().st_size > 10_000
    table = cxr_lt_report.study_tables(results["study"])
    text = paths["table"].read_text()
    assert text.startswith("## Efficacy\n\n" + table) and text.endswith("FPSM helps.\n")
    back = json.loads(paths["json"].read_text())
    assert back["study"]["learning_rate"] == 3e-3 and back["environment"] == {"wall_s": 6.0}
    assert back["study"]["summary"]["fpsm_432"]["delta_map"]["mean"] == pytest.approx(0.03)
    assert back["study"]["summary"]["single"]["map"]["per_seed"] == {"0": 0.30, "1": 0.40, "2": 0.50}
    assert cxr_lt_report.study_tables(back["study"]) == table  # the JSON renders the same tables
    again = cxr_lt_report.write_results(back, tmp_path / "again")  # and the figure (per-seed keys as strings)
    assert again["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    only_text = cxr_lt_report.write_results({"interpretation": "nothing ran"}, tmp_path / "text")
    assert set(only_text) == {"json", "table"} and only_text["table"].read_text() == "nothing ran\n"


def test_main_passes_the_options_and_writes_the_results(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run_study(work_dir, plan, arms, workers=None):
        calls.append({"work_dir": Path(work_dir), "exists": Path(work_dir).is_dir(), "plan": plan, "arms": arms,
                      "workers": workers})  # fmt: skip
        return _study_result()

    monkeypatch.setattr(cxr_lt_study, "run_study", fake_run_study)
    note = tmp_path / "note.txt"
    note.write_text("FPSM\n  helps   a little.\n")
    out = tmp_path / "results"
    argv = ["--out", str(out), "--plan", "quick", "--arms", "single", "fpsm_432", "--seeds", "3", "4", "5",
            "--workers", "1", "--interpretation", str(note)]  # fmt: skip
    assert bench_cxr_lt.main(argv) == 0
    call = calls[-1]
    assert call["plan"] == dataclasses.replace(PLANS["quick"], seeds=(3, 4, 5)) and call["workers"] == 1
    assert call["arms"] == ["single", "fpsm_432"] and call["exists"] and not call["work_dir"].exists()  # temporary
    back = json.loads((out / "cxr_lt_bench.json").read_text())
    assert back["interpretation"] == "FPSM helps a little."
    assert back["environment"]["command"] == "scripts/bench_cxr_lt.py " + " ".join(argv)
    assert back["environment"]["wall_s"] >= 0 and back["study"]["learning_rate"] == 3e-3
    assert (out / "cxr_lt_bench.png").is_file()
    printed = capsys.readouterr().out
    table = (out / "README_table.md").read_text()
    assert printed.startswith(table) and "FPSM helps a little." in table and "wrote " in printed
    assert "| FPSM {4,3,2} | 3 | 0.430 +- 0.101 | +0.030 [-0.013, +0.073] |" in printed
    # defaults: every arm, the plan's workers, the given work folder kept
    work = tmp_path / "work"
    assert bench_cxr_lt.main(["--out", str(tmp_path / "r2"), "--work-dir", str(work)]) == 0
    assert calls[-1]["arms"] == [a.value for a in Arm] and calls[-1]["workers"] is None
    assert calls[-1]["plan"] == PLANS["default"] and calls[-1]["work_dir"] == work
    n_calls = len(calls)
    with pytest.raises(SystemExit, match="distinct"):  # a repeated seed would run twice into one run folder
        bench_cxr_lt.main(["--out", str(tmp_path / "r3"), "--seeds", "0", "0"])
    assert len(calls) == n_calls


# ---- one tiny study through the bundle ---------------------------------------------------------------------------

TINY = dataclasses.replace(PLANS["quick"], name="tiny", size=1.0, box_size=0.5, written_size=32, image_size=32,
                           epochs=1, test_min_positives=2, seeds=(0, 1), lr_grid=(1e-3, 3e-3))  # fmt: skip


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """``run_study`` of :data:`TINY` with ``single`` and ``fpsm_432_dadam`` in this process (about 20 s)."""
    work = tmp_path_factory.mktemp("cxr_lt_study")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_study(work, TINY, arms=["single", "fpsm_432_dadam"], workers=1)
    finally:
        torch.set_num_threads(threads)
    return work, result


def test_tiny_study_data(tiny_study):
    work, res = tiny_study
    data = res["data"]
    folders = data["folders"]
    assert folders == {name: str(work / "data" / name) for name in ("mimic_cxr_lt", "nih", "vindr", "dadam")}
    lists = {s: cxr_lt_datalist(folders["mimic_cxr_lt"], s) for s in ("train", "val", "test")}
    assert data["sizes"] == {s: len(items) for s, items in lists.items()} and data["sizes"]["test"] > 0
    labels = np.array([item["label"] for item in lists["train"]])
    assert data["train_counts"] == dict(zip(CLASSES, labels.sum(0).astype(int).tolist()))
    # tail: disease classes below the median count of the disease classes
    disease = {c: n for c, n in data["train_counts"].items() if c != "No Finding"}
    median = np.median(list(disease.values()))
    assert data["tail_classes"] == [c for c in CLASSES if c in disease and disease[c] < median]
    assert data["tail_classes"]  # the tiny data still has a tail
    report = data["dadam_report"]
    assert {"n_cutmix", "n_mixup", "counts_before", "counts_after", "correlation_frobenius",
            "tail_classes_without_boxes", "tail_classes", "n_train_images"} <= set(report)  # fmt: skip
    n_aug = round(TINY.dadam_fraction * data["sizes"]["train"])
    assert report["n_cutmix"] == report["n_mixup"] == n_aug and data["n_dadam"] == 2 * n_aug
    assert report["n_train_images"] == data["sizes"]["train"] and report["counts_before"] == data["train_counts"]
    assert report["tail_classes"] == data["tail_classes"]  # the DADAM set targets the study's tail classes
    augmented = cxr_lt_datalist(folders["mimic_cxr_lt"], "train", augmented_dir=folders["dadam"])
    assert len(augmented) - len(lists["train"]) == data["n_dadam"]
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(labels, rowvar=False))
    np.fill_diagonal(corr, 0.0)
    assert data["correlation_reference"]["off_diagonal_norm"] == pytest.approx(np.sqrt((corr**2).sum()))


def test_tiny_study_runs_scores_and_aggregates(tiny_study, tmp_path):
    work, res = tiny_study
    tuning = res["tuning"]
    assert [t["learning_rate"] for t in tuning] == [1e-3, 3e-3] and all(t["best_epoch"] == 1 for t in tuning)
    best = max(tuning, key=lambda t: (t["val_map"], -tuning.index(t)))  # ties: the earlier learning rate
    lr = best["learning_rate"]
    assert res["learning_rate"] == lr and res["plan"] == dataclasses.asdict(TINY) and res["workers"] == 1
    runs = {(r["arm"], r["seed"]): r for r in res["runs"]}
    assert sorted(runs) == [("fpsm_432_dadam", 0), ("fpsm_432_dadam", 1), ("single", 0), ("single", 1)]
    assert all(r["learning_rate"] == lr for r in res["runs"])
    assert runs[("single", 0)]["val_map"] == best["val_map"]  # the tuning run is the baseline's seed-0 run
    for lr_tried in (1e-3, 3e-3):
        assert (work / f"single_lr{lr_tried:g}_seed0" / "models" / "model.pt").is_file()
    test_labels = np.array([item["label"] for item in cxr_lt_datalist(res["data"]["folders"]["mimic_cxr_lt"], "test")])
    tail = res["data"]["tail_classes"]
    for (arm, seed), run in runs.items():
        assert Path(run["logits_file"]).parent == work / f"{arm}_lr{lr:g}_seed{seed}"
        saved = np.load(run["logits_file"])
        assert saved["logits"].shape == (
            len(test_labels),
            len(CLASSES),
            len(EXPECTED_STAGES[arm.removesuffix("_dadam")]),
        )
        np.testing.assert_array_equal(saved["labels"], test_labels)  # scored on the test split, in file order
        for mode in MODES:
            probs = _combine(saved["logits"].astype(np.float64), mode)
            assert run["test"][mode]["map"] == pytest.approx(_scores(probs, test_labels, tail)["map"], abs=1e-5)
        assert run["best_epoch"] == 1 and 0 <= run["val_map"] <= 1
    # aggregation and ensembles of the real runs
    delta = res["summary"]["fpsm_432_dadam"]["delta_map"]
    diffs = [runs[("fpsm_432_dadam", s)]["test"]["mean_prob"]["map"] - runs[("single", s)]["test"]["mean_prob"]["map"]
             for s in (0, 1)]  # fmt: skip
    assert delta["seeds"] == [0, 1] and delta["differences"] == pytest.approx(diffs)
    for arm in ("single", "fpsm_432_dadam"):
        logits = [np.load(runs[(arm, s)]["logits_file"])["logits"].astype(np.float64) for s in (0, 1)]
        probs = np.mean([expit(z).mean(axis=-1) for z in logits], axis=0)
        ens = res["ensembles"][arm]
        assert ens["members"] == 2 and ens["map"] == pytest.approx(_scores(probs, test_labels, tail)["map"], abs=1e-5)
        assert ens["tail_map"] == pytest.approx(_scores(probs, test_labels, tail)["tail_map"], abs=1e-5)
    paths = cxr_lt_report.write_results({"study": res}, tmp_path)
    table = paths["table"].read_text()
    assert f"learning rate {lr:g} chosen" in table and f"{res['data']['sizes']['test']} clean test images" in table
    assert paths["png"].is_file() and json.loads(paths["json"].read_text())["study"]["learning_rate"] == lr
    with pytest.raises(ValueError, match="needs the 'single' arm"):
        run_study(tmp_path / "no_baseline", TINY, arms=["fpsm_432"])
    assert not (tmp_path / "no_baseline").exists()  # refused before writing any data
