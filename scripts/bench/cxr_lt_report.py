# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tables and figures of the FPSM + DADAM benchmark (``scripts.bench_cxr_lt``): ``cxr_lt_bench.json``,
``cxr_lt_bench.png`` (per-seed test mAP and tail mAP of every arm, paired by seed) and ``README_table.md``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scripts.bench import study
from scripts.bench.cxr_lt_study import Arm, study_class_groups
from scripts.bench.results_io import save_figure, write_json

__all__ = ["ARM_LABELS", "RESULT_FILES", "study_tables", "write_results"]

RESULT_FILES = {"json": "cxr_lt_bench.json", "png": "cxr_lt_bench.png", "table": "README_table.md"}
ARM_LABELS = {
    "single": "single stage {4}",
    "fpsm_43": "FPSM {4,3}",
    "fpsm_432": "FPSM {4,3,2}",
    "fpsm_4321": "FPSM {4,3,2,1}",
    "single_dadam": "single stage {4} + DADAM",
    "fpsm_43_dadam": "FPSM {4,3} + DADAM",
    "fpsm_432_dadam": "FPSM {4,3,2} + DADAM",
    "fpsm_4321_dadam": "FPSM {4,3,2,1} + DADAM",
}
_GROUPS = ("head", "tail_boxed", "tail_unboxed")
_METRICS = {"map": "test mAP", "tail_map": "tail-class mean AP", "mean_auroc": "mean AUROC", "macro_f1": "macro F1"}


def study_tables(result: Mapping[str, Any]) -> str:
    """Markdown: the arms' test metrics (mean +- std, paired difference to the single-stage head with 95 % CI), the
    three stage combinations' mAP, the probability-averaging ensembles, and the DADAM set's checks."""
    summary, plan, data = result["summary"], result["plan"], result["data"]
    arms = {a: summary[a] for a in [x.value for x in Arm] if a in summary}
    dadam = data.get("dadam_report") or {}
    lines = [
        f"Powered study (plan `{plan['name']}`): {data['sizes']['train']} training images (+ {data['n_dadam']} DADAM "
        f"images for the `+ DADAM` arms), {data['sizes']['val']} validation images (model selection), "
        f"{data['sizes']['test']} clean test images; backbone `{plan['backbone']}` at {plan['image_size']} px, "
        f"{plan['epochs']} epochs, batch {plan['batch_size']}; learning rate {result['learning_rate']:g} chosen for "
        f"the single-stage head on the validation mAP from {list(plan['lr_grid'])}; {len(plan['seeds'])} paired seeds. "
        f"Tail classes (below the median training count): {', '.join(data['tail_classes'])}.\n",
        study.comparison_table(arms, _METRICS, labels=ARM_LABELS, baseline=Arm.SINGLE.value),
        "\nStage combination at test time (mAP, mean +- std over seeds; the table above uses `mean_prob`):\n",
        "| arm | mean_prob | sum_logits | deepest |",
        "|---|---|---|---|",
    ]
    for arm, entry in arms.items():
        cells = [study.format_mean_std(entry[f"map_{m}"]) for m in ("mean_prob", "sum_logits", "deepest")]
        lines.append(f"| {ARM_LABELS.get(arm, arm)} | " + " | ".join(cells) + " |")
    ens = result.get("ensembles") or {}
    if ens:
        lines += [
            "\nEnsemble (Sec. 4.3): mean of the test probabilities of the arm's seeds:\n",
            "| arm | members | ensemble mAP | mean single-model mAP | ensemble tail mAP |",
            "|---|---|---|---|---|",
        ]
        for arm in arms:
            if arm in ens:
                e = ens[arm]
                lines.append(f"| {ARM_LABELS.get(arm, arm)} | {e['members']} | {e['map']:.4f} | "
                             f"{e['single_model_map']:.4f} | {e['tail_map']:.4f} |")  # fmt: skip
    groups = result.get("class_groups") or {}
    if groups:
        names = study_class_groups(data)
        titles = {g: f"{g.replace('_', ' ')} AP ({len(names[g])} classes)" for g in _GROUPS if names.get(g)}
        lines += [
            "\nWhere the differences come from: mean test AP of the head classes, of the tail classes with lesion "
            "boxes (DADAM pastes their patches) and of the tail classes without boxes (DADAM only reuses their "
            "images as Mixup backgrounds):\n",
            study.comparison_table({a: groups[a] for a in arms if a in groups}, titles, labels=ARM_LABELS,
                                   baseline=Arm.SINGLE.value),  # fmt: skip
        ]
    if dadam:
        ref = data.get("correlation_reference") or {}
        before, after = dadam.get("counts_before", {}), dadam.get("counts_after", {})
        lines.append(
            f"\nDADAM set ({dadam.get('n_cutmix')} CutMix + {dadam.get('n_mixup')} Mixup images): Frobenius distance "
            f"between the label correlation matrices of the training labels and of training + DADAM labels "
            f"{dadam.get('correlation_frobenius', float('nan')):.3f} (the paper's Fig. 3 claims they stay close; for "
            "scale: the training correlation matrix's off-diagonal norm "
            f"{ref.get('off_diagonal_norm', float('nan')):.3f}, two random halves of the training images differ by "
            f"{ref.get('split_half_distance', float('nan')):.3f})."
            " Tail-class counts before -> after (Fig. 4): "
            + ", ".join(f"{c} {before.get(c)} -> {after.get(c)}" for c in data["tail_classes"])
            + f"; tail classes without any box (Mixup backgrounds only): "
            f"{', '.join(dadam.get('tail_classes_without_boxes', [])) or 'none'}.\n"
        )
    return "\n".join(lines) + "\n"


def _figure(result: Mapping[str, Any]) -> Figure:
    summary = result["summary"]
    arms = [a.value for a in Arm if a.value in summary]
    fig = Figure(figsize=(11, 4.5))
    for k, metric in enumerate(("map", "tail_map")):
        per_seed = {a: {int(s): v for s, v in summary[a][metric]["per_seed"].items()} for a in arms}
        study.plot_paired(fig, per_seed, f"MIMIC-CXR-LT demo, clean test set: {_METRICS[metric]}", _METRICS[metric],
                          ARM_LABELS, 121 + k)  # fmt: skip
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
