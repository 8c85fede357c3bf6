# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""NVUM benchmark results: the README tables, the figure and the JSON.

A result is ``{"step_time": ..., "study": ..., "environment": ..., "interpretation": ...}`` (every part optional):
``step_time`` from :func:`scripts.bench.nvum_step.step_time_benchmark`, ``study`` from
:func:`scripts.bench.nvum_study.run_study`, ``interpretation`` a paragraph of plain text written under the tables.
:func:`write_results` writes ``nvum_bench.json``, ``nvum_bench.png`` and ``README_table.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scripts.bench import study as harness
from scripts.bench.nvum_step import StepVariant
from scripts.bench.nvum_study import ARM_LABELS, TEST_SETS, VAL_METRIC, Arm
from scripts.bench.results_io import save_figure, write_json

__all__ = ["RESULT_FILES", "results_table", "plot_results", "write_results"]

RESULT_FILES = {"json": "nvum_bench.json", "png": "nvum_bench.png", "table": "README_table.md"}
_STEP_LABELS = {
    StepVariant.BCE.value: "BCE (`BCEWithLogitsLoss`)",
    StepVariant.PAPER.value: "NVUM paper mode",
    StepVariant.OFFICIAL_LOSS.value: "NVUM official mode, loss only (fixed teacher logits)",
    StepVariant.OFFICIAL_TEACHER.value: "NVUM official mode + EMA teacher forward and update",
}
_TEST_TITLES = {"openi": "OpenI", "padchest": "PadChest"}


def _network_text(network_def: Any) -> str:
    if not isinstance(network_def, Mapping):
        return "the bundle's DenseNet121"
    args = ", ".join(f"{k}={v}" for k, v in network_def.items() if k not in ("_target_", "out_channels"))
    return f"`{network_def.get('_target_', '?')}({args})`"


def _step_lines(step: Mapping[str, Any], env: Mapping[str, Any]) -> list[str]:
    shape = " x ".join(map(str, step["batch_shape"]))
    lines = [
        f"**Step time** (forward + loss + backward + Adam step; {step.get('network', 'network')}, batch {shape}, "
        f"{step['num_classes']} classes, NVUM memory of {step['num_samples']:,} rows; {step['warmup']} warm-up "
        f"rounds, {step['repeats']} interleaved timed rounds, median; {step['device']}, "
        f"{env.get('torch_threads', '?')} torch thread(s), measured in one run; target ratio <= "
        f"{step['target_ratio']}):",
        "",
        "| step | median (s) | ratio to BCE |",
        "|---|---:|---:|",
    ]
    for name, median in step["median_s"].items():
        lines.append(f"| {_STEP_LABELS.get(name, name)} | {median:.3f} | {step['ratio_to_bce'][name]:.3f} |")
    return lines + [""]


def _budget_lines(res: Mapping[str, Any]) -> list[str]:
    plan, data = res["plan"], res["data"]
    sizes = data["sizes"]
    min_pos = {t: min(data["test_positives"][t][c] for c in data["class_names"]) for t in TEST_SETS}
    return [
        f"**Powered efficacy study** (`{plan['name']}` plan; DESIGN.md \"How we show that a method works\"). "
        f"Demo NIH training set of {sizes['train']:,} images with noisy labels ({data['n_flips']:,} labels flipped at "
        f"the real NIH-vs-radiologist rates), noisy validation split of {sizes['val']:,} images (patient-disjoint); "
        f"clean test sets OpenI-like {sizes['openi']:,} and PadChest-like {sizes['padchest']:,} images (at least "
        f"{min_pos['openi']} / {min_pos['padchest']} positives of every class). Network "
        f"{_network_text(plan['network_def'])} at {plan['image_size']} px, {plan['epochs']} epochs, batch "
        f"{plan['batch_size']}, the bundle's Adam (betas 0.9/0.99, eps {plan.get('adam_eps', 0.1):g}) and MultiStepLR; "
        f"checkpoint chosen on "
        f"the noisy validation AUROC. Tuning on the noisy validation split, {len(plan['lr_grid'])} runs per arm: "
        f"BCE arms choose the learning rate from {list(plan['lr_grid'])}, NVUM arms `reg_weight` from "
        f"{list(plan['reg_grid'])} at BCE's learning rate. Seeds {list(plan['seeds'])} (seed {plan['seeds'][0]} "
        f"also tunes), paired: one seed gives every arm the same initialisation and data order. "
        f"{len(res['runs']) + sum(len(t) for t in res['tuning'].values()) - len(res['selected'])} runs, "
        f"{res.get('workers', '?')} in parallel, {res['wall_s'] / 60:.1f} min.",
        "",
    ]


