# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import math
import time
from collections import Counter

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import DataLoader, Dataset
from monai.handlers import CheckpointLoader, CheckpointSaver
from scipy.stats import rankdata

from monai_ext.samplers import MoMBSSampler, SamplingStrategy

NAN = math.nan
# difficulty ranks (loss only): sample 0->6, 1->0, 2->4, 3->2, 4->7, 5->1, 6->5, 7->3; easiest first: 1 5 3 7 2 6 0 4
TOY_LOSS = [0.7, 0.1, 0.5, 0.3, 0.8, 0.2, 0.6, 0.4]
TOY_RANK = [6, 0, 4, 2, 7, 1, 5, 3]


def _sampler(n: int, batch_size: int, loss=None, uncertainty=None, **kwargs) -> MoMBSSampler:
    kwargs.setdefault("pivot_epoch", 1)
    sampler = MoMBSSampler(range(n), batch_size=batch_size, **kwargs)
    if loss is not None:
        sampler.update_scores(torch.tensor(loss, dtype=torch.float32), uncertainty, epoch=0)
    return sampler


def _batches(sampler: MoMBSSampler, epoch: int) -> list[tuple[int, ...]]:
    sampler.set_epoch(epoch)
    order = list(sampler)
    assert len(order) == len(sampler)
    b = sampler.batch_size
    return [tuple(order[i : i + b]) for i in range(0, len(order), b)]


def _identity(n: int) -> list[float]:
    return [float(i) for i in range(n)]  # sample i has difficulty rank i


@pytest.mark.parametrize(
    "strategy, layout, expected, sums",
    [
        ("mombs", "mirror", {(1, 4, 5, 0), (3, 6, 7, 2)}, [14, 14]),  # ranks (0,7,1,6) and (2,5,3,4)
        ("mombs", "serpentine", {(1, 7, 2, 4), (5, 3, 6, 0)}, [14, 14]),  # ranks (0,3,4,7) and (1,2,5,6)
        ("anti_mixed", "mirror", {(1, 5, 3, 7), (2, 6, 0, 4)}, [6, 22]),  # ranks (0,1,2,3) and (4,5,6,7)
    ],
)
def test_toy_n8_b4(strategy, layout, expected, sums):
    sampler = _sampler(8, 4, TOY_LOSS, strategy=strategy, layout=layout)
    for epoch in (1, 2, 3):
        batches = _batches(sampler, epoch)
        assert set(batches) == expected and len(batches) == 2
        assert sorted(sum(TOY_RANK[i] for i in batch) for batch in batches) == sums


def test_mirror_with_uncertainty_and_tied_difficulty():
    # difficulty = loss ranks [3, 0, 2, 1] + uncertainty ranks [1, 3, 0, 2] = [4, 3, 2, 3]; easiest first 2 1 3 0
    sampler = _sampler(4, 2, [0.9, 0.1, 0.5, 0.3], torch.tensor([0.2, 0.4, 0.1, 0.3]))
    assert set(_batches(sampler, 1)) == {(2, 0), (1, 3)}


def test_serpentine_n12_b4_equal_sums():
    sampler = _sampler(12, 4, _identity(12), layout="serpentine")
    assert set(_batches(sampler, 1)) == {(0, 5, 6, 11), (1, 4, 7, 10), (2, 3, 8, 9)}  # sums 22, 22, 22


@pytest.mark.parametrize("n, batch_size", [(64, 8), (70, 8), (33, 4)])
def test_mirror_full_batches_have_equal_rank_sums(n, batch_size):
    rng = np.random.default_rng(n)
    loss, unc = rng.random(n), rng.integers(0, 5, n).astype(float)  # ties in the uncertainty
    # difficulty ranks computed independently of the package
    difficulty = (rankdata(loss, method="ordinal") - 1) + (rankdata(unc, method="ordinal") - 1)
    drank = rankdata(difficulty, method="ordinal") - 1
    sampler = _sampler(n, batch_size, loss.tolist(), torch.tensor(unc))
    batches = _batches(sampler, 7)
    full = [b for b in batches if len(b) == batch_size]
    assert len(full) == n // batch_size
    sums = [int(sum(drank[i] for i in b)) for b in full]
    assert np.var(sums) == 0 and sums[0] == batch_size * (n - 1) // 2
    partial = [b for b in batches if len(b) < batch_size]
    rest = n % batch_size
    if rest:  # the partial minibatch, last, holds the middle difficulty ranks
        assert batches[-1] == partial[0]
        start = (n - rest) // 2
        assert sorted(int(drank[i]) for i in partial[0]) == list(range(start, start + rest))


