# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The contract of an input kind: what differs between radiograph and volume inference, and nothing else.

A kind answers five questions for the one shared pipeline (:mod:`monai_ext.data.inference.discovery`,
:mod:`~monai_ext.data.inference.prepare`, :mod:`~monai_ext.data.inference.readability`): which files or folders of a
folder are cases (:meth:`CaseKind.cases_in_folder`), whether listed paths are cases (:meth:`CaseKind.listed_cases`),
which part of a relative path names the case (:meth:`CaseKind.id_path`), where a case's result is
(:meth:`CaseKind.result_path`), and how a case is read: its header (:meth:`CaseKind.header_error`) or as a whole
(:meth:`CaseKind.loader`, :meth:`CaseKind.loaded_error`).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from monai.data import ImageReader
from monai.transforms import LoadImage

from monai_ext.data.inference.case_ids import check_case_id

__all__ = ["Case", "CaseKind"]


class Case(NamedTuple):
    """One input found: its path (a file, or a folder for a DICOM series) and, when it cannot be a case as found
    (e.g. a folder of several DICOM series), why; such a case is listed with ``"error"`` and counted unreadable."""

    path: Path
    error: str | None = None


class CaseKind(ABC):
    """What one kind of inference input makes a case, and how its cases are read and their results named.

    Class attributes (the texts complete the shared pipeline's messages):

    - ``name``: the kind's name (a :class:`~monai_ext.data.inference.kinds.InputKind` value);
    - ``noun``: one case, in "the input list names no {noun}";
    - ``result_suffix``: a case's result is ``<output_dir>/<case_id><result_suffix>``;
    - ``wanted``, ``accepted``: "no {wanted} found under '...' (searched recursively; {accepted}; ...)";
    - ``inputs_hint``: what to give, after "inference input not found: '...'.";
    - ``files_hint``: listable inputs, in "the inputs are an empty list; give a folder, a .txt list or {files_hint}".
    """

    name: ClassVar[str]
    noun: ClassVar[str]
    result_suffix: ClassVar[str]
    wanted: ClassVar[str]
    accepted: ClassVar[str]
    inputs_hint: ClassVar[str]
    files_hint: ClassVar[str]

    @abstractmethod
    def cases_in_folder(self, folder: Path, files: Sequence[Path]) -> list[Case]:
        """The cases of one folder met while searching an input folder.

        Args:
            folder: the folder.
            files: its files, hidden ones (name starting with ``.``) left out, sorted.
        """

    @abstractmethod
    def listed_cases(self, paths: Sequence[Path], source: str) -> list[Case]:
        """The cases of paths listed explicitly (a sequence, one file, or a ``.txt`` list), in the given order.

        Args:
            paths: the listed paths, ``~`` expanded, relative ones resolved against the list file's folder.
            source: where they are listed, for error messages (``"the inputs"``, ``"'cases.txt'"``).

        Raises:
            FileNotFoundError: a listed path does not exist.
            ValueError: a listed path is not a case of this kind (the message says what to list instead).
        """

    def id_path(self, relative: str) -> str:
        """The part of a case's POSIX path relative to the input folder that names it; the whole path by default."""
        return relative

    def result_path(self, output_dir: str | os.PathLike, case_id: str) -> Path:
        """``<output_dir>/<case_id><result_suffix>``, the result of one case; a case with this file is done.

        Raises:
            ValueError: ``case_id`` is not a safe file name (see
                :func:`~monai_ext.data.inference.case_ids.check_case_id`).
        """
        return Path(output_dir) / f"{check_case_id(case_id)}{self.result_suffix}"

    @abstractmethod
    def header_error(self, path: str) -> str | None:
        """The ``level="header"`` check: error text when the header of the case at ``path`` cannot be read, else
        None; must be thread-safe."""

    def loader(self, reader: str | type | ImageReader | None) -> LoadImage:
        """The ``LoadImage`` that the ``level="decode"`` check reads a whole case with, as the pipeline does."""
        return LoadImage(reader=reader, image_only=True)

    def loaded_error(self, image: Any) -> str | None:
        """Error text when a decoded case is not what the pipeline expects (none by default), else None."""
        return None

    def decoder(self, reader: str | type | ImageReader | None) -> _Decoder:
        """The ``level="decode"`` check: ``path -> error text or None``: :meth:`header_error` first (a reader may
        pad a file shorter than its header says, so the header's promise is checked before decoding), then reading
        with :meth:`loader` (one per thread) and checking with :meth:`loaded_error`."""
        return _Decoder(self, reader)


class _Decoder:
    """Checks a case's header, then reads it whole with its kind's ``LoadImage`` (one per thread); returns the error
    text or None."""

    def __init__(self, kind: CaseKind, reader: str | type | ImageReader | None) -> None:
        self.kind = kind
        self.reader = reader
        self._local = threading.local()

    def __call__(self, path: str) -> str | None:
        error = self.kind.header_error(path)
        if error is not None:
            return error
        if not hasattr(self._local, "load"):
            self._local.load = self.kind.loader(self.reader)
        try:
            image = self._local.load(path)
        except Exception as e:  # noqa: BLE001 -- any failure of a MONAI/ITK/nibabel/pydicom/PIL reader: unreadable
            return f"{type(e).__name__}: {e}"
        return self.kind.loaded_error(image)
