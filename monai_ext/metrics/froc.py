# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""FROC for box detection: sensitivity at 0.5, 1, 2 and 4 false positives per image and their average.

Official DeepLesion convention (the defaults here), as Ke Yan's evaluation code computes it (Yan et al., "DeepLesion:
automated mining of large-scale lesion annotations and universal lesion detection with deep learning", J. Med. Imaging
5(3) 2018; ``rsummers11/CADLab`` at commit e6963e8dc58a3afce7f74f37021bda0ab8129fa4, functions ``IOU``, ``FROC`` and
``sens_at_FP`` in ``lesion_detector_3DCE/rcnn/utils/evaluation.py`` and
``MULAN_universal_lesion_analysis/maskrcnn/data/datasets/evaluation/DeepLesion/detection_eval.py``; MULAN's
``cfg.TEST.IOU_TH = 0.5``):

- IoU with the "+1 pixel" convention: ``[x1, y1, x2, y2]`` are inclusive pixel indices, so a box is
  ``x2 - x1 + 1`` wide and the intersection ``min(x2) - max(x1) + 1`` (``iou_convention="plus_one"``).
- A detection hits a lesion when IoU >= 0.5 (inclusive). Detections are visited in decreasing score; one that hits
  no lesion of its image is a false positive; one that hits lesions finds every one of them not found before (one
  detection can find two overlapping lesions); one that hits only lesions already found is ignored: neither a true
  nor a false positive (``duplicate="ignore"``).
- FP/image = false positives / all images (images without lesions included). MULAN's ``sens_at_FP`` reads the
  per-detection curve with ``scipy.interpolate.interp1d`` (the final sensitivity beyond the last point), which since
  SciPy 0.17 delegates to ``numpy.interp``; on that curve, whose FP counts repeat, this is the best sensitivity reached
  with at most ``r * num_images`` false positives (``interpolation="step"``; shown equal in the tests). 3DCE's copy
  passes ``fill_value="extrapolate"``, which bypasses ``numpy.interp`` and at an integer ``r * num_images`` reads
  the point with one false positive fewer; the later MULAN reading is followed here.

The strict convention (``duplicate="false_positive"``) is the one-to-one matching of COCO / Pascal VOC: a detection
takes the not-yet-matched lesion of highest IoU among those it hits, and a second detection of a found lesion is a
false positive. ``iou_convention="continuous"`` takes a box as ``x2 - x1`` wide, as
:func:`monai.data.box_utils.box_iou`; the IoU is computed here in float64 because ``box_iou`` computes in float32
and adds an epsilon to the union, so an IoU exactly at the threshold (90 / 100 at 0.9) could fall below it.

The curve is built here rather than with :func:`monai.metrics.compute_froc_curve_data`, which loops over every
distinct score (quadratic in the number of detections), drops its lowest threshold (it expects a score 0 for the
missed targets, so with every target found the lowest-scored detections never enter the curve) and keeps several
sensitivities for one FP count. ``interpolation="linear"`` equals :func:`monai.metrics.compute_froc_score` (CAMELYON16)
on the curve returned here. :class:`FROCSensitivity` is the ignite metric for MONAI evaluators;
:func:`deeplesion_froc_summary` gives the numbers DeepLesion papers report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

__all__ = [
    "DEEPLESION_FP_RATES",
    "DEEPLESION_AVERAGE_FP_RATES",
    "FROCMatch",
    "FROCDuplicate",
    "FROCIoUConvention",
    "FROCInterpolation",
    "detection_outcomes",
    "match_detections",
    "froc_curve",
    "compute_detection_froc",
    "summarize_froc",
    "deeplesion_froc_summary",
    "FROCSensitivity",
]

DEEPLESION_FP_RATES = (0.5, 1.0, 2.0, 4.0)
"""FP rates (average false positives per image) at which DeepLesion detection papers report sensitivity."""

DEEPLESION_AVERAGE_FP_RATES = (0.5, 1.0, 2.0)
"""FP rates whose mean sensitivity is the summary of MoMBS (Table I) and of the DeepLesion detectors it builds on."""


class FROCMatch(StrEnum):
    """When a detection hits a ground-truth box: ``"iou"``: IoU >= ``iou_threshold``; ``"center"``: the centre of the
    detected box lies inside the ground-truth box (borders included)."""

    IOU = "iou"
    CENTER = "center"