@pytest.mark.parametrize(
    "strategy, layout", [("mombs", "mirror"), ("mombs", "serpentine"), ("random", "mirror"), ("anti_mixed", "mirror")]
)
@pytest.mark.parametrize("n, batch_size", [(8, 4), (11, 4), (13, 3), (10, 1), (3, 5)])
def test_each_sample_exactly_once_per_epoch(strategy, layout, n, batch_size):
    sampler = _sampler(n, batch_size, _identity(n)[::-1], strategy=strategy, layout=layout)
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        assert sorted(sampler) == list(range(n))
        assert len(sampler) == n


def test_odd_n_middle_sample_last_without_duplicates():
    batches = _batches(_sampler(9, 4, _identity(9)), 1)
    assert set(batches[:2]) == {(0, 8, 1, 7), (2, 6, 3, 5)}
    assert batches[2] == (4,)


@pytest.mark.parametrize(
    "strategy, expected_blocks",
    [("mombs", {(0, 9, 1, 8), (2, 7, 3, 6)}), ("anti_mixed", {(0, 1, 2, 3), (6, 7, 8, 9)})],
)
def test_drop_last_drops_the_middle_partial_batch(strategy, expected_blocks):
    sampler = _sampler(10, 4, _identity(10), strategy=strategy, drop_last=True)
    assert len(sampler) == 8
    assert set(_batches(sampler, 1)) == expected_blocks  # samples 4 and 5 (the partial batch) are left out


def test_drop_last_random_has_no_duplicates():
    sampler = _sampler(10, 4, strategy="random", drop_last=True)
    sampler.set_epoch(3)
    order = list(sampler)
    assert len(order) == 8 and len(set(order)) == 8


def test_same_seed_and_epoch_same_plan_other_epochs_other_block_order():
    a, b = _sampler(64, 4, _identity(64), seed=7), _sampler(64, 4, _identity(64), seed=7)
    assert _batches(a, 20) == _batches(b, 20)
    epoch20, epoch21 = _batches(a, 20), _batches(a, 21)
    assert epoch20 != epoch21 and set(epoch20) == set(epoch21)  # same mirror blocks, another order
    assert _batches(_sampler(64, 4, _identity(64), seed=8), 20) != epoch20


def test_before_pivot_random_then_mixed():
    sampler = _sampler(64, 4, _identity(64), pivot_epoch=5, seed=3)
    baseline = _sampler(64, 4, _identity(64), strategy="random", seed=3)
    for epoch in (1, 4):
        before = _batches(sampler, epoch)
        assert before == _batches(baseline, epoch)
        assert np.var([sum(b) for b in before]) > 0
        assert sorted(i for b in before for i in b) == list(range(64))
    assert {sum(b) for b in _batches(sampler, 5)} == {126}  # 2 * 63


def test_no_scores_after_pivot_warns_and_samples_at_random():
    sampler = _sampler(16, 4, pivot_epoch=2)
    with pytest.warns(UserWarning, match="no scores were given yet"):
        batches = _batches(sampler, 2)
    assert sorted(i for b in batches for i in b) == list(range(16))
    sampler.update_scores(torch.full((16,), NAN))  # all NaN: still no scores
    with pytest.warns(UserWarning, match="every score is NaN"):
        _batches(sampler, 3)


def test_nan_score_is_ranked_at_the_median():
    # NaN -> 0.5 (median of the others), tied with sample 2 and ranked before it; easiest first 5 3 7 1 2 6 0 4
    loss = [0.7, NAN, 0.5, 0.3, 0.8, 0.2, 0.6, 0.4]
    assert set(_batches(_sampler(8, 4, loss), 1)) == {(5, 4, 3, 0), (7, 6, 1, 2)}


def test_loss_only_when_uncertainty_never_recorded():
    sampler = _sampler(8, 4, TOY_LOSS, torch.full((8,), NAN))
    assert set(_batches(sampler, 1)) == {(1, 4, 5, 0), (3, 6, 7, 2)}


