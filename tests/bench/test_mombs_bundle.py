# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json

import pytest

from monai_ext.bench.mombs_bundle import BUNDLE_DIR, SMALL_UNET, bundle_config, bundle_overrides, handler_id
from monai_ext.bench.mombs_efficacy import label_values, read_case_dice
from monai_ext.bench.mombs_step import timing_overrides
from monai_ext.data.datalist import DatasetLayoutError


def test_bundle_overrides_exact(tmp_path):
    out = bundle_overrides("scl", 3, tmp_path / "data", tmp_path / "run", image_size=32, epochs=2, pivot_epoch=1)
    assert out == {
        "dataset_dir": str(tmp_path / "data"),
        "ckpt_dir": str(tmp_path / "run" / "models"),
        "output_dir": str(tmp_path / "run" / "eval"),
        "sampler": "scl",
        "image_size": 32,
        "epochs": 2,
        "pivot_epoch": 1,
        "batch_size": 8,
        "num_disturbances": 8,
        "num_workers": 0,
        "seed": 3,
        "split_seed": 3,
        "train#dataset#_target_": "CacheDataset",
        "train#dataset#progress": False,
        "validate#dataset#_target_": "CacheDataset",
        "validate#dataset#progress": False,
    }


def test_bundle_overrides_options(tmp_path):
    out = bundle_overrides("mombs", 1, tmp_path, tmp_path, split_seed=0, network_def=SMALL_UNET, cache=False)
    assert out["split_seed"] == 0 and out["seed"] == 1
    assert out["network_def"] == SMALL_UNET and out["network_def"] is not SMALL_UNET
    assert not any(key.startswith("train#") for key in out)
    with pytest.raises(ValueError, match="curriculum"):
        bundle_overrides("curriculum", 0, tmp_path, tmp_path)
    with pytest.raises(ValueError, match="pivot_epoch=0"):
        bundle_overrides("mombs", 0, tmp_path, tmp_path, pivot_epoch=0)


def test_the_bundle_ids_the_overrides_rely_on():
    train = json.loads((BUNDLE_DIR / "configs" / "train.json").read_text())
    for key in ("sampler", "pivot_epoch", "num_disturbances", "seed", "split_seed", "image_size", "num_workers"):
        assert key in train, key
    assert "$monai.utils.set_determinism(seed=@seed)" in train["initialize"]
    parser = bundle_config(overrides={"sampler": "random"})
    assert parser.get_parsed_content("use_uncertainty") is False
    assert bundle_config(overrides={"sampler": "anti_mixed"}).get_parsed_content("use_uncertainty") is True


def test_handler_id_follows_the_target():
    parser = bundle_config()
    for target in ("MoMBSAssessor", "ValidationHandler", "CheckpointSaver"):
        key = handler_id(parser, target)
        assert str(parser[key]["_target_"]).split(".")[-1] == target
    assert handler_id(parser, "monai_ext.handlers.mombs_assessor.MoMBSAssessor") == handler_id(parser, "MoMBSAssessor")
    with pytest.raises(KeyError, match="0 handlers of 'train#handlers' have _target_ 'NoSuchHandler'"):
        handler_id(parser, "NoSuchHandler")
    with pytest.raises(KeyError, match="2 handlers"):
        handler_id(parser, "CheckpointLoader")  # resume and pretrained


def test_timing_overrides_switch_off_validation_and_the_final_save(tmp_path):
    out = timing_overrides("mombs", tmp_path, tmp_path / "run", epochs=4)
    parser = bundle_config(overrides=out)
    assert parser[handler_id(parser, "ValidationHandler")]["_disabled_"] is True
    assert parser[handler_id(parser, "CheckpointSaver")]["save_final"] is False
    assert (out["pivot_epoch"], out["epochs"], out["image_size"]) == (1, 4, 128)
    assert "network_def" not in out and "train#dataset#_target_" not in out  # the bundle's network and Dataset


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
