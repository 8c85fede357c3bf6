# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``scripts/bench_mombs.py`` end to end on a tiny demo (both parts), then the table rebuilt from the JSON files."""

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
            "--seeds", "0", "--strategies", "mombs", "random", "--image-size", "32", "--epochs", "1",
            "--pivot-epoch", "1", "--batch-size", "8"]  # fmt: skip
    assert _script().main(argv) == 0
    table = (out / "README_table.md").read_text()
    assert table in capsys.readouterr().out
    timing = json.loads((out / "timing.json").read_text())
    assert len(timing["epoch_s"]["mombs"]) == 1 and len(timing["epoch_s"]["random"]) == 1
    assert timing["ratio"] == pytest.approx(timing["median_s"]["mombs"] / timing["median_s"]["random"])
    assert timing["ratio_paired"] == pytest.approx(timing["ratio"])  # one round: the same two epochs
    assert timing["breakdown"]["mombs"]["assessor_s"] > 0.0 and timing["breakdown"]["random"]["assessor_s"] == 0.0
    efficacy = json.loads((out / "efficacy.json").read_text())
    assert [(r["strategy"], r["seed"]) for r in efficacy["runs"]] == [("mombs", 0), ("random", 0)]
    for run in efficacy["runs"]:
        assert 0.0 <= run["dice_best"] <= 1.0 and 0.0 <= run["dice_last"] <= 1.0
    mombs, random = efficacy["runs"]
    assert random["categories"] is None
    assert mombs["categories"]["n_slices"] == mombs["n_train"]
    assert Path(mombs["difficulty_csv"]).name == "difficulty_epoch0001.csv"
    assert math.isclose(efficacy["summary"]["mombs"]["delta_dice_best"]["mean"],
                        mombs["dice_best"] - random["dice_best"], abs_tol=1e-12)  # fmt: skip
    assert (out / "efficacy.png").read_bytes()[:4] == b"\x89PNG"
    assert "**Epoch time**" in table and "**Efficacy on demo data**" in table and "| poorly_labelled |" in table

    # both parts skipped: nothing is measured, the table is rebuilt from the two JSON files
    (out / "README_table.md").unlink()
    assert _script().main(["--out", str(out), "--skip-timing", "--skip-efficacy"]) == 0
    rebuilt = (out / "README_table.md").read_text()
    assert rebuilt.split("Environment:")[0] == table.split("Environment:")[0]
    assert json.loads((out / "timing.json").read_text())["epoch_s"] == timing["epoch_s"]
