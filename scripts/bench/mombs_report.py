# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS benchmark results: aggregation over seeds, the README tables, the plot and the JSON files.

Two parts, each optional: ``timing`` from :func:`scripts.bench.mombs_step.epoch_time_benchmark` and ``efficacy``
from :func:`scripts.bench.mombs_efficacy.run_efficacy` (its ``summary`` from :func:`aggregate_runs`).
:func:`write_results` writes ``timing.json``, ``efficacy.json``, ``efficacy.png`` and ``README_table.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scripts.bench.mombs_audit import CATEGORIES, CORRUPTIONS, pool_category_tables
from scripts.bench.study import summarise
from scripts.bench.results_io import save_figure, write_json

__all__ = ["RESULT_FILES", "summarise", "aggregate_runs", "results_table", "plot_efficacy", "write_results"]

RESULT_FILES = {"timing": "timing.json", "efficacy": "efficacy.json", "png": "efficacy.png", "table": "README_table.md"}
_LABELS = {"mombs": "MoMBS", "random": "random", "scl": "SCL", "ohem": "OHEM", "anti_mixed": "anti-mixed (ablation)"}
_CHECKPOINTS = ("best", "last")
_CATEGORY_SHARES = ("p_high_loss_given_corrupted", "p_high_loss_given_clean", "p_poorly_given_corrupted_high_loss",
                    "p_poorly_given_clean_high_loss", "base_rate")  # fmt: skip


def aggregate_runs(runs: Sequence[Mapping[str, Any]], baseline: str = "random") -> dict[str, Any]:
    """Per strategy: :func:`summarise` over seeds (in seed order) of the clean-test Dice of each checkpoint, of its
    per-seed difference to ``baseline`` (paired by seed), of the best validation epoch and of the training time; and,
    for runs with a category table, the tables pooled over seeds plus a :func:`summarise` of each run's shares.

    Example: ``random`` seeds 0, 1 with ``dice_best`` 0.5, 0.7 and ``mombs`` 0.6, 0.6 give
    ``summary["mombs"]["delta_dice_best"]`` mean 0.0, std 0.1414 (differences 0.1 and -0.1).

    Args:
        runs: items with ``strategy``, ``seed``, ``dice_best``, ``dice_last`` (``None`` = no scored case),
            ``best_val_epoch``, ``train_s`` and ``categories`` (or ``None``).
        baseline: strategy the deltas are taken against; left out when it is missing.

    Returns:
        ``{strategy: {"seeds", "dice_best", "dice_last", "delta_dice_best", "delta_dice_last" (not for the
        baseline), "best_val_epoch", "train_s", "categories": pooled table or None, "category_shares": {share:
        summary}}}`` in first-seen strategy order.
    """
    by_strategy: dict[str, dict[int, Mapping[str, Any]]] = {}
    for run in runs:
        by_strategy.setdefault(str(run["strategy"]), {})[int(run["seed"])] = run
    base = by_strategy.get(baseline, {})
    out: dict[str, Any] = {}
    for strategy, per_seed in by_strategy.items():
        seeds = sorted(per_seed)
        entry: dict[str, Any] = {"seeds": seeds}
        for key in _CHECKPOINTS:
            entry[f"dice_{key}"] = summarise([per_seed[s].get(f"dice_{key}") for s in seeds])
            paired = [s for s in seeds if s in base]
            if strategy != baseline and paired:
                entry[f"delta_dice_{key}"] = summarise([_diff(per_seed[s].get(f"dice_{key}"),
                                                              base[s].get(f"dice_{key}")) for s in paired])  # fmt: skip
        entry["best_val_epoch"] = summarise([per_seed[s].get("best_val_epoch") for s in seeds])
        entry["train_s"] = summarise([per_seed[s].get("train_s") for s in seeds])
        tables = [per_seed[s]["categories"] for s in seeds if per_seed[s].get("categories")]
        entry["categories"] = pool_category_tables(tables) if tables else None
        entry["category_shares"] = {k: summarise([t[k] for t in tables]) for k in _CATEGORY_SHARES} if tables else {}
        out[strategy] = entry
    return out


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else float(a) - float(b)


