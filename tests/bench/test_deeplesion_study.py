# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The DeepLesion study's pieces: the bundle overrides of a run, reading the FROC report, the paired aggregation."""

from __future__ import annotations

import json

import pytest

from scripts.bench import deeplesion_report, deeplesion_study
from scripts.bench.deeplesion_study import PLANS, aggregate_study, read_froc, run_overrides, study_jobs


def _run(arm, seed, fraction, avg):
    return {"arm": arm, "seed": seed, "fraction": fraction, "avg": avg, "sens@0.5": avg / 2, "sens@1": avg,
            "sens@2": avg, "sens@4": avg + 0.1, "best_val": 0.5, "train_s": 10.0, "n_train": 12}  # fmt: skip


def test_paired_differences_by_hand():
    runs = [_run("random", s, 0.25, v) for s, v in zip(range(3), (0.40, 0.50, 0.45))]
    runs += [_run("mombs", s, 0.25, v) for s, v in zip(range(3), (0.42, 0.53, 0.49))]
    agg = aggregate_study(runs)["0.25"]
    # differences 0.02, 0.03, 0.04: mean 0.03, std 0.01, CI 0.03 +- 4.303 * 0.01 / sqrt(3) = [0.00516, 0.05484]
    delta = agg["mombs"]["delta_avg"]
    assert delta["mean"] == pytest.approx(0.03)
    assert delta["ci_low"] == pytest.approx(0.03 - 4.302653 * 0.01 / 3**0.5, abs=1e-6)
    assert delta["excludes_zero"]
    assert agg["random"]["avg"]["mean"] == pytest.approx(0.45)
    assert "delta_avg" not in agg["random"]
    table = deeplesion_report.results_table({"plan": {"name": "t", "epochs": 2, "pivot_epoch": 1, "seeds": [0, 1, 2]},
                                             "runs": runs, "aggregate": {"0.25": agg}})  # fmt: skip
    assert "+0.030 [+0.005, +0.055]" in table


def test_run_overrides_select_the_arm_fraction_and_small_network(tmp_path):
    plan = PLANS["default"]
    out = run_overrides("scl_hard", 3, 0.25, {"dataset_dir": "/data/dl"}, tmp_path / "run", plan)
    assert out["sampling_strategy"] == "scl_hard" and out["seed"] == 3 and out["train_fraction"] == 0.25
    assert out["split_seed"] == plan.split_seed and out["network_def"] == "%small_network_def"
    assert out["ckpt_dir"] == str(tmp_path / "run" / "models") and out["train#dataset#_target_"] == "CacheDataset"
    jobs = study_jobs(plan, {"dataset_dir": "/d"}, tmp_path)
    assert len(jobs) == sum(len(plan.arms_for(f)) for f in plan.fractions) * len(plan.seeds)
    assert {j["arm"] for j in jobs if j["fraction"] == 0.5} == {"random", "mombs"}
    assert jobs[0]["fraction"] == min(plan.fractions)  # the smaller fraction's seeds complete first


def test_read_froc_takes_the_official_convention(tmp_path):
    report = {"official": {"sens@0.5": 0.1, "sens@1": 0.2, "sens@2": 0.3, "sens@4": 0.4, "avg[0.5,1,2]": 0.2},
              "strict": {"sens@0.5": 0.0, "sens@1": 0.0, "sens@2": 0.0, "sens@4": 0.0, "avg[0.5,1,2]": 0.0},
              "num_images": 5, "num_lesions": 7}  # fmt: skip
    (tmp_path / "test_froc.json").write_text(json.dumps(report))
    got = read_froc(tmp_path)
    assert got == {"avg": 0.2, "sens@0.5": 0.1, "sens@1": 0.2, "sens@2": 0.3, "sens@4": 0.4, "num_images": 5,
                   "num_lesions": 7}  # fmt: skip
    with pytest.raises(FileNotFoundError):
        read_froc(tmp_path / "missing")


def test_plans_hold_the_issues_grid():
    default = deeplesion_study.PLANS["default"]
    assert set(default.fractions) == {0.25, 0.5}
    assert set(default.arms) == {"random", "scl_hard", "ohem", "mombs_loss", "mombs_uncertainty", "mombs"}
    coarse = run_overrides("mombs_coarse_uncertainty", 0, 0.25, {"dataset_dir": "/d"}, "/tmp/r", default)
    assert coarse["sampling_strategy"] == "mombs" and coarse["uncertainty_levels"] == [1, 2, 3]
    assert len(default.seeds) >= 5


def test_merge_runs_pairs_an_arm_added_later():
    data = {"settings": {"size": 8.0, "seed": 1}}
    first = {"plan": {"name": "default"}, "data": data, "wall_s": 10.0,
             "runs": [_run("random", s, 0.25, 0.4 + 0.01 * s) for s in range(3)]}  # fmt: skip
    later = {"plan": {"name": "default"}, "data": data, "wall_s": 5.0,
             "runs": [_run("mombs_coarse_uncertainty", s, 0.25, 0.42 + 0.01 * s) for s in range(3)]}  # fmt: skip
    merged = deeplesion_study.merge_runs(first, later)
    assert len(merged["runs"]) == 6 and merged["wall_s"] == 15.0
    assert merged["aggregate"]["0.25"]["mombs_coarse_uncertainty"]["delta_avg"]["mean"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="different data"):
        deeplesion_study.merge_runs(first, {**later, "data": {"settings": {"size": 4.0, "seed": 1}}})


def test_collect_runs_reads_finished_runs_back(tmp_path):
    report = {"official": {"sens@0.5": 0.1, "sens@1": 0.2, "sens@2": 0.3, "sens@4": 0.4, "avg[0.5,1,2]": 0.2},
              "num_images": 5, "num_lesions": 7}  # fmt: skip
    for name in ("mombs_loss_f25_seed3", "random_f50_seed0"):
        (tmp_path / name / "test").mkdir(parents=True)
        (tmp_path / name / "test" / "test_froc.json").write_text(json.dumps(report))
    (tmp_path / "mombs_f25_seed1" / "models").mkdir(parents=True)  # unfinished: no test report
    runs = deeplesion_study.collect_runs(tmp_path)
    assert [(r["arm"], r["fraction"], r["seed"]) for r in runs] == [("mombs_loss", 0.25, 3), ("random", 0.5, 0)]
    assert runs[0]["avg"] == 0.2


def test_clean_arm_trains_on_the_clean_annotation(tmp_path):
    data = {"dataset_dir": "/d/deeplesion", "clean_dir": "/d/deeplesion_clean"}
    out = run_overrides("random_clean", 0, 0.25, data, tmp_path, PLANS["default"])
    assert out["dataset_dir"] == "/d/deeplesion_clean" and out["sampling_strategy"] == "random"
    assert "labels" not in out
    assert run_overrides("random", 0, 0.25, data, tmp_path, PLANS["default"])["dataset_dir"] == "/d/deeplesion"