# loss ranks: 9 (0.0) < 2 < 6 < 4 < 8 < 0 < 7 < 3 < 5 < 1 (0.9); k = floor(0.2 * 10) = 2
SWAP_LOSS = [0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4, 0.0]


def test_ohem_visits_exactly_the_top_fraction_twice():
    sampler = _sampler(10, 4, SWAP_LOSS, strategy="ohem", hard_fraction=0.2)
    assert len(sampler) == 12 and sampler.epoch_size == 12  # N + k, k = 2
    orders = []
    for epoch in (1, 2, 3):
        sampler.set_epoch(epoch)
        order = list(sampler)
        counts = Counter(order)
        assert len(order) == len(sampler) == 12
        assert {i for i, c in counts.items() if c == 2} == {1, 5}  # the two highest losses
        assert set(counts) == set(range(10)) and all(counts[i] == 1 for i in set(range(10)) - {1, 5})
        orders.append(order)
    assert orders[0] != orders[1]  # random order, another one every epoch


def test_ohem_before_the_pivot_repeats_k_random_samples_with_the_same_length():
    sampler = _sampler(10, 4, SWAP_LOSS, strategy="ohem", hard_fraction=0.2, pivot_epoch=5)
    repeated = []
    for epoch in (1, 2, 3, 4):
        sampler.set_epoch(epoch)
        counts = Counter(sampler)
        assert sum(counts.values()) == len(sampler) == 12 and set(counts) == set(range(10))
        twice = {i for i, c in counts.items() if c == 2}
        assert len(twice) == 2
        repeated.append(twice)
    assert any(t != {1, 5} for t in repeated)  # not the top-loss samples: random before the pivot


@pytest.mark.parametrize("world, batch_size, drop_last", [(2, 2, False), (2, 3, False), (2, 2, True)])
def test_ohem_simulated_ranks_split_the_n_plus_k_plan(world, batch_size, drop_last):
    n = 21  # k = floor(0.1 * 21) = 2: the losses 20 and 19 are the highest
    loss = _identity(n)
    samplers = [
        _sampler(n, batch_size, loss, strategy="ohem", num_replicas=world, rank=r, drop_last=drop_last)
        for r in range(world)
    ]
    lengths = {len(s) for s in samplers}
    assert len(lengths) == 1  # every rank runs the same number of iterations
    for s in samplers:
        s.set_epoch(3)
    shares = [list(s) for s in samplers]
    assert all(len(share) == len(samplers[0]) for share in shares)
    union = Counter(i for share in shares for i in share)
    global_batches = samplers[0].global_batches(3)
    assert sorted(union.elements()) == sorted(i for batch in global_batches for i in batch)
    if not drop_last:
        planned = Counter(i for batch in samplers[0].plan(3)[0].tolist() for i in batch)
        planned.update(samplers[0].plan(3)[1].tolist())
        assert planned == Counter({**{i: 1 for i in range(n)}, 19: 2, 20: 2})  # N + k before padding
        assert sum(union.values()) == len(samplers[0]) * world >= n + 2


def test_ohem_default_fraction_and_zero_fraction():
    assert _sampler(10, 5, SWAP_LOSS, strategy="ohem").hard_fraction == 0.1
    assert len(_sampler(10, 5, SWAP_LOSS, strategy="ohem")) == 11
    sampler = _sampler(10, 5, SWAP_LOSS, strategy="ohem", hard_fraction=0.0)
    sampler.set_epoch(1)
    assert sorted(sampler) == list(range(10))


@pytest.mark.parametrize("strategy", ["scl_hard", "scl_linear"])
def test_scl_samples_every_sample_once_at_random(strategy):
    sampler = _sampler(10, 4, SWAP_LOSS, strategy=strategy)
    baseline = _sampler(10, 4, SWAP_LOSS, strategy="random")
    for epoch in (1, 2):
        assert _batches(sampler, epoch) == _batches(baseline, epoch)
        assert len(sampler) == 10


# TOY_LOSS ranks [6, 0, 4, 2, 7, 1, 5, 3]; uncertainty ranks of TOY_UNC: [0, 7, 1, 6, 2, 5, 3, 4]
TOY_UNC = [0.0, 0.7, 0.1, 0.6, 0.2, 0.5, 0.3, 0.4]


