# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from monai_ext.bench import nvum
from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.handlers.ema import EMATeacher
from monai_ext.losses import NVUMLoss


def test_time_interleaved_rotates_order_and_times_each_call():
    calls: list[str] = []
    ticks = iter(range(100))  # the clock advances by one per reading -> every timed call lasts 1 tick
    steps = {name: (lambda n=name: calls.append(n)) for name in "abc"}
    times = nvum.time_interleaved(steps, warmup=1, repeats=3, clock=lambda: float(next(ticks)))
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert times == {"a": [1.0, 1.0, 1.0], "b": [1.0, 1.0, 1.0], "c": [1.0, 1.0, 1.0]}


def test_time_interleaved_calls_sync_around_each_timed_call():
    events: list[str] = []
    nvum.time_interleaved({"a": lambda: events.append("step")}, warmup=1, repeats=2, sync=lambda: events.append("s"))
    assert events == ["step", "s", "step", "s", "s", "step", "s"]


@pytest.mark.parametrize(
    "steps, kwargs, match",
    [
        ({}, {}, "at least one step"),
        ({"a": int}, {"repeats": 0}, "repeats >= 1"),
        ({"a": int}, {"warmup": -1}, "warmup must be >= 0"),
    ],
)
def test_time_interleaved_rejects_bad_settings(steps, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nvum.time_interleaved(steps, **kwargs)


def _toy_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))


def test_make_train_step_bce_updates_weights_and_returns_loss():
    torch.manual_seed(0)
    net = _toy_net()
    torch.nn.init.zeros_(net[1].weight), torch.nn.init.zeros_(net[1].bias)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    images, labels = torch.ones(2, 3, 4, 4), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    step = nvum.make_train_step(net, opt, torch.nn.BCEWithLogitsLoss(reduction="none"), images, labels)
    assert step() == pytest.approx(math.log(2.0))  # zero logits: BCE = log 2 for every entry
    # d loss / d bias = mean over B and C of (sigmoid(0) - y) / ... = (0.5 - 1) / 2 and (0.5 - 0) / 2 per class
    assert net[1].bias.detach().tolist() == pytest.approx([0.25, -0.25])


def test_make_train_step_feeds_nvum_index_and_teacher_logits():
    net = _toy_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    images, labels = torch.rand(2, 3, 4, 4), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    teacher = EMATeacher(net, decay=0.5)
    loss = NVUMLoss(5, 2, [0.5, 0.5], mode="official", reduction="none")
    index = torch.tensor([3, 1])
    step = nvum.make_train_step(net, opt, loss, images, labels, {"index": index}, teacher=teacher)
    assert math.isfinite(step())
    assert loss.num_updates.tolist() == [0, 1, 0, 1, 0]  # rows 1 and 3 written once
    assert teacher.num_updates == 1  # one EMA update after the optimizer step


def test_step_time_benchmark_structure_on_toy_net():
    result = nvum.step_time_benchmark(
        _toy_net(), batch_size=2, image_size=4, num_classes=2, num_samples=10, warmup=0, repeats=4
    )
    variants = ["bce", "paper", "official_loss", "official_teacher"]
    assert list(result["times_s"]) == variants
    assert all(len(result["times_s"][v]) == 4 for v in variants)
    assert result["batch_shape"] == [2, 3, 4, 4]
    assert result["ratio_to_bce"]["bce"] == 1.0
    assert result["target_ratio"] == 1.03


@pytest.mark.parametrize(
    "values, mean, std, n",
    [([0.6, 0.7, 0.8], 0.7, 0.1, 3), ([0.5], 0.5, float("nan"), 1), ([0.2, float("nan"), 0.4], 0.3, 0.141421, 2)],
)
def test_summarise(values, mean, std, n):
    s = nvum.summarise(values)
    assert s["mean"] == pytest.approx(mean)
    assert s["n"] == n
    assert (math.isnan(s["std"]) and math.isnan(std)) or s["std"] == pytest.approx(std, abs=1e-6)
    assert len(s["values"]) == len(values)


def _run(method, seed, auc, audit=None):
    return {"method": method, "seed": seed, "clean_test_auc": auc, "openi_auc": auc - 0.1, "padchest_auc": auc + 0.1,
            "audit": audit}  # fmt: skip


