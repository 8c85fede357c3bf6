# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The MoMBS efficacy study: its data at the study size, the jobs and the aggregation worked by hand."""

from __future__ import annotations

import math

import pytest

from monai_ext.data.covid_ct import covid_ct_datalist
from scripts.bench import mombs_study
from scripts.bench.mombs_study import PLANS, STRATEGIES, aggregate_study, study_jobs, wrong_class_visible


def test_default_plan_data_has_100_clean_test_cases_and_all_noise_kinds(tmp_path):
    plan = PLANS["default"]
    data = mombs_study.write_study_data(tmp_path, plan)
    writer = data["writer"]
    assert writer["volumes"] == 0 and writer["train_slices"] == plan.n_slices
    assert all(writer["corruptions"][k] > 0 for k in ("missing", "erode", "dilate", "wrong_class"))
    assert writer["appearances"]["tiny"] > 0 and writer["appearances"]["low_contrast"] > 0
    common = dict(layout="medseg", label_map={"ggo": 1, "consolidation": 2}, seed=plan.split_seed,
                  slice_dir=tmp_path / "slices")  # fmt: skip
    test = covid_ct_datalist(data["dataset_dir"], split="test", mask_dir=data["clean_dir"], **common)
    assert sum(bool(item["has_lesion"]) for item in test) >= 100  # scored test cases: a lesion in the clean mask
    train = covid_ct_datalist(data["dataset_dir"], split="train", **common)
    quarter = covid_ct_datalist(data["dataset_dir"], split="train", train_fraction=0.25, **common)
    assert {i["case_id"] for i in quarter} < {i["case_id"] for i in train}
    assert len(quarter) == math.ceil(0.25 * len(train))


def test_plans_share_the_strategy_names_and_the_default_fits_the_budget():
    from monai_ext.samplers import SamplingStrategy

    values = {s.value for s in SamplingStrategy}
    assert values <= set(STRATEGIES)  # every sampler strategy is an arm
    for arm in set(STRATEGIES) - values:  # the rest are strategies with further overrides
        assert mombs_study.ARM_OVERRIDES[arm]["sampling_strategy"] in values
    default = PLANS["default"]
    assert (
        default.strategies == mombs_study.PLANNED_ARMS
        and set(STRATEGIES) - set(default.strategies) == set(mombs_study.DIAGNOSTIC_ARMS)
        and default.fractions == (0.25, 0.5, 1.0)
        and len(default.seeds) >= 5
    )
    assert len(default.seeds) * len(default.fractions) * len(default.strategies) == 150
    assert default.batch_size == 4 and default.audit_epochs > default.epochs  # the audit model is trained longer


def test_jobs_pair_seeds_and_mark_the_audit_runs(tmp_path):
    plan = mombs_study.with_plan_overrides(PLANS["quick"], fractions=(0.5, 1.0), seeds=(0, 1))
    jobs = study_jobs(plan, {"dataset_dir": "x"}, tmp_path)
    assert len(jobs) == 2 * 2 * len(plan.strategies)
    assert [(j["fraction"], j["seed"]) for j in jobs[:2]] == [(1.0, 0), (1.0, 0)]  # longest runs first
    assert {(j["strategy"], j["fraction"]) for j in jobs if j["audit"]} == {("mombs", 1.0)}
    assert len({j["run_dir"] for j in jobs}) == len(jobs)
    extra = study_jobs(mombs_study.with_plan_overrides(plan, audit_epochs=7), {"dataset_dir": "x"}, tmp_path)
    audit = [j for j in extra if j["audit"]]
    assert [(j["seed"], j["epochs"], j["fraction"]) for j in audit] == [(0, 7, 1.0), (1, 7, 1.0)]
    assert all("audit_mombs" in j["run_dir"] for j in audit)


def test_wrong_class_is_visible_only_with_two_classes():
    assert wrong_class_visible({"ggo": 1, "consolidation": 2})
    assert not wrong_class_visible({"infection": [1, 2]})
    assert not wrong_class_visible({"ggo": 1})


def _run(strategy, fraction, seed, dice, audit=None):
    return {"strategy": strategy, "fraction": fraction, "seed": seed, "dice": dice, "best_val_epoch": 3,
            "train_s": 10.0, "audit": audit, "epochs": 4}  # fmt: skip


def _audit(p_poorly, base, p_under, base_under, fit):
    return {"categories": {"precision": {"precision_poorly_labelled": p_poorly, "base_rate_corrupted": base,
                                         "precision_under_represented": p_under,
                                         "base_rate_under_represented": base_under}},
            "fit": {"clean_typical": fit, "corrupted": fit - 0.1, "under_represented": fit - 0.3}}  # fmt: skip


