# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""ROP (retinopathy of prematurity) fundus reader with per-annotator labels.

There is no public multi-expert ROP set to copy, so this reads the project layout of DATASETS.md section 4.5,
modelled on the i-ROP consortium practice (several independent expert readings, plus-disease classes normal /
pre-plus / plus; Brown et al., "Automated diagnosis of plus disease in retinopathy of prematurity using deep
convolutional neural networks", JAMA Ophthalmol. 136(7), 2018). Training uses a noisy label (majority vote, one
annotator, or a random annotator per image); the meta set (for meta soft-label learning) and the test set hold
only images with a unanimous reading.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from enum import Enum
from pathlib import Path

import numpy as np
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.datalist import (
    DatasetLayoutError,
    assign_indices,
    csv_lines,
    read_csv_checked,
    require_file,
    require_unique,
    row_error,
    spelling_key,
)

__all__ = [
    "RopSplit",
    "RopLabelSource",
    "TieBreak",
    "MissingLabelPolicy",
    "ROP_CLASSES",
    "ROP_LABEL_COLUMNS",
    "majority_label",
    "rop_datalist",
    "check_meta_splits",
]

#: plus-disease classes (``num_classes=3``); the binary variant uses 0 no ROP / 1 ROP.
ROP_CLASSES = ("normal", "pre-plus", "plus")

#: ``labels.csv`` header (DATASETS.md 4.5); ``label_A*``/``stage_A*``/``zone_A*`` are found by name pattern.
ROP_LABEL_COLUMNS = (
    "image_id",
    "path",
    "infant_id",
    "exam_id",
    "eye",
    "gestational_age_wk",
    "birth_weight_g",
    "postmenstrual_age_wk",
    "label_A1",
    "label_A2",
    "label_A3",
    "label_majority",
    "label_consensus",
    "n_agree",
    "consensus",
    "stage_A1",
    "stage_A2",
    "stage_A3",
    "zone_A1",
    "zone_A2",
    "zone_A3",
)

logger = logging.getLogger(__name__)

_LAYOUT = (
    "Expected layout: <dataset_dir>/images/<infant_id>/<exam_id>/<eye>_<view>_<k>.png, labels.csv, "
    "splits.csv (infant_id,split with split in train/val/test/meta) and annotators.json (DATASETS.md 4.5)."
)


