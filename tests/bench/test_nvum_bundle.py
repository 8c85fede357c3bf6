# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json

import pytest

from monai_ext.bundle.workflow import bundle_parser
from scripts.bench.bundles import DEMO_TRAIN, shipped_network_def
from scripts.bench.nvum_bundle import BUNDLE_DIR, bundle_overrides


def test_bundle_overrides_bce_swaps_only_the_loss(tmp_path):
    out = bundle_overrides("bce", 5, tmp_path / "nih", tmp_path / "run", image_size=32, epochs=2)
    assert out == {
        "dataset_dir": str(tmp_path / "nih"),
        "ckpt_dir": str(tmp_path / "run" / "models"),
        "output_dir": str(tmp_path / "run" / "eval"),
        "image_size": 32,
        "epochs": 2,
        "batch_size": 16,
        "seed": 5,
        "nvum_mode": "paper",
        "network_def": "%small_network_def",
        "train#dataset#_target_": "CacheDataset",
        "train#dataset#progress": False,
        "validate#dataset#_target_": "CacheDataset",
        "validate#dataset#progress": False,
        "loss_def": {"_target_": "torch.nn.BCEWithLogitsLoss", "reduction": "none"},
    }


def test_the_bundle_seeds_set_determinism_and_audits_only_a_memory_loss():
    # what the overrides rely on: the 'seed' id feeds set_determinism; the label audit and the teacher forward follow
    # the loss (the BCE baseline has no memory: no audit, no teacher logits)
    train = json.loads((BUNDLE_DIR / "configs" / "train.json").read_text())
    assert train["initialize"] == ["@training_setup"]
    assert "$monai.utils.set_determinism(seed=@seed)" in train["training_setup"]
    (audit,) = [h for h in train["train"]["handlers"] if str(h["_target_"]).endswith("LabelAuditWriter")]
    assert audit["loss"] == "@loss"
    assert train["ema_teacher"]["output_key"] == "$monai_ext.losses.memory_logits_key(@loss)"  # tested with the loss


def test_bundle_overrides_nvum_modes(tmp_path):
    net = {"_target_": "DenseNet", "spatial_dims": 2}
    out = bundle_overrides("official", 0, tmp_path, tmp_path, network_def=net)
    assert out["nvum_mode"] == "official" and "loss_def" not in out
    assert out["network_def"] == net and out["network_def"] is not net
    assert bundle_overrides("paper", 0, tmp_path, tmp_path)["nvum_mode"] == "paper"
    with pytest.raises(ValueError, match="focal"):
        bundle_overrides("focal", 0, tmp_path, tmp_path)


def test_bundle_overrides_needs_the_seed_id(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.json").write_text(json.dumps({"initialize": ["$monai.utils.set_determinism(0)"]}))
    with pytest.raises(ValueError, match="has no 'seed' id"):
        bundle_overrides("bce", 0, tmp_path, tmp_path, bundle_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        bundle_overrides("bce", 0, tmp_path, tmp_path, bundle_dir=tmp_path / "nowhere")


def test_bundle_parser_applies_overrides():
    parser = bundle_parser(BUNDLE_DIR, DEMO_TRAIN, {"nvum_mode": "official", "epochs": 3})
    assert parser.get_parsed_content("prior_convention") == "official"
    assert parser.get_parsed_content("epochs") == 3
    assert bundle_parser(BUNDLE_DIR, DEMO_TRAIN).get_parsed_content("prior_convention") == "paper"


def test_demo_overlay_offers_the_small_densenet_the_benchmark_trains():
    demo = json.loads((BUNDLE_DIR / "configs" / "demo.json").read_text())
    assert demo["small_network_def"]["_target_"] == "DenseNet" and demo["small_network_def"]["init_features"] == 16
    assert "network_def" not in demo  # make demo trains the shipped network
    parser = bundle_parser(BUNDLE_DIR, DEMO_TRAIN, {"network_def": bundle_overrides("bce", 0, "/x", "/y")["network_def"]})
    assert type(parser.get_parsed_content("network_def")).__name__ == "DenseNet"
    assert shipped_network_def(BUNDLE_DIR)["_target_"] == "DenseNet121"
    assert type(bundle_parser(BUNDLE_DIR, DEMO_TRAIN).get_parsed_content("network_def")).__name__ == "DenseNet121"
