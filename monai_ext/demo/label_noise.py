# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Clean multi-label sampling with real prevalences and co-occurrences, and asymmetric label noise, for demo CXR data.

Clean labels are drawn with the NORTA / Gaussian-copula method for correlated binary variables (Emrich and
Piedmonte, "A method for generating high-dimensional multivariate binary variates", The American Statistician 45(4),
1991): class ``c`` is positive when a latent standard normal ``z_c`` exceeds ``Phi^-1(1 - p_c)``, so every marginal
prevalence ``p_c`` is exact, and the latent correlations are fitted so that every pairwise joint ``P(i & j)`` matches
the real one (NIH ChestX-ray14). Where only prevalences and a "no finding" fraction are known (CheXpert, PadChest,
VinDr, OpenI, MIMIC-CXR-LT), one shared latent factor is fitted so that ``P(no positive)`` matches.

Training labels are then corrupted with per-class asymmetric flips: ``FPR = P(noisy=1 | clean=0)`` and
``FNR = P(noisy=0 | clean=1)`` taken from the NIH-NLP vs radiologist-adjudicated comparison (Majkowska et al.,
Radiology 2020; DATASETS.md 2.5). The numbers below are copied from ``shared/data/cxr_label_stats.json`` and
``shared/data/nvum_split_reproduction.json`` (a test checks them against the files).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from monai.utils import look_up_option
from monai.utils.enums import StrEnum
from scipy.special import ndtr, ndtri

__all__ = [
    "NIH_CLASSES",
    "NOISE_PAIRS",
    "NOISE_GROUP",
    "LabelModel",
    "LABEL_MODELS",
    "VINDR_ANY_READER",
    "FprMode",
    "sample_clean_labels",
    "enforce_min_positives",
    "noise_rates",
    "resolve_noise",
    "corrupt_labels",
]

NIH_CLASSES = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)  # fmt: skip

_NIH_N = 112120
# cxr_label_stats.json nih_chestxray14.cooccurrence_counts (rows/cols in NIH_CLASSES order, diagonal = class count)
_NIH_COOC = (
    (11559, 370, 3275, 3264, 739, 590, 262, 774, 1223, 221, 424, 220, 496, 40),
    (370, 2776, 1063, 587, 102, 108, 41, 49, 169, 127, 44, 52, 111, 7),
    (3275, 1063, 13317, 4000, 1254, 912, 269, 996, 1287, 593, 359, 188, 849, 21),
    (3264, 587, 4000, 19894, 1159, 1546, 605, 946, 1221, 981, 449, 345, 750, 33),
    (739, 102, 1254, 1159, 5782, 906, 71, 431, 610, 129, 215, 117, 452, 25),
    (590, 108, 912, 1546, 906, 6331, 70, 341, 428, 131, 115, 166, 411, 10),
    (262, 41, 269, 605, 71, 70, 1431, 41, 123, 340, 23, 11, 48, 3),
    (774, 49, 996, 946, 431, 341, 41, 5302, 223, 33, 747, 80, 289, 9),
    (1223, 169, 1287, 1221, 610, 428, 123, 223, 4667, 162, 103, 79, 251, 4),
    (221, 127, 593, 981, 129, 131, 340, 33, 162, 2303, 30, 9, 64, 3),
    (424, 44, 359, 449, 215, 115, 23, 747, 103, 30, 2516, 36, 151, 4),
    (220, 52, 188, 345, 117, 166, 11, 80, 79, 9, 36, 1686, 176, 8),
    (496, 111, 849, 750, 452, 411, 48, 289, 251, 64, 151, 176, 3385, 8),
    (40, 7, 21, 33, 25, 10, 3, 9, 4, 3, 4, 8, 8, 227),
)

# (FPR = P(NIH=1|adj=0), FNR = P(NIH=0|adj=1), FDR = P(adj=0|NIH=1)) over all 4,376 adjudicated images
# (cxr_label_stats.json nih_vs_google_adjudicated.pairs[*].all).
NOISE_PAIRS: dict[str, tuple[float, float, float]] = {
    "Pneumothorax": (0.0312, 0.542, 0.542),
    "Nodule/Mass": (0.0528, 0.5769, 0.4374),
    "AirspaceOpacity_vs_Consolidation|Infiltration|Pneumonia": (0.1294, 0.5808, 0.2395),
    "AirspaceOpacity_vs_Consolidation|Infiltration|Pneumonia|Atelectasis|Edema": (0.1937, 0.4912, 0.2797),
    "AnyAdjudicatedFinding_vs_NIH_not_NoFinding": (0.2872, 0.3009, 0.2358),
}
_POOLED = "AnyAdjudicatedFinding_vs_NIH_not_NoFinding"
_AIR3 = "AirspaceOpacity_vs_Consolidation|Infiltration|Pneumonia"
_AIR5 = "AirspaceOpacity_vs_Consolidation|Infiltration|Pneumonia|Atelectasis|Edema"

