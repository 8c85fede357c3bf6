# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The MONAI model-zoo checks (:mod:`monai_ext.bundle.zoo`) on every bundle in ``bundles/``, offline, on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

from monai_ext.bundle import conventions, zoo

BUNDLES_DIR = Path(__file__).resolve().parents[2] / "bundles"
BUNDLES = sorted(p.name for p in BUNDLES_DIR.iterdir() if (p / "configs").is_dir()) if BUNDLES_DIR.is_dir() else []

pytestmark = pytest.mark.parametrize("name", BUNDLES)


def test_layout(name):
    zoo.check_layout(BUNDLES_DIR / name)


def test_metadata_offline_schema_and_tensor_names(name):
    zoo.check_metadata(BUNDLES_DIR / name)


def test_config_ids(name):
    zoo.check_config_ids(BUNDLES_DIR / name)


def test_net_in_out_at_metadata_shape(name):
    zoo.check_net_in_out(BUNDLES_DIR / name, device="cpu")


def test_ckpt_export_roundtrip(name, tmp_path):
    assert zoo.check_ckpt_export(BUNDLES_DIR / name, tmp_path).is_file()


@pytest.mark.slow
def test_train_properties(name, demo_root, tmp_path):
    bundle = BUNDLES_DIR / name
    if not (bundle / "configs" / "train.json").is_file():
        pytest.skip(f"{name} has no configs/train.json")
    data, names = zoo.demo_overrides(bundle, "configs/train.json", demo_root)
    zoo.write_demo_data(demo_root, names)
    report = zoo.check_properties(
        bundle, "train", "configs/train.json", **data, output_dir=str(tmp_path / "eval"),
        ckpt_dir=str(tmp_path / "models"),
    )  # fmt: skip
    assert report.ok, report.describe()


@pytest.mark.slow
def test_infer_properties(name, demo_root, tmp_path):
    bundle = BUNDLES_DIR / name
    names = []  # inference reads the images of the training demo data
    if (bundle / "configs" / "train.json").is_file():
        names = zoo.demo_overrides(bundle, "configs/train.json", demo_root)[1]
    zoo.write_demo_data(demo_root, names)
    # inference checks its checkpoint at initialize: give it one with random weights of the config's own network
    parser = ConfigParser(ConfigParser.load_config_file(str(bundle / "configs" / "inference.json")))
    torch.save({"model": parser.get_parsed_content("network_def").state_dict()}, tmp_path / "model.pt")
    report = zoo.check_properties(
        bundle, "infer", "configs/inference.json", dataset_dir=str(demo_root / names[0]) if names else str(demo_root),
        output_dir=str(tmp_path / "predictions"), ckpt_path=str(tmp_path / "model.pt"),
    )  # fmt: skip
    assert report.ok, report.describe()


def test_bundle_template_conventions(name):
    conventions.check_conventions(BUNDLES_DIR / name)
