# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``scripts/bench_mombs.py`` end to end on a tiny study (1 seed, 2 strategies, 1 fraction, 2 epochs) with the
epoch-time part, then the table rebuilt from the JSON files."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_mombs.py"


def _script():
    spec = importlib.util.spec_from_file_location("bench_mombs_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_bench_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--out", str(out), "--work-dir", str(tmp_path / "work"), "--num-threads", "1", "--data-size", "0.1",
            "--timing-image-size", "32", "--timing-batch-size", "8", "--repeats", "1", "--num-disturbances", "2",
            "--plan", "quick", "--seeds", "0", "--strategies", "random", "mombs", "--fractions", "1.0",
            "--epochs", "2", "--pivot-epoch", "2", "--n-slices", "40", "--image-size", "32",
            "--workers", "1"]  # fmt: skip
    assert _script().main(argv) == 0
    table = (out / "README_table.md").read_text()
    assert table in capsys.readouterr().out
    timing = json.loads((out / "timing.json").read_text())
    assert timing["ratio"] == pytest.approx(timing["median_s"]["mombs"] / timing["median_s"]["random"])
    result = json.loads((out / "study.json").read_text())
    assert [(r["strategy"], r["seed"], r["fraction"]) for r in result["runs"]] == [("random", 0, 1.0),
                                                                                   ("mombs", 0, 1.0)]  # fmt: skip
    for run in result["runs"]:
        assert 0.0 <= run["dice"] <= 1.0 and run["epochs"] == 2 and run["num_cases"] >= 1
    random, mombs = result["runs"]
    assert random["audit"] is None
    categories = mombs["audit"]["categories"]
    assert categories["n_slices"] == mombs["n_train"]
    assert Path(mombs["audit"]["difficulty_csv"]).name == "difficulty_epoch0002.csv"
    assert 0.0 <= categories["precision"]["base_rate_corrupted"] <= 1.0
    assert mombs["audit"]["fit"]["n_clean_typical"] + mombs["audit"]["fit"]["n_corrupted"] >= 1
    delta = result["summary"]["fractions"]["1"]["mombs"]["delta_dice"]
    assert math.isclose(delta["mean"], mombs["dice"] - random["dice"], abs_tol=1e-12)
    assert (out / "study.png").read_bytes()[:4] == b"\x89PNG"
    assert "**Epoch time**" in table and "**Efficacy study**" in table and "Training fraction 100 %" in table
    assert "**Difficulty-map audit**" in table and "| MoMBS | 1 |" in table

    # the timing part alone: the study is read back from study.json and its table is unchanged
    (out / "README_table.md").unlink()
    assert _script().main(["--out", str(out), "--parts", "timing", "--data-size", "0.1", "--timing-image-size",
                           "32", "--repeats", "1", "--num-disturbances", "2"]) == 0  # fmt: skip
    rebuilt = (out / "README_table.md").read_text()
    study_part = table.split("**Efficacy study**")[1].split("Environment:")[0]
    assert rebuilt.split("**Efficacy study**")[1].split("Environment:")[0] == study_part
    assert json.loads((out / "study.json").read_text())["runs"] == result["runs"]  # not rewritten

    # a new arm added to that study: the baseline is re-run (deterministic), mombs is kept, the clean arm joins
    add = ["--out", str(out), "--work-dir", str(tmp_path / "work_add"), "--num-threads", "1", "--parts", "study",
           "--add-to-study", "--plan", "quick", "--seeds", "0", "--strategies", "random", "random_clean",
           "--fractions", "1.0", "--epochs", "2", "--pivot-epoch", "2", "--n-slices", "40", "--image-size", "32",
           "--workers", "1", "--deviation-assess-every", "0"]  # fmt: skip
    assert _script().main(add) == 0
    merged = json.loads((out / "study.json").read_text())
    assert [r["strategy"] for r in merged["runs"]] == ["random", "mombs", "random_clean"]
    assert merged["runs"][1] == result["runs"][1]  # mombs kept as it was
    assert merged["max_rerun_difference"] == pytest.approx(0.0, abs=1e-9)  # random re-ran to the same Dice
    assert not (out / "study_added.json").exists()
    assert "random on CLEAN training masks" in (out / "README_table.md").read_text()
