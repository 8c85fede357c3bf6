# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Unit tests of :mod:`monai_ext.bundle.zoo` on tiny hand-written bundles (a 3 -> 2 linear classifier)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from monai_ext.bundle import zoo

URL = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json"
TENSOR = {"type": "image", "format": "magnitude", "num_channels": 3, "spatial_shape": [8, 8], "dtype": "float32",
          "value_range": [0, 1], "is_patch_data": False}  # fmt: skip
PRED = {**TENSOR, "type": "probabilities", "format": "classes", "num_channels": 2, "spatial_shape": [1, 2],
        "channel_def": {"0": "Effusion", "1": "No Finding"}}  # fmt: skip
META = {
    "schema": URL, "version": "0.2.0", "changelog": {"0.2.0": "second", "0.1.0": "first"}, "monai_version": "1.6.1",
    "pytorch_version": "2.14.1", "numpy_version": "2.4.6", "required_packages_version": {}, "task": "t",
    "description": "d", "authors": "a", "copyright": "c",
    "network_data_format": {"inputs": {"image": TENSOR}, "outputs": {"pred": PRED}},
}  # fmt: skip
NET = "$torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, @num_classes))"
LOGGING = "[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=f\n[logger_root]\nlevel=INFO\nhandlers=h\n"


def _inference(**changes):
    config = {
        "imports": ["$import torch"], "bundle_root": ".", "dataset_dir": "$@bundle_root + '/input'",
        "output_dir": "$@bundle_root + '/eval'", "amp": False, "num_workers": 0, "num_classes": 2,
        "class_names": ["Effusion", "No Finding"], "image_size": 8, "overwrite": False,
        "ckpt_path": "$@bundle_root + '/models/model.pt'",
        "device": "$torch.device('cpu')", "network_def": NET, "network": "$@network_def.to(@device)",
        "preprocessing": {"_target_": "Compose", "transforms": []},
        "dataset": {"_target_": "Dataset", "data": [], "transform": "@preprocessing"},
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1},
        "inferer": {"_target_": "SimpleInferer"},
        "postprocessing": {"_target_": "Compose", "transforms": []},
        "handlers": [], "key_metric": None,
        "evaluator": {"_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@dataloader",
                      "network": "@network", "inferer": "@inferer", "postprocessing": "@postprocessing",
                      "val_handlers": "@handlers", "key_val_metric": "@key_metric"},
        "run": ["$@evaluator.run()"],
    }  # fmt: skip
    for key, value in changes.items():
        if value is None and key in config:
            del config[key]
        else:
            config[key] = value
    return config


