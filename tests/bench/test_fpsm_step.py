# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""FPSM step-time benchmark and transform throughput: the bundle's settings, identical backbone weights across the
variants, the step really trains, the ratio arithmetic on hand-worked times, the result structure on tiny inputs
(timings are never asserted) and the command-line entry point."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import Compose, LoadImaged, Resized, ScaleIntensityd
from PIL import Image

from scripts import bench_cxr_lt_step
from scripts.bench.fpsm_step import (
    BASELINE,
    DEFAULT_VARIANTS,
    build_variants,
    fpsm_flops_table,
    fpsm_step_benchmark,
    fpsm_step_flops,
    fpsm_step_setting,
    fpsm_step_table,
    summarize_times,
)
from scripts.bench.transform_throughput import throughput_table, transform_throughput

TINY = 32  # resnet10t: stage 4 (stride 32) is 1 x 1 at 32 px
DEMO_CONFIG = Path(__file__).resolve().parents[2] / "bundles/cxr_lt_fpsm_classification/configs/demo.json"


def demo_config():
    """The demo overlay as written on disk, read independently of the benchmark's own config loading."""
    return json.loads(DEMO_CONFIG.read_text())


@pytest.fixture(scope="module")
def small_setting():
    return fpsm_step_setting("small")


def test_settings_follow_the_bundle_configs(small_setting):
    assert small_setting["backbone"] == "resnet10t"
    demo = demo_config()
    expected = (demo["image_size"], demo["batch_size"], 26)
    assert (small_setting["image_size"], small_setting["batch_size"], small_setting["num_classes"]) == expected
    assert small_setting["learning_rate"] == pytest.approx(demo["learning_rate"]) and small_setting["num_datasets"] == 0
    assert small_setting["network_def"]["_target_"] == "monai_ext.networks.FeaturePyramidSumNet"
    shipped = fpsm_step_setting("shipped")
    assert shipped["backbone"] == "tresnet_l" and shipped["network_def"]["backbone"] == "@backbone"
    assert (shipped["image_size"], shipped["batch_size"], shipped["learning_rate"]) == (448, 16, pytest.approx(1e-4))
    assert shipped["stage_combination"] == "mean_prob"
    with pytest.raises(ValueError, match="'shipped' or 'small'"):
        fpsm_step_setting("huge")


def test_variants_share_the_backbone_weights(small_setting):
    nets = build_variants(small_setting)
    assert list(nets) == list(DEFAULT_VARIANTS)
    assert {n: net.stages for n, net in nets.items()} == {
        "single_4": (4,), "fpsm_43": (4, 3), "fpsm_432": (4, 3, 2), "fpsm_4321": (4, 3, 2, 1), "concat_432": (4, 3, 2)
    }  # fmt: skip
    assert [net.num_outputs for net in nets.values()] == [1, 2, 3, 4, 1]
    widths = nets["fpsm_4321"].stage_widths  # resnet10t: 512, 256, 128, 64
    assert nets["concat_432"].heads[0].in_features == sum(widths[:3])
    reference = nets[BASELINE].features.state_dict()
    for name, net in nets.items():
        state = net.features.state_dict()
        assert state.keys() == reference.keys()
        assert all(torch.equal(state[k], reference[k]) for k in reference), name
    # independently: the same pooled stage-4 feature from every variant, on the same input
    x = torch.rand(2, 3, TINY, TINY, generator=torch.Generator().manual_seed(3))
    pooled = {n: net.eval().pooled_features(x)[0] for n, net in nets.items()}
    assert all(torch.allclose(p, pooled[BASELINE]) for p in pooled.values())
    # the backbones are copies, not one shared module
    assert nets["fpsm_432"].features is not nets[BASELINE].features
    # a second build with the same seed gives the same weights, another seed others
    again = build_variants(small_setting, {"a": {"stages": (4,)}}, seed=0)["a"].features.state_dict()
    other = build_variants(small_setting, {"a": {"stages": (4,)}}, seed=1)["a"].features.state_dict()
    key = next(k for k in reference if k.endswith("weight"))
    assert torch.equal(again[key], reference[key]) and not torch.equal(other[key], reference[key])


def test_summarize_times_hand_worked():
    res = summarize_times({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 2.0, 6.0, 4.0]}, baseline="a")
    assert res["median_s"] == {"a": 2.5, "b": 3.0}
    assert res["ratio"] == {"a": 1.0, "b": pytest.approx(1.2)}
    # per round: 2/1, 2/2, 6/3, 4/4
    assert res["paired_ratio"]["b"] == {"median": 1.5, "min": 1.0, "max": 2.0}
    assert res["paired_ratio"]["a"] == {"median": 1.0, "min": 1.0, "max": 1.0}
    assert res["spread_s"]["a"] == {"min": 1.0, "q1": 1.75, "q3": 3.25, "max": 4.0}
    single = summarize_times({"a": [2.0], "b": [3.0]}, baseline="a")
    assert single["spread_s"]["b"] == {"min": 3.0, "q1": 3.0, "q3": 3.0, "max": 3.0}
    with pytest.raises(KeyError, match="baseline 'c'"):
        summarize_times({"a": [1.0]}, baseline="c")
    with pytest.raises(ValueError, match="same, non-zero number"):
        summarize_times({"a": [1.0], "b": [1.0, 2.0]}, baseline="a")


