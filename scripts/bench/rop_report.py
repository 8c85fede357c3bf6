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
