# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tables and figure of the DeepLesion MoMBS study (:mod:`scripts.bench.deeplesion_study`): ``deeplesion_bench.json``,
``deeplesion_bench.png`` and ``README_table.md``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from scripts.bench import study  # noqa: E402
from scripts.bench.deeplesion_study import ARM_LABELS, BASELINE  # noqa: E402
from scripts.bench.results_io import save_figure, write_json  # noqa: E402

__all__ = ["results_table", "plot_study", "write_results"]

_COLUMNS = {"avg": "test sensitivity, mean over 0.5-2 FPs/image", "sens@4": "sensitivity at 4 FPs/image"}


def results_table(result: Mapping[str, Any]) -> str:
    """One Markdown table per training fraction (arms x metrics, paired differences to random with 95 % CIs)."""
    plan = result["plan"]
    timing = f"wall time {result.get('wall_s', 0) / 60:.0f} min" if result.get("wall_s") else "read back from disk"
    lines = [
        f"DeepLesion demo study, plan '{plan['name']}': {len(result['runs'])} runs, {plan['epochs']} epochs (pivot "
        f"{plan['pivot_epoch']}), seeds {list(plan['seeds'])}; {timing}.",
        "",
    ]
    for fraction, arms in result["aggregate"].items():
        n_train = sorted({r["n_train"] for r in result["runs"] if f"{float(r['fraction']):g}" == fraction
                          and "n_train" in r})  # fmt: skip
        images = f" ({', '.join(map(str, n_train))} training images)" if n_train else ""
        lines.append(f"**{float(fraction) * 100:.0f} % of the training patients**{images}:")
        lines.append("")
        lines.append(study.comparison_table(arms, _COLUMNS, ARM_LABELS, BASELINE))
    return "\n".join(lines)


def plot_study(result: Mapping[str, Any], png_file: str | os.PathLike) -> Path:
    """Per-seed test sensitivity (mean over 0.5-2 FPs/image) of every arm, one panel per fraction."""
    fractions = list(result["aggregate"])
    fig = plt.figure(figsize=(5 * len(fractions), 4))
    for k, fraction in enumerate(fractions):
        runs = [r for r in result["runs"] if f"{float(r['fraction']):g}" == fraction]
        per_seed = {a: {int(r["seed"]): r["avg"] for r in runs if r["arm"] == a} for a in result["aggregate"][fraction]}
        study.plot_paired(
            fig,
            per_seed,
            f"{float(fraction) * 100:.0f} % of the training patients",
            "test sensitivity, mean 0.5-2 FP/image",
            ARM_LABELS,
            100 + 10 * len(fractions) + k + 1,
        )
    fig.tight_layout()
    return save_figure(fig, png_file)


def write_results(results: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``deeplesion_bench.json``, ``deeplesion_bench.png`` and ``README_table.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "README_table.md"
    text = results_table(results["study"])
    if results.get("interpretation"):
        text += "\n" + results["interpretation"] + "\n"
    table.write_text(text, encoding="utf-8")
    return {
        "json": write_json(results, out / "deeplesion_bench.json"),
        "png": plot_study(results["study"], out / "deeplesion_bench.png"),
        "table": table,
    }
