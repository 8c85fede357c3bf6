# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The ``cxr_nvum_classification`` bundle as the NVUM benchmark uses it: its config, network and run overrides.

- :func:`bundle_config`: the bundle's ``configs/train.json`` with overrides, as ``monai.bundle.ConfigParser``.
- :func:`bundle_network`: the bundle's ``network_def`` (DenseNet121), for the step-time benchmark.
- :func:`bundle_overrides`: the overrides of one benchmark run (:class:`Method`, seed, data and output folders).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.datalist import require_file

__all__ = ["BUNDLE_DIR", "Method", "bundle_config", "bundle_network", "bundle_overrides"]

BUNDLE_DIR = Path(__file__).resolve().parents[2] / "bundles" / "cxr_nvum_classification"


class Method(StrEnum):
    """Training methods the benchmark compares: the BCE baseline and NVUM's two modes (``nvum_mode``)."""

    BCE = "bce"
    PAPER = "paper"
    OFFICIAL = "official"


def bundle_config(
    bundle_dir: str | os.PathLike = BUNDLE_DIR, overrides: Mapping[str, Any] | None = None
) -> ConfigParser:
    """The bundle's ``configs/train.json`` with ``overrides`` applied (``ConfigParser.update``), not yet parsed.

    Args:
        bundle_dir: the bundle folder (holds ``configs/train.json``); default the repository's
            ``bundles/cxr_nvum_classification``.
        overrides: ``{config id: value}`` (e.g. from :func:`bundle_overrides`); default none.

    Raises:
        FileNotFoundError: ``configs/train.json`` is missing under ``bundle_dir``.
    """
    parser = ConfigParser()
    parser.read_config(str(require_file(Path(bundle_dir) / "configs" / "train.json", "the NVUM bundle's config")))
    if overrides:
        parser.update(dict(overrides))
    return parser


def bundle_network(bundle_dir: str | os.PathLike = BUNDLE_DIR, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The network of the bundle's ``configs/train.json`` (``network_def``), built as the bundle builds it.

    Raises:
        FileNotFoundError: ``configs/train.json`` is missing under ``bundle_dir``.
    """
    return bundle_config(bundle_dir).get_parsed_content("network_def").to(device)


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
    """Overrides of the bundle's ``train.json`` for one benchmark run.

    - every method: ``dataset_dir``, ``ckpt_dir = run_dir/models``, ``output_dir = run_dir/eval``, ``image_size``,
      ``epochs``, ``batch_size``, ``num_workers = 0``, ``seed`` (the bundle's ``set_determinism`` seed),
      ``network_def`` when given, and ``CacheDataset`` for the training and validation sets (the deterministic
      loading is cached; the random crop and flip still run every epoch);
    - ``bce``: ``loss_def = BCEWithLogitsLoss(reduction="none")`` through the same ``PerSampleTrainer`` (and the
      same EMA network for evaluation); the bundle's ``LabelAuditWriter`` disables itself for a loss that is not
      an ``NVUMLoss``;
    - ``paper`` / ``official``: ``nvum_mode``.

    Args:
        method: ``{"bce", "paper", "official"}``.
        seed: training seed.
        dataset_dir: the NIH demo folder.
        run_dir: folder of this run's checkpoints and outputs.
        image_size: network input side in pixels, default 64.
        epochs: training epochs, default 8.
        batch_size: default 16.
        network_def: replacement ``network_def`` (e.g. a small MONAI ``DenseNet``); default the bundle's.
        bundle_dir: the bundle folder; its ``train.json`` must define the ``seed`` id.

    Returns:
        ``{config id: value}`` for ``ConfigWorkflow(**overrides)`` / ``monai.bundle run``.

    Raises:
        ValueError: an unknown method, or a ``train.json`` without a ``seed`` id (the override would be ignored).
        FileNotFoundError: ``configs/train.json`` is missing under ``bundle_dir``.
    """
    method = look_up_option(method, Method)
    if "seed" not in bundle_config(bundle_dir):
        raise ValueError(
            f"the NVUM bundle's train.json under '{bundle_dir}' has no 'seed' id (used by set_determinism); the "
            "benchmark sets the training seed through it."
        )
    run_dir = Path(run_dir)
    out: dict[str, Any] = {
        "dataset_dir": str(dataset_dir),
        "ckpt_dir": str(run_dir / "models"),
        "output_dir": str(run_dir / "eval"),
        "image_size": int(image_size),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "num_workers": 0,
        "seed": int(seed),
        "nvum_mode": Method.PAPER.value if method == Method.BCE else method.value,
    }
    for part in ("train", "validate"):
        out[f"{part}#dataset#_target_"] = "CacheDataset"
        out[f"{part}#dataset#progress"] = False
    if network_def is not None:
        out["network_def"] = copy.deepcopy(dict(network_def))
    if method == Method.BCE:
        out["loss_def"] = {"_target_": "torch.nn.BCEWithLogitsLoss", "reduction": "none"}
    return out
