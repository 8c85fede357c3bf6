# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Case ids of inference inputs: stable, unique, filesystem-safe names derived from each input's relative path, the
same for every input kind."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from monai_ext.data.inference.filetypes import RADIOGRAPH_SUFFIXES, strip_suffix

__all__ = ["case_id_from_path", "check_case_id", "unique_case_ids"]

_MAX_ID_LENGTH = 150
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def case_id_from_path(relative_path: str | os.PathLike) -> str:
    """A filesystem-safe case id from an input path relative to the input folder (before uniqueness is enforced).

    The radiograph suffix (:data:`~monai_ext.data.inference.filetypes.RADIOGRAPH_SUFFIXES`) is dropped, folders are
    joined with ``__``, every run of characters other than ``A-Z a-z 0-9 . _ -`` becomes ``_``, leading dots and
    dashes are removed, a Windows device name (``CON``, ``NUL``, ``COM1``, ...) gets a leading ``_``, and an id
    longer than 150 characters is cut to 141 plus ``-`` and 8 hex digits of the SHA-1 of the path.

    Args:
        relative_path: the input's path relative to the input folder (a volume kind drops its NIfTI suffix first).

    Raises:
        ValueError: ``relative_path`` is empty.

    Example:
        >>> case_id_from_path("patient 01/study1/view1_frontal.dcm")
        'patient_01__study1__view1_frontal'
        >>> case_id_from_path("1.2.840.113619.2.55.3")  # a DICOM UID file name keeps its dots
        '1.2.840.113619.2.55.3'
    """
    parts = Path(relative_path).parts
    if not parts:
        raise ValueError("case_id_from_path needs a non-empty path.")
    parts = (*parts[:-1], strip_suffix(parts[-1], RADIOGRAPH_SUFFIXES) or parts[-1])
    case_id = "__".join(_UNSAFE.sub("_", p) for p in parts).lstrip(".-") or "case"
    if case_id.split(".")[0].upper() in _WINDOWS_RESERVED:
        case_id = "_" + case_id
    if len(case_id) > _MAX_ID_LENGTH:
        case_id = f"{case_id[: _MAX_ID_LENGTH - 9]}-{_short_hash(Path(relative_path).as_posix())}"
    return case_id


def unique_case_ids(id_paths: Sequence[str], relative: Sequence[str]) -> list[str]:
    """Case ids of the inputs: :func:`case_id_from_path` of each ``id_paths`` entry; ids that collide (ignoring case,
    for case-insensitive filesystems) all get ``-<8 hex digits of the SHA-1 of the relative path>``, so that an id
    depends only on its own path and its rivals.

    Args:
        id_paths: the path each id is made from (the relative path, without a volume's NIfTI suffix).
        relative: the inputs' POSIX paths relative to the input folder, in the same order (hashed, and named in
            errors).

    Raises:
        ValueError: an input is listed twice, or two ids still coincide after hashing (the message names both
            inputs: rename one of them).
    """
    ids = [case_id_from_path(p) for p in id_paths]
    groups: dict[str, list[int]] = {}
    for k, case_id in enumerate(ids):
        groups.setdefault(case_id.lower(), []).append(k)
    for members in groups.values():
        if len(members) > 1:
            for k in members:
                ids[k] = f"{ids[k]}-{_short_hash(relative[k])}"
    seen: dict[str, int] = {}
    for k, case_id in enumerate(ids):
        if case_id.lower() in seen:
            other = relative[seen[case_id.lower()]]
            if other == relative[k]:
                raise ValueError(f"'{relative[k]}' is listed twice in the inputs.")
            raise ValueError(f"case ids of '{other}' and '{relative[k]}' coincide ('{case_id}'); rename one of them.")
        seen[case_id.lower()] = k
    return ids


def check_case_id(case_id: str) -> str:
    """``case_id`` when it is a safe file name, so that a result path built from it stays inside its folder.

    Raises:
        ValueError: ``case_id`` is not a string, is empty, starts with ``.`` or ``-``, or holds a character other than
            ``A-Z a-z 0-9 . _ -`` (a path separator would write outside the output folder).
    """
    if not isinstance(case_id, str) or not _SAFE_ID.match(case_id):
        raise ValueError(
            f"case id {case_id!r} is not a safe file name (allowed: A-Z a-z 0-9 . _ -, not starting with '.' or '-'); "
            "build the datalist with monai_ext.data.inference.inference_datalist."
        )
    return case_id
