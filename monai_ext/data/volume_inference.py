# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Inference datalists of CT volumes: NIfTI files and DICOM series folders, with stable case ids, resumable runs and
unreadable cases set aside in ``skipped.csv``.

The volume counterpart of :mod:`monai_ext.data.inference` (radiographs), with the same design: every case found gets
a stable, unique, filesystem-safe id; a case whose result ``<output_dir>/<case_id>_seg.nii.gz`` exists is left out
(:func:`pending_volume_cases`, unless ``overwrite``), so a rerun computes only what is missing; every pending case is
read before the run (:func:`check_volumes`) and the unreadable ones are written to ``<output_dir>/skipped.csv``
(``case_id,image,error``) instead of being dropped silently or stopping the run halfway.

What is a case:

- each NIfTI file (``.nii``, ``.nii.gz``, any case): ``image`` is the file;
- each folder that directly holds DICOM files (suffix ``.dcm``/``.dicom``, or the ``DICM`` preamble at byte 128;
  ``DICOMDIR`` and hidden files are left out): ``image`` is the folder, read by MONAI's ``ITKReader`` (GDCM), which
  sorts the slices by ``ImagePositionPatient`` along the slice normal, so any slice orientation and any file
  naming work.

A DICOM case must be one series. MONAI's readers cannot read one series out of a folder holding several: on a folder,
``ITKReader`` warns and reads only the first series (``series_name`` is a reader-wide setting, not a per-case one)
and ``PydicomReader`` stacks every DICOM file of the folder, sorted by ``InstanceNumber``; on a list of files both
readers stack the files as channels, not as a volume. A folder whose files belong to several ``SeriesInstanceUID``
is therefore reported in ``skipped.csv`` with the UIDs and "put each series in its own folder", as is a folder with
a single slice (not a volume) or a DICOM file whose header cannot be read.

Reader: the bundle's ``LoadImaged`` keeps MONAI's automatic choice (``reader=None``), which picks ``NibabelReader``
for ``.nii``/``.nii.gz`` and ``ITKReader`` for a folder (as long as the environment variable ``MONAI_DICOM_READER``
does not promote another DICOM reader); :func:`check_volumes` decodes with the same choice. Both give a ``1 X Y Z``
float32 image in HU with a RAS affine (:mod:`monai_ext.data.demo.dicom_series` documents the axis order).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import pydicom
from monai.data import ImageReader
from monai.transforms import LoadImage
from monai.utils import look_up_option
from pydicom.misc import is_dicom

from monai_ext.data.inference import (
    ReadCheck,
    case_id_from_path,
    result_path,
    split_readable,
    write_skipped,
)
from monai_ext.utils.distributed import first_rank_decides

__all__ = [
    "NIFTI_SUFFIXES",
    "SEG_SUFFIX",
    "volume_inference_datalist",
    "mask_path",
    "pending_volume_cases",
    "check_volumes",
    "prepare_volume_inference_datalist",
]

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii")
"""File suffixes of NIfTI volumes (case-insensitive)."""

SEG_SUFFIX = "_seg.nii.gz"
"""Suffix of a case's result: ``<output_dir>/<case_id>_seg.nii.gz``."""

_DICOM_SUFFIXES = (".dcm", ".dicom")
_IGNORED_NAMES = ("DICOMDIR",)
_MAX_NAMED = 5


def _nifti_stem(name: str) -> str | None:
    """``name`` without its NIfTI suffix, or None when it is not a NIfTI file name."""
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def _is_dicom_file(path: Path) -> bool:
    if path.name in _IGNORED_NAMES or path.name.startswith("."):
        return False
    return path.suffix.lower() in _DICOM_SUFFIXES or is_dicom(path)


