# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Checks of a workflow's output folders before anything runs: writable (:func:`check_writable_folder`), not inside
an input folder (:func:`check_output_outside_inputs`), and a checkpoint folder that a new training run would silently
overwrite (:func:`check_checkpoint_dir`); and the input data folders, which for the demo data say how to generate it
(:func:`check_data_folders`)."""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_ext.bundle.parameters import as_flag

__all__ = ["CHECKPOINT_PATTERNS", "check_writable_folder", "check_output_outside_inputs", "check_checkpoint_dir"]
__all__ += ["check_data_folders"]

CHECKPOINT_PATTERNS = ("*.pt", "*.pth")
"""The files a ``CheckpointSaver`` writes (``model.pt``, ``last.pt``, ``checkpoint_epoch=<n>.pt``)."""


def check_writable_folder(folder: str | os.PathLike, what: str = "output_dir") -> Path:
    """Create ``folder`` (with parents) and write and delete a temporary file in it.

    Args:
        folder: the folder.
        what: the config id, named in the error.

    Returns:
        the folder as a ``Path``.

    Raises:
        PermissionError: the folder cannot be created or written; the message names the id, the folder and the OS
            reason.
    """
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_check_"):
            pass
    except OSError as e:
        raise PermissionError(
            f"'{what}' = '{path}' cannot be written ({e.strerror or e}); "
            f"choose a writable folder with --{what} <folder>."
        ) from e
    return path


def check_output_outside_inputs(
    output_dir: str | os.PathLike, inputs: str | os.PathLike | Sequence[str | os.PathLike]
) -> None:
    """Refuse an output folder equal to or inside an input folder (symlinks resolved): a second run would read its
    own results as new cases.

    Args:
        output_dir: the results folder.
        inputs: the input folder, ``.txt`` list, file or sequence of paths (the folders among them are compared).

    Raises:
        ValueError: naming both folders.
    """
    out = Path(output_dir).expanduser().resolve()
    listed = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    for entry in listed:
        folder = Path(entry).expanduser().resolve()
        if folder.is_dir() and (out == folder or folder in out.parents):
            raise ValueError(
                f"output_dir '{out}' is inside the input folder '{folder}': a later run would read its own results as "
                "new cases. Choose an output folder outside the inputs (--output_dir <folder>)."
            )


def check_checkpoint_dir(ckpt_dir: str | os.PathLike, resume_ckpt: str | os.PathLike | None, overwrite=False) -> Path:
    """Refuse a new training run into a folder that already holds checkpoints (it would replace them), unless it
    resumes from one (``resume_ckpt``) or ``overwrite`` is true; check the folder is writable.

    Raises:
        FileExistsError: naming the checkpoints and the ways out.
        PermissionError: the folder cannot be written (:func:`check_writable_folder`).
    """
    folder = Path(ckpt_dir)
    found = sorted({p.name for pattern in CHECKPOINT_PATTERNS for p in folder.glob(pattern)}) if folder.is_dir() else []
    if found and resume_ckpt is None and not as_flag(overwrite, "overwrite"):
        raise FileExistsError(
            f"ckpt_dir '{folder}' already holds checkpoint(s) {found} of an earlier run, which this run would replace. "
            f"Resume from them (--resume_ckpt {folder / 'last.pt'}), choose another folder (--ckpt_dir <folder>), or "
            "replace them (--overwrite true)."
        )
    return check_writable_folder(folder, "ckpt_dir")


def _folder_items(name: str, value) -> list[tuple[str, Path]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [item for key, sub in value.items() for item in _folder_items(f"{name}#{key}", sub)]
    return [(name, Path(value))]


def check_data_folders(demo_dir: str | os.PathLike, **folders) -> None:
    """Refuse missing input data folders before a workflow builds anything; for a folder at the bundle's default demo
    location (``<demo_dir>/<dataset>``, a :mod:`monai_ext.demo` dataset name) say the command that generates it.

    Example: ``"$monai_ext.bundle.check_data_folders(@demo_dir, dataset_dir=@dataset_dir)"``; a missing
    ``<bundle>/demo_data/nih`` raises with ``python -m monai_ext.demo --out <bundle>/demo_data --only nih``.

    Args:
        demo_dir: the bundle's demo data folder (``"$@bundle_root + '/demo_data'"``).
        folders: ``id=folder``; a mapping value (``box_sources``) is checked per entry (``box_sources#nih``); None
            (an optional folder not given) is skipped.

    Raises:
        FileNotFoundError: naming every missing folder and its id, with the demo command for those in ``demo_dir``
            and ``--<id> <folder>`` for the others.
    """
    from monai_ext.demo import DEMO_WRITERS  # names only; the writers load on use

    demo = Path(demo_dir).expanduser().resolve()
    missing = [(name, path) for key, value in folders.items() for name, path in _folder_items(key, value)]
    missing = [(name, path) for name, path in missing if not path.is_dir()]
    if not missing:
        return
    demo_names = [p.name for _, p in missing if p.expanduser().resolve().parent == demo and p.name in DEMO_WRITERS]
    lines = [f"'{name}' = '{path}' is not a folder" for name, path in missing]
    message = "missing data folder(s):\n- " + "\n- ".join(lines)
    if demo_names:
        only = " ".join(dict.fromkeys(demo_names))
        message += (
            f"\nThe demo data is not generated yet; generate it with:\n  python -m monai_ext.demo --out "
            f"{shlex.quote(str(demo))} --only {only}"
        )
    hint = ", ".join(f"--{name} <folder>" for name, _ in missing)
    raise FileNotFoundError(f"{message}\nTo use your own data, pass its folder: {hint}.")
