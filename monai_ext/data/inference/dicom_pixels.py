# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Whether a DICOM file holds the pixel data its header promises, checked without decoding it.

MONAI's readers do not all refuse a short file: ``PydicomReader`` raises, but ``ITKReader`` (GDCM, the reader that
``LoadImage(reader=None)`` picks for ``.dcm``) returns an image of the header's shape whose missing part is whatever
was in memory, so the same file gives different values in two runs. :func:`dicom_pixel_data_error` catches such files
from the header alone (``pydicom.dcmread(defer_size=...)`` reads the tags and only the position and length of the
pixel data); :func:`decoded_size_error` compares a decoded image with the header.

What is checked, for a file with a native (uncompressed) transfer syntax:

- a Pixel Data element (7FE0,0010) (or Float / Double Float Pixel Data) is present, with Rows, Columns,
  BitsAllocated, SamplesPerPixel and PhotometricInterpretation (what a decoder needs);
- its length is at least ``Rows * Columns * SamplesPerPixel * NumberOfFrames * BitsAllocated / 8`` bytes
  (``pydicom.pixels.utils.get_expected_length``; a larger element is allowed, as pydicom allows it);
- the file holds that many bytes after the element's start (a file cut short after its header).

For an encapsulated (compressed) transfer syntax only the presence of the element is checked here: its fragments
have no length to compare before decoding; the decoders fail on truncated codestreams.
"""

from __future__ import annotations

import os
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels.utils import get_expected_length
from pydicom.tag import Tag

__all__ = [
    "PIXEL_DATA_TAGS",
    "read_dicom_header",
    "pixel_data_error",
    "dicom_pixel_data_error",
    "expected_pixel_count",
    "decoded_size_error",
]

PIXEL_DATA_TAGS: tuple[int, ...] = (0x7FE00010, 0x7FE00008, 0x7FE00009)
"""Pixel Data, Float Pixel Data and Double Float Pixel Data; an image holds one of them."""

_IMAGE_PIXEL_KEYWORDS = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation")
_UNDEFINED_LENGTH = 0xFFFFFFFF
_DEFER_SIZE = 1024  # bytes: larger values (the pixel data) are not read, only their position and length


def read_dicom_header(path: str | os.PathLike) -> Dataset:
    """The dataset of ``path`` with values over 1 KiB left unread (their length and position are kept), as
    :func:`pixel_data_error` needs it.

    Raises:
        Exception: whatever ``pydicom.dcmread`` raises on a file it cannot parse.
    """
    return pydicom.dcmread(path, defer_size=_DEFER_SIZE)


def _pixel_element(ds: Dataset) -> tuple[int, Any] | None:
    """``(tag, element)`` of the first pixel data element of ``ds`` without reading a deferred value, or None."""
    for tag in PIXEL_DATA_TAGS:
        if Tag(tag) in ds:
            return tag, ds.get_item(tag, keep_deferred=True)
    return None


def _element_length(element: Any) -> tuple[int, int | None]:
    """``(length in bytes, file offset of the value or None)`` of a raw (maybe deferred) or converted element."""
    value_tell = getattr(element, "value_tell", None)
    length = getattr(element, "length", None)
    if length is None:  # a converted DataElement: its value was read
        value = element.value
        length = len(value) if value is not None else 0
    return int(length), value_tell


def expected_pixel_count(ds: Dataset) -> int:
    """``Rows * Columns * SamplesPerPixel * NumberOfFrames``: the number of values a decoder must return.

    Raises:
        AttributeError: Rows or Columns is missing.
    """
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1) * frames


def _geometry_text(ds: Dataset) -> str:
    return (
        f"Rows {ds.get('Rows')} x Columns {ds.get('Columns')} x SamplesPerPixel {ds.get('SamplesPerPixel', 1)} x "
        f"NumberOfFrames {ds.get('NumberOfFrames', 1)} at BitsAllocated {ds.get('BitsAllocated')}"
    )


def dicom_pixel_data_error(path: str | os.PathLike) -> str | None:
    """Why the DICOM file ``path`` cannot be read or does not hold the pixel data its header promises, or None (see
    the module docstring for what is checked). Reads the header only, so it is cheap; thread-safe.

    Returns:
        The error text, naming the file, the header's numbers and what to do; None for a complete file.
    """
    try:
        ds = read_dicom_header(path)
    except Exception as e:  # noqa: BLE001 -- any pydicom failure: the header cannot be read
        return f"cannot read the DICOM header of '{path}': {type(e).__name__}: {e}"
    return pixel_data_error(ds, path)


def pixel_data_error(ds: Dataset, path: str | os.PathLike) -> str | None:
    """Why the dataset ``ds`` (of the file ``path``, read by :func:`read_dicom_header`) does not hold the pixel data
    its header promises, or None.

    Args:
        ds: the file's dataset, its pixel data deferred (not read).
        path: the file, for the message and its size.
    """
    found = _pixel_element(ds)
    if found is None:
        return (
            f"'{path}' has no pixel data: no Pixel Data (7FE0,0010) element (a DICOM without an image, e.g. a "
            "structured report or presentation state); give image files only."
        )
    missing = [k for k in _IMAGE_PIXEL_KEYWORDS if ds.get(k) in (None, "")]
    if missing:
        return f"'{path}' lacks {', '.join(missing)} of the Image Pixel module; the pixel data cannot be decoded."
    tag, element = found
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_encapsulated:
        return None
    length, value_tell = _element_length(element)
    fix = "re-export or re-download the file"
    if length == _UNDEFINED_LENGTH:
        return f"'{path}': the pixel data has an undefined length but the transfer syntax {syntax} is not compressed."
    try:
        expected = get_expected_length(ds, unit="bytes")
    except (AttributeError, KeyError, ValueError, TypeError) as e:
        return f"'{path}': the Image Pixel module is inconsistent ({type(e).__name__}: {e})."
    if tag != 0x7FE00010:  # float pixel data: 4 or 8 bytes per value whatever BitsAllocated says
        expected = expected_pixel_count(ds) * (4 if tag == 0x7FE00008 else 8)
    if length < expected:
        return (
            f"'{path}': the pixel data holds {length} bytes but the header promises {expected} ({_geometry_text(ds)}); "
            f"a reader would pad the missing part with arbitrary values. {fix.capitalize()}."
        )
    if value_tell is not None:
        available = os.path.getsize(path) - value_tell
        if available < expected:
            return (
                f"'{path}' is truncated: the pixel data needs {expected} bytes ({_geometry_text(ds)}) but the file "
                f"ends {available} bytes after its start; {fix}."
            )
    return None


def decoded_size_error(path: str | os.PathLike, decoded_count: int) -> str | None:
    """Why ``decoded_count`` values decoded from the DICOM file ``path`` are not the header's
    ``Rows * Columns * SamplesPerPixel * NumberOfFrames``, or None when they are (or the header cannot say)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        expected = expected_pixel_count(ds)
    except Exception as e:  # noqa: BLE001 -- any pydicom failure: the header cannot be read
        return f"cannot read the DICOM header of '{path}': {type(e).__name__}: {e}"
    if decoded_count != expected:
        return (
            f"'{path}': the reader decoded {decoded_count} values but the header promises {expected} "
            f"({_geometry_text(ds)}); re-export the file."
        )
    return None
