# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Which bundles the app serves, and their configs with an optional overlay (e.g. the demo's small network).

monailabel 0.8.5 finds bundles through ``--conf models`` under ``<app_dir>/model/`` or the model zoo
(``monailabel/utils/others/generic.py::get_bundle_models``); this collection's bundles live in the repository's
``bundles/`` folder instead, so the app reads them from there (``--conf bundles <folder>``).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from monai.bundle import ConfigParser

__all__ = ["BUNDLE_KINDS", "SMALL_NETWORK_ID", "discover_bundles", "read_bundle_config", "bundle_class_names"]

BUNDLE_KINDS: dict[str, str] = {
    "cxr_nvum_classification": "classification",
    "rop_meta_softlabel_classification": "classification",
    "cxr_lt_fpsm_classification": "classification",
    "covid_ct_mombs_segmentation": "segmentation",
    "deeplesion_mombs_detection": "detection",
}
"""The collection's bundles and the MONAI Label task type each is served as."""

SMALL_NETWORK_ID = "small_network_def"
"""Id of the small network in a bundle's ``configs/demo.json`` overlay; with the overlay it replaces ``network_def``
(as ``scripts/demo_bundles.py`` does for the demo runs)."""


def discover_bundles(bundle_dir: str | os.PathLike, names: str | None = None) -> dict[str, Path]:
    """The bundles to serve: ``name -> folder`` of each named bundle under ``bundle_dir`` with a model.

    Args:
        bundle_dir: folder holding the bundles (``<bundle_dir>/<name>/configs/metadata.json``).
        names: comma-separated bundle names (the ``--conf models`` option); None or ``"all"`` (default) serves every
            bundle of :data:`BUNDLE_KINDS` found under ``bundle_dir``.

    Returns:
        dict in :data:`BUNDLE_KINDS` order for ``"all"``, else in the order named.

    Raises:
        FileNotFoundError: ``bundle_dir`` is missing, a named bundle is missing, or a bundle has no
            ``models/model.pt`` (the message says how to get one), or ``"all"`` finds none.
        ValueError: a name is not one of this collection's bundles.
    """
    root = Path(bundle_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"bundle folder '{root}' not found; pass --conf bundles <folder with the bundles>.")
    wanted = [n.strip() for n in (names or "all").split(",") if n.strip()]
    explicit = wanted != ["all"]
    if not explicit:
        wanted = [n for n in BUNDLE_KINDS if (root / n / "configs" / "metadata.json").is_file()]
        if not wanted:
            raise FileNotFoundError(f"no bundle of {sorted(BUNDLE_KINDS)} under '{root}'.")
    unknown = [n for n in wanted if n not in BUNDLE_KINDS]
    if unknown:
        raise ValueError(
            f"--conf models names {unknown}, which are not bundles of this collection {list(BUNDLE_KINDS)}."
        )
    found = {}
    for name in wanted:
        folder = root / name
        if not (folder / "configs" / "metadata.json").is_file():
            raise FileNotFoundError(f"bundle '{name}' not found: '{folder}/configs/metadata.json' does not exist.")
        if not (folder / "models" / "model.pt").is_file():
            raise FileNotFoundError(
                f"bundle '{name}' has no weights: '{folder}/models/model.pt' does not exist. Train it "
                f"(python -m monai.bundle run --config_file {folder}/configs/train.json ...), copy a checkpoint there, "
                "or leave the bundle out with --conf models <names>."
            )
        found[name] = folder
    return found


def read_bundle_config(bundle_path: str | os.PathLike, config_file: str, overlay: str | None = None) -> ConfigParser:
    """A bundle config with ``bundle_root`` set to the bundle, merged with ``overlay`` when given.

    Args:
        bundle_path: the bundle folder.
        config_file: the config's name under ``configs/`` (e.g. ``"inference.json"``) or a path to it.
        overlay: a config name under ``configs/`` (e.g. ``"demo.json"``) whose ids replace the config's (the
            ``monai.bundle run --config_file "[a, b]"`` rule: later files win). When it defines
            :data:`SMALL_NETWORK_ID`, that network replaces ``network_def``. None (default): no overlay.

    Raises:
        FileNotFoundError: the config or the overlay does not exist.
    """
    configs = Path(bundle_path) / "configs"
    files = [Path(config_file) if os.sep in str(config_file) else configs / config_file]
    if overlay:
        files.append(configs / overlay)
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"bundle config '{f}' not found (--conf overlay names a file under configs/).")
    parser = ConfigParser()
    parser.read_config([str(f) for f in files])
    parser.read_meta(str(configs / "metadata.json"))
    if overlay and SMALL_NETWORK_ID in parser.config:
        parser["network_def"] = copy.deepcopy(parser[SMALL_NETWORK_ID])
    parser["bundle_root"] = str(bundle_path)
    return parser


def bundle_class_names(bundle_path: str | os.PathLike) -> list[str]:
    """The class names of a bundle's output, in channel order, as ``metadata.json`` spells them.

    Taken from ``network_data_format.outputs.pred.channel_def`` (keys are channel indices), without
    ``"background"``. monailabel's ``BundleInferTask`` lower-cases these names; this app keeps them as written.

    Raises:
        KeyError: the metadata has no ``outputs.pred.channel_def``.
    """
    path = Path(bundle_path) / "configs" / "metadata.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    try:
        channels = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    except KeyError as e:
        raise KeyError(f"'{path}' has no network_data_format.outputs.pred.channel_def ({e}).") from None
    return [channels[k] for k in sorted(channels, key=int) if channels[k].lower() != "background"]