class FROCDuplicate(StrEnum):
    """What a detection is that hits only lesions found already by higher-scored detections of its image:
    ``"ignore"``: neither a true nor a false positive, and a detection finds every unfound lesion it hits (official
    DeepLesion evaluation); ``"false_positive"``: a false positive, with one-to-one matching (strict, COCO / VOC)."""

    IGNORE = "ignore"
    FALSE_POSITIVE = "false_positive"


class FROCIoUConvention(StrEnum):
    """How box sizes enter the IoU: ``"plus_one"``: ``[x1, y1, x2, y2]`` are inclusive pixel indices, a box is
    ``x2 - x1 + 1`` wide (official DeepLesion, Pascal VOC); ``"continuous"``: a box is ``x2 - x1`` wide (MONAI,
    COCO)."""

    PLUS_ONE = "plus_one"
    CONTINUOUS = "continuous"


class FROCInterpolation(StrEnum):
    """How the sensitivity at a FP rate ``r`` is read off the curve (``n`` images): ``"step"``: the best operating
    point with at most ``r * n`` false positives (what the official DeepLesion ``sens_at_FP`` computes); ``"linear"``:
    linear interpolation between the best points per FP count (CAMELYON16 / :func:`monai.metrics.compute_froc_score`).
    Beyond the last false positive both read the final sensitivity."""

    STEP = "step"
    LINEAR = "linear"


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


