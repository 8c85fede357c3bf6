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
Radiology 2020; DATASETS.md 2.5). The statistics are read once, at import, from the package data
``cxr_label_stats.json`` and ``nvum_split_reproduction.json`` (:func:`monai_ext.demo.stats.load_stats`); only the
MIMIC-CXR-LT prevalences, which no measured file holds, are written here.
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

from monai_ext.demo.stats import load_stats

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

_LABEL_STATS = load_stats("cxr_label_stats")
_NVUM_SPLITS = load_stats("nvum_split_reproduction")
_NIH = _LABEL_STATS["nih_chestxray14"]

NIH_CLASSES: tuple[str, ...] = tuple(_NIH["classes"])

_NIH_N: int = _NIH["n_images"]
# nih_chestxray14.cooccurrence_counts (rows/cols in NIH_CLASSES order, diagonal = class count)
_NIH_COOC: tuple[tuple[int, ...], ...] = tuple(tuple(row) for row in _NIH["cooccurrence_counts"])

_POOLED = "AnyAdjudicatedFinding_vs_NIH_not_NoFinding"
_AIR3 = "AirspaceOpacity_vs_Consolidation|Infiltration|Pneumonia"
_AIR5 = "AirspaceOpacity_vs_Consolidation|Infiltration|Pneumonia|Atelectasis|Edema"
_ADJUDICATED = _LABEL_STATS["nih_vs_google_adjudicated"]["pairs"]


def _flip_rates(pair: str) -> tuple[float, float, float]:
    """(FPR, FNR, FDR) of one NIH-vs-adjudicated comparison over all 4,376 adjudicated images."""
    rec = _ADJUDICATED[pair]["all"]
    return rec["P_nih1_given_adj0"], rec["P_nih0_given_adj1"], rec["P_adj0_given_nih1"]


#: (FPR = P(NIH=1|adj=0), FNR = P(NIH=0|adj=1), FDR = P(adj=0|NIH=1)) of the comparisons :data:`NOISE_GROUP` maps
#: classes to (cxr_label_stats.json nih_vs_google_adjudicated.pairs[*].all).
NOISE_PAIRS: dict[str, tuple[float, float, float]] = {
    pair: _flip_rates(pair) for pair in ("Pneumothorax", "Nodule/Mass", _AIR3, _AIR5, _POOLED)
}

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


_CHEXPERT_STATS = _LABEL_STATS["chexpert_frontal"]
_CHEXPERT = {  # per_class_frontal: prev_U_zeros (P(label == 1.0)) over 191,027 frontal train images
    c: v["prev_U_zeros"] for c, v in _CHEXPERT_STATS["per_class_frontal"].items() if c != "No Finding"
}
_PADCHEST_STATS = _LABEL_STATS["padchest_physician_frontal"]
_PADCHEST = {c: v["prevalence"] for c, v in _PADCHEST_STATS["per_class_exact_terms"].items()}
_VINDR_STATS = _LABEL_STATS["vindr_cxr_image_level"]
_VINDR_FINDINGS = [c for c in _VINDR_STATS["per_class"] if c != "No finding"]
_VINDR = {c: _VINDR_STATS["per_class"][c]["prev_majority_2of3"] for c in _VINDR_FINDINGS}  # >= 2 of 3 = demo truth
#: VinDr-CXR prevalence marked by any of the 3 readers (vindr_cxr_image_level.per_class[*].prev_any_reader).
VINDR_ANY_READER: dict[str, float] = {c: _VINDR_STATS["per_class"][c]["prev_any_reader"] for c in _VINDR_FINDINGS}
# nvum_split_reproduction.json opi.NIH_setting positive rates (+ Fracture from CXP_setting)
_OPENI_NIH = _NVUM_SPLITS["opi"]["NIH_setting"]["positive_rate_among_kept_all_views"]
_OPENI = {
    **{c: v for c, v in _OPENI_NIH.items() if c != "No_Finding"},
    "Fracture": _NVUM_SPLITS["opi"]["CXP_setting"]["positive_rate_among_kept_all_views"]["Fracture"],
}
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
        _NIH["no_finding"]["fraction"],
        "NIH Data_Entry_2017_v2020 (cxr_label_stats.json nih_chestxray14)",
    ),
    "chexpert": LabelModel(
        tuple(_CHEXPERT),
        tuple(_CHEXPERT.values()),
        no_finding=_CHEXPERT_STATS["no_finding_fraction_frontal"],
        source="CheXpert-small train, frontal",
    ),
    "padchest": LabelModel(
        tuple(_PADCHEST),
        tuple(_PADCHEST.values()),
        no_finding=_PADCHEST_STATS["no_NIH14_class_fraction_substring"],
        source="PadChest physician frontal",
    ),
    "vindr": LabelModel(
        tuple(_VINDR),
        tuple(_VINDR.values()),
        no_finding=_VINDR_STATS["no_finding_fraction_all_readers_no_finding"],
        source="VinDr-CXR train",
    ),
    "openi": LabelModel(
        tuple(_OPENI), tuple(_OPENI.values()), no_finding=_OPENI_NIH["No_Finding"], source="OpenI (NVUM rules)"
    ),
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
    labels: np.ndarray,
    min_positives: int,
    rng: np.random.Generator,
    columns: Sequence[int] | None = None,
    prefer_abnormal: bool = False,
) -> np.ndarray:
    """Demo-only enrichment: make every class (of ``columns``, default all) positive in at least ``min_positives`` rows.

    Missing positives are added on randomly chosen negative rows, so that per-class AUC is defined even in a tiny
    split; rare classes are then over-represented (documented distortion). ``min_positives`` is capped at ``N``.
    With ``prefer_abnormal``, they go to rows that already have a positive first, and to all-negative rows only when
    those run out, so that heavy enrichment keeps the "no finding" rows (default False: any negative row).

    Returns:
        a modified copy of ``labels`` (``N x C``).
    """
    out = labels.copy()
    need_total = min(int(min_positives), out.shape[0])
    for c in range(out.shape[1]) if columns is None else columns:
        need = need_total - int(out[:, c].sum())
        if need > 0 and prefer_abnormal:
            abnormal = out.any(axis=1)
            first = rng.permutation(np.flatnonzero((out[:, c] == 0) & abnormal))
            then = rng.permutation(np.flatnonzero((out[:, c] == 0) & ~abnormal))
            out[np.concatenate([first, then])[:need], c] = 1
        elif need > 0:
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