#: Class name (any dataset's spelling) -> adjudicated comparison whose rates it gets. Nodule and Mass take the
#: Nodule-or-mass union (the single-class rows count every mass as a missed nodule); Consolidation, Infiltration,
#: Pneumonia and the opacity classes take the airspace-opacity union of the three; Atelectasis and Edema the union
#: that adds them; every other class (no adjudicated counterpart) the pooled "any finding" rates.
NOISE_GROUP: dict[str, str] = {
    "Pneumothorax": "Pneumothorax",
    **dict.fromkeys(("Nodule", "Mass", "Nodule/Mass", "Lung Lesion"), "Nodule/Mass"),
    **dict.fromkeys(("Consolidation", "Infiltration", "Pneumonia", "Lung Opacity"), _AIR3),
    **dict.fromkeys(("Atelectasis", "Edema"), _AIR5),
}


@dataclass(frozen=True)
class LabelModel:
    """Real label statistics of one dataset, enough to sample clean labels.

    Attributes:
        classes: finding names in the dataset's own spelling (no "No Finding" column).
        prevalence: per-class image-level prevalence in [0, 1], same order.
        joint_counts: optional ``C x C`` co-occurrence counts over ``n_images`` (diagonal = class counts).
        n_images: denominator of ``joint_counts``.
        no_finding: target fraction of images with no positive class, used when ``joint_counts`` is None.
        source: where the numbers come from.
    """

    classes: tuple[str, ...]
    prevalence: tuple[float, ...]
    joint_counts: tuple[tuple[int, ...], ...] | None = None
    n_images: int = 0
    no_finding: float | None = None
    source: str = ""


_CHEXPERT = {  # per_class_frontal: prev_U_zeros (P(label == 1.0)) over 191,027 frontal train images
    "Enlarged Cardiomediastinum": 0.0481, "Cardiomegaly": 0.1224, "Lung Opacity": 0.4932, "Lung Lesion": 0.0369,
    "Edema": 0.26, "Consolidation": 0.068, "Pneumonia": 0.0245, "Atelectasis": 0.1556, "Pneumothorax": 0.0926,
    "Pleural Effusion": 0.4026, "Pleural Other": 0.0131, "Fracture": 0.0389, "Support Devices": 0.561,
}  # fmt: skip
_PADCHEST = {  # padchest_physician_frontal.per_class_exact_terms
    "Atelectasis": 0.0563, "Cardiomegaly": 0.0925, "Effusion": 0.0455, "Infiltration": 0.1085, "Mass": 0.0057,
    "Nodule": 0.0194, "Pneumonia": 0.0414, "Pneumothorax": 0.0029, "Consolidation": 0.0098, "Edema": 0.0028,
    "Emphysema": 0.0087, "Fibrosis": 0.0037, "Pleural_Thickening": 0.0463, "Hernia": 0.0158,
}  # fmt: skip
_VINDR = {  # vindr_cxr_image_level.per_class[*].prev_majority_2of3 (>= 2 of 3 readers = demo truth)
    "Aortic enlargement": 0.1564, "Atelectasis": 0.0041, "Calcification": 0.0118, "Cardiomegaly": 0.1211,
    "Consolidation": 0.0081, "ILD": 0.0101, "Infiltration": 0.0163, "Lung Opacity": 0.0365, "Nodule/Mass": 0.027,
    "Other lesion": 0.0241, "Pleural effusion": 0.0423, "Pleural thickening": 0.0588, "Pneumothorax": 0.0039,
    "Pulmonary fibrosis": 0.0678,
}  # fmt: skip
#: VinDr-CXR prevalence marked by any of the 3 readers (vindr_cxr_image_level.per_class[*].prev_any_reader).
VINDR_ANY_READER: dict[str, float] = {
    "Aortic enlargement": 0.2045, "Atelectasis": 0.0124, "Calcification": 0.0301, "Cardiomegaly": 0.1533,
    "Consolidation": 0.0235, "ILD": 0.0257, "Infiltration": 0.0409, "Lung Opacity": 0.0881, "Nodule/Mass": 0.0551,
    "Other lesion": 0.0756, "Pleural effusion": 0.0688, "Pleural thickening": 0.1321, "Pneumothorax": 0.0064,
    "Pulmonary fibrosis": 0.1078,
}  # fmt: skip
_OPENI = {  # nvum_split_reproduction.json opi.NIH_setting positive rates (+ Fracture from CXP_setting)
    "Atelectasis": 0.0497, "Cardiomegaly": 0.0615, "Effusion": 0.037, "Infiltration": 0.0134, "Mass": 0.0007,
    "Nodule": 0.016, "Pneumonia": 0.0139, "Pneumothorax": 0.0048, "Edema": 0.0119, "Emphysema": 0.0215,
    "Fibrosis": 0.0046, "Pleural_Thickening": 0.0067, "Hernia": 0.011, "Fracture": 0.0226,
}  # fmt: skip
# MIMIC-CXR-LT 2023: long-tailed demo prevalences (DATASETS.md 4.3: head ~20-30 %, tail << 0.5 %), rounded and
# approximate (shape of the CXR-LT 2023 class-count figure, Holste et al., MedIA 2024), not read from the real file.
_MIMIC_LT = {
    "Atelectasis": 0.2, "Calcification of the Aorta": 0.012, "Cardiomegaly": 0.19, "Consolidation": 0.05,
    "Edema": 0.12, "Emphysema": 0.015, "Enlarged Cardiomediastinum": 0.04, "Fibrosis": 0.006, "Fracture": 0.03,
    "Hernia": 0.01, "Infiltration": 0.02, "Lung Lesion": 0.03, "Lung Opacity": 0.23, "Mass": 0.012,
    "Nodule": 0.025, "Pleural Effusion": 0.22, "Pleural Other": 0.004, "Pleural Thickening": 0.008,
    "Pneumomediastinum": 0.002, "Pneumonia": 0.07, "Pneumoperitoneum": 0.001, "Pneumothorax": 0.04,
    "Subcutaneous Emphysema": 0.008, "Support Devices": 0.3, "Tortuous Aorta": 0.015,
}  # fmt: skip

