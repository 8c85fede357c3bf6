# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""NVUM benchmark results: aggregation over seeds, the README table, the plot and the JSON.

A result is ``{"step_time": ..., "efficacy": ..., "environment": ..., "interpretation": ...}`` (every part
optional): ``step_time`` from :func:`scripts.bench.nvum_step.step_time_benchmark`, ``efficacy`` from
:func:`scripts.bench.nvum.run_efficacy` (its ``summary`` from :func:`aggregate_runs`), ``interpretation`` a
paragraph of plain text written under the tables. :func:`write_results` writes ``nvum_bench.json``,
``nvum_bench.png`` and ``README_table.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scripts.bench.nvum_bundle import Method
from scripts.bench.nvum_step import StepVariant
from scripts.bench.results_io import save_figure, write_json

__all__ = ["summarise", "aggregate_runs", "results_table", "plot_results", "write_results"]

RESULT_FILES = {"json": "nvum_bench.json", "png": "nvum_bench.png", "table": "README_table.md"}
_RUN_METRICS = ("clean_test_auc", "openi_auc", "padchest_auc")
_AUDIT_KEYS = ("precision_at_k", "base_rate", "labels_only_precision_at_k")
_STEP_LABELS = {
    StepVariant.BCE.value: "BCE (`BCEWithLogitsLoss`)",
    StepVariant.PAPER.value: "NVUM paper mode",
    StepVariant.OFFICIAL_LOSS.value: "NVUM official mode, loss only (fixed teacher logits)",
    StepVariant.OFFICIAL_TEACHER.value: "NVUM official mode + EMA teacher forward and update",
}
_METHOD_LABELS = {Method.BCE.value: "BCE baseline", Method.PAPER.value: "NVUM paper",
                  Method.OFFICIAL.value: "NVUM official"}  # fmt: skip


def summarise(values: Sequence[float | None]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}`` of values that may be ``nan`` or ``None``; ``std`` is the sample standard
    deviation (``ddof=1``, ``nan`` for fewer than 2 values); ``nan``/``None`` values are kept in ``values`` (as
    ``nan``) and left out of the rest."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return {
        "mean": float(np.mean(finite)) if finite else float("nan"),
        "std": float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan"),
        "n": len(finite),
        "values": [float("nan") if v is None else float(v) for v in values],
    }


def aggregate_runs(runs: Sequence[Mapping[str, Any]], baseline: str = Method.BCE.value) -> dict[str, Any]:
    """Per method: :func:`summarise` over seeds (in seed order) of each AUC, of the per-seed difference of the
    clean-test AUC to the baseline (paired by seed), and of each memory score's audit precision, base rate and
    labels-only precision (``nan`` for a run whose audit predates it).

    Example: runs ``bce`` seeds 0, 1 with clean-test AUC 0.6, 0.7 and ``paper`` 0.65, 0.8 give
    ``summary["paper"]["delta_clean_test_auc"]`` mean 0.075, std 0.0354 (differences 0.05 and 0.1).

    Args:
        runs: items with ``method``, ``seed``, ``clean_test_auc``, ``openi_auc``, ``padchest_auc`` and ``audit``
            (``{score: {"precision_at_k", "base_rate", "labels_only_precision_at_k", ...}}`` or ``None``).
        baseline: method the deltas are taken against; deltas are left out when it is missing.

    Returns:
        ``{method: {"seeds": [...], "clean_test_auc": summary, "openi_auc": ..., "padchest_auc": ...,
        "audit": {score: {"precision_at_k": summary, "base_rate": summary, "labels_only_precision_at_k": summary}},
        "delta_clean_test_auc": summary}}``
        in first-seen method order; ``audit`` holds the scores in first-seen order (empty without audits).
    """
    by_method: dict[str, dict[int, Mapping[str, Any]]] = {}
    for run in runs:
        by_method.setdefault(str(run["method"]), {})[int(run["seed"])] = run
    out: dict[str, Any] = {}
    for method, per_seed in by_method.items():
        seeds = sorted(per_seed)
        entry: dict[str, Any] = {"seeds": seeds}
        for metric in _RUN_METRICS:
            entry[metric] = summarise([per_seed[s][metric] for s in seeds])
        audits = [per_seed[s].get("audit") or {} for s in seeds]
        scores = list(dict.fromkeys(score for audit in audits for score in audit))
        entry["audit"] = {
            score: {
                key: summarise([a[score].get(key) if score in a else None for a in audits])
                for key in _AUDIT_KEYS
            }
            for score in scores
        }
        base = by_method.get(baseline, {})
        paired = [s for s in seeds if s in base]
        if method != baseline and paired:
            entry["delta_clean_test_auc"] = summarise(
                [per_seed[s]["clean_test_auc"] - base[s]["clean_test_auc"] for s in paired]
            )
        out[method] = entry
    return out