def _pm(summary: Mapping[str, Any] | None, digits: int = 3) -> str:
    """``mean ± std`` (the mean alone for one value), ``n/a`` without a finite mean."""
    if not summary or summary.get("mean") is None or not np.isfinite(summary["mean"]):
        return "n/a"
    std = summary.get("std")
    if std is None or not np.isfinite(std):
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {std:.{digits}f}"


def _finite(value: float | None, default: float = 0.0) -> float:
    return float(value) if value is not None and np.isfinite(value) else default


def _pct(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{100 * value:.0f} %"


def _timing_lines(timing: Mapping[str, Any], env: Mapping[str, Any]) -> list[str]:
    s = timing["settings"]
    b = timing["breakdown"]
    lines = [
        f"**Epoch time** (the bundle's `train.json` run in-process: {s['network']}, {s['dataset']}, num_workers "
        f"{s['num_workers']}, {s['n_train']} training slices at {s['image_size']} px, batch {s['batch_size']} "
        f"({s['iterations_per_epoch']} iterations), pivot epoch {s['pivot_epoch']}; validation off, final checkpoint "
        f"{s.get('final_checkpoint', 'off')}; {s['warmup']} warm-up epoch(s) then {s['repeats']} alternating timed "
        f"epochs per variant, "
        f"median; {env.get('torch_threads', '?')} torch thread(s); issue target ratio <= {timing['target_ratio']}):",
        "",
        "| variant | epoch (s) | batch loading (s) | iterations (s) | of which assessor (s) | epoch-level work (s) "
        "| ratio to random |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"mombs": f"MoMBS (assessor K = {s['num_disturbances']})", "random": "random sampling"}
    for name, median in timing["median_s"].items():
        r = b[name]
        lines.append(
            f"| {names.get(name, name)} | {median:.2f} | {r['data_s']:.2f} | {r['iterations_s']:.2f} | "
            f"{r['assessor_s']:.2f} | {r['outside_s']:.2f} | {median / timing['median_s']['random']:.3f} |"
        )
    lines += [
        "",
        f"Ratio MoMBS / random: **{timing['ratio']:.3f}** (ratio of the medians; median of the per-round ratios "
        f"{_finite(timing.get('ratio_paired'), float('nan')):.3f}; target <= {timing['target_ratio']}); the "
        f"assessor's `K` decoder re-runs take {_pct(timing['assessor_share'])} of a MoMBS epoch; without them the "
        "ratio would be "
        f"{timing['ratio_without_assessor']:.3f}. Epoch-level work = planning, difficulty CSV and map, checkpoint, "
        "logging.",
        "",
    ]
    return lines


def _network_text(network_def: Any) -> str:
    if not isinstance(network_def, Mapping):
        return "the bundle's SplitUNet"
    args = ", ".join(f"{k}={v}" for k, v in network_def.items() if k not in ("_target_", "out_channels"))
    return f"`{str(network_def.get('_target_', '?')).rsplit('.', 1)[-1]}({args})`"


def _values(summary: Mapping[str, Any]) -> str:
    return ", ".join("n/a" if v is None or not np.isfinite(v) else f"{v:.3f}" for v in summary["values"])


def _efficacy_lines(eff: Mapping[str, Any]) -> list[str]:
    s = eff["settings"]
    d = eff.get("data", {})
    kinds = ", ".join(f"{v} {k}" for k, v in d.get("corruptions", {}).items())
    lines = [
        f"**Efficacy on demo data** (bundle `train.json` + `evaluate.json` in-process; COVID CT MedSeg demo, size "
        f"{s['data_size']}, {d.get('n_lesions', '?')} lesions in the noisy masks: {kinds}; network "
        f"{_network_text(s['network_def'])}; {s['image_size']} px, {s['epochs']} epochs, pivot epoch "
        f"{s['pivot_epoch']}, batch {s['batch_size']}, K = {s['num_disturbances']}; split seed = "
        f"{s['split_seed']}; seeds {s['seeds']}; Dice = mean over test cases of the per-case Dice against the "
        "CLEAN masks (`SegmentationCaseReport`, cases with an empty clean mask left out); `model.pt` = best Dice on "
        "the noisy validation masks; mean ± sample std over seeds; Δ paired by seed):",
        "",
        "| strategy | clean-test Dice, `model.pt` | per seed | Δ vs random | clean-test Dice, `last.pt` | "
        "Δ vs random | best val epoch |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for strategy, m in eff["summary"].items():
        lines.append(
            f"| {_LABELS.get(strategy, strategy)} | {_pm(m['dice_best'])} | {_values(m['dice_best'])} | "
            f"{_pm(m.get('delta_dice_best'))} | {_pm(m['dice_last'])} | {_pm(m.get('delta_dice_last'))} | "
            f"{_pm(m['best_val_epoch'], 1)} |"
        )
    lines.append("")
    for strategy, m in eff["summary"].items():
        if m.get("categories"):
            lines += _category_lines(strategy, m)
    return lines


def _category_lines(strategy: str, m: Mapping[str, Any]) -> list[str]:
    t = m["categories"]
    sh = m["category_shares"]
    lines = [
        f"**Difficulty categories vs corrupted masks** ({_LABELS.get(strategy, strategy)}; last difficulty CSV of "
        f"each run, pooled over seeds {m['seeds']}: {t['n_slices']} training slices, {t['n_corrupted']} with a "
        f"corrupted lesion ({_pct(t['base_rate'])}); a slice is corrupted when a lesion crossing it is missing, "
        "eroded or dilated in its training mask):",
        "",
        "| category | slices | corrupted | clean | missing | eroded | dilated | corrupted share | P(category \\| "
        "corrupted) | P(category \\| clean) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for category in CATEGORIES:
        c = t["counts"][category]
        lines.append(
            f"| {category} | {c['slices']} | {c['corrupted']} | {c['clean']} | "
            + " | ".join(str(c[k]) for k in CORRUPTIONS)
            + f" | {_pct(t['corrupted_share'][category])} | {_pct(t['p_category_given_corrupted'][category])} | "
            f"{_pct(t['p_category_given_clean'][category])} |"
        )
    lines += [
        "",
        f"High loss (upper half of the loss ranks): {_pct(t['p_high_loss_given_corrupted'])} of corrupted vs "
        f"{_pct(t['p_high_loss_given_clean'])} of clean slices (per seed {_pm(sh['p_high_loss_given_corrupted'], 2)} "
        f"vs {_pm(sh['p_high_loss_given_clean'], 2)}); among high-loss slices the uncertainty calls "
        f"{_pct(t['p_poorly_given_corrupted_high_loss'])} of the corrupted and "
        f"{_pct(t['p_poorly_given_clean_high_loss'])} of the clean ones poorly labelled (per seed "
        f"{_pm(sh['p_poorly_given_corrupted_high_loss'], 2)} vs {_pm(sh['p_poorly_given_clean_high_loss'], 2)}).",
        "",
    ]
    return lines


def results_table(
    timing: Mapping[str, Any] | None = None,
    efficacy: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
) -> str:
    """Markdown for the bundle README: the epoch-time table, the efficacy table, one difficulty-category table per
    strategy with an assessor and the environment line; each only when its part is given."""
    env = environment or {}
    lines: list[str] = []
    if timing:
        lines += _timing_lines(timing, env)
    if efficacy:
        lines += _efficacy_lines(efficacy)
    if env:
        wall = ", ".join(f"{k} {v / 60:.1f} min" for k, v in env.get("wall_s", {}).items())
        lines.append(
            f"Environment: {env.get('platform', '?')}, {env.get('cpu_count', '?')} CPUs, "
            f"torch {env.get('torch', '?')}, MONAI {env.get('monai', '?')}; wall time {wall or 'n/a'}."
        )
    return "\n".join(lines).rstrip() + "\n"


def _plot_dots(ax: Any, x: float, summary: Mapping[str, Any], color: str, last: bool, label: str | None = None):
    values = [v for v in summary["values"] if v is not None and np.isfinite(v)]
    ax.scatter([x] * len(values), values, color=color, alpha=0.6, zorder=3, marker="x" if last else "o", label=label)
    if summary["mean"] is not None and np.isfinite(summary["mean"]):
        ax.errorbar([x + 0.1], [summary["mean"]], yerr=[_finite(summary["std"])], fmt="s", color=color, capsize=4,
                    markerfacecolor="white" if last else color)  # fmt: skip


def plot_efficacy(efficacy: Mapping[str, Any], png_file: str | os.PathLike) -> Path:
    """Draw the clean-test Dice per strategy (one dot per seed, square with bar = mean ± std; ``model.pt`` filled,
    ``last.pt`` crosses and open squares) and, for the first strategy with a category table, the share of corrupted and of clean
    slices in each difficulty category (pooled over seeds) into a PNG; returns its path."""
    fig = Figure(figsize=(13, 4.6), dpi=110)
    FigureCanvasAgg(fig)
    ax_dice, ax_cat = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    summary = efficacy["summary"]
    for i, (strategy, m) in enumerate(summary.items()):
        _plot_dots(ax_dice, i - 0.2, m["dice_best"], f"C{i}", False, "model.pt (best val)" if i == 0 else None)
        _plot_dots(ax_dice, i + 0.12, m["dice_last"], f"C{i}", True, "last.pt" if i == 0 else None)
    ax_dice.set_xticks(range(len(summary)), [_LABELS.get(s, s).replace(" (", "\n(") for s in summary])
    ax_dice.set_ylabel("clean-test Dice (mean over cases)")
    ax_dice.set_title(f"Clean-test Dice, seeds {efficacy['settings']['seeds']} (square: mean ± std)")
    ax_dice.legend(loc="best", fontsize="small")
    tables = [(s, m["categories"]) for s, m in summary.items() if m.get("categories")]
    if not tables:
        ax_cat.text(0.5, 0.5, "no difficulty table", ha="center", va="center", transform=ax_cat.transAxes)
    else:
        strategy, t = tables[0]
        x = np.arange(len(CATEGORIES))
        for j, (key, label) in enumerate((("p_category_given_corrupted", f"corrupted ({t['n_corrupted']})"),
                                          ("p_category_given_clean", f"clean ({t['n_slices'] - t['n_corrupted']})"))):
            heights = [_finite(t[key][c]) for c in CATEGORIES]
            ax_cat.bar(x - 0.2 + 0.4 * j, heights, width=0.4, color=("C3", "C2")[j], label=label)
        ax_cat.set_xticks(x, [c.replace("_", "\n") for c in CATEGORIES])
        ax_cat.set_ylabel("share of the group's slices")
        ax_cat.set_title(f"{_LABELS.get(strategy, strategy)} difficulty categories (last epoch, pooled)")
        ax_cat.legend(loc="upper right", fontsize="small")
    return save_figure(fig, png_file)


def write_results(
    out_dir: str | os.PathLike,
    timing: Mapping[str, Any] | None = None,
    efficacy: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``timing.json`` and ``efficacy.json`` (``nan`` as ``null``, each with ``environment``) for the parts
    given, ``efficacy.png`` with the efficacy part, and ``README_table.md`` from what is given.

    Returns:
        ``{"timing", "efficacy", "png", "table"}`` paths of the files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for key, part in (("timing", timing), ("efficacy", efficacy)):
        if part:
            paths[key] = out_dir / RESULT_FILES[key]
            data = {**dict(part), "environment": dict(environment or {})}
            write_json(data, paths[key])
    if efficacy:
        paths["png"] = plot_efficacy(efficacy, out_dir / RESULT_FILES["png"])
    paths["table"] = out_dir / RESULT_FILES["table"]
    paths["table"].write_text(results_table(timing, efficacy, environment), encoding="utf-8")
    return paths
