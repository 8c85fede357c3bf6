# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""FROC report of a detection evaluation: sensitivity at 0.5, 1, 2, 4 FPs per image, the mean over 0.5-2 (MoMBS
Table I), under the official DeepLesion convention and the strict one, plus the FROC curve PNG and a CSV of every
detection with its outcome.

Boxes are compared in the **original pixel grid** of each image: a ``zoom`` entry in the item (written by
:class:`monai_ext.transforms.ZoomToSpacingd`, the factor from the original pixels to the working spacing) divides
predicted and ground-truth boxes back, so that the official "+1 pixel" IoU is taken on the grid the annotations were
made on (as the official evaluation, which works on the 512 x 512 slices).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.utils import IgniteInfo, min_version, optional_import
from monai.utils.enums import CommonKeys as Keys

from monai_ext.metrics.froc import (
    DEEPLESION_AVERAGE_FP_RATES,
    DEEPLESION_FP_RATES,
    compute_detection_froc,
    detection_outcomes,
    summarize_froc,
)
from monai_ext.metrics.plots import save_froc_png

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = ["DetectionFROCReport", "original_pixel_boxes"]

_CONVENTIONS = {
    "official": {"duplicate": "ignore", "iou_convention": "plus_one"},
    "strict": {"duplicate": "false_positive", "iou_convention": "continuous"},
}


def original_pixel_boxes(boxes: Any, zoom: Any | None) -> np.ndarray:
    """``N x 4`` ``xyxy`` boxes divided by the per-axis ``zoom`` (``[zx, zy]``, or one number); float64 numpy.

    Raises:
        ValueError: boxes that are not ``N x 4``, or a zoom that is not positive.
    """
    b = boxes.detach().cpu().numpy() if isinstance(boxes, torch.Tensor) else np.asarray(boxes)
    b = b.astype(np.float64).reshape(-1, 4)
    if zoom is None:
        return b
    z = np.asarray(zoom.detach().cpu() if isinstance(zoom, torch.Tensor) else zoom, dtype=np.float64).reshape(-1)
    z = np.repeat(z, 2) if z.size == 1 else z[:2]
    if not np.all(z > 0):
        raise ValueError(f"zoom must be positive, got {zoom!r}.")
    return b / np.concatenate([z, z])


