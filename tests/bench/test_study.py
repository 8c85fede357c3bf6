# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The shared powered-study harness: statistics worked by hand, tuning choice, parallel runs, the Markdown table."""

from __future__ import annotations

import math

import pytest
from matplotlib.figure import Figure

from scripts.bench.study import (
    comparison_table,
    expand_grid,
    format_difference,
    format_mean_std,
    paired_difference,
    plot_paired,
    run_parallel,
    select_best,
    summarise,
)


@pytest.mark.parametrize(
    "values, mean, std, n",
    [
        ([0.6, 0.7, 0.8], 0.7, 0.1, 3),
        ([0.5], 0.5, float("nan"), 1),
        ([0.2, float("nan"), 0.4], 0.3, 0.141421, 2),
        ([None, 0.4, 0.6], 0.5, 0.141421, 2),
    ],
)
def test_summarise(values, mean, std, n):
    s = summarise(values)
    assert s["mean"] == pytest.approx(mean)
    assert s["n"] == n
    assert (math.isnan(s["std"]) and math.isnan(std)) or s["std"] == pytest.approx(std, abs=1e-6)
    assert len(s["values"]) == len(values)


def test_paired_difference_worked_by_hand():
    # differences 0.01, 0.03, 0.02: mean 0.02, std 0.01; t(0.975, df=2) = 4.302653 (Student's table)
    base = {0: 0.80, 1: 0.70, 2: 0.75}
    arm = {0: 0.81, 1: 0.73, 2: 0.77}
    d = paired_difference(arm, base)
    assert d["seeds"] == [0, 1, 2] and d["n"] == 3
    assert d["differences"] == pytest.approx([0.01, 0.03, 0.02])
    assert d["mean"] == pytest.approx(0.02) and d["std"] == pytest.approx(0.01)
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((0.02 - half, 0.02 + half), abs=1e-6)
    assert not d["excludes_zero"]  # -0.0048 < 0
    # the pairing removes a shared seed effect: the same arm values against a shifted baseline
    tight = paired_difference({s: v + 0.05 for s, v in base.items()}, base)
    assert tight["std"] == pytest.approx(0.0, abs=1e-12) and tight["excludes_zero"]


def test_paired_difference_uses_only_seeds_both_have_finite():
    d = paired_difference({0: 0.5, 1: float("nan"), 2: 0.7, 3: 0.9}, {0: 0.4, 1: 0.5, 2: 0.6, 4: 0.1})
    assert d["seeds"] == [0, 2] and d["differences"] == pytest.approx([0.1, 0.1])
    one = paired_difference({0: 0.5}, {0: 0.4})
    assert one["n"] == 1 and math.isnan(one["ci_low"]) and not one["excludes_zero"]
    assert paired_difference({}, {0: 1.0})["n"] == 0


def test_expand_grid_and_select_best():
    grid = expand_grid({"lr": [0.1, 0.01], "w": [1, 3]})
    assert grid == [{"lr": 0.1, "w": 1}, {"lr": 0.1, "w": 3}, {"lr": 0.01, "w": 1}, {"lr": 0.01, "w": 3}]
    assert expand_grid({}) == [{}]
    with pytest.raises(ValueError, match=r"\['w'\] have no values"):
        expand_grid({"lr": [1], "w": []})
    trials = [{"val": 0.7, "k": 0}, {"val": float("nan"), "k": 1}, {"val": 0.8, "k": 2}, {"val": 0.8, "k": 3}]
    assert select_best(trials, "val")["k"] == 2  # the tie goes to the earlier trial; nan never wins
    with pytest.raises(ValueError, match="no trial has a finite 'val'"):
        select_best([{"val": None}], "val")


def _square_plus(x: int, offset: int = 0) -> int:
    return x * x + offset


def _fail_on_two(x: int) -> int:
    if x == 2:
        raise RuntimeError("run 2 failed")
    return x


def test_run_parallel_keeps_job_order_in_processes_and_in_line():
    jobs = [{"x": x, "offset": 1} for x in range(5)]
    assert run_parallel(_square_plus, jobs, workers=2) == [1, 2, 5, 10, 17]
    assert run_parallel(_square_plus, jobs, workers=1) == [1, 2, 5, 10, 17]
    with pytest.raises(RuntimeError, match="run 2 failed"):
        run_parallel(_fail_on_two, [{"x": x} for x in range(4)], workers=2)


def test_formats_and_comparison_table():
    assert format_mean_std(summarise([0.8, 0.9])) == "0.850 +- 0.071"
    assert format_mean_std(summarise([0.8])) == "0.800" and format_mean_std(summarise([])) == "n/a"
    d = paired_difference({0: 0.81, 1: 0.73, 2: 0.77}, {0: 0.80, 1: 0.70, 2: 0.75})
    assert format_difference(d) == "+0.020 [-0.005, +0.045]"
    arms = {
        "bce": {"auc": summarise([0.80, 0.70, 0.75])},
        "new": {"auc": summarise([0.81, 0.73, 0.77]), "delta_auc": d},
    }
    table = comparison_table(arms, {"auc": "AUROC"}, {"bce": "BCE", "new": "New"}, baseline="bce")
    lines = table.splitlines()
    assert lines[0] == "| arm | seeds | AUROC | AUROC: paired diff. to BCE [95 % CI] |"
    assert lines[2] == "| BCE | 3 | 0.750 +- 0.050 |  |"
    assert lines[3] == "| New | 3 | 0.770 +- 0.040 | +0.020 [-0.005, +0.045] |"
    assert "paired" not in comparison_table(arms, {"auc": "AUROC"})


def test_plot_paired_draws_one_line_per_seed():
    fig = Figure()
    plot_paired(fig, {"bce": {0: 0.7, 1: 0.8}, "new": {0: 0.75, 1: 0.82}}, "t", "AUROC")
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # two seed lines and the means
    assert list(ax.lines[0].get_ydata()) == [0.7, 0.75]