def _series_error(folder: Path, files: Sequence[Path]) -> str | None:
    """Why the DICOM files of ``folder`` are not one volume (several series, one slice, unreadable header), or None."""
    series: dict[str, list[str]] = {}
    frames = 1
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SeriesInstanceUID", "NumberOfFrames"])
        except Exception as e:  # noqa: BLE001 -- any pydicom failure marks the series unreadable
            return f"cannot read the DICOM header of '{f}': {type(e).__name__}: {e}"
        series.setdefault(str(ds.get("SeriesInstanceUID", "<no SeriesInstanceUID>")), []).append(f.name)
        frames = max(frames, int(ds.get("NumberOfFrames", 1) or 1))
    if len(series) > 1:
        listed = "; ".join(f"{uid} ({len(names)} files, e.g. {names[0]})" for uid, names in sorted(series.items()))
        return (
            f"the folder holds {len(series)} DICOM series: {listed}. MONAI's readers read one series per folder; "
            "put each series in its own folder."
        )
    if len(files) == 1 and frames < 2:
        return f"the folder holds a single DICOM slice ('{files[0].name}'), not a CT volume."
    return None


def _walk(root: Path) -> list[tuple[Path, str | None]]:
    """``(case path, discovery error)`` of every NIfTI file and DICOM folder under ``root`` (hidden entries left
    out), sorted by relative POSIX path."""
    found: list[tuple[Path, str | None]] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        paths = [Path(folder, f) for f in files if not f.startswith(".")]
        found.extend((p, None) for p in paths if _nifti_stem(p.name) is not None)
        dicoms = sorted(p for p in paths if _nifti_stem(p.name) is None and _is_dicom_file(p))
        if dicoms:
            found.append((Path(folder), _series_error(Path(folder), dicoms)))
    return sorted(found, key=lambda c: c[0].relative_to(root).as_posix())


def _listed_case(path: Path, source: str) -> tuple[Path, str | None]:
    """A listed input: a NIfTI file or a folder directly holding one DICOM series."""
    if not path.exists():
        raise FileNotFoundError(
            f"input '{path}' listed in {source} does not exist. List NIfTI files (.nii, .nii.gz) or DICOM series "
            "folders (one series per folder)."
        )
    if path.is_dir():
        dicoms = sorted(p for p in path.iterdir() if p.is_file() and _is_dicom_file(p))
        if not dicoms:
            raise ValueError(
                f"folder '{path}' listed in {source} holds no DICOM file directly; list DICOM series folders, or "
                "pass a folder as the only input to search it recursively."
            )
        return path, _series_error(path, dicoms)
    if _nifti_stem(path.name) is None:
        hint = " (a DICOM file: list its series folder instead)" if _is_dicom_file(path) else ""
        raise ValueError(f"'{path}' listed in {source} is not a NIfTI file (.nii, .nii.gz){hint}.")
    return path, None


def _relative_id_path(path: Path, root: Path) -> str:
    """POSIX path of ``path`` relative to ``root`` with the NIfTI suffix dropped (the root's name for ``root``)."""
    rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    if rel == ".":
        rel = Path(os.path.abspath(root)).name or "case"
    stem = _nifti_stem(rel)
    return stem if stem is not None else rel


def _unique_ids(id_paths: Sequence[str], relative: Sequence[str]) -> list[str]:
    """Case ids of ``id_paths``; ids colliding (ignoring case) get ``-<8 hex digits of SHA-1 of the relative path>``
    (the same hash as :func:`monai_ext.data.inference.case_id_from_path` uses for long ids)."""
    ids = [case_id_from_path(p) for p in id_paths]
    groups: dict[str, list[int]] = {}
    for k, case_id in enumerate(ids):
        groups.setdefault(case_id.lower(), []).append(k)
    for members in groups.values():
        if len(members) > 1:
            for k in members:
                ids[k] = f"{ids[k]}-{hashlib.sha1(relative[k].encode('utf-8')).hexdigest()[:8]}"
    seen: dict[str, int] = {}
    for k, case_id in enumerate(ids):
        if case_id.lower() in seen:
            other = relative[seen[case_id.lower()]]
            if other == relative[k]:
                raise ValueError(f"'{relative[k]}' is listed twice in the inputs.")
            raise ValueError(f"case ids of '{other}' and '{relative[k]}' coincide ('{case_id}'); rename one of them.")
        seen[case_id.lower()] = k
    return ids