def _pairwise_iou(a: np.ndarray, b: np.ndarray, extra: float) -> np.ndarray:
    """``(n, m)`` float64 IoU of ``[x1, y1, x2, y2]`` boxes whose width is ``x2 - x1 + extra`` (0 or 1 pixel)."""
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + extra
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + extra
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = (a[:, 2] - a[:, 0] + extra) * (a[:, 3] - a[:, 1] + extra)
    area_b = (b[:, 2] - b[:, 0] + extra) * (b[:, 3] - b[:, 1] + extra)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def detection_outcomes(
    pred_boxes: Any,
    pred_scores: Any,
    gt_boxes: Any,
    iou_threshold: float = 0.5,
    match: FROCMatch | str = FROCMatch.IOU,
    duplicate: FROCDuplicate | str = FROCDuplicate.IGNORE,
    iou_convention: FROCIoUConvention | str = FROCIoUConvention.PLUS_ONE,
) -> tuple[np.ndarray, np.ndarray]:
    """What each detection of one image is: how many lesions it finds, and whether it is a false positive.

    Detections are visited in decreasing score (ties: input order). A detection that hits no ground-truth box (see
    :class:`FROCMatch`) is a false positive. Otherwise, with ``duplicate="ignore"`` it finds every hit box not found
    yet, and is ignored (0 found, not a false positive) if all of them were found already; with
    ``duplicate="false_positive"`` it takes, among the hit boxes not matched yet, the one of highest IoU (ties: the
    first), and is a false positive if there is none.

    Args:
        pred_boxes: ``(n, 4)`` detected boxes ``[x1, y1, x2, y2]`` (pixels, x2 >= x1, y2 >= y1), array or tensor.
        pred_scores: ``(n,)`` detection scores (higher = more confident).
        gt_boxes: ``(m, 4)`` ground-truth boxes; ``m`` may be 0.
        iou_threshold: IoU needed for a hit with ``match="iou"`` (inclusive). Defaults to 0.5.
        match: {``"iou"``, ``"center"``}. Defaults to ``"iou"``.
        duplicate: {``"ignore"``, ``"false_positive"``}, see :class:`FROCDuplicate`. Defaults to ``"ignore"``.
        iou_convention: {``"plus_one"``, ``"continuous"``}, see :class:`FROCIoUConvention`. Defaults to
            ``"plus_one"``.

    Returns:
        ``found`` (int64) and ``is_fp`` (bool), both ``(n,)`` in the input order of the detections; ``found`` is 0 or
        1 with ``duplicate="false_positive"``.

    Raises:
        ValueError: a box array is not ``(n, 4)`` or has x2 < x1 / y2 < y1, scores are not finite or their number
            differs from the boxes', ``iou_threshold`` is not in (0, 1], or an option is unknown.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}.")
    mode = look_up_option(match, FROCMatch)
    dup = look_up_option(duplicate, FROCDuplicate)
    plus_one = look_up_option(iou_convention, FROCIoUConvention) == FROCIoUConvention.PLUS_ONE
    pred, gt = _boxes(pred_boxes, "pred_boxes"), _boxes(gt_boxes, "gt_boxes")
    scores = _scores(pred_scores, len(pred), "pred_scores")
    found, is_fp = np.zeros(len(pred), dtype=np.int64), np.ones(len(pred), dtype=bool)
    if len(pred) == 0 or len(gt) == 0:
        return found, is_fp
    iou = _pairwise_iou(pred, gt, 1.0 if plus_one else 0.0)
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
        new = hits[i] & ~matched
        if dup == FROCDuplicate.IGNORE:
            is_fp[i] = not hits[i].any()
            found[i] = int(new.sum())
            matched |= new
        elif new.any():
            matched[int(np.argmax(np.where(new, iou[i], -1.0)))] = True
            found[i], is_fp[i] = 1, False
    return found, is_fp


def match_detections(
    pred_boxes: Any,
    pred_scores: Any,
    gt_boxes: Any,
    iou_threshold: float = 0.5,
    match: FROCMatch | str = FROCMatch.IOU,
    duplicate: FROCDuplicate | str = FROCDuplicate.IGNORE,
    iou_convention: FROCIoUConvention | str = FROCIoUConvention.PLUS_ONE,
) -> np.ndarray:
    """Mark the detections of one image that find a lesion (True); see :func:`detection_outcomes`, whose arguments
    and errors it shares. With ``duplicate="ignore"`` a False detection may be an ignored duplicate rather than a
    false positive: use :func:`detection_outcomes` to tell them apart.

    Returns:
        bool array of shape ``(n,)`` in the input order of the detections.
    """
    return detection_outcomes(pred_boxes, pred_scores, gt_boxes, iou_threshold, match, duplicate, iou_convention)[0] > 0


def froc_curve(
    scores: Any, is_tp: Any, num_targets: int, num_images: int, is_fp: Any | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """FROC curve from pooled detections: the best sensitivity reachable with each number of false positives.

    Thresholding at every distinct score gives the operating points (FP count, lesions found); for each FP count the
    curve keeps the highest number found (the threshold just before the next false positive enters), plus the point
    (0, 0) above every score.

    Args:
        scores: ``(N,)`` scores of all detections of all images.
        is_tp: ``(N,)`` bool true-positive flags from :func:`match_detections`, or the int numbers of lesions found
            from :func:`detection_outcomes`.
        num_targets: number of ground-truth boxes over all images (> 0).
        num_images: number of images evaluated, including those without ground truth (> 0).
        is_fp: ``(N,)`` bool false-positive flags (:func:`detection_outcomes`). Defaults to None: every detection
            that finds no lesion is a false positive (strict convention).

    Returns:
        ``fps_per_image`` and ``sensitivity``, both ``(K + 1,)`` for ``K`` false positives in total when no two
        enter at one score: ``fps_per_image`` rises from 0 to ``K / num_images`` and ``sensitivity`` is
        non-decreasing in [0, 1].

    Raises:
        ValueError: ``num_targets`` or ``num_images`` is not positive, the arrays differ in length, a detection is both
            a true and a false positive, or more lesions are found than ``num_targets``.
    """
    if num_targets <= 0 or num_images <= 0:
        raise ValueError(f"num_targets ({num_targets}) and num_images ({num_images}) must be positive.")
    tp = np.asarray(is_tp).reshape(-1).astype(np.int64)
    s = _scores(scores, tp.size, "scores")
    fp = (tp == 0) if is_fp is None else np.asarray(is_fp, dtype=bool).reshape(-1)
    if fp.size != tp.size:
        raise ValueError(f"is_fp has {fp.size} flags for {tp.size} detections.")
    if (fp & (tp > 0)).any() or (tp < 0).any():
        raise ValueError("a detection is both a true and a false positive (or finds a negative number of lesions).")
    if tp.sum() > num_targets:
        raise ValueError(f"{int(tp.sum())} lesions found but num_targets is {num_targets}.")
    order = np.argsort(-s, kind="stable")
    s, tp, fp = s[order], tp[order], fp[order]
    cum_tp, cum_fp = np.cumsum(tp), np.cumsum(fp)
    last_of_tie = np.r_[s[1:] != s[:-1], True] if s.size else np.zeros(0, dtype=bool)
    fp_counts = np.r_[0, cum_fp[last_of_tie]]
    tp_counts = np.r_[0, cum_tp[last_of_tie]]
    last_of_fp = np.r_[fp_counts[1:] != fp_counts[:-1], True]  # found count is non-decreasing: keep the last per FP
    return fp_counts[last_of_fp] / float(num_images), tp_counts[last_of_fp] / float(num_targets)


def _check_rates(fp_rates: Sequence[float], what: str = "fp_rates") -> np.ndarray:
    rates = np.asarray(fp_rates, dtype=np.float64).reshape(-1)
    if rates.size == 0 or not (rates > 0).all():
        raise ValueError(f"{what} must be positive numbers, got {list(fp_rates)}.")
    return rates


def _read_curve(
    fps: np.ndarray, sens: np.ndarray, rates: np.ndarray, num_images: int, mode: FROCInterpolation
) -> np.ndarray:
    """Sensitivity at each FP rate from a :func:`froc_curve` curve, see :class:`FROCInterpolation`."""
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
    interpolation: FROCInterpolation | str = FROCInterpolation.STEP,
    duplicate: FROCDuplicate | str = FROCDuplicate.IGNORE,
    iou_convention: FROCIoUConvention | str = FROCIoUConvention.PLUS_ONE,
) -> dict[str, Any]:
    """Sensitivity at given false positives per image, and its average, for one-class box detection (DeepLesion).

    The defaults are the official DeepLesion convention (module docstring); ``duplicate="false_positive"``,
    ``iou_convention="continuous"`` and ``interpolation="linear"`` give the strict one-to-one FROC that this function
    computed before (with :func:`monai.data.box_utils.box_iou`).

    Args:
        pred_boxes: one ``(n_i, 4)`` array/tensor of detected ``[x1, y1, x2, y2]`` boxes per image (``n_i`` may be 0).
        pred_scores: one ``(n_i,)`` array/tensor of scores per image.
        gt_boxes: one ``(m_i, 4)`` array/tensor of ground-truth boxes per image (``m_i`` may be 0; such an image only
            adds false positives).
        fp_rates: average false positives per image at which to read the sensitivity. Defaults to
            ``(0.5, 1, 2, 4)``. A rate beyond the last false positive reads the final sensitivity.
        iou_threshold: IoU for a hit with ``match="iou"``. Defaults to 0.5.
        match: {``"iou"``, ``"center"``}, see :class:`FROCMatch`. Defaults to ``"iou"``.
        interpolation: {``"step"``, ``"linear"``}, see :class:`FROCInterpolation`. Defaults to ``"step"``.
        duplicate: {``"ignore"``, ``"false_positive"``}, see :class:`FROCDuplicate`. Defaults to ``"ignore"``.
        iou_convention: {``"plus_one"``, ``"continuous"``}, see :class:`FROCIoUConvention`. Defaults to
            ``"plus_one"``.

    Returns:
        A dict with ``"fp_rates"`` (list), ``"sensitivity"`` (list, one per rate), ``"average_sensitivity"`` (their
        mean), ``"fps_per_image"`` and ``"curve_sensitivity"`` (the curve of :func:`froc_curve`, ndarrays),
        ``"num_images"``, ``"num_targets"``, ``"num_detections"``, ``"num_true_positives"`` (lesions found),
        ``"num_false_positives"``, ``"num_ignored"`` (duplicates neither true nor false positive) and the options
        ``"duplicate"``, ``"iou_convention"``, ``"interpolation"`` (str).

    Raises:
        ValueError: the three sequences differ in length or are empty, there is no ground-truth box at all, a rate is
            not positive, an option is unknown, or a per-image input is invalid (see :func:`detection_outcomes`).

    Example:
        >>> r = compute_detection_froc([[[0, 0, 10, 10], [0, 0, 10, 9]]], [[0.9, 0.8]], [[[0, 0, 10, 10]]], (1.0,))
        >>> r["sensitivity"], r["num_true_positives"], r["num_false_positives"], r["num_ignored"]
        ([1.0], 1, 0, 1)
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
    dup, conv = look_up_option(duplicate, FROCDuplicate), look_up_option(iou_convention, FROCIoUConvention)
    all_scores, all_found, all_fp, num_targets = [], [], [], 0
    for i, (boxes, scores, gts) in enumerate(zip(pred_boxes, pred_scores, gt_boxes)):
        found, is_fp = detection_outcomes(boxes, scores, gts, iou_threshold, match, dup, conv)
        all_found.append(found)
        all_fp.append(is_fp)
        all_scores.append(_scores(scores, found.size, f"pred_scores of image {i}"))
        num_targets += len(_boxes(gts, f"gt_boxes of image {i}"))
    if num_targets == 0:
        raise ValueError(f"none of the {len(gt_boxes)} images has a ground-truth box; sensitivity is undefined.")
    found_cat, fp_cat = np.concatenate(all_found), np.concatenate(all_fp)
    fps, sens = froc_curve(np.concatenate(all_scores), found_cat, num_targets, len(gt_boxes), fp_cat)
    at_rates = _read_curve(fps, sens, rates, len(gt_boxes), mode)
    return {
        "fp_rates": rates.tolist(),
        "sensitivity": at_rates.tolist(),
        "average_sensitivity": float(at_rates.mean()),
        "fps_per_image": fps,
        "curve_sensitivity": sens,
        "num_images": len(gt_boxes),
        "num_targets": int(num_targets),
        "num_detections": int(found_cat.size),
        "num_true_positives": int(found_cat.sum()),
        "num_false_positives": int(fp_cat.sum()),
        "num_ignored": int(((found_cat == 0) & ~fp_cat).sum()),
        "duplicate": dup.value,
        "iou_convention": conv.value,
        "interpolation": mode.value,
    }


