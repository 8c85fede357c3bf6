# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A release used the way the zoo is used: outside this repository.

The module builds the release (``scripts.release``: the monai-ext wheel, the bundle zips, ``model_info.json``) into a
temporary folder and installs the wheel into a fresh virtual environment, which sees the project's third-party
packages (torch, MONAI, ...) but not this checkout: ``monai_ext`` is imported from the wheel (checked). Then, for every
bundle, one process of that environment, started in a temporary folder outside the repository:

1. ``monai.bundle download --name <bundle> --version <v> --url file://<zip>`` into another temporary folder; the
   zip's sha1 is checked against ``model_info.json``;
2. writes the bundle's demo data where its defaults look (``python -m monai_ext.demo --out <bundle>/demo_data``);
3. trains one epoch with the shipped ``train.json`` (demo overlay, its small network) on those defaults;
4. turns the checkpoint into the zoo form with the weights command (``models/model.pt``, ``model.ts``,
   ``large_files.yml``);
5. runs the downloaded bundle's ``inference.json`` on an input (the real ``RG1_UNCI.dcm`` for the chest X-ray
   bundles, so a DICOM SR comes back too).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# the demo datasets each bundle's train.json reads by default, and what its inference test reads
BUNDLE_DATA = {
    "cxr_nvum_classification": ["nih"],
    "rop_meta_softlabel_classification": ["rop"],
    "cxr_lt_fpsm_classification": ["mimic_cxr_lt", "nih", "vindr"],
    "covid_ct_mombs_segmentation": ["covid_medseg"],
    "deeplesion_mombs_detection": ["deeplesion"],
}

DRIVER = r"""
import json, os, sys, warnings
from pathlib import Path

args = json.loads(sys.argv[1])
import monai_ext
assert Path(monai_ext.__file__).resolve().is_relative_to(Path(args["venv"]).resolve()), monai_ext.__file__
import monai.bundle
from monai_ext.bundle.weights import main as weights_main
from monai_ext.demo.__main__ import main as demo_main

name, version, root = args["name"], args["version"], Path(args["root"])
monai.bundle.download(name=name, version=version, url=args["url"], bundle_dir=str(root / "downloaded"))
bundle = root / "downloaded" / name
os.chdir(bundle)
data_root = str(root / "elsewhere" / "demo_data") if args["explicit_dataset_dir"] else "demo_data"
demo_main(["--out", data_root, "--only", *args["datasets"], "--size", "0.4", "--seed", "6"])
if args["explicit_dataset_dir"]:
    args["train"]["dataset_dir"] = f"{data_root}/{args['datasets'][0]}"
small = {"network_def": "%small_network_def"}
monai.bundle.run(config_file=["configs/train.json", "configs/demo.json"], logging_file="configs/logging.conf",
                 epochs=1, ckpt_dir=str(root / "run" / "models"), output_dir=str(root / "run" / "eval"), **small,
                 **args["train"])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    status = weights_main(["publish", "--bundle_dir", ".", "--ckpt", str(root / "run" / "models" / "last.pt"),
                           "--url", (root / "weights").as_uri(), "--dataset_dir", f"{data_root}/{args['datasets'][0]}",
                           "--config_file", "configs/demo.json", "--network_def", "%small_network_def"])
assert status in (0, None), status
assert any("demo" in str(w.message).lower() for w in caught), [str(w.message) for w in caught]
monai.bundle.run(config_file=["configs/inference.json", "configs/demo.json"], logging_file="configs/logging.conf",
                 dataset_dir=args["inputs"], output_dir=str(root / "predictions"), **small)
print("DRIVER DONE")
"""


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def zoo(released, tmp_path_factory):
    """The release and a virtual environment with its wheel installed (the project's site-packages behind it)."""
    out, info, _ = released
    root = tmp_path_factory.mktemp("zoo")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.check_output([str(venv / "bin" / "python"), "-c", purelib], text=True).strip())
    (site / "project_packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    [wheel] = out.glob("monai_ext-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(site), str(wheel)], check=True)  # fmt: skip
    return {"root": root, "out": out, "info": info, "venv": venv}


