# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS benchmark tables, plot and files on hand-made numbers (the study's aggregation is
``tests/bench/test_mombs_study.py``)."""

from __future__ import annotations

import json
import math

from scripts.bench.mombs_report import RESULT_FILES, plot_study, results_table, write_results
from scripts.bench.mombs_study import aggregate_study


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


def _study():
    runs = []
    for fraction in (0.25, 1.0):
        for seed, (base, mombs) in enumerate(((0.50, 0.55), (0.60, 0.60), (0.40, 0.50))):
            audit = None
            if fraction == 1.0:
                audit = {"categories": {"precision": {"precision_poorly_labelled": 0.5, "base_rate_corrupted": 0.4,
                                                      "precision_under_represented": 0.3,
                                                      "base_rate_under_represented": 0.2}},
                         "fit": {"clean_typical": 0.8, "corrupted": 0.6, "under_represented": 0.3}}  # fmt: skip
            for strategy, dice in (("random", base), ("mombs", mombs)):
                runs.append({"strategy": strategy, "fraction": fraction, "seed": seed, "dice": dice * fraction,
                             "n_train": int(360 * fraction), "best_val_epoch": 5, "train_s": 9.0, "epochs": 10,
                             "audit": audit if strategy == "mombs" else None})  # fmt: skip
    plan = {"name": "default", "n_slices": 600, "write_size": 64, "image_size": 64, "fractions": [0.25, 1.0],
            "split_seed": 0, "batch_size": 4, "epochs": 10, "pivot_epoch": 4, "num_disturbances": 8,
            "seeds": [0, 1, 2]}  # fmt: skip
    data = {"writer": {"lesions": 1099, "corruptions": {"none": 690, "wrong_class": 86},
                       "appearances": {"typical": 899, "tiny": 106}}}  # fmt: skip
    return {"plan": plan, "data": data, "runs": runs, "summary": aggregate_study(runs)}


def test_results_table_rows():
    table = results_table(_timing(), _study(), {"platform": "x", "wall_s": {"study": 120.0}})
    assert "Ratio MoMBS / random: **1.550**" in table
    assert "Training fraction 25 % (90 slices):" in table and "Training fraction 100 % (360 slices):" in table
    # fraction 100 %: differences 0.05, 0.00, 0.10 -> +0.050 [-0.074, +0.174]
    assert "| MoMBS | 3 | 0.550 +- 0.050 | +0.050 [-0.074, +0.174] |" in table
    assert "| random (baseline) | 3 | 0.500 +- 0.100 |  |" in table
    assert "| `poorly_labelled` slices with a corrupted mask" in table and "| 0.50 +- 0.00 | 0.40 +- 0.00 |" in table
    assert "clean typical slices 0.80 +- 0.00" in table and "wall time study 2.0 min" in table
    assert "86 wrong_class" in table and "106 tiny" in table


def test_results_table_parts_are_optional():
    assert "**Efficacy study**" not in results_table(timing=_timing())
    assert "**Epoch time**" not in results_table(study_result=_study())
    no_audit = _study()
    no_audit["summary"]["audit"] = None
    assert "**Difficulty-map audit**" not in results_table(study_result=no_audit)


def test_plot_and_files(tmp_path):
    png = plot_study(_study(), tmp_path / "study.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    paths = write_results(tmp_path / "out", timing=_timing(), study_result=_study(), environment={"cpu_count": 2})
    assert {p.name for p in paths.values()} == set(RESULT_FILES.values())
    saved = json.loads(paths["study"].read_text())
    assert saved["environment"] == {"cpu_count": 2}
    random = saved["summary"]["fractions"]["1"]["random"]
    assert random["dice"]["mean"] == 0.5 and "delta_dice" not in random
    assert saved["runs"][0]["dice"] == 0.125 and not math.isnan(
        saved["summary"]["audit"]["base_rate_corrupted"]["mean"]
    )
    only_timing = write_results(tmp_path / "t", timing=_timing())
    assert set(only_timing) == {"timing", "table"}


def test_deviation_summary_is_a_ratio_of_means_over_the_timed_epochs():
    from scripts.bench.mombs_report import deviation_summary

    timing = {"settings": {"assess_every": 3}, "epoch_s": {"mombs": [3.0, 1.0, 2.0], "random": [1.0, 1.5, 0.5]}}
    out = deviation_summary(timing)
    # means 2.0 and 1.0 by hand; the ratio of medians would be 2.0 / 1.0 too, so also check a skewed case below
    assert out["mean_s"] == {"mombs": 2.0, "random": 1.0} and out["ratio_of_means"] == 2.0
    assert out["assess_every"] == 3 and out["repeats"] == 3
    skewed = {"settings": {"assess_every": 3}, "epoch_s": {"mombs": [4.0, 1.0, 1.0], "random": [1.0, 1.0, 1.0]}}
    assert deviation_summary(skewed)["ratio_of_means"] == 2.0  # the median ratio would be 1.0