def test_benchmark_trains_each_variant_and_reports_structure(small_setting):
    variants = {k: DEFAULT_VARIANTS[k] for k in ("single_4", "fpsm_432", "concat_432")}
    nets = build_variants(small_setting, variants)
    before = {n: copy.deepcopy(net.state_dict()) for n, net in nets.items()}
    res = fpsm_step_benchmark(small_setting, variants, batch_size=2, image_size=TINY, warmup=0, repeats=2,
                              networks=nets)  # fmt: skip
    assert res["settings"]["input_shape"] == [2, 3, TINY, TINY] and res["baseline"] == "single_4"
    assert res["variants"]["fpsm_432"] == {
        "stages": [4, 3, 2], "concatenate": False, "heads": 3,
        "num_parameters": sum(p.numel() for p in nets["fpsm_432"].parameters()),
    }  # fmt: skip
    assert res["variants"]["concat_432"]["heads"] == 1 and res["variants"]["concat_432"]["concatenate"]
    for mode in ("train", "inference"):
        times = res[mode]["times_s"]
        assert list(times) == list(variants) and all(len(v) == 2 for v in times.values())
        assert res[mode]["ratio"]["single_4"] == 1.0
        for name in variants:
            assert res[mode]["ratio"][name] == pytest.approx(
                res[mode]["median_s"][name] / res[mode]["median_s"][BASELINE]
            )
            assert res[mode]["median_s"][name] == pytest.approx(float(np.median(times[name])))
    assert all(np.isfinite(v) and v > 0 for v in res["train"]["final_loss"].values())
    # two Adam steps changed every variant's backbone and heads
    for name, net in nets.items():
        state = net.state_dict()
        for prefix in ("features.", "heads."):
            changed = [k for k in state if k.startswith(prefix) and state[k].is_floating_point()
                       and not torch.equal(state[k], before[name][k])]  # fmt: skip
            assert changed, f"{name}: no {prefix} tensor changed"
    table = fpsm_step_table(res, "tiny")
    assert "| fpsm_432 | {4,3,2} | 3 |" in table and "| concat_432 | concat {4,3,2} | 1 |" in table
    assert "*inference (no-grad forward)*" in table


def test_inference_only_leaves_the_weights_unchanged(small_setting):
    variants = {k: DEFAULT_VARIANTS[k] for k in ("single_4", "fpsm_43")}
    nets = build_variants(small_setting, variants)
    before = {n: copy.deepcopy(net.state_dict()) for n, net in nets.items()}
    res = fpsm_step_benchmark(small_setting, variants, batch_size=2, image_size=TINY, modes=["inference"],
                              warmup=1, repeats=1, networks=nets)  # fmt: skip
    assert "train" not in res and list(res["inference"]["times_s"]) == ["single_4", "fpsm_43"]
    for name, net in nets.items():
        assert all(torch.equal(v, before[name][k]) for k, v in net.state_dict().items())


def test_benchmark_rejects_bad_modes_and_networks(small_setting):
    with pytest.raises(ValueError, match="modes must be"):
        fpsm_step_benchmark(small_setting, modes=["backward"])
    variants = {"single_4": DEFAULT_VARIANTS["single_4"]}
    nets = build_variants(small_setting, variants)
    with pytest.raises(ValueError, match="do not match the variants"):
        fpsm_step_benchmark(small_setting, {"x": {"stages": (4,)}}, networks=nets)


def _png_items(tmp_path, n=3):
    items = []
    rng = np.random.default_rng(0)
    for i in range(n):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8)).save(path)
        items.append({"image": str(path), "label": i})
    return items


def test_transform_throughput_counts_each_item_per_round(tmp_path):
    items = _png_items(tmp_path)
    load = Compose([LoadImaged("image", image_only=True, ensure_channel_first=True), ScaleIntensityd("image")])
    resize = Compose([load, Resized("image", (16, 16))])
    calls = {"load": 0, "resize": 0}
    outputs = {}

    def counted(name, pipeline):
        def run(item):
            calls[name] += 1
            outputs[name] = pipeline(item)
            return outputs[name]

        return run

    ticks = iter(range(100))  # each round (all items of one pipeline) lasts 1 tick
    res = transform_throughput({n: counted(n, p) for n, p in (("load", load), ("resize", resize))}, items, repeats=2,
                               warmup=1, clock=lambda: float(next(ticks)))  # fmt: skip
    assert calls == {"load": 9, "resize": 9}  # 3 items x (1 warm-up + 2 timed rounds)
    assert res["round_s"] == {"load": [1.0, 1.0], "resize": [1.0, 1.0]}
    assert res["images_per_s"] == {"load": 3.0, "resize": 3.0} and res["s_per_image"]["load"] == pytest.approx(1 / 3)
    assert res["ratio_to_reference"] == {"load": 1.0, "resize": 1.0} and res["reference"] == "load"
    # the pipelines really ran: the last item loaded (48 x 40 PNG -> channel-first 1 x 48 x 40) and resized
    assert tuple(outputs["load"]["image"].shape) == (1, 48, 40) and tuple(outputs["resize"]["image"].shape) == (
        1,
        16,
        16,
    )
    assert float(outputs["load"]["image"].max()) == pytest.approx(1.0)
    assert items[0]["image"].endswith("img0.png")  # the items are not modified
    assert "| resize | 3.0 |" in throughput_table(res, "plain")


