# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Where the benchmarks find the repository's bundles, and the run settings every benchmark shares.

Benchmarks train a bundle's ``configs/train.json`` merged with its ``configs/demo.json`` small-run overlay (the same
overlay ``make demo`` and the tests use), through :func:`monai_ext.bundle.workflow.run_bundle_workflow`, with the
overlay's ``small_network_def`` as the network (:data:`SMALL_NETWORK`: many runs fit a CPU budget); a run's own
settings (seed, method, folders, epochs) are overrides on top.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser, ConfigWorkflow
from monai.data import get_track_meta, set_track_meta

from monai_ext.data.datalist import require_file

__all__ = [
    "BUNDLES_DIR",
    "NVUM_BUNDLE",
    "MOMBS_BUNDLE",
    "ROP_BUNDLE",
    "TRAIN",
    "DEMO_TRAIN",
    "DEMO_EVALUATE",
    "run_folders",
    "cached_datasets",
    "SMALL_NETWORK",
    "shipped_network_def",
    "small_network_def",
    "plain_tensors_after_caching",
    "restore_track_meta",
]

BUNDLES_DIR = Path(__file__).resolve().parents[2] / "bundles"
NVUM_BUNDLE = BUNDLES_DIR / "cxr_nvum_classification"
MOMBS_BUNDLE = BUNDLES_DIR / "covid_ct_mombs_segmentation"
ROP_BUNDLE = BUNDLES_DIR / "rop_meta_softlabel_classification"

TRAIN = "configs/train.json"
DEMO_TRAIN = (TRAIN, "configs/demo.json")
"""The training configs of a benchmark run: the bundle's ``train.json`` and its small-run overlay."""
DEMO_EVALUATE = (*DEMO_TRAIN, "configs/evaluate.json")
"""The evaluation configs of a benchmark run (``evaluate.json`` patches ``validate#...``)."""
SMALL_NETWORK = "%small_network_def"
"""The ``network_def`` override selecting the demo overlay's small network (a fresh copy of its raw config)."""


def run_folders(run_dir: str | os.PathLike) -> dict[str, str]:
    """``{"ckpt_dir": run_dir/models, "output_dir": run_dir/eval}``: where one run's checkpoints and outputs go."""
    run_dir = Path(run_dir)
    return {"ckpt_dir": str(run_dir / "models"), "output_dir": str(run_dir / "eval")}


CACHED_DATASET_IDS = ("train#dataset", "validate#dataset")
"""The dataset ids :func:`cached_datasets` turns into ``CacheDataset`` s."""


def cached_datasets() -> dict[str, Any]:
    """Overrides making the training and validation datasets ``CacheDataset`` (the deterministic loading is cached
    once; the random transforms still run every epoch), for benchmarks that train many runs on the same data."""
    out: dict[str, Any] = {}
    for dataset_id in CACHED_DATASET_IDS:
        out[f"{dataset_id}#_target_"] = "CacheDataset"
        out[f"{dataset_id}#progress"] = False
    return out


def _raw_network(bundle_dir: str | os.PathLike, config: str, key: str) -> dict[str, Any]:
    path = require_file(Path(bundle_dir) / config, "the bundle's config")
    content = ConfigParser.load_config_file(str(path))
    if key not in content:
        raise KeyError(f"'{path}' defines no '{key}'.")
    return dict(content[key])


def shipped_network_def(bundle_dir: str | os.PathLike) -> dict[str, Any]:
    """The raw ``network_def`` of the bundle's ``configs/train.json`` (the shipped network), to pass as the
    ``network_def`` override when a benchmark trains the shipped network instead of :data:`SMALL_NETWORK`.

    Raises:
        FileNotFoundError: ``configs/train.json`` is missing under ``bundle_dir``.
        KeyError: it defines no ``network_def``.
    """
    return _raw_network(bundle_dir, TRAIN, "network_def")


def small_network_def(bundle_dir: str | os.PathLike) -> dict[str, Any]:
    """The raw ``small_network_def`` of the bundle's ``configs/demo.json`` (the network benchmark runs train by
    default, :data:`SMALL_NETWORK`), to record in a benchmark's settings.

    Raises:
        FileNotFoundError: ``configs/demo.json`` is missing under ``bundle_dir``.
        KeyError: it defines no ``small_network_def``.
    """
    return _raw_network(bundle_dir, DEMO_TRAIN[1], "small_network_def")


def plain_tensors_after_caching(workflow: ConfigWorkflow) -> None:
    """A :func:`monai_ext.bundle.workflow.run_bundle_workflow` hook: switch MONAI's metadata tracking off once the
    workflow is initialised, i.e. once its ``CacheDataset`` s hold the loaded images (the loading transforms need
    the metadata: bit depth, DICOM tags). The random transforms and the network then work on plain tensors, about
    4x faster per image on a CPU, with the same pixels. ``train#dataset`` and ``validate#dataset`` are built first
    where the config defines them (an evaluation workflow builds its dataset only when it runs). Run the workflow
    inside :func:`restore_track_meta`."""
    for dataset_id in CACHED_DATASET_IDS:
        if dataset_id in workflow.parser:
            workflow.parser.get_parsed_content(dataset_id)
    set_track_meta(False)


@contextmanager
def restore_track_meta() -> Iterator[None]:
    """Restore MONAI's metadata tracking (``set_track_meta``) to its value on entry when the block ends, also when it
    fails: wrap a workflow run with :func:`plain_tensors_after_caching` in it."""
    saved = get_track_meta()
    try:
        yield
    finally:
        set_track_meta(saved)
