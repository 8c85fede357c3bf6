# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The ``covid_ct_mombs_segmentation`` bundle as the MoMBS benchmark uses it: the overrides of one run.

:func:`bundle_overrides` gives the run's own settings (sampling strategy, seeds, data and output folders, schedule)
on top of ``train.json`` + ``demo.json`` (:data:`scripts.bench.bundles.DEMO_TRAIN`), whose small ``SplitUNet``
(``small_network_def``) the efficacy benchmark trains by default.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from scripts.bench.bundles import MOMBS_BUNDLE, SMALL_NETWORK, cached_datasets, run_folders

__all__ = ["BUNDLE_DIR", "bundle_overrides"]

BUNDLE_DIR = MOMBS_BUNDLE


def bundle_overrides(
    strategy: str,
    seed: int,
    dataset_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    image_size: int = 64,
    epochs: int = 12,
    pivot_epoch: int = 4,
    batch_size: int = 8,
    num_disturbances: int = 8,
    split_seed: int | None = None,
    network_def: Mapping[str, Any] | None = None,
    cache: bool = True,
) -> dict[str, Any]:
    """Overrides of the bundle's ``train.json`` (+ ``demo.json``) for one benchmark run.

    Sets ``dataset_dir``, ``ckpt_dir = run_dir/models``, ``output_dir = run_dir/eval`` (so the difficulty files go to
    ``run_dir/eval/difficulty``), ``sampling_strategy = strategy`` (the bundle's ``MoMBSAssessor`` runs its ``K``
    passes only for strategies that rank by uncertainty), ``image_size``, ``epochs``,
    ``pivot_epoch``, ``batch_size``, ``num_disturbances``, ``num_workers = 0``, ``seed`` (the bundle's
    ``set_determinism``, sampler and assessor seed), ``split_seed``, ``network_def`` (the demo overlay's small
    ``SplitUNet``, :data:`scripts.bench.bundles.SMALL_NETWORK`, unless given); with ``cache``,
    ``CacheDataset`` for the training and validation sets (the deterministic loading, windowing and resizing are
    cached; the random flips and rotations still run every epoch).

    Args:
        strategy: the bundle's ``sampling_strategy`` as a plain string (e.g. ``"mombs"``, ``"random"``,
            ``"scl_hard"``); the bundle's sampler checks it.
        seed: training seed.
        dataset_dir: the ``covid_medseg`` demo folder (noisy training masks).
        run_dir: folder of this run's checkpoints and outputs.
        image_size: network input side in pixels, default 64.
        epochs: training epochs, default 12.
        pivot_epoch: first epoch planned by ``strategy`` (1-based), default 4; earlier epochs are random.
        batch_size: default 8 (the bundle's).
        num_disturbances: ``K`` of the assessor, default 8.
        split_seed: seed of the patient-level split; ``None`` (default) uses ``seed``.
        network_def: replacement ``network_def`` (e.g. the shipped one,
            :func:`scripts.bench.bundles.shipped_network_def`); default the demo overlay's ``small_network_def``.
        cache: use ``CacheDataset`` (default ``True``); ``False`` keeps the bundle's ``Dataset``.

    Returns:
        ``{config id: value}`` for :func:`monai_ext.bundle.workflow.run_bundle_workflow`.

    Raises:
        ValueError: ``pivot_epoch`` < 1 or ``epochs`` < 1.
    """
    if int(epochs) < 1 or int(pivot_epoch) < 1:
        raise ValueError(f"epochs and pivot_epoch must be >= 1, got epochs={epochs}, pivot_epoch={pivot_epoch}.")
    out: dict[str, Any] = {
        "dataset_dir": str(dataset_dir),
        **run_folders(run_dir),
        "sampling_strategy": str(strategy),
        "image_size": int(image_size),
        "epochs": int(epochs),
        "pivot_epoch": int(pivot_epoch),
        "batch_size": int(batch_size),
        "num_disturbances": int(num_disturbances),
        "num_workers": 0,
        "seed": int(seed),
        "split_seed": int(seed if split_seed is None else split_seed),
    }
    if cache:
        out.update(cached_datasets())
    out["network_def"] = SMALL_NETWORK if network_def is None else copy.deepcopy(dict(network_def))
    return out
