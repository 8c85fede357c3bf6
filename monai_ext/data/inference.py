# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Inference datalists: find DICOM / PNG / JPEG radiographs, give each a stable case id, leave out the cases that
already have a result, and set aside unreadable files (listed in ``skipped.csv``) before a batch inference run.

The inference run is resumable. Results are written per case as ``<output_dir>/<case_id>.json``
(:class:`monai_ext.handlers.prediction_writer.PredictionWriter` never overwrites one unless asked), so a rerun on the
same inputs computes only the cases that have no result yet (:func:`pending_cases`). Unreadable files are found
before the run (:func:`check_readable`): with ``level="decode"`` each image is read through MONAI's ``LoadImage``
with the reader of the pipeline, which also catches files whose header parses but whose pixel data is corrupt
(a DICOM with a valid ``DICM`` preamble and garbage after it passes ``pydicom.dcmread``). They are logged and
written to ``<output_dir>/skipped.csv`` (``case_id,image,error``), never silently dropped.

:func:`prepare_inference_datalist` chains the three steps in one call for a bundle's ``inference.json``.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pydicom
from monai.data import ImageReader
from monai.transforms import LoadImage
from monai.utils import look_up_option
from monai.utils.enums import StrEnum
from PIL import Image
from pydicom.misc import is_dicom

from monai_ext.utils.distributed import first_rank_decides