#: Label models by demo dataset folder name. "No Finding" is always derived (no positive finding), never sampled.
LABEL_MODELS: dict[str, LabelModel] = {
    "nih": LabelModel(
        NIH_CLASSES,
        tuple(_NIH_COOC[i][i] / _NIH_N for i in range(len(NIH_CLASSES))),
        _NIH_COOC,
        _NIH_N,
        0.5384,
        "NIH Data_Entry_2017_v2020 (cxr_label_stats.json nih_chestxray14)",
    ),
    "chexpert": LabelModel(
        tuple(_CHEXPERT), tuple(_CHEXPERT.values()), no_finding=0.0889, source="CheXpert-small train, frontal"
    ),
    "padchest": LabelModel(
        tuple(_PADCHEST), tuple(_PADCHEST.values()), no_finding=0.6698, source="PadChest physician frontal"
    ),
    "vindr": LabelModel(tuple(_VINDR), tuple(_VINDR.values()), no_finding=0.7071, source="VinDr-CXR train"),
    "openi": LabelModel(tuple(_OPENI), tuple(_OPENI.values()), no_finding=0.8106, source="OpenI (NVUM rules)"),
    "mimic_cxr_lt": LabelModel(
        tuple(_MIMIC_LT), tuple(_MIMIC_LT.values()), no_finding=0.25, source="MIMIC-CXR-LT 2023 (approximate)"
    ),
}


class FprMode(StrEnum):
    """How the adjudicated false-positive rate is carried over to a class.

    - ``"matched"``: keep the measured false-discovery rate ``FDR = P(clean=0 | noisy=1)`` and FNR, and derive
      ``FPR = p (1 - FNR) FDR / ((1 - FDR) (1 - p))`` at the class's clean prevalence ``p``. The adjudicated set is
      enriched (49.5 % airspace opacity), so its raw FPR applied to a 0.2 % class would make most noisy positives
      false; matching the FDR keeps the noisy/clean prevalence ratio ``(1 - FNR) / (1 - FDR)`` of the real data.
    - ``"raw"``: the measured FPR as is.
    """

    MATCHED = "matched"
    RAW = "raw"


