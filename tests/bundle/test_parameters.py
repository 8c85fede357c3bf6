# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Strict parsing of the bundles' scalar ids (``monai_ext.bundle.parameters``) and the folder checks
(``monai_ext.bundle.folders``)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from monai_ext.bundle import (
    as_flag,
    check_checkpoint_dir,
    check_output_outside_inputs,
    check_parameters,
    check_writable_folder,
)


@pytest.mark.parametrize("value", [True, 1, "true", "TRUE", " Yes ", "1", np.bool_(True)])
def test_as_flag_true(value):
    assert as_flag(value, "overwrite") is True


@pytest.mark.parametrize("value", [False, 0, "false", "False", "no", "NO", "0", np.bool_(False)])
def test_as_flag_false(value):
    assert as_flag(value, "overwrite") is False


@pytest.mark.parametrize("value", ["fasle", "", "on", 2, -1, 0.5, None, [True]])
def test_as_flag_refuses_other_values_naming_the_id(value):
    with pytest.raises(ValueError, match=r"'overwrite' must be a boolean.*true/false"):
        as_flag(value, "overwrite")


@pytest.mark.parametrize(
    "name, value",
    [("image_size", 0), ("image_size", -64), ("image_size", 6.5), ("image_size", "64"), ("batch_size", True),
     ("num_workers", -1), ("val_fraction", 0.0), ("val_fraction", 1.0), ("learning_rate", 0), ("amp", "maybe"),
     ("output_dir", ""), ("hard_fraction", 1.5), ("learning_rate", float("nan")), ("self_paced_growth", 0.9),
     ("self_paced_start_fraction", 0.0), ("self_paced_start_fraction", 1.5)],
)  # fmt: skip
def test_check_parameters_names_the_bad_id(name, value):
    with pytest.raises(ValueError, match=rf"'{name}' = .*must be"):
        check_parameters(**{name: value}, epochs=3)


def test_check_parameters_parses_and_lists_every_problem():
    assert check_parameters(overwrite="false", image_size=64, hard_fraction=None) == {
        "overwrite": False, "image_size": 64, "hard_fraction": None
    }  # fmt: skip
    with pytest.raises(ValueError) as info:
        check_parameters(image_size=0, epochs=-1, seed=0)
    assert "'image_size'" in str(info.value) and "'epochs'" in str(info.value) and "'seed'" not in str(info.value)
    with pytest.raises(KeyError, match="no parameter rule"):
        check_parameters(not_an_id=1)


def test_checkpoint_dir_refuses_a_new_run_over_checkpoints(tmp_path):
    ckpt = tmp_path / "models"
    check_checkpoint_dir(ckpt, None, False)  # new folder: created
    assert ckpt.is_dir()
    (ckpt / "model.pt").write_bytes(b"x")
    (ckpt / "last.pt").write_bytes(b"x")
    with pytest.raises(
        FileExistsError, match=r"\['last.pt', 'model.pt'\].*--resume_ckpt .*last.pt.*--ckpt_dir.*--overwrite"
    ):
        check_checkpoint_dir(ckpt, None, "false")
    check_checkpoint_dir(ckpt, str(ckpt / "last.pt"), False)  # resuming
    check_checkpoint_dir(ckpt, None, "true")  # explicit overwrite


def test_writable_folder_under_a_file_names_the_folder_and_reason(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(PermissionError, match=r"'ckpt_dir' = '.*a_file/models' cannot be written \(Not a directory\)"):
        check_writable_folder(tmp_path / "a_file" / "models", "ckpt_dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_writable_folder_names_the_folder_and_reason(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=r"'output_dir' = '.*locked' cannot be written \(Permission denied\)"):
            check_writable_folder(locked, "output_dir")
        with pytest.raises(PermissionError, match=r"'output_dir' = '.*locked/sub' cannot be written"):
            check_writable_folder(locked / "sub", "output_dir")
    finally:
        locked.chmod(0o700)


def test_output_inside_inputs_is_refused_through_symlinks(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    link = tmp_path / "link"
    link.symlink_to(inputs)
    for out in (inputs, inputs / "predictions", link / "predictions"):
        with pytest.raises(ValueError, match="inside the input folder"):
            check_output_outside_inputs(out, str(inputs))
    check_output_outside_inputs(tmp_path / "out", [str(inputs)])
    check_output_outside_inputs(tmp_path / "out", str(tmp_path / "list.txt"))  # not a folder: nothing to compare


def test_monai_bundle_run_command_line_keys_are_checked(tmp_path):
    from monai_ext.bundle.parameters import check_command_line, command_line_overrides

    (tmp_path / "train.json").write_text('{"output_dir": "out", "epochs": 3}')
    main = "/venv/lib/python3.11/site-packages/monai/bundle/__main__.py"
    argv = [main, "run", "--config_file", f"['{tmp_path / 'train.json'}']", "--ouput_dir", "x", "--epochs=2"]
    assert command_line_overrides(argv) == ([str(tmp_path / "train.json")], {"ouput_dir": "x", "epochs": "2"})
    with pytest.raises(KeyError, match=r"'ouput_dir'.*\['output_dir'\]"):
        check_command_line(argv)
    with pytest.raises(ValueError, match="'output_dir' = '@epochs'"):
        check_command_line([main, "run", "--config_file", str(tmp_path / "train.json"), "--output_dir", "@epochs"])
    check_command_line([main, "run", "--config_file", str(tmp_path / "train.json"), "--output_dir", "x"])
    check_command_line(["pytest", "run", "--ouput_dir", "x"])  # not monai.bundle run: nothing to check
    assert command_line_overrides(["pytest", "-q"]) is None
