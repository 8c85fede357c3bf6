# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""End to end: the MONAI Label app (``scripts/monailabel_app``) serves every bundle through monailabel's REST API.

A real ``monailabel start_server`` (from ``.venv-monailabel``, ``make monailabel-env``) runs on a free localhost
port over a studies folder of demo images (a chest radiograph PNG, a fundus photograph PNG, two CT NIfTI volumes
with label volumes) and temporary copies of the bundles holding random-weight ``models/model.pt`` of the demo
overlay's small networks (``--conf overlay demo.json``). Skipped when ``.venv-monailabel`` is absent (plain
``make test``); ``make test-monailabel`` creates it and runs this file.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests
import torch
from monai.bundle import ConfigParser
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
MONAILABEL = ROOT / ".venv-monailabel" / "bin" / "monailabel"
APP = ROOT / "scripts" / "monailabel_app"
BUNDLES = {
    "cxr_nvum_classification": "classification",
    "rop_meta_softlabel_classification": "classification",
    "cxr_lt_fpsm_classification": "classification",
    "covid_ct_mombs_segmentation": "segmentation",
    "deeplesion_mombs_detection": "detection",
}
STARTUP_S = 240
REQUEST_S = 300

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not MONAILABEL.is_file(),
        reason=f"MONAI Label environment not found ({MONAILABEL}); create it with `make monailabel-env` "
        "(run by `make test-monailabel`).",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _class_names(bundle: Path) -> list[str]:
    """The output classes as metadata.json lists them (read here independently of the app)."""
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    channels = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    return [channels[k] for k in sorted(channels, key=int) if channels[k] != "background"]


def _random_bundle(name: str, dst: Path) -> Path:
    """A copy of the bundle's configs with random weights of the demo overlay's small network in models/model.pt."""
    bundle = dst / name
    shutil.copytree(ROOT / "bundles" / name / "configs", bundle / "configs")
    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / "inference.json"), str(bundle / "configs" / "demo.json")])
    parser["network_def"] = parser["small_network_def"]
    torch.manual_seed(0)
    state = parser.get_parsed_content("network_def").state_dict()
    if "classification_head.cls_logits.bias" in state:
        # RetinaNet starts its class logits at -4.6 (score 0.01, below the bundle's 0.05 threshold): lift them to
        # +2 (score ~0.88) so that random weights still give boxes for the test to check
        state["classification_head.cls_logits.bias"].fill_(2.0)
    (bundle / "models").mkdir()
    torch.save({"model": state}, bundle / "models" / "model.pt")
    return bundle


def _studies(folder: Path) -> dict[str, Path]:
    """Demo images (monai_ext.demo renderers) and two labelled CT volumes; returns image id -> file."""
    from monai_ext.demo.covid_ct import write_covid_medseg_demo
    from monai_ext.demo.cxr_patterns import render_chest
    from monai_ext.demo.rop import write_rop_demo

    folder.mkdir()
    chest = render_chest(256, ["cardiomegaly"], np.random.default_rng(0)).image
    Image.fromarray(np.round(chest * 255).astype(np.uint8)).save(folder / "chest.png")
    rop = folder.parent / "rop_demo"
    write_rop_demo(rop, size=0.05, image_size=96)
    shutil.copy(sorted(rop.rglob("*.png"))[0], folder / "fundus.png")
    covid = folder.parent / "covid_demo"
    write_covid_medseg_demo(covid, size=0.05, image_size=64, n_volumes=2, n_slices=8)
    (folder / "labels" / "final").mkdir(parents=True)
    for k in (1, 2):
        shutil.copy(covid / "rp_im" / f"{k}.nii.gz", folder / f"ct_{k}.nii.gz")
        shutil.copy(covid / "rp_msk" / f"{k}.nii.gz", folder / "labels" / "final" / f"ct_{k}.nii.gz")
    return {p.name.split(".")[0]: p for p in folder.iterdir() if p.is_file()}


_BUNDLE_RUN = """
import json, sys
import monai.bundle
for bundle, inputs, outputs in json.loads(sys.argv[1]):
    monai.bundle.run(
        run_id="run", meta_file=bundle + "/configs/metadata.json", bundle_root=bundle, dataset_dir=inputs,
        config_file=[bundle + "/configs/inference.json", bundle + "/configs/demo.json"],
        network_def="%small_network_def", output_dir=outputs,
    )
"""

