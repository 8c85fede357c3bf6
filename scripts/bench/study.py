# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The harness every powered efficacy study of ``make bench`` shares (``shared/DESIGN.md``, "How we show that a
method works"): tuning grids chosen on a validation split, paired seeds, mean +- std, the paired difference to the
baseline with a 95 % confidence interval, runs spread over worker processes, and the Markdown table and PNG.

A study is a list of *arms* (a method with one setting, e.g. ``"bce"`` or ``"nvum_paper"``), each trained for the
same seeds on the same data; seed ``s`` gives every arm the same data order and network initialisation, so the
per-seed difference of an arm to the baseline removes the seed-to-seed noise that both share. For ``n`` seeds with
differences ``d_s`` the interval is ``mean(d) +- t_{0.975, n-1} * std(d) / sqrt(n)`` (Student's t; exact for
normally distributed differences). An interval that excludes 0 is an effect the study can tell from seed noise.

- :func:`summarise`, :func:`paired_difference`: statistics of one arm's per-seed values and of an arm against the
  baseline.
- :func:`expand_grid`, :func:`select_best`: a tuning grid and the choice of its best point on the validation metric
  (never a test metric).
- :func:`run_parallel`: the runs of a study in worker processes (``spawn``, one torch thread each).
- :func:`comparison_table`, :func:`plot_paired`: the Markdown table and the figure of the per-seed values.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

__all__ = [
    "summarise",
    "paired_difference",
    "expand_grid",
    "select_best",
    "run_parallel",
    "format_mean_std",
    "format_difference",
    "comparison_table",
    "plot_paired",
]

logger = logging.getLogger(__name__)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and np.isfinite(v)]


def summarise(values: Sequence[float | None]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}`` of values that may be ``nan`` or ``None``; ``std`` is the sample standard
    deviation (``ddof=1``, ``nan`` for fewer than 2 values); ``nan``/``None`` values are kept in ``values`` (as
    ``nan``) and left out of the rest."""
    finite = _finite(values)
    return {
        "mean": float(np.mean(finite)) if finite else float("nan"),
        "std": float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan"),
        "n": len(finite),
        "values": [float("nan") if v is None else float(v) for v in values],
    }


def paired_difference(
    values: Mapping[int, float | None], baseline: Mapping[int, float | None], confidence: float = 0.95
) -> dict[str, Any]:
    """The per-seed difference ``values[s] - baseline[s]`` over the seeds both have (finite), its mean, sample std
    and the Student-t confidence interval of the mean.

    Example: differences ``0.01, 0.03, 0.02`` give mean 0.02, std 0.01 and, with ``t_{0.975, 2} = 4.303``, the
    interval ``0.02 +- 4.303 * 0.01 / sqrt(3) = [-0.0048, 0.0448]``.

    Args:
        values: ``{seed: value}`` of the arm.
        baseline: ``{seed: value}`` of the baseline arm.
        confidence: two-sided level of the interval, default 0.95.

    Returns:
        ``{"seeds", "differences", "mean", "std", "n", "ci_low", "ci_high", "confidence", "excludes_zero"}``; the
        interval is ``nan`` for fewer than 2 pairs.
    """
    seeds = sorted(
        s for s in values if s in baseline and len(_finite([values[s], baseline[s]])) == 2
    )  # pairs with both values finite
    diffs = [float(values[s]) - float(baseline[s]) for s in seeds]
    n = len(diffs)
    mean = float(np.mean(diffs)) if diffs else float("nan")
    std = float(np.std(diffs, ddof=1)) if n > 1 else float("nan")
    if n > 1:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / np.sqrt(n)
        low, high = mean - half, mean + half
    else:
        low = high = float("nan")
    return {
        "seeds": seeds,
        "differences": diffs,
        "mean": mean,
        "std": std,
        "n": n,
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
        "excludes_zero": bool(n > 1 and (low > 0 or high < 0)),
    }


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of a tuning grid, in row-major order of ``grid``'s keys.

    Example: ``{"lr": [0.1, 0.01], "w": [1, 3]}`` gives ``[{lr: 0.1, w: 1}, {lr: 0.1, w: 3}, {lr: 0.01, w: 1},
    {lr: 0.01, w: 3}]``; an empty grid gives ``[{}]`` (one point, nothing tuned).

    Raises:
        ValueError: an axis has no values.
    """
    empty = [k for k, v in grid.items() if len(v) == 0]
    if empty:
        raise ValueError(f"tuning grid axes {empty} have no values.")
    keys = list(grid)
    return [dict(zip(keys, point)) for point in itertools.product(*(grid[k] for k in keys))]


