# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""VinDr-CXR reader (Kaggle VinBigData layout): per-radiologist boxes and image-level labels by reader vote.

Citation: Nguyen HQ, Lam K, Le LT, et al. "VinDr-CXR: An open dataset of chest X-rays with radiologist's
annotations", Scientific Data 9, 2022. https://www.kaggle.com/c/vinbigdata-chest-xray-abnormalities-detection
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.cxr.common import check_images, find_label_file, records
from monai_ext.data.cxr.labels import VINDR_CLASSES, resolve_classes
from monai_ext.data.datalist import assign_indices, csv_lines, read_csv_checked, require_dir, require_unique, row_error

__all__ = ["ReaderAggregation", "vindr_datalist"]

VINDR_LAYOUT = (
    "Expected vindr/train.csv (image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max; one row per image, "
    "radiologist and box; 'No finding' rows with empty boxes) and vindr/train/<image_id>.dicom (or .png)."
)
_BOX = ("x_min", "y_min", "x_max", "y_max")
_NO_FINDING_ID = VINDR_CLASSES.index("No finding")


class ReaderAggregation(StrEnum):
    """Image-level label from the readers' findings: ``any`` (at least one reader) or ``majority`` (more than half
    of the image's readers, i.e. 2 of 3)."""

    ANY = "any"
    MAJORITY = "majority"


def vindr_datalist(
    dataset_dir: str | os.PathLike,
    classes: Sequence[str] = VINDR_CLASSES,
    aggregation: ReaderAggregation | str = ReaderAggregation.ANY,
    check_files: bool = True,
) -> list[dict]:
    """VinDr-CXR training set as a MONAI datalist.

    Layout (``dataset_dir`` = ``vindr/``)::

        train.csv                 # 67,914 rows, 15,000 images, radiologists R1-R17, 3 readers per image
        train/<image_id>.dicom    # DICOM MONOCHROME2 (or train/<image_id>.png)

    Classes (``class_id``: ``class_name``) are :data:`VINDR_CLASSES` by position, 14 = ``No finding`` (rows with
    empty box columns). Boxes are ``[x_min, y_min, x_max, y_max]`` in original DICOM pixels. A class is positive at
    image level when ``aggregation`` is met by the readers who marked it (``No finding`` is voted the same way, so
    with ``majority`` an image whose readers found different abnormalities can have no positive class). Image-level
    prevalence any / majority: No finding 70.7 / 70.7 %, Aortic enlargement 20.5 / 15.6 %, Cardiomegaly
    15.3 / 12.1 %.

    Args:
        dataset_dir: the ``vindr/`` folder.
        classes: label columns, a subset of :data:`VINDR_CLASSES` in any order. Defaults to all 15.
        aggregation: ``{"any", "majority"}``, see :class:`ReaderAggregation`. Defaults to ``"any"``.
        check_files: raise if an image file is missing. Defaults to ``True``.

    Returns:
        Items ``{"image", "label" (len(classes) floats), "votes" (readers per class, ints), "readers" (sorted
        rad_ids), "boxes" ({rad_id: {"box": [[x1, y1, x2, y2], ...], "label": [class_id, ...]}}), "index",
        "patient_id" (= image_id; the release has no patient ids), "split" ("train"), "image_id"}`` sorted by
        ``image_id``.

    Raises:
        FileNotFoundError: the CSV or (with ``check_files``) an image is missing.
        DatasetLayoutError: missing column, unknown class name, ``class_id`` not matching the name, empty
            ``rad_id``, missing or non-numeric box of a finding (file, line, column named), a row repeated
            exactly (one reader's box counted twice) or one image spelled two ways (``image_id`` differing only in
            letter case; file and both lines named).
        ValueError: bad option values.
    """
    root = require_dir(dataset_dir, "VinDr-CXR", VINDR_LAYOUT).absolute()
    classes = resolve_classes(classes, VINDR_CLASSES, "VinDr-CXR", allow_no_finding=False)
    aggregation = look_up_option(aggregation, ReaderAggregation)
    path = find_label_file(root, ["train.csv"], "VinDr-CXR train.csv", VINDR_LAYOUT)
    cols = ("image_id", "class_name", "class_id", "rad_id") + _BOX
    df = read_csv_checked(path, cols, "VinDr-CXR train.csv", VINDR_LAYOUT, dtype=str, keep_default_na=False)
    rows = records(df)
    spellings: dict[str, int] = {}  # each distinct image_id spelling -> its first line
    for i, rec in enumerate(rows):
        spellings.setdefault(rec["image_id"].strip(), i + 2)
    require_unique(spellings, spellings.values(), path, "image_id", hint=VINDR_LAYOUT)
    entries = [tuple(rec[c].strip() for c in cols) for rec in rows]
    require_unique(entries, csv_lines(len(df)), path, f"row ({', '.join(cols)})", key=tuple, hint=VINDR_LAYOUT)
    images: dict[str, dict] = {}
    for i, rec in enumerate(rows):
        name = rec["class_name"].strip()
        if name not in VINDR_CLASSES:
            raise row_error(path, i, "class_name", f"unknown class {name!r}; expected one of {list(VINDR_CLASSES)}")
        cid = VINDR_CLASSES.index(name)
        if rec["class_id"].strip() != str(cid):
            raise row_error(path, i, "class_id", f"class_id {rec['class_id']!r} does not match {name!r} (id {cid})")
        rad = rec["rad_id"].strip()
        if not rad:
            raise row_error(path, i, "rad_id", "empty radiologist id")
        entry = images.setdefault(rec["image_id"].strip(), {"boxes": {}, "votes": {}})
        reader = entry["boxes"].setdefault(rad, {"box": [], "label": []})
        entry["votes"].setdefault(cid, set()).add(rad)
        if cid == _NO_FINDING_ID:
            continue
        box = []
        for c in _BOX:
            try:
                v = float(rec[c])
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                raise row_error(path, i, c, f"box coordinate {rec[c]!r} of finding {name!r} is not a number")
            box.append(v)
        if box[2] < box[0] or box[3] < box[1]:
            col = "x_max" if box[2] < box[0] else "y_max"
            raise row_error(path, i, col, f"box {box} has x_max < x_min or y_max < y_min")
        reader["box"].append(box)
        reader["label"].append(cid)

    train = root / "train"
    out = []
    for image_id in sorted(images):
        entry = images[image_id]
        n_readers = len(entry["boxes"])
        need = 1 if aggregation == ReaderAggregation.ANY else n_readers // 2 + 1
        votes = [len(entry["votes"].get(VINDR_CLASSES.index(c), ())) for c in classes]
        image = train / f"{image_id}.dicom"
        if not image.is_file() and (train / f"{image_id}.png").is_file():
            image = train / f"{image_id}.png"
        out.append(
            {
                "image": str(image),
                "label": [float(v >= need) for v in votes],
                "votes": votes,
                "readers": sorted(entry["boxes"]),
                "boxes": {r: entry["boxes"][r] for r in sorted(entry["boxes"])},
                "patient_id": image_id,
                "split": "train",
                "image_id": image_id,
            }
        )
    if check_files:
        check_images(out, "VinDr-CXR", VINDR_LAYOUT)
    return assign_indices(out)