REFERENCE_RUNS = [  # (bundle, image): the bundle's own inference (monai.bundle run) on that image
    ("cxr_nvum_classification", "chest"),
    ("cxr_nvum_classification", "rg1"),
    ("rop_meta_softlabel_classification", "fundus"),
    ("cxr_lt_fpsm_classification", "chest"),
    ("covid_ct_mombs_segmentation", "ct_1"),
    ("deeplesion_mombs_detection", "ct_1"),
]


def _bundle_results(bundles: dict[str, Path], images: dict[str, Path], tmp: Path) -> dict[tuple[str, str], Path]:
    """Each bundle's own inference (``monai.bundle run`` of inference.json + demo.json, its own writers) on the
    images of :data:`REFERENCE_RUNS`, in a separate process; returns (bundle, image) -> its output folder."""
    runs, outputs = [], {}
    for name, image in REFERENCE_RUNS:
        inputs = tmp / "reference_inputs" / f"{name}-{image}"
        inputs.mkdir(parents=True)
        shutil.copy(images[image], inputs / images[image].name)
        outputs[name, image] = tmp / "reference_outputs" / f"{name}-{image}"
        runs.append([str(bundles[name]), str(inputs), str(outputs[name, image])])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _BUNDLE_RUN, json.dumps(runs)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return outputs


@pytest.fixture(scope="module")
def server(tmp_path_factory, rg1_unci_path):
    tmp = tmp_path_factory.mktemp("monailabel")
    bundles = {name: _random_bundle(name, tmp / "bundles") for name in BUNDLES}
    images = _studies(tmp / "studies")
    images["rg1"] = Path(shutil.copy(rg1_unci_path, tmp / "studies" / "rg1.dcm"))  # a real CR radiograph
    reference = _bundle_results(bundles, images, tmp)  # before training replaces the segmentation weights
    app = shutil.copytree(APP, tmp / "app", ignore=shutil.ignore_patterns("logs", "__pycache__"))  # it logs into it
    port = _free_port()
    log = open(tmp / "server.log", "w")
    # monailabel's launcher script runs `python` from PATH unless told which
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": "",
        "MONAILABEL_PYEXE": str(MONAILABEL.parent / "python"),
        "MONAI_LABEL_DATASTORE_FILE_EXT": json.dumps(["*.png", "*.nii.gz", "*.dcm"]),  # the default leaves out *.dcm
    }
    cmd = [str(MONAILABEL), "start_server", "--app", str(app), "--studies", str(tmp / "studies")]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--conf", "bundles", str(tmp / "bundles")]
    cmd += ["--conf", "overlay", "demo.json"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + STARTUP_S
    while True:
        try:
            if requests.get(f"{url}/info/", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"monailabel did not start ({proc.returncode}):\n{(tmp / 'server.log').read_text()[-6000:]}")
        time.sleep(1)
    yield {"url": url, "bundles": bundles, "images": images, "reference": reference, "log": tmp / "server.log"}
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _infer(server, model: str, image: str, output: str) -> requests.Response:
    r = requests.post(f"{server['url']}/infer/{model}", params={"image": image, "output": output}, timeout=REQUEST_S)
    assert r.status_code == 200, f"{r.status_code} {r.text[:2000]}\n{server['log'].read_text()[-4000:]}"
    return r


def test_info_lists_every_bundle(server):
    info = requests.get(f"{server['url']}/info/", timeout=30).json()
    types = {name: m["type"] for name, m in info["models"].items()}
    assert types == BUNDLES
    assert set(info["trainers"]) == {"covid_ct_mombs_segmentation"}
    for name in ("cxr_nvum_classification", "rop_meta_softlabel_classification", "cxr_lt_fpsm_classification"):
        assert list(info["models"][name]["labels"]) == _class_names(server["bundles"][name])


@pytest.mark.parametrize(
    "model, image, softmax",
    [
        ("cxr_nvum_classification", "chest", False),
        ("cxr_nvum_classification", "rg1", False),
        ("rop_meta_softlabel_classification", "fundus", True),
        ("cxr_lt_fpsm_classification", "chest", False),
    ],
)
def test_classification(server, model, image, softmax):
    result = _infer(server, model, image, "json").json()
    names = _class_names(server["bundles"][model])
    assert [p["label"] for p in result["prediction"]] == names
    assert [p["idx"] for p in result["prediction"]] == list(range(len(names)))
    scores = np.array([p["score"] for p in result["prediction"]])
    assert np.all((scores >= 0) & (scores <= 1))
    if softmax:  # one distribution over the grades
        assert scores.sum() == pytest.approx(1.0, abs=1e-5)
    # the same numbers as the bundle's own inference (monai.bundle run, PredictionWriter) on the same file
    own = json.loads((server["reference"][model, image] / f"{image}.json").read_text())["probabilities"]
    np.testing.assert_allclose(scores, [own[n] for n in names], atol=1e-5)


def test_segmentation_label_volume(server, tmp_path):
    r = _infer(server, "covid_ct_mombs_segmentation", "ct_1", "image")
    out = tmp_path / "label.nii.gz"
    out.write_bytes(r.content)
    label = nib.load(out)
    source = nib.load(server["images"]["ct_1"])
    assert label.shape == source.shape
    values = set(np.unique(np.asarray(label.dataobj)).tolist())
    assert values <= {0, 1}  # background + the bundle's one class ("infection")
    np.testing.assert_allclose(label.affine, source.affine, atol=1e-4)
    # the bundle's own inference (SegmentationMaskWriter) gives the same mask
    own = nib.load(server["reference"]["covid_ct_mombs_segmentation", "ct_1"] / "ct_1_seg.nii.gz")
    np.testing.assert_array_equal(np.asarray(label.dataobj), np.asarray(own.dataobj))


def test_detection_boxes(server):
    result = _infer(server, "deeplesion_mombs_detection", "ct_1", "json").json()
    shape = nib.load(server["images"]["ct_1"]).shape
    boxes = np.array(result["box"], dtype=float).reshape(-1, 4)
    assert len(boxes) == len(result["label_scores"]) == len(result["slice"]) == len(result["label"])
    assert len(boxes) > 0, "random weights and score threshold 0.05 still give boxes; none came back"
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])
    assert (
        np.all(boxes[:, :2] >= -0.5) and np.all(boxes[:, 2] <= shape[0] + 0.5) and np.all(boxes[:, 3] <= shape[1] + 0.5)
    )
    assert all(0 <= z < shape[2] for z in result["slice"])
    assert set(result["label_name"]) <= {"lesion"}
    assert result["model_name"] == "deeplesion_mombs_detection" and result["case_id"] == "ct_1"
    # the bundle's own inference (DetectionWriter) finds the same boxes on the same slices with the same scores
    own = json.loads(
        (server["reference"]["deeplesion_mombs_detection", "ct_1"] / "ct_1" / "ct_1_boxes.json").read_text()
    )
    np.testing.assert_allclose(boxes, np.array(own["box"], dtype=float).reshape(-1, 4), atol=1e-4)
    assert result["slice"] == own["slice"]
    np.testing.assert_allclose(result["label_scores"], own["label_scores"], atol=1e-5)