def _tuning_lines(res: Mapping[str, Any]) -> list[str]:
    lines = ["Tuning (seed {}; noisy-validation mean AUROC, chosen setting in bold):".format(res["plan"]["seeds"][0]),
             "", "| arm | setting: validation AUROC |", "|---|---|"]  # fmt: skip
    for arm, trials in res["tuning"].items():
        cells = []
        for trial in trials:
            text = ", ".join(f"{k}={v:g}" for k, v in trial["params"].items()) + f": {trial[VAL_METRIC]:.4f}"
            cells.append(f"**{text}**" if trial["params"] == res["selected"][arm] else text)
        lines.append(f"| {ARM_LABELS.get(arm, arm)} | {'; '.join(cells)} |")
    return lines + [""]


def _main_lines(summary: Mapping[str, Any]) -> list[str]:
    arms = {a: e for a, e in summary.items() if a != "groups"}
    metrics = {"clean_test_auc": "mean of both", **{f"{t}_auc": _TEST_TITLES[t] for t in TEST_SETS}}
    table = harness.comparison_table(arms, metrics, ARM_LABELS, baseline=Arm.BCE.value)
    groups = summary.get("groups", {})
    group_metrics = {f"{g}_auc": f"{g} classes ({', '.join(c[:4] for c in classes)})" for g, classes in groups.items()}
    lines = ["Mean AUROC over the 13 diseases on the clean test sets (mean +- std over seeds; paired difference to BCE "
             "with its 95 % t-interval):", "", table]  # fmt: skip
    if group_metrics:
        lines += ["Head vs tail classes (split at the median of the noisy training positives; mean AUROC over the "
                  "group, averaged over both test sets):", "",
                  harness.comparison_table(arms, group_metrics, ARM_LABELS, baseline=Arm.BCE.value)]  # fmt: skip
    return lines


def _seed_lines(summary: Mapping[str, Any]) -> list[str]:
    arms = [a for a in summary if a != "groups"]
    seeds = sorted({s for a in arms for s in summary[a]["seeds"]})
    lines = ["Per seed (mean of both test sets; validation AUROC in brackets):", "",
             "| arm | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|" + "---|" * len(seeds)]  # fmt: skip
    for arm in arms:
        entry = summary[arm]
        by_seed = dict(zip(entry["seeds"], zip(entry["clean_test_auc"]["values"], entry[VAL_METRIC]["values"])))
        cells = [f"{by_seed[s][0]:.4f} ({by_seed[s][1]:.4f})" if s in by_seed else "" for s in seeds]
        lines.append(f"| {ARM_LABELS.get(arm, arm)} | " + " | ".join(cells) + " |")
    return lines + [""]


def _diagnostic_lines(runs: list[Mapping[str, Any]]) -> list[str]:
    rows = {}
    for run in runs:
        if run.get("monitor"):
            rows.setdefault(run["arm"], []).append(run)
    if not rows:
        return []
    lines = ["What drives each NVUM arm (`NVUMMonitor`; median over iterations of the ratio of the gradient norms "
             "w.r.t. the logits, regulariser / BCE; memory range over training; mean `sigmoid(t . p)` in the last "
             "epoch; label audit: precision at k of the memory's `prior` score against the recorded flips, with the "
             "random rate and the labels-only reference; mean +- std over seeds):", "",
             "| arm | grad ratio, first epoch | grad ratio, last epoch | memory min | memory max | "
             "sigmoid(t.p), last epoch | audit precision at k | random | labels only |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for arm, arm_runs in rows.items():
        mon = [r["monitor"] for r in arm_runs]
        cells = [harness.format_mean_std(harness.summarise([m[k] for m in mon]), 3) for k in
                 ("grad_ratio_first_epoch", "grad_ratio_last_epoch", "memory_min", "memory_max",
                  "sigmoid_dot_last_epoch")]  # fmt: skip
        audits = [(r.get("audit") or {}).get("prior") or {} for r in arm_runs]
        for key in ("precision_at_k", "base_rate", "labels_only_precision_at_k"):
            cells.append(harness.format_mean_std(harness.summarise([a.get(key) for a in audits]), 3))
        lines.append(f"| {ARM_LABELS.get(arm, arm)} | " + " | ".join(cells) + " |")
    return lines + [""]


def results_table(results: Mapping[str, Any]) -> str:
    """Markdown for the bundle README: step time; the study's budget, tuning, comparison (mean +- std and paired
    difference to BCE with its 95 % interval, per test set and for head / tail classes), per-seed values and
    diagnostics; the ``interpretation`` paragraph and the environment line; each only when its part is present."""
    lines: list[str] = []
    env = results.get("environment") or {}
    if results.get("step_time"):
        lines += _step_lines(results["step_time"], env)
    res = results.get("study")
    if res:
        lines += _budget_lines(res) + _tuning_lines(res) + _main_lines(res["summary"]) + _seed_lines(res["summary"])
        lines += _diagnostic_lines(res["runs"])
    if results.get("interpretation"):
        lines += [f"**Interpretation.** {' '.join(str(results['interpretation']).split())}", ""]
    if env:
        wall = env.get("wall_s")
        lines.append(
            f"Environment: {env.get('platform', '?')}, {env.get('cpu_count', '?')} CPUs, "
            f"torch {env.get('torch', '?')}, MONAI {env.get('monai', '?')}; total wall time "
            f"{(wall if wall is not None else float('nan')) / 60:.1f} min."
        )
    return "\n".join(lines).rstrip() + "\n"


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def _plot_step(fig: Figure, step: Mapping[str, Any] | None, position: int) -> None:
    ax = fig.add_subplot(position)
    ax.set_title("Step time / BCE", fontsize=9)
    if not step:
        return _note(ax, "step time not measured")
    names = list(step["ratio_to_bce"])
    ratios = [step["ratio_to_bce"][n] for n in names]
    ax.bar(range(len(names)), ratios, color=[f"C{i}" for i in range(len(names))])
    ax.axhline(step["target_ratio"], color="k", linestyle="--", linewidth=1, label=f"target {step['target_ratio']}")
    ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=7)
    ax.legend(loc="upper left", fontsize=7)
    for i, r in enumerate(ratios):
        ax.text(i, r, f"{r:.3f}", ha="center", va="bottom", fontsize=7)


