# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Lesion box library for DADAM: expert boxes of NIH ChestX-ray14 and VinDr-CXR mapped to the 26 CXR-LT classes.

DADAM (Kim et al., "Feature Pyramid Sum Method and Diseased Area Data Augmentation Method for long-tailed chest
X-ray classification", CXR-LT 2023, Sec. 3.2 and 4.1) pastes disease patches cut from boxed images of other public
datasets onto MIMIC-CXR-LT training images. This module gathers those boxes, in each source image's pixel frame, as
:class:`LesionBox` records; :class:`monai_ext.transforms.dadam.PatchBank` crops them.

Boxes are ``(x1, y1, x2, y2)`` pixels, x along the image width. With MONAI's channel-first ``1 W H`` arrays (see
:class:`~monai_ext.transforms.ToGrayscale`) the box is ``img[:, x1:x2, y1:y2]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.cxr.common import find_label_file, records
from monai_ext.data.cxr.labels import MIMIC_CXR_LT_CLASSES, NO_FINDING, VINDR_CLASSES
from monai_ext.data.cxr.nih import NIH_LAYOUT, nih_boxes, nih_datalist
from monai_ext.data.cxr.vindr import VINDR_LAYOUT, vindr_datalist
from monai_ext.data.datalist import DatasetLayoutError

__all__ = [
    "BoxSource",
    "LesionBox",
    "BOX_CLASS_MAPS",
    "image_size",
    "lesion_box_library",
    "boxes_per_class",
]


class BoxSource(StrEnum):
    """Datasets with expert lesion boxes that :func:`lesion_box_library` reads."""

    NIH = "nih"
    VINDR = "vindr"


@dataclass(frozen=True)
class LesionBox:
    """One expert lesion box.

    Attributes:
        source: the dataset, ``{"nih", "vindr"}``.
        image: absolute path of the source image.
        box_class: the class name in the source dataset (``"Effusion"``, ``"Nodule/Mass"``).
        class_name: the CXR-LT class it stands for (``"Pleural Effusion"``, ``"Lung Lesion"``).
        box: ``(x1, y1, x2, y2)`` pixels of the source image, x along the width, ``x1 < x2``, ``y1 < y2``.
        image_size: ``(width, height)`` of the source image in pixels (from the file header).
        line: 1-based line of the box in its CSV (the header is line 1), for messages.
    """

    source: str
    image: str
    box_class: str
    class_name: str
    box: tuple[float, float, float, float]
    image_size: tuple[int, int]
    line: int = 0

    @property
    def relative_box(self) -> tuple[float, float, float, float]:
        """The box as fractions of the image width and height, ``(x1 / W, y1 / H, x2 / W, y2 / H)``."""
        w, h = self.image_size
        x1, y1, x2, y2 = self.box
        return (x1 / w, y1 / h, x2 / w, y2 / h)


BOX_CLASS_MAPS: dict[str, dict[str, str | None]] = {
    "nih": {
        # The 8 classes of BBox_List_2017.csv; each has a CXR-LT class of the same meaning.
        "Atelectasis": "Atelectasis",
        "Cardiomegaly": "Cardiomegaly",
        "Effusion": "Pleural Effusion",  # NIH "Effusion" is the pleural effusion of CheXpert / CXR-LT
        "Infiltration": "Infiltration",  # NIH's box file spells it "Infiltrate"; nih_boxes renames it
        "Mass": "Mass",
        "Nodule": "Nodule",
        "Pneumonia": "Pneumonia",
        "Pneumothorax": "Pneumothorax",
    },
    "vindr": {
        "Aortic enlargement": None,  # CXR-LT has "Enlarged Cardiomediastinum" and "Tortuous Aorta", neither exact
        "Atelectasis": "Atelectasis",
        "Calcification": None,  # VinDr marks any calcification; "Calcification of the Aorta" is only one kind
        "Cardiomegaly": "Cardiomegaly",
        "Consolidation": "Consolidation",
        "ILD": None,  # interstitial lung disease: a pattern, not one CXR-LT finding
        "Infiltration": "Infiltration",
        "Lung Opacity": "Lung Opacity",
        "Nodule/Mass": "Lung Lesion",  # CheXpert's "Lung Lesion" covers nodules and masses
        "Other lesion": None,  # a catch-all with no CXR-LT counterpart
        "Pleural effusion": "Pleural Effusion",
        "Pleural thickening": "Pleural Thickening",
        "Pneumothorax": "Pneumothorax",
        "Pulmonary fibrosis": "Fibrosis",
    },
}
"""Default source box class -> CXR-LT class; ``None`` = deliberately unused (the comment of each entry says why)."""


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image from its header, without decoding pixels.

    DICOM files (suffix ``.dcm``/``.dicom`` or the ``DICM`` preamble) are read with pydicom (``Columns``, ``Rows``),
    other files with PIL.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is neither a readable DICOM nor an image PIL can open (the path is named).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image not found: '{p}'")
    from monai_ext.data.inference.filetypes import is_dicom_file  # lazy: monai_ext.data.inference is heavy

    try:
        if is_dicom_file(p):
            import pydicom

            ds = pydicom.dcmread(p, stop_before_pixels=True)
            return int(ds.Columns), int(ds.Rows)
        from PIL import Image

        with Image.open(p) as im:
            return int(im.size[0]), int(im.size[1])
    except Exception as e:  # noqa: BLE001 - re-raised with the path
        raise ValueError(f"cannot read the image size of '{p}': {type(e).__name__}: {e}") from e


