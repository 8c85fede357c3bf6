# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DeepLesion reader: ``DL_info.csv`` + 16-bit PNG CT slices -> one detection item per key image.

DeepLesion (Yan, Wang, Lu, Summers, "DeepLesion: automated mining of large-scale lesion annotations and universal
lesion detection with deep learning", J. Med. Imaging 5(3), 2018, https://doi.org/10.1117/1.JMI.5.3.036501) holds
32,735 lesions on 32,120 key slices of 10,594 studies from 4,427 patients (paper). The official split sizes could not
be counted here (the real ``DL_info.csv`` is not in this project); the counts below are those printed by the official
3DCE code when it loaded the real ``DL_info.csv`` (``rsummers11/CADLab`` commit e6963e8,
``lesion_detector_3DCE/experiment_logs/log.traintest_07-20_10-22-50.Faster RCNN``), and they add up to the paper's
totals (32,120 images, 32,735 lesions):

=====  ===========  =======  ==================================
split  key images   lesions  without ``Possibly_noisy`` lesions
=====  ===========  =======  ==================================
train  22,496       22,919   22,478 images / 22,901 lesions
val    4,793        4,889    4,791 images / 4,887 lesions
test   4,831        4,927    4,817 images / 4,912 lesions
=====  ===========  =======  ==================================

(``../shared/DATASETS.md`` quotes "train 22,494 / val 4,793 / test 4,831" by image; its train number disagrees with
the log by 2 and is unsourced.) ``Possibly_noisy`` lesions are dropped from **every** split by default, as both
official detectors do at commit e6963e8: MULAN (``MULAN_universal_lesion_analysis/maskrcnn/data/datasets/
DeepLesion.py``, ``(train_val_test == index + 1) & ~noisy`` for train, val and test) and 3DCE
(``lesion_detector_3DCE/rcnn/utils/load_data.py`` ``filter_roidb``, called by both ``tools/train.py`` and
``tools/test.py``). The 2.5D context follows Ke Yan's official loader (``MULAN_universal_lesion_analysis/maskrcnn/
data/datasets/load_ct_img.py``): neighbouring slices at a target slice interval in mm, falling back towards the key
slice when a neighbour is missing.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

import numpy as np
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.datalist import assign_indices, read_csv_checked, require_dir, row_error

__all__ = [
    "DeepLesionSplit",
    "MissingNeighbours",
    "DL_INFO_COLUMNS",
    "LESION_TYPES",
    "HU_OFFSET",
    "LESION_LABEL",
    "deeplesion_datalist",
    "deeplesion_subset",
]

#: ``DL_info.csv`` header, verbatim.
DL_INFO_COLUMNS = (
    "File_name",
    "Patient_index",
    "Study_index",
    "Series_ID",
    "Key_slice_index",
    "Measurement_coordinates",
    "Bounding_boxes",
    "Lesion_diameters_Pixel_",
    "Normalized_lesion_location",
    "Coarse_lesion_type",
    "Possibly_noisy",
    "Slice_range",
    "Spacing_mm_px_",
    "Image_size",
    "DICOM_windows",
    "Patient_gender",
    "Patient_age",
    "Train_Val_Test",
)

#: ``Coarse_lesion_type`` codes (-1 = not labelled; types exist only for val/test lesions).
LESION_TYPES = {
    -1: "unlabelled",
    1: "bone",
    2: "abdomen",
    3: "mediastinum",
    4: "liver",
    5: "lung",
    6: "kidney",
    7: "soft tissue",
    8: "pelvis",
}

#: the 16-bit PNGs store ``HU + 32768``.
HU_OFFSET = 32768

#: class index of "lesion", the one class (0-based: MONAI's detectors take class indices ``0..num_classes-1``).
LESION_LABEL = 0

_LAYOUT = (
    "Expected layout: <dataset_dir>/DL_info.csv and <dataset_dir>/Images_png/<pppppp_ss_ss>/<slice:03d>.png "
    "(uint16 PNG, HU = value - 32768)."
)


