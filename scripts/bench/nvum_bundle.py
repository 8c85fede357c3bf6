# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The ``cxr_nvum_classification`` bundle as the NVUM benchmark uses it: its methods, network and run overrides.

- :class:`Method`: the BCE baseline and NVUM's two modes.
- :func:`bundle_network`: the bundle's shipped ``network_def`` (DenseNet121), for the step-time benchmark.
- :func:`bundle_overrides`: the overrides of one benchmark run on top of ``train.json`` + ``demo.json``
  (:data:`scripts.bench.bundles.DEMO_TRAIN`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import torch
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.bundle.workflow import bundle_parser
from scripts.bench.bundles import NVUM_BUNDLE, SMALL_NETWORK, TRAIN, cached_datasets, run_folders

__all__ = ["BUNDLE_DIR", "Method", "bundle_network", "bundle_overrides"]

BUNDLE_DIR = NVUM_BUNDLE


class Method(StrEnum):
    """Training methods the benchmark compares: the BCE baseline and NVUM's two modes (``nvum_mode``)."""

    BCE = "bce"
    PAPER = "paper"
    OFFICIAL = "official"


def bundle_network(bundle_dir: str | os.PathLike = BUNDLE_DIR, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The network of the bundle's ``configs/train.json`` (``network_def``), built as the bundle builds it.

    Raises:
        FileNotFoundError: ``configs/train.json`` is missing under ``bundle_dir``.
    """
    return bundle_parser(bundle_dir, TRAIN).get_parsed_content("network_def").to(device)


def bundle_overrides(
    method: Method | str,
    seed: int,
    dataset_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    image_size: int = 64,
    epochs: int = 8,
    batch_size: int = 16,
    network_def: Mapping[str, Any] | None = None,
    bundle_dir: str | os.PathLike = BUNDLE_DIR,
) -> dict[str, Any]:
    """Overrides of the bundle's ``train.json`` + ``demo.json`` for one benchmark run.

    - every method: ``dataset_dir``, ``ckpt_dir = run_dir/models``, ``output_dir = run_dir/eval``, ``image_size``,
      ``epochs``, ``batch_size``, ``seed`` (the bundle's ``set_determinism`` seed), ``network_def`` (the demo
      overlay's small DenseNet, :data:`scripts.bench.bundles.SMALL_NETWORK`, unless given), and ``CacheDataset`` for
      the training and validation sets
      (:func:`scripts.bench.bundles.cached_datasets`);
    - ``bce``: ``loss_def = BCEWithLogitsLoss(reduction="none")`` through the same ``PerSampleTrainer`` (and the
      same EMA network for evaluation); the bundle's ``LabelAuditWriter`` attaches nothing for a loss without memory,
      and its EMA teacher skips the teacher forward (``memory_logits_key`` is ``None``);
    - ``paper`` / ``official``: ``nvum_mode``.

    Args:
        method: ``{"bce", "paper", "official"}``.
        seed: training seed.
        dataset_dir: the NIH demo folder.
        run_dir: folder of this run's checkpoints and outputs.
        image_size: network input side in pixels, default 64.
        epochs: training epochs, default 8.
        batch_size: default 16.
        network_def: replacement ``network_def`` (e.g. the shipped DenseNet121,
            :func:`scripts.bench.bundles.shipped_network_def`); default the demo overlay's ``small_network_def``.
        bundle_dir: the bundle folder; its ``train.json`` must define the ``seed`` id.

    Returns:
        ``{config id: value}`` for :func:`monai_ext.bundle.workflow.run_bundle_workflow`.

    Raises:
        ValueError: an unknown method, or a ``train.json`` without a ``seed`` id (the override would be ignored).
        FileNotFoundError: ``configs/train.json`` is missing under ``bundle_dir``.
    """
    method = look_up_option(method, Method)
    if "seed" not in bundle_parser(bundle_dir, TRAIN):
        raise ValueError(
            f"the NVUM bundle's train.json under '{bundle_dir}' has no 'seed' id (used by set_determinism); the "
            "benchmark sets the training seed through it."
        )
    out: dict[str, Any] = {
        "dataset_dir": str(dataset_dir),
        **run_folders(run_dir),
        "image_size": int(image_size),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "nvum_mode": Method.PAPER.value if method == Method.BCE else method.value,
        **cached_datasets(),
    }
    out["network_def"] = SMALL_NETWORK if network_def is None else copy.deepcopy(dict(network_def))
    if method == Method.BCE:
        out["loss_def"] = {"_target_": "torch.nn.BCEWithLogitsLoss", "reduction": "none"}
    return out
