# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DADAM on the fly: images per second of the bundle's training transform chain with DADAM against the same chain
without it (issue 13, "DADAM on-the-fly: images per second of the transform vs plain loading").

The pipelines are ``train#preprocessing`` of ``cxr_lt_fpsm_classification`` (``train.json`` + ``demo.json``) parsed
once per ``dadam_prob``: at 0 the DADAM step is MONAI's ``Identityd`` (plain loading, cropping, resizing, rotation), at
0.5 and 1.0 it is :class:`monai_ext.transforms.RandDiseasedAreaAugmentd` over the patch bank of the NIH and VinDr
boxes. The items are the training images of a MIMIC-CXR-LT demo written at ``image_size`` (default 512 px, closer to
the decoded size of a real radiograph than the demo's 128 px); only eligible items ("No Finding" for CutMix, a tail
class for Mixup) are augmented, so the eligible fraction is reported beside the rates. Building the patch bank (reading
every box source image once) is a one-off cost at start and is timed separately.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

from monai_ext.demo import get_writer
from scripts.bench.bundles import DEMO_TRAIN
from scripts.bench.transform_throughput import throughput_table, transform_throughput

__all__ = ["write_throughput_data", "dadam_pipeline", "dadam_throughput_benchmark", "dadam_throughput_table"]


def write_throughput_data(root: str | os.PathLike, image_size: int = 512, size: float = 1.0, seed: int = 0) -> dict:
    """Write a MIMIC-CXR-LT demo and NIH / VinDr box demos under ``root``.

    Returns:
        ``{"dataset_dir": MIMIC folder, "box_sources": {"nih": folder, "vindr": folder}}``.
    """
    root = Path(root)
    folders = {name: str(root / name) for name in ("mimic_cxr_lt", "nih", "vindr")}
    get_writer("mimic_cxr_lt")(folders["mimic_cxr_lt"], size=size, seed=seed, image_size=image_size)
    get_writer("nih")(folders["nih"], size=size, seed=seed + 1, image_size=image_size, bbox_fraction=1.0,
                      bbox_splits=("test", "train_val"))  # fmt: skip
    get_writer("vindr")(folders["vindr"], size=size, seed=seed + 2, image_size=image_size, min_positives=10)
    return {"dataset_dir": folders["mimic_cxr_lt"], "box_sources": {k: folders[k] for k in ("nih", "vindr")}}


def dadam_pipeline(bundle_dir: str | os.PathLike, data: dict, dadam_prob: float) -> tuple[Any, Any, list[dict]]:
    """The bundle's ``train#preprocessing`` at ``dadam_prob`` on ``data`` (:func:`write_throughput_data`).

    Returns:
        ``(preprocessing Compose, its DADAM step, the training datalist)``.
    """
    parser = ConfigParser()
    parser.read_config([os.path.join(str(bundle_dir), c) for c in DEMO_TRAIN])
    parser.update({"bundle_root": str(bundle_dir), "dataset_dir": data["dataset_dir"],
                   "box_sources": data["box_sources"], "dadam_prob": float(dadam_prob)})  # fmt: skip
    preprocessing = parser.get_parsed_content("train#preprocessing")
    dadam_step = parser.get_parsed_content("train#random_transforms")[0]
    return preprocessing, dadam_step, list(parser.get_parsed_content("train#datalist"))


def dadam_throughput_benchmark(
    work_dir: str | os.PathLike,
    bundle_dir: str | os.PathLike,
    probs: Sequence[float] = (0.5, 1.0),
    num_items: int = 64,
    image_size: int = 512,
    warmup: int = 1,
    repeats: int = 3,
    seed: int = 0,
    clock: Callable[[], float] = time.process_time,
) -> dict[str, Any]:
    """Images per second of ``train#preprocessing`` without DADAM (``plain``) and with DADAM at each of ``probs``.

    ``clock`` defaults to ``time.process_time`` (this process's CPU seconds: other jobs on a shared machine stay out
    of the rates; the chain runs in this process, ``num_workers`` 0); pass ``time.perf_counter`` for wall time.

    Returns:
        :func:`~scripts.bench.transform_throughput.transform_throughput`'s result plus ``"clock"``, ``"image_size"``,
        ``"eligible_items"``, ``"bank_build_s"`` (``{pipeline: s}``), ``"num_patches"`` and ``"tail_classes"``.

    Raises:
        ValueError: ``probs`` empty or outside (0, 1], ``num_items`` < 1.
    """
    if not probs or any(not 0.0 < float(p) <= 1.0 for p in probs):
        raise ValueError(f"probs must be non-empty values in (0, 1], got {list(probs)}.")
    if num_items < 1:
        raise ValueError(f"num_items must be >= 1, got {num_items}.")
    data = write_throughput_data(work_dir, image_size=image_size, seed=seed)
    plain, _, datalist = dadam_pipeline(bundle_dir, data, 0.0)
    pipelines, build_s, step = {"plain": plain}, {}, None
    for p in probs:
        start = time.perf_counter()
        pipeline, step, _ = dadam_pipeline(bundle_dir, data, float(p))
        build_s[f"dadam_p{p:g}"] = time.perf_counter() - start
        pipelines[f"dadam_p{p:g}"] = pipeline
    for offset, pipeline in enumerate(pipelines.values()):
        pipeline.set_random_state(seed=seed + offset)
    items = datalist[:num_items]
    result = transform_throughput(pipelines, items, repeats=repeats, warmup=warmup, reference="plain", clock=clock)
    result["clock"] = getattr(clock, "__name__", str(clock))
    aug = step.augmenter
    result.update({
        "image_size": int(image_size),
        "eligible_items": sum(aug.mode_for(item["label"]) is not None for item in items),
        "bank_build_s": build_s,
        "num_patches": len(aug.bank),
        "tail_classes": [aug.classes[t] for t in aug.tail_classes],
    })  # fmt: skip
    return result


def dadam_throughput_table(result: dict[str, Any]) -> str:
    """Markdown: the throughput table, then the eligible fraction and the one-off patch-bank build."""
    title = f"DADAM on the fly ({result['image_size']} px images, bundle train chain, clock {result.get('clock')})"
    table = throughput_table(result, title)
    builds = ", ".join(f"{k} {v:.1f} s" for k, v in result["bank_build_s"].items())
    n_tail = len(result["tail_classes"])
    return table + (
        f"\n{result['eligible_items']} of {result['num_items']} items are eligible (\"No Finding\" or a tail class); "
        f"the others pass DADAM unchanged. Patch bank: {result['num_patches']} box patches, {n_tail} tail classes; "
        f"parsing the config and building the bank once at start (the first reads the box images cold): {builds}.\n"
    )
