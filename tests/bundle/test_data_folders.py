# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Missing input data folders (``monai_ext.bundle.check_data_folders``): the demo data's folders say the command
that generates them, in a bundle copied outside the repository too."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from monai_ext.bundle import check_data_folders
from monai_ext.bundle.workflow import bundle_workflow

BUNDLES_DIR = Path(__file__).resolve().parents[2] / "bundles"


def test_existing_and_optional_folders_pass(tmp_path):
    (tmp_path / "demo_data" / "nih").mkdir(parents=True)
    (tmp_path / "mine").mkdir()
    demo = tmp_path / "demo_data"
    check_data_folders(demo, dataset_dir=demo / "nih", test_dir=str(tmp_path / "mine"), dadam_dir=None,
                       box_sources={"nih": demo / "nih"})  # fmt: skip


def test_missing_demo_datasets_give_the_demo_command(tmp_path):
    demo = tmp_path / "demo_data"
    (demo / "nih").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as info:
        check_data_folders(str(demo), dataset_dir=f"{demo}/mimic_cxr_lt",
                           box_sources={"nih": f"{demo}/nih", "vindr": f"{demo}/./vindr"})  # fmt: skip
    message = str(info.value)
    assert f"'dataset_dir' = '{demo}/mimic_cxr_lt' is not a folder" in message
    assert f"'box_sources#vindr' = '{demo}/vindr' is not a folder" in message
    assert "box_sources#nih" not in message  # it exists
    assert f"python -m monai_ext.demo --out {demo} --only mimic_cxr_lt vindr\n" in message
    assert message.endswith("--dataset_dir <folder>, --box_sources#vindr <folder>.")


def test_a_missing_folder_of_ones_own_gets_no_demo_command(tmp_path):
    demo = tmp_path / "demo_data"
    for folder in (tmp_path / "data" / "nih", demo / "not_a_demo_dataset"):
        with pytest.raises(FileNotFoundError) as info:
            check_data_folders(demo, dataset_dir=folder)
        assert f"'dataset_dir' = '{folder}' is not a folder" in str(info.value)
        assert "monai_ext.demo" not in str(info.value)


def test_a_bundle_outside_the_repository_says_how_to_make_its_demo_data(tmp_path):
    bundle = shutil.copytree(BUNDLES_DIR / "rop_meta_softlabel_classification", tmp_path / "rop",
                             ignore=shutil.ignore_patterns("models*", "eval*", "demo_data", "dadam"))  # fmt: skip
    cases = [(["configs/train.json"], "rop"), (["configs/train.json", "configs/pretrain_dr.json"], "eyepacs")]
    for configs, dataset in cases:
        workflow = bundle_workflow(bundle, configs, "train")
        with pytest.raises(RuntimeError) as info:  # MONAI's wrapper of the expression's error
            workflow.initialize()
        cause = info.value.__cause__
        assert isinstance(cause, FileNotFoundError), info.value
        assert f"python -m monai_ext.demo --out {bundle / 'demo_data'} --only {dataset}\n" in str(cause)
        assert not list(bundle.glob("models*")) and not list(bundle.glob("eval*"))  # stopped before writing


@pytest.mark.parametrize("name", sorted(p.name for p in BUNDLES_DIR.iterdir() if (p / "configs").is_dir()))
def test_bundle_defaults_stay_inside_the_bundle_and_check_their_data(name):
    configs = BUNDLES_DIR / name / "configs"
    for path in sorted(set(configs.glob("*.json")) - {configs / "metadata.json"}):
        assert not re.search(r"(^|['/])\.\./", path.read_text()), f"{path.name} names a path outside the bundle"
    train = json.loads((configs / "train.json").read_text())
    assert train["demo_dir"] == "$@bundle_root + '/demo_data'"
    assert train["dataset_dir"].startswith("$@demo_dir + '/")
    steps = train["training_setup"]
    k = next(i for i, step in enumerate(steps) if "check_parameters(" in step)
    assert steps[k + 1] == "$monai_ext.bundle.check_data_folders(@demo_dir, dataset_dir=@dataset_dir)"
