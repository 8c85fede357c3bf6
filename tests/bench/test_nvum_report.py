# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json
import math

import pytest

from scripts.bench.nvum_report import aggregate_runs, results_table, summarise, write_results


@pytest.mark.parametrize(
    "values, mean, std, n",
    [
        ([0.6, 0.7, 0.8], 0.7, 0.1, 3),
        ([0.5], 0.5, float("nan"), 1),
        ([0.2, float("nan"), 0.4], 0.3, 0.141421, 2),
        ([None, 0.4, 0.6], 0.5, 0.141421, 2),
    ],
)
def test_summarise(values, mean, std, n):
    s = summarise(values)
    assert s["mean"] == pytest.approx(mean)
    assert s["n"] == n
    assert (math.isnan(s["std"]) and math.isnan(std)) or s["std"] == pytest.approx(std, abs=1e-6)
    assert len(s["values"]) == len(values)


def _audit(prior, unbiased, base=0.05, labels_only=0.2):
    return {score: {"k": 3, "precision_at_k": p, "base_rate": base, "labels_only_precision_at_k": labels_only}
            for score, p in (("prior", prior), ("unbiased", unbiased))}  # fmt: skip


def _run(method, seed, auc, audit=None):
    return {"method": method, "seed": seed, "clean_test_auc": auc, "openi_auc": auc - 0.1, "padchest_auc": auc + 0.1,
            "audit": audit}  # fmt: skip


def test_aggregate_runs_pairs_deltas_by_seed_and_summarises_each_score():
    old = _audit(0.4, 0.1)
    del old["prior"]["labels_only_precision_at_k"]  # an audit written before the labels-only reference
    runs = [_run("bce", 1, 0.7), _run("paper", 0, 0.65, _audit(0.2, 0.0, labels_only=0.25)), _run("bce", 0, 0.6),
            _run("paper", 1, 0.8, old)]  # fmt: skip
    summary = aggregate_runs(runs)
    assert list(summary) == ["bce", "paper"]
    assert summary["paper"]["seeds"] == [0, 1]
    assert summary["paper"]["clean_test_auc"]["values"] == pytest.approx([0.65, 0.8])
    assert summary["paper"]["delta_clean_test_auc"]["mean"] == pytest.approx(0.075)  # (0.05 + 0.1) / 2
    assert summary["paper"]["delta_clean_test_auc"]["std"] == pytest.approx(0.0353553, abs=1e-6)
    assert list(summary["paper"]["audit"]) == ["prior", "unbiased"]
    assert summary["paper"]["audit"]["prior"]["precision_at_k"]["mean"] == pytest.approx(0.3)
    assert summary["paper"]["audit"]["unbiased"]["precision_at_k"]["values"] == [0.0, 0.1]
    assert summary["paper"]["audit"]["prior"]["base_rate"]["std"] == 0.0
    labels_only = summary["paper"]["audit"]["prior"]["labels_only_precision_at_k"]
    assert (labels_only["mean"], labels_only["n"], labels_only["values"][0]) == (0.25, 1, 0.25)
    assert math.isnan(labels_only["values"][1])
    assert "delta_clean_test_auc" not in summary["bce"]
    assert summary["bce"]["audit"] == {}
    assert summary["bce"]["openi_auc"]["mean"] == pytest.approx(0.55)