# training overrides a one-epoch run needs: ROP's warm-up (4 epochs in the demo overlay) would leave no meta epoch
TRAIN_OVERRIDES = {"rop_meta_softlabel_classification": {"warmup_epochs": 0}}

# bundles trained on data outside the bundle folder (--dataset_dir); the others train on their defaults (demo_data/)
EXPLICIT_DATASET_DIR = {"cxr_nvum_classification"}

# the results inference must write for the input of :func:`_write_input`
EXPECTED_RESULTS = {
    "cxr_nvum_classification": ["RG1_UNCI.json", "RG1_UNCI_sr.dcm"],
    "cxr_lt_fpsm_classification": ["RG1_UNCI.json", "RG1_UNCI_sr.dcm"],
    "rop_meta_softlabel_classification": ["fundus.json"],
    "covid_ct_mombs_segmentation": ["ct_series_seg.dcm", "ct_series_seg.nii.gz", "ct_series_volumes_sr.dcm"],
    "deeplesion_mombs_detection": ["ct_series/ct_series_boxes.json", "ct_series/ct_series_sr.dcm"],
}


def _write_input(name: str, folder: Path, rg1_unci_path: Path) -> None:
    """The bundle's inference input: the real radiograph RG1_UNCI.dcm, a photograph, or a small CT DICOM series."""
    folder.mkdir()
    if name in ("cxr_nvum_classification", "cxr_lt_fpsm_classification"):
        shutil.copy(rg1_unci_path, folder / "RG1_UNCI.dcm")
    elif name == "rop_meta_softlabel_classification":
        from PIL import Image

        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(folder / "fundus.png")
    else:
        from monai_ext.demo.dicom_series import write_ct_dicom_series

        volume = np.full((48, 48, 5), -800.0)
        volume[10:30, 12:28, 1:4] = 60.0
        write_ct_dicom_series(volume, (0.8, 0.8, 2.5), folder / "ct_series", uid_seed=f"release test {name}")


@pytest.mark.parametrize("name", sorted(BUNDLE_DATA))
def test_downloaded_bundle_trains_and_infers_outside_the_repo(zoo, name, rg1_unci_path, tmp_path):
    version = json.loads((REPO / "bundles" / name / "configs" / "metadata.json").read_text())["version"]
    key = f"{name}_v{version}"
    entry = json.loads((zoo["out"] / "model_info.json").read_text())[key]
    zip_path = zoo["out"] / f"{key}.zip"
    assert entry == zoo["info"][key] and entry["source"] == zip_path.as_uri()
    assert _sha1(zip_path) == entry["checksum"]

    work = tmp_path / "work"
    work.mkdir()
    _write_input(name, tmp_path / "inputs", rg1_unci_path)
    args = {"name": name, "version": version, "url": entry["source"], "root": str(work), "venv": str(zoo["venv"]),
            "datasets": BUNDLE_DATA[name], "inputs": str(tmp_path / "inputs"),
            "train": TRAIN_OVERRIDES.get(name, {}), "explicit_dataset_dir": name in EXPLICIT_DATASET_DIR}  # fmt: skip
    proc = subprocess.run([str(zoo["venv"] / "bin" / "python"), "-c", DRIVER, json.dumps(args)], cwd=work,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                                                               "HOME": str(tmp_path)}, timeout=900)  # fmt: skip
    assert proc.returncode == 0 and "DRIVER DONE" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-6000:]

    bundle = work / "downloaded" / name
    assert not str(bundle.resolve()).startswith(str(REPO))
    assert json.loads((bundle / "configs" / "metadata.json").read_text())["version"] == version
    assert (bundle / "models" / "model.pt").is_file() and (bundle / "large_files.yml").is_file()
    results = {p.relative_to(work / "predictions").as_posix() for p in (work / "predictions").rglob("*.*")}
    assert set(EXPECTED_RESULTS[name]) <= results, sorted(results)
