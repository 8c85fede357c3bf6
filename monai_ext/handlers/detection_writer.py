# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ignite handler writing each CT case's lesion boxes to ``<output_dir>/<case_id>/<case_id>_boxes.json`` and
rebuilding ``<output_dir>/detections.csv`` (one row per box) from them, never overwriting a result unless asked.

The per-case JSON follows the MONAI model zoo's detection output (``Project-MONAI/model-zoo@dfae206d``,
``models/lung_nodule_ct_detection/scripts/detection_saver.py``: per image ``box``, ``label``, ``label_scores``,
``image``), one file per case instead of one list per run, extended with the slice, world and detector-grid
coordinates of :func:`monai_ext.inferers.slice_boxes_to_world`. Resumable design as
:mod:`monai_ext.handlers.prediction_writer`: the JSON is the result that marks a case done (the ``ct_detection`` and
``deeplesion_slices`` kinds' result, so :func:`monai_ext.data.inference.pending_cases` leaves it out of the next run);
it is written to a hidden temporary file and linked into place; a case with no detection gets its JSON too (empty
lists); ``detections.csv`` is rebuilt at the end of every run from every per-case JSON, so rows of earlier runs are
kept.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.data import MetaTensor, decollate_batch
from monai.utils import IgniteInfo, ImageMetaKey, look_up_option, min_version, optional_import
from monai.utils.enums import MetaKeys, SpaceKeys

from monai_ext.bundle.parameters import as_flag
from monai_ext.data.inference import InputKind
from monai_ext.data.inference.deeplesion_slices import BOXES_SUFFIX
from monai_ext.handlers.prediction_writer import PredictionWriter, _per_sample, publish_file
from monai_ext.inferers.slice_detection import slice_boxes_to_world

if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = ["DETECTIONS_CSV", "DETECTION_CSV_COLUMNS", "DetectionWriter", "write_detections_csv"]

DETECTIONS_CSV = "detections.csv"
"""Name of the combined table in the output folder (columns :data:`DETECTION_CSV_COLUMNS`)."""

DETECTION_CSV_COLUMNS = (
    "case_id",
    "image",
    "slice",
    "x1",
    "y1",
    "x2",
    "y2",
    "world_x1",
    "world_y1",
    "world_z1",
    "world_x2",
    "world_y2",
    "world_z2",
    "label",
    "score",
)
"""One row per box: the slice and ``xyxy`` box in the original voxel grid, the world coordinates of the box's two
corners (``world_*1`` of ``(x1, y1)``, ``world_*2`` of ``(x2, y2)``, in the JSON's ``space``), the label and score."""

_INTEGRAL = 1e-3
_MAX_NAMED = 5


def _numbers(values: np.ndarray) -> list:
    """``values`` as JSON lists of Python floats."""
    return np.asarray(values, dtype=np.float64).tolist()


def _slice_numbers(values: np.ndarray) -> list:
    """Slice coordinates as ints where they are integral (in-plane resampling), else floats."""
    rounded = np.rint(values)
    if np.all(np.abs(values - rounded) < _INTEGRAL):
        return [int(v) for v in rounded]
    return _numbers(values)


def _spacing(affine: np.ndarray) -> list[float]:
    return [float(v) for v in np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)]


