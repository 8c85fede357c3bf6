# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""End-to-end runs of ``bundles/covid_ct_mombs_segmentation/configs/inference.json`` (with the ``configs/demo.json``
small-run overlay) on a tiny input folder (one NIfTI volume, one DICOM series, one corrupt NIfTI; CPU): masks on the
input grid, skipped.csv, resumable reruns, overwrite, and a fixed threshold network showing that the masks align
voxel for voxel with the inputs."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow
from monai.transforms import LoadImage
from scipy import ndimage

from monai_ext.bundle.workflow import bundle_parser, run_bundle_workflow
from monai_ext.demo.dicom_series import write_ct_dicom_series
from tests.bundles.covid_threshold_network import ThresholdInfectionNetwork as _Threshold

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "covid_ct_mombs_segmentation"
INFERENCE = ["configs/inference.json", "configs/demo.json"]
SMALL = {"network_def": "%small_network_def"}  # the demo overlay's small SplitUNet, for speed
pytestmark = pytest.mark.slow

AFFINE = np.array([[-0.8, 0, 0, 12.0], [0, -0.7, 0, 34.0], [0, 0, 2.5, -56.0], [0, 0, 0, 1]])


def _volume() -> np.ndarray:
    """40 x 36 x 5 HU: air-filled lung (-800) with a 200 HU block at x 4..17, y 20..31 in slices 1 and 3 (not
    symmetric under any flip or transposition)."""
    volume = np.full((40, 36, 5), -800.0)
    volume[4:18, 20:32, [1, 3]] = 200.0
    return volume


@pytest.fixture
def bundle_root(tmp_path) -> Path:
    """input/ct1.nii.gz (the volume), input/p2/series/ (the same volume as DICOM), input/broken.nii.gz (corrupt)."""
    root = tmp_path / "root"
    (root / "input").mkdir(parents=True)
    nib.save(nib.Nifti1Image(_volume().astype(np.int16), AFFINE), str(root / "input" / "ct1.nii.gz"))
    write_ct_dicom_series(_volume(), (0.8, 0.7, 2.5), root / "input" / "p2" / "series", origin=(-12.0, -34.0, -56.0))
    (root / "input" / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    meta = BUNDLE / "configs" / "metadata.json"
    (root / "metadata.json").write_text(meta.read_text() if meta.is_file() else json.dumps({"version": "0.0.0-test"}))
    return root


def _save_ckpt(root: Path, network: torch.nn.Module) -> None:
    (root / "models").mkdir(exist_ok=True)
    torch.save({"model": network.state_dict()}, root / "models" / "model.pt")


def _run(root: Path, **override) -> ConfigWorkflow:
    """The bundle's inference configs with ``bundle_root`` = ``root`` (its input/, models/ and metadata.json)."""
    return run_bundle_workflow(BUNDLE, INFERENCE, "infer", meta_file=root / "metadata.json", bundle_root=str(root),
                               **{**SMALL, **override})  # fmt: skip


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


def test_random_weights_masks_skipped_rerun_and_overwrite(bundle_root):
    torch.manual_seed(0)
    network = bundle_parser(BUNDLE, INFERENCE, SMALL).get_parsed_content("network_def")  # random weights
    _save_ckpt(bundle_root, network)
    _run(bundle_root)
    out = bundle_root / "eval" / "predictions"
    version = json.loads((bundle_root / "metadata.json").read_text())["version"]
    assert sorted(p.name for p in out.glob("*_seg.nii.gz")) == ["ct1_seg.nii.gz", "p2__series_seg.nii.gz"]
    dicom = LoadImage(image_only=True)(str(bundle_root / "input" / "p2" / "series"))
    for case, affine in (("ct1", AFFINE), ("p2__series", dicom.affine.numpy())):
        mask = nib.load(str(out / f"{case}_seg.nii.gz"))
        assert mask.shape == (40, 36, 5) and mask.get_data_dtype() == np.uint8
        np.testing.assert_allclose(mask.affine, affine, atol=1e-5)
        assert set(np.unique(np.asarray(mask.dataobj)).tolist()) <= {0, 1}
    np.testing.assert_allclose(dicom.affine.numpy(), AFFINE, atol=1e-5)  # the DICOM is the NIfTI's grid
    with open(out / "skipped.csv", newline="") as f:
        skipped = list(csv.DictReader(f))
    assert [(r["case_id"], r["image"]) for r in skipped] == [("broken", str(bundle_root / "input" / "broken.nii.gz"))]
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["case_id"], r["seg"], r["model_version"]) for r in rows] == [
        ("ct1", "ct1_seg.nii.gz", version), ("p2__series", "p2__series_seg.nii.gz", version)
    ]  # fmt: skip
    for r in rows:
        voxels = int((np.asarray(nib.load(str(out / r["seg"])).dataobj) == 1).sum())
        assert int(r["infection_voxels"]) == voxels
        assert float(r["infection_ml"]) == pytest.approx(voxels * 0.8 * 0.7 * 2.5 / 1000, rel=1e-6)

    for p in out.iterdir():
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    before = _mtimes(out)
    wf = _run(bundle_root)
    assert wf.parser.get_parsed_content("datalist") == []  # nothing left to compute
    assert _mtimes(out) == before  # and no file touched

    _run(bundle_root, overwrite=True)
    after = _mtimes(out)
    for name in ("ct1_seg.nii.gz", "p2__series_seg.nii.gz", "ct1_seg.json", "p2__series_seg.json"):
        assert after[name] != before[name]


def test_masks_align_with_inputs_voxel_for_voxel(bundle_root):
    network = _Threshold()
    _save_ckpt(bundle_root, network)
    (bundle_root / "input" / "broken.nii.gz").unlink()
    _run(bundle_root, network=network)
    out = bundle_root / "eval" / "predictions"
    truth = _volume() > 50
    inner = ndimage.binary_erosion(truth, structure=np.ones((3, 3, 1)))  # safe from the 40x36 -> 64 -> 40x36 blur
    outer = ndimage.binary_dilation(truth, structure=np.ones((5, 5, 1)))
    masks = {c: np.asarray(nib.load(str(out / f"{c}_seg.nii.gz")).dataobj) for c in ("ct1", "p2__series")}
    for mask in masks.values():
        assert mask[inner].all() and not mask[~outer].any()
        assert mask[:, :, [0, 2, 4]].sum() == 0 and mask[:, :, [1, 3]].sum() >= inner.sum()
    np.testing.assert_array_equal(masks["ct1"], masks["p2__series"])
    with open(out / "skipped.csv", newline="") as f:
        assert list(csv.reader(f)) == [["case_id", "image", "error"]]
