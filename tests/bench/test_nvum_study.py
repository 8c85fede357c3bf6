# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The powered NVUM study: its data, run overrides, aggregation, report, and one tiny end-to-end study."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from monai_ext.data.cxr import nvum_datalist
from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.demo import get_writer
from scripts.bench import nvum_report
from scripts.bench.nvum_bundle import BUNDLE_DIR
from scripts.bench.nvum_study import (
    PLANS,
    Arm,
    StudyPlan,
    aggregate_study,
    clean_label_copy,
    head_tail_classes,
    run_overrides,
    run_study,
)


def test_full_plan_meets_the_powered_standard():
    # DESIGN.md: >= 5 paired seeds; the issue: >= 5,000 training images, >= 2,000 per test set with >= 30 positives
    full = PLANS["full"]
    assert len(full.seeds) >= 5 and len(set(full.seeds)) == len(full.seeds)
    assert full.min_test_positives >= 30 and len(full.lr_grid) == len(full.reg_grid) == 3
    train = json.loads((BUNDLE_DIR / "configs" / "train.json").read_text())
    assert full.adam_eps == train["adam_eps"]  # the shipped optimiser, not the small-run overlay's


def test_clean_label_copy_has_the_clean_labels_and_the_same_images(tmp_path):
    nih = tmp_path / "nih"
    get_writer("nih")(nih, size=2.0, seed=3, image_size=16)
    out = clean_label_copy(nih, tmp_path / "nih_clean")
    noisy = pd.read_csv(nih / "Data_Entry_2017_v2020.csv").set_index("Image Index")
    clean = pd.read_csv(out / "Data_Entry_2017_v2020.csv").set_index("Image Index")
    truth = pd.read_csv(nih / "demo_clean_labels.csv").set_index("image")
    flips = pd.read_csv(nih / "demo_label_noise.csv")
    assert len(flips) > 0 and list(clean.index) == list(noisy.index)
    for image, row in clean.iterrows():
        expected = sorted(c for c in truth.columns if c not in ("split", "No Finding") and truth.loc[image, c] == 1)
        assert sorted(row["Finding Labels"].split("|")) == (expected or ["No Finding"])

    def findings(table, image):
        return set(table.loc[image, "Finding Labels"].split("|"))

    changed = {img for img in clean.index if findings(clean, img) != findings(noisy, img)}
    assert changed == set(flips["image"])  # every recorded flip changes its image's set of findings
    assert (out / "images").resolve() == (nih / "images").resolve()
    # the bundle's reader sees the same images and patients, with the clean labels
    train = nvum_datalist(out, "nih", split="train", val_fraction=0.1)
    assert {item["image"].split("/")[-1] for item in train} <= set(clean.index)
    with pytest.raises(DatasetLayoutError, match="has no row for 1 image"):
        truth.drop(index=truth.index[0]).reset_index().to_csv(nih / "demo_clean_labels.csv", index=False)
        clean_label_copy(nih, tmp_path / "again")


def test_head_tail_split_at_the_median():
    classes = ["A", "B", "C", "No Finding"]
    split = head_tail_classes({"A": 50, "B": 10, "C": 30, "No Finding": 90}, classes)
    assert split == {"head": ["A", "C"], "tail": ["B"]}
    split = head_tail_classes({"A": 5, "B": 5, "C": 1, "D": 9}, ["A", "B", "C", "D"])
    assert split == {"head": ["A", "D"], "tail": ["B", "C"]}  # tie: the earlier class goes first


