# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``scripts/bench_nvum.py``: a part not run is kept from the earlier results; the step time is measured afresh."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_nvum.py"


def _script():
    spec = importlib.util.spec_from_file_location("bench_nvum_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _small_bundle(tmp_path: Path) -> Path:
    """A stand-in bundle whose ``network_def`` is a small DenseNet with the bundle's 14 outputs (the step-time code
    path without DenseNet121's minutes of CPU time)."""
    net = {"_target_": "DenseNet", "spatial_dims": 2, "in_channels": 3, "out_channels": 14, "init_features": 4,
           "growth_rate": 4, "block_config": [1, 1]}  # fmt: skip
    (tmp_path / "bundle" / "configs").mkdir(parents=True)
    (tmp_path / "bundle" / "configs" / "train.json").write_text(json.dumps({"network_def": net}))
    return tmp_path / "bundle"


def test_parts_step_keeps_the_earlier_study(tmp_path, capsys):
    from tests.bench.test_nvum_study import _study_result

    out = tmp_path / "out"
    out.mkdir()
    study = _study_result()
    (out / "nvum_bench.json").write_text(json.dumps({"study": study, "environment": {"command": "earlier"}}))
    (tmp_path / "notes.txt").write_text("Paper mode\n  collapses.\n")
    argv = ["--out", str(out), "--parts", "step", "--step-batch-size", "2", "--step-image-size", "32", "--warmup",
            "0", "--repeats", "1", "--interpretation", str(tmp_path / "notes.txt"), "--bundle-dir",
            str(_small_bundle(tmp_path))]  # fmt: skip
    assert _script().main(argv) == 0
    data = json.loads((out / "nvum_bench.json").read_text())
    assert data["study"]["selected"] == study["selected"]  # kept as it was
    assert data["environment"]["study_command"] == "earlier" and "--parts step" in data["environment"]["command"]
    assert set(data["step_time"]["ratio_to_bce"]) == {"bce", "paper", "official_loss", "official_teacher"}
    assert data["step_time"]["batch_shape"] == [2, 3, 32, 32]
    table = (out / "README_table.md").read_text()
    assert table in capsys.readouterr().out
    assert "**Step time**" in table and "**Powered efficacy study** (`quick` plan" in table
    assert "**Interpretation.** Paper mode collapses." in table


def test_without_earlier_results_only_the_parts_run(tmp_path):
    out = tmp_path / "fresh"
    argv = ["--out", str(out), "--parts", "step", "--step-batch-size", "2", "--step-image-size", "32", "--warmup",
            "0", "--repeats", "1", "--bundle-dir", str(_small_bundle(tmp_path))]  # fmt: skip
    assert _script().main(argv) == 0
    data = json.loads((out / "nvum_bench.json").read_text())
    assert "study" not in data and "step_time" in data
