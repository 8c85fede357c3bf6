# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Stage-head combinations worked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from monai_ext.transforms import CombineStageLogitsd, combine_stage_logits


def _sig(v):
    return 1 / (1 + math.exp(-v))


def test_three_combinations_by_hand():
    z = torch.tensor([[1.0, -2.0], [0.0, 1.0], [-1.0, 0.5]]).T  # C=2 x S=3 stages (deepest first)
    mean = combine_stage_logits(z, "mean_prob")
    assert mean.tolist() == pytest.approx([(_sig(1) + _sig(0) + _sig(-1)) / 3, (_sig(-2) + _sig(1) + _sig(0.5)) / 3])
    assert combine_stage_logits(z, "sum_logits").tolist() == pytest.approx([_sig(0.0), _sig(-0.5)])
    assert combine_stage_logits(z, "deepest").tolist() == pytest.approx([_sig(1.0), _sig(-2.0)])
    batch = combine_stage_logits(torch.stack([z, -z]), "sum_logits")
    assert batch.shape == (2, 2) and batch[1].tolist() == pytest.approx([_sig(0.0), _sig(0.5)])
    with pytest.raises(ValueError, match="mean_prob"):
        combine_stage_logits(z, "max")


def test_dictionary_transform():
    z = torch.tensor([[2.0], [0.0]])  # C=2 x S=1
    out = CombineStageLogitsd(keys="pred", mode="deepest")({"pred": z, "label": torch.ones(2)})
    assert out["pred"].tolist() == pytest.approx([_sig(2.0), 0.5]) and out["label"].tolist() == [1.0, 1.0]