class DeepLesionSplit(StrEnum):
    """Official image-level split (``Train_Val_Test`` 1/2/3) or all of them."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"
    ALL = "all"


class MissingNeighbours(StrEnum):
    """What to do when a context slice inside ``Slice_range`` is missing on disk."""

    NEAREST = "nearest"
    ERROR = "error"


_SPLIT_CODES = {1: "train", 2: "val", 3: "test"}


def _floats(csv: Path, row: int, rec: dict, column: str, count: int) -> list[float]:
    """Parse a quoted comma list such as ``"233.5, 95.2, 240.1, 98.0"`` into exactly ``count`` floats."""
    text = rec[column]
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != count:
        raise row_error(csv, row, column, f"expected {count} comma-separated numbers, found {len(parts)} in {text!r}")
    try:
        return [float(p) for p in parts]
    except ValueError as e:
        raise row_error(csv, row, column, f"not a number in {text!r}") from e


def _int(csv: Path, row: int, rec: dict, column: str) -> int:
    text = rec[column]
    try:
        value = float(str(text).strip())
    except ValueError as e:
        raise row_error(csv, row, column, f"expected an integer, found {text!r}") from e
    if not value.is_integer():
        raise row_error(csv, row, column, f"expected an integer, found {text!r}")
    return int(value)


def _optional_float(text: str) -> float:
    text = str(text).strip()
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


#: pixels a 1-based ``Bounding_boxes`` value may lie outside ``[1, Image_size]`` (allowance for rounding; our choice).
#: ``Image_size`` is read as (width, height); the order is unverified, as every DeepLesion image we know is 512 x 512.
_BOX_SLACK = 1.0


def _slice_path(images_dir: Path, series: str, index: int) -> Path:
    return images_dir / series / f"{index:03d}.png"


def _resolve(
    images_dir: Path, series: str, key: int, delta: int, lo: int, hi: int, check_files: bool, missing: list[str]
) -> Path:
    """Slice ``key + delta``, or the nearest slice towards ``key`` that lies in ``[lo, hi]`` (and exists on disk when
    ``check_files``), as the official loader's ``get_slice_name`` does; every slice inside ``[lo, hi]`` passed over
    because its file is missing is appended to ``missing``."""
    step = 1 if delta > 0 else -1
    while delta != 0:
        idx = key + delta
        if lo <= idx <= hi:
            path = _slice_path(images_dir, series, idx)
            if not check_files or path.is_file():
                break
            missing.append(str(path))
        delta -= step
    return _slice_path(images_dir, series, key + delta)


def _context(images_dir: Path, item: dict, deltas: Iterable[float], check_files: bool, missing: list[str]) -> list[str]:
    lo, hi = item["slice_range"]
    return [
        str(_resolve(images_dir, item["series"], item["key_slice"], int(d), lo, hi, check_files, missing))
        for d in deltas
    ]


def _parse_row(csv: Path, row: int, rec: dict) -> tuple[str, str, int, int, int, int, dict]:
    """Check one ``DL_info.csv`` row's key-image fields and read its lesion (0-based pixel coordinates).

    Returns:
        ``(file name, series, key slice, Train_Val_Test code, slice range low, high, lesion)``.

    Raises:
        DatasetLayoutError: a malformed or inconsistent field (file, line, column and value named).
    """
    name = str(rec["File_name"]).strip()
    match = re.fullmatch(r"(\d+_\d+_\d+)_(\d+)\.png", name)
    if match is None:
        raise row_error(csv, row, "File_name", f"expected '<pppppp_ss_ss>_<slice>.png', found {name!r}")
    stem, slice_text = match.groups()
    key = _int(csv, row, rec, "Key_slice_index")
    if key != int(slice_text):
        raise row_error(csv, row, "Key_slice_index", f"{key} differs from the slice {int(slice_text)} in {name!r}")
    code = _int(csv, row, rec, "Train_Val_Test")
    if code not in _SPLIT_CODES:
        raise row_error(csv, row, "Train_Val_Test", f"expected 1, 2 or 3, found {code}")
    noisy = _int(csv, row, rec, "Possibly_noisy")
    if noisy not in (0, 1):
        raise row_error(csv, row, "Possibly_noisy", f"expected 0 or 1, found {noisy}")
    box = _floats(csv, row, rec, "Bounding_boxes", 4)
    if box[2] < box[0] or box[3] < box[1]:
        raise row_error(csv, row, "Bounding_boxes", f"expected x1 <= x2 and y1 <= y2, found {box}")
    width, height = _floats(csv, row, rec, "Image_size", 2)
    if (
        min(box) < 1.0 - _BOX_SLACK
        or max(box[0], box[2]) > width + _BOX_SLACK
        or max(box[1], box[3]) > height + _BOX_SLACK
    ):
        raise row_error(
            csv,
            row,
            "Bounding_boxes",
            f"box {box} (1-based pixels) lies outside the image of Image_size {rec['Image_size']!r} "
            f"(expected 1 <= x <= {width:g}, 1 <= y <= {height:g}); fix the box or the image size",
        )
    lo, hi = (int(v) for v in _floats(csv, row, rec, "Slice_range", 2))
    if not lo <= key <= hi:
        raise row_error(csv, row, "Slice_range", f"key slice {key} lies outside [{lo}, {hi}]")
    lesion = {
        "box": [v - 1.0 for v in box],
        "recist": [v - 1.0 for v in _floats(csv, row, rec, "Measurement_coordinates", 8)],
        "diameter_px": _floats(csv, row, rec, "Lesion_diameters_Pixel_", 2),
        "location": _floats(csv, row, rec, "Normalized_lesion_location", 3),
        "lesion_type": _int(csv, row, rec, "Coarse_lesion_type"),
        "possibly_noisy": noisy,
    }
    return name, stem, key, code, lo, hi, lesion


def _group_by_image(csv: Path, records: list[dict]) -> dict[str, dict]:
    """Group the rows by key image (``File_name``): image fields from its first row, one lesion per row.

    Raises:
        DatasetLayoutError: a malformed row, or an image whose rows disagree on ``Train_Val_Test``.
    """
    groups: dict[str, dict] = {}
    for row, rec in enumerate(records):
        name, stem, key, code, lo, hi, lesion = _parse_row(csv, row, rec)
        group = groups.get(name)
        if group is None:
            group = groups[name] = {
                "row": row,
                "series": stem,
                "key_slice": key,
                "slice_range": [lo, hi],
                "split": _SPLIT_CODES[code],
                "spacing": _floats(csv, row, rec, "Spacing_mm_px_", 3),
                "dicom_window": _floats(csv, row, rec, "DICOM_windows", 2),
                "image_size": [int(v) for v in _floats(csv, row, rec, "Image_size", 2)],
                "gender": str(rec["Patient_gender"]).strip(),
                "age": _optional_float(rec["Patient_age"]),
                "lesions": [],
            }
        elif group["split"] != _SPLIT_CODES[code]:
            raise row_error(
                csv, row, "Train_Val_Test", f"{name!r} is in split {group['split']!r} on line {group['row'] + 2}"
            )
        group["lesions"].append(lesion)
    return groups


def _key_image_items(groups: dict[str, dict], split: DeepLesionSplit, include_noisy: bool) -> list[dict]:
    """One item per key image of ``split`` (by file name) with its (non-noisy unless ``include_noisy``) lesions."""
    items = []
    for name in sorted(groups):
        g = groups[name]
        if split != DeepLesionSplit.ALL and g["split"] != split:
            continue
        lesions = [les for les in g["lesions"] if include_noisy or not les["possibly_noisy"]]
        if not lesions:
            continue
        item = {"file_name": name, "series": g["series"], "patient_id": g["series"].split("_")[0], "_row": g["row"]}
        item.update({k: g[k] for k in ("key_slice", "slice_range", "spacing", "dicom_window", "image_size")})
        item.update({k: g[k] for k in ("gender", "age", "split")})
        for k in ("box", "recist", "diameter_px", "location", "lesion_type", "possibly_noisy"):
            item[k] = [les[k] for les in lesions]
        item["label"] = [LESION_LABEL] * len(lesions)
        items.append(item)
    return items


def _add_context(
    items: list[dict],
    csv: Path,
    images_dir: Path,
    num_slices: int,
    slice_interval_mm: float | None,
    check_files: bool,
    missing_neighbours: MissingNeighbours,
) -> None:
    """Set each item's ``image`` (its ``num_slices`` context slices) and, with ``slice_interval_mm``, the
    ``slice_pairs`` / ``slice_weights`` that interpolate the neighbours at that interval.

    Raises:
        DatasetLayoutError: ``missing_neighbours="error"`` and a wanted slice inside ``Slice_range`` is missing on
            disk (the CSV line of the key image and the missing PNG paths named).
    """
    half = num_slices // 2
    for item in items:
        z = item["spacing"][2]
        missing: list[str] = []
        if slice_interval_mm is None:
            item["image"] = _context(images_dir, item, range(-half, half + 1), check_files, missing)
        else:
            rel = slice_interval_mm / z if (math.isfinite(z) and z > 0) else 0.0
            offsets = [math.copysign(abs(p) * rel, p) for p in range(-half, half + 1)]
            nearest = [math.copysign(math.floor(abs(o) + 0.5), o) for o in offsets]  # round half away from the key
            item["image"] = _context(images_dir, item, nearest, check_files, missing)
            near = [math.copysign(math.floor(abs(o)), o) for o in offsets]
            far = [math.copysign(math.ceil(abs(o)), o) for o in offsets]
            pairs = zip(
                _context(images_dir, item, near, check_files, missing),
                _context(images_dir, item, far, check_files, missing),
            )
            item["slice_pairs"] = [[a, b] for a, b in pairs]
            item["slice_weights"] = [abs(o) - math.floor(abs(o)) for o in offsets]
        if missing and missing_neighbours == MissingNeighbours.ERROR:
            paths = sorted(set(missing))
            raise row_error(
                csv,
                item["_row"],
                "Slice_range",
                f"{len(paths)} context slice(s) of {item['file_name']!r} inside Slice_range {item['slice_range']} "
                f"are missing on disk: {paths}. Restore them, or pass missing_neighbours='nearest' to fall back to "
                "the nearest existing slice towards the key slice (the official loader's behaviour).",
            )


def deeplesion_datalist(
    dataset_dir: str | os.PathLike,
    split: str | DeepLesionSplit = DeepLesionSplit.TRAIN,
    num_slices: int = 3,
    slice_interval_mm: float | None = None,
    include_noisy: bool = False,
    check_files: bool = True,
    missing_neighbours: str | MissingNeighbours = MissingNeighbours.NEAREST,
) -> list[dict]:
    """Read DeepLesion into a MONAI detection datalist, one item per key image.

    On-disk layout (as released by the NIH Clinical Center)::

        <dataset_dir>/DL_info.csv                          one row per lesion, header as DL_INFO_COLUMNS
        <dataset_dir>/Images_png/000001_01_01/109.png      uint16 PNG, HU = value - 32768

    ``File_name`` ``000001_01_01_109.png`` is the file ``Images_png/000001_01_01/109.png`` (last ``_`` -> ``/``).
    Multi-value fields are quoted comma lists (``"-175, 275"``). Rows are grouped by ``File_name`` (an image holds
    one or more lesions); items are sorted by ``File_name`` and boxes keep the CSV row order within an item.

    Context slices: ``image`` lists ``num_slices`` paths centred on the key slice, in slice-index order (offsets
    ``-k..+k``, ``k = num_slices // 2``). With ``slice_interval_mm=None`` the neighbours are
    the adjacent slices (offsets -k..k). With a target interval the offset of neighbour ``p`` is
    ``p * slice_interval_mm / z_spacing`` slices (official loader, whose default is 2 mm); ``image`` then holds the
    nearest slice (offset rounded half away from the key) and, as the official loader interpolates linearly
    between the two slices around a fractional offset, ``slice_pairs`` (per channel ``[near_path, far_path]``) and
    ``slice_weights`` (per channel, the weight of ``far_path``) let a transform reproduce that interpolation. A
    NaN or non-positive z spacing gives the key slice in every channel (as the official loader). A neighbour
    outside ``Slice_range`` falls back to the nearest slice towards the key slice (the release holds only the
    slices of ``Slice_range``). A neighbour inside ``Slice_range`` whose PNG is missing on disk (``check_files``)
    is a damaged copy: ``missing_neighbours="nearest"`` (default) falls back towards the key as the official
    loader's ``get_slice_name`` does (it walks towards the key until a file exists), ``"error"`` raises.

    Args:
        dataset_dir: DeepLesion root holding ``DL_info.csv`` and ``Images_png/``.
        split: ``"train"`` (``Train_Val_Test`` = 1), ``"val"`` (2), ``"test"`` (3) or ``"all"``. Default ``"train"``.
        num_slices: odd number of context slices per item (>= 1). Default 3 (3DCE / MULAN use 3 per image).
        slice_interval_mm: target spacing between context slices in mm, or ``None`` (default) for adjacent slices.
        include_noisy: keep lesions with ``Possibly_noisy`` = 1. Default ``False``, in every split, as both official
            detectors (module docstring); an image whose lesions are all noisy is then dropped.
        check_files: require every key slice PNG to exist (and use only existing neighbours). Default ``True``;
            ``False`` builds the list from ``DL_info.csv`` alone (neighbours bounded by ``Slice_range`` only).
        missing_neighbours: ``"nearest"`` (default) or ``"error"``: what a context slice inside ``Slice_range`` that
            is missing on disk gives (only checked with ``check_files``).

    Returns:
        list of dicts with ``image`` (list of ``num_slices`` absolute paths), ``box`` (list of ``[x1, y1, x2, y2]``,
        0-based float pixels, x = column; the CSV is 1-based), ``label`` (list of ints, ``LESION_LABEL`` = 0 =
        lesion), ``lesion_type`` (list of
        ``Coarse_lesion_type`` ints, see ``LESION_TYPES``), ``possibly_noisy`` (list of 0/1), ``recist`` (list of 8
        0-based floats: long axis x1, y1, x2, y2 then short axis), ``diameter_px`` (list of [long, short]),
        ``location`` (list of normalised [x, y, z]), ``spacing`` ([x, y, z] mm), ``dicom_window`` ([low, high] HU),
        ``image_size`` (2 ints as in the CSV), ``key_slice``, ``slice_range`` ([first, last]), ``series`` (folder name),
        ``file_name``, ``patient_id`` (6-digit string), ``gender``, ``age`` (float, NaN if missing), ``split`` and
        ``index`` (position in the list).

    Raises:
        FileNotFoundError: ``DL_info.csv`` or ``Images_png/`` is missing, or (``check_files``) key slices are
            missing; the message counts them and lists the first few.
        DatasetLayoutError: a malformed value (a box with x2 < x1 or y2 < y1, or outside ``Image_size``; a wrong
            count of comma-separated numbers ...) or, with ``missing_neighbours="error"``, a missing context slice;
            the message names the file, line and column.
        ValueError: an unknown ``split`` or ``missing_neighbours``, an even or non-positive ``num_slices``, a
            non-positive interval.
    """
    split = look_up_option(split.value if isinstance(split, Enum) else split, DeepLesionSplit)
    missing_neighbours = look_up_option(
        missing_neighbours.value if isinstance(missing_neighbours, Enum) else missing_neighbours, MissingNeighbours
    )
    if num_slices < 1 or num_slices % 2 == 0:
        raise ValueError(f"num_slices must be a positive odd integer, got {num_slices}.")
    if slice_interval_mm is not None and not slice_interval_mm > 0:
        raise ValueError(f"slice_interval_mm must be positive or None, got {slice_interval_mm}.")
    root = Path(dataset_dir).absolute()
    csv = root / "DL_info.csv"
    df = read_csv_checked(csv, DL_INFO_COLUMNS, "DeepLesion DL_info.csv", _LAYOUT, dtype=str, keep_default_na=False)
    images_dir = root / "Images_png"
    if check_files:
        require_dir(images_dir, "DeepLesion Images_png", _LAYOUT)

    items = _key_image_items(_group_by_image(csv, df.to_dict("records")), split, include_noisy)
    if check_files:
        missing = [
            str(_slice_path(images_dir, it["series"], it["key_slice"]))
            for it in items
            if not _slice_path(images_dir, it["series"], it["key_slice"]).is_file()
        ]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} DeepLesion key slice(s) listed in '{csv}' are missing, e.g. {missing[:3]}. {_LAYOUT}"
            )
    _add_context(items, csv, images_dir, num_slices, slice_interval_mm, check_files, missing_neighbours)
    for item in items:
        del item["_row"]
    return assign_indices(items)


def deeplesion_subset(items: list[dict], fraction: float, seed: int = 0, by: str = "patient") -> list[dict]:
    """A random ``fraction`` of the training patients (all their key images), for the 25 / 50 / 100 % studies.

    The patients (``patient_id``, or with ``by="image"`` the key images, ``file_name``) are shuffled once by
    ``numpy.random.default_rng(seed)`` and the first ``round(fraction * n)`` are kept, so the subsets of one seed are
    nested (the 25 % subset lies inside the 50 % subset) and a seed always gives the same subset. The kept items
    keep their order and are shallow copies re-indexed ``0..m-1`` (``index``); ``items`` is not changed.

    Args:
        items: a datalist of :func:`deeplesion_datalist` (usually ``split="train"``).
        fraction: share of patients (or images) to keep, in (0, 1].
        seed: seed of the shuffle. Default 0.
        by: ``"patient"`` (default; a patient's images stay together) or ``"image"``.

    Returns:
        the subset, each item with its new ``index``.

    Raises:
        ValueError: ``fraction`` outside (0, 1], an unknown ``by``, or an empty subset (the message gives the
            fraction and the counts).
        KeyError: an item without ``patient_id`` / ``file_name``.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}.")
    key = {"patient": "patient_id", "image": "file_name"}.get(by)
    if key is None:
        raise ValueError(f"by must be 'patient' or 'image', got {by!r}.")
    units = sorted({item[key] for item in items})
    keep_n = int(math.floor(fraction * len(units) + 0.5))
    if keep_n == 0:
        raise ValueError(
            f"deeplesion_subset: fraction {fraction} of {len(units)} {by}(s) ({len(items)} key images) keeps no "
            f"{by}; use a larger fraction or more data."
        )
    order = np.random.default_rng(seed).permutation(len(units))
    kept = {units[i] for i in order[:keep_n]}
    return assign_indices([dict(item) for item in items if item[key] in kept])
