# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Self-paced (SCL) loss weights: closed forms, the lambda schedule, hard samples coming back, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from monai_ext.samplers import (
    MoMBSSampler,
    SamplingStrategy,
    self_paced_start,
    self_paced_threshold,
    self_paced_weights,
)

# exactly representable losses; median (0.5 quantile, linear interpolation) = (0.75 + 1.0) / 2 = 0.875
LOSS = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
LAMBDA0 = 0.875
PIVOT = 3


def _scl(strategy: str, **kwargs) -> MoMBSSampler:
    sampler = MoMBSSampler(range(len(LOSS)), batch_size=2, strategy=strategy, pivot_epoch=PIVOT, **kwargs)
    sampler.update_scores(torch.tensor(LOSS), None, epoch=PIVOT - 1)
    return sampler


def test_closed_forms_by_hand():
    assert self_paced_weights([0.2, 0.5, 1.0], 0.5, "hard").tolist() == [1.0, 0.0, 0.0]
    torch.testing.assert_close(self_paced_weights([0.2, 0.5, 1.0], 0.5, "linear"), torch.tensor([0.6, 0.0, 0.0]))
    assert self_paced_weights([-math.inf, math.inf], 1.0, "linear").tolist() == [1.0, 0.0]
    assert self_paced_weights([0.0, 0.1], 0.0, "linear").tolist() == [0.0, 0.0]
    assert self_paced_start([1.0, math.nan, 3.0, 2.0], 0.5) == 2.0  # NaN (never visited) left out
    assert math.isnan(self_paced_start([math.nan], 0.5))
    assert self_paced_threshold(0.4, 1.3, 2) == pytest.approx(0.676)
    with pytest.raises(ValueError, match="self_paced_growth must be >= 1"):
        self_paced_threshold(0.4, 0.5, 1)
    with pytest.raises(ValueError, match="NaN"):
        self_paced_weights([math.nan], 1.0, "hard")


@pytest.mark.parametrize(
    "epoch, lam, hard",
    [
        (3, LAMBDA0, [1, 1, 1, 0, 0, 0]),
        (4, LAMBDA0 * 1.3, [1, 1, 1, 1, 0, 0]),  # 1.1375
        (5, LAMBDA0 * 1.3**2, [1, 1, 1, 1, 0, 0]),  # 1.47875 < 1.5
        (6, LAMBDA0 * 1.3**3, [1, 1, 1, 1, 1, 0]),  # 1.922375
        (7, LAMBDA0 * 1.3**4, [1, 1, 1, 1, 1, 1]),  # 2.4990875: the hardest sample is back
    ],
)
def test_scl_weights_follow_the_schedule(epoch, lam, hard):
    sampler = _scl("scl_hard")
    assert sampler.loss_weights(PIVOT) is not None  # lambda_0 is fixed at the pivot
    assert sampler.self_paced_threshold(epoch) == pytest.approx(lam)
    assert sampler.loss_weights(epoch).tolist() == hard
    linear = _scl("scl_linear")
    linear.loss_weights(PIVOT)
    expected = [max(0.0, 1.0 - value / lam) for value in LOSS]
    torch.testing.assert_close(linear.loss_weights(epoch), torch.tensor(expected, dtype=torch.float32))


def test_no_weights_before_the_pivot_or_for_other_strategies():
    sampler = _scl("scl_linear")
    assert sampler.loss_weights(PIVOT - 1) is None and sampler.self_paced_start_epoch == -1
    for strategy in ("random", "mombs", "ohem", "mombs_loss"):
        assert _scl(strategy).loss_weights(PIVOT + 2) is None
    empty = MoMBSSampler(range(4), batch_size=2, strategy="scl_hard", pivot_epoch=1)
    assert empty.loss_weights(1) is None  # no loss recorded yet: weight 1


def test_hard_sample_excluded_at_the_pivot_comes_back_while_losses_change():
    sampler = _scl("scl_hard")
    assert sampler.loss_weights(PIVOT)[5] == 0.0
    # lambda_0 stays fixed although later losses are lower overall: the schedule only grows
    sampler.update_scores(torch.tensor([0.25, 0.25, 0.25, 0.25, 0.25, 2.0]), None, epoch=PIVOT)
    assert sampler.self_paced_threshold(PIVOT + 1) == pytest.approx(LAMBDA0 * 1.3)
    back = [e for e in range(PIVOT, PIVOT + 10) if sampler.loss_weights(e)[5] > 0]
    assert back and back[0] == PIVOT + 4


def test_missing_loss_takes_the_median():
    sampler = MoMBSSampler(range(5), batch_size=2, strategy="scl_hard", pivot_epoch=1)
    sampler.update_scores(torch.tensor([0.25, 0.5, math.nan, 1.0, 2.0]), None)
    # lambda_0 = median of the 4 finite losses = 0.75; the NaN becomes the lower median 0.5 < 0.75
    assert sampler.self_paced_threshold(1) == 0.75
    assert sampler.loss_weights(1).tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_lambda0_round_trips_through_a_weights_only_checkpoint(tmp_path):
    sampler = _scl("scl_linear", self_paced_growth=2.0)
    sampler.loss_weights(PIVOT)
    sampler.set_epoch(PIVOT + 1)
    torch.save({"sampler": sampler.state_dict()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)["sampler"]
    restored = MoMBSSampler(range(len(LOSS)), batch_size=2, strategy="scl_linear", pivot_epoch=PIVOT,
                            self_paced_growth=2.0)  # fmt: skip
    restored.load_state_dict(state)
    assert restored.self_paced_lambda0 == LAMBDA0 and restored.self_paced_start_epoch == PIVOT
    torch.testing.assert_close(restored.loss_weights(PIVOT + 2), sampler.loss_weights(PIVOT + 2))
    assert restored.self_paced_threshold(PIVOT + 2) == LAMBDA0 * 4


def test_old_state_dict_without_lambda0_loads_and_restarts_the_schedule_with_a_warning():
    sampler = _scl("scl_hard")
    sampler.set_epoch(PIVOT + 2)
    old = {k: v for k, v in sampler.state_dict().items() if not k.startswith("self_paced")}
    MoMBSSampler(range(len(LOSS)), batch_size=2, pivot_epoch=PIVOT).load_state_dict(old)  # mombs: silent
    restored = MoMBSSampler(range(len(LOSS)), batch_size=2, strategy="scl_hard", pivot_epoch=PIVOT)
    with pytest.warns(UserWarning, match="restarts its self-paced schedule"):
        restored.load_state_dict(old)
    assert restored.self_paced_start_epoch == -1
    assert restored.self_paced_threshold(PIVOT + 3) == LAMBDA0  # lambda_0 from the loaded losses, fixed now
    assert restored.self_paced_start_epoch == PIVOT + 3


def test_strategy_properties():
    weighted = {s.value for s in SamplingStrategy if s.uses_loss_weights}
    assert weighted == {"scl_hard", "scl_linear"}
    assert {s.value for s in SamplingStrategy if s.plans_by_difficulty} == {
        "mombs", "mombs_loss", "mombs_uncertainty", "anti_mixed"
    }  # fmt: skip
    assert {s.value for s in SamplingStrategy} == {
        "random", "mombs", "mombs_loss", "mombs_uncertainty", "anti_mixed", "scl_hard", "scl_linear", "ohem"
    }  # fmt: skip
