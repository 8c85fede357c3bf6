# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Meta soft-label step-time benchmark: the stopwatch marks the trainer's own meta iteration without changing it, the
result's structure on a tiny MLP, the ROP bundle's step settings, and the command-line entry point."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import monai_ext.engines.meta_soft_label as meta_module
from monai_ext.engines import MetaSoftLabelTrainer, SoftLabelStore, virtual_step
from monai_ext.networks import LabelNetwork
from scripts import bench_rop_step
from scripts.bench.meta_step import (
    PIECES,
    SECOND_ORDER_PIECES,
    MetaStopwatch,
    build_network,
    meta_step_benchmark,
    rop_step_setting,
    step_table,
)

D, C = 5, 3


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(D, 7)
        self.fc = nn.Linear(7, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.hidden(x)))


def _trainer(net: nn.Module, label_source: str = "per_sample") -> tuple[MetaSoftLabelTrainer, dict]:
    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.randn(4, D, generator=g),
        "label": torch.tensor([0, 1, 2, 0]),
        "index": torch.tensor([5, 1, 3, 0]),
    }
    meta = {"image": torch.randn(6, D, generator=g), "label": torch.tensor([0, 1, 2, 0, 1, 2])}
    datalist = [{"index": i, "label": i % C} for i in range(8)]
    torch.manual_seed(1)  # the label network's linear layer
    label_net = LabelNetwork(net, C) if label_source == "network" else None
    trainer = MetaSoftLabelTrainer(
        device="cpu", max_epochs=1, train_data_loader=[batch], network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1), loss_function=nn.CrossEntropyLoss(reduction="none"),
        soft_labels=SoftLabelStore(datalist, C), meta_data_loader=[meta], label_source=label_source, warmup_epochs=0,
        label_network=label_net, label_optimizer=torch.optim.Adam(label_net.linear.parameters()) if label_net else None,
        epoch_length=1,
    )  # fmt: skip
    trainer.state.epoch = 1
    return trainer, batch


@pytest.mark.parametrize("label_source", ["per_sample", "network"])
def test_stopwatch_marks_each_piece_and_leaves_the_iteration_unchanged(label_source):
    torch.manual_seed(0)
    reference_net = MLP()
    net = MLP()
    net.load_state_dict(reference_net.state_dict())
    reference, batch = _trainer(reference_net, label_source)
    reference._iteration(reference, batch)  # not instrumented

    trainer, batch = _trainer(net, label_source)
    ticks = iter(range(100))  # one tick per clock reading: every piece lasts exactly 1
    watch = MetaStopwatch(clock=lambda: float(next(ticks)))
    with watch.instrument(trainer):
        watch.timed_iteration(trainer, batch)
    expected = [p for p in PIECES if p != "label_features" or label_source == "network"]
    assert watch.records == [{p: 1.0 for p in expected}]
    # the instrumented iteration is the trainer's meta step, unchanged: same rows, same weights
    assert trainer.soft_labels.num_updates.tolist() == [1, 1, 0, 1, 0, 1, 0, 0]
    assert torch.equal(trainer.soft_labels.label_logits, reference.soft_labels.label_logits)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), reference_net.parameters()))
    # everything wrapped is restored
    assert meta_module.virtual_sgd_parameters is virtual_step.virtual_sgd_parameters
    assert meta_module.functional_forward is virtual_step.functional_forward
    assert "_update_rows" not in trainer.__dict__ and "_update_label_network" not in trainer.__dict__
    if label_source == "network":
        assert "features" not in trainer.label_network.__dict__


def test_marks_outside_an_iteration_are_ignored():
    watch = MetaStopwatch(clock=lambda: 0.0)
    watch.mark("real_forward")
    assert watch.records == []


def test_benchmark_structure_on_a_tiny_mlp():
    result = meta_step_benchmark(MLP(), (D,), C, batch_size=4, meta_batch_size=6, num_samples=10, warmup=0, repeats=1)
    assert list(result["times_s"]) == [
        "cross_entropy",
        "meta_per_sample",
        "meta_per_sample_jvp",
        "meta_network",
        "meta_network_jvp",
    ]
    assert all(len(v) == 1 for v in result["times_s"].values())
    assert result["ratio_to_ce"]["cross_entropy"] == 1.0
    assert result["ratio_to_ce"]["meta_network"] == pytest.approx(
        result["median_s"]["meta_network"] / result["median_s"]["cross_entropy"]
    )
    assert result["target_ratio"] == 3.0
    assert list(result["pieces_s"]["per_sample"]) == [p for p in PIECES if p != "label_features"]
    assert list(result["pieces_s"]["network"]) == list(PIECES)
    for source in ("per_sample", "network"):
        pieces = result["pieces_s"][source]
        # one repetition: the marks lie inside the timed call, so the pieces add up to at most the iteration
        assert 0 < sum(pieces.values()) <= result["median_s"][f"meta_{source}"]
        assert sum(result["piece_share"][source].values()) == pytest.approx(1.0)
        assert result["second_order_s"][source] == pytest.approx(sum(pieces[p] for p in SECOND_ORDER_PIECES))
        assert 0 < result["second_order_share"][source] < 1
    table = step_table(result, "MLP")
    assert "| meta_per_sample |" in table and "**second-order part**" in table
    assert "label-network features" in table and "- | -" in table  # no feature piece for per-sample labels


def test_rop_step_settings_follow_the_bundle_configs():
    shipped = rop_step_setting("shipped")
    assert shipped["network_def"]["_target_"] == "torchvision.models.resnet50"
    assert (shipped["num_classes"], shipped["image_size"], shipped["batch_size"], shipped["meta_batch_size"]) == (
        3, 224, 16, 16)  # fmt: skip
    small = rop_step_setting("small")
    assert (small["image_size"], small["batch_size"], small["meta_batch_size"]) == (64, 16, 8)
    net = build_network(small["network_def"], small["num_classes"])
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 3)
    with pytest.raises(ValueError, match="'shipped' or 'small'"):
        rop_step_setting("huge")


def test_script_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / "rop"
    argv = ["--out", str(out), "--networks", "small", "--small-warmup", "0", "--small-repeats", "1",
            "--num-samples", "20", "--device", "cpu"]  # fmt: skip
    assert bench_rop_step.main(argv) == 0
    data = json.loads((out / "rop_step.json").read_text())
    assert list(data["step_time"]) == ["small"]
    small = data["step_time"]["small"]
    assert small["settings"]["input_shape"] == [3, 64, 64] and small["settings"]["meta_batch_size"] == 8
    assert set(small["ratio_to_ce"]) == {
        "cross_entropy",
        "meta_per_sample",
        "meta_per_sample_jvp",
        "meta_network",
        "meta_network_jvp",
    }
    table = (out / "rop_step.md").read_text()
    printed = capsys.readouterr().out
    assert table in printed and "small: meta / CE step time meta_per_sample" in printed
