# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Run a bundle's configs in this Python process, with overrides: the one place that builds ``ConfigParser`` and
``ConfigWorkflow`` objects for the demo runner, the benchmarks, the model-zoo checks and the tests.

``python -m monai.bundle run`` costs about ten seconds of imports per call; in-process runs share them. The calls
mirror the command line: config files merged in order (``--config_file "['configs/train.json','configs/demo.json']"``),
``bundle_root`` set to the bundle folder, overrides as ``--<id> <value>``.

Example::

    from monai_ext.bundle.workflow import run_bundle_workflow

    run_bundle_workflow("bundles/cxr_nvum_classification", ["configs/train.json", "configs/demo.json"],
                        dataset_dir="demo_data/nih", epochs=1)
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser, ConfigWorkflow

from monai_ext.bundle.parameters import PATH_IDS

__all__ = ["ConfigFiles", "bundle_folder", "config_paths", "check_overrides", "bundle_parser", "bundle_workflow"]
__all__ += ["run_bundle_workflow"]

ConfigFiles = str | os.PathLike | Sequence[str | os.PathLike]
"""One config file or several merged in order, each relative to the bundle folder (or absolute)."""

_META = Path("configs") / "metadata.json"
_LOGGING = Path("configs") / "logging.conf"


def bundle_folder(bundle_dir: str | os.PathLike) -> Path:
    """The absolute bundle folder.

    Raises:
        FileNotFoundError: ``bundle_dir`` has no ``configs`` folder.
    """
    path = Path(bundle_dir).resolve()
    if not (path / "configs").is_dir():
        raise FileNotFoundError(f"'{path}' is not a bundle folder: expected '<bundle>/configs/metadata.json'.")
    return path


def config_paths(bundle_dir: str | os.PathLike, config_file: ConfigFiles) -> list[str]:
    """The config files as absolute paths (relative ones are taken under ``bundle_dir``), in merge order.

    Raises:
        FileNotFoundError: a config file is missing (all missing ones are named).
    """
    files = [config_file] if isinstance(config_file, (str, os.PathLike)) else list(config_file)
    paths = [Path(bundle_dir) / f for f in files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"config file(s) not found: {missing}.")
    return [str(p) for p in paths]


_INTERPRETED = ("$", "@", "%")


def check_overrides(parser: ConfigParser, overrides: Mapping[str, Any]) -> None:
    """Refuse overrides the configs would not take as meant: a key that is no id of the merged configs (MONAI would
    silently add ``ouput_dir`` as a new id; a nested ``a#b`` is allowed when ``a`` exists), and a path id (see
    :data:`monai_ext.bundle.parameters.PATH_IDS`) whose value starts with ``$``, ``@`` or ``%`` (MONAI would run it
    as Python or resolve it; paths are data).

    Raises:
        KeyError: naming each unknown key and the closest known ids.
        ValueError: naming the path id and its value.
    """
    known = [k for k in parser.get() if isinstance(k, str)]
    unknown = []
    for key in overrides:
        parent = str(key).rsplit("#", 1)[0]
        if key != "bundle_root" and str(key) not in parser and not ("#" in str(key) and parent in parser):
            close = difflib.get_close_matches(str(key), known, n=3)
            unknown.append(f"'{key}'" + (f" (did you mean {close}?)" if close else ""))
    if unknown:
        raise KeyError(f"override(s) {', '.join(unknown)} are not ids of the bundle's configs; check the spelling.")
    for key, value in overrides.items():
        if key in PATH_IDS and isinstance(value, str) and value.startswith(_INTERPRETED):
            raise ValueError(
                f"'{key}' = {value!r}: a path must not start with '$', '@' or '%' (MONAI would run or resolve it); "
                "rename the folder or give the path as ./<path>."
            )


