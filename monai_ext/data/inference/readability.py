# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The pre-flight read check of an inference run: which cases can be read (header, or whole decode with the
pipeline's reader) and the table ``skipped.csv`` of those that cannot, for every input kind."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from monai.data import ImageReader
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.inference.kinds import InputKind, case_kind

__all__ = ["SKIPPED_CSV", "ReadCheck", "check_readable", "split_readable", "write_skipped"]

logger = logging.getLogger(__name__)

SKIPPED_CSV = "skipped.csv"
"""Name of the table of unreadable cases in the output folder (columns ``case_id,image,error``)."""

_MAX_NAMED = 5


class ReadCheck(StrEnum):
    """How thoroughly :func:`check_readable` reads each case.

    - ``"header"``: the kind's header check (radiograph: a DICOM's header with pydicom, its pixel data element present
      and, for uncompressed transfer syntaxes, as long as the header promises and within the file; PNG/JPEG with PIL's
      ``verify``; volume: the NIfTI header with nibabel and, for an uncompressed ``.nii``, a file long enough for the
      header's shape; a DICOM series' headers, pixel data lengths and slice positions having been checked when it
      was found); fast, but a DICOM whose pixel data is corrupt or a truncated ``.nii.gz`` passes.
    - ``"decode"``: the header check, then the whole case through ``monai.transforms.LoadImage(reader=...)``, as the
      pipeline will read it (a DICOM radiograph must then hold as many values as its header promises; a volume must
      be ``1 X Y Z`` with no NaN or infinite voxel); catches every case that ``LoadImaged`` would fail on, and files
      that a reader would pad, at the cost of one extra read per case.
    """

    HEADER = "header"
    DECODE = "decode"


def check_readable(
    datalist: Sequence[dict],
    kind: InputKind | str,
    reader: str | type | ImageReader | None = None,
    level: ReadCheck | str = ReadCheck.DECODE,
    image_key: str = "image",
    num_workers: int = 0,
) -> tuple[list[dict], list[dict]]:
    """Split ``datalist`` into the cases that can be read and those that cannot, with the error.

    Args:
        datalist: items with ``image_key`` (a path); an item that already holds ``"error"`` (e.g. a folder of several
            DICOM series, from :func:`~monai_ext.data.inference.discovery.inference_datalist`) is unreadable without
            being read.
        kind: {``"radiograph"``, ``"volume"``}, see :class:`~monai_ext.data.inference.kinds.InputKind`.
        reader: the image reader of the inference pipeline (``level="decode"``), as ``LoadImage(reader=...)`` takes
            it: None (MONAI picks by suffix, as the bundles do), a name such as ``"PydicomReader"``/``"ITKReader"``, a
            class or an instance. Defaults to None. Ignored by ``level="header"``.
        level: {``"header"``, ``"decode"``}, see :class:`ReadCheck`. Defaults to ``"decode"`` (catches corrupt
            pixel data too).
        image_key: key of the path. Defaults to ``"image"``.
        num_workers: threads reading in parallel; 0 reads in this thread. Defaults to 0.

    Returns:
        ``(readable, unreadable)`` in datalist order; each unreadable item is a copy with ``"error"``
        (``"<exception type>: <message>"``). Each unreadable case is logged as a warning.

    Raises:
        ValueError: ``kind`` or ``level`` is not an allowed value, or ``num_workers`` < 0.
        KeyError: an item has no ``image_key``.
    """
    spec = case_kind(kind)
    level = look_up_option(level, ReadCheck)
    check = spec.decoder(reader) if level == ReadCheck.DECODE else spec.header_error
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


def _csv_rows(path: Path) -> list[list[str]] | None:
    """The rows of the CSV file ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


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

    Raises:
        OSError: ``output_dir`` cannot be created or written.
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
