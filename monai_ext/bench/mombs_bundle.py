# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The ``covid_ct_mombs_segmentation`` bundle as the MoMBS benchmark uses it: its config, handlers and overrides.

- :func:`bundle_config`: the bundle's ``configs/train.json`` with overrides, as ``monai.bundle.ConfigParser``.
- :func:`handler_id`: the config id of a training handler found by its ``_target_`` (so that the overrides do not
  depend on the handlers' positions in ``train#handlers``).
- :func:`bundle_overrides`: the overrides of one benchmark run (sampling strategy, seeds, data and output folders).
- :data:`SMALL_UNET`: the smaller ``SplitUNet`` the efficacy benchmark trains by default on a CPU.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser
from monai.utils import look_up_option

from monai_ext.data.datalist import require_file
from monai_ext.samplers.mombs import SamplingStrategy

__all__ = ["BUNDLE_DIR", "SMALL_UNET", "bundle_config", "handler_id", "bundle_overrides"]

BUNDLE_DIR = Path(__file__).resolve().parents[2] / "bundles" / "covid_ct_mombs_segmentation"

#: the bundle's network family (``SplitUNet``, batch norm) at half the width and one residual unit per block: about
#: 0.21 M parameters against the bundle's 1.63 M, so that 15 training runs fit a CPU budget.
SMALL_UNET = {
    "_target_": "monai_ext.networks.SplitUNet",
    "spatial_dims": 2,
    "in_channels": 3,
    "out_channels": "@out_channels",
    "channels": [8, 16, 32, 64, 128],
    "strides": [2, 2, 2, 2],
    "num_res_units": 1,
    "norm": "batch",
}


def bundle_config(
    bundle_dir: str | os.PathLike = BUNDLE_DIR, overrides: Mapping[str, Any] | None = None
) -> ConfigParser:
    """The bundle's ``configs/train.json`` with ``overrides`` applied (``ConfigParser.update``), not yet parsed.

    Args:
        bundle_dir: the bundle folder (holds ``configs/train.json``); default the repository's
            ``bundles/covid_ct_mombs_segmentation``.
        overrides: ``{config id: value}`` (e.g. from :func:`bundle_overrides`); default none.

    Raises:
        FileNotFoundError: ``configs/train.json`` is missing under ``bundle_dir``.
    """
    parser = ConfigParser()
    parser.read_config(str(require_file(Path(bundle_dir) / "configs" / "train.json", "the MoMBS bundle's config")))
    if overrides:
        parser.update(dict(overrides))
    return parser


def handler_id(parser: ConfigParser, target: str, part: str = "train") -> str:
    """The config id (``"<part>#handlers#<k>"``) of the one handler of ``<part>#handlers`` whose ``_target_`` is
    ``target`` or ends with ``"." + target``.

    Example: ``handler_id(bundle_config(), "MoMBSAssessor")`` is ``"train#handlers#9"`` for the bundle's
    ``train.json`` (the position may change; the id follows it).

    Args:
        parser: the bundle config (:func:`bundle_config`).
        target: a class name (``"CheckpointSaver"``) or a dotted ``_target_``.
        part: ``"train"`` (default) or ``"validate"``.

    Raises:
        KeyError: no handler, or more than one, has that ``_target_``.
    """
    handlers = parser.get(f"{part}#handlers", [])
    targets = [str(h.get("_target_", "")) if isinstance(h, Mapping) else "" for h in handlers]
    found = [k for k, t in enumerate(targets) if t == target or t.endswith("." + target)]
    if len(found) != 1:
        raise KeyError(
            f"{len(found)} handlers of '{part}#handlers' have _target_ '{target}' (need 1); found {targets}."
        )
    return f"{part}#handlers#{found[0]}"


def bundle_overrides(
    strategy: SamplingStrategy | str,
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
    """Overrides of the bundle's ``train.json`` for one benchmark run.

    Sets ``dataset_dir``, ``ckpt_dir = run_dir/models``, ``output_dir = run_dir/eval`` (so the difficulty files go to
    ``run_dir/eval/difficulty``), ``sampler = strategy`` (the bundle switches its ``MoMBSAssessor`` on for ``mombs``
    and ``anti_mixed`` only), ``image_size``, ``epochs``, ``pivot_epoch``, ``batch_size``, ``num_disturbances``,
    ``num_workers = 0``, ``seed`` (the bundle's ``set_determinism``, sampler and assessor seed), ``split_seed`` and
    ``network_def`` when given; with ``cache``, ``CacheDataset`` for the training and validation sets (the
    deterministic loading, windowing and resizing are cached; the random flips and rotations still run every epoch).

    Args:
        strategy: ``{"mombs", "random", "scl", "ohem", "anti_mixed"}`` (:class:`SamplingStrategy`).
        seed: training seed.
        dataset_dir: the ``covid_medseg`` demo folder (noisy training masks).
        run_dir: folder of this run's checkpoints and outputs.
        image_size: network input side in pixels, default 64.
        epochs: training epochs, default 12.
        pivot_epoch: first epoch planned by ``strategy`` (1-based), default 4; earlier epochs are random.
        batch_size: default 8 (the bundle's).
        num_disturbances: ``K`` of the assessor, default 8.
        split_seed: seed of the patient-level split; ``None`` (default) uses ``seed``.
        network_def: replacement ``network_def`` (e.g. :data:`SMALL_UNET`); default the bundle's.
        cache: use ``CacheDataset`` (default ``True``); ``False`` keeps the bundle's ``Dataset``.

    Returns:
        ``{config id: value}`` for ``ConfigWorkflow(**overrides)`` / ``monai.bundle run``.

    Raises:
        ValueError: an unknown strategy, ``pivot_epoch`` < 1 or ``epochs`` < 1.
    """
    strategy = look_up_option(strategy, SamplingStrategy)
    if int(epochs) < 1 or int(pivot_epoch) < 1:
        raise ValueError(f"epochs and pivot_epoch must be >= 1, got epochs={epochs}, pivot_epoch={pivot_epoch}.")
    run_dir = Path(run_dir)
    out: dict[str, Any] = {
        "dataset_dir": str(dataset_dir),
        "ckpt_dir": str(run_dir / "models"),
        "output_dir": str(run_dir / "eval"),
        "sampler": strategy.value,
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
        for part in ("train", "validate"):
            out[f"{part}#dataset#_target_"] = "CacheDataset"
            out[f"{part}#dataset#progress"] = False
    if network_def is not None:
        out["network_def"] = copy.deepcopy(dict(network_def))
    return out
