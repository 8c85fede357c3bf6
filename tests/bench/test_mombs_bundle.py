# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json

import pytest

from monai_ext.bundle.workflow import bundle_parser
from monai_ext.data.datalist import DatasetLayoutError
from scripts.bench.bundles import DEMO_TRAIN, SMALL_NETWORK, TRAIN, shipped_network_def, small_network_def
from scripts.bench.mombs_bundle import BUNDLE_DIR, bundle_overrides
from scripts.bench.mombs_step import timing_overrides
from scripts.bench.mombs_study import label_values, read_case_dice


def test_bundle_overrides_exact(tmp_path):
    out = bundle_overrides("scl_hard", 3, tmp_path / "data", tmp_path / "run", image_size=32, epochs=2, pivot_epoch=1)
    assert out == {
        "dataset_dir": str(tmp_path / "data"),
        "ckpt_dir": str(tmp_path / "run" / "models"),
        "output_dir": str(tmp_path / "run" / "eval"),
        "sampling_strategy": "scl_hard",
        "image_size": 32,
        "epochs": 2,
        "pivot_epoch": 1,
        "batch_size": 8,
        "num_disturbances": 8,
        "num_workers": 0,
        "seed": 3,
        "split_seed": 3,
        "network_def": SMALL_NETWORK,
        "train#dataset#_target_": "CacheDataset",
        "train#dataset#progress": False,
        "validate#dataset#_target_": "CacheDataset",
        "validate#dataset#progress": False,
    }


def test_bundle_overrides_options(tmp_path):
    small = small_network_def(BUNDLE_DIR)
    out = bundle_overrides("mombs", 1, tmp_path, tmp_path, split_seed=0, network_def=small, cache=False)
    assert out["split_seed"] == 0 and out["seed"] == 1
    assert out["network_def"] == small and out["network_def"] is not small
    assert not any(key.startswith("train#") for key in out)
    assert bundle_overrides("mombs", 1, tmp_path, tmp_path)["network_def"] == "%small_network_def"
    # strategies pass as plain strings (the bundle's sampler checks them): the spec's new names go through
    assert bundle_overrides("scl_linear", 0, tmp_path, tmp_path)["sampling_strategy"] == "scl_linear"
    with pytest.raises(ValueError, match="pivot_epoch=0"):
        bundle_overrides("mombs", 0, tmp_path, tmp_path, pivot_epoch=0)


def test_the_bundle_ids_the_overrides_rely_on():
    train = json.loads((BUNDLE_DIR / "configs" / "train.json").read_text())
    for key in ("sampling_strategy", "pivot_epoch", "num_disturbances", "seed", "split_seed", "image_size",
                "num_workers", "val_interval"):  # fmt: skip
        assert key in train, key
    assert "$monai.utils.set_determinism(seed=@seed)" in train["training_setup"]
    # the strategy reaches the sampler, and the assessor asks the sampler whether to run its K passes
    assert train["train"]["sampler"]["strategy"] == "@sampling_strategy"
    assert train["mombs_assessor"]["sampler"] == "@train#sampler"


def test_the_demo_overlay_is_the_small_unet_the_efficacy_benchmark_trains():
    small = small_network_def(BUNDLE_DIR)
    assert small["channels"] == [8, 16, 32, 64, 128] and small["num_res_units"] == 1
    parser = bundle_parser(BUNDLE_DIR, DEMO_TRAIN, {"network_def": SMALL_NETWORK})
    network = parser.get_parsed_content("network_def")
    assert network.tap is not None  # a split network (MoMBS's feature tap)
    assert network.model[0].conv.unit0.conv.out_channels == 8  # the small network's first level
    # make demo keeps the shipped network: the overlay only offers the small one
    assert bundle_parser(BUNDLE_DIR, DEMO_TRAIN).get("network_def#channels") == [16, 32, 64, 128, 256]


def test_timing_overrides_switch_off_validation(tmp_path):
    out = timing_overrides("mombs", tmp_path, tmp_path / "run", epochs=4)
    parser = bundle_parser(BUNDLE_DIR, TRAIN, out)
    assert parser.get_parsed_content("val_interval") == 5  # beyond the 4 epochs: the ValidationHandler never fires
    (validation,) = [h for h in parser["train#handlers"] if h.get("_target_") == "ValidationHandler"]
    assert validation["interval"] == "@val_interval"
    assert (out["pivot_epoch"], out["epochs"], out["image_size"]) == (1, 4, 128)
    assert out["network_def"] == shipped_network_def(BUNDLE_DIR)  # the bundle's network ...
    assert "train#dataset#_target_" not in out  # ... and Dataset


def test_read_case_dice(tmp_path):
    (tmp_path / "test_summary.json").write_text(json.dumps({"mean_dice": {"mean": 0.5, "std": 0.1, "num_cases": 2}}))
    (tmp_path / "test_per_case.csv").write_text(
        "case_id,num_slices,dice_infection,mean_dice\nmedseg/tr_z001,1,0.4,0.4\nmedseg/tr_z013,1,,\n"
        "medseg/tr_z020,1,0.6,0.6\n"
    )
    out = read_case_dice(tmp_path)
    assert out == {"mean_dice": 0.5, "num_cases": 2,
                   "per_case": {"medseg/tr_z001": 0.4, "medseg/tr_z013": None, "medseg/tr_z020": 0.6}}  # fmt: skip
    (tmp_path / "test_summary.json").write_text(json.dumps({"classes": {}}))
    with pytest.raises(DatasetLayoutError, match="has no 'mean_dice'"):
        read_case_dice(tmp_path)
    with pytest.raises(FileNotFoundError, match="eval_summary.json"):
        read_case_dice(tmp_path, "eval")


@pytest.mark.parametrize(
    "label_map, expected",
    [({"infection": [1, 2]}, {1, 2}), ({"ggo": 1, "consolidation": 2}, {1, 2}), ({"infection": 3}, {3})],
)
def test_label_values(label_map, expected):
    assert label_values(label_map) == expected
