# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from monai_ext.samplers.ranking import (
    DifficultyCategory,
    categorize,
    difficulty_order,
    difficulty_score,
    fill_missing,
    ordinal_rank,
)

NAN = math.nan
INF = math.inf


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.5, 0.1, 0.5, 0.3], [2, 0, 3, 1]),  # the two 0.5 keep their index order
        ([3.0, 3.0, 3.0], [0, 1, 2]),
        ([-1.0, 2.0, -5.0, 0.0, 2.0], [1, 3, 0, 2, 4]),
        ([7.0], [0]),
        ([], []),
    ],
)
def test_ordinal_rank(values, expected):
    assert ordinal_rank(values).tolist() == expected
    assert ordinal_rank(torch.tensor(values)).dtype == torch.int64


def test_ordinal_rank_matches_scipy_ordinal_on_ties():
    values = np.random.default_rng(0).integers(0, 20, size=500).astype(float)  # many ties
    assert ordinal_rank(values).tolist() == (rankdata(values, method="ordinal") - 1).tolist()


@pytest.mark.parametrize(
    "values, missing, expected",
    [
        ([1.0, NAN, 3.0, 2.0], "median", [1.0, 2.0, 3.0, 2.0]),
        ([1.0, NAN, 4.0, 2.0, 3.0], "median", [1.0, 2.0, 4.0, 2.0, 3.0]),  # lower median of 1, 2, 3, 4
        ([1.0, NAN, INF, 2.0], "median", [1.0, 1.0, 1.0, 2.0]),  # inf is missing too; lower median of 1, 2
        ([1.0, NAN, 3.0], "hardest", [1.0, INF, 3.0]),
        ([1.0, NAN, 3.0], "easiest", [1.0, -INF, 3.0]),
        ([NAN, NAN], "median", [0.0, 0.0]),
        ([0.5, 0.25], "median", [0.5, 0.25]),
    ],
)
def test_fill_missing(values, missing, expected):
    assert fill_missing(values, missing).tolist() == expected


@pytest.mark.parametrize(
    "loss, uncertainty, missing, expected",
    [
        # loss ranks [3, 0, 2, 1] + uncertainty ranks [1, 3, 0, 2]
        ([0.9, 0.1, 0.5, 0.3], [0.2, 0.4, 0.1, 0.3], "median", [4, 3, 2, 3]),
        ([0.9, 0.1, 0.5, 0.3], None, "median", [3, 0, 2, 1]),
        # NaN -> median 0.5, tied with sample 2 and ranked before it: loss ranks [3, 1, 2, 0]
        ([0.9, NAN, 0.5, 0.3], None, "median", [3, 1, 2, 0]),
        ([0.9, NAN, 0.5, 0.3], None, "hardest", [2, 3, 1, 0]),
        # NaN -> -inf: loss ranks [3, 0, 2, 1], uncertainty ranks [2, 3, 1, 0]
        ([0.9, NAN, 0.5, 0.3], [0.2, 0.4, 0.1, NAN], "easiest", [3 + 2, 0 + 3, 2 + 1, 1 + 0]),
    ],
)
def test_difficulty_score(loss, uncertainty, missing, expected):
    assert difficulty_score(loss, uncertainty, missing).tolist() == expected


def test_difficulty_order_ties_by_index():
    assert difficulty_order([4, 3, 2, 3]).tolist() == [2, 1, 3, 0]


@pytest.mark.parametrize(
    "loss, uncertainty, expected",
    [
        (
            [0.9, 0.1, 0.5, 0.3],  # loss ranks [3, 0, 2, 1], high = 2, 3
            [0.4, 0.1, 0.2, 0.3],  # uncertainty ranks [3, 0, 1, 2]
            ["under_represented", "well_represented", "poorly_labelled", "overfitted"],
        ),
        (
            [1.0, 2.0, 3.0, 4.0, 5.0],  # odd N: rank 2 (the median) counts as low
            [5.0, 4.0, 3.0, 2.0, 1.0],
            ["overfitted", "overfitted", "well_represented", "poorly_labelled", "poorly_labelled"],
        ),
    ],
)
def test_categorize(loss, uncertainty, expected):
    assert categorize(loss, uncertainty) == expected
    assert set(expected) <= {c.value for c in DifficultyCategory}


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: difficulty_score([1.0, 2.0], [1.0, 2.0, 3.0]), "one value per sample each, got 2 and 3"),
        (lambda: categorize([1.0, 2.0], [1.0]), "one value per sample each, got 2 and 1"),
        (lambda: ordinal_rank([[1.0, 2.0]]), r"vector of one value per sample \(shape N\), got shape \(1, 2\)"),
        (lambda: fill_missing([1.0], "nearest"), "nearest"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_large_input_matches_independent_ranks():
    n = 100_000  # timing of 1M samples: tests/samplers/test_mombs.py and scripts/bench_mombs_plan.py
    g = torch.Generator().manual_seed(0)
    loss, unc = torch.rand(n, generator=g), torch.rand(n, generator=g)
    score = difficulty_score(loss, unc)
    order = difficulty_order(score)
    assert torch.equal(torch.sort(order).values, torch.arange(n))
    assert int(score.min()) >= 0 and int(score.max()) <= 2 * (n - 1)
    assert bool((score[order][1:] >= score[order][:-1]).all())
    # independent check on a few samples: ordinal rank = #smaller values + #equal values at a lower index
    for i in torch.randint(0, n, (5,), generator=g).tolist():
        expected = 0
        for col in (loss, unc):
            expected += int((col < col[i]).sum()) + int((col[:i] == col[i]).sum())
        assert int(score[i]) == expected