@pytest.mark.parametrize(
    "strategy, ranks",
    [
        ("mombs_loss", [6, 0, 4, 2, 7, 1, 5, 3]),
        ("mombs_uncertainty", [0, 7, 1, 6, 2, 5, 3, 4]),
        ("mombs", [6, 7, 5, 8, 9, 6, 8, 7]),
    ],
)
def test_ablation_orders_follow_their_own_columns(strategy, ranks):
    sampler = _sampler(8, 4, TOY_LOSS, torch.tensor(TOY_UNC), strategy=strategy)
    np.testing.assert_array_equal(sampler.difficulty().numpy(), ranks)
    order = torch.argsort(torch.tensor(ranks, dtype=torch.float64), stable=True).tolist()  # easiest first
    mirror = {tuple(order[j] for j in (0, 7, 1, 6)), tuple(order[j] for j in (2, 5, 3, 4))}
    assert set(_batches(sampler, 1)) == mirror


def test_mombs_uncertainty_without_uncertainty_samples_at_random():
    sampler = _sampler(8, 4, TOY_LOSS, strategy="mombs_uncertainty", seed=3)
    with pytest.warns(UserWarning, match="no scores were given yet"):
        batches = _batches(sampler, 1)
    assert batches == _batches(_sampler(8, 4, TOY_LOSS, strategy="random", seed=3), 1)


@pytest.mark.parametrize("strategy", ["mombs", "scl_hard"])
def test_hard_fraction_ignored_by_other_strategies_warns(strategy):
    with pytest.warns(UserWarning, match=f"hard_fraction=0.3 is ignored by strategy '{strategy}' \\(only ohem\\)"):
        _sampler(10, 5, strategy=strategy, hard_fraction=0.3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"pivot_epoch": 0}, "pivot_epoch must be >= 1"),
        ({"strategy": "ohem", "hard_fraction": 0.6}, r"hard_fraction must lie in \[0, 0.5\], got 0.6"),
        ({"strategy": "scl", "hard_fraction": None}, "Unsupported option 'scl'"),
        ({"self_paced_start_fraction": 0.0}, r"self_paced_start_fraction must lie in \(0, 1\], got 0.0"),
        ({"self_paced_growth": 0.9}, "self_paced_growth must be >= 1"),
        ({"drop_last": True, "batch_size": 12, "strategy": "ohem"}, r"drop_last=True leaves no minibatch: 11 samples"),
        ({"strategy": "mixed"}, "mixed"),
        ({"layout": "zigzag"}, "zigzag"),
        ({"num_replicas": 2, "rank": 2}, r"rank must lie in \[0, num_replicas\), got rank=2"),
        ({"num_replicas": 12}, r"less than the number of participating ranks \(10 samples, 12 ranks\)"),
        ({"drop_last": True, "batch_size": 11}, "drop_last=True leaves no minibatch"),
    ],
)
def test_bad_init(kwargs, match):
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        MoMBSSampler(range(10), **kwargs)


def test_update_scores_wrong_length():
    with pytest.raises(ValueError, match=r"uncertainty must hold one value per sample \(4\), got 3"):
        _sampler(4, 2).update_scores(torch.zeros(4), torch.zeros(3))


