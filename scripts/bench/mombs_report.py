# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS benchmark results: the README tables, the plot and the JSON files.

Two parts, each optional: ``timing`` from :func:`scripts.bench.mombs_step.epoch_time_benchmark` and ``study`` from
:func:`scripts.bench.mombs_study.run_study` (its ``summary`` from
:func:`scripts.bench.mombs_study.aggregate_study`). :func:`write_results` writes ``timing.json``, ``study.json``,
``study.png`` and ``README_table.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scripts.bench import study
from scripts.bench.results_io import save_figure, write_json

__all__ = ["RESULT_FILES", "STRATEGY_LABELS", "deviation_summary", "results_table", "plot_study", "write_results"]

RESULT_FILES = {"timing": "timing.json", "study": "study.json", "png": "study.png", "table": "README_table.md"}
STRATEGY_LABELS = {
    "random": "random (baseline)",
    "scl_hard": "SCL, hard",
    "scl_linear": "SCL, linear",
    "ohem": "OHEM",
    "mombs_loss": "MoMBS, loss only",
    "mombs_uncertainty": "MoMBS, uncertainty only",
    "mombs": "MoMBS",
    "anti_mixed": "anti-mixed (ablation)",
    "mombs_assess3": "MoMBS, assessed every 3rd epoch (deviation)",
    "mombs_mutual_information": "MoMBS, uncertainty = mutual information (not Eq. 1)",
    "random_clean": "random on CLEAN training masks (learnability check)",
}


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
    dev = timing.get("deviation")
    if dev:
        lines += [
            f"With the assessor's documented deviation `assess_every = {dev['assess_every']}` (uncertainty refreshed "
            f"once every {dev['assess_every']} used epochs; a separate run of the same benchmark, "
            f"{dev['repeats']} timed epochs, ratio of the MEANS because only some epochs are assessed): MoMBS "
            f"{dev['mean_s']['mombs']:.2f} s, random {dev['mean_s']['random']:.2f} s, "
            f"ratio **{dev['ratio_of_means']:.3f}**.",
            "",
        ]
    return lines