def _rate_key(rate: float) -> str:
    return f"{float(rate):g}"


def summarize_froc(
    result: Mapping[str, Any], average_over: Sequence[float] = DEEPLESION_AVERAGE_FP_RATES
) -> dict[str, float]:
    """The numbers a DeepLesion table reports, from a :func:`compute_detection_froc` result.

    Args:
        result: the output of :func:`compute_detection_froc` (its ``"fp_rates"`` and ``"sensitivity"`` are used).
        average_over: FP rates whose sensitivities are averaged; each must be one of ``result["fp_rates"]``. Defaults
            to ``(0.5, 1, 2)`` (MoMBS, Table I).

    Returns:
        ``{"sens@0.5": .., "sens@1": .., "sens@2": .., "sens@4": .., "avg[0.5,1,2]": ..}``: one ``"sens@<rate>"`` per
        rate of the result (rates written with ``%g``) and ``"avg[<rates>]"``, the mean over ``average_over``.

    Raises:
        ValueError: a key of the result is missing, or a rate of ``average_over`` is not among its ``fp_rates``.
    """
    missing = [k for k in ("fp_rates", "sensitivity") if k not in result]
    if missing:
        raise ValueError(f"result misses key(s) {missing}; pass the output of compute_detection_froc.")
    sens = {_rate_key(r): float(s) for r, s in zip(result["fp_rates"], result["sensitivity"])}
    wanted = [_rate_key(r) for r in _check_rates(average_over, "average_over")]
    absent = [r for r in wanted if r not in sens]
    if absent:
        raise ValueError(
            f"average_over rates {absent} are not among the result's fp_rates {list(sens)}; add them to fp_rates."
        )
    summary = {f"sens@{r}": s for r, s in sens.items()}
    summary[f"avg[{','.join(wanted)}]"] = float(np.mean([sens[r] for r in wanted]))
    return summary


