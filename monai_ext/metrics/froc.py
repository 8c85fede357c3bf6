# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""FROC for box detection: sensitivity at 0.5, 1, 2 and 4 false positives per image and their average.

DeepLesion convention (Yan et al., "DeepLesion: automated mining of large-scale lesion annotations and universal lesion
detection with deep learning", J. Med. Imaging 5(3) 2018; Ke Yan's evaluation code reads the sensitivity off the FROC
curve by linear interpolation): within each image the detections are taken in decreasing score order, and a detection
is a true positive if its IoU with a not-yet-matched ground-truth box is >= 0.5 (it takes the unmatched box of highest
IoU); each ground-truth box is matched at most once, so a duplicate detection of a found lesion is a false positive.
Images without ground truth still count in "per image" and all their detections are false positives.

The IoU is :func:`monai.data.box_utils.box_iou`. The curve is built here rather than with
:func:`monai.metrics.compute_froc_curve_data`, which loops over every distinct score (quadratic in the number of
detections), drops its lowest threshold (it expects a score 0 for the missed targets, so with every target found the
lowest-scored detections never enter the curve) and keeps several sensitivities for one FP count. The linear reading
equals :func:`monai.metrics.compute_froc_score` on the curve returned here. :class:`FROCSensitivity` is the ignite
metric for MONAI evaluators.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.data.box_utils import box_iou
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

__all__ = [
    "DEEPLESION_FP_RATES",
    "FROCMatch",
    "FROCInterpolation",
    "match_detections",
    "froc_curve",
    "compute_detection_froc",
    "FROCSensitivity",
]

DEEPLESION_FP_RATES = (0.5, 1.0, 2.0, 4.0)
"""FP rates (average false positives per image) at which DeepLesion detection papers report sensitivity."""


class FROCMatch(StrEnum):
    """When a detection hits a ground-truth box: ``"iou"``: IoU >= ``iou_threshold``; ``"center"``: the centre of the
    detected box lies inside the ground-truth box (borders included)."""

    IOU = "iou"
    CENTER = "center"


class FROCInterpolation(StrEnum):
    """How the sensitivity at a FP rate is read off the curve: ``"linear"`` interpolates between the curve points
    (DeepLesion, CAMELYON16 / :func:`monai.metrics.compute_froc_score`); ``"step"`` takes the best operating point
    with at most that many FPs per image."""

    LINEAR = "linear"
    STEP = "step"


def _boxes(x: Any, what: str) -> np.ndarray:
    arr = x.detach().cpu().to(torch.float64).numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{what} must have shape (n, 4) as [x1, y1, x2, y2], got {arr.shape}.")
    if not np.isfinite(arr).all() or (arr[:, 2] < arr[:, 0]).any() or (arr[:, 3] < arr[:, 1]).any():
        raise ValueError(f"{what} must be finite [x1, y1, x2, y2] boxes with x2 >= x1 and y2 >= y1.")
    return arr


def _scores(x: Any, n: int, what: str) -> np.ndarray:
    arr = x.detach().cpu().to(torch.float64).numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    arr = arr.reshape(-1)
    if arr.size != n:
        raise ValueError(f"{what} has {arr.size} scores for {n} boxes.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} holds NaN or infinite scores.")
    return arr


