# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import pytest
import torch

from monai_ext.bundle.checkpoint import check_checkpoint_fits


def _net(out: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, out))


def test_fitting_checkpoint_passes(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": _net(2).state_dict(), "nvum": {"memory": torch.zeros(3, 2)}}, path)
    assert check_checkpoint_fits(path, _net(2)) == path


def test_other_class_count_names_tensor_shapes_and_hint(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": _net(8).state_dict()}, path)
    with pytest.raises(ValueError, match=r"(?s)model.pt.*'1.weight': checkpoint \(8, 3\) vs network \(14, 3\).*--setting"):
        check_checkpoint_fits(path, _net(14), hint="Set --setting to the one used for training.")


def test_missing_file_and_entry(tmp_path):
    with pytest.raises(FileNotFoundError, match="Train the bundle first"):
        check_checkpoint_fits(tmp_path / "none.pt", _net(2))
    path = tmp_path / "model.pt"
    torch.save({"student": _net(2).state_dict()}, path)
    with pytest.raises(KeyError, match=r"no 'model' entry; it holds \['student'\]"):
        check_checkpoint_fits(path, _net(2))
    torch.save({"model": torch.nn.Linear(4, 3).state_dict()}, path)
    with pytest.raises(ValueError, match="missing in the checkpoint"):
        check_checkpoint_fits(path, _net(2))