def test_state_dict_round_trip_weights_only(tmp_path):
    sampler = _sampler(8, 4, TOY_LOSS, torch.tensor([0.5, NAN, 0.25, 0.0, 1.0, 2.0, 3.0, 4.0]), seed=5)
    sampler.update_scores(torch.tensor(TOY_LOSS), torch.tensor([0.5, NAN, 0.25, 0.0, 1.0, 2.0, 3.0, 4.0]), epoch=12)
    sampler.set_epoch(13)
    torch.save({"sampler": sampler.state_dict()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)["sampler"]
    restored = _sampler(8, 4, seed=0)
    restored.load_state_dict(state)
    assert restored.epoch == 13 and restored.seed == 5 and restored.scores_epoch == 12
    assert torch.equal(restored.loss, torch.tensor(TOY_LOSS))
    assert torch.isnan(restored.uncertainty[1]) and restored.uncertainty[4] == 1.0
    assert list(restored) == list(sampler)
    with pytest.raises(ValueError, match="checkpoint scores hold 8 samples but this sampler has 9"):
        _sampler(9, 4).load_state_dict(state)
    with pytest.raises(KeyError, match=r"misses \['seed'\]"):
        restored.load_state_dict({k: v for k, v in state.items() if k != "seed"})


def test_checkpoint_saver_and_loader_round_trip(tmp_path):
    sampler = _sampler(8, 4, TOY_LOSS, seed=2)
    engine = Engine(lambda e, b: None)
    CheckpointSaver(str(tmp_path), save_dict={"sampler": sampler}, save_final=True).attach(engine)
    engine.run([0], max_epochs=1)
    (path,) = tmp_path.glob("*.pt")
    restored = _sampler(8, 4)
    loader = Engine(lambda e, b: None)
    CheckpointLoader(str(path), load_dict={"sampler": restored}).attach(loader)
    loader.run([0], max_epochs=1)
    assert torch.equal(restored.loss, torch.tensor(TOY_LOSS)) and restored.seed == 2
    assert _batches(restored, 4) == _batches(sampler, 4)


def test_simulated_ranks_share_every_global_batch():
    n, b, world = 22, 2, 3  # global batch 6: 3 full ones, then the 4 middle ranks 9..12 padded to 6
    samplers = [_sampler(n, b, _identity(n), num_replicas=world, rank=r, seed=1) for r in range(world)]
    locals_ = [_batches(s, 4) for s in samplers]
    assert [len(s) for s in samplers] == [8, 8, 8]
    for i in range(3):  # full global batches: disjoint pairs (rank sum 21 each), global sum 63
        shares = [locals_[r][i] for r in range(world)]
        assert all(sum(share) == 21 for share in shares)
        assert len({x for share in shares for x in share}) == 6
    last = [x for r in range(world) for x in locals_[r][3]]
    assert sorted(last[:4]) == [9, 10, 11, 12] and len(last) == 6  # two pads from the first global batch
    seen = [x for r in range(world) for batch in locals_[r] for x in batch]
    assert set(seen) == set(range(n)) and len(seen) == n + 2
    assert samplers[0].global_batches(4)[-1] == last


def test_dataloader_with_the_same_batch_size_yields_the_planned_batches():
    datalist = [{"index": i, "x": torch.tensor([float(i)])} for i in range(10)]
    sampler = _sampler(10, 4, _identity(10))
    sampler.set_epoch(2)
    loader = DataLoader(Dataset(datalist), batch_size=4, sampler=sampler, shuffle=False, num_workers=0)
    assert [batch["index"].tolist() for batch in loader] == sampler.global_batches()


def test_planning_one_million_samples_is_fast():
    n = 1_000_000
    g = torch.Generator().manual_seed(0)
    sampler = MoMBSSampler(range(n), batch_size=32, pivot_epoch=1)
    sampler.update_scores(torch.rand(n, generator=g), torch.rand(n, generator=g))
    sampler.set_epoch(1)
    start = time.perf_counter()
    local = sampler.local_indices()
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0  # loose: scripts/bench_mombs_plan.py prints the precise time
    assert local.numel() == n and torch.equal(torch.sort(local).values, torch.arange(n))


def test_empty_dataset_names_the_training_datalist():
    with pytest.raises(ValueError, match="empty dataset: the training datalist holds no sample"):
        MoMBSSampler([], batch_size=2)


@pytest.mark.parametrize(
    "strategy, uses",
    [
        ("mombs", True),
        ("mombs_uncertainty", True),
        ("anti_mixed", True),
        ("mombs_loss", False),
        ("random", False),
        ("scl_hard", False),
        ("scl_linear", False),
        ("ohem", False),
    ],
)
def test_which_strategies_rank_by_uncertainty(strategy, uses):
    assert SamplingStrategy(strategy).uses_uncertainty is uses
    sampler = MoMBSSampler(range(8), batch_size=4, strategy=strategy, pivot_epoch=20)
    # epoch e's scores plan epoch e + 1: the uncertainty of epochs 19, 20, ... is used, that of 18 is not
    assert [sampler.needs_uncertainty(e) for e in (1, 18, 19, 20)] == [False, False, uses, uses]
    assert MoMBSSampler(range(8), batch_size=4, strategy=strategy, pivot_epoch=1).needs_uncertainty(1) is uses