def _pm(summary: Mapping[str, Any] | None, digits: int = 3, same_as_mean: bool = False) -> str:
    """``mean ± std``; the mean alone for one value (or, with ``same_as_mean``, for identical values)."""
    if not summary or summary["mean"] is None or not np.isfinite(summary["mean"]):
        return "n/a"
    std = summary["std"]
    if std is None or not np.isfinite(std) or (same_as_mean and std == 0.0):
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {std:.{digits}f}"


def _network_text(network_def: Any) -> str:
    if not isinstance(network_def, Mapping):
        return "the bundle's DenseNet121"
    args = ", ".join(f"{k}={v}" for k, v in network_def.items() if k != "_target_")
    return f"`{network_def.get('_target_', '?')}({args})`"


def _audit_scores(summary: Mapping[str, Any]) -> list[str]:
    return list(dict.fromkeys(score for m in summary.values() for score in m.get("audit", {})))


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


def _efficacy_lines(eff: Mapping[str, Any]) -> list[str]:
    s = eff["settings"]
    nih = eff["data"].get("nih", {})
    scores = _audit_scores(eff["summary"])
    header = ("| method | clean-test AUC (mean of OpenI, PadChest) | per seed | Δ vs BCE (paired) | OpenI AUC | "
              "PadChest AUC |")  # fmt: skip
    rule = "|---|---:|---|---:|---:|---:|"
    if scores:
        header += "".join(f" label-audit P@k, `{score}` |" for score in scores) + " random P@k | labels-only P@k |"
        rule += "---:|" * (len(scores) + 2)
    lines = [
        f"**Efficacy on demo data** (bundle `train.json` + `evaluate.json` run in-process with overrides; NIH demo "
        f"size {s['train_size']} ({nih.get('n_images', '?')} images, {nih.get('n_flips', '?')} label flips "
        f"from the NIH-vs-radiologist rates), clean OpenI/PadChest demo size {s['test_size']}; written at "
        f"{s['image_size']} px, lesion contrast {s['lesion_contrast']}; network {_network_text(s['network_def'])}; "
        f"{s['epochs']} epochs, batch {s['batch_size']}, evaluated with the EMA network at the best noisy-val "
        f"epoch; seeds {s['seeds']}; AUROC = mean over the 13 diseases, No Finding left out; mean ± sample std "
        "over seeds):",
        "",
        header,
        rule,
    ]
    for method, m in eff["summary"].items():
        per_seed = ", ".join("nan" if v is None else f"{v:.3f}" for v in m["clean_test_auc"]["values"])
        row = (
            f"| {_METHOD_LABELS.get(method, method)} | {_pm(m['clean_test_auc'])} | {per_seed} | "
            f"{_pm(m.get('delta_clean_test_auc'))} | {_pm(m['openi_auc'])} | {_pm(m['padchest_auc'])} |"
        )
        if scores:
            audit = m.get("audit", {})
            row += "".join(f" {_pm(audit[sc]['precision_at_k']) if sc in audit else 'n/a'} |" for sc in scores)
            first = next((audit[sc] for sc in scores if sc in audit), {})
            row += f" {_pm(first.get('base_rate'), same_as_mean=True)} |"
            row += f" {_pm(first.get('labels_only_precision_at_k'), same_as_mean=True)} |"
        lines.append(row)
    lines.append("")
    if scores:
        ks = sorted({int(a["k"]) for run in eff["runs"] for a in (run.get("audit") or {}).values()})
        k_text = f"k = {ks[0]}" if len(ks) == 1 else f"k = {ks[0]}-{ks[-1]}" if ks else "k"
        lines += [
            "Label audit: every training (image, class) pair of the NVUM memory `t` saved in the run's "
            "`models/last.pt`, ranked by |label - score| with score `prior` = sigmoid(t + log pi) (the bundle's "
            "`LabelAuditWriter` default) or `unbiased` = sigmoid(t), `log pi` recomputed with `nvum_prior` on the "
            f"run's training datalist; P@k = share of the demo generator's recorded flips among the top k pairs, "
            f"{k_text} = the number of recorded flips in the training set (so P@k is also the recall); random P@k = "
            "expected precision of a random ranking (flips / ranked pairs); labels-only P@k = precision of the same "
            "pairs at the same k ranked with a memory of zeros and the `prior` score, i.e. by |label - pi| (pairs "
            "the class prior finds unlikely first): what the noisy labels alone give, the level the memory has to "
            "beat. BCE keeps no memory (n/a).",
            "",
        ]
    if eff.get("audit_recomputed"):
        lines += [
            "The label-audit columns were recomputed after training from the saved memories (`models/last.pt`) "
            "of these same runs, without retraining; the AUC and step-time numbers are the ones measured in the "
            "runs.",
            "",
        ]
    return lines


