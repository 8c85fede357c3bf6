# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The MONAI Label app's helpers that need no monailabel (``scripts/monailabel_app/lib``): bundle discovery and
config overlay, the classification result, the volume -> slice datalist of the segmentation trainer."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "scripts" / "monailabel_app" / "lib"


def _load(name: str):
    """A module of the app's ``lib`` folder under a unique name (``lib`` alone is too generic for sys.modules)."""
    spec = importlib.util.spec_from_file_location(f"monailabel_app_lib_{name}", LIB / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bundles = _load("bundles")
results = _load("results")
slice_datalist = _load("slice_datalist")


def _bundle_copy(tmp_path: Path, name: str, weights: bool = True) -> Path:
    shutil.copytree(ROOT / "bundles" / name / "configs", tmp_path / name / "configs")
    if weights:
        (tmp_path / name / "models").mkdir()
        (tmp_path / name / "models" / "model.pt").write_bytes(b"")
    return tmp_path / name


def test_discover_all_in_collection_order(tmp_path):
    for name in ("deeplesion_mombs_detection", "cxr_nvum_classification"):
        _bundle_copy(tmp_path, name)
    (tmp_path / "not_a_bundle").mkdir()
    found = bundles.discover_bundles(tmp_path)
    assert list(found) == ["cxr_nvum_classification", "deeplesion_mombs_detection"]
    assert found["cxr_nvum_classification"] == tmp_path / "cxr_nvum_classification"
    assert list(bundles.discover_bundles(tmp_path, "deeplesion_mombs_detection")) == ["deeplesion_mombs_detection"]


def test_discover_errors(tmp_path):
    _bundle_copy(tmp_path, "cxr_nvum_classification", weights=False)
    with pytest.raises(FileNotFoundError, match="has no weights.*models/model.pt"):
        bundles.discover_bundles(tmp_path)
    with pytest.raises(ValueError, match="spleen_ct_segmentation"):
        bundles.discover_bundles(tmp_path, "spleen_ct_segmentation")
    with pytest.raises(FileNotFoundError, match="rop_meta_softlabel_classification"):
        bundles.discover_bundles(tmp_path, "rop_meta_softlabel_classification")
    with pytest.raises(FileNotFoundError, match="--conf bundles"):
        bundles.discover_bundles(tmp_path / "missing")


def test_overlay_swaps_in_the_small_network(tmp_path):
    bundle = _bundle_copy(tmp_path, "rop_meta_softlabel_classification")
    demo = json.loads((bundle / "configs" / "demo.json").read_text())
    plain = bundles.read_bundle_config(bundle, "inference.json")
    assert plain["network_def"]["_target_"] == "torchvision.models.resnet50"
    small = bundles.read_bundle_config(bundle, "inference.json", "demo.json")
    assert small["network_def"] == demo["small_network_def"]
    assert small["image_size"] == demo["image_size"] and small["bundle_root"] == str(bundle)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        bundles.read_bundle_config(bundle, "inference.json", "nope.json")


def test_class_names_keep_the_bundles_spelling():
    names = bundles.bundle_class_names(ROOT / "bundles" / "cxr_nvum_classification")
    assert names[0] == "Atelectasis" and names[-1] == "No Finding" and len(names) == 14
    assert bundles.bundle_class_names(ROOT / "bundles" / "covid_ct_mombs_segmentation") == ["infection"]


def test_classification_result():
    out = results.classification_result(torch.tensor([[0.25, 1.0, 0.0]]), ["a", "b", "c"])
    assert out == {
        "prediction": [
            {"idx": 0, "label": "a", "score": 0.25},
            {"idx": 1, "label": "b", "score": 1.0},
            {"idx": 2, "label": "c", "score": 0.0},
        ]
    }
    with pytest.raises(ValueError, match="2 scores for 3 classes"):
        results.classification_result([0.1, 0.2], ["a", "b", "c"])
    with pytest.raises(ValueError, match="probabilities"):
        results.classification_result([0.1, 1.5], ["a", "b"])
    with pytest.raises(ValueError, match="probabilities"):
        results.classification_result([float("nan"), 0.5], ["a", "b"])


def _volume(path: Path, data: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 5.0, 1.0])), path)
    return str(path)


def test_volume_slice_datalist(tmp_path):
    image = np.random.default_rng(0).normal(-500, 50, (16, 12, 3)).astype(np.float32)
    label = np.zeros((16, 12, 3), np.uint8)
    label[2:5, 3:6, 1] = 1  # 9 infection pixels on slice 1
    label[8:10, 8:10, 2] = 2  # 4 consolidation pixels (MedSeg value 2, also "infection" in the bundle's map)
    items = [{"image": _volume(tmp_path / "ct.nii.gz", image), "label": _volume(tmp_path / "lab.nii.gz", label)}]
    data = slice_datalist.volume_slice_datalist(items, tmp_path / "work", {"infection": [1, 2]})
    assert [d["z"] for d in data] == [0, 1, 2] and [d["index"] for d in data] == [0, 1, 2]
    assert [d["lesion_pixels"] for d in data] == [0, 9, 4]
    z1 = nib.load(data[1]["label"]).get_fdata().squeeze()
    assert z1.shape == (16, 12) and set(np.unique(z1)) == {0.0, 1.0} and z1.sum() == 9
    np.testing.assert_allclose(nib.load(data[2]["image"]).get_fdata().squeeze(), np.round(image[:, :, 2]), atol=0.5)
    with pytest.raises(FileExistsError):  # a new folder each time, nothing replaced
        slice_datalist.volume_slice_datalist(items, tmp_path / "work", {"infection": [1, 2]})


def test_stage_rejects_bad_items(tmp_path):
    with pytest.raises(ValueError, match="no labelled volume"):
        slice_datalist.stage_medseg_volumes([], tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="item 0: image"):
        slice_datalist.stage_medseg_volumes([{"image": str(tmp_path / "x.nii.gz"), "label": "y"}], tmp_path / "b")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match="not a NIfTI file"):
        slice_datalist.stage_medseg_volumes([{"image": str(tmp_path / "x.png"), "label": "y"}], tmp_path / "c")