def write_detections_csv(
    output_dir: str | os.PathLike, filename: str = DETECTIONS_CSV, skip_missing_dir: bool = False
) -> Path | None:
    """Rebuild ``<output_dir>/detections.csv`` from every ``<output_dir>/<case_id>/<case_id>_boxes.json``.

    One row per box (columns :data:`DETECTION_CSV_COLUMNS`), cases sorted by id, boxes in their JSON order; a case
    without boxes has no row (its JSON says it ran). A JSON that cannot be parsed or is not a detection result is left
    out with a warning naming it. Numbers are written with Python's shortest round-trip ``repr``; replaced atomically.

    Args:
        output_dir: the folder of per-case results.
        filename: name of the table. Defaults to ``"detections.csv"``.
        skip_missing_dir: write nothing and return None when ``output_dir`` does not exist. Defaults to False.

    Returns:
        The path of the CSV, or None (``skip_missing_dir`` and no folder).
    """
    out = Path(output_dir)
    if skip_missing_dir and not out.is_dir():
        return None
    out.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(__name__)
    records = []
    for path in sorted(out.glob(f"*/*{BOXES_SUFFIX}")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            logger.warning(f"'{path}' left out of {filename}: not readable JSON ({e}).")
            continue
        keys = ("case_id", "box", "slice", "world_corners", "label", "label_scores")
        if not (isinstance(record, dict) and all(k in record for k in keys)):
            logger.warning(f"'{path}' left out of {filename}: not a detection result (needs {list(keys)}).")
            continue
        records.append(record)
    records.sort(key=lambda r: str(r["case_id"]))
    target, tmp = out / filename, out / f".{filename}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(DETECTION_CSV_COLUMNS)
        for r in records:
            for box, z, corners, label, score in zip(
                r["box"], r["slice"], r["world_corners"], r["label"], r["label_scores"]
            ):
                numbers = [z, *box, *corners[0], *corners[1]]
                writer.writerow([r["case_id"], r.get("image", ""), *map(repr, numbers), label, repr(score)])
    os.replace(tmp, target)
    return target


class DetectionWriter(PredictionWriter):
    """Write each case's detections to ``<output_dir>/<case_id>/<case_id>_boxes.json`` and rebuild
    ``<output_dir>/detections.csv`` at the end of the run.

    Attach it to the inference evaluator whose inferer is :class:`monai_ext.inferers.SliceDetectionInferer`
    (``SupervisedEvaluator`` with ``decollate=False``). At every ``ITERATION_COMPLETED`` it reads, per sample, the
    inferer's dict (``engine.state.output[pred_key][i]``, or ``engine.state.output[i][pred_key]`` from an evaluator
    that decollates per volume) and, from ``engine.state.batch`` (a collated dict, decollated here, or a list of
    dicts), the case id (``case_key``) and the image (``image_key``): the ``MetaTensor`` the detector saw, whose
    ``affine`` (after the in-plane resampling), ``original_affine`` (as loaded), ``space`` and ``filename_or_obj``
    give the coordinates and the source.

    A JSON holds ``case_id``, ``image``, ``model_name`` / ``model_version`` (when given), ``space`` (the world space,
    ``output_space``), ``box_mode`` (``"xyxy"``), ``spacing`` (mm per original voxel) and ``detector_spacing`` (of
    the resampled grid), then one entry per box in each list, in the inferer's order (by slice, then score):

    - ``box``: ``[x1, y1, x2, y2]`` in the original voxel grid (before the in-plane resample; axis 0 first, as
      MONAI loaded the image), ``slice``: the slice index in it (an int);
    - ``label`` (0-based class index), ``label_scores`` (score), and ``label_name`` when ``class_names`` are given;
    - ``world_corners``: world ``[[x, y, z], [x, y, z]]`` mm of the box's corners ``(x1, y1)`` and ``(x2, y2)`` at
      the slice centre; ``box_world``: MONAI's axis-aligned world box ``[x1, y1, z1, x2, y2, z2]``;
    - ``detector_box``, ``detector_slice``: the box and slice as detected, in the resampled grid;
    - ``slice_file_number``: for DeepLesion PNG slices, the ``NNN`` of the slice's file.

    With ``overwrite=False`` (default) an existing result is never replaced: the case is left alone, counted and
    logged. At ``COMPLETED`` the first rank rebuilds the CSV (:func:`write_detections_csv`) after a barrier; under
    ``torchrun`` attach it on every rank.

    Args:
        output_dir: folder of the results (created at the start of the run).
        class_names: the detector's classes, label ``k`` is ``class_names[k]``. Defaults to None (no names).
        pred_key: key of the inferer's output. Defaults to ``"pred"``.
        case_key: key of the case id in the batch. Defaults to ``"case_id"``.
        image_key: key of the image in the batch. Defaults to ``"image"``.
        box_key, label_key, score_key, slice_key: keys of the inferer's dict. Default to ``"box"``, ``"label"``,
            ``"label_scores"``, ``"slice"`` (:class:`~monai_ext.inferers.SliceDetectionInferer`'s defaults).
        overwrite: replace existing results. Defaults to False.
        model_name: written into every JSON (e.g. the bundle's name). Defaults to None.
        model_version: written into every JSON (e.g. the bundle's ``metadata.json`` version). Defaults to None.
        output_space: {``"RAS"``, ``"LPS"``}, the world space of the coordinates. Defaults to RAS (MONAI's).
        csv_name: name of the combined table. Defaults to ``"detections.csv"``.
        name: logger name; None uses ``engine.logger``.
        input_kind: {``"ct_detection"``, ``"deeplesion_slices"``}, whose result a case gets (both
            ``<case_id>/<case_id>_boxes.json``). Defaults to ``"ct_detection"``.

    Raises:
        ValueError: ``class_names`` is empty or repeats a name, ``output_space`` or ``input_kind`` is unknown.
    """

    input_kind = InputKind.CT_DETECTION
    """Its result is the detection kinds' ``<case_id>/<case_id>_boxes.json``."""

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str] | None = None,
        pred_key: str = "pred",
        case_key: str = "case_id",
        image_key: str = "image",
        box_key: str = "box",
        label_key: str = "label",
        score_key: str = "label_scores",
        slice_key: str = "slice",
        overwrite: bool = False,
        model_name: str | None = None,
        model_version: str | None = None,
        output_space: SpaceKeys | str = SpaceKeys.RAS,
        csv_name: str = DETECTIONS_CSV,
        name: str | None = None,
        input_kind: InputKind | str | None = None,
    ) -> None:
        super().__init__(
            output_dir,
            class_names if class_names is not None else ["lesion"],
            pred_key=pred_key,
            case_key=case_key,
            image_key=image_key,
            overwrite=as_flag(overwrite, "overwrite"),
            model_version=model_version,
            csv_name=csv_name,
            name=name,
            input_kind=input_kind,
        )
        if self.input_kind not in (InputKind.CT_DETECTION, InputKind.DEEPLESION_SLICES):
            raise ValueError(f"input_kind must be 'ct_detection' or 'deeplesion_slices', got '{self.input_kind}'.")
        self.class_names = None if class_names is None else self.class_names
        self.box_key, self.label_key, self.score_key, self.slice_key = box_key, label_key, score_key, slice_key
        self.model_name = model_name
        self.output_space = look_up_option(output_space, SpaceKeys)

    def __call__(self, engine: Engine) -> None:
        """Write one JSON per sample of this iteration.

        Raises:
            KeyError: the output has no ``pred_key``, a prediction lacks a box/label/score/slice key, or the batch has
                no ``case_key`` / ``image_key``.
            TypeError: the output or batch is neither a dict nor a list of dicts, or a batch image is not a
                ``MetaTensor`` (its affine is needed).
            ValueError: as :meth:`write`, or the predictions are not one dict per case (e.g. an evaluator with
                ``decollate=True``).
        """
        preds = _per_sample(engine.state.output, self.pred_key, "output")
        batch = engine.state.batch
        items = decollate_batch(batch, detach=True) if isinstance(batch, Mapping) else list(batch)
        hint = "run the evaluator with decollate=False (decollate_batch splits each volume's detections)"
        if len(preds) != len(items) or not all(isinstance(p, Mapping) for p in preds):
            kinds = sorted({type(p).__name__ for p in preds})
            raise ValueError(
                f"{len(preds)} predictions ({', '.join(kinds)}) for {len(items)} cases in this iteration, expected one "
                f"dict per case from SliceDetectionInferer; {hint}."
            )
        for k, (pred, item) in enumerate(zip(preds, items)):
            for key in (self.case_key, self.image_key):
                if key not in item:
                    raise KeyError(
                        f"item {k} of engine.state.batch has no '{key}' (found keys: {sorted(map(str, item))})."
                    )
            image = item[self.image_key]
            if not isinstance(image, MetaTensor):
                raise TypeError(
                    f"case '{item[self.case_key]}': engine.state.batch['{self.image_key}'] must be the loaded image "
                    f"(a MetaTensor with its affine), got {type(image).__name__}."
                )
            meta = image.meta
            self.write(
                str(item[self.case_key]),
                str(meta.get(ImageMetaKey.FILENAME_OR_OBJ, "")),
                pred,
                image.affine,
                meta.get(MetaKeys.ORIGINAL_AFFINE),
                affine_space=meta.get(MetaKeys.SPACE, SpaceKeys.RAS),
                first_slice_number=meta.get("first_slice_number"),
            )

    def record(
        self,
        case_id: str,
        image: str,
        detections: Mapping[str, Any],
        affine: Any,
        original_affine: Any = None,
        affine_space: SpaceKeys | str = SpaceKeys.RAS,
        first_slice_number: int | None = None,
    ) -> dict[str, Any]:
        """The JSON record of one case (see the class docstring); arguments as :meth:`write`.

        Raises:
            KeyError, ValueError: as :meth:`write`.
        """
        missing = [k for k in (self.box_key, self.label_key, self.score_key, self.slice_key) if k not in detections]
        if missing:
            raise KeyError(
                f"case '{case_id}': the prediction has no {missing} (found {sorted(map(str, detections))}); use "
                "SliceDetectionInferer's output with matching keys."
            )
        box = torch.as_tensor(detections[self.box_key]).detach().cpu().reshape(-1, 4)
        labels = [int(v) for v in torch.as_tensor(detections[self.label_key]).reshape(-1).tolist()]
        scores = [float(v) for v in torch.as_tensor(detections[self.score_key]).reshape(-1).tolist()]
        slices = torch.as_tensor(detections[self.slice_key]).detach().cpu().reshape(-1)
        if not len(box) == len(labels) == len(scores) == len(slices):
            raise ValueError(
                f"case '{case_id}': {len(box)} boxes, {len(labels)} labels, {len(scores)} scores and {len(slices)} "
                "slices; each box needs one of each."
            )
        if self.class_names is not None and any(not 0 <= v < len(self.class_names) for v in labels):
            raise ValueError(f"case '{case_id}': labels {sorted(set(labels))} outside 0..{len(self.class_names) - 1}.")
        original = affine if original_affine is None else original_affine
        space = look_up_option(str(affine_space), SpaceKeys)
        coords = slice_boxes_to_world(box, slices, affine, original, affine_space=space, output_space=self.output_space)
        record: dict[str, Any] = {"case_id": case_id, "image": image}
        for key, value in (("model_name", self.model_name), ("model_version", self.model_version)):
            if value is not None:
                record[key] = value
        record["space"] = str(self.output_space.value)
        record["box_mode"] = "xyxy"
        record["spacing"] = _spacing(np.asarray(original, dtype=np.float64))
        record["detector_spacing"] = _spacing(np.asarray(affine, dtype=np.float64))
        record["box"] = _numbers(coords["box_original"])
        record["slice"] = _slice_numbers(coords["slice_original"])
        record["label"] = labels
        if self.class_names is not None:
            record["label_name"] = [self.class_names[v] for v in labels]
        record["label_scores"] = scores
        record["world_corners"] = _numbers(coords["world_corners"])
        record["box_world"] = _numbers(coords["box_world"])
        record["detector_box"] = _numbers(box.numpy())
        record["detector_slice"] = [int(v) for v in slices.tolist()]
        if first_slice_number is not None:
            first = int(first_slice_number.item() if hasattr(first_slice_number, "item") else first_slice_number)
            record["slice_file_number"] = [first + int(v) for v in record["detector_slice"]]
        return record

    def write(  # type: ignore[override]
        self,
        case_id: str,
        image: str,
        detections: Mapping[str, Any],
        affine: Any,
        original_affine: Any = None,
        affine_space: SpaceKeys | str = SpaceKeys.RAS,
        first_slice_number: int | None = None,
    ) -> bool:
        """Write one case's result; returns False when it exists and ``overwrite`` is False (the case is kept).

        Args:
            case_id: a safe file name (see :meth:`result_path`).
            image: the source path, stored as given.
            detections: the inferer's dict of one volume (``N x 4`` boxes, ``N`` labels, scores and slices).
            affine: ``4 x 4`` voxel -> world of the volume the detector saw.
            original_affine: ``4 x 4`` of the volume as loaded. Defaults to None (``affine``: no resampling).
            affine_space: {``"RAS"``, ``"LPS"``}, the space of the affines. Defaults to RAS.
            first_slice_number: the file number of slice 0 (DeepLesion PNG slices). Defaults to None.

        Raises:
            KeyError: ``detections`` lacks a key.
            ValueError: the lists differ in length, a label is outside ``class_names``, a case id is not a safe file
                name, or the coordinates cannot be mapped (:func:`monai_ext.inferers.slice_boxes_to_world`).
        """
        path = self.result_path(case_id)
        text = json.dumps(
            self.record(case_id, image, detections, affine, original_affine, affine_space, first_slice_number), indent=2
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        if publish_file(tmp, path, self.overwrite):
            self.written.append(case_id)
            return True
        self.kept.append(case_id)
        return False

    def rebuild_csv(self) -> Path:
        """Rebuild the combined table from every per-case result in ``output_dir`` (:func:`write_detections_csv`)."""
        return write_detections_csv(self.output_dir, self.csv_name)
