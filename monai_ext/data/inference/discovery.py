# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Finding the cases of an inference run: a folder, a ``.txt`` list or listed paths become a datalist with one stable,
unique, filesystem-safe case id per case, for every input kind."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from monai_ext.data.inference.base import Case, CaseKind
from monai_ext.data.inference.case_ids import unique_case_ids
from monai_ext.data.inference.kinds import InputKind, case_kind

__all__ = ["OUTPUT_MARKER", "mark_output_folder", "inference_datalist"]

logger = logging.getLogger(__name__)

_LIST_SUFFIXES = (".txt",)

OUTPUT_MARKER = ".monai_ext_output"
"""A hidden file the result writers put in their output folder; discovery leaves such folders out, so that a run
never reads the project's own results as input cases."""


def mark_output_folder(folder: str | os.PathLike) -> None:
    """Put :data:`OUTPUT_MARKER` in ``folder`` (which must exist)."""
    marker = Path(folder) / OUTPUT_MARKER
    if not marker.exists():
        marker.write_text("results of a monai_ext writer; inference discovery leaves this folder out\n")


def _is_output_folder(folder: Path) -> bool:
    return (folder / OUTPUT_MARKER).is_file()


def _first_visit(path: Path, seen: set[str], again: str) -> bool:
    """True the first time the real ``path`` (symlinks resolved) is reached; a path reached again (``again`` says how:
    a link loop, a second link to a folder, a second path to one file) is left out with a warning, so that nothing is
    searched or read twice."""
    real = os.path.realpath(path)
    if real in seen:
        logger.warning(f"left out '{path}': it is '{real}', already reached ({again}).")
        return False
    seen.add(real)
    return True


def _existing(folder: Path, names: list[str]) -> list[str]:
    """``names`` less broken symlinks (each logged)."""
    broken = [n for n in names if (folder / n).is_symlink() and not (folder / n).exists()]
    for name in broken:
        logger.warning(f"left out '{folder / name}': a broken symlink (its target does not exist).")
    return [n for n in names if n not in broken]


def _walk(root: Path, kind: CaseKind) -> list[Case]:
    """The cases under ``root`` (recursive, following folder symlinks once per real folder, hidden files and folders
    and result folders of this project left out), sorted by relative POSIX path."""
    seen = {os.path.realpath(root)}
    found: list[Case] = []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        if _is_output_folder(Path(folder)):
            logger.warning(f"left out '{folder}': it holds results of an earlier run ({OUTPUT_MARKER}), not inputs.")
            subfolders[:] = []
            continue
        files = _existing(Path(folder), files)
        subfolders[:] = [
            d
            for d in subfolders
            if not d.startswith(".") and _first_visit(Path(folder, d), seen, "a symlink loop or a second link")
        ]
        visible = [
            p
            for p in sorted(Path(folder, f) for f in files if not f.startswith("."))
            if _first_visit(p, seen, "a second path to one file")
        ]
        found.extend(kind.cases_in_folder(Path(folder), visible))
    return sorted(found, key=lambda c: c.path.relative_to(root).as_posix())