def deviation_summary(timing: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an ``assess_every > 1`` epoch-time result that the report shows: the mean epoch time of each
    variant over the timed epochs and their ratio (a median would pick an assessed or an unassessed epoch)."""
    means = {name: float(np.mean(values)) for name, values in timing["epoch_s"].items()}
    return {
        "assess_every": int(timing["settings"]["assess_every"]),
        "repeats": len(timing["epoch_s"]["mombs"]),
        "epoch_s": {name: list(map(float, values)) for name, values in timing["epoch_s"].items()},
        "mean_s": means,
        "ratio_of_means": means["mombs"] / means["random"],
    }


def _study_lines(result: Mapping[str, Any]) -> list[str]:
    plan = result["plan"]
    data = result.get("data", {})
    writer = data.get("writer", {})
    kinds = ", ".join(f"{v} {k}" for k, v in writer.get("corruptions", {}).items())
    looks = ", ".join(f"{v} {k}" for k, v in writer.get("appearances", {}).items())
    lines = [
        f"**Efficacy study** (`scripts.bench.mombs_study`, plan `{plan['name']}`; the bundle's `train.json` + "
        f"`demo.json` (small SplitUNet) + `multiclass.json` (GGO, consolidation) in-process; COVID CT MedSeg demo, "
        f"{plan['n_slices']} independent slices at {plan['write_size']} px, {writer.get('lesions', '?')} lesions "
        f"({kinds}; appearance: {looks}); fixed split (seed {plan['split_seed']}): 20 % test, 20 % noisy "
        f"validation, training fractions {', '.join(f'{100 * f:g} %' for f in plan['fractions'])} of the rest; "
        f"{plan['image_size']} px, batch {plan['batch_size']}, {plan['epochs']} epochs for every strategy (OHEM "
        f"visits N + k samples per epoch), pivot epoch {plan['pivot_epoch']}, K = {plan['num_disturbances']}; "
        f"seeds {list(plan['seeds'])}, paired. Dice = mean over test slices with a lesion of the per-slice mean "
        "Dice over the classes in the CLEAN mask; checkpoint `model.pt` = best Dice on the NOISY validation masks; "
        "mean +- sample std over seeds; paired difference to random with its 95 % t interval):",
        "",
    ]
    for fraction, arms in result["summary"]["fractions"].items():
        n_train = next((r["n_train"] for r in result.get("runs", []) if f"{float(r['fraction']):g}" == fraction),
                       "?")  # fmt: skip
        lines.append(f"Training fraction {100 * float(fraction):g} % ({n_train} slices):")
        lines.append("")
        lines.append(study.comparison_table(arms, {"dice": "clean-test Dice"}, STRATEGY_LABELS, baseline="random"))
    if result.get("max_rerun_difference") is not None:
        lines += [
            "Some arms were added to the study later (`--add-to-study`), each time with the baseline re-run: the "
            f"last re-run's Dice differed from the earlier one's by at most {result['max_rerun_difference']:.2g}.",
            "",
        ]
    audit = result["summary"].get("audit")
    if audit:
        lines += _audit_lines(audit)
    return lines


def _audit_lines(audit: Mapping[str, Any]) -> list[str]:
    def f(key: str) -> str:
        return study.format_mean_std(audit[key], 2)

    return [
        f"**Difficulty-map audit** ({STRATEGY_LABELS.get(audit['strategy'], audit['strategy'])}, training fraction "
        f"{100 * audit['fraction']:g} %, {audit['epochs']} epochs, seeds {audit['seeds']}; categories of the last "
        "difficulty CSV against the generator's record; mean +- std over seeds):",
        "",
        "| quantity | precision | base rate |",
        "|---|---:|---:|",
        f"| `poorly_labelled` slices with a corrupted mask (missing, eroded, dilated or wrong-class lesion) | "
        f"{f('precision_poorly_labelled')} | {f('base_rate_corrupted')} |",
        f"| `under_represented` slices with tiny or low-contrast lesions | {f('precision_under_represented')} | "
        f"{f('base_rate_under_represented')} |",
        "",
        f"Fit check (`last.pt` on the training slices, Dice against the clean masks): clean typical slices "
        f"{f('fit_clean_typical')}, slices with a corrupted mask {f('fit_corrupted')}, under-represented slices "
        f"{f('fit_under_represented')}.",
        "",
    ]


def results_table(
    timing: Mapping[str, Any] | None = None,
    study_result: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
) -> str:
    """Markdown for the bundle README: the epoch-time table, one study table per training fraction, the audit and the
    environment line; each only when its part is given."""
    env = environment or {}
    lines: list[str] = []
    if timing:
        lines += _timing_lines(timing, env)
    if study_result:
        lines += _study_lines(study_result)
    if env:
        wall = ", ".join(f"{k} {v / 60:.1f} min" for k, v in env.get("wall_s", {}).items())
        lines.append(
            f"Environment: {env.get('platform', '?')}, {env.get('cpu_count', '?')} CPUs, "
            f"torch {env.get('torch', '?')}, MONAI {env.get('monai', '?')}; wall time {wall or 'n/a'}."
        )
    return "\n".join(lines).rstrip() + "\n"


def plot_study(study_result: Mapping[str, Any], png_file: str | os.PathLike) -> Path:
    """One panel per training fraction: the per-seed clean-test Dice of every strategy, seeds joined by lines
    (:func:`scripts.bench.study.plot_paired`); returns the PNG's path."""
    fractions = study_result["summary"]["fractions"]
    fig = Figure(figsize=(5 * max(len(fractions), 1), 4.4), dpi=110)
    FigureCanvasAgg(fig)
    for k, (fraction, arms) in enumerate(fractions.items()):
        per_seed = {a: {int(s): v for s, v in zip(e["seeds"], e["dice"]["values"])} for a, e in arms.items()}
        study.plot_paired(fig, per_seed, f"training fraction {100 * float(fraction):g} %", "clean-test Dice",
                          STRATEGY_LABELS, position=100 + 10 * len(fractions) + k + 1)  # fmt: skip
    fig.tight_layout()
    return save_figure(fig, png_file)


def write_results(
    out_dir: str | os.PathLike,
    timing: Mapping[str, Any] | None = None,
    study_result: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``timing.json`` and ``study.json`` (``nan`` as ``null``, each with ``environment``) for the parts
    given, ``study.png`` with the study part, and ``README_table.md`` from what is given.

    Returns:
        ``{"timing", "study", "png", "table"}`` paths of the files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for key, part in (("timing", timing), ("study", study_result)):
        if part:
            paths[key] = out_dir / RESULT_FILES[key]
            write_json({**dict(part), "environment": dict(environment or {})}, paths[key])
    if study_result:
        paths["png"] = plot_study(study_result, out_dir / RESULT_FILES["png"])
    paths["table"] = out_dir / RESULT_FILES["table"]
    paths["table"].write_text(results_table(timing, study_result, environment), encoding="utf-8")
    return paths
