# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Publishing a checkpoint as zoo weights and downloading them again, on copies of real bundles with the demo
overlay's small network, randomly initialised."""

from __future__ import annotations

import hashlib
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from monai.apps.utils import HashCheckError
from monai.bundle import ConfigParser

from monai_ext.bundle.weights import DemoWeightsWarning, download_weights, export_twin, main, publish_weights
from monai_ext.bundle.workflow import bundle_parser
from tests.torch_threads import one_torch_thread

REPO = Path(__file__).resolve().parents[2]
DEMO = ["configs/inference.json", "configs/demo.json"]
SMALL = {"network_def": "%small_network_def"}
CLASSIFICATION, DETECTION = "rop_meta_softlabel_classification", "deeplesion_mombs_detection"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flat(output) -> list[torch.Tensor]:
    """The tensors of a network output (a tensor, or a dict of lists of tensors: RetinaNet's head outputs)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for k in sorted(output) for t in _flat(output[k])]
    return [t for item in output for t in _flat(item)]


def _copy(name: str, folder: Path) -> Path:
    """The bundle without ``models`` / ``eval`` (what a downloaded bundle zip holds)."""
    dst = folder / name
    shutil.copytree(REPO / "bundles" / name, dst, ignore=shutil.ignore_patterns("models", "eval", "large_files.yml"))
    return dst


def _small_network(bundle: Path, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return bundle_parser(bundle, DEMO, SMALL).get_parsed_content("network_def").eval()


@dataclass
class Published:
    bundle: Path
    network: torch.nn.Module
    ckpt: Path
    release: Path
    dataset_dir: Path
    content: dict


def _publish(name: str, root: Path) -> Published:
    """Publish a training-style checkpoint (weights + optimizer state) of a random small network into a bundle copy,
    then "upload" the weight files to ``root/release`` (the ``file://`` base URL)."""
    bundle = _copy(name, root / "work")
    network = _small_network(bundle)
    ckpt = root / "train" / "model.pt"
    ckpt.parent.mkdir()
    torch.save({"model": network.state_dict(), "optimizer": {"state": {}, "param_groups": []}}, ckpt)
    release, dataset_dir = root / "release", root / "demo_data" / name
    with pytest.warns(DemoWeightsWarning, match="demo data"):
        content = publish_weights(bundle, ckpt, release.as_uri(), dataset_dir, "configs/demo.json", **SMALL)
    release.mkdir()
    for f in ("model.pt", "model.ts"):
        shutil.copy2(bundle / "models" / f, release / f)
    return Published(bundle, network, ckpt, release, dataset_dir, content)


_CACHE: dict[str, Published] = {}


@pytest.fixture
def published(request, tmp_path_factory) -> Published:
    """One publication per bundle for the whole module (each takes about a second)."""
    name = request.param
    if name not in _CACHE:
        with one_torch_thread():
            _CACHE[name] = _publish(name, tmp_path_factory.mktemp(name))
    return _CACHE[name]


ALL = sorted(p.name for p in (REPO / "bundles").iterdir() if (p / "configs" / "demo.json").is_file())
EACH_BUNDLE = pytest.mark.parametrize("published", ALL, indirect=True)


@EACH_BUNDLE
def test_model_pt_loads_strictly_into_the_inference_network(published):
    saved = torch.load(published.bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert list(saved) == ["model"]  # what inference.json's CheckpointLoader load_dict {"model": @network} reads
    fresh = _small_network(published.bundle, seed=1)
    fresh.load_state_dict(saved["model"], strict=True)
    for key, tensor in published.network.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], tensor), key


@EACH_BUNDLE
def test_model_ts_reproduces_the_trained_network(published):
    """For the detector the TorchScript file is MONAI's RetinaNet twin, compared with the trained SplitRetinaNet."""
    scripted = torch.jit.load(str(published.bundle / "models" / "model.ts"), map_location="cpu").eval()
    image = bundle_parser(published.bundle, DEMO).get("_meta_#network_data_format#inputs#image")
    x = torch.rand(
        2, image["num_channels"], *[64] * len(image["spatial_shape"]), generator=torch.Generator().manual_seed(3)
    )
    with one_torch_thread(), torch.no_grad():
        expected, actual = _flat(published.network(x)), _flat(scripted(x))
    assert len(expected) == len(actual) > 0
    for e, a in zip(expected, actual):
        assert e.shape == a.shape
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)