def volume_inference_datalist(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    image_key: str = "image",
    case_key: str = "case_id",
) -> list[dict[str, str]]:
    """Datalist of the CT volumes to run inference on, each with a unique, stable, filesystem-safe case id.

    ``inputs`` is one of:

    - a folder: searched recursively; every NIfTI file is a case and every folder directly holding DICOM files is a
      case (see the module docstring); hidden files and folders and ``DICOMDIR`` are left out; sorted by relative
      path;
    - a ``.txt`` file: one NIfTI file or DICOM series folder per line, blank lines and ``#`` comments ignored,
      relative paths relative to the text file's folder; kept in file order;
    - one NIfTI file, or a sequence of NIfTI files and DICOM series folders: kept in the given order.

    The case id is :func:`monai_ext.data.inference.case_id_from_path` of the path relative to the input folder (for
    lists: to the deepest folder holding every listed file and the parent of every listed folder) without the
    NIfTI suffix; an input folder that is itself a series takes its own name. Ids that would collide ignoring case
    (``ct1.nii.gz`` next to ``ct1.nii`` or a folder ``ct1/``) all get ``-<8 hex digits of the SHA-1 of the relative
    path>``. The same inputs give the same ids on every run.

    Args:
        inputs: folder, ``.txt`` list, NIfTI file, or sequence of NIfTI files and DICOM series folders.
        image_key: key of the absolute path (file or series folder). Defaults to ``"image"``.
        case_key: key of the case id. Defaults to ``"case_id"``.

    Returns:
        ``[{image_key: absolute path, case_key: case id}, ...]``; a case that cannot be read as found (a folder of
        several series or of one slice, an unreadable DICOM header) also has ``"error"`` (text), and
        :func:`check_volumes` counts it unreadable.

    Raises:
        FileNotFoundError: ``inputs`` or a listed path does not exist.
        ValueError: nothing was found, a listed file is not NIfTI, a listed folder holds no DICOM file, or two case
            ids still coincide.

    Example:
        ``in/`` holding ``a.nii.gz``, ``p1/ct/IM0001.dcm ... IM0100.dcm`` and ``p1/ct/notes.txt`` gives
        ``[{"image": "/abs/in/a.nii.gz", "case_id": "a"}, {"image": "/abs/in/p1/ct", "case_id": "p1__ct"}]``.
    """
    root: Path | None = None
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"inference input not found: '{path}'. Give a folder (searched recursively for NIfTI files and DICOM "
                "series folders), a .txt list, a NIfTI file, or a list of NIfTI files and DICOM series folders."
            )
        if path.is_dir():
            root, cases = path, _walk(path)
            if not cases:
                raise ValueError(
                    f"no NIfTI file (.nii, .nii.gz) and no DICOM file found under '{path}' (searched recursively; "
                    "hidden files and DICOMDIR are left out)."
                )
        elif path.suffix.lower() == ".txt":
            listed = []
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    p = Path(line).expanduser()
                    listed.append(p if p.is_absolute() else path.parent / p)
            if not listed:
                raise ValueError(f"the input list '{path}' names no volume (blank lines and # comments are ignored).")
            cases = [_listed_case(p, f"'{path}'") for p in listed]
        else:
            cases = [_listed_case(path, "the inputs")]
    else:
        cases = [_listed_case(Path(p).expanduser(), "the inputs") for p in inputs]
        if not cases:
            raise ValueError("the inputs are an empty list; give a folder, a .txt list, NIfTI files or series folders.")
    if root is None:  # listed: relative to the deepest folder holding every file and the parent of every folder
        root = Path(os.path.commonpath([os.path.abspath(p.parent) for p, _ in cases]))
    relative = [Path(os.path.abspath(p)).relative_to(os.path.abspath(root)).as_posix() for p, _ in cases]
    ids = _unique_ids([_relative_id_path(p, root) for p, _ in cases], relative)
    datalist: list[dict[str, str]] = []
    for (p, error), case_id in zip(cases, ids):
        item = {image_key: os.path.abspath(p), case_key: case_id}
        if error is not None:
            item["error"] = error
        datalist.append(item)
    return datalist