def match_detections(
    pred_boxes: Any,
    pred_scores: Any,
    gt_boxes: Any,
    iou_threshold: float = 0.5,
    match: FROCMatch | str = FROCMatch.IOU,
) -> np.ndarray:
    """Mark the detections of one image as true (True) or false (False) positives.

    Detections are visited in decreasing score (ties: input order). Each one takes, among the ground-truth boxes not
    matched yet that it hits (see :class:`FROCMatch`), the one of highest IoU (ties: the first); if it hits none it is a
    false positive.

    Args:
        pred_boxes: ``(n, 4)`` detected boxes ``[x1, y1, x2, y2]`` (pixels, x2 >= x1, y2 >= y1), array or tensor.
        pred_scores: ``(n,)`` detection scores (higher = more confident).
        gt_boxes: ``(m, 4)`` ground-truth boxes; ``m`` may be 0.
        iou_threshold: IoU needed for a hit with ``match="iou"`` (inclusive). Defaults to 0.5.
        match: {``"iou"``, ``"center"``}. Defaults to ``"iou"``.

    Returns:
        bool array of shape ``(n,)`` in the input order of the detections.

    Raises:
        ValueError: a box array is not ``(n, 4)`` or has x2 < x1 / y2 < y1, scores are not finite or their number
            differs from the boxes', or ``iou_threshold`` is not in (0, 1].
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}.")
    mode = look_up_option(match, FROCMatch)
    pred, gt = _boxes(pred_boxes, "pred_boxes"), _boxes(gt_boxes, "gt_boxes")
    scores = _scores(pred_scores, len(pred), "pred_scores")
    is_tp = np.zeros(len(pred), dtype=bool)
    if len(pred) == 0 or len(gt) == 0:
        return is_tp
    iou = np.asarray(box_iou(pred, gt), dtype=np.float64)  # (n, m)
    if mode == FROCMatch.IOU:
        hits = iou >= iou_threshold
    else:
        cx, cy = (pred[:, 0] + pred[:, 2]) / 2, (pred[:, 1] + pred[:, 3]) / 2
        hits = (
            (cx[:, None] >= gt[None, :, 0])
            & (cx[:, None] <= gt[None, :, 2])
            & (cy[:, None] >= gt[None, :, 1])
            & (cy[:, None] <= gt[None, :, 3])
        )
    matched = np.zeros(len(gt), dtype=bool)
    for i in np.argsort(-scores, kind="stable"):
        candidates = hits[i] & ~matched
        if candidates.any():
            matched[int(np.argmax(np.where(candidates, iou[i], -1.0)))] = True
            is_tp[i] = True
    return is_tp


def froc_curve(scores: Any, is_tp: Any, num_targets: int, num_images: int) -> tuple[np.ndarray, np.ndarray]:
    """FROC curve from pooled detections: the best sensitivity reachable with each number of false positives.

    Thresholding at every distinct score gives the operating points (FP count, TP count); for each FP count the curve
    keeps the highest TP count (the threshold just before the next false positive enters), plus the point (0, 0)
    above every score.

    Args:
        scores: ``(N,)`` scores of all detections of all images.
        is_tp: ``(N,)`` bool, from :func:`match_detections` per image.
        num_targets: number of ground-truth boxes over all images (> 0).
        num_images: number of images evaluated, including those without ground truth (> 0).

    Returns:
        ``fps_per_image`` and ``sensitivity``, both ``(K + 1,)`` for ``K`` false positives in total: ``fps_per_image``
        is ``0, 1/num_images, ..., K/num_images`` and ``sensitivity`` is non-decreasing in [0, 1].

    Raises:
        ValueError: ``num_targets`` or ``num_images`` is not positive, or ``scores`` and ``is_tp`` differ in length.
    """
    if num_targets <= 0 or num_images <= 0:
        raise ValueError(f"num_targets ({num_targets}) and num_images ({num_images}) must be positive.")
    s = _scores(scores, np.asarray(is_tp).size, "scores")
    tp = np.asarray(is_tp, dtype=bool).reshape(-1)
    order = np.argsort(-s, kind="stable")
    s, tp = s[order], tp[order]
    cum_tp, cum_fp = np.cumsum(tp), np.cumsum(~tp)
    last_of_tie = np.r_[s[1:] != s[:-1], True] if s.size else np.zeros(0, dtype=bool)
    fp_counts = np.r_[0, cum_fp[last_of_tie]]
    tp_counts = np.r_[0, cum_tp[last_of_tie]]
    last_of_fp = np.r_[fp_counts[1:] != fp_counts[:-1], True]  # TP count is non-decreasing: keep the last per FP count
    return fp_counts[last_of_fp] / float(num_images), tp_counts[last_of_fp] / float(num_targets)


def _check_rates(fp_rates: Sequence[float]) -> np.ndarray:
    rates = np.asarray(fp_rates, dtype=np.float64).reshape(-1)
    if rates.size == 0 or not (rates > 0).all():
        raise ValueError(f"fp_rates must be positive numbers, got {list(fp_rates)}.")
    return rates


def _read_curve(
    fps: np.ndarray, sens: np.ndarray, rates: np.ndarray, num_images: int, mode: FROCInterpolation
) -> np.ndarray:
    """Sensitivity at each FP rate from a :func:`froc_curve` curve, by linear interpolation or step reading."""
    if mode == FROCInterpolation.LINEAR:
        return np.interp(rates, fps, sens)
    max_fp_counts = np.floor(rates * num_images + 1e-9)  # FP counts allowed at each rate
    return sens[np.searchsorted(np.rint(fps * num_images), max_fp_counts, side="right") - 1]


def compute_detection_froc(
    pred_boxes: Sequence[Any],
    pred_scores: Sequence[Any],
    gt_boxes: Sequence[Any],
    fp_rates: Sequence[float] = DEEPLESION_FP_RATES,
    iou_threshold: float = 0.5,
    match: FROCMatch | str = FROCMatch.IOU,
    interpolation: FROCInterpolation | str = FROCInterpolation.LINEAR,
) -> dict[str, Any]:
    """Sensitivity at given false positives per image, and its average, for one-class box detection (DeepLesion).

    Args:
        pred_boxes: one ``(n_i, 4)`` array/tensor of detected ``[x1, y1, x2, y2]`` boxes per image (``n_i`` may be 0).
        pred_scores: one ``(n_i,)`` array/tensor of scores per image.
        gt_boxes: one ``(m_i, 4)`` array/tensor of ground-truth boxes per image (``m_i`` may be 0; such an image only
            adds false positives).
        fp_rates: average false positives per image at which to read the sensitivity. Defaults to
            ``(0.5, 1, 2, 4)``. A rate beyond the last curve point reads the final sensitivity.
        iou_threshold: IoU for a hit with ``match="iou"``. Defaults to 0.5.
        match: {``"iou"``, ``"center"``}, see :class:`FROCMatch`. Defaults to ``"iou"``.
        interpolation: {``"linear"``, ``"step"``}, see :class:`FROCInterpolation`. Defaults to ``"linear"``.

    Returns:
        A dict with ``"fp_rates"`` (list), ``"sensitivity"`` (list, one per rate), ``"average_sensitivity"`` (their
        mean, the FROC score), ``"fps_per_image"`` and ``"curve_sensitivity"`` (the curve of :func:`froc_curve`,
        ndarrays), ``"num_images"``, ``"num_targets"``, ``"num_detections"``, ``"num_true_positives"``.

    Raises:
        ValueError: the three sequences differ in length or are empty, there is no ground-truth box at all, a rate is
            not positive, or a per-image input is invalid (see :func:`match_detections`).

    Example:
        >>> r = compute_detection_froc([[[0, 0, 10, 10], [20, 20, 30, 30]]], [[0.9, 0.8]], [[[0, 0, 10, 10]]], (1.0,))
        >>> r["sensitivity"], r["num_true_positives"]
        ([1.0], 1)
    """
    if not (len(pred_boxes) == len(pred_scores) == len(gt_boxes)):
        raise ValueError(
            f"pred_boxes, pred_scores and gt_boxes must list the same images, got {len(pred_boxes)}, "
            f"{len(pred_scores)} and {len(gt_boxes)} entries."
        )
    if len(gt_boxes) == 0:
        raise ValueError("no images to evaluate.")
    rates = _check_rates(fp_rates)
    mode = look_up_option(interpolation, FROCInterpolation)
    all_scores, all_tp, num_targets = [], [], 0
    for i, (boxes, scores, gts) in enumerate(zip(pred_boxes, pred_scores, gt_boxes)):
        all_tp.append(match_detections(boxes, scores, gts, iou_threshold, match))
        all_scores.append(_scores(scores, all_tp[-1].size, f"pred_scores of image {i}"))
        num_targets += len(_boxes(gts, f"gt_boxes of image {i}"))
    if num_targets == 0:
        raise ValueError(f"none of the {len(gt_boxes)} images has a ground-truth box; sensitivity is undefined.")
    scores_cat, tp_cat = np.concatenate(all_scores), np.concatenate(all_tp)
    fps, sens = froc_curve(scores_cat, tp_cat, num_targets, len(gt_boxes))
    at_rates = _read_curve(fps, sens, rates, len(gt_boxes), mode)
    return {
        "fp_rates": rates.tolist(),
        "sensitivity": at_rates.tolist(),
        "average_sensitivity": float(at_rates.mean()),
        "fps_per_image": fps,
        "curve_sensitivity": sens,
        "num_images": len(gt_boxes),
        "num_targets": int(num_targets),
        "num_detections": int(tp_cat.size),
        "num_true_positives": int(tp_cat.sum()),
    }


def _identity(x: Any) -> Any:
    return x


class FROCSensitivity(Metric):
    """Ignite metric: average FROC sensitivity over ``fp_rates`` for the images seen in an epoch, usable as the
    ``key_val_metric`` of a MONAI ``SupervisedEvaluator`` (e.g. ``fp_rates=(4.0,)`` for sensitivity at 4 FPs/image).

    Each update matches the detections of its images at once (:func:`match_detections`) and keeps only scores, hit
    flags and counts; ``compute`` gathers them from every rank (``ignite.distributed.all_gather``) and reads the curve
    as :func:`compute_detection_froc`.

    Args:
        fp_rates: FPs per image at which the sensitivity is averaged. Defaults to ``(0.5, 1, 2, 4)``.
        iou_threshold: IoU for a hit with ``match="iou"``. Defaults to 0.5.
        match: {``"iou"``, ``"center"``}. Defaults to ``"iou"``.
        interpolation: {``"linear"``, ``"step"``}. Defaults to ``"linear"``.
        output_transform: maps ``engine.state.output`` to ``(pred_boxes, pred_scores, gt_boxes)``, three lists with
            one ``(n_i, 4)`` / ``(n_i,)`` / ``(m_i, 4)`` array or tensor per image of the batch. Defaults to the
            identity.

    Raises:
        ValueError: a rate is not positive or an option is unknown (at construction); the three lists differ in
            length or hold bad boxes (in ``update``); no ground-truth box was seen (in ``compute``).
    """

    def __init__(
        self,
        fp_rates: Sequence[float] = DEEPLESION_FP_RATES,
        iou_threshold: float = 0.5,
        match: FROCMatch | str = FROCMatch.IOU,
        interpolation: FROCInterpolation | str = FROCInterpolation.LINEAR,
        output_transform: Callable = _identity,
    ) -> None:
        self.fp_rates = _check_rates(fp_rates)
        self.iou_threshold = iou_threshold
        self.match = look_up_option(match, FROCMatch)
        self.interpolation = look_up_option(interpolation, FROCInterpolation)
        self._scores: list[np.ndarray] = []
        self._hits: list[np.ndarray] = []
        self._num_targets = 0
        self._num_images = 0
        super().__init__(output_transform=output_transform)

    @reinit__is_reduced
    def reset(self) -> None:
        self._scores, self._hits, self._num_targets, self._num_images = [], [], 0, 0

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        if len(output) != 3:
            raise ValueError(f"output must be (pred_boxes, pred_scores, gt_boxes), got {len(output)} items.")
        pred_boxes, pred_scores, gt_boxes = output
        if not (len(pred_boxes) == len(pred_scores) == len(gt_boxes)):
            raise ValueError(
                f"pred_boxes, pred_scores and gt_boxes must list the same images, got {len(pred_boxes)}, "
                f"{len(pred_scores)} and {len(gt_boxes)} entries."
            )
        for boxes, scores, gts in zip(pred_boxes, pred_scores, gt_boxes):
            hits = match_detections(boxes, scores, gts, self.iou_threshold, self.match)
            self._hits.append(hits)
            self._scores.append(_scores(scores, hits.size, "pred_scores"))
            self._num_targets += len(_boxes(gts, "gt_boxes"))
            self._num_images += 1

    def compute(self) -> float:
        local = (
            np.concatenate(self._scores) if self._scores else np.zeros(0),
            np.concatenate(self._hits) if self._hits else np.zeros(0, dtype=bool),
            self._num_targets,
            self._num_images,
        )
        parts = idist.all_gather(local) if idist.get_world_size() > 1 else [local]
        num_targets, num_images = sum(p[2] for p in parts), sum(p[3] for p in parts)
        if num_targets == 0:
            raise ValueError(f"none of the {num_images} images seen has a ground-truth box; sensitivity is undefined.")
        fps, sens = froc_curve(
            np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), num_targets, num_images
        )
        return float(_read_curve(fps, sens, self.fp_rates, num_images, self.interpolation).mean())