class RopSplit(StrEnum):
    """Infant-level split from ``splits.csv``."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"
    META = "meta"


class RopLabelSource(StrEnum):
    """Which label becomes ``label``: majority vote, unanimous consensus, one annotator, or a random annotator."""

    MAJORITY = "majority"
    CONSENSUS = "consensus"
    A1 = "A1"
    A2 = "A2"
    A3 = "A3"
    RANDOM_ANNOTATOR = "random_annotator"


class TieBreak(StrEnum):
    """Majority vote with tied largest groups: the more severe (higher) label, or no label (-1)."""

    HIGHER = "higher"
    NONE = "none"


class MissingLabelPolicy(StrEnum):
    """Image without the requested label (annotator did not read it, tie without label): drop it or raise."""

    DROP = "drop"
    ERROR = "error"


def _opt(value: str | Enum) -> str:
    return value.value if isinstance(value, Enum) else value


def majority_label(labels: Sequence[int], tie_break: str | TieBreak = TieBreak.HIGHER) -> tuple[int, int]:
    """Mode of the available readings and the size of the largest agreeing group.

    Args:
        labels: readings, -1 = not read.
        tie_break: ``"higher"`` (default) takes the more severe label among tied groups, ``"none"`` gives -1.

    Returns:
        ``(label, n_agree)``; ``(-1, 0)`` when nobody read the image.

    Example:
        >>> majority_label([2, 1, -1])
        (2, 1)
        >>> majority_label([0, 0, 2])
        (0, 2)
    """
    tie_break = look_up_option(_opt(tie_break), TieBreak)
    counts = Counter(v for v in labels if v >= 0)
    if not counts:
        return -1, 0
    top = max(counts.values())
    winners = sorted(v for v, c in counts.items() if c == top)
    if len(winners) > 1 and tie_break == TieBreak.NONE:
        return -1, top
    return winners[-1], top


def _int_cell(csv: Path, row: int, column: str, text: str, allow_empty: bool) -> int:
    text = str(text).strip()
    if not text:
        if allow_empty:
            return -1
        raise row_error(csv, row, column, "empty value")
    try:
        value = float(text)
    except ValueError as e:
        raise row_error(csv, row, column, f"expected an integer, found {text!r}") from e
    if not value.is_integer():
        raise row_error(csv, row, column, f"expected an integer, found {text!r}")
    return int(value)


def _float_cell(text: str) -> float:
    text = str(text).strip()
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


def _read_splits(root: Path) -> dict[str, str]:
    csv = root / "splits.csv"
    df = read_csv_checked(csv, ["infant_id", "split"], "ROP splits.csv", _LAYOUT, dtype=str, keep_default_na=False)
    splits: dict[str, tuple[str, int]] = {}
    for row, (infant, split) in enumerate(zip(df["infant_id"], df["split"])):
        infant, split = str(infant).strip(), str(split).strip()
        if split not in {s.value for s in RopSplit}:
            raise row_error(csv, row, "split", f"expected one of {[s.value for s in RopSplit]}, found {split!r}")
        if infant in splits and splits[infant][0] != split:
            prev, line = splits[infant]
            raise row_error(csv, row, "split", f"infant {infant!r} is already in split {prev!r} on line {line + 2}")
        splits[infant] = (split, row)
    require_unique(df["infant_id"], csv_lines(len(df)), csv, "infant (column 'infant_id')", hint=_LAYOUT)
    return {k: v[0] for k, v in splits.items()}


def _read_annotators(root: Path, csv: Path, columns: Sequence[str], label_source: RopLabelSource) -> list[str]:
    """Annotator ids of the ``label_A<k>`` columns (by number), checked against ``label_source`` and
    ``annotators.json``.

    Raises:
        ValueError: ``label_source`` names an annotator without a column.
        FileNotFoundError: ``annotators.json`` is missing.
        DatasetLayoutError: ``annotators.json`` is not JSON, or lacks an annotator.
    """
    annotators = [c[len("label_") :] for c in columns if re.fullmatch(r"label_A\d+", c)]
    annotators.sort(key=lambda a: int(a[1:]))
    if label_source.value.startswith("A") and label_source.value not in annotators:
        raise ValueError(f"label_source {label_source.value!r} has no column label_{label_source.value} in '{csv}'.")
    info_path = require_file(root / "annotators.json", "ROP annotators.json", _LAYOUT)
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetLayoutError(f"'{info_path}' is not valid JSON: {e}") from e
    if not isinstance(info, dict) or any(a not in info for a in annotators):
        raise DatasetLayoutError(f"'{info_path}' must be an object with an entry for each of {annotators}.")
    return annotators


def _check_readings(csv: Path, row: int, rec: dict, annotators: list[str], num_classes: int) -> dict:
    """Read one row's per-annotator labels and check its derived columns against them.

    Returns:
        ``readings`` (-1 = not read), ``higher`` / ``tied`` (majority with ties to the higher class / to -1),
        ``n_agree``, ``unanimous`` (0/1) and ``agreed`` (the unanimous class or -1).

    Raises:
        DatasetLayoutError: a label outside ``[0, num_classes)``, or a ``label_majority``, ``n_agree``,
            ``consensus`` or ``label_consensus`` value that does not follow from the readings.
    """
    readings = [_int_cell(csv, row, f"label_{a}", rec[f"label_{a}"], allow_empty=True) for a in annotators]
    for a, v in zip(annotators, readings):
        if v < -1 or v >= num_classes:
            raise row_error(csv, row, f"label_{a}", f"expected a class in [0, {num_classes}) or empty, found {v}")
    maj = _int_cell(csv, row, "label_majority", rec["label_majority"], allow_empty=True)
    higher, n_agree = majority_label(readings, TieBreak.HIGHER)
    tied, _ = majority_label(readings, TieBreak.NONE)
    if maj != higher and not (tied == -1 and maj == -1):
        raise row_error(
            csv, row, "label_majority", f"{maj} is not the majority of the readings {readings} (expected {higher})"
        )
    if _int_cell(csv, row, "n_agree", rec["n_agree"], allow_empty=False) != n_agree:
        raise row_error(csv, row, "n_agree", f"expected {n_agree} for the readings {readings}")
    unanimous = int(all(v >= 0 for v in readings) and len(set(readings)) == 1)
    consensus = _int_cell(csv, row, "consensus", rec["consensus"], allow_empty=False)
    if consensus != unanimous:
        raise row_error(csv, row, "consensus", f"expected {unanimous} for the readings {readings}")
    agreed = readings[0] if unanimous else -1
    label_consensus = _int_cell(csv, row, "label_consensus", rec["label_consensus"], allow_empty=True)
    if label_consensus != agreed:
        raise row_error(csv, row, "label_consensus", f"expected {agreed} for the readings {readings}")
    return {"readings": readings, "higher": higher, "tied": tied, "n_agree": n_agree, "unanimous": unanimous,
            "agreed": agreed}  # fmt: skip


def _parse_row(
    csv: Path, row: int, rec: dict, root: Path, annotators: list[str], splits: dict[str, str], num_classes: int,
    tie_break: TieBreak,
) -> dict:  # fmt: skip
    """One image of ``labels.csv``: readings checked, path / eye / infant validated, metadata read.

    Raises:
        DatasetLayoutError: a bad label column (see :func:`_check_readings`), a path outside
            ``images/<infant>/<exam>/``, an eye other than OD/OS, or an infant missing from ``splits.csv``.
    """
    r = _check_readings(csv, row, rec, annotators, num_classes)
    infant, exam, path = (str(rec[c]).strip() for c in ("infant_id", "exam_id", "path"))
    parts = Path(path).parts
    if len(parts) != 4 or parts[0] != "images" or parts[1] != infant or parts[2] != exam:
        expected = f"images/{infant}/{exam}/<eye>_<view>_<k>.png"
        raise row_error(csv, row, "path", f"expected '{expected}', found {path!r}")
    eye = str(rec["eye"]).strip()
    if eye not in ("OD", "OS"):
        raise row_error(csv, row, "eye", f"expected 'OD' or 'OS', found {eye!r}")
    if infant not in splits:
        raise row_error(csv, row, "infant_id", f"infant {infant!r} is not listed in '{root / 'splits.csv'}'")
    return {
        "image": str(root / path),
        "image_id": str(rec["image_id"]).strip(),
        "infant_id": infant,
        "patient_id": infant,
        "exam_id": exam,
        "eye": eye,
        "gestational_age_wk": _float_cell(rec["gestational_age_wk"]),
        "birth_weight_g": _float_cell(rec["birth_weight_g"]),
        "postmenstrual_age_wk": _float_cell(rec["postmenstrual_age_wk"]),
        "annotators": list(annotators),
        "annotator_labels": r["readings"],
        "label_majority": r["higher"] if tie_break == TieBreak.HIGHER else r["tied"],
        "label_consensus": r["agreed"],
        "consensus": r["unanimous"],
        "n_agree": r["n_agree"],
        "stage": [str(rec.get(f"stage_{a}", "")).strip() for a in annotators],
        "zone": [str(rec.get(f"zone_{a}", "")).strip() for a in annotators],
        "split": splits[infant],
        "_row": row,
    }


def _choose_label(
    r: dict, label_source: RopLabelSource, annotators: list[str], rng: np.random.Generator
) -> tuple[int, str] | None:
    """``(label, where it came from)`` of one image under ``label_source`` (label -1: that reading is missing);
    ``None`` when ``label_source`` is consensus and the readings disagree."""
    if label_source == RopLabelSource.CONSENSUS:
        if not r["consensus"]:
            return None
        return r["label_consensus"], "consensus"
    if label_source == RopLabelSource.MAJORITY:
        return r["label_majority"], "majority"
    if label_source == RopLabelSource.RANDOM_ANNOTATOR:
        read = [i for i, v in enumerate(r["annotator_labels"]) if v >= 0]
        pick = read[int(rng.integers(len(read)))] if read else None
        return (r["annotator_labels"][pick], annotators[pick]) if read else (-1, "random_annotator")
    return r["annotator_labels"][annotators.index(label_source.value)], label_source.value


def rop_datalist(
    dataset_dir: str | os.PathLike,
    split: str | RopSplit = RopSplit.TRAIN,
    label_source: str | RopLabelSource | None = None,
    num_classes: int = 3,
    tie_break: str | TieBreak = TieBreak.HIGHER,
    missing_label: str | MissingLabelPolicy = MissingLabelPolicy.DROP,
    seed: int = 0,
    check_files: bool = True,
) -> list[dict]:
    """Read the ROP fundus set (DATASETS.md 4.5) into a single-label classification datalist.

    On-disk layout::

        <dataset_dir>/images/<infant_id>/<exam_id>/<eye>_<view>_<k>.png    8-bit RGB fundus (eye OD/OS)
        <dataset_dir>/labels.csv       one row per image, columns ROP_LABEL_COLUMNS (``path`` relative to the root)
        <dataset_dir>/splits.csv       infant_id,split   (train / val / test / meta; infant-level)
        <dataset_dir>/annotators.json  {"A1": {"years_experience": 12}, ...}; must list every label_A* column

    ``label_Ak`` is 0 normal / 1 pre-plus / 2 plus (or 0/1 with ``num_classes=2``), empty = not read. Every row is
    checked: ``label_majority`` must equal :func:`majority_label` of the readings (on a tie the file may hold the
    higher label or -1), ``n_agree`` the largest agreeing group, ``consensus`` 1 iff every annotator read the image
    and all agree, ``label_consensus`` the agreed label else -1, ``infant_id``/``exam_id`` the ``path`` folders.

    Label sources (``label_source``, default ``None`` = ``"majority"`` for train/val and ``"consensus"`` for
    meta/test): ``"majority"`` (ties per ``tie_break``), ``"consensus"`` (only rows with ``consensus`` == 1 are
    kept, whatever ``missing_label`` says: the clean meta/test sets), ``"A1"``/``"A2"``/``"A3"`` (one reader), or
    ``"random_annotator"`` (one of the readers who read the image, drawn per image with
    ``numpy.random.default_rng(seed)`` in list order, so the draw is reproducible). Items are sorted by ``path``.

    Args:
        dataset_dir: ROP root.
        split: ``"train"`` (default), ``"val"``, ``"test"`` or ``"meta"``; infants come from ``splits.csv``.
        label_source: see above; ``None`` (default) picks by split.
        num_classes: number of classes; every reading must lie in ``[0, num_classes)``. Default 3.
        tie_break: ``"higher"`` (default, more severe label wins a tie) or ``"none"`` (tie -> no majority label).
        missing_label: rows without the requested label: ``"drop"`` (default) or ``"error"``.
        seed: seed of the ``"random_annotator"`` draw. Default 0.
        check_files: require every selected image to exist. Default ``True``.

    Returns:
        list of dicts with ``image`` (absolute path), ``label`` (int), ``label_source`` (the source used; the
        annotator name for ``"random_annotator"``), ``annotator_labels`` (readings in annotator order, -1 = not
        read, for per-reader noise estimates), ``annotators`` (names), ``label_majority``, ``label_consensus``,
        ``consensus``, ``n_agree``, ``stage``/``zone`` (per annotator, strings as in the file), ``image_id``,
        ``infant_id`` (= ``patient_id``), ``exam_id``, ``eye``, ``gestational_age_wk``, ``birth_weight_g``,
        ``postmenstrual_age_wk`` (floats, NaN if empty), ``split`` and ``index``.

    Raises:
        FileNotFoundError: a layout file or (``check_files``) images are missing (count and first paths given).
        DatasetLayoutError: a malformed or inconsistent row, or an infant absent from ``splits.csv``; the
            message names the file, line and column. An image (``image_id`` or ``path``) listed twice in
            ``labels.csv`` or an infant listed twice in ``splits.csv`` (both lines named; path spelling and letter
            case do not make two rows different).
        ValueError: an unknown option, or ``missing_label="error"`` and a row without the requested label.
    """
    split = look_up_option(_opt(split), RopSplit)
    if label_source is None:
        label_source = RopLabelSource.CONSENSUS if split in (RopSplit.TEST, RopSplit.META) else RopLabelSource.MAJORITY
    label_source = look_up_option(_opt(label_source), RopLabelSource)
    tie_break = look_up_option(_opt(tie_break), TieBreak)
    missing_label = look_up_option(_opt(missing_label), MissingLabelPolicy)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")

    root = Path(dataset_dir).absolute()
    csv = root / "labels.csv"
    df = read_csv_checked(csv, ROP_LABEL_COLUMNS, "ROP labels.csv", _LAYOUT, dtype=str, keep_default_na=False)
    for column in ("image_id", "path"):
        require_unique(df[column], csv_lines(len(df)), csv, f"image (column '{column}')", hint=_LAYOUT)
    annotators = _read_annotators(root, csv, df.columns, label_source)
    splits = _read_splits(root)
    rows = [
        _parse_row(csv, row, rec, root, annotators, splits, num_classes, tie_break)
        for row, rec in enumerate(df.to_dict("records"))
    ]

    rows = sorted((r for r in rows if r["split"] == split.value), key=lambda r: r["image"])
    rng = np.random.default_rng(seed)
    items, dropped = [], 0
    for r in rows:
        row = r.pop("_row")
        chosen = _choose_label(r, label_source, annotators, rng)
        if chosen is None:
            continue
        label, used = chosen
        if label < 0:
            if missing_label == MissingLabelPolicy.ERROR:
                raise ValueError(f"'{csv}', line {row + 2}: no {label_source.value} label for image {r['image_id']!r}.")
            dropped += 1
            continue
        items.append({**r, "label": label, "label_source": used})

    if dropped:
        logger.info("ROP %s: dropped %d image(s) without a %s label", split.value, dropped, label_source.value)
    if check_files:
        missing = [it["image"] for it in items if not Path(it["image"]).is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} ROP image(s) are missing, e.g. {missing[:3]}. {_LAYOUT}")
    return assign_indices(items)


def _class_name(k: int, num_classes: int) -> str:
    names = ROP_CLASSES if num_classes == 3 else ("no ROP", "ROP") if num_classes == 2 else None
    return f"{k} ({names[k]})" if names is not None else str(k)


def _overlap(items: Sequence[dict], others: Sequence[dict], name: str, other: str, where: str) -> None:
    """Raise when an item of ``items`` is also in ``others`` (same ``image`` path spelling or same ``image_id``)."""
    seen: dict = {}
    for pos, it in enumerate(others):
        for key in (("image", spelling_key(it.get("image"))), ("image_id", it.get("image_id"))):
            if key[1] is not None:
                seen.setdefault(key, (pos, it))
    for pos, it in enumerate(items):
        for key in (("image", spelling_key(it.get("image"))), ("image_id", it.get("image_id"))):
            if key[1] is not None and key in seen:
                pos0, it0 = seen[key]
                raise ValueError(
                    f"{where}: {name} image {it.get('image_id', it.get('image'))!r} ({name} index "
                    f"{it.get('index', pos)}) is also in the {other} list ({other} index {it0.get('index', pos0)}, "
                    f"same {key[0]}). The {name} set must not share images with the {other} set: remove the image from "
                    f"one of the two lists (rop_datalist gives each infant the one split of splits.csv)."
                )


def check_meta_splits(
    train: Sequence[dict],
    meta: Sequence[dict],
    test: Sequence[dict] | None = None,
    num_classes: int = 3,
    dataset_dir: str | os.PathLike | None = None,
) -> dict[str, list[int]]:
    """Check the datalists of meta soft-label learning before training: the clean meta set must hold every class and
    no meta or test image may also be a training image.

    Meta soft-label learning (Algan et al.) steers every training label by the loss on the meta set; a class with
    no meta image gets no such signal, and a meta or test image seen in training leaks its label. The readers already
    refuse malformed files (:func:`rop_datalist` names file, line and column); this checks the lists as a whole.

    Args:
        train: training datalist (items with ``image``, ``image_id``, ``label``, ``index``).
        meta: meta datalist (same keys).
        test: test datalist, optional; checked against ``train`` and ``meta``.
        num_classes: number of classes; every label must lie in ``[0, num_classes)``. Default 3.
        dataset_dir: dataset folder, only named in the messages.

    Returns:
        images per class ``{"train": [...], "meta": [...], "test": [...]}`` (``test`` only when given).

    Raises:
        ValueError: an empty meta set; a meta set without some class (the message gives the counts per class); a
            label outside ``[0, num_classes)``; a meta or test image that is also in the training list, or a test
            image also in the meta list (matched by path, spelling and letter case folded, or by ``image_id``; the
            message names the image id and both indices).

    Example:
        >>> check_meta_splits([{"image": "a", "label": 0}], [{"image": "b", "label": 0}, {"image": "c", "label": 1}],
        ...                   num_classes=2)
        {'train': [1, 0], 'meta': [1, 1]}
    """
    where = f"ROP set '{dataset_dir}'" if dataset_dir is not None else "ROP datalists"
    lists = {"train": train, "meta": meta} | ({} if test is None else {"test": test})
    counts = {}
    for name, items in lists.items():
        labels = [it["label"] for it in items]
        bad = [
            (pos, v) for pos, v in enumerate(labels) if not (isinstance(v, (int, np.integer)) and 0 <= v < num_classes)
        ]
        if bad:
            pos, v = bad[0]
            raise ValueError(
                f"{where}: {name} item {items[pos].get('image_id', pos)!r} (index {items[pos].get('index', pos)}) has "
                f"label {v!r}; expected an integer class in [0, {num_classes})."
            )
        counts[name] = [sum(int(v) == k for v in labels) for k in range(num_classes)]
    if not meta:
        raise ValueError(
            f"{where}: the meta set is empty. Meta soft-label learning needs a clean meta set holding every class: "
            f"put some infants with unanimously read images in split 'meta' of splits.csv."
        )
    absent = [_class_name(k, num_classes) for k, c in enumerate(counts["meta"]) if c == 0]
    if absent:
        per_class = ", ".join(f"{_class_name(k, num_classes)}: {c}" for k, c in enumerate(counts["meta"]))
        raise ValueError(
            f"{where}: the meta set has no image of class(es) {', '.join(absent)} "
            f"(meta images per class: {per_class}). The meta set must hold every class: move infants with consensus "
            f"images of those classes to split 'meta' in splits.csv."
        )
    _overlap(meta, train, "meta", "train", where)
    if test is not None:
        _overlap(test, train, "test", "train", where)
        _overlap(test, meta, "test", "meta", where)
    return counts