def _results(**efficacy_extra):
    step = {"batch_shape": [2, 3, 8, 8], "num_classes": 14, "num_samples": 100, "warmup": 1, "repeats": 4,
            "device": "cpu", "median_s": {"bce": 0.2, "paper": 0.21}, "ratio_to_bce": {"bce": 1.0, "paper": 1.05},
            "target_ratio": 1.03, "times_s": {"bce": [0.2], "paper": [0.21]}}  # fmt: skip
    runs = [_run("bce", 0, 0.6), _run("bce", 1, 0.7), _run("paper", 0, 0.65, _audit(0.5, 0.0, 0.1, 0.25)),
            _run("paper", 1, float("nan"), _audit(0.3, 0.02, 0.1, 0.35))]  # fmt: skip
    settings = {"train_size": 3.0, "test_size": 6.0, "image_size": 64, "lesion_contrast": 0.2, "epochs": 8,
                "batch_size": 16, "seeds": [0, 1], "data_seed": 0, "network_def": "bundle default"}  # fmt: skip
    efficacy = {"settings": settings, "data": {"nih": {"n_images": 450, "n_flips": 300}}, "runs": runs,
                "summary": aggregate_runs(runs), **efficacy_extra}  # fmt: skip
    return {"step_time": step, "efficacy": efficacy, "environment": {"torch_threads": 1, "wall_s": 120.0}}


def test_results_table_rows():
    table = results_table(_results())
    assert "| NVUM paper mode | 0.210 | 1.050 |" in table
    header = ("| method | clean-test AUC (mean of OpenI, PadChest) | per seed | Δ vs BCE (paired) | OpenI AUC | "
              "PadChest AUC | label-audit P@k, `prior` | label-audit P@k, `unbiased` | random P@k | "
              "labels-only P@k |")  # fmt: skip
    assert header in table
    bce_row = "| BCE baseline | 0.650 ± 0.071 | 0.600, 0.700 | n/a | 0.550 ± 0.071 | 0.750 ± 0.071 |"
    assert f"{bce_row} n/a | n/a | n/a | n/a |" in table
    # seed 1 of paper has no AUC: mean and delta over seed 0 only; the audit over both seeds, base rate once
    row = "| NVUM paper | 0.650 | 0.650, nan | 0.050 | 0.550 | 0.750 | 0.400 ± 0.141 | 0.010 ± 0.014 | 0.100 |"
    assert f"{row} 0.300 ± 0.071 |\n" in table  # labels only: (0.25 + 0.35) / 2, std 0.1 / sqrt(2)
    assert "labels-only P@k = precision of the same pairs at the same k" in table
    assert "k = 3 = the number of recorded flips" in table
    assert "were recomputed" not in table and "Interpretation" not in table
    assert "total wall time 2.0 min" in table
    assert "Efficacy" not in results_table({"step_time": _results()["step_time"]})


def test_results_table_recomputed_audit_and_interpretation():
    results = _results(audit_recomputed={"work_dir": "/w", "checkpoint": "models/last.pt"})
    results["interpretation"] = "Paper mode\n  loses  here."
    table = results_table(results)
    assert "label-audit columns were recomputed after training from the saved memories (`models/last.pt`)" in table
    assert "**Interpretation.** Paper mode loses here.\n" in table


def test_results_table_without_audits_has_no_audit_columns():
    results = _results()
    for run in results["efficacy"]["runs"]:
        run["audit"] = None
    results["efficacy"]["summary"] = aggregate_runs(results["efficacy"]["runs"])
    table = results_table(results)
    assert "random P@k" not in table and "Label audit" not in table
    assert "| BCE baseline | 0.650 ± 0.071 | 0.600, 0.700 | n/a | 0.550 ± 0.071 | 0.750 ± 0.071 |\n" in table


def test_write_results_files(tmp_path):
    paths = write_results(_results(), tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == ["README_table.md", "nvum_bench.json", "nvum_bench.png"]
    data = json.loads(paths["json"].read_text())
    assert data["efficacy"]["summary"]["paper"]["clean_test_auc"]["values"] == [0.65, None]  # nan -> null
    assert data["efficacy"]["summary"]["bce"]["audit"] == {}
    assert data["step_time"]["ratio_to_bce"] == {"bce": 1.0, "paper": 1.05}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["table"].read_text() == results_table(_results())
    write_results(json.loads(paths["json"].read_text()), tmp_path / "again")  # JSON read back (null for nan) draws
    assert (tmp_path / "again" / "README_table.md").read_text() == paths["table"].read_text()