def test_run_overrides_per_arm(tmp_path):
    plan = PLANS["quick"]
    data = {"folders": {"nih": "/d/nih", "nih_clean": "/d/nih_clean"}, "class_names": ["A", "B", "No Finding"]}
    bce = run_overrides("bce", 3, {"learning_rate": 0.05}, data, tmp_path / "r", plan)
    assert bce["dataset_dir"] == "/d/nih" and bce["seed"] == 3 and bce["learning_rate"] == 0.05
    assert bce["adam_eps"] == 0.1  # train.json's, whatever the small-run overlay sets
    assert bce["loss_def"] == {"_target_": "torch.nn.BCEWithLogitsLoss", "reduction": "none"}
    assert bce["network_def"] == dict(plan.network_def) and bce["network_def"] is not plan.network_def
    assert bce["ckpt_dir"] == str(tmp_path / "r" / "models") and bce["epochs"] == plan.epochs
    assert run_overrides("bce_clean", 0, {"learning_rate": 0.1}, data, tmp_path, plan)["dataset_dir"] == "/d/nih_clean"
    official = run_overrides("nvum_official", 0, {"learning_rate": 0.1, "reg_weight": 3.0}, data, tmp_path, plan)
    assert official["nvum_mode"] == "official" and official["nvum_reg_weight"] == 3.0 and "loss_def" not in official
    ablation = run_overrides("nvum_paper_no_prior", 0, {"learning_rate": 0.1, "reg_weight": 1.0}, data, tmp_path, plan)
    assert ablation["nvum_mode"] == "paper" and ablation["loss_def#prior"] == [1.0, 1.0, 1.0]


def _run(arm, seed, val, openi, padchest):
    """A run result whose class B scores 0.2 below class A on both test sets."""
    per_class = {
        "openi": {"A": openi, "B": openi - 0.2, "mean (diseases)": openi},
        "padchest": {"A": padchest, "B": padchest - 0.2, "mean (diseases)": padchest},
    }
    return {
        "arm": arm,
        "seed": seed,
        "params": {"learning_rate": 0.05},
        "val_auc": val,
        "openi_auc": openi,
        "padchest_auc": padchest,
        "clean_test_auc": (openi + padchest) / 2,
        "per_class": per_class,
    }


def test_aggregate_study_pairs_by_seed():
    runs = [_run("bce", 1, 0.7, 0.80, 0.70), _run("bce", 0, 0.6, 0.60, 0.50), _run("nvum_paper", 0, 0.65, 0.62, 0.55),
            _run("nvum_paper", 1, 0.71, 0.83, 0.74)]  # fmt: skip
    summary = aggregate_study(runs, {"head": ["A"], "tail": ["B"]})
    assert [a for a in summary if a != "groups"] == ["bce", "nvum_paper"]
    paper = summary["nvum_paper"]
    assert paper["seeds"] == [0, 1] and paper["clean_test_auc"]["values"] == pytest.approx([0.585, 0.785])
    # per-seed differences: seed 0 (0.585 - 0.55), seed 1 (0.785 - 0.75)
    assert paper["delta_clean_test_auc"]["differences"] == pytest.approx([0.035, 0.035])
    assert paper["delta_openi_auc"]["differences"] == pytest.approx([0.02, 0.03])
    assert "delta_val_auc" not in paper and "delta_clean_test_auc" in summary["bce"]
    # tail = class B: mean over both test sets of (auc - 0.2)
    assert paper["tail_auc"]["values"] == pytest.approx([0.385, 0.585])
    assert paper["head_openi_auc"]["values"] == pytest.approx([0.62, 0.83])
    assert paper["per_class"]["padchest"]["A"] == pytest.approx((0.55 + 0.74) / 2)


def _study_result():
    runs = [_run("bce", 0, 0.6, 0.60, 0.50), _run("bce", 1, 0.7, 0.80, 0.70), _run("nvum_paper", 0, 0.65, 0.62, 0.55),
            _run("nvum_paper", 1, 0.71, 0.83, 0.74)]  # fmt: skip
    for r in runs:
        r["monitor"] = None
    trace = {"iteration": [1, 21], "bce_grad_norm": [0.1, 0.05], "reg_grad_norm": [0.2, 0.3]}
    runs[2]["monitor"] = runs[3]["monitor"] = {
        "grad_ratio_first_epoch": 2.0,
        "grad_ratio_last_epoch": 3.0,
        "memory_min": -1.0,
        "memory_max": 5.0,
        "sigmoid_dot_last_epoch": 0.99,
        "trace": trace,
    }
    runs[2]["audit"] = {"prior": {"precision_at_k": 0.3, "base_rate": 0.05, "labels_only_precision_at_k": 0.25}}
    plan = PLANS["quick"]
    data = {
        "sizes": {"train": 579, "val": 66, "openi": 235, "padchest": 190},
        "n_flips": 332,
        "class_names": ["A", "B"],
        "test_positives": {"openi": {"A": 4, "B": 7}, "padchest": {"A": 9, "B": 2}},
    }
    bce_trials = [
        {"params": {"learning_rate": 0.05}, "val_auc": 0.6},
        {"params": {"learning_rate": 0.1}, "val_auc": 0.5},
    ]
    tuning = {"bce": bce_trials, "nvum_paper": [{"params": {"learning_rate": 0.05}, "val_auc": 0.65}]}
    return {
        "plan": {**plan.__dict__, "network_def": dict(plan.network_def)},
        "data": data,
        "tuning": tuning,
        "selected": {"bce": {"learning_rate": 0.05}, "nvum_paper": {"learning_rate": 0.05}},
        "runs": runs,
        "wall_s": 120.0,
        "workers": 2,
        "summary": aggregate_study(runs, {"head": ["A"], "tail": ["B"]}),
    }