@EACH_BUNDLE
def test_large_files_yml_lists_urls_and_independent_sha256(published):
    listing = yaml.safe_load((published.bundle / "large_files.yml").read_text())
    assert [e["path"] for e in listing["large_files"]] == ["models/model.pt", "models/model.ts"]
    for entry in listing["large_files"]:
        assert entry["url"] == f"{published.release.as_uri()}/{Path(entry['path']).name}"
        assert entry["hash_type"] == "sha256"
        assert entry["hash_val"] == _sha256(published.bundle / entry["path"])
    provenance = listing["provenance"]
    assert provenance["checkpoint"] == str(published.ckpt.resolve())
    assert provenance["checkpoint_sha256"] == _sha256(published.ckpt)
    assert provenance["dataset_dir"] == str(published.dataset_dir.resolve())
    assert provenance["demo_data"] is True and "not a model for real images" in provenance["note"]
    assert provenance["overrides"] == SMALL and provenance["config_file"] == DEMO
    assert listing == published.content
    # MONAI reads only the large_files list: the provenance key must not reach download_url
    assert set(ConfigParser.load_config_file(published.bundle / "large_files.yml")) == {"large_files", "provenance"}


@EACH_BUNDLE
def test_download_into_a_fresh_copy_restores_identical_files(published, tmp_path):
    fresh = _copy(published.bundle.name, tmp_path)
    shutil.copy2(published.bundle / "large_files.yml", fresh / "large_files.yml")
    files = download_weights(fresh)
    assert files == [fresh / "models" / "model.pt", fresh / "models" / "model.ts"]
    for f in files:
        assert f.read_bytes() == (published.bundle / "models" / f.name).read_bytes()
    assert main(["download", "--bundle_dir", str(fresh)]) == 0  # the CLI: files present with their hash are kept


@pytest.mark.parametrize("published", [CLASSIFICATION], indirect=True)
def test_corrupted_upload_and_wrong_hash_fail(published, tmp_path):
    fresh = _copy(published.bundle.name, tmp_path / "a")
    shutil.copy2(published.bundle / "large_files.yml", fresh / "large_files.yml")
    bad_release = tmp_path / "release"
    shutil.copytree(published.release, bad_release)
    data = bytearray((bad_release / "model.ts").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad_release / "model.ts").write_bytes(bytes(data))
    text = (fresh / "large_files.yml").read_text().replace(published.release.as_uri(), bad_release.as_uri())
    (fresh / "large_files.yml").write_text(text)
    with pytest.raises(HashCheckError, match=r"(?s)downloaded file failed.*model\.ts.*upload and"):
        download_weights(fresh)
    assert not (fresh / "models" / "model.ts").exists()  # MONAI moves a file into place only once its hash matched
    # a file already there with another hash is neither kept silently nor replaced
    (fresh / "models" / "model.ts").write_bytes(bytes(data))
    with pytest.raises(HashCheckError, match=r"(?s)existing file failed.*model\.ts.*delete it"):
        download_weights(fresh)
    # a wrong hash_val in the listing fails against the genuine upload
    other = _copy(published.bundle.name, tmp_path / "b")
    listing = yaml.safe_load((published.bundle / "large_files.yml").read_text())
    listing["large_files"][0]["hash_val"] = "0" * 64
    (other / "large_files.yml").write_text(yaml.safe_dump(listing))
    with pytest.raises(HashCheckError, match="model.pt"):
        download_weights(other)


def test_download_refuses_unhashed_entries_and_extra_listings(tmp_path):
    bundle = _copy(CLASSIFICATION, tmp_path)
    with pytest.raises(FileNotFoundError, match="large_files.yml"):
        download_weights(bundle)
    (bundle / "large_files.yml").write_text(
        yaml.safe_dump({"large_files": [{"path": "models/model.pt", "url": "file:///nowhere/model.pt"}]})
    )
    with pytest.raises(ValueError, match=r"\['models/model.pt'\] have no hash_val"):
        download_weights(bundle)
    (bundle / "large_files.json").write_text("{}")
    with pytest.raises(ValueError, match=r"large_files.json"):
        download_weights(bundle)


