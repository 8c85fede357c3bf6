# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json

from monai_ext.bundle.workflow import bundle_parser
from scripts.bench.bundles import DEMO_TRAIN, SMALL_NETWORK, shipped_network_def
from scripts.bench.nvum_bundle import BUNDLE_DIR


def test_the_bundle_seeds_set_determinism_and_audits_only_a_memory_loss():
    # what the overrides rely on: the 'seed' id feeds set_determinism; the label audit and the teacher forward follow
    # the loss (the BCE baseline has no memory: no audit, no teacher logits)
    train = json.loads((BUNDLE_DIR / "configs" / "train.json").read_text())
    assert train["initialize"] == ["@training_setup"]
    assert "$monai.utils.set_determinism(seed=@seed)" in train["training_setup"]
    (audit,) = [h for h in train["train"]["handlers"] if str(h["_target_"]).endswith("LabelAuditWriter")]
    assert audit["loss"] == "@loss"
    assert train["ema_teacher"]["output_key"] == "$monai_ext.losses.memory_logits_key(@loss)"  # tested with the loss


def test_bundle_parser_applies_overrides():
    parser = bundle_parser(BUNDLE_DIR, DEMO_TRAIN, {"nvum_mode": "official", "epochs": 3})
    assert parser.get_parsed_content("prior_convention") == "official"
    assert parser.get_parsed_content("epochs") == 3
    assert bundle_parser(BUNDLE_DIR, DEMO_TRAIN).get_parsed_content("prior_convention") == "paper"


def test_demo_overlay_offers_the_small_densenet_the_benchmark_trains():
    demo = json.loads((BUNDLE_DIR / "configs" / "demo.json").read_text())
    assert demo["small_network_def"]["_target_"] == "DenseNet" and demo["small_network_def"]["init_features"] == 16
    assert "network_def" not in demo  # make demo trains the shipped network
    parser = bundle_parser(BUNDLE_DIR, DEMO_TRAIN, {"network_def": SMALL_NETWORK})
    assert type(parser.get_parsed_content("network_def")).__name__ == "DenseNet"
    assert shipped_network_def(BUNDLE_DIR)["_target_"] == "DenseNet121"
    assert type(bundle_parser(BUNDLE_DIR, DEMO_TRAIN).get_parsed_content("network_def")).__name__ == "DenseNet121"