def test_aggregate_runs_pairs_deltas_by_seed():
    audit = {"precision_at_k": 0.4, "base_rate": 0.05}
    runs = [_run("bce", 1, 0.7), _run("paper", 0, 0.65, audit), _run("bce", 0, 0.6), _run("paper", 1, 0.8, audit)]
    summary = nvum.aggregate_runs(runs)
    assert list(summary) == ["bce", "paper"]
    assert summary["paper"]["seeds"] == [0, 1]
    assert summary["paper"]["clean_test_auc"]["values"] == pytest.approx([0.65, 0.8])
    assert summary["paper"]["delta_clean_test_auc"]["mean"] == pytest.approx(0.075)  # (0.05 + 0.1) / 2
    assert summary["paper"]["delta_clean_test_auc"]["std"] == pytest.approx(0.0353553, abs=1e-6)
    assert summary["paper"]["audit_precision"]["mean"] == pytest.approx(0.4)
    assert summary["paper"]["audit_base_rate"] == 0.05
    assert "delta_clean_test_auc" not in summary["bce"]
    assert summary["bce"]["audit_precision"]["n"] == 0
    assert summary["bce"]["openi_auc"]["mean"] == pytest.approx(0.55)


def test_audit_precision_against_recorded_flips(tmp_path):
    datalist = [{"index": i, "image": f"/data/nih/images/0000000{i}_000.png"} for i in range(3)]
    classes = ["A", "B", "No Finding"]
    pd.DataFrame(
        {"image": ["00000000_000.png", "00000002_000.png", "00000002_000.png", "00000009_000.png", "00000001_000.png"],
         "class": ["A", "No Finding", "B", "A", "Consolidation"], "clean": [1, 0, 1, 1, 1], "noisy": [0, 1, 0, 0, 0]}
    ).to_csv(tmp_path / "noise.csv", index=False)  # fmt: skip
    # flips inside the training set and label space: (0, A), (2, No Finding), (2, B) -> k = 3
    pd.DataFrame({"index": [2, 1, 0, 1], "class_index": [1, 0, 0, 2]}).to_csv(tmp_path / "audit.csv", index=False)
    out = nvum.audit_precision(tmp_path / "audit.csv", tmp_path / "noise.csv", datalist, classes)
    assert out == {"k": 3, "precision_at_k": pytest.approx(2 / 3), "n_flips": 3, "n_pairs": 9, "base_rate": 3 / 9}


def test_audit_precision_caps_k_at_audit_length(tmp_path):
    datalist = [{"index": 0, "image": "/x/a.png"}, {"index": 1, "image": "/x/b.png"}]
    pd.DataFrame({"image": ["a.png", "b.png"], "class": ["A", "A"], "clean": [1, 0], "noisy": [0, 1]}).to_csv(
        tmp_path / "noise.csv", index=False
    )
    pd.DataFrame({"index": [1], "class_index": [0]}).to_csv(tmp_path / "audit.csv", index=False)
    out = nvum.audit_precision(tmp_path / "audit.csv", tmp_path / "noise.csv", datalist, ["A"])
    assert (out["k"], out["precision_at_k"], out["n_flips"]) == (1, 1.0, 2)
    pd.DataFrame({"index": [1]}).to_csv(tmp_path / "audit.csv", index=False)
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) \['class_index'\]"):
        nvum.audit_precision(tmp_path / "audit.csv", tmp_path / "noise.csv", datalist, ["A"])


def test_read_mean_auc(tmp_path):
    csv = tmp_path / "openi_per_class.csv"
    csv.write_text("class,n_known,n_positive,auroc,ap,f1\nA,10,2,0.9,0.5,0.1\nmean,,,0.8,0.4,0.1\n"
                   "mean (diseases),,,0.75,0.3,0.0\n")  # fmt: skip
    assert nvum.read_mean_auc(csv) == 0.75
    assert nvum.read_mean_auc(csv, row="mean") == 0.8
    with pytest.raises(DatasetLayoutError, match="no 'missing' row"):
        nvum.read_mean_auc(csv, row="missing")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        nvum.read_mean_auc(tmp_path / "nope.csv")


def _config_entry(config, config_id):
    for key in config_id.split("#"):
        config = config[int(key)] if isinstance(config, list) else config[key]
    return config


def test_bundle_overrides_bce_disables_the_audit_and_swaps_the_loss(tmp_path):
    out = nvum.bundle_overrides("bce", 5, tmp_path / "nih", tmp_path / "run", image_size=32, epochs=2)
    train = json.loads((nvum.BUNDLE_DIR / "configs" / "train.json").read_text())
    (key,) = [k for k in out if k.endswith("#_disabled_")]
    assert out[key] is True
    assert _config_entry(train, key[: -len("#_disabled_")])["_target_"].endswith("LabelAuditWriter")
    assert out["loss_def"] == {"_target_": "torch.nn.BCEWithLogitsLoss", "reduction": "none"}
    (init,) = [k for k in out if k.startswith("initialize")]
    assert init.startswith("initialize#")  # one list entry, never the whole list
    assert "set_determinism" in _config_entry(train, init)
    assert out[init] == "$monai.utils.set_determinism(seed=5)"
    assert (out["image_size"], out["epochs"], out["num_workers"]) == (32, 2, 0)
    assert out["output_dir"] == str(tmp_path / "run" / "eval")
    assert out["train#dataset#_target_"] == out["validate#dataset#_target_"] == "CacheDataset"