def select_best(trials: Sequence[Mapping[str, Any]], metric: str) -> Mapping[str, Any]:
    """The trial with the highest finite ``trial[metric]`` (a validation metric); ties go to the earlier trial.

    Raises:
        ValueError: no trial has a finite ``metric``.
    """
    scored = [(float(t[metric]), -k, t) for k, t in enumerate(trials) if _finite([t.get(metric)])]
    if not scored:
        raise ValueError(f"no trial has a finite '{metric}' (trials: {len(trials)}): every tuning run failed.")
    return max(scored, key=lambda item: item[:2])[2]


def _init_worker(num_threads: int, log_levels: dict[str, int]) -> None:
    import torch

    torch.set_num_threads(num_threads)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    for name, level in log_levels.items():
        logging.getLogger(name).setLevel(level)


def run_parallel(
    function: Callable[..., Any],
    jobs: Sequence[Mapping[str, Any]],
    workers: int = 1,
    num_threads: int = 1,
    log_names: Sequence[str] = ("scripts.bench",),
) -> list[Any]:
    """``[function(**job) for job in jobs]``, in ``workers`` ``spawn``-ed processes of ``num_threads`` torch threads
    each (``workers <= 1``: in this process, in order). Results come back in job order; the first failing job's
    exception is raised after the others finished. The workers log the ``log_names`` loggers at this process's
    levels (so that their progress lines show).

    ``function`` must be importable (a module-level function) and the jobs picklable.
    """
    if workers <= 1 or len(jobs) <= 1:
        return [function(**job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    levels = {name: logging.getLogger(name).getEffectiveLevel() for name in log_names}
    initargs = (num_threads, levels)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=initargs) as pool:
        futures = [pool.submit(function, **job) for job in jobs]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]


def format_mean_std(summary: Mapping[str, Any], digits: int = 3) -> str:
    """``"0.812 +- 0.004"`` from a :func:`summarise` result (``"n/a"`` without values; no std for one value)."""
    if not summary.get("n"):
        return "n/a"
    if not np.isfinite(summary.get("std", float("nan"))):
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} +- {summary['std']:.{digits}f}"


def format_difference(diff: Mapping[str, Any], digits: int = 3) -> str:
    """``"+0.012 [+0.004, +0.020]"`` (mean and confidence interval) from a :func:`paired_difference` result."""
    if not diff.get("n"):
        return "n/a"
    if not np.isfinite(diff.get("ci_low", float("nan"))):
        return f"{diff['mean']:+.{digits}f}"
    return f"{diff['mean']:+.{digits}f} [{diff['ci_low']:+.{digits}f}, {diff['ci_high']:+.{digits}f}]"


def comparison_table(
    arms: Mapping[str, Mapping[str, Any]],
    metrics: Mapping[str, str],
    labels: Mapping[str, str] | None = None,
    baseline: str | None = None,
) -> str:
    """A Markdown table: one row per arm, per metric its mean +- std over seeds and (against ``baseline``) the
    paired difference with its confidence interval.

    Args:
        arms: ``{arm: {metric: summarise(...) result, "delta_" + metric: paired_difference(...) result}}``.
        metrics: ``{metric key: column title}``.
        labels: row titles per arm (default the arm keys).
        baseline: the arm the differences are taken against (its difference cells stay empty); ``None``: no
            difference columns.
    """
    labels = labels or {}
    header = ["arm", "seeds"]
    for title in metrics.values():
        header.append(title)
        if baseline is not None:
            header.append(f"{title}: paired diff. to {labels.get(baseline, baseline)} [95 % CI]")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, entry in arms.items():
        first = next(iter(metrics))
        row = [labels.get(arm, arm), str(entry.get(first, {}).get("n", 0))]
        for metric in metrics:
            row.append(format_mean_std(entry.get(metric, {})))
            if baseline is not None:
                row.append("" if arm == baseline else format_difference(entry.get(f"delta_{metric}", {})))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot_paired(
    fig: Figure,
    per_seed: Mapping[str, Mapping[int, float]],
    title: str,
    ylabel: str,
    labels: Mapping[str, str] | None = None,
    position: int = 111,
) -> None:
    """Per-seed values of every arm (x: arm, one line per seed joining its arms, so that paired differences show as
    slopes) and each arm's mean, on a subplot of ``fig``."""
    labels = labels or {}
    ax = fig.add_subplot(position)
    arms = list(per_seed)
    seeds = sorted({s for values in per_seed.values() for s in values})
    for seed in seeds:
        ys = [per_seed[a].get(seed, np.nan) for a in arms]
        ax.plot(range(len(arms)), ys, "-o", color="0.6", alpha=0.6, markersize=3, linewidth=0.8)
    means = [np.nanmean(list(per_seed[a].values())) if per_seed[a] else np.nan for a in arms]
    ax.plot(range(len(arms)), means, "s", color="C3", markersize=7, label="mean over seeds")
    ax.set_xticks(range(len(arms)))
    ax.set_xticklabels([labels.get(a, a) for a in arms], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