def _bundle(root: Path, meta=None, inference=None, skip=()) -> Path:
    bundle = root / "tiny_bundle"
    files = {
        "configs/metadata.json": json.dumps(META if meta is None else meta),
        "configs/inference.json": json.dumps(_inference() if inference is None else inference),
        "configs/logging.conf": LOGGING,
        "configs/demo.json": json.dumps({"num_workers": 0}),
        "docs/README.md": "# tiny\n",
        "LICENSE": "Apache-2.0\n",
    }
    for rel, text in files.items():
        if rel not in skip:
            (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
            (bundle / rel).write_text(text)
    (bundle / "configs").mkdir(parents=True, exist_ok=True)
    return bundle


def test_layout_passes_and_names_missing_files(tmp_path):
    zoo.check_layout(_bundle(tmp_path / "ok"))
    with pytest.raises(zoo.BundleCheckError, match=r"lacks \['docs/README.md', 'LICENSE'\]"):
        zoo.check_layout(_bundle(tmp_path / "bad", skip=("docs/README.md", "LICENSE")))
    with pytest.raises(FileNotFoundError, match="not a bundle folder"):
        zoo.check_layout(tmp_path / "nowhere")


def test_layout_requires_version_in_changelog(tmp_path):
    meta = {**META, "version": "0.3.0"}
    with pytest.raises(zoo.BundleCheckError, match=r"version '0.3.0' is not a key of its 'changelog' \(\['0.1.0', "):
        zoo.check_layout(_bundle(tmp_path, meta=meta))


def test_layout_requires_logging_sections(tmp_path):
    bundle = _bundle(tmp_path)
    (bundle / "configs" / "logging.conf").write_text("[loggers]\nkeys=root\n")
    with pytest.raises(zoo.BundleCheckError, match=r"section\(s\) \['handlers', 'formatters', 'logger_root'\]"):
        zoo.check_layout(bundle)


def test_metadata_requires_image_and_pred_names(tmp_path):
    zoo.check_metadata(_bundle(tmp_path / "ok"))
    meta = json.loads(json.dumps(META))
    meta["network_data_format"]["outputs"] = {"probs": PRED}
    with pytest.raises(zoo.BundleCheckError, match=r"inputs \['image'\] and outputs \['probs'\]"):
        zoo.check_metadata(_bundle(tmp_path / "bad", meta=meta))
    meta = json.loads(json.dumps(META))
    del meta["network_data_format"]["inputs"]["image"]["dtype"]
    with pytest.raises(ValueError, match="dtype"):
        zoo.check_metadata(_bundle(tmp_path / "schema", meta=meta))


def test_config_ids_and_same_network(tmp_path):
    bundle = _bundle(tmp_path, inference=_inference(amp=None, num_workers=None))
    with pytest.raises(zoo.BundleCheckError, match=r"inference.json lacks the top-level id\(s\) \['amp', 'num_wor"):
        zoo.check_config_ids(bundle)
    bundle = _bundle(tmp_path / "two")
    train = {"network_def": NET.replace("Linear(3", "Linear(4")}
    (bundle / "configs" / "train.json").write_text(json.dumps(train))
    with pytest.raises(zoo.BundleCheckError, match=r"network_def differs between \['inference.json', 'train.json'\]"):
        zoo.check_config_ids(bundle, required_ids={})
    # the small-run overlay keeps the shipped network (its small one has its own id): a network_def there differs
    bundle = _bundle(tmp_path / "overlay")
    (bundle / "configs" / "demo.json").write_text(json.dumps({"network_def": NET.replace("Linear(3", "Linear(5")}))
    with pytest.raises(zoo.BundleCheckError, match=r"network_def differs between \['demo.json', 'inference.json'\]"):
        zoo.check_config_ids(bundle, required_ids={})
    (bundle / "configs" / "demo.json").write_text(
        json.dumps({"small_network_def": NET.replace("Linear(3", "Linear(5")})
    )
    zoo.check_config_ids(bundle, required_ids={})


def test_net_in_out_checks_output_channels(tmp_path):
    zoo.check_net_in_out(_bundle(tmp_path / "ok"))
    with pytest.raises(ValueError, match="output channel number `3` doesn't match: `2`"):
        zoo.check_net_in_out(_bundle(tmp_path / "bad", inference=_inference(num_classes=3)))


def test_ckpt_export_matches_an_independent_eager_network(tmp_path):
    ts_path = zoo.check_ckpt_export(_bundle(tmp_path), tmp_path / "export", input_size=4)
    weights = torch.load(tmp_path / "export" / "model.pt", weights_only=True)["model"]
    linear = torch.nn.Linear(3, 2)
    linear.load_state_dict({"weight": weights["2.weight"], "bias": weights["2.bias"]})
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    expected = linear(x.mean(dim=(2, 3)))
    torch.testing.assert_close(torch.jit.load(str(ts_path))(x), expected)


def test_demo_overrides_rewrite_demo_paths(tmp_path):
    inference = _inference(dataset_dir="$@bundle_root + '/../../demo_data/nih'", openi_dir="$'../demo_data/openi/'")
    bundle = _bundle(tmp_path, inference=inference)
    overrides, names = zoo.demo_overrides(bundle, "configs/inference.json", "/srv/demo_root")
    assert overrides == {"dataset_dir": "/srv/demo_root/nih", "openi_dir": "/srv/demo_root/openi"}
    assert names == ["nih", "openi"]


def test_demo_overrides_move_demo_dir_and_its_nested_defaults(tmp_path):
    inference = _inference(demo_dir="$@bundle_root + '/demo_data'", dataset_dir="$@demo_dir + '/mimic_cxr_lt'",
                           box_sources={"nih": "$@demo_dir + '/nih'", "vindr": "$@demo_dir+\"/vindr\""})  # fmt: skip
    bundle = _bundle(tmp_path, inference=inference)
    overrides, names = zoo.demo_overrides(bundle, "configs/inference.json", "/srv/demo_root")
    assert overrides == {"demo_dir": "/srv/demo_root", "dataset_dir": "/srv/demo_root/mimic_cxr_lt"}
    assert names == ["mimic_cxr_lt", "nih", "vindr"]


def test_properties_report_undefined_and_wrong_ids(tmp_path):
    report = zoo.check_properties(_bundle(tmp_path / "ok"), "infer", "configs/inference.json")
    assert report.ok, report.describe()
    inference = _inference(key_metric=None)
    inference["evaluator"]["key_val_metric"] = None
    bundle = _bundle(tmp_path / "no_metric", inference=inference)
    report = zoo.check_properties(bundle, "infer", "configs/inference.json")
    assert (report.undefined_required, report.failed) == ([], [])
    assert report.undefined_optional == ["key_metric ('key_metric')"]
    inference = _inference()
    inference["evaluator"]["postprocessing"] = "@other"
    inference["other"] = {"_target_": "Compose", "transforms": []}
    report = zoo.check_properties(_bundle(tmp_path / "wrong", inference=inference), "infer", "configs/inference.json")
    assert report.failed == ["postprocessing"]
    report = zoo.check_properties(_bundle(tmp_path / "req", inference=_inference(inferer=None)), "infer",
                                  "configs/inference.json")  # fmt: skip
    assert report.undefined_required == ["inferer ('inferer')"]
    assert "infer: required property ids not defined" in report.describe()


def test_properties_explain_a_crash_of_monais_check(tmp_path):
    inference = _inference()
    # inline, not "@postprocessing": MONAI's check calls .startswith on the reference
    inference["evaluator"]["postprocessing"] = {"_target_": "Compose", "transforms": []}
    with pytest.raises(zoo.BundleCheckError, match="reference must be '@<id>'"):
        zoo.check_properties(_bundle(tmp_path, inference=inference), "infer", "configs/inference.json")


def test_verify_bundle_reports_each_check(tmp_path):
    bundle = _bundle(tmp_path, inference=_inference(num_classes=3))
    results = zoo.verify_bundle(bundle, tmp_path / "work", checks=["layout", "net_in_out", "properties"])
    assert list(results) == ["layout", "net_in_out", "properties"]
    assert results["layout"] == "ok" and results["properties"] == "ok"
    assert results["net_in_out"].startswith("FAILED: ValueError: output channel number `3`")
    with pytest.raises(ValueError, match="export"):
        zoo.verify_bundle(bundle, tmp_path / "work", checks=["export"])