def test_report_tables_and_files(tmp_path):
    results = {"study": _study_result(), "interpretation": "Paper mode\n wins.", "environment": {"wall_s": 60.0}}
    table = nvum_report.results_table(results)
    assert "579 images with noisy labels (332 labels flipped" in table
    assert "(at least 4 / 2 positives of every class)" in table
    assert "| BCE (noisy labels, baseline) | **learning_rate=0.05: 0.6000**; learning_rate=0.1: 0.5000 |" in table
    assert "| BCE (noisy labels, baseline) | 2 | 0.650 +- 0.141 |  |" in table
    assert "| NVUM paper mode | 2 | 0.685 +- 0.141 | +0.035 [+0.035, +0.035] |" in table
    assert "| NVUM paper mode | 0.5850 (0.6500) | 0.7850 (0.7100) |" in table
    assert "| NVUM paper mode | 2.000 +- 0.000 | 3.000 +- 0.000 | -1.000 +- 0.000 | 5.000 +- 0.000 |" in table
    assert "| 0.990 +- 0.000 | 0.300 | 0.050 | 0.250 |" in table  # audit of one seed only
    assert "**Interpretation.** Paper mode wins." in table
    paths = nvum_report.write_results(results, tmp_path)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = json.loads(paths["json"].read_text())
    assert nvum_report.results_table(back) == table  # the JSON renders the same tables


def test_tiny_study_end_to_end(tmp_path):
    # the whole protocol on tiny data: tuning on the tuning seed, the chosen setting for the other seed, pairing
    sizes = dict(nih_size=1.5, test_size=1.0, min_test_positives=2, image_size=32, lesion_contrast=0.6)
    plan = StudyPlan("tiny", **sizes, epochs=1, batch_size=16, seeds=(0, 1), lr_grid=(0.05, 0.1), reg_grid=(1.0,))
    torch.set_num_threads(1)
    res = run_study(tmp_path, plan, arms=["bce", "nvum_paper"], workers=1)
    assert [t["params"]["learning_rate"] for t in res["tuning"]["bce"]] == [0.05, 0.1]
    chosen = max(res["tuning"]["bce"], key=lambda t: (t["val_auc"], -t["params"]["learning_rate"]))
    assert res["selected"]["bce"] == chosen["params"]
    assert res["selected"]["nvum_paper"] == {"learning_rate": chosen["params"]["learning_rate"], "reg_weight": 1.0}
    expected = [("bce", 0), ("bce", 1), ("nvum_paper", 0), ("nvum_paper", 1)]
    assert sorted((r["arm"], r["seed"]) for r in res["runs"]) == expected
    paper = [r for r in res["runs"] if r["arm"] == "nvum_paper"]
    assert all(r["monitor"] is not None and r["audit"] is not None for r in paper)
    assert all(r["monitor"] is None for r in res["runs"] if r["arm"] == "bce")
    assert np.isfinite(res["summary"]["nvum_paper"]["delta_clean_test_auc"]["mean"])
    assert (tmp_path / "nvum_paper_learning_rate0.05_reg_weight1_seed1").is_dir() or (
        tmp_path / "nvum_paper_learning_rate0.1_reg_weight1_seed1"
    ).is_dir()
    assert res["data"]["sizes"]["train"] > 0 and set(res["data"]["test_positives"]) == {"openi", "padchest"}
    with pytest.raises(ValueError, match="needs the 'bce' arm"):
        run_study(tmp_path / "x", plan, arms=[Arm.PAPER])
