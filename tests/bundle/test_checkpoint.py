# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import pytest
import torch

from monai_ext.bundle.checkpoint import check_checkpoint_fits, load_pretrained_weights


def _net(out: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, out))


def test_fitting_checkpoint_passes(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": _net(2).state_dict(), "nvum": {"memory": torch.zeros(3, 2)}}, path)
    assert check_checkpoint_fits(path, _net(2)) == path


def test_other_class_count_names_tensor_shapes_and_hint(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": _net(8).state_dict()}, path)
    with pytest.raises(
        ValueError, match=r"(?s)model.pt.*'1.weight': checkpoint \(8, 3\) vs network \(14, 3\).*--setting"
    ):
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


def test_pretrained_weights_load_matching_tensors_and_skip_the_head(tmp_path):
    torch.manual_seed(0)
    source, target = _net(2), _net(3)
    head_before = target[1].weight.detach().clone()
    path = tmp_path / "dr.pt"
    torch.save({"model": source.state_dict(), "optimizer": {}}, path)
    result = load_pretrained_weights(path, target)
    assert sorted(result["loaded"]) == ["0.bias", "0.weight"]
    assert sorted(result["skipped"]) == ["1.bias", "1.weight"]
    assert torch.equal(target[0].weight, source[0].weight) and torch.equal(target[0].bias, source[0].bias)
    assert torch.equal(target[1].weight, head_before)  # 2-class head of the checkpoint skipped
    assert load_pretrained_weights(None, target) == {"loaded": [], "skipped": []}


def test_pretrained_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": {"conv.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(ValueError, match=r"no tensor of pre-trained checkpoint .*other\.pt"):
        load_pretrained_weights(path, _net(2))
    with pytest.raises(KeyError, match=r"no 'model' entry; it holds \['weights'\]"):
        torch.save({"weights": {}}, path)
        load_pretrained_weights(path, _net(2))
    with pytest.raises(FileNotFoundError, match="pretrained_ckpt"):
        load_pretrained_weights(tmp_path / "none.pt", _net(2))