def _bvn_upper(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``P(Z1 > h, Z2 > k)`` for standard bivariate normals with correlation ``rho`` (all arrays broadcast).

    Plackett's identity ``d Phi2 / d rho = phi2``: ``P = Phi(-h) Phi(-k) + int_0^rho phi2(h, k; r) dr``, integrated
    with 24-point Gauss-Legendre (exact to ~1e-7 for ``|rho| <= 0.95``).
    """
    x, w = np.polynomial.legendre.leggauss(24)
    rho = np.asarray(rho, dtype=np.float64)[..., None]
    r = rho * (x + 1) / 2
    h, k = np.asarray(h)[..., None], np.asarray(k)[..., None]
    dens = np.exp(-(h * h - 2 * r * h * k + k * k) / (2 * (1 - r * r))) / (2 * math.pi * np.sqrt(1 - r * r))
    return ndtr(-h[..., 0]) * ndtr(-k[..., 0]) + (rho[..., 0] / 2) * (dens * w).sum(-1)


@functools.lru_cache(maxsize=16)
def _latent_correlation(model: LabelModel) -> np.ndarray:
    """Fit the ``C x C`` latent correlation (pairwise joints via bisection, then nearest unit-diagonal PSD matrix)."""
    p = np.asarray(model.prevalence, dtype=np.float64)
    t = ndtri(1 - p)
    c = len(p)
    if model.joint_counts is not None:
        joint = np.asarray(model.joint_counts, dtype=np.float64) / model.n_images
        iu = np.triu_indices(c, 1)
        target = np.clip(joint[iu], np.maximum(0, p[iu[0]] + p[iu[1]] - 1) + 1e-9, np.minimum(p[iu[0]], p[iu[1]]))
        lo, hi = np.full(len(target), -0.95), np.full(len(target), 0.95)
        for _ in range(40):
            mid = (lo + hi) / 2
            too_low = _bvn_upper(t[iu[0]], t[iu[1]], mid) < target
            lo, hi = np.where(too_low, mid, lo), np.where(too_low, hi, mid)
        corr = np.eye(c)
        corr[iu] = corr[iu[1], iu[0]] = (lo + hi) / 2
        vals, vecs = np.linalg.eigh(corr)
        corr = (vecs * np.maximum(vals, 1e-3)) @ vecs.T
        d = np.sqrt(np.diag(corr))
        return corr / np.outer(d, d)
    rho = _one_factor_rho(t, model.no_finding) if model.no_finding is not None else 0.0
    return np.full((c, c), rho) + (1 - rho) * np.eye(c)


def _one_factor_rho(t: np.ndarray, no_finding: float) -> float:
    """Equicorrelation ``rho`` in [0, 0.95] with ``P(all z_c <= t_c) = no_finding`` (Gauss-Hermite over the factor).

    Positive correlation can only raise ``P(no positive)`` above the independent value ``prod(1 - p_c)``; a lower
    target gives ``rho = 0``.
    """
    f, w = np.polynomial.hermite_e.hermegauss(64)
    w = w / w.sum()

    def p_none(rho: float) -> float:
        cond = ndtr((t[None, :] - math.sqrt(rho) * f[:, None]) / math.sqrt(1 - rho))
        return float((np.prod(cond, axis=1) * w).sum())

    lo, hi = 0.0, 0.95
    if p_none(lo) >= no_finding:
        return 0.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p_none(mid) < no_finding else (lo, mid)
    return (lo + hi) / 2


def sample_clean_labels(model: LabelModel, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` clean multi-label vectors following ``model``'s prevalences and co-occurrences.

    Args:
        model: the dataset's label statistics (see :data:`LABEL_MODELS`).
        n: number of images.
        rng: the only source of randomness.

    Returns:
        ``uint8`` array ``N x C`` of 0/1 in ``model.classes`` order. Marginal prevalences are exact in expectation;
        for NIH the pairwise joints match up to the positive-definite projection of the fitted correlation.
    """
    corr = _latent_correlation(model)
    t = ndtri(1 - np.asarray(model.prevalence, dtype=np.float64))
    chol = np.linalg.cholesky(corr + 1e-12 * np.eye(len(t)))
    z = rng.standard_normal((n, len(t))) @ chol.T
    return (z > t[None, :]).astype(np.uint8)


def enforce_min_positives(
    labels: np.ndarray, min_positives: int, rng: np.random.Generator, columns: Sequence[int] | None = None
) -> np.ndarray:
    """Demo-only enrichment: make every class (of ``columns``, default all) positive in at least ``min_positives`` rows.

    Missing positives are added on randomly chosen negative rows, so that per-class AUC is defined even in a tiny
    split; rare classes are then over-represented (documented distortion). ``min_positives`` is capped at ``N``.

    Returns:
        a modified copy of ``labels`` (``N x C``).
    """
    out = labels.copy()
    need_total = min(int(min_positives), out.shape[0])
    for c in range(out.shape[1]) if columns is None else columns:
        need = need_total - int(out[:, c].sum())
        if need > 0:
            neg = np.flatnonzero(out[:, c] == 0)
            out[rng.choice(neg, size=need, replace=False), c] = 1
    return out


def noise_rates(
    classes: Sequence[str],
    prevalence: Sequence[float],
    scale: float = 1.0,
    fpr_mode: FprMode | str = FprMode.MATCHED,
) -> np.ndarray:
    """Per-class flip rates from the NIH-vs-adjudicated comparison, mapped through :data:`NOISE_GROUP`.

    Args:
        classes: class names (any dataset's spelling; unknown names use the pooled "any finding" rates).
        prevalence: clean prevalence of each class (used by ``fpr_mode="matched"``).
        scale: multiplies both rates (0 = clean); results are clipped to [0, 0.95].
        fpr_mode: ``{"matched", "raw"}``, see :class:`FprMode`. Default ``"matched"``.

    Returns:
        float array ``C x 2``: column 0 ``FPR = P(noisy=1 | clean=0)``, column 1 ``FNR = P(noisy=0 | clean=1)``.

    Raises:
        ValueError: ``scale`` is negative or ``fpr_mode`` is not one of the options.
    """
    if scale < 0:
        raise ValueError(f"noise scale must be >= 0, got {scale}")
    mode = look_up_option(fpr_mode, FprMode)
    out = np.zeros((len(classes), 2))
    for i, (name, p) in enumerate(zip(classes, prevalence)):
        fpr, fnr, fdr = NOISE_PAIRS[NOISE_GROUP.get(name, _POOLED)]
        if mode == FprMode.MATCHED:
            p = min(max(float(p), 1e-6), 0.99)
            fpr = p * (1 - fnr) * fdr / ((1 - fdr) * (1 - p))
        out[i] = fpr, fnr
    return np.clip(out * scale, 0.0, 0.95)


def resolve_noise(
    noise: float | Mapping[str, Sequence[float]] | None,
    classes: Sequence[str],
    prevalence: Sequence[float],
    fpr_mode: FprMode | str | Enum = FprMode.MATCHED,
) -> np.ndarray:
    """Turn a writer's ``noise`` option into a ``C x 2`` array of (FPR, FNR).

    Args:
        noise: ``None`` or ``0`` for clean labels; a float scales the json-derived rates (:func:`noise_rates`);
            a mapping ``{class: (fpr, fnr)}`` gives explicit rates (classes left out stay clean).
        classes: class names in label order.
        prevalence: clean prevalences, same order.
        fpr_mode: forwarded to :func:`noise_rates`.

    Raises:
        ValueError: a mapping names an unknown class or a rate outside [0, 1].
    """
    if noise is None:
        return np.zeros((len(classes), 2))
    if isinstance(noise, Mapping):
        unknown = sorted(set(noise) - set(classes))
        if unknown:
            raise ValueError(f"noise names unknown class(es) {unknown}; classes are {list(classes)}")
        out = np.zeros((len(classes), 2))
        for i, name in enumerate(classes):
            if name in noise:
                rates = np.asarray(noise[name], dtype=np.float64)
                if rates.shape != (2,) or np.any((rates < 0) | (rates > 1)):
                    raise ValueError(f"noise['{name}'] must be (fpr, fnr) in [0, 1], got {noise[name]}")
                out[i] = rates
        return out
    return noise_rates(classes, prevalence, float(noise), fpr_mode)


def corrupt_labels(labels: np.ndarray, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flip clean 0/1 labels independently per entry: 0 -> 1 with ``rates[c, 0]``, 1 -> 0 with ``rates[c, 1]``.

    Args:
        labels: ``N x C`` array of 0/1.
        rates: ``C x 2`` (FPR, FNR) as returned by :func:`resolve_noise`.
        rng: the only source of randomness (one uniform draw per entry, so the call is reproducible).

    Returns:
        ``uint8`` array ``N x C`` of noisy labels.

    Raises:
        ValueError: ``rates`` does not have shape ``C x 2``.
    """
    labels = np.asarray(labels).astype(np.uint8)
    if rates.shape != (labels.shape[1], 2):
        raise ValueError(f"rates shape {rates.shape} does not match {labels.shape[1]} classes x 2")
    u = rng.random(labels.shape)
    flip = np.where(labels == 1, u < rates[None, :, 1], u < rates[None, :, 0])
    return np.where(flip, 1 - labels, labels).astype(np.uint8)