__all__ = [
    "IMAGE_SUFFIXES",
    "SKIPPED_CSV",
    "ReadCheck",
    "inference_datalist",
    "case_id_from_path",
    "result_path",
    "pending_cases",
    "check_readable",
    "split_readable",
    "write_skipped",
    "prepare_inference_datalist",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom", ".png", ".jpg", ".jpeg")
"""File suffixes taken as images (case-insensitive); any other file is taken when it holds the DICOM preamble."""

SKIPPED_CSV = "skipped.csv"
"""Name of the table of unreadable cases in the output folder (columns ``case_id,image,error``)."""

_LIST_SUFFIXES = (".txt",)
_DICOM_SUFFIXES = (".dcm", ".dicom")
_IGNORED_NAMES = ("DICOMDIR",)
_MAX_ID_LENGTH = 150
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_MAX_NAMED = 5


class ReadCheck(StrEnum):
    """How thoroughly :func:`check_readable` reads each file.

    - ``"header"``: DICOM header with ``pydicom.dcmread(stop_before_pixels=True)``, PNG/JPEG with PIL's ``verify``
      (chunk CRCs); fast, but a DICOM whose pixel data is corrupt passes.
    - ``"decode"``: the whole image through ``monai.transforms.LoadImage(reader=...)``, as the pipeline will read
      it; catches every file that ``LoadImaged`` would fail on, at the cost of one extra read per case.
    """

    HEADER = "header"
    DECODE = "decode"


def _is_image(path: Path) -> bool:
    """Whether ``path`` is taken as an image: a known suffix, or the ``DICM`` preamble at byte 128."""
    if path.name in _IGNORED_NAMES:
        return False
    return path.suffix.lower() in IMAGE_SUFFIXES or is_dicom(path)


def _strip_image_suffix(name: str) -> str:
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def case_id_from_path(relative_path: str | os.PathLike) -> str:
    """A filesystem-safe case id from an image path relative to the input folder (before uniqueness is enforced).

    The image suffix (:data:`IMAGE_SUFFIXES`) is dropped, folders are joined with ``__``, every run of characters
    other than ``A-Z a-z 0-9 . _ -`` becomes ``_``, leading dots and dashes are removed, a Windows device name
    (``CON``, ``NUL``, ``COM1``, ...) gets a leading ``_``, and an id longer than 150 characters is cut to 141 plus
    ``-`` and 8 hex digits of the SHA-1 of the path.

    Example:
        >>> case_id_from_path("patient 01/study1/view1_frontal.dcm")
        'patient_01__study1__view1_frontal'
        >>> case_id_from_path("1.2.840.113619.2.55.3")  # a DICOM UID file name keeps its dots
        '1.2.840.113619.2.55.3'
    """
    parts = Path(relative_path).parts
    if not parts:
        raise ValueError("case_id_from_path needs a non-empty path.")
    parts = (*parts[:-1], _strip_image_suffix(parts[-1]))
    case_id = "__".join(_UNSAFE.sub("_", p) for p in parts).lstrip(".-") or "case"
    if case_id.split(".")[0].upper() in _WINDOWS_RESERVED:
        case_id = "_" + case_id
    if len(case_id) > _MAX_ID_LENGTH:
        case_id = f"{case_id[: _MAX_ID_LENGTH - 9]}-{_short_hash(Path(relative_path).as_posix())}"
    return case_id


def _unique_case_ids(relative_paths: Sequence[str]) -> list[str]:
    """Case ids of ``relative_paths``; ids that collide (ignoring case, for case-insensitive filesystems) all get
    ``-<8 hex digits of the SHA-1 of the relative path>``, so an id depends only on its own path and its rivals."""
    ids = [case_id_from_path(p) for p in relative_paths]
    groups: dict[str, list[int]] = {}
    for k, case_id in enumerate(ids):
        groups.setdefault(case_id.lower(), []).append(k)
    for members in groups.values():
        if len(members) > 1:
            for k in members:
                ids[k] = f"{ids[k]}-{_short_hash(relative_paths[k])}"
    seen: dict[str, int] = {}
    for k, case_id in enumerate(ids):
        if case_id.lower() in seen:
            if relative_paths[seen[case_id.lower()]] == relative_paths[k]:
                raise ValueError(f"'{relative_paths[k]}' is listed twice in the inputs.")
            raise ValueError(
                f"case ids of '{relative_paths[seen[case_id.lower()]]}' and '{relative_paths[k]}' coincide "
                f"('{case_id}'); rename one of the files."
            )
        seen[case_id.lower()] = k
    return ids


def _walk_images(root: Path) -> list[Path]:
    """Images under ``root`` (recursive, hidden files and folders left out), sorted by relative POSIX path."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        found.extend(Path(folder, f) for f in files if not f.startswith(".") and _is_image(Path(folder, f)))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


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


def _check_listed(paths: Sequence[Path], source: str) -> list[Path]:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        more = f" and {len(missing) - _MAX_NAMED} more" if len(missing) > _MAX_NAMED else ""
        raise FileNotFoundError(
            f"{len(missing)} input path(s) listed in {source} do not exist: {missing[:_MAX_NAMED]}{more}."
        )
    folders = [str(p) for p in paths if p.is_dir()]
    if folders:
        raise ValueError(
            f"{source} lists folder(s) {folders[:_MAX_NAMED]}; list image files, or pass one folder as the input."
        )
    unsupported = [str(p) for p in paths if not _is_image(p)]
    if unsupported:
        raise ValueError(
            f"{source} lists file(s) that are neither DICOM (preamble 'DICM' at byte 128, or suffix .dcm/.dicom) nor "
            f"PNG/JPEG (suffix .png/.jpg/.jpeg): {unsupported[:_MAX_NAMED]}."
        )
    return list(paths)


def inference_datalist(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    image_key: str = "image",
    case_key: str = "case_id",
) -> list[dict[str, str]]:
    """Datalist of the images to run inference on, each with a unique, stable, filesystem-safe case id.

    ``inputs`` is one of:

    - a folder: searched recursively; files and folders whose name starts with ``.`` (``.DS_Store``, macOS ``._x``
      files) and ``DICOMDIR`` are left out; other files that are not images are ignored; sorted by relative path;
    - a text file (``.txt``): one path per line, blank lines and ``#`` comments ignored, relative paths relative to
      the text file's folder; kept in file order;
    - one image file, or a sequence of image files: kept in the given order.

    An image is a DICOM file (``DICM`` preamble at byte 128 whatever the suffix, or suffix ``.dcm``/``.dicom``) or a
    PNG/JPEG (suffix ``.png``, ``.jpg``, ``.jpeg``, any case). The case id is :func:`case_id_from_path` of the path
    relative to the folder (or to the deepest folder holding every listed file); ids that would collide, ignoring
    case, all get a suffix ``-<hash of the relative path>``. The same input gives the same ids on every run.

    Args:
        inputs: folder, ``.txt`` list, image file or sequence of image files.
        image_key: key of the absolute image path in each item. Defaults to ``"image"``.
        case_key: key of the case id. Defaults to ``"case_id"``.

    Returns:
        ``[{image_key: absolute path, case_key: case id}, ...]``.

    Raises:
        FileNotFoundError: ``inputs`` or a listed path does not exist (the message names it).
        ValueError: no image was found, a listed path is a folder or not an image, a single file is neither an image
            nor a ``.txt`` list, or two case ids still coincide after hashing.

    Example:
        A folder ``in/`` with ``a/1.dcm``, ``a/1.png``, ``b/IM0001`` (DICOM without suffix) and ``notes.txt`` gives
        the ids ``a__1-<hash>``, ``a__1-<hash>`` (``a/1`` is ambiguous) and ``b__IM0001``.
    """
    root: Path | None = None
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"inference input not found: '{path}'. Give a folder of DICOM/PNG/JPEG images (searched recursively), "
                "a .txt file listing image paths, or image files."
            )
        if path.is_dir():
            root, files = path, _walk_images(path)
            if not files:
                raise ValueError(
                    f"no DICOM/PNG/JPEG image found under '{path}' (searched recursively; accepted: DICOM preamble "
                    f"or suffix {list(IMAGE_SUFFIXES)}; hidden files and DICOMDIR are left out)."
                )
        elif path.suffix.lower() in _LIST_SUFFIXES:
            files = _check_listed(_read_list_file(path), f"'{path}'")
            if not files:
                raise ValueError(f"the input list '{path}' names no image (blank lines and # comments are ignored).")
        else:
            files = _check_listed([path], "the inputs")
    else:
        files = _check_listed([Path(p).expanduser() for p in inputs], "the inputs")
        if not files:
            raise ValueError("the inputs are an empty list; give a folder, a .txt list or image files.")
    if root is None:  # listed files: relative to the deepest folder holding all of them
        root = Path(os.path.commonpath([os.path.abspath(p.parent) for p in files]))
    absolute = [Path(os.path.abspath(p)) for p in files]
    relative = [p.relative_to(os.path.abspath(root)).as_posix() for p in absolute]
    ids = _unique_case_ids(relative)
    return [{image_key: str(p), case_key: case_id} for p, case_id in zip(absolute, ids)]


def result_path(output_dir: str | os.PathLike, case_id: str) -> Path:
    """``<output_dir>/<case_id>.json``, the per-case result file.

    Raises:
        ValueError: ``case_id`` is empty, starts with ``.`` or ``-``, or holds a character other than
            ``A-Z a-z 0-9 . _ -`` (a path separator would write outside ``output_dir``).
    """
    if not isinstance(case_id, str) or not _SAFE_ID.match(case_id):
        raise ValueError(
            f"case id {case_id!r} is not a safe file name (allowed: A-Z a-z 0-9 . _ -, not starting with '.' or '-'); "
            "build the datalist with monai_ext.data.inference.inference_datalist."
        )
    return Path(output_dir) / f"{case_id}.json"


def pending_cases(
    datalist: Sequence[dict], output_dir: str | os.PathLike, overwrite: bool = False, case_key: str = "case_id"
) -> list[dict]:
    """The items of ``datalist`` that have no result ``<output_dir>/<case_id>.json`` yet (all of them when
    ``overwrite``), in datalist order. How many already have one is logged, so nothing is recomputed silently.

    Args:
        datalist: items with ``case_key`` (e.g. from :func:`inference_datalist`).
        output_dir: the folder of per-case results.
        overwrite: keep every item, so that existing results are recomputed and replaced. Defaults to False.
        case_key: key of the case id. Defaults to ``"case_id"``.

    Raises:
        KeyError: an item has no ``case_key``.
        ValueError: a case id is not a safe file name (see :func:`result_path`).
    """
    missing = [k for k, item in enumerate(datalist) if case_key not in item]
    if missing:
        raise KeyError(f"datalist item(s) {missing[:_MAX_NAMED]} have no '{case_key}'; use inference_datalist.")
    done = [item for item in datalist if result_path(output_dir, item[case_key]).is_file()]
    if overwrite:
        if done:
            logger.info(
                f"{len(done)} of {len(datalist)} cases already have a result in '{output_dir}'; overwrite=True: they "
                "are recomputed and replaced."
            )
        return list(datalist)
    if done:
        logger.info(
            f"{len(done)} of {len(datalist)} cases already have a result in '{output_dir}' and are left out "
            "(overwrite=False); delete a result file or pass overwrite=True to recompute it."
        )
    done_ids = {item[case_key] for item in done}
    return [item for item in datalist if item[case_key] not in done_ids]


def _header_error(path: str) -> str | None:
    """Error text if the header of ``path`` cannot be read (DICOM by preamble or suffix, else PIL), else None."""
    p = Path(path)
    try:
        if p.suffix.lower() in _DICOM_SUFFIXES or is_dicom(p):
            pydicom.dcmread(p, stop_before_pixels=True)
        else:
            with Image.open(p) as img:
                img.verify()
    except Exception as e:  # noqa: BLE001 -- any failure of a third-party reader marks the case unreadable
        return f"{type(e).__name__}: {e}"
    return None


class _Decoder:
    """Reads a whole image with ``LoadImage(reader)``; one ``LoadImage`` per thread."""

    def __init__(self, reader: str | type | ImageReader | None) -> None:
        self.reader = reader
        self._local = threading.local()

    def __call__(self, path: str) -> str | None:
        if not hasattr(self._local, "load"):
            self._local.load = LoadImage(reader=self.reader, image_only=True)
        try:
            self._local.load(path)
        except Exception as e:  # noqa: BLE001 -- any failure of a MONAI/ITK/pydicom/PIL reader marks it unreadable
            return f"{type(e).__name__}: {e}"
        return None


def check_readable(
    datalist: Sequence[dict],
    reader: str | type | ImageReader | None = None,
    level: ReadCheck | str = ReadCheck.DECODE,
    image_key: str = "image",
    num_workers: int = 0,
) -> tuple[list[dict], list[dict]]:
    """Split ``datalist`` into the items whose image can be read and those that cannot, with the error.

    Args:
        datalist: items with ``image_key`` (a path).
        reader: the image reader of the inference pipeline (``level="decode"``), as ``LoadImage(reader=...)`` takes
            it: None (MONAI picks by suffix), a name such as ``"PydicomReader"``/``"ITKReader"``, a class or an
            instance. Defaults to None. Ignored by ``level="header"``.
        level: {``"header"``, ``"decode"``}, see :class:`ReadCheck`. Defaults to ``"decode"`` (catches corrupt
            pixel data too).
        image_key: key of the image path. Defaults to ``"image"``.
        num_workers: threads reading files in parallel; 0 reads in this thread. Defaults to 0.

    Returns:
        ``(readable, unreadable)`` in datalist order; each unreadable item is a copy with ``"error"``
        (``"<exception type>: <message>"``). Each unreadable case is logged as a warning.

    Raises:
        ValueError: ``level`` is not an allowed value or ``num_workers`` < 0.
        KeyError: an item has no ``image_key``.
    """
    level = look_up_option(level, ReadCheck)
    check = _Decoder(reader) if level == ReadCheck.DECODE else _header_error
    return split_readable(datalist, check, image_key, num_workers)


def split_readable(
    datalist: Sequence[dict], check: Callable[[str], str | None], image_key: str = "image", num_workers: int = 0
) -> tuple[list[dict], list[dict]]:
    """Run ``check`` on each item's path and split the datalist by its answer (the loop of :func:`check_readable`).

    Args:
        datalist: items with ``image_key``; an item that already holds ``"error"`` is unreadable without a check.
        check: ``path -> None`` when readable, else the error text; must be thread-safe when ``num_workers > 0``.
        image_key: key of the path. Defaults to ``"image"``.
        num_workers: threads checking in parallel; 0 checks in this thread. Defaults to 0.

    Returns:
        ``(readable, unreadable)`` in datalist order; unreadable items are copies with ``"error"``, each logged.

    Raises:
        ValueError: ``num_workers`` < 0.
        KeyError: an item has no ``image_key``.
    """
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}.")
    missing = [k for k, item in enumerate(datalist) if image_key not in item]
    if missing:
        raise KeyError(f"datalist item(s) {missing[:_MAX_NAMED]} have no '{image_key}'.")
    todo = [str(item[image_key]) for item in datalist if "error" not in item]
    if num_workers > 0:
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            found = iter(list(pool.map(check, todo)))
    else:
        found = iter([check(p) for p in todo])
    readable, unreadable = [], []
    for item in datalist:
        error = item["error"] if "error" in item else next(found)
        if error is None:
            readable.append(item)
        else:
            logger.warning(f"unreadable, skipped: '{item[image_key]}': {error}")
            unreadable.append({**item, "error": error})
    return readable, unreadable


def write_skipped(
    skipped: Sequence[dict], output_dir: str | os.PathLike, image_key: str = "image", case_key: str = "case_id"
) -> Path:
    """Write ``<output_dir>/skipped.csv`` (``case_id,image,error``, one row per skipped case) and return its path.

    The file describes the latest run: header only when nothing was skipped, so that a case fixed since an earlier
    run no longer appears. It is replaced atomically when its rows change, and left untouched (content and mtime)
    when it already holds exactly these rows, so a rerun with nothing new changes no file.

    Args:
        skipped: the unreadable items of :func:`check_readable` (with ``"error"``).
        output_dir: the output folder (created if needed).
        image_key: key of the image path. Defaults to ``"image"``.
        case_key: key of the case id. Defaults to ``"case_id"``.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / SKIPPED_CSV
    rows = [["case_id", "image", "error"]]
    rows += [["" if item.get(k) is None else str(item[k]) for k in (case_key, image_key, "error")] for item in skipped]
    if _csv_rows(path) != rows:
        tmp = out / f".{SKIPPED_CSV}.{os.getpid()}.tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        os.replace(tmp, path)
    if skipped:
        logger.warning(f"{len(skipped)} unreadable case(s) skipped; listed in '{path}'.")
    return path


def _csv_rows(path: Path) -> list[list[str]] | None:
    """The rows of the CSV file ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def prepare_inference_datalist(
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
    """One call for an ``inference.json``: :func:`inference_datalist`, then :func:`pending_cases`, then
    :func:`check_readable`; writes ``<output_dir>/skipped.csv`` (:func:`write_skipped`) and returns the readable
    pending items (possibly none: everything done, or nothing readable).

    Args:
        inputs: folder, ``.txt`` list, image file or sequence of image files (see :func:`inference_datalist`).
        output_dir: the folder of per-case results and of ``skipped.csv``.
        overwrite: also return the cases that already have a result. Defaults to False.
        reader: the pipeline's image reader, see :func:`check_readable`. Defaults to None.
        level: {``"header"``, ``"decode"``}. Defaults to ``"decode"``.
        num_workers: threads of the read check. Defaults to 0.
        image_key: key of the image path. Defaults to ``"image"``.
        case_key: key of the case id. Defaults to ``"case_id"``.
        distributed: under an initialised ``torch.distributed`` process group with several ranks, let the first rank
            build the list (and write ``skipped.csv``) and broadcast it, so that every rank sees the same cases even
            when another rank already writes results. A collective call then: every rank must make it. Defaults to
            True (no effect without a process group).

    Raises:
        FileNotFoundError, ValueError: as :func:`inference_datalist` and :func:`check_readable`.
    """
    if distributed:  # one rank decides, so that every rank's sampler splits the same list while results are written
        return first_rank_decides(
            lambda: prepare_inference_datalist(
                inputs, output_dir, overwrite, reader, level, num_workers, image_key, case_key, distributed=False
            )
        )
    datalist = inference_datalist(inputs, image_key=image_key, case_key=case_key)
    todo = pending_cases(datalist, output_dir, overwrite=overwrite, case_key=case_key)
    readable, unreadable = check_readable(
        todo, reader=reader, level=level, image_key=image_key, num_workers=num_workers
    )
    write_skipped(unreadable, output_dir, image_key=image_key, case_key=case_key)
    logger.info(
        f"inference: {len(datalist)} case(s) found, {len(datalist) - len(todo)} already done, "
        f"{len(unreadable)} unreadable, {len(readable)} to run."
    )
    return readable