def test_bundle_overrides_finds_entries_in_any_layout(tmp_path):
    (tmp_path / "configs").mkdir()
    audit = {"_target_": "monai_ext.handlers.label_audit.LabelAuditWriter"}
    config = {"initialize": ["$import os", "$monai.utils.set_determinism(seed=0)"],
              "train": {"handlers_all_ranks": [{"_target_": "StatsHandler"}], "handlers_main_rank": [{}, audit]}}
    (tmp_path / "configs" / "train.json").write_text(json.dumps(config))  # fmt: skip
    out = nvum.bundle_overrides("bce", 1, tmp_path, tmp_path, bundle_dir=tmp_path)
    assert out["train#handlers_main_rank#1#_disabled_"] is True
    assert out["initialize#1"] == "$monai.utils.set_determinism(seed=1)"


def test_bundle_overrides_nvum_modes(tmp_path):
    net = {"_target_": "DenseNet", "spatial_dims": 2}
    out = nvum.bundle_overrides("official", 0, tmp_path, tmp_path, network_def=net)
    assert out["nvum_mode"] == "official" and "loss_def" not in out
    assert out["network_def"] == net and out["network_def"] is not net
    assert not any(k.endswith("#_disabled_") for k in out)
    with pytest.raises(ValueError, match="focal"):
        nvum.bundle_overrides("focal", 0, tmp_path, tmp_path)


def test_bundle_overrides_needs_the_audit_handler(tmp_path):
    (tmp_path / "configs").mkdir()
    config = {"initialize": ["$monai.utils.set_determinism(seed=0)"], "train": {"handlers": [{"_target_": "X"}]}}
    (tmp_path / "configs" / "train.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="LabelAuditWriter"):
        nvum.bundle_overrides("bce", 0, tmp_path, tmp_path, bundle_dir=tmp_path)


def _results():
    step = {"batch_shape": [2, 3, 8, 8], "num_classes": 14, "num_samples": 100, "warmup": 1, "repeats": 4,
            "device": "cpu", "median_s": {"bce": 0.2, "paper": 0.21}, "ratio_to_bce": {"bce": 1.0, "paper": 1.05},
            "target_ratio": 1.03, "times_s": {"bce": [0.2], "paper": [0.21]}}  # fmt: skip
    runs = [_run("bce", 0, 0.6), _run("bce", 1, 0.7), _run("paper", 0, 0.65, {"precision_at_k": 0.5, "base_rate": 0.1}),
            _run("paper", 1, float("nan"))]  # fmt: skip
    settings = {"train_size": 3.0, "test_size": 6.0, "image_size": 64, "lesion_contrast": 0.2, "epochs": 8,
                "batch_size": 16, "seeds": [0, 1], "data_seed": 0, "network_def": "bundle default"}  # fmt: skip
    efficacy = {"settings": settings, "data": {"nih": {"n_images": 450, "n_flips": 300}}, "runs": runs,
                "summary": nvum.aggregate_runs(runs)}  # fmt: skip
    return {"step_time": step, "efficacy": efficacy, "environment": {"torch_threads": 1, "wall_s": 120.0}}


def test_results_table_rows():
    table = nvum.results_table(_results())
    assert "| NVUM paper mode | 0.210 | 1.050 |" in table
    assert "| BCE baseline | 0.650 ± 0.071 | 0.600, 0.700 | n/a | 0.550 ± 0.071 | 0.750 ± 0.071 | n/a |" in table
    # seed 1 of paper is nan: mean and delta over seed 0 only, audit with its random base rate
    assert "| NVUM paper | 0.650 | 0.650, nan | 0.050 | 0.550 | 0.750 | 0.500 (random: 0.100) |" in table
    assert "total wall time 2.0 min" in table
    assert "Efficacy" not in nvum.results_table({"step_time": _results()["step_time"]})


def test_write_results_files(tmp_path):
    paths = nvum.write_results(_results(), tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == ["README_table.md", "nvum_bench.json", "nvum_bench.png"]
    data = json.loads(paths["json"].read_text())
    assert data["efficacy"]["summary"]["paper"]["clean_test_auc"]["values"] == [0.65, None]  # nan -> null
    assert data["step_time"]["ratio_to_bce"] == {"bce": 1.0, "paper": 1.05}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["table"].read_text() == nvum.results_table(_results())