def test_checkpoint_that_does_not_fit_names_keys_and_writes_nothing(tmp_path):
    bundle = _copy(CLASSIFICATION, tmp_path)
    state = _small_network(bundle).state_dict()
    dropped = sorted(state)[0]
    state.pop(dropped)
    state["extra_head.weight"] = torch.zeros(2, 2)
    torch.save({"model": state}, tmp_path / "model.pt")
    with one_torch_thread(), pytest.raises(ValueError) as err:
        publish_weights(bundle, tmp_path / "model.pt", "file:///r", tmp_path / "data", "configs/demo.json", **SMALL)
    assert dropped in str(err.value) and "extra_head.weight" in str(err.value)
    assert str(tmp_path / "model.pt") in str(err.value) and ".publish_" not in str(err.value)
    # the shipped (full-size) network does not fit the small checkpoint either
    torch.save({"model": _small_network(bundle).state_dict()}, tmp_path / "model.pt")
    with one_torch_thread(), pytest.raises(ValueError, match="does not fit"):
        publish_weights(bundle, tmp_path / "model.pt", "file:///r", tmp_path / "data")
    assert not (bundle / "large_files.yml").exists() and list((bundle / "models").iterdir()) == []


def test_cli_plain_state_dict_real_data_and_no_overwrite(tmp_path, capsys):
    bundle = _copy(CLASSIFICATION, tmp_path)
    network = _small_network(bundle)
    torch.save(network.state_dict(), tmp_path / "plain.pt")  # a plain state dict, not a CheckpointSaver dict
    args = ["publish", "--bundle_dir", str(bundle), "--ckpt", str(tmp_path / "plain.pt"), "--url", "https://host/v1/",
            "--dataset_dir", str(tmp_path / "rop_real"), "--config_file", "configs/demo.json",
            "--network_def", "%small_network_def"]  # fmt: skip
    with one_torch_thread(), warnings.catch_warnings():
        warnings.simplefilter("error", DemoWeightsWarning)
        assert main(args) == 0
    listing = yaml.safe_load((bundle / "large_files.yml").read_text())
    assert [e["url"] for e in listing["large_files"]] == ["https://host/v1/model.pt", "https://host/v1/model.ts"]
    assert listing["provenance"]["demo_data"] is False
    saved = torch.load(bundle / "models" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(saved[k], v) for k, v in network.state_dict().items())
    before = {f: _sha256(bundle / f) for f in ("models/model.pt", "models/model.ts", "large_files.yml")}
    torch.save({"model": _small_network(bundle, seed=5).state_dict()}, tmp_path / "other.pt")
    args[4] = str(tmp_path / "other.pt")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "FileExistsError" in err and "--overwrite" in err and "model.pt" in err
    assert {f: _sha256(bundle / f) for f in before} == before
    with one_torch_thread():
        assert main(args + ["--overwrite", "--asset_prefix", "rop_v1_"]) == 0
    assert _sha256(bundle / "models" / "model.pt") != before["models/model.pt"]
    listing = yaml.safe_load((bundle / "large_files.yml").read_text())
    assert listing["provenance"]["checkpoint_sha256"] == _sha256(tmp_path / "other.pt")
    assert [e["url"] for e in listing["large_files"]] == [
        "https://host/v1/rop_v1_model.pt",
        "https://host/v1/rop_v1_model.ts",
    ]


def test_export_twin_of_the_detector():
    """Shipped configs: the twin is export_network_def as written; demo overlay: the small network's arguments."""
    bundle = REPO / "bundles" / DETECTION
    shipped = bundle_parser(bundle, "configs/inference.json")
    assert (
        export_twin(shipped) == ConfigParser.load_config_file(bundle / "configs/inference.json")["export_network_def"]
    )
    twin = export_twin(bundle_parser(bundle, DEMO, SMALL))
    small = ConfigParser.load_config_file(bundle / "configs/demo.json")["small_network_def"]
    assert twin["_target_"] == "monai.apps.detection.networks.retinanet_network.RetinaNet"
    assert twin["feature_extractor"] == small["feature_extractor"]
    assert "disturb_at" not in twin and "uncertainty_levels" not in twin
    assert export_twin(bundle_parser(REPO / "bundles" / CLASSIFICATION, "configs/inference.json")) is None