def test_segmentation_training_publishes_new_weights(server):
    bundle = server["bundles"]["covid_ct_mombs_segmentation"]
    model = bundle / "models" / "model.pt"
    before = torch.load(model, map_location="cpu")["model"]
    params = {"max_epochs": 1, "val_split": 0.5}
    r = requests.post(
        f"{server['url']}/train/covid_ct_mombs_segmentation",
        params={"run_sync": "true"},
        json=params,
        timeout=REQUEST_S,
    )
    assert r.status_code == 200, f"{r.status_code} {r.text[:2000]}\n{server['log'].read_text()[-6000:]}"
    runs = sorted((bundle / "models" / "monailabel_runs").iterdir())
    assert len(runs) == 1
    run = runs[0]
    # the replaced model is kept, byte for byte the random weights written by the fixture
    previous = torch.load(run / "previous_model.pt", map_location="cpu")["model"]
    assert all(torch.equal(previous[k], before[k]) for k in before)
    after = torch.load(model, map_location="cpu")["model"]
    assert after.keys() == before.keys()
    assert any(not torch.equal(after[k], before[k]) for k in before), "one epoch of training changed no weight"
    # one slice item per axial slice of the training volume(s), read by the bundle's own reader
    slices = sorted((run / "train" / "slices").rglob("image_z*.nii.gz"))
    assert slices and all(nib.load(p).ndim in (2, 3) for p in slices)
    # the served model now answers with the new weights
    label = _infer(server, "covid_ct_mombs_segmentation", "ct_2", "image")
    assert len(label.content) > 0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