def mask_path(output_dir: str | os.PathLike, case_id: str) -> Path:
    """``<output_dir>/<case_id>_seg.nii.gz``, the result of one case.

    Raises:
        ValueError: ``case_id`` is not a safe file name (see :func:`monai_ext.data.inference.result_path`).
    """
    return result_path(output_dir, case_id).with_name(f"{case_id}{SEG_SUFFIX}")


def pending_volume_cases(
    datalist: Sequence[dict], output_dir: str | os.PathLike, overwrite: bool = False, case_key: str = "case_id"
) -> list[dict]:
    """The items of ``datalist`` without a result ``<output_dir>/<case_id>_seg.nii.gz`` (all of them when
    ``overwrite``), in datalist order; how many already have one is logged.

    Args:
        datalist: items with ``case_key`` (from :func:`volume_inference_datalist`).
        output_dir: the folder of the results.
        overwrite: keep every item, so that existing results are recomputed and replaced. Defaults to False.
        case_key: key of the case id. Defaults to ``"case_id"``.

    Raises:
        KeyError: an item has no ``case_key``.
        ValueError: a case id is not a safe file name.
    """
    missing = [k for k, item in enumerate(datalist) if case_key not in item]
    if missing:
        raise KeyError(f"datalist item(s) {missing[:_MAX_NAMED]} have no '{case_key}'; use volume_inference_datalist.")
    done = {item[case_key] for item in datalist if mask_path(output_dir, item[case_key]).is_file()}
    if done:
        action = "recomputed and replaced (overwrite=True)" if overwrite else "left out (overwrite=False)"
        logger.info(f"{len(done)} of {len(datalist)} cases already have a result in '{output_dir}': {action}.")
    return list(datalist) if overwrite else [item for item in datalist if item[case_key] not in done]


def _volume_header_error(path: str) -> str | None:
    """Error text when a NIfTI header cannot be parsed (a series' headers were read by the datalist), else None."""
    if Path(path).is_dir():
        return None
    try:
        nib.load(path)
    except Exception as e:  # noqa: BLE001 -- any nibabel failure marks the case unreadable
        return f"{type(e).__name__}: {e}"
    return None


class _VolumeDecoder:
    """Reads a whole volume with ``LoadImage(reader, ensure_channel_first=True)`` (one per thread) and checks that it
    is a one-channel 3D image."""

    def __init__(self, reader: str | type | ImageReader | None) -> None:
        self.reader = reader
        self._local = threading.local()

    def __call__(self, path: str) -> str | None:
        if not hasattr(self._local, "load"):
            self._local.load = LoadImage(reader=self.reader, image_only=True, ensure_channel_first=True)
        try:
            shape = tuple(self._local.load(path).shape)
        except Exception as e:  # noqa: BLE001 -- any failure of a MONAI/ITK/nibabel reader marks it unreadable
            return f"{type(e).__name__}: {e}"
        if len(shape) != 4 or shape[0] != 1:
            return f"not a one-channel 3D volume: loaded shape (channel first) {shape}, expected (1, X, Y, Z)."
        return None