class DetectionFROCReport:
    """Collects a :class:`monai_ext.engines.DetectionEvaluator`'s detections and writes the FROC report at the end.

    Files (under ``output_dir``; an existing file is never replaced unless ``overwrite``):

    - ``<prefix>_froc.json``: ``{"official": {"sens@0.5": .., "sens@1": .., "sens@2": .., "sens@4": ..,
      "avg[0.5,1,2]": ..}, "strict": {...}, "num_images", "num_lesions", "conventions": {...}}``;
    - ``<prefix>_froc.png``: both FROC curves;
    - ``<prefix>_detections.csv``: one row per detection (``file_name, x1, y1, x2, y2, score, outcome``) in original
      pixels, ``outcome`` under the official convention: ``tp`` (finds a lesion), ``ignored`` (hits only found
      lesions), ``fp``; and one row per lesion never found (``outcome`` ``missed``, empty score).

    Args:
        output_dir: the report folder.
        prefix: file name prefix, default ``"test"``.
        fp_rates: FP/image rates reported, default (0.5, 1, 2, 4).
        average_over: rates averaged, default (0.5, 1, 2).
        box_key, score_key: keys of the detector's predictions and the targets; defaults ``"box"``,
            ``"label_scores"``.
        zoom_key: item key of the working-spacing factor (None: compare in working pixels); default ``"zoom"``.
        name_key: item key naming the image in the CSV, default ``"file_name"``.
        overwrite: replace existing report files, default False.

    Raises:
        FileExistsError: a report file exists and ``overwrite`` is False (when attached, and again at the end).
        ValueError: no ground-truth lesion was seen (at the end).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        prefix: str = "test",
        fp_rates: Sequence[float] = DEEPLESION_FP_RATES,
        average_over: Sequence[float] = DEEPLESION_AVERAGE_FP_RATES,
        box_key: str = "box",
        score_key: str = "label_scores",
        zoom_key: str | None = "zoom",
        name_key: str = "file_name",
        overwrite: bool = False,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.prefix = str(prefix)
        self.fp_rates = sorted({float(r) for r in fp_rates} | {float(r) for r in average_over})
        self.average_over = [float(r) for r in average_over]
        self.box_key, self.score_key, self.zoom_key, self.name_key = box_key, score_key, zoom_key, name_key
        self.overwrite = bool(overwrite)
        self.logger = logging.getLogger(__name__)
        self.reset()

    def reset(self, engine: Engine | None = None) -> None:
        self.names: list[str] = []
        self.pred_boxes: list[np.ndarray] = []
        self.pred_scores: list[np.ndarray] = []
        self.gt_boxes: list[np.ndarray] = []

    def attach(self, engine: Engine) -> None:
        """Collect at every iteration, write at the end; an existing report is refused now, before the evaluation
        runs (``FileExistsError``, unless ``overwrite``)."""
        for suffix in ("froc.json", "froc.png", "detections.csv"):
            self._path(suffix)
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.write)

    def collect(self, engine: Engine) -> None:
        """Keep the iteration's detections and targets in original pixels.

        Raises:
            KeyError: the evaluator output holds no targets (items without boxes).
        """
        output = engine.state.output
        targets = output.get(Keys.LABEL)
        if targets is None:
            raise KeyError("DetectionFROCReport needs ground-truth boxes in the evaluated items.")
        items = output.get("items") or [{} for _ in targets]
        names = output.get("names") or [str(i) for i in range(len(targets))]
        for pred, target, item, name in zip(output[Keys.PRED], targets, items, names):
            zoom = item.get(self.zoom_key) if self.zoom_key else None
            self.pred_boxes.append(original_pixel_boxes(pred[self.box_key], zoom))
            self.pred_scores.append(pred[self.score_key].detach().cpu().numpy().astype(np.float64).reshape(-1))
            self.gt_boxes.append(original_pixel_boxes(target[self.box_key], zoom))
            self.names.append(str(item.get(self.name_key, name)))

    def _path(self, suffix: str) -> Path:
        path = self.output_dir / f"{self.prefix}_{suffix}"
        if path.exists() and not self.overwrite:
            raise FileExistsError(f"{path} exists; evaluate into another output_dir or pass --overwrite true.")
        return path

    def results(self) -> dict[str, dict[str, Any]]:
        """``{convention: compute_detection_froc result}`` for ``"official"`` and ``"strict"``."""
        return {
            name: compute_detection_froc(self.pred_boxes, self.pred_scores, self.gt_boxes, self.fp_rates, **options)
            for name, options in _CONVENTIONS.items()
        }

    def write(self, engine: Engine | None = None) -> dict[str, Any]:
        """Write the JSON, PNG and CSV; returns the JSON content."""
        paths = {s: self._path(s) for s in ("froc.json", "froc.png", "detections.csv")}
        results = self.results()
        report = {name: summarize_froc(r, self.average_over) for name, r in results.items()}
        report.update(
            num_images=len(self.gt_boxes),
            num_lesions=int(sum(len(g) for g in self.gt_boxes)),
            conventions={k: dict(v) for k, v in _CONVENTIONS.items()},
        )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        paths["froc.json"].write_text(json.dumps(report, indent=2))
        save_froc_png(
            {f"{name} convention": r for name, r in results.items()},
            paths["froc.png"],
            title=f"FROC ({self.prefix}, {report['num_images']} images, {report['num_lesions']} lesions)",
            average_over=self.average_over,
            overwrite=self.overwrite,
        )
        self._write_csv(paths["detections.csv"])
        official = report["official"]
        self.logger.info(f"DetectionFROCReport ({self.prefix}): official convention {official}.")
        return report

    def _write_csv(self, path: Path) -> None:
        rows = []
        for name, boxes, scores, gts in zip(self.names, self.pred_boxes, self.pred_scores, self.gt_boxes):
            found, is_fp = detection_outcomes(boxes, scores, gts, **_CONVENTIONS["official"])
            order = np.argsort(-scores, kind="stable")
            for k in order:
                outcome = "fp" if is_fp[k] else ("tp" if found[k] > 0 else "ignored")
                rows.append([name, *(f"{v:.2f}" for v in boxes[k]), f"{scores[k]:.6f}", outcome])
            hit = _lesions_found(boxes, gts)
            for j in np.flatnonzero(~hit):
                rows.append([name, *(f"{v:.2f}" for v in gts[j]), "", "missed"])
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file_name", "x1", "y1", "x2", "y2", "score", "outcome"])
            writer.writerows(rows)


def _lesions_found(boxes: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """Which lesions some detection hits (official +1-pixel IoU >= 0.5), whatever its score."""
    if len(gts) == 0:
        return np.zeros(0, dtype=bool)
    found = np.zeros(len(gts), dtype=bool)
    for j, g in enumerate(gts):
        _, is_fp = detection_outcomes(boxes, np.ones(len(boxes)), g[None], **_CONVENTIONS["official"])
        found[j] = bool(len(boxes)) and bool((~is_fp).any())
    return found
