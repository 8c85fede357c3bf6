# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import pytest

from monai_ext.data.datalist import DatasetLayoutError
from scripts.bench.nvum import read_mean_auc, recompute_audits, run_dir


def test_read_mean_auc(tmp_path):
    csv = tmp_path / "openi_per_class.csv"
    csv.write_text("class,n_known,n_positive,auroc,ap,f1\nA,10,2,0.9,0.5,0.1\nmean,,,0.8,0.4,0.1\n"
                   "mean (diseases),,,0.75,0.3,0.0\n")  # fmt: skip
    assert read_mean_auc(csv) == 0.75
    assert read_mean_auc(csv, row="mean") == 0.8
    with pytest.raises(DatasetLayoutError, match="no 'missing' row"):
        read_mean_auc(csv, row="missing")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_mean_auc(tmp_path / "nope.csv")


def test_run_dir(tmp_path):
    assert run_dir(tmp_path, "official", 2) == tmp_path / "official_seed2"
    with pytest.raises(ValueError, match="focal"):
        run_dir(tmp_path, "focal", 0)


def _efficacy():
    settings = {"train_size": 3.0, "test_size": 6.0, "image_size": 64, "lesion_contrast": 0.6, "epochs": 8,
                "batch_size": 16, "seeds": [0], "data_seed": 0, "network_def": {"_target_": "DenseNet"}}  # fmt: skip
    old = {"k": 1, "precision_at_k": 0.0, "n_flips": 1, "n_pairs": 8, "base_rate": 0.125}
    runs = [{"method": m, "seed": 0, "clean_test_auc": auc, "openi_auc": auc, "padchest_auc": auc, "train_s": 9.0,
             "eval_s": 1.0, "audit": None if m == "bce" else old} for m, auc in
            (("bce", 0.7), ("paper", 0.6), ("official", 0.7))]  # fmt: skip
    return {"settings": settings, "data": {"nih": {"n_images": 4, "n_flips": 1}}, "runs": runs, "summary": {}}


def test_recompute_audits_replaces_only_the_audits(bench_dirs):
    efficacy = _efficacy()
    out = recompute_audits(efficacy, bench_dirs["work"], bench_dirs["bundle"])
    # worked case of conftest.py: prior P@1 is 1 in paper mode, 0 with the official prior; unbiased 1 in both
    audits = {run["method"]: run["audit"] for run in out["runs"]}
    assert audits["bce"] is None
    assert audits["paper"]["prior"] == {"k": 1, "precision_at_k": 1.0, "n_flips": 1, "n_pairs": 8, "base_rate": 0.125,
                                        "labels_only_precision_at_k": 0.0}  # fmt: skip
    assert audits["official"]["prior"]["precision_at_k"] == 0.0
    assert audits["official"]["unbiased"]["precision_at_k"] == 1.0
    assert [(r["method"], r["clean_test_auc"], r["train_s"]) for r in out["runs"]] == [
        ("bce", 0.7, 9.0), ("paper", 0.6, 9.0), ("official", 0.7, 9.0)]  # fmt: skip
    assert out["summary"]["paper"]["delta_clean_test_auc"]["mean"] == pytest.approx(-0.1)
    assert out["summary"]["official"]["audit"]["prior"]["precision_at_k"]["mean"] == 0.0
    assert out["audit_recomputed"] == {"work_dir": str(bench_dirs["work"]), "checkpoint": "models/last.pt"}
    assert efficacy["runs"][1]["audit"]["precision_at_k"] == 0.0  # the input is left as it was
    assert out["settings"] == efficacy["settings"]


def test_recompute_audits_needs_the_runs(bench_dirs, tmp_path):
    with pytest.raises(FileNotFoundError, match="NIH demo data"):
        recompute_audits(_efficacy(), tmp_path / "elsewhere", bench_dirs["bundle"])
    (bench_dirs["work"] / "official_seed0" / "models" / "last.pt").unlink()
    with pytest.raises(FileNotFoundError, match="official_seed0/models/last.pt"):
        recompute_audits(_efficacy(), bench_dirs["work"], bench_dirs["bundle"])