def _plot_differences(fig: Figure, summary: Mapping[str, Any], position: int) -> None:
    ax = fig.add_subplot(position)
    ax.set_title("Paired difference to BCE, 95 % CI", fontsize=9)
    arms = [a for a in summary if a not in ("groups", Arm.BCE.value)]
    for j, metric in enumerate(("clean_test_auc", *(f"{t}_auc" for t in TEST_SETS))):
        for i, arm in enumerate(arms):
            d = summary[arm].get(f"delta_{metric}")
            if not d or not d["n"]:
                continue
            x = i + (j - 1) * 0.22
            low, high = d["ci_low"], d["ci_high"]
            err = [[d["mean"] - low], [high - d["mean"]]] if np.isfinite(low) else None
            ax.errorbar([x], [d["mean"]], yerr=err, fmt="o", color=f"C{j}", capsize=3,
                        label=metric.replace("_auc", "").replace("clean_test", "mean") if i == 0 else None)  # fmt: skip
    ax.axhline(0.0, color="k", linewidth=0.8)
    ax.set_xticks(range(len(arms)), [ARM_LABELS.get(a, a) for a in arms], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("AUROC difference")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _plot_traces(fig: Figure, runs: list[Mapping[str, Any]], position: int) -> None:
    ax = fig.add_subplot(position)
    ax.set_title("Gradient norms w.r.t. logits (first seed)", fontsize=9)
    shown = {}
    for run in sorted(runs, key=lambda r: r["seed"]):
        if run.get("monitor") and run["arm"] not in shown:
            shown[run["arm"]] = run["monitor"]["trace"]
    if not shown:
        return _note(ax, "no NVUM monitor")
    for k, (arm, trace) in enumerate(shown.items()):
        ax.semilogy(trace["iteration"], trace["reg_grad_norm"], color=f"C{k}", label=f"{ARM_LABELS.get(arm, arm)}: reg")
        ax.semilogy(trace["iteration"], trace["bce_grad_norm"], color=f"C{k}", linestyle=":", label="BCE")
    ax.set_xlabel("iteration")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)


def plot_results(results: Mapping[str, Any], png_file: str | os.PathLike) -> Path:
    """Draw the step-time ratios, the per-seed clean-test AUROC of every arm (lines join a seed's arms), the paired
    differences to BCE with their 95 % intervals and the NVUM gradient-norm traces into a PNG; a missing part leaves
    its panel with a note. Returns the path."""
    fig = Figure(figsize=(18, 4.6), dpi=110)
    FigureCanvasAgg(fig)
    _plot_step(fig, results.get("step_time"), 141)
    res = results.get("study")
    if res:
        summary = res["summary"]
        per_seed = {a: dict(zip(e["seeds"], e["clean_test_auc"]["values"])) for a, e in summary.items()
                    if a != "groups"}  # fmt: skip
        harness.plot_paired(fig, per_seed, "Clean-test AUROC per seed", "mean AUROC (diseases, both sets)",
                            ARM_LABELS, position=142)  # fmt: skip
        _plot_differences(fig, summary, 143)
        _plot_traces(fig, res["runs"], 144)
    else:
        _note(fig.add_subplot(142), "efficacy study not run")
    return save_figure(fig, png_file)


def write_results(results: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``nvum_bench.json`` (``nan`` as ``null``), ``nvum_bench.png`` and ``README_table.md`` into ``out_dir``.

    Returns:
        ``{"json", "png", "table"}`` paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / name for kind, name in RESULT_FILES.items()}
    write_json(results, paths["json"])
    plot_results(results, paths["png"])
    paths["table"].write_text(results_table(results), encoding="utf-8")
    return paths
