# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS difficulty assessment: ranks of per-sample loss and uncertainty, their sum, and the four quadrants.

Li, Han, Zhou, "MoMBS: Mixed-order minibatch sampling enhances model training from diverse-quality images",
arXiv:2505.18741 (2025). The assessor ranks every training sample by its loss and by its uncertainty (entropy of the
mean prediction under feature disturbances, computed elsewhere) and scores its difficulty as the sum of the two
ranks, so that neither quantity's scale dominates. Everything here is argsort-based (``O(N log N)``), vectorised and
deterministic: ties are broken by sample index (the lower index gets the lower rank).

The two ranks also split the samples into four quadrants (the paper's difficulty map, its Fig. 6), see
:class:`DifficultyCategory`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

__all__ = [
    "MissingScore",
    "DifficultyCategory",
    "ordinal_rank",
    "fill_missing",
    "difficulty_score",
    "difficulty_order",
    "categorize",
]


class MissingScore(StrEnum):
    """Where a sample without a score (``NaN``: never visited, or a non-finite value) is ranked.

    A sample that was visited once keeps its last known value (the recorder keeps each sample's last visit), so only
    samples never seen so far are missing.

    - ``median``: the missing value is replaced by the median of the known values of that column, so the sample lands
      in the middle of the ranking (default; in a mirror layout it is paired with other mid-difficulty samples).
    - ``hardest``: ranked above every known value (``+inf``).
    - ``easiest``: ranked below every known value (``-inf``).
    """

    MEDIAN = "median"
    HARDEST = "hardest"
    EASIEST = "easiest"


class DifficultyCategory(StrEnum):
    """Quadrant of the loss-rank / uncertainty-rank plane (the MoMBS difficulty map).

    "High" means strictly above the median rank (``2 * rank > N - 1``); the median sample of an odd ``N`` counts as
    low. The four categories are those of Li, Han, Zhou, arXiv:2505.18741, Sec. 1 (its list of the four data types)
    and Sec. 3.2 (ii) ("Loss- & uncertainty-based ranking"):

    - ``poorly_labelled``: high loss, low uncertainty: the prediction disagrees with the label but the network is
      confident in it (mislabelled or wrongly labelled samples);
    - ``under_represented``: high loss, high uncertainty: the prediction disagrees with the label and changes under
      disturbances (too few samples of their kind, or in conflict with the majority class); the hardest by
      difficulty score, which the mirror layout pairs with the well represented;
    - ``overfitted``: low loss, high uncertainty: the prediction agrees with the label but changes under
      disturbances (the network fitted wrong information);
    - ``well_represented``: low loss, low uncertainty.

    Sec. 3.2 (iii): poorly labelled and overfitted samples get a medium difficulty score (rank sum), the well
    represented a low and the under represented a high one; :func:`categorize` codes exactly this table.
    """

    UNDER_REPRESENTED = "under_represented"
    POORLY_LABELLED = "poorly_labelled"
    OVERFITTED = "overfitted"
    WELL_REPRESENTED = "well_represented"


def _as_float_vector(values: Any, name: str) -> torch.Tensor:
    t = values.as_tensor() if hasattr(values, "as_tensor") else torch.as_tensor(np.asarray(values))
    t = t.detach().to(device="cpu", dtype=torch.float64)
    if t.ndim != 1:
        raise ValueError(f"{name} must be a vector of one value per sample (shape N), got shape {tuple(t.shape)}.")
    return t


def ordinal_rank(values: Any) -> torch.Tensor:
    """0-based ranks of ``values`` in ascending order, ties broken by position (stable sort).

    Example: ``ordinal_rank([0.5, 0.1, 0.5, 0.3])`` is ``[2, 0, 3, 1]`` (the two 0.5 keep their order).

    Args:
        values: ``N`` numbers (tensor, array or list); ``NaN`` sorts last (use :func:`fill_missing` first).

    Returns:
        ``N`` int64 ranks, a permutation of ``0..N-1``.

    Raises:
        ValueError: ``values`` is not a vector.
    """
    t = _as_float_vector(values, "values")
    order = torch.argsort(t, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(order.numel(), dtype=order.dtype)
    return ranks


def fill_missing(values: Any, missing: str | MissingScore = MissingScore.MEDIAN) -> torch.Tensor:
    """Replace non-finite entries (``NaN``, ``inf``) according to ``missing``.

    Args:
        values: ``N`` numbers.
        missing: a :class:`MissingScore`, default ``"median"`` (the lower median of the finite values, as
            ``torch.nanmedian``). When no value is finite every entry becomes 0 (all tied, ranked by index).

    Returns:
        ``N`` float64 values, all finite unless ``missing`` is ``"hardest"``/``"easiest"`` (``+-inf``).

    Raises:
        ValueError: ``values`` is not a vector, or ``missing`` is not a :class:`MissingScore`.
    """
    policy = look_up_option(missing, MissingScore)
    t = _as_float_vector(values, "values").clone()
    bad = ~torch.isfinite(t)
    if not bool(bad.any()):
        return t
    if bool(bad.all()):
        return torch.zeros_like(t)
    if policy == MissingScore.MEDIAN:
        fill = float(torch.median(t[~bad]))
    elif policy == MissingScore.HARDEST:
        fill = float("inf")
    else:
        fill = float("-inf")
    t[bad] = fill
    return t


def difficulty_score(
    loss: Any, uncertainty: Any | None = None, missing: str | MissingScore = MissingScore.MEDIAN
) -> torch.Tensor:
    """MoMBS difficulty: rank of the loss plus rank of the uncertainty, per sample.

    ``d_i = rank(loss)_i + rank(uncertainty)_i`` with 0-based ordinal ranks (:func:`ordinal_rank`), so ``d`` lies in
    ``[0, 2N - 2]``; a higher loss or uncertainty makes a sample harder. Without ``uncertainty`` the difficulty is the
    loss rank alone (``[0, N - 1]``), the loss-only ablation.

    Example: loss ``[0.9, 0.1, 0.5, 0.3]`` (ranks ``[3, 0, 2, 1]``) and uncertainty ``[0.2, 0.4, 0.1, 0.3]`` (ranks
    ``[1, 3, 0, 2]``) give difficulty ``[4, 3, 2, 3]``.

    Args:
        loss: ``N`` per-sample losses (e.g. ``PerSampleRecorder["loss_per_sample"]``, ``NaN`` = never visited).
        uncertainty: ``N`` per-sample uncertainties (e.g. ``PerSampleRecorder["uncertainty"]``), or ``None``.
        missing: where samples with a ``NaN`` value are ranked, per column, see :class:`MissingScore`.

    Returns:
        ``N`` int64 difficulty scores.

    Raises:
        ValueError: an input is not a vector, the two lengths differ, or ``missing`` is unknown.
    """
    loss_t = fill_missing(loss, missing)
    score = ordinal_rank(loss_t)
    if uncertainty is not None:
        unc_t = fill_missing(uncertainty, missing)
        if unc_t.shape != loss_t.shape:
            raise ValueError(
                f"loss and uncertainty must hold one value per sample each, got {loss_t.numel()} and {unc_t.numel()}."
            )
        score = score + ordinal_rank(unc_t)
    return score


def difficulty_order(score: Any) -> torch.Tensor:
    """Sample indices from easiest to hardest (ascending ``score``, ties by index).

    Position ``p`` of a sample in this order is its *difficulty rank* (0 = easiest); the MoMBS layouts balance the sum
    of difficulty ranks per minibatch.

    Args:
        score: ``N`` difficulty scores (:func:`difficulty_score`).

    Returns:
        ``N`` int64 indices, a permutation of ``0..N-1``.
    """
    return torch.argsort(_as_float_vector(score, "score"), stable=True)


def categorize(loss: Any, uncertainty: Any, missing: str | MissingScore = MissingScore.MEDIAN) -> list[str]:
    """Quadrant of every sample in the loss-rank / uncertainty-rank plane, see :class:`DifficultyCategory`.

    Example: loss ``[0.9, 0.1, 0.5, 0.3]`` (ranks ``[3, 0, 2, 1]``, high = rank 2 or 3) and uncertainty
    ``[0.4, 0.1, 0.2, 0.3]`` (ranks ``[3, 0, 1, 2]``) give ``["under_represented", "well_represented",
    "poorly_labelled", "overfitted"]``.

    Args:
        loss: ``N`` per-sample losses.
        uncertainty: ``N`` per-sample uncertainties.
        missing: ranking of ``NaN`` values, see :class:`MissingScore`.

    Returns:
        ``N`` category names (``DifficultyCategory`` values).

    Raises:
        ValueError: an input is not a vector or the lengths differ.
    """
    loss_rank = ordinal_rank(fill_missing(loss, missing))
    unc_rank = ordinal_rank(fill_missing(uncertainty, missing))
    if loss_rank.shape != unc_rank.shape:
        raise ValueError(
            f"loss and uncertainty must hold one value per sample each, got {loss_rank.numel()} and {unc_rank.numel()}."
        )
    n = loss_rank.numel()
    high_loss = (2 * loss_rank > n - 1).numpy()
    high_unc = (2 * unc_rank > n - 1).numpy()
    names = np.array(
        [
            DifficultyCategory.WELL_REPRESENTED.value,  # low loss, low uncertainty   (code 0)
            DifficultyCategory.OVERFITTED.value,  # low loss, high uncertainty        (code 1)
            DifficultyCategory.POORLY_LABELLED.value,  # high loss, low uncertainty   (code 2)
            DifficultyCategory.UNDER_REPRESENTED.value,  # high loss, high uncertainty (code 3)
        ]
    )
    return names[2 * high_loss.astype(np.int64) + high_unc.astype(np.int64)].tolist()
