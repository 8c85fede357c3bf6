# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``scripts/bench_nvum.py --parts audit``: recompute the audits of earlier runs, keep every measured number."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_nvum.py"


def _script():
    spec = importlib.util.spec_from_file_location("bench_nvum_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _earlier_results() -> dict:
    step = {"batch_shape": [16, 3, 128, 128], "num_classes": 14, "num_samples": 83672, "warmup": 1, "repeats": 8,
            "device": "cpu", "times_s": {"bce": [4.1], "paper": [4.3]}, "median_s": {"bce": 4.137, "paper": 4.261},
            "ratio_to_bce": {"bce": 1.0, "paper": 1.03}, "target_ratio": 1.03}  # fmt: skip
    settings = {"train_size": 3.0, "test_size": 6.0, "image_size": 64, "lesion_contrast": 0.6, "epochs": 8,
                "batch_size": 16, "seeds": [0], "data_seed": 0, "network_def": "bundle default"}  # fmt: skip
    runs = [{"method": "bce", "seed": 0, "clean_test_auc": 0.8, "openi_auc": 0.9, "padchest_auc": 0.7, "audit": None},
            {"method": "paper", "seed": 0, "clean_test_auc": 0.5, "openi_auc": 0.55, "padchest_auc": 0.45,
             "audit": {"k": 1, "precision_at_k": 0.0, "n_flips": 1, "n_pairs": 8, "base_rate": 0.125}}]  # fmt: skip
    efficacy = {"settings": settings, "data": {"nih": {"n_images": 4, "n_flips": 1}}, "runs": runs, "summary": {}}
    return {"step_time": step, "efficacy": efficacy, "environment": {"torch_threads": 1, "wall_s": 1083.9}}


def test_parts_audit_rewrites_the_results_from_saved_memories(bench_dirs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "nvum_bench.json").write_text(json.dumps(_earlier_results()))
    (tmp_path / "notes.txt").write_text("Paper mode\nunderperforms here.\n")
    argv = ["--out", str(out), "--parts", "audit", "--work-dir", str(bench_dirs["work"]), "--bundle-dir",
            str(bench_dirs["bundle"]), "--interpretation", str(tmp_path / "notes.txt")]  # fmt: skip
    assert _script().main(argv) == 0
    table = (out / "README_table.md").read_text()
    assert table in capsys.readouterr().out
    assert "| NVUM paper mode | 4.261 | 1.030 |" in table  # step time kept
    # paper run of the conftest worked case: prior 1.0, unbiased 1.0, base rate 1 / 8
    assert "| NVUM paper | 0.500 | 0.500 | -0.300 | 0.550 | 0.450 | 1.000 | 1.000 | 0.125 |" in table
    assert "were recomputed after training" in table
    assert "**Interpretation.** Paper mode underperforms here." in table
    assert "total wall time 18.1 min" in table
    data = json.loads((out / "nvum_bench.json").read_text())
    assert data["environment"]["wall_s"] == 1083.9
    assert "--parts audit" in data["environment"]["audit_command"]
    assert (out / "nvum_bench.png").is_file()


@pytest.mark.parametrize("extra", [[], ["--work-dir", "w", "--parts", "efficacy", "audit"]])
def test_parts_audit_needs_a_work_dir_and_no_training(tmp_path, extra, capsys):
    argv = ["--out", str(tmp_path), "--parts", "audit", *extra]
    with pytest.raises(SystemExit):
        _script().main(argv)
    assert "--parts audit recomputes the audits of earlier runs" in capsys.readouterr().err


def test_parts_audit_needs_the_earlier_results(bench_dirs, tmp_path):
    argv = ["--out", str(tmp_path / "empty"), "--parts", "audit", "--work-dir", str(bench_dirs["work"])]
    with pytest.raises(FileNotFoundError, match=r"empty/nvum_bench.json"):
        _script().main(argv)