def test_aggregate_study_worked_case():
    # fraction 1: random 0.50, 0.60, 0.40; mombs 0.55, 0.60, 0.50 -> differences 0.05, 0.00, 0.10: mean 0.05,
    # std 0.05, t_{0.975,2} = 4.3027 -> half width 4.3027 * 0.05 / sqrt(3) = 0.1242
    runs = [_run("random", 1.0, s, d) for s, d in enumerate((0.5, 0.6, 0.4))]
    runs += [
        _run("mombs", 1.0, s, d, _audit(0.3 + 0.1 * s, 0.5, 0.2, 0.1, 0.8)) for s, d in enumerate((0.55, 0.6, 0.5))
    ]
    runs += [_run("random", 0.25, 0, 0.2), _run("mombs", 0.25, 0, None)]  # a run without scored cases: left out
    out = aggregate_study(runs)
    assert list(out["fractions"]) == ["1", "0.25"]
    mombs = out["fractions"]["1"]["mombs"]
    assert mombs["dice"]["mean"] == pytest.approx(0.55) and mombs["seeds"] == [0, 1, 2]
    delta = mombs["delta_dice"]
    assert delta["differences"] == pytest.approx([0.05, 0.0, 0.1])
    assert delta["mean"] == pytest.approx(0.05) and delta["std"] == pytest.approx(0.05)
    assert delta["ci_low"] == pytest.approx(0.05 - 0.12421, abs=1e-4) and not delta["excludes_zero"]
    assert "delta_dice" not in out["fractions"]["1"]["random"]
    assert out["fractions"]["0.25"]["mombs"]["delta_dice"]["n"] == 0
    audit = out["audit"]
    assert audit["n_runs"] == 3 and audit["strategy"] == "mombs" and audit["fraction"] == 1.0
    assert audit["precision_poorly_labelled"]["mean"] == pytest.approx(0.4)
    assert audit["base_rate_corrupted"]["mean"] == pytest.approx(0.5)
    assert audit["fit_clean_typical"]["mean"] == pytest.approx(0.8)
    assert audit["fit_under_represented"]["mean"] == pytest.approx(0.5)
    assert aggregate_study(runs[:3])["audit"] is None


def test_an_arm_with_overrides_runs_its_strategy_with_them(tmp_path):
    plan = PLANS["default"]
    data = {"dataset_dir": str(tmp_path)}
    out = mombs_study.run_overrides("mombs_assess3", 0, 1.0, data, tmp_path / "run", plan)
    assert out["sampling_strategy"] == "mombs" and out["assess_every"] == 3
    plain = mombs_study.run_overrides("mombs", 0, 1.0, data, tmp_path / "run", plan)
    assert plain["sampling_strategy"] == "mombs" and "assess_every" not in plain


def test_the_clean_label_arm_trains_on_the_clean_masks_and_validates_on_the_noisy_ones(tmp_path):
    data = {"dataset_dir": str(tmp_path / "noisy"), "clean_dir": str(tmp_path / "CLEAN_MASKS")}
    out = mombs_study.run_overrides("random_clean", 0, 0.5, data, tmp_path / "run", PLANS["default"])
    assert out["sampling_strategy"] == "random" and "train_masks" not in out
    assert (
        f"mask_dir={str(tmp_path / 'CLEAN_MASKS')!r}" in out["train#datalist"]
        and "split='train'" in out["train#datalist"]
    )
    # model selection stays on the noisy validation masks: nothing else points at the clean ones
    assert [k for k, v in out.items() if "CLEAN_MASKS" in str(v)] == ["train#datalist"]
    assert "train#datalist" not in mombs_study.run_overrides("random", 0, 0.5, data, tmp_path / "r", PLANS["default"])


def _study_run(arm, fraction, seed, dice):
    return {"strategy": arm, "fraction": fraction, "seed": seed, "dice": dice, "best_val_epoch": 3, "train_s": 1.0}


def test_merge_studies_keeps_the_other_arms_and_reports_the_rerun_difference():
    plan = {"name": "default", "strategies": ["random", "mombs"], "seeds": [0, 1], "epochs": 3, "workers": 2}
    fresh_plan = {**plan, "seeds": (0, 1)}  # a fresh plan holds tuples, one read back from JSON lists
    earlier = {"plan": plan, "runs": [_study_run("random", 1.0, 0, 0.5), _study_run("random", 1.0, 1, 0.6),
                                      _study_run("mombs", 1.0, 0, 0.55), _study_run("mombs", 1.0, 1, 0.7)],
               "audit_runs": [], "wall_s": 10.0}  # fmt: skip
    new = {"plan": {**fresh_plan, "strategies": ("random", "random_clean"), "workers": 1},
           "runs": [_study_run("random", 1.0, 0, 0.5), _study_run("random", 1.0, 1, 0.61),
                    _study_run("random_clean", 1.0, 0, 0.8), _study_run("random_clean", 1.0, 1, 0.9)],
           "audit_runs": [], "wall_s": 5.0}  # fmt: skip
    merged = mombs_study.merge_studies(earlier, new)
    assert merged["plan"]["strategies"] == ["random", "mombs", "random_clean"]
    assert len(merged["runs"]) == 6 and merged["wall_s"] == 15.0
    assert abs(merged["max_rerun_difference"] - 0.01) < 1e-12
    arms = merged["summary"]["fractions"]["1"]
    # paired differences to the NEW random runs (0.5, 0.61): mombs 0.05, 0.09; clean 0.30, 0.29
    assert abs(arms["mombs"]["delta_dice"]["mean"] - 0.07) < 1e-12
    assert abs(arms["random_clean"]["delta_dice"]["mean"] - 0.295) < 1e-12
    with pytest.raises(ValueError, match="epochs"):
        mombs_study.merge_studies(earlier, {**new, "plan": {**new["plan"], "epochs": 4}})


def test_the_mutual_information_arm_changes_only_the_assessor_measure(tmp_path):
    data = {"dataset_dir": str(tmp_path)}
    arm = mombs_study.run_overrides("mombs_mutual_information", 1, 0.5, data, tmp_path / "a", PLANS["default"])
    plain = mombs_study.run_overrides("mombs", 1, 0.5, data, tmp_path / "a", PLANS["default"])
    assert {k: v for k, v in arm.items() if k != "mombs_assessor#measure"} == plain
    assert arm["mombs_assessor#measure"] == "mutual_information"
