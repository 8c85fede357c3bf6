# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The bundles' parameter and folder checks end to end, through ``run_bundle_workflow`` as a command line gives
them: ``--overwrite false`` (text) keeps results, a bad number or an unwritable folder stops the run before it starts
naming the id, and a new training run refuses to replace the checkpoints of an earlier one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_ext.bundle.workflow import bundle_parser, bundle_workflow, run_bundle_workflow

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
COVID = BUNDLES / "covid_ct_mombs_segmentation"
NVUM = BUNDLES / "cxr_nvum_classification"
SMALL = {"network_def": "%small_network_def"}


@pytest.fixture
def covid_root(tmp_path) -> Path:
    """input/ct1.nii.gz and models/model.pt (the demo overlay's small network, random weights)."""
    root = tmp_path / "root"
    (root / "input").mkdir(parents=True)
    volume = np.full((24, 20, 3), -800, dtype=np.int16)
    nib.save(nib.Nifti1Image(volume, np.diag([0.8, 0.8, 2.5, 1.0])), str(root / "input" / "ct1.nii.gz"))
    (root / "models").mkdir()
    torch.manual_seed(0)
    network = bundle_parser(COVID, ["configs/inference.json", "configs/demo.json"], SMALL).get_parsed_content(
        "network_def"
    )
    torch.save({"model": network.state_dict()}, root / "models" / "model.pt")
    return root


def _infer(root: Path, **override):
    return run_bundle_workflow(COVID, ["configs/inference.json", "configs/demo.json"], "infer",
                               bundle_root=str(root), **{**SMALL, **override})  # fmt: skip


@pytest.mark.slow
def test_overwrite_false_as_text_keeps_an_existing_result(covid_root):
    out = covid_root / "eval" / "predictions"
    _infer(covid_root)  # an earlier run
    for path in out.iterdir():
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("ct1_seg.*")}
    assert sorted(before) == ["ct1_seg.json", "ct1_seg.nii.gz"]
    _infer(covid_root, overwrite="false")  # what `--overwrite false` gives through Fire
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("ct1_seg.*")} == before
    with pytest.raises(Exception) as info:
        _infer(covid_root, overwrite="flase")
    assert "'overwrite'" in repr(info.value) or "'overwrite'" in repr(info.value.__cause__)


@pytest.mark.parametrize("override, pattern", [({"image_size": 0}, r"'image_size' = 0: must be a whole number >= 1"),
                                               ({"sw_batch_size": -2}, r"'sw_batch_size' = -2"),
                                               ({"amp": "ja"}, r"'amp' = 'ja': must be true or false")])  # fmt: skip
def test_bad_numbers_and_flags_stop_inference_at_the_start(covid_root, caused_by, override, pattern):
    with pytest.raises(Exception) as info:
        _infer(covid_root, **override)
    caused_by(info.value, ValueError, pattern)
    assert not (covid_root / "eval").exists()  # nothing ran


def test_output_folder_inside_the_inputs_is_refused(covid_root, caused_by):
    with pytest.raises(Exception) as info:
        _infer(covid_root, output_dir=str(covid_root / "input" / "results"))
    caused_by(info.value, ValueError, "inside the input folder")


@pytest.mark.parametrize("bundle", [COVID, NVUM], ids=lambda b: b.name)
def test_a_new_training_run_refuses_the_checkpoints_of_an_earlier_one(bundle, tmp_path, caused_by):
    ckpt = tmp_path / "models"
    ckpt.mkdir()
    for name in ("model.pt", "last.pt"):
        (ckpt / name).write_bytes(b"an earlier run")
    # an existing dataset_dir (the data check comes first; nothing reads it before the checkpoint check refuses)
    common = {"ckpt_dir": str(ckpt), "output_dir": str(tmp_path / "eval"), "dataset_dir": str(tmp_path), **SMALL}
    workflow = bundle_workflow(bundle, ["configs/train.json", "configs/demo.json"], "train", **common)
    with pytest.raises(Exception) as info:
        workflow.initialize()
    caused_by(info.value, FileExistsError, r"\['last.pt', 'model.pt'\].*--resume_ckpt.*--ckpt_dir.*--overwrite true")
    assert (ckpt / "model.pt").read_bytes() == b"an earlier run"


@pytest.mark.parametrize("bundle", [COVID, NVUM], ids=lambda b: b.name)
def test_training_numbers_are_checked_at_the_start(bundle, tmp_path, caused_by):
    common = {"ckpt_dir": str(tmp_path / "models"), "output_dir": str(tmp_path / "eval"), **SMALL}
    workflow = bundle_workflow(bundle, ["configs/train.json", "configs/demo.json"], "train", image_size=0,
                               epochs="3", **common)  # fmt: skip
    with pytest.raises(Exception) as info:
        workflow.initialize()
    caused_by(info.value, ValueError, r"'image_size' = 0.*'epochs' = '3'")
    assert not (tmp_path / "models").exists()


def test_unknown_command_line_keys_are_refused():
    with pytest.raises(KeyError, match=r"'ouput_dir'.*output_dir"):
        bundle_workflow(COVID, ["configs/inference.json"], "infer", ouput_dir="x")
    with pytest.raises(ValueError, match="'dataset_dir' = .*must not start with"):
        bundle_workflow(COVID, ["configs/inference.json"], "infer", dataset_dir="$__import__('os').getcwd()")
    assert json.loads((COVID / "configs" / "inference.json").read_text())["overwrite"] is False