def deeplesion_froc_summary(
    pred_boxes: Sequence[Any],
    pred_scores: Sequence[Any],
    gt_boxes: Sequence[Any],
    fp_rates: Sequence[float] = DEEPLESION_FP_RATES,
    average_over: Sequence[float] = DEEPLESION_AVERAGE_FP_RATES,
    iou_threshold: float = 0.5,
    match: FROCMatch | str = FROCMatch.IOU,
    interpolation: FROCInterpolation | str = FROCInterpolation.STEP,
    duplicate: FROCDuplicate | str = FROCDuplicate.IGNORE,
    iou_convention: FROCIoUConvention | str = FROCIoUConvention.PLUS_ONE,
) -> dict[str, float]:
    """Sensitivity at 0.5, 1, 2, 4 FPs per image and the mean over 0.5, 1, 2, from per-image predictions and targets:
    :func:`summarize_froc` of :func:`compute_detection_froc` at the rates of ``fp_rates`` and ``average_over``
    (arguments, defaults and errors as theirs; the defaults are the official DeepLesion convention).

    Example:
        >>> boxes, scores = [[[0, 0, 9, 9], [50, 50, 60, 60]]], [[0.9, 0.8]]
        >>> lesions = [[[0, 0, 9, 9], [20, 20, 30, 30]]]
        >>> deeplesion_froc_summary(boxes, scores, lesions)
        {'sens@0.5': 0.5, 'sens@1': 0.5, 'sens@2': 0.5, 'sens@4': 0.5, 'avg[0.5,1,2]': 0.5}
    """
    rates = sorted({float(r) for r in _check_rates(fp_rates)} | {float(r) for r in _check_rates(average_over)})
    result = compute_detection_froc(
        pred_boxes, pred_scores, gt_boxes, rates, iou_threshold, match, interpolation, duplicate, iou_convention
    )
    return summarize_froc(result, average_over)