def _csv_lines_by(path: Path, key_columns: Sequence[str], keep=None) -> dict[tuple, list[int]]:
    """File lines (1-based, header = 1) of each key tuple, in file order; rows failing ``keep`` are skipped."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    out: dict[tuple, list[int]] = {}
    for i, rec in enumerate(records(df)):
        if keep is None or keep(rec):
            out.setdefault(tuple(rec[c].strip() for c in key_columns), []).append(i + 2)
    return out


def _resolve_maps(class_maps: Mapping[str, Mapping[str, str | None]] | None) -> dict[str, dict[str, str | None]]:
    maps = {k: dict(v) for k, v in BOX_CLASS_MAPS.items()}
    for source, mapping in (class_maps or {}).items():
        maps[look_up_option(source, BoxSource).value] = dict(mapping)
    return maps


def _nih_records(root: Path) -> Iterable[tuple[str, str, tuple[float, ...], Path, int]]:
    """(image path, NIH class, box, box CSV, line) of every NIH box."""
    boxes = nih_boxes(root)
    csv = find_label_file(root, ["BBox_List_2017.csv"], "NIH BBox_List_2017 CSV", NIH_LAYOUT)
    lines = _csv_lines_by(csv, ["Image Index"])
    images = {it["image_name"]: it["image"] for it in nih_datalist(root, split="all", check_files=False)}
    for name, entries in boxes.items():
        if name not in images:
            raise DatasetLayoutError(
                f"'{csv}', line {lines[(name.strip(),)][0]}: boxed image '{name}' is not in the NIH Data_Entry CSV. "
                f"{NIH_LAYOUT}"
            )
        for entry, line in zip(entries, lines[(name.strip(),)]):
            yield images[name], entry["label"], tuple(entry["box"]), csv, line


def _vindr_records(root: Path, min_readers: int) -> Iterable[tuple[str, str, tuple[float, ...], Path, int]]:
    """(image path, VinDr class, box, train.csv, line) of the boxes kept by the reader policy."""
    items = vindr_datalist(root, check_files=False)
    csv = find_label_file(root, ["train.csv"], "VinDr-CXR train.csv", VINDR_LAYOUT)
    lines = _csv_lines_by(csv, ["image_id", "rad_id"], keep=lambda r: r["class_name"].strip() != "No finding")
    for item in items:
        for k, votes in enumerate(item["votes"]):
            name = VINDR_CLASSES[k]
            if name == "No finding" or votes < min_readers:
                continue
            for rad, marks in item["boxes"].items():  # readers in sorted rad_id order: the first who marked it
                if k in marks["label"]:
                    row_lines = lines[(item["image_id"], rad)]
                    for j, (box, cid) in enumerate(zip(marks["box"], marks["label"])):
                        if cid == k:
                            yield item["image"], name, tuple(box), csv, row_lines[j]
                    break


def lesion_box_library(
    sources: Mapping[str, str | os.PathLike],
    class_maps: Mapping[str, Mapping[str, str | None]] | None = None,
    classes: Sequence[str] = MIMIC_CXR_LT_CLASSES,
    vindr_min_readers: int = 2,
    min_box_size: float = 1.0,
    require_classes: Sequence[str] = (),
) -> list[LesionBox]:
    """Expert lesion boxes of NIH ChestX-ray14 and/or VinDr-CXR mapped to ``classes``.

    NIH: every row of ``BBox_List_2017.csv`` (984 boxes on 880 images, in the 1024 px PNG frame). VinDr-CXR: 3
    radiologists read each image, their boxes of one finding disagree; a class is taken when at least
    ``vindr_min_readers`` readers marked it on the image, with the boxes of the first of them in sorted ``rad_id``
    order (one reader's boxes, not a union of three overlapping ones). Boxes narrower or lower than ``min_box_size``
    pixels are dropped (nothing to paste).

    Args:
        sources: ``{"nih": nih_dir, "vindr": vindr_dir}`` (either or both; folder layouts of
            :func:`~monai_ext.data.cxr.nih_datalist` and :func:`~monai_ext.data.cxr.vindr_datalist`).
        class_maps: per source, source class -> CXR-LT class or ``None`` (unused); a source given here replaces its
            :data:`BOX_CLASS_MAPS` entry entirely. Defaults to :data:`BOX_CLASS_MAPS`.
        classes: the target label space. Defaults to :data:`MIMIC_CXR_LT_CLASSES`.
        vindr_min_readers: VinDr readers needed for a class, 1-3. Defaults to 2.
        min_box_size: minimum box width and height in pixels. Defaults to 1.
        require_classes: classes that must get at least one box (e.g. the tail classes to augment).

    Returns:
        :class:`LesionBox` list, sources in ``sources`` order, then images sorted, then file order.

    Raises:
        ValueError: unknown source, a mapped class not in ``classes`` or ``"No Finding"``, a class of
            ``require_classes`` without boxes (all such classes named), bad ``vindr_min_readers``.
        DatasetLayoutError: a box class without an entry in the class map, or a box outside its image (file,
            line, box and image size named).
        FileNotFoundError: a label file or a boxed image is missing.
    """
    if not 1 <= vindr_min_readers <= 3:
        raise ValueError(
            f"vindr_min_readers must be 1, 2 or 3 (VinDr has 3 readers per image), got {vindr_min_readers}"
        )
    maps = _resolve_maps(class_maps)
    classes = tuple(classes)
    for source, mapping in maps.items():
        for box_class, target in mapping.items():
            if target is not None and (target not in classes or target == NO_FINDING):
                raise ValueError(
                    f"class map of '{source}': '{box_class}' -> '{target}', which is not a disease class of "
                    f"{list(classes)}; map it to one of them or to None to drop those boxes"
                )
    library: list[LesionBox] = []
    sizes: dict[str, tuple[int, int]] = {}
    for source, folder in sources.items():
        source = look_up_option(source, BoxSource).value
        root = Path(folder).absolute()
        mapping = maps[source]
        found = _nih_records(root) if source == BoxSource.NIH else _vindr_records(root, vindr_min_readers)
        for image, box_class, box, csv, line in found:
            if box_class not in mapping:
                raise DatasetLayoutError(
                    f"'{csv}', line {line}: {source} box class '{box_class}' has no entry in the class map; add it "
                    f"to class_maps['{source}'] (the CXR-LT class it stands for, or None to drop its boxes)"
                )
            target = mapping[box_class]
            if target is None:
                continue
            if image not in sizes:
                sizes[image] = image_size(image)
            w, h = sizes[image]
            x1, y1, x2, y2 = box
            if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
                raise DatasetLayoutError(
                    f"'{csv}', line {line}: {source} box {list(box)} ({box_class}) lies outside its image '{image}' "
                    f"of {w}x{h} pixels (width x height); fix the box or the image (boxes are x1, y1, x2, y2 pixels "
                    "of the image as stored)"
                )
            if x2 - x1 < min_box_size or y2 - y1 < min_box_size:
                continue
            library.append(LesionBox(source, str(image), box_class, target, (x1, y1, x2, y2), (w, h), line))
    missing = [c for c in require_classes if not any(b.class_name == c for b in library)]
    if missing:
        counts = boxes_per_class(library)
        raise ValueError(
            f"no lesion box for class(es) {missing} among {sum(counts.values())} boxes of {list(sources)} "
            f"(boxes per class: {counts}); add a box source with these classes, map a source class to them in "
            "class_maps, or leave them out of the classes to augment"
        )
    return library


def boxes_per_class(library: Iterable[LesionBox]) -> dict[str, int]:
    """Number of boxes of each CXR-LT class in ``library`` (classes without boxes omitted), sorted by class."""
    counts: dict[str, int] = {}
    for b in library:
        counts[b.class_name] = counts.get(b.class_name, 0) + 1
    return dict(sorted(counts.items()))