def bundle_parser(
    bundle_dir: str | os.PathLike,
    config_file: ConfigFiles = "configs/train.json",
    overrides: Mapping[str, Any] | None = None,
    meta_file: str | os.PathLike | None = None,
) -> ConfigParser:
    """A ``ConfigParser`` of the bundle's configs with its metadata (``_meta_``), ``bundle_root`` and ``overrides``,
    not yet parsed (``get_parsed_content`` builds what is asked for).

    Args:
        bundle_dir: the bundle folder.
        config_file: config file(s) merged in order; default ``"configs/train.json"``.
        overrides: ``{config id: value}`` applied last (``ConfigParser.update``); ``bundle_root`` defaults to the
            bundle folder.
        meta_file: metadata file; default ``<bundle>/configs/metadata.json`` when it exists.

    Raises:
        FileNotFoundError: the bundle folder or a config file is missing.
        KeyError, ValueError: an override is not an id of the configs, or a path override is an expression
            (:func:`check_overrides`).
    """
    bundle = bundle_folder(bundle_dir)
    parser = ConfigParser()
    parser.read_config(config_paths(bundle, config_file))
    meta = Path(meta_file) if meta_file is not None else bundle / _META
    if meta.is_file():
        parser.read_meta(str(meta))
    check_overrides(parser, dict(overrides or {}))
    parser.update({"bundle_root": str(bundle), **dict(overrides or {})})
    return parser


def bundle_workflow(
    bundle_dir: str | os.PathLike,
    config_file: ConfigFiles = "configs/train.json",
    workflow_type: str = "train",
    logging_file: bool | str | os.PathLike = False,
    meta_file: str | os.PathLike | None = None,
    **overrides: Any,
) -> ConfigWorkflow:
    """A ``ConfigWorkflow`` of the bundle's configs, not yet initialised.

    Args:
        bundle_dir: the bundle folder.
        config_file: config file(s) merged in order; default ``"configs/train.json"``.
        workflow_type: ``{"train", "infer", "eval", ...}`` as ``ConfigWorkflow`` takes it (selects the properties
            ``check_properties`` checks); default ``"train"``.
        logging_file: ``False`` (default) leaves Python logging alone; ``True`` applies the bundle's
            ``configs/logging.conf`` (as ``monai.bundle run`` does); a path applies that file.
        meta_file: metadata file; default ``<bundle>/configs/metadata.json``.
        overrides: config overrides; ``bundle_root`` defaults to the bundle folder.

    Raises:
        FileNotFoundError: the bundle folder, a config file or the logging file is missing.
        KeyError, ValueError: see :func:`check_overrides`.
    """
    bundle = bundle_folder(bundle_dir)
    if logging_file is True:
        logging_file = bundle / _LOGGING
    if logging_file is not False and not Path(logging_file).is_file():
        raise FileNotFoundError(f"logging config not found: '{logging_file}'.")
    bundle_parser(bundle, config_file, overrides, meta_file)  # checks the overrides before MONAI applies them
    return ConfigWorkflow(
        config_file=config_paths(bundle, config_file),
        meta_file=str(meta_file if meta_file is not None else bundle / _META),
        logging_file=logging_file if logging_file is False else str(logging_file),
        workflow_type=workflow_type,
        **{"bundle_root": str(bundle), **overrides},
    )


def run_bundle_workflow(
    bundle_dir: str | os.PathLike,
    config_file: ConfigFiles = "configs/train.json",
    workflow_type: str = "train",
    hooks: Sequence[Callable[[ConfigWorkflow], Any]] = (),
    logging_file: bool | str | os.PathLike = False,
    meta_file: str | os.PathLike | None = None,
    **overrides: Any,
) -> ConfigWorkflow:
    """Build (:func:`bundle_workflow`), ``initialize``, call each of ``hooks(workflow)`` (e.g. attach a probe to a
    resolved engine), ``run`` and ``finalize`` the bundle's workflow; return it (its parser holds the resolved
    objects).

    Raises:
        FileNotFoundError: see :func:`bundle_workflow`.
    """
    workflow = bundle_workflow(bundle_dir, config_file, workflow_type, logging_file, meta_file, **overrides)
    workflow.initialize()
    for hook in hooks:
        hook(workflow)
    workflow.run()
    workflow.finalize()
    return workflow
