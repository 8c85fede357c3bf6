# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS benchmark aggregation, tables, plot and files on hand-made numbers.

Worked case: ``random`` seeds 0, 1 with clean-test Dice (``model.pt``) 0.5, 0.7 and ``mombs`` 0.6, 0.6: random mean
0.6, sample std sqrt(((-0.1)^2 + 0.1^2) / 1) = 0.1414; mombs mean 0.6, std 0.0; paired deltas 0.1, -0.1 -> mean 0.0,
std 0.1414. ``last.pt``: random 0.4, 0.6 and mombs 0.5, None (no scored case) -> mombs mean 0.5, one value, std nan;
delta 0.1 from seed 0 only.
"""

from __future__ import annotations

import json
import math

import pytest

from scripts.bench.mombs_report import aggregate_runs, plot_efficacy, results_table, write_results

COUNTS = {
    "under_represented": {"slices": 4, "corrupted": 1, "clean": 3, "missing": 1, "erode": 0, "dilate": 0},
    "poorly_labelled": {"slices": 4, "corrupted": 3, "clean": 1, "missing": 2, "erode": 1, "dilate": 1},
    "overfitted": {"slices": 2, "corrupted": 0, "clean": 2, "missing": 0, "erode": 0, "dilate": 0},
    "well_represented": {"slices": 6, "corrupted": 0, "clean": 6, "missing": 0, "erode": 0, "dilate": 0},
}


def _categories():
    from scripts.bench.mombs_audit import pool_category_tables

    return pool_category_tables([{"counts": COUNTS}])


def _runs():
    cat = _categories()
    return [
        {"strategy": "mombs", "seed": 0, "dice_best": 0.6, "dice_last": 0.5, "best_val_epoch": 10, "train_s": 50.0,
         "categories": cat},
        {"strategy": "random", "seed": 0, "dice_best": 0.5, "dice_last": 0.4, "best_val_epoch": 12, "train_s": 20.0,
         "categories": None},
        {"strategy": "random", "seed": 1, "dice_best": 0.7, "dice_last": 0.6, "best_val_epoch": 11, "train_s": 22.0,
         "categories": None},
        {"strategy": "mombs", "seed": 1, "dice_best": 0.6, "dice_last": None, "best_val_epoch": 9, "train_s": 52.0,
         "categories": cat},
    ]  # fmt: skip


def _timing():
    return {
        "settings": {"image_size": 128, "batch_size": 8, "num_disturbances": 8, "warmup": 1, "repeats": 3,
                     "seed": 0, "pivot_epoch": 1, "dataset": "Dataset (the bundle's)", "num_workers": 0,
                     "network": "the bundle's SplitUNet", "n_train": 147, "iterations_per_epoch": 18},
        "epoch_s": {"mombs": [30.0, 32.0, 31.0], "random": [20.0, 21.0, 19.0]},
        "median_s": {"mombs": 31.0, "random": 20.0},
        "ratio": 1.55,
        "ratio_paired": 1.5,
        "target_ratio": 1.35,
        "breakdown": {"mombs": {"data_s": 4.0, "iterations_s": 26.0, "assessor_s": 10.0, "outside_s": 1.0},
                      "random": {"data_s": 4.0, "iterations_s": 15.9, "assessor_s": 0.0, "outside_s": 0.1}},
        "assessor_share": 10.0 / 31.0,
        "ratio_without_assessor": 1.05,
    }  # fmt: skip


def _efficacy():
    settings = {"strategies": ["mombs", "random"], "seeds": [0, 1], "image_size": 64, "epochs": 12, "pivot_epoch": 4,
                "batch_size": 8, "num_disturbances": 8, "split_seed": "training seed", "data_size": 1.0,
                "data_seed": 0, "network_def": "bundle default"}  # fmt: skip
    runs = _runs()
    return {"settings": settings, "data": {"n_lesions": 10, "corruptions": {"none": 6, "missing": 4}}, "runs": runs,
            "summary": aggregate_runs(runs)}  # fmt: skip


def test_aggregate_runs_worked_case():
    summary = aggregate_runs(_runs())
    assert list(summary) == ["mombs", "random"]
    random, mombs = summary["random"], summary["mombs"]
    assert random["seeds"] == [0, 1] and mombs["seeds"] == [0, 1]
    assert random["dice_best"]["mean"] == pytest.approx(0.6)
    assert random["dice_best"]["std"] == pytest.approx(math.sqrt(0.02))
    assert mombs["dice_best"]["mean"] == pytest.approx(0.6) and mombs["dice_best"]["std"] == pytest.approx(0.0)
    assert mombs["delta_dice_best"]["values"] == pytest.approx([0.1, -0.1])
    assert mombs["delta_dice_best"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert mombs["delta_dice_best"]["std"] == pytest.approx(0.141421356)
    assert mombs["dice_last"]["mean"] == pytest.approx(0.5) and mombs["dice_last"]["n"] == 1
    assert math.isnan(mombs["dice_last"]["std"])
    assert mombs["delta_dice_last"]["mean"] == pytest.approx(0.1) and mombs["delta_dice_last"]["n"] == 1
    assert "delta_dice_best" not in random and random["categories"] is None
    assert mombs["best_val_epoch"]["mean"] == pytest.approx(9.5)
    # two seeds of the same table: counts doubled, shares unchanged (high loss: 4 of 4 corrupted, 4 of 12 clean)
    assert mombs["categories"]["counts"]["poorly_labelled"]["corrupted"] == 6
    assert mombs["categories"]["p_high_loss_given_corrupted"] == pytest.approx(1.0)
    assert mombs["category_shares"]["p_high_loss_given_clean"]["mean"] == pytest.approx(4 / 12)


def test_results_table_rows():
    table = results_table(_timing(), _efficacy(), {"torch_threads": 1, "wall_s": {"total": 600.0}})
    assert "| MoMBS (assessor K = 8) | 31.00 | 4.00 | 26.00 | 10.00 | 1.00 | 1.550 |" in table
    assert "| random sampling | 20.00 | 4.00 | 15.90 | 0.00 | 0.10 | 1.000 |" in table
    assert "Ratio MoMBS / random: **1.550** (ratio of the medians; median of the per-round ratios 1.500; target <= " \
        "1.35)" in table
    assert "take 32 % of a MoMBS epoch; without them the ratio would be 1.050" in table
    assert "| MoMBS | 0.600 ± 0.000 | 0.600, 0.600 | 0.000 ± 0.141 | 0.500 | 0.100 | 9.5 ± 0.7 |" in table
    assert "| random | 0.600 ± 0.141 | 0.500, 0.700 | n/a | 0.500 ± 0.141 | n/a | 11.5 ± 0.7 |" in table
    # pooled over the 2 seeds: poorly_labelled 8 slices, 6 corrupted; corrupted 8 of 32 slices (25 %)
    assert "| poorly_labelled | 8 | 6 | 2 | 4 | 2 | 2 | 75 % | 75 % | 8 % |" in table
    assert "32 training slices, 8 with a corrupted lesion (25 %)" in table
    assert "wall time total 10.0 min" in table


def test_results_table_parts_are_optional():
    assert "Efficacy" not in results_table(timing=_timing())
    only = results_table(efficacy=_efficacy())
    assert "Epoch time" not in only and "Environment" not in only and "**Efficacy on demo data**" in only


def test_plot_and_files(tmp_path):
    png = plot_efficacy(_efficacy(), tmp_path / "plot" / "efficacy.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    paths = write_results(tmp_path / "out", timing=_timing(), efficacy=_efficacy(), environment={"cpu_count": 2})
    assert sorted(p.name for p in paths.values()) == ["README_table.md", "efficacy.json", "efficacy.png",
                                                       "timing.json"]  # fmt: skip
    data = json.loads(paths["efficacy"].read_text())
    assert data["summary"]["mombs"]["dice_last"]["std"] is None  # nan written as null
    assert data["environment"] == {"cpu_count": 2}
    assert json.loads(paths["timing"].read_text())["ratio"] == 1.55
    only_timing = write_results(tmp_path / "t", timing=_timing())
    assert sorted(only_timing) == ["table", "timing"]