def _identity(x: Any) -> Any:
    return x


class FROCSensitivity(Metric):
    """Ignite metric: average FROC sensitivity over ``fp_rates`` for the images seen in an epoch, usable as the
    ``key_val_metric`` of a MONAI ``SupervisedEvaluator`` (e.g. ``fp_rates=(0.5, 1.0, 2.0)`` for the MoMBS summary).

    Each update scores the detections of its images at once (:func:`detection_outcomes`) and keeps only scores,
    lesions found, false-positive flags and counts; ``compute`` gathers them from every rank
    (``ignite.distributed.all_gather``) and reads the curve as :func:`compute_detection_froc`. The defaults are the
    official DeepLesion convention.

    Args:
        fp_rates: FPs per image at which the sensitivity is averaged. Defaults to ``(0.5, 1, 2, 4)``.
        iou_threshold: IoU for a hit with ``match="iou"``. Defaults to 0.5.
        match: {``"iou"``, ``"center"``}. Defaults to ``"iou"``.
        interpolation: {``"step"``, ``"linear"``}. Defaults to ``"step"``.
        output_transform: maps ``engine.state.output`` to ``(pred_boxes, pred_scores, gt_boxes)``, three lists with
            one ``(n_i, 4)`` / ``(n_i,)`` / ``(m_i, 4)`` array or tensor per image of the batch. Defaults to the
            identity.
        duplicate: {``"ignore"``, ``"false_positive"``}, see :class:`FROCDuplicate`. Defaults to ``"ignore"``.
        iou_convention: {``"plus_one"``, ``"continuous"``}, see :class:`FROCIoUConvention`. Defaults to
            ``"plus_one"``.

    Raises:
        ValueError: a rate is not positive or an option is unknown (at construction); the three lists differ in
            length or hold bad boxes (in ``update``); no ground-truth box was seen (in ``compute``).
    """

    def __init__(
        self,
        fp_rates: Sequence[float] = DEEPLESION_FP_RATES,
        iou_threshold: float = 0.5,
        match: FROCMatch | str = FROCMatch.IOU,
        interpolation: FROCInterpolation | str = FROCInterpolation.STEP,
        output_transform: Callable = _identity,
        duplicate: FROCDuplicate | str = FROCDuplicate.IGNORE,
        iou_convention: FROCIoUConvention | str = FROCIoUConvention.PLUS_ONE,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}.")
        self.fp_rates = _check_rates(fp_rates)
        self.iou_threshold = iou_threshold
        self.match = look_up_option(match, FROCMatch)
        self.interpolation = look_up_option(interpolation, FROCInterpolation)
        self.duplicate = look_up_option(duplicate, FROCDuplicate)
        self.iou_convention = look_up_option(iou_convention, FROCIoUConvention)
        self._scores: list[np.ndarray] = []
        self._found: list[np.ndarray] = []
        self._is_fp: list[np.ndarray] = []
        self._num_targets = 0
        self._num_images = 0
        super().__init__(output_transform=output_transform, skip_unrolling=True)  # lists of per-image boxes

    @reinit__is_reduced
    def reset(self) -> None:
        self._scores, self._found, self._is_fp, self._num_targets, self._num_images = [], [], [], 0, 0

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
            found, is_fp = detection_outcomes(
                boxes, scores, gts, self.iou_threshold, self.match, self.duplicate, self.iou_convention
            )
            self._found.append(found)
            self._is_fp.append(is_fp)
            self._scores.append(_scores(scores, found.size, "pred_scores"))
            self._num_targets += len(_boxes(gts, "gt_boxes"))
            self._num_images += 1

    def compute(self) -> float:
        local = (
            np.concatenate(self._scores) if self._scores else np.zeros(0),
            np.concatenate(self._found) if self._found else np.zeros(0, dtype=np.int64),
            np.concatenate(self._is_fp) if self._is_fp else np.zeros(0, dtype=bool),
            self._num_targets,
            self._num_images,
        )
        parts = idist.all_gather(local) if idist.get_world_size() > 1 else [local]
        num_targets, num_images = sum(p[3] for p in parts), sum(p[4] for p in parts)
        if num_targets == 0:
            raise ValueError(f"none of the {num_images} images seen has a ground-truth box; sensitivity is undefined.")
        fps, sens = froc_curve(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            num_targets,
            num_images,
            np.concatenate([p[2] for p in parts]),
        )
        return float(_read_curve(fps, sens, self.fp_rates, num_images, self.interpolation).mean())
