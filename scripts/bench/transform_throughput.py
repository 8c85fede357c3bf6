# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Transform throughput: images per second of several data pipelines over the same items, timed interleaved.

Built for issue 13's "DADAM on-the-fly: images per second of the transform vs plain loading": pass the plain loading
chain and the same chain followed by :class:`monai_ext.transforms.RandDiseasedAreaAugmentd` as two pipelines. A
round of one pipeline applies it to every item once (a shallow copy of each item, as a ``Dataset`` hands it over);
rounds of the pipelines alternate in rotating order (:func:`scripts.bench.nvum_step.time_interleaved`), so a slow
phase of a shared machine hits all of them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scripts.bench.nvum_step import time_interleaved

__all__ = ["transform_throughput", "throughput_table"]


def transform_throughput(
    pipelines: Mapping[str, Callable[[dict], Any]],
    items: Sequence[Mapping[str, Any]],
    repeats: int = 3,
    warmup: int = 1,
    reference: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Images per second of each pipeline over ``items``.

    Args:
        pipelines: ``{name: callable}``, each called on one item dict (e.g. a MONAI ``Compose`` of dictionary
            transforms); seed random pipelines before the call if their draws should be reproducible.
        items: the datalist items (e.g. ``{"image": path, "label": ...}``); every pipeline gets the same items, each
            call a fresh shallow copy ``dict(item)``.
        repeats: timed rounds over all items per pipeline, >= 1; default 3.
        warmup: untimed rounds, >= 0; default 1 (file caches, lazy imports).
        reference: the pipeline the ratios refer to; default the first.
        clock: seconds as a float, default ``time.perf_counter``.

    Returns:
        ``{"num_items", "warmup", "repeats", "reference", "round_s": {name: [s per round over all items]},
        "images_per_s": {name: num_items / median round s}, "s_per_image": {name: median round s / num_items},
        "images_per_s_rounds": {name: [per round]}, "ratio_to_reference": {name: images_per_s / reference's}}``
        (a ratio below 1: slower than the reference).

    Raises:
        ValueError: no pipelines, no items, a ``reference`` that is not a pipeline, bad ``warmup``/``repeats``.
    """
    if not pipelines:
        raise ValueError("transform_throughput needs at least one pipeline.")
    if not items:
        raise ValueError("transform_throughput needs at least one item.")
    reference = next(iter(pipelines)) if reference is None else reference
    if reference not in pipelines:
        raise ValueError(f"reference '{reference}' is not one of the pipelines {list(pipelines)}.")
    items = list(items)

    def over_items(pipeline: Callable[[dict], Any]) -> Callable[[], None]:
        def run() -> None:
            for item in items:
                pipeline(dict(item))

        return run

    rounds = time_interleaved({name: over_items(p) for name, p in pipelines.items()}, warmup=warmup, repeats=repeats,
                              clock=clock)  # fmt: skip
    n = len(items)
    median = {name: float(statistics.median(values)) for name, values in rounds.items()}
    per_s = {name: (n / m if m > 0 else float("inf")) for name, m in median.items()}
    return {
        "num_items": n,
        "warmup": int(warmup),
        "repeats": int(repeats),
        "reference": reference,
        "round_s": rounds,
        "images_per_s": per_s,
        "s_per_image": {name: m / n for name, m in median.items()},
        "images_per_s_rounds": {name: [n / t if t > 0 else float("inf") for t in v] for name, v in rounds.items()},
        "ratio_to_reference": {name: v / per_s[reference] for name, v in per_s.items()},
    }


def throughput_table(result: Mapping[str, Any], title: str = "") -> str:
    """Markdown of :func:`transform_throughput`: images per second (median round), seconds per image, ratio."""
    head = f"{title}: " if title else ""
    lines = [
        f"**{head}transform throughput** ({result['num_items']} items per round, {result['warmup']} warm-up, "
        f"{result['repeats']} interleaved timed rounds, median; ratio to {result['reference']}):",
        "",
        "| pipeline | images / s | s / image | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, per_s in result["images_per_s"].items():
        lines.append(
            f"| {name} | {per_s:.1f} | {result['s_per_image'][name]:.4f} | {result['ratio_to_reference'][name]:.3f} |"
        )
    return "\n".join(lines) + "\n"