def check_volumes(
    datalist: Sequence[dict],
    reader: str | type | ImageReader | None = None,
    level: ReadCheck | str = ReadCheck.DECODE,
    image_key: str = "image",
    num_workers: int = 0,
) -> tuple[list[dict], list[dict]]:
    """Split ``datalist`` into readable volumes and unreadable ones (with the error).

    Args:
        datalist: items with ``image_key`` (a NIfTI file or DICOM series folder); an item that already has
            ``"error"`` (from :func:`volume_inference_datalist`) is unreadable without being read.
        reader: the pipeline's reader as ``LoadImage(reader=...)`` takes it. Defaults to None (MONAI's automatic
            choice, as the bundle).
        level: {``"header"``, ``"decode"``} (:class:`monai_ext.data.inference.ReadCheck`). ``"header"`` parses the
            NIfTI header only; ``"decode"`` reads the whole volume and checks it is ``1 X Y Z`` (also catches
            truncated files and single-slice DICOM). Defaults to ``"decode"``.
        image_key: key of the path. Defaults to ``"image"``.
        num_workers: threads reading in parallel; 0 reads in this thread. Defaults to 0.

    Returns:
        ``(readable, unreadable)`` in datalist order; unreadable items are copies with ``"error"``
        (``"<exception type>: <message>"``), each logged as a warning.

    Raises:
        ValueError: ``level`` is unknown or ``num_workers`` < 0.
        KeyError: an item has no ``image_key``.
    """
    level = look_up_option(level, ReadCheck)
    check = _VolumeDecoder(reader) if level == ReadCheck.DECODE else _volume_header_error
    return split_readable(datalist, check, image_key, num_workers)


def prepare_volume_inference_datalist(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    overwrite: bool = False,
    reader: str | type | ImageReader | None = None,
    level: ReadCheck | str = ReadCheck.DECODE,
    num_workers: int = 0,
    image_key: str = "image",
    case_key: str = "case_id",
    distributed: bool = True,
) -> list[dict[str, Any]]:
    """One call for an ``inference.json``: :func:`volume_inference_datalist`, :func:`pending_volume_cases`,
    :func:`check_volumes`; writes ``<output_dir>/skipped.csv`` (``case_id,image,error``: the unreadable cases of this
    call; left untouched when it already holds exactly those rows) and returns the readable pending items (possibly
    none).

    Args:
        inputs: see :func:`volume_inference_datalist`.
        output_dir: the folder of the results and of ``skipped.csv``.
        overwrite: also return the cases that already have a result. Defaults to False.
        reader: the pipeline's reader, see :func:`check_volumes`. Defaults to None.
        level: {``"header"``, ``"decode"``}. Defaults to ``"decode"``.
        num_workers: threads of the read check. Defaults to 0.
        image_key: key of the path. Defaults to ``"image"``.
        case_key: key of the case id. Defaults to ``"case_id"``.
        distributed: under an initialised ``torch.distributed`` group of several ranks, the first rank builds the
            list (and writes ``skipped.csv``) and broadcasts it, as
            :func:`monai_ext.data.inference.prepare_inference_datalist` does; a collective call then. Defaults to
            True (no effect without a process group).

    Raises:
        FileNotFoundError, ValueError: as :func:`volume_inference_datalist` and :func:`check_volumes`.
    """
    if distributed:  # one rank decides, as prepare_inference_datalist
        return first_rank_decides(
            lambda: prepare_volume_inference_datalist(
                inputs, output_dir, overwrite, reader, level, num_workers, image_key, case_key, distributed=False
            )
        )
    datalist = volume_inference_datalist(inputs, image_key=image_key, case_key=case_key)
    todo = pending_volume_cases(datalist, output_dir, overwrite=overwrite, case_key=case_key)
    readable, unreadable = check_volumes(todo, reader=reader, level=level, image_key=image_key, num_workers=num_workers)
    write_skipped(unreadable, output_dir, image_key=image_key, case_key=case_key)
    logger.info(
        f"volume inference: {len(datalist)} case(s) found, {len(datalist) - len(todo)} already done, "
        f"{len(unreadable)} unreadable, {len(readable)} to run."
    )
    return readable
