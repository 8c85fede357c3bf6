# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ensemble members from checkpoints, and the probability average of MONAI's EnsembleEvaluator + MeanEnsembled."""

from __future__ import annotations

import pytest
import torch
from monai.engines import EnsembleEvaluator
from monai.transforms import Compose, MeanEnsembled

from monai_ext.networks import FeaturePyramidSumNet, ensemble_pred_keys, load_ensemble_members
from monai_ext.transforms import CombineStageLogitsd, combine_stage_logits


def _save(net, path):
    torch.save({"model": net.state_dict()}, path)
    return path


def test_members_load_their_checkpoint_and_monai_averages_their_probabilities(tmp_path):
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(FeaturePyramidSumNet("resnet10t", num_classes=3, stages=(4, 3)).eval())
    paths = [_save(n, tmp_path / f"m{i}.pt") for i, n in enumerate(nets)]
    torch.manual_seed(5)
    template = FeaturePyramidSumNet("resnet10t", num_classes=3, stages=(4, 3))
    members = load_ensemble_members(template, paths)
    x = torch.rand(2, 3, 64, 64)
    keys = ensemble_pred_keys(paths)
    assert keys == ["pred_0", "pred_1"]
    post = Compose([CombineStageLogitsd(keys=keys, mode="mean_prob"), MeanEnsembled(keys=keys, output_key="pred")])
    evaluator = EnsembleEvaluator(
        device="cpu",
        val_data_loader=[{"image": x, "label": torch.zeros(2, 3)}],
        networks=members,
        pred_keys=keys,
        postprocessing=post,
        decollate=True,
    )
    evaluator.run()
    with torch.no_grad():
        expected = (combine_stage_logits(nets[0](x)) + combine_stage_logits(nets[1](x))) / 2
    got = torch.stack([o["pred"] for o in evaluator.state.output])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_bad_member_lists(tmp_path):
    torch.manual_seed(0)
    net = FeaturePyramidSumNet("resnet10t", num_classes=3, stages=(4,))
    path = _save(net, tmp_path / "a.pt")
    with pytest.raises(ValueError, match="empty"):
        load_ensemble_members(net, [])
    with pytest.raises(ValueError, match="listed twice"):
        load_ensemble_members(net, [path, path])
    other = _save(FeaturePyramidSumNet("resnet10t", num_classes=3, stages=(4, 3)), tmp_path / "b.pt")
    with pytest.raises(ValueError, match="b.pt"):
        load_ensemble_members(net, [path, other])
