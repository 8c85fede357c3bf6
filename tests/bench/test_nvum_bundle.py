# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json

import pytest

from monai_ext.bench.nvum_bundle import BUNDLE_DIR, bundle_config, bundle_overrides


def test_bundle_overrides_bce_swaps_only_the_loss(tmp_path):
    out = bundle_overrides("bce", 5, tmp_path / "nih", tmp_path / "run", image_size=32, epochs=2)
    assert out == {
        "dataset_dir": str(tmp_path / "nih"),
        "ckpt_dir": str(tmp_path / "run" / "models"),
        "output_dir": str(tmp_path / "run" / "eval"),
        "image_size": 32,
        "epochs": 2,
        "batch_size": 16,
        "num_workers": 0,
        "seed": 5,
        "nvum_mode": "paper",
        "train#dataset#_target_": "CacheDataset",
        "train#dataset#progress": False,
        "validate#dataset#_target_": "CacheDataset",
        "validate#dataset#progress": False,
        "loss_def": {"_target_": "torch.nn.BCEWithLogitsLoss", "reduction": "none"},
    }


def test_the_bundle_seeds_set_determinism_and_disables_its_audit_for_bce():
    # what the overrides rely on: the 'seed' id feeds set_determinism, the audit handler turns itself off
    train = json.loads((BUNDLE_DIR / "configs" / "train.json").read_text())
    assert "$monai.utils.set_determinism(seed=@seed)" in train["initialize"]
    (audit,) = [h for h in train["train"]["handlers"] if str(h["_target_"]).endswith("LabelAuditWriter")]
    assert "isinstance(@loss, monai_ext.losses.NVUMLoss)" in audit["_disabled_"]


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


def test_bundle_config_applies_overrides():
    parser = bundle_config(overrides={"nvum_mode": "official", "epochs": 3})
    assert parser.get_parsed_content("prior_convention") == "official"
    assert parser.get_parsed_content("epochs") == 3
    assert bundle_config().get_parsed_content("prior_convention") == "paper"
