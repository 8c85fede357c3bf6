# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tables and figures of the meta soft-label benchmark (``scripts.bench_rop``): ``rop_bench.json``,
``rop_bench.png`` (per-seed test accuracy and macro F1 of every arm, paired by seed) and ``README_table.md``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scripts.bench import study
from scripts.bench.results_io import save_figure, write_json
from scripts.bench.rop_study import ARM_LABELS, Arm

__all__ = ["RESULT_FILES", "study_tables", "write_results"]

RESULT_FILES = {"json": "rop_bench.json", "png": "rop_bench.png", "table": "README_table.md"}


def study_tables(result: Mapping[str, Any]) -> str:
    """Markdown: the arms' test accuracy and macro F1 (mean +- std, paired difference to CE with 95 % CI), then the
    meta arms' soft labels against the demo's true labels."""
    summary = result["summary"]
    arms = {a: summary[a] for a in [x.value for x in Arm] if a in summary}
    plan, data = result["plan"], result["data"]
    lines = [
        f"Powered study (plan `{plan['name']}`): {data['sizes']['train']} training images (majority vote wrong for "
        f"{100 * data['majority_errors']:.1f} %), {data['sizes']['meta']} clean meta images, "
        f"{data['sizes']['test']} clean test images; {len(plan['seeds'])} paired seeds; learning rate "
        f"{result['learning_rate']:g} chosen for CE on the meta set from {list(plan['lr_grid'])}, label learning rate "
        f"beta chosen per meta arm from {list(plan['beta_grid'])}: {result.get('betas')}; "
        f"{plan['epochs']} epochs ({plan['warmup_epochs']} warm-up), {plan['crop_size']} px.\n",
        study.comparison_table(arms, {"test_accuracy": "test accuracy", "test_macro_f1": "test macro F1"},
                               labels=ARM_LABELS, baseline=Arm.CE.value),  # fmt: skip
    ]
    soft_rows = [
        "| arm | labels moved | soft argmax = true label | fixed where majority was wrong "
        "| broken where it was right |",
        "|---|---|---|---|---|",
    ]
    for arm, entry in arms.items():
        soft = entry.get("soft_labels")
        if soft:
            soft_rows.append(
                f"| {ARM_LABELS.get(arm, arm)} | {study.format_mean_std(soft['moved'])} | "
                f"{study.format_mean_std(soft['argmax_true'])} | {study.format_mean_std(soft['fixed_when_wrong'])} "
                f"| {study.format_mean_std(soft['broken_when_right'])} |"
            )
    if len(soft_rows) > 2:
        lines.append("\nSoft labels after training against the demo generator's true labels (training images):\n")
        lines.append("\n".join(soft_rows) + "\n")
    return "\n".join(lines)


def _figure(result: Mapping[str, Any]) -> Figure:
    summary = result["summary"]
    arms = [a.value for a in Arm if a.value in summary]
    fig = Figure(figsize=(10, 4))
    for k, (metric, title) in enumerate((("test_accuracy", "test accuracy"), ("test_macro_f1", "test macro F1"))):
        per_seed = {a: {int(s): v for s, v in summary[a][metric]["per_seed"].items()} for a in arms}
        study.plot_paired(fig, per_seed, f"ROP demo, clean test set: {title}", title, ARM_LABELS, 121 + k)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    return fig


def write_results(results: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write the JSON, the PNG (when a study is present) and the Markdown tables; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": write_json(results, out / RESULT_FILES["json"])}
    parts = []
    if results.get("study"):
        parts.append("## Efficacy\n\n" + study_tables(results["study"]))
        paths["png"] = save_figure(_figure(results["study"]), out / RESULT_FILES["png"])
    if results.get("interpretation"):
        parts.append(str(results["interpretation"]) + "\n")
    paths["table"] = out / RESULT_FILES["table"]
    paths["table"].write_text("\n".join(parts), encoding="utf-8")
    return paths


def run_curve(run_dir: str | os.PathLike) -> list[float]:
    """Meta-set accuracy per epoch of one training run (``val_accuracy`` in its TensorBoard logs)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for events in sorted((Path(run_dir) / "eval").glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if "val_accuracy" in acc.Tags()["scalars"]:
            return [float(e.value) for e in acc.Scalars("val_accuracy")]
    return []


def plot_validation_curves(result: Mapping[str, Any], work_dir: str | os.PathLike, png_file: str | os.PathLike) -> Path:
    """Mean meta-set accuracy per epoch of each arm's evaluation runs (the chosen settings), the end of warm-up
    dashed; the run folders are named as :func:`scripts.bench.rop_study.run_study` names them."""
    per_arm: dict[str, list[list[float]]] = {}
    for run in result["runs"]:
        tag = f"_beta{run['beta']:g}" if run["arm"].startswith("meta") else ""
        curve = run_curve(Path(work_dir) / f"{run['arm']}_lr{run['learning_rate']:g}{tag}_seed{run['seed']}")
        if curve:
            per_arm.setdefault(run["arm"], []).append(curve)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(111)
    for arm, curves in per_arm.items():
        n = min(len(c) for c in curves)
        mean = [sum(c[e] for c in curves) / len(curves) for e in range(n)]
        ax.plot(range(1, n + 1), mean, "-o", markersize=3, label=f"{ARM_LABELS.get(arm, arm)} ({len(curves)} seeds)")
    ax.axvline(result["plan"]["warmup_epochs"] + 0.5, color="0.5", linestyle="--", linewidth=1)
    ax.set_xlabel("epoch (dashed: end of warm-up)")
    ax.set_ylabel("meta-set accuracy (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    return save_figure(fig, png_file)