def _read_list_file(path: Path) -> list[Path]:
    """Paths listed one per line in a text file; blank lines and ``#`` comments are ignored; relative paths are
    relative to the text file's folder."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            entries.append(p if p.is_absolute() else path.parent / p)
    return entries


def _find_cases(
    inputs: str | os.PathLike | Sequence[str | os.PathLike], kind: CaseKind
) -> tuple[Path | None, list[Case]]:
    """``(input folder or None for listed inputs, cases)``; see :func:`inference_datalist`."""
    if not isinstance(inputs, (str, os.PathLike)):
        paths = [Path(p).expanduser() for p in inputs]
        if not paths:
            raise ValueError(f"the inputs are an empty list; give a folder, a .txt list or {kind.files_hint}.")
        return None, kind.listed_cases(paths, "the inputs")
    path = Path(inputs).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"inference input not found: '{path}'. {kind.inputs_hint}")
    if path.is_dir():
        cases = _walk(path, kind)
        if not cases:
            raise ValueError(
                f"no {kind.wanted} found under '{path}' (searched recursively; {kind.accepted}; hidden files and "
                "DICOMDIR are left out)."
            )
        return path, cases
    if path.suffix.lower() in _LIST_SUFFIXES:
        listed = _read_list_file(path)
        if not listed:
            raise ValueError(f"the input list '{path}' names no {kind.noun} (blank lines and # comments are ignored).")
        return None, kind.listed_cases(listed, f"'{path}'")
    return None, kind.listed_cases([path], "the inputs")


def inference_datalist(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    kind: InputKind | str,
    image_key: str = "image",
    case_key: str = "case_id",
) -> list[dict[str, str]]:
    """Datalist of the cases to run inference on, each with a unique, stable, filesystem-safe case id.

    ``inputs`` is one of:

    - a folder: searched recursively; files and folders whose name starts with ``.`` (``.DS_Store``, macOS ``._x``
      files) and ``DICOMDIR`` are left out; what is a case is the ``kind``'s rule (radiograph: every DICOM/PNG/JPEG
      file; volume: every NIfTI file and every folder directly holding DICOM files); other files are ignored; sorted
      by relative path;
    - a text file (``.txt``): one path per line, blank lines and ``#`` comments ignored, relative paths relative to
      the text file's folder; kept in file order;
    - one file, or a sequence of paths (radiograph: image files; volume: NIfTI files and DICOM series folders): kept
      in the given order.

    The case id is :func:`~monai_ext.data.inference.case_ids.case_id_from_path` of the path relative to the input
    folder (for listed inputs: to the deepest folder holding every listed path), without a volume's NIfTI suffix; an
    input folder that is itself a case (a DICOM series) takes its own name. Ids that would collide ignoring case
    (``a/1.dcm`` next to ``a/1.png``, ``ct1.nii.gz`` next to a series folder ``ct1/``) all get
    ``-<8 hex digits of the SHA-1 of the relative path>``. The same inputs give the same ids on every run.

    Args:
        inputs: folder, ``.txt`` list, one file, or a sequence of paths.
        kind: {``"radiograph"``, ``"volume"``}, see :class:`~monai_ext.data.inference.kinds.InputKind`.
        image_key: key of the absolute path (file or series folder) in each item. Defaults to ``"image"``.
        case_key: key of the case id. Defaults to ``"case_id"``.

    Returns:
        ``[{image_key: absolute path, case_key: case id}, ...]``; a case that cannot be read as found (a volume
        kind's folder of several series or of one slice, or with an unreadable DICOM header) also has ``"error"``
        (text), and :func:`~monai_ext.data.inference.readability.check_readable` counts it unreadable.

    Raises:
        FileNotFoundError: ``inputs`` or a listed path does not exist (the message names it).
        ValueError: ``kind`` is unknown, nothing was found, a listed path is not a case of ``kind`` (the message says
            what to list), a single file is neither a case nor a ``.txt`` list, or two case ids still coincide after
            hashing.

    Example:
        A folder ``in/`` with ``a/1.dcm``, ``a/1.png``, ``b/IM0001`` (DICOM without suffix) and ``notes.txt`` gives,
        with ``kind="radiograph"``, the ids ``a__1-<hash>``, ``a__1-<hash>`` (``a/1`` is ambiguous) and
        ``b__IM0001``. ``in/`` holding ``a.nii.gz`` and ``p1/ct/IM0001.dcm ... IM0100.dcm`` gives, with
        ``kind="volume"``, ``[{"image": "/abs/in/a.nii.gz", "case_id": "a"}, {"image": "/abs/in/p1/ct",
        "case_id": "p1__ct"}]``.
    """
    spec = case_kind(kind)
    root, cases = _find_cases(inputs, spec)
    if root is None:  # listed: relative to the deepest folder holding every listed path
        root = Path(os.path.commonpath([os.path.abspath(c.path.parent) for c in cases]))
    absolute_root = os.path.abspath(root)
    relative = [Path(os.path.abspath(c.path)).relative_to(absolute_root).as_posix() for c in cases]
    root_name = Path(absolute_root).name or "case"  # an input folder that is itself a case
    ids = unique_case_ids([spec.id_path(root_name if r == "." else r) for r in relative], relative)
    datalist: list[dict[str, str]] = []
    for case, case_id in zip(cases, ids):
        item = {image_key: os.path.abspath(case.path), case_key: case_id}
        if case.error is not None:
            item["error"] = case.error
        datalist.append(item)
    return datalist
