# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""PNG plots of ROC and precision-recall curves per class and of FROC curves, for bundle evaluation reports.

Figures are drawn with matplotlib's object API on an Agg canvas (``matplotlib.figure.Figure`` +
``FigureCanvasAgg``), so no pyplot state or display is touched and the functions are safe in headless and
multi-process runs. Curve points come from :func:`sklearn.metrics.roc_curve` / :func:`precision_recall_curve` on the
rows whose label is known (``NaN`` = unknown, masked per class, as in :mod:`monai_ext.metrics.multilabel`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from monai_ext.metrics.froc import DEEPLESION_AVERAGE_FP_RATES, summarize_froc
from monai_ext.metrics.multilabel import check_multilabel_inputs

__all__ = ["save_roc_curves_png", "save_pr_curves_png", "save_froc_png"]

_LINESTYLES = ("-", "--", ":", "-.")


def _save(fig: Figure, path: str | os.PathLike, dpi: int) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out, dpi=dpi, format="png", bbox_inches="tight")
    return out


def _style(k: int, n: int) -> dict[str, Any]:
    """A distinct colour and line style for curve ``k`` of ``n``: matplotlib's C0-C9 up to 10 curves, else the 20
    ``tab20`` colours times 4 line styles."""
    if n <= 10:
        return {"color": f"C{k}", "linestyle": "-"}
    return {"color": colormaps["tab20"](k % 20), "linestyle": _LINESTYLES[(k // 20) % len(_LINESTYLES)]}


def _per_class_curves(
    y_pred: Any, y: Any, class_names: Sequence[str], kind: str
) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    scores, labels, names = check_multilabel_inputs(y_pred, y, class_names)
    curves, skipped = [], []
    for c, name in enumerate(names):
        known = ~np.isnan(labels[:, c])
        y_c, s_c = labels[known, c], scores[known, c]
        n_pos = int(y_c.sum())
        if n_pos == 0 or (kind == "roc" and n_pos == y_c.size):
            skipped.append(name)
            continue
        if kind == "roc":
            fpr, tpr, _ = roc_curve(y_c, s_c)
            curves.append((name, fpr, tpr, float(auc(fpr, tpr))))
        else:
            precision, recall, _ = precision_recall_curve(y_c, s_c)
            # ascending recall; per recall level keep the precision AP integrates (highest threshold reaching it)
            precision, recall = precision[::-1], recall[::-1]
            first = np.r_[True, recall[1:] != recall[:-1]]
            curves.append((name, recall[first], precision[first], float(average_precision_score(y_c, s_c))))
    if skipped:
        need = "no positive or no negative" if kind == "roc" else "no positive"
        warnings.warn(
            f"{kind.upper()} curve not drawn for class(es) {skipped} ({need} among the known labels).", stacklevel=3
        )
    return curves


def _curves_figure(curves: list[tuple[str, np.ndarray, np.ndarray, float]], kind: str, title: str | None) -> Figure:
    fig = Figure(figsize=(7.5 if len(curves) <= 10 else 10.0, 6.0))
    ax = fig.add_subplot(1, 1, 1)
    metric = "AUC" if kind == "roc" else "AP"
    for k, (name, x, yv, value) in enumerate(curves):
        draw = "default" if kind == "roc" else "steps-pre"  # PR: precision P_n over recall (R_{n-1}, R_n]
        ax.plot(x, yv, drawstyle=draw, linewidth=1.2, label=f"{name} ({metric} {value:.3f})", **_style(k, len(curves)))
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle="--")
        ax.set_xlabel("False positive rate (1 - specificity)")
        ax.set_ylabel("True positive rate (sensitivity)")
    else:
        ax.set_xlabel("Recall (sensitivity)")
        ax.set_ylabel("Precision (positive predictive value)")
    if curves:
        mean = float(np.mean([c[3] for c in curves]))
        ax.set_title(title or f"{'ROC' if kind == 'roc' else 'Precision-recall'} curves (mean {metric} {mean:.3f})")
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7 if len(curves) > 14 else 8, frameon=False)
    else:
        ax.set_title(title or "no class with both label values")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.grid(True, linewidth=0.3)
    return fig


def save_roc_curves_png(
    y_pred: Any,
    y: Any,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Draw one ROC curve per class (legend with its AUROC) and save the figure as PNG.

    Args:
        y_pred: ``B C`` scores (probabilities or logits; the curves only depend on the ranking).
        y: ``B C`` labels in {0, 1}, ``NaN`` = unknown (masked per class).
        class_names: the ``C`` class names.
        path: output ``.png`` file; its folder is created.
        title: figure title. Defaults to None ("ROC curves (mean AUC ...)").
        dpi: resolution. Defaults to 120.

    Returns:
        The path written. Classes without both label values are left out with a ``warnings.warn`` naming them.

    Raises:
        ValueError: bad shapes or values, as :func:`monai_ext.metrics.multilabel.per_class_auroc`.
    """
    return _save(_curves_figure(_per_class_curves(y_pred, y, class_names, "roc"), "roc", title), path, dpi)


def save_pr_curves_png(
    y_pred: Any,
    y: Any,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Draw one precision-recall curve per class (step-wise, legend with its AP) and save the figure as PNG.

    Arguments, return value and errors as :func:`save_roc_curves_png`; a class without a positive known label is
    left out with a warning.
    """
    return _save(_curves_figure(_per_class_curves(y_pred, y, class_names, "pr"), "pr", title), path, dpi)


def save_froc_png(
    results: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike,
    title: str | None = None,
    dpi: int = 120,
    average_over: Sequence[float] = DEEPLESION_AVERAGE_FP_RATES,
    overwrite: bool = False,
) -> Path:
    """Draw FROC curves (sensitivity against average false positives per image, log x axis) and save them as PNG.

    Each curve is the step function of its best operating points per FP count (:func:`froc_curve`), dotted beyond
    its last false positive; its sensitivities at the result's ``fp_rates`` are marked, and the legend gives their
    mean over ``average_over`` (the mean over all its ``fp_rates`` if some are missing).

    Args:
        results: ``{curve label: result of monai_ext.metrics.froc.compute_detection_froc}``, e.g.
            ``{"random": r0, "MoMBS": r1}`` to compare arms.
        path: output ``.png`` file; its folder is created.
        title: figure title. Defaults to None ("FROC").
        dpi: resolution. Defaults to 120.
        average_over: FP rates averaged in the legend. Defaults to ``(0.5, 1, 2)``.
        overwrite: replace an existing ``path``. Defaults to False (results are never overwritten silently).

    Returns:
        The path written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: ``results`` is empty or a result misses a key of :func:`compute_detection_froc`'s output.
    """
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another path or pass overwrite=True to replace it.")
    if not results:
        raise ValueError("results is empty: give at least one {label: compute_detection_froc(...) result}.")
    keys = ("fps_per_image", "curve_sensitivity", "fp_rates", "sensitivity", "average_sensitivity")
    for label, r in results.items():
        missing = [key for key in keys if key not in r]
        if missing:
            raise ValueError(f"FROC result '{label}' misses key(s) {missing}; pass compute_detection_froc's output.")
    all_rates = sorted({float(v) for r in results.values() for v in r["fp_rates"]})
    x_min, x_max = all_rates[0] / 4.0, all_rates[-1] * 2.0
    fig = Figure(figsize=(7.0, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    for k, (label, r) in enumerate(results.items()):
        style = _style(k, len(results))
        fps, sens = np.asarray(r["fps_per_image"], dtype=float), np.asarray(r["curve_sensitivity"], dtype=float)
        try:
            avg_key, avg = list(summarize_froc(r, average_over).items())[-1]
        except ValueError:
            avg_key, avg = f"avg[{','.join(f'{v:g}' for v in r['fp_rates'])}]", float(r["average_sensitivity"])
        # the curve holds each best point until the next FP count; on a log axis FP count 0 sits at x_min
        x = np.r_[np.maximum(fps, x_min), max(x_max, float(fps[-1]))]
        ax.plot(x[:-1], sens, drawstyle="steps-post", linewidth=1.4, label=f"{label} ({avg_key} {avg:.3f})", **style)
        ax.plot(x[-2:], [sens[-1], sens[-1]], linewidth=1.0, linestyle=":", color=style["color"])
        ax.plot(r["fp_rates"], r["sensitivity"], marker="o", linestyle="none", markersize=5, color=style["color"])
    ax.set_xscale("log")
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(0.0, 1.02)
    ax.set_xticks(all_rates)
    ax.set_xticklabels([f"{v:g}" for v in all_rates])
    ax.minorticks_off()
    ax.set_xlabel("Average false positives per image (log scale)")
    ax.set_ylabel("Sensitivity")
    ax.set_title(title or "FROC")
    ax.grid(True, linewidth=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path, dpi)