def results_table(results: Mapping[str, Any]) -> str:
    """Markdown tables of a benchmark result for the bundle README: the step-time table, the efficacy table with
    one label-audit column per memory score, the random base rate and the labels-only precision, the
    ``interpretation`` paragraph and the environment line; each only when its part is present."""
    lines: list[str] = []
    env = results.get("environment") or {}
    if results.get("step_time"):
        lines += _step_lines(results["step_time"], env)
    if results.get("efficacy"):
        lines += _efficacy_lines(results["efficacy"])
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


def _plot_step(ax: Any, step: Mapping[str, Any] | None) -> None:
    ax.set_title("Step time")
    if not step:
        return _note(ax, "step time not measured")
    names = list(step["ratio_to_bce"])
    ratios = [step["ratio_to_bce"][n] for n in names]
    ax.bar(range(len(names)), ratios, color=[f"C{i}" for i in range(len(names))])
    ax.axhline(step["target_ratio"], color="k", linestyle="--", linewidth=1, label=f"target {step['target_ratio']}")
    ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names])
    ax.set_ylabel("median step time / BCE")
    ax.legend(loc="upper left")
    for i, r in enumerate(ratios):
        ax.text(i, r, f"{r:.3f}", ha="center", va="bottom")


def _plot_dots(ax: Any, x: float, summary: Mapping[str, Any], color: str, label: str | None = None) -> None:
    values = [v for v in summary["values"] if v is not None and np.isfinite(v)]
    ax.scatter([x] * len(values), values, color=color, alpha=0.6, zorder=3, label=label)
    std = summary["std"] if summary["std"] is not None and np.isfinite(summary["std"]) else 0.0
    ax.errorbar([x + 0.12], [summary["mean"]], yerr=[std], fmt="s", color=color, capsize=4)


def _plot_auc(ax: Any, eff: Mapping[str, Any] | None) -> None:
    ax.set_title("Clean-test AUC (dots: seeds; square: mean ± std)")
    if not eff:
        return _note(ax, "efficacy not measured")
    for i, m in enumerate(eff["summary"].values()):
        _plot_dots(ax, i, m["clean_test_auc"], f"C{i}")
    ax.set_xticks(range(len(eff["summary"])), [_METHOD_LABELS.get(m, m) for m in eff["summary"]])
    ax.set_ylabel("clean-test AUROC (mean over diseases)")
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)


def _plot_audit(ax: Any, eff: Mapping[str, Any] | None) -> None:
    ax.set_title("Label audit from the memory: precision at k")
    methods = [m for m, entry in (eff or {}).get("summary", {}).items() if entry.get("audit")]
    if not methods:
        return _note(ax, "no label audit")
    scores = _audit_scores(eff["summary"])
    width = 0.8 / len(scores)
    for j, score in enumerate(scores):
        for i, method in enumerate(methods):
            audit = eff["summary"][method]["audit"]
            if score in audit:
                x = i - 0.4 + (j + 0.3) * width
                _plot_dots(ax, x, audit[score]["precision_at_k"], f"C{j + 3}", score if i == 0 else None)
    base = [eff["summary"][m]["audit"][scores[0]]["base_rate"]["mean"] for m in methods if scores[0] in
            eff["summary"][m]["audit"]]  # fmt: skip
    if base:
        ax.axhline(base[0], color="grey", linestyle="--", linewidth=1, label=f"random ({base[0]:.3f})")
    for i, method in enumerate(methods):
        ref = eff["summary"][method]["audit"][scores[0]].get("labels_only_precision_at_k") if scores[0] in \
            eff["summary"][method]["audit"] else None  # fmt: skip
        if ref and ref["mean"] is not None and np.isfinite(ref["mean"]):
            ax.hlines(ref["mean"], i - 0.45, i + 0.45, color="k", linestyle=":", linewidth=1.5,
                      label="labels only (memory of zeros, `prior`)" if i == 0 else None)  # fmt: skip
    ax.set_xticks(range(len(methods)), [_METHOD_LABELS.get(m, m) for m in methods])
    ax.set_ylabel("precision at k (k = recorded flips)")
    ax.legend(loc="center right", fontsize="small")


def plot_results(results: Mapping[str, Any], png_file: str | os.PathLike) -> Path:
    """Draw the step-time ratios (with the target line), the clean-test AUC per method (one dot per seed, mean ±
    std) and the label-audit precision per NVUM method and memory score (with the random base rate and, per method, the
    labels-only precision) into a PNG;
    a missing part leaves its panel with a note. Returns the path."""
    fig = Figure(figsize=(16, 4.4), dpi=110)
    FigureCanvasAgg(fig)
    ax_step, ax_auc, ax_audit = fig.subplots(1, 3)
    _plot_step(ax_step, results.get("step_time"))
    _plot_auc(ax_auc, results.get("efficacy"))
    _plot_audit(ax_audit, results.get("efficacy"))
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