def test_transform_throughput_real_clock_and_errors(tmp_path):
    items = _png_items(tmp_path, 2)
    load = Compose([LoadImaged("image", image_only=True, ensure_channel_first=True)])
    res = transform_throughput({"load": load, "noop": lambda d: d}, items, repeats=3, reference="noop")
    for name in ("load", "noop"):
        assert len(res["round_s"][name]) == 3
        assert res["images_per_s"][name] == pytest.approx(2 / float(np.median(res["round_s"][name])))
    assert res["ratio_to_reference"]["load"] == pytest.approx(res["images_per_s"]["load"] / res["images_per_s"]["noop"])
    with pytest.raises(ValueError, match="at least one pipeline"):
        transform_throughput({}, items)
    with pytest.raises(ValueError, match="at least one item"):
        transform_throughput({"load": load}, [])
    with pytest.raises(ValueError, match="reference 'x'"):
        transform_throughput({"load": load}, items, reference="x")


def test_script_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / "cxr_lt"
    argv = ["--out", str(out), "--networks", "small", "--variants", "single_4", "fpsm_432", "--small-warmup", "0",
            "--small-repeats", "1", "--small-batch-size", "2", "--device", "cpu", "--throughput-items", "3",
            "--throughput-image-size", "64", "--throughput-repeats", "1",
            "--work-dir", str(tmp_path / "tp")]  # fmt: skip
    assert bench_cxr_lt_step.main(argv) == 0
    data = json.loads((out / "fpsm_step.json").read_text())
    small = data["step_time"]["small"]
    size = demo_config()["image_size"]
    assert small["settings"]["input_shape"] == [2, 3, size, size] and small["settings"]["backbone"] == "resnet10t"
    assert list(small["train"]["ratio"]) == ["single_4", "fpsm_432"] and small["train"]["ratio"]["single_4"] == 1.0
    assert small["network_def"]["backbone"] == "resnet10t" and data["environment"]["device"] == "cpu"
    table = (out / "fpsm_step.md").read_text()
    assert "| fpsm_432 | {4,3,2} | 3 |" in table and "target <= 1.05" in table
    printed = capsys.readouterr().out
    assert "small train: step time / single_4: fpsm_432" in printed and "small inference:" in printed
    assert small["settings"]["clock"] == "process_time"  # --clock auto on a CPU: this process's CPU seconds
    assert data["dadam_throughput"]["clock"] == "process_time" and "clock process_time" in table
    flops = small["flops"]
    assert set(flops["ratio"]) == {"single_4", "fpsm_432"} and flops["backbone_calls"] == {"single_4": 1, "fpsm_432": 1}
    assert "small training-step FLOPs / single_4: fpsm_432" in printed and "GFLOP per step" in table
    throughput = data["dadam_throughput"]
    assert throughput["num_items"] == 3 and list(throughput["images_per_s"]) == ["plain", "dadam_p0.5", "dadam_p1"]
    assert "DADAM on the fly: images per second / plain: dadam_p0.5" in printed and "| dadam_p0.5 |" in table


def test_step_flops_count_one_backbone_pass(small_setting):
    setting = {**small_setting, "image_size": TINY}
    res = fpsm_step_flops(setting, {k: DEFAULT_VARIANTS[k] for k in ("single_4", "fpsm_432")}, batch_size=2)
    assert res["backbone_calls"] == {"single_4": 1, "fpsm_432": 1} and res["input_shape"] == [2, 3, TINY, TINY]
    assert res["ratio"]["single_4"] == 1.0
    # the extra heads' work, worked by hand: a Linear(w, 26) costs 2 * B * w * 26 FLOPs forward and twice that
    # backward (input and weight gradients); fpsm_432 adds heads on stages 3 and 2 (resnet10t widths 256, 128)
    nets = build_variants(setting, {k: DEFAULT_VARIANTS[k] for k in ("single_4", "fpsm_432")})
    extra_widths = nets["fpsm_432"].stage_widths[1:]
    extra_heads = sum(3 * 2 * 2 * w * 26 for w in extra_widths)
    assert res["flops"]["fpsm_432"] - res["flops"]["single_4"] == pytest.approx(extra_heads, rel=0.05)
    table = fpsm_flops_table(res, "t")
    assert "| fpsm_432 |" in table and "backbone passes" in table
