# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DeepLesion epoch-time benchmark on a tiny demo (4 key images at 80 px, the overlay's small network, 1 iteration
per epoch): the structure of the result, the ratios recomputed from the recorded epochs, the ``K`` passes timed
only for the MoMBS variants, and the head's per-level timing; plus hand-worked cases of the helpers."""

from __future__ import annotations

import statistics
import warnings

import pytest
import torch
from ignite.engine import Engine, Events

from monai_ext.demo.deeplesion import write_deeplesion_demo
from scripts.bench.deeplesion_step import (
    BREAKDOWN_KEYS,
    VARIANTS,
    epoch_time_benchmark,
    head_level_times,
    results_table,
    time_event_handler,
    timing_overrides,
    training_subset,
)

TINY = {"network_def": "%small_network_def", "image_size": 80, "pixel_spacing": 6.0}


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    root = tmp_path_factory.mktemp("deeplesion_step")
    write_deeplesion_demo(root / "data", size=0.5, seed=0, image_size=64, lesion_contrast=3.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as make bench; two threads on a loaded 2-core machine stall 10x (measured)
    try:
        with warnings.catch_warnings():  # epoch 1 of MoMBS has no scores yet: "sampling this epoch at random"
            warnings.filterwarnings("ignore", message="MoMBSSampler: epoch 1", category=UserWarning)
            return epoch_time_benchmark(root / "data", root / "runs", num_images=4, batch_size=4, num_disturbances=2,
                                        warmup=1, repeats=2, head_repeats=1, extra_overrides=TINY,
                                        variants=("random", "mombs", "mombs_undisturbed"))  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def test_result_structure_and_ratios_come_from_the_recorded_epochs(tiny_result):
    res = tiny_result
    names = ["random", "mombs", "mombs_undisturbed"]
    assert list(res["epoch_s"]) == names and res["settings"]["num_images"] == 4
    assert res["settings"]["iterations_per_epoch"] == 1 and res["settings"]["fpn_channels"] == 64
    for name in names:
        recs = res["epochs"][name]
        assert len(recs) == 2 and all(r["iterations"] == 1 for r in recs)
        assert res["epoch_s"][name] == [r["epoch_s"] for r in recs]
        assert res["median_s"][name] == pytest.approx(statistics.median(res["epoch_s"][name]))
        assert res["ratio"][name] == pytest.approx(res["median_s"][name] / res["median_s"]["random"])
        paired = statistics.median([a / b for a, b in zip(res["epoch_s"][name], res["epoch_s"]["random"])])
        assert res["ratio_paired"][name] == pytest.approx(paired)
        for key in BREAKDOWN_KEYS:
            assert res["breakdown"][name][key] == pytest.approx(statistics.median([r[key] for r in recs]))
        for r in recs:
            assert r["planning_s"] == pytest.approx(r["handler_s"] + r["plan_s"])
            parts = r["data_s"] + r["train_step_s"] + r["assessor_s"] + r["planning_s"] + r["outside_s"]
            assert parts == pytest.approx(r["epoch_s"])  # the parts add up to the epoch
            assert r["train_step_s"] > 0 and r["plan_s"] > 0 and r["handler_s"] > 0
    assert res["ratio"]["random"] == 1.0 and res["target_ratio"] == 1.5 and res["target_variant"] == "mombs"


def test_k_passes_are_timed_only_for_mombs_variants(tiny_result):
    epochs = tiny_result["epochs"]
    assert all(r["assessor_s"] == 0.0 for r in epochs["random"])
    assert all(r["assessor_s"] > 0.0 for r in epochs["mombs"] + epochs["mombs_undisturbed"])


def test_head_levels_and_table(tiny_result):
    head = tiny_result["head_levels"]
    strides = [row["stride"] for row in head["levels"]]
    assert strides == [4.0, 8.0, 16.0, 32.0]  # conv1 stride 2 + max pool, layers 1-3, the extra pooled level
    assert head["sum_levels_ms"] == pytest.approx(sum(row["ms"] for row in head["levels"]))
    assert head["stride4_share"] == pytest.approx(head["levels"][0]["ms"] / head["sum_levels_ms"])
    table = results_table(tiny_result)
    assert "| mombs_undisturbed |" in table and f"{tiny_result['ratio']['mombs']:.3f}" in table


def test_timing_overrides_per_variant(tmp_path):
    mombs = timing_overrides("mombs", tmp_path / "d", tmp_path / "r", epochs=4, num_disturbances=8)
    assert (mombs["pivot_epoch"], mombs["val_interval"], mombs["num_disturbances"]) == (1, 5, 8)
    assert mombs["disturb_at"] == "fpn" and mombs["ckpt_dir"] == str(tmp_path / "r" / "models")
    assert timing_overrides("mombs_stem", tmp_path, tmp_path, 4)["disturb_at"] == "stem"
    free = timing_overrides("mombs_undisturbed", tmp_path, tmp_path, 4, num_disturbances=8)
    assert free["num_disturbances"] == 1 and free["disturbance_ratio"] == 0.0
    coarse = timing_overrides("mombs_coarse", tmp_path, tmp_path, 4, num_disturbances=8)
    assert coarse["num_disturbances"] == 8 and coarse["uncertainty_levels"] == [1, 2, 3]
    assert "num_disturbances" not in timing_overrides("random", tmp_path, tmp_path, 4)
    with pytest.raises(KeyError, match="unknown variant"):
        timing_overrides("ohem", tmp_path, tmp_path, 4)
    assert set(VARIANTS) == {"random", "mombs", "mombs_stem", "mombs_coarse", "mombs_undisturbed"}


def test_training_subset_draws_and_reindexes():
    items = [{"file_name": f"{i:03d}.png", "patient_id": i // 2, "index": i} for i in range(10)]
    sub = training_subset(items, 4, seed=1)
    assert len(sub) == 4 and [it["index"] for it in sub] == [0, 1, 2, 3]
    assert len({it["file_name"] for it in sub}) == 4
    with pytest.raises(ValueError, match="1..10"):
        training_subset(items, 11)


def test_time_event_handler_keeps_the_order_and_times_the_handler():
    ticks = iter([0.0, 2.5])
    calls = []
    engine = Engine(lambda e, b: None)

    def first(engine):
        calls.append("first")

    def second(engine):
        calls.append("second")

    engine.add_event_handler(Events.EPOCH_COMPLETED, first)
    engine.add_event_handler(Events.EPOCH_COMPLETED, second)
    timed = time_event_handler(engine, Events.EPOCH_COMPLETED, first, clock=lambda: next(ticks))
    engine.run([0], max_epochs=1)
    assert calls == ["first", "second"] and (timed.seconds, timed.calls) == (2.5, 1)
    with pytest.raises(ValueError, match="not attached"):
        time_event_handler(engine, Events.EPOCH_COMPLETED, lambda e: None)


def test_head_level_times_on_a_fake_head():
    """A stand-in network whose head costs 1 tick per spatial element of each level (fake clock)."""

    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    clock = Clock()

    class Head(torch.nn.Module):
        def forward(self, maps):
            clock.now += sum(m.shape[-1] * m.shape[-2] for m in maps)
            return maps

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classification_head = Head()

        def feature_extractor(self, x):
            return {"0": x[..., ::4, ::4], "1": x[..., ::8, ::8]}

    out = head_level_times(Net(), torch.zeros(1, 2, 32, 32), repeats=3, clock=clock)
    assert [row["stride"] for row in out["levels"]] == [4.0, 8.0]
    assert [row["ms"] for row in out["levels"]] == [64000.0, 16000.0]  # 8x8 and 4x4 elements, in ms
    assert out["all_levels_ms"] == 80000.0 and out["stride4_share"] == pytest.approx(0.8)
