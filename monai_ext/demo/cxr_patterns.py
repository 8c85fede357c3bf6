# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Synthetic frontal chest radiographs: a chest-like background and one lesion-like pattern per finding.

The background is a display image in [0, 1] (bright = dense, as MONOCHROME2): body soft tissue, two darker lung
fields with rib shadows and smooth vascular texture, a brighter mediastinum/spine and heart, mild random anatomy
variation and pixel noise. Every finding class of every demo dataset maps to one shared :class:`Pattern` vocabulary
(:data:`CLASS_PATTERNS`). The 8 classes with NIH boxes take their box centre and size from the quantiles of the 984
NIH boxes (package data ``nih_bbox_stats.json``, read into :data:`BOX_QUANTILES`), with the centre moved inside the
lung field for parenchymal patterns. The others follow textbook appearance (documented per pattern in
:class:`Pattern`). Each drawn pattern reports its box (extent of the drawn mask) and polarity (+1 brighter,
-1 darker), from which NIH ``BBox_List_2017.csv`` rows and VinDr boxes are written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from monai.utils import look_up_option
from monai.utils.enums import StrEnum
from scipy.ndimage import gaussian_filter
from scipy.special import expit

from monai_ext.demo.stats import load_stats

__all__ = ["Pattern", "POLARITY", "CLASS_PATTERNS", "BOX_QUANTILES", "Lesion", "ChestImage", "render_chest",
           "render_lateral", "patterns_for_class"]  # fmt: skip


class Pattern(StrEnum):
    """Shared lesion vocabulary (box source in brackets; "NIH" = NIH box quantiles of that class).

    nodule: small round opacity [NIH Nodule]. mass: larger lobulated opacity [NIH Mass]. cardiomegaly: enlarged heart
    silhouette [NIH Cardiomegaly]. effusion: basal fluid with a meniscus rising laterally, blunting the costophrenic
    angle [height from NIH Effusion, width = lung base]. pneumothorax: darker region without lung texture, thin pleural
    line [NIH Pneumothorax]. atelectasis: thin plate-like band [NIH Atelectasis]. infiltration: 5-8 faint patchy blobs
    [NIH Infiltrate]. pneumonia: 3-5 denser merging blobs [NIH Pneumonia]. consolidation: homogeneous dense lobar
    opacity (upper or lower zone of one lung) [NIH Pneumonia box]. edema: bilateral perihilar "bat-wing" haze.
    emphysema: hyperlucent lungs, flattened diaphragm, sparse texture. fibrosis: reticular net in the lower zones.
    pleural_thickening: smooth band along one lateral chest wall. hernia: retrocardiac round opacity with an air-fluid
    level. fracture: rib callus with a lucent gap at the lateral chest wall. support_device: bright tube down the
    midline, half the time with a pacemaker box. wide_mediastinum: widened upper mediastinum. opacity: 1-2 large hazy
    blobs [NIH Infiltrate]. pleural_plaque: small calcified lenticular plaque at the chest wall. aortic_calcification:
    thin bright arc at the aortic knob. aorta: prominent aortic knob and wavy descending aorta. pneumomediastinum:
    lucent streaks along both mediastinal borders. pneumoperitoneum: lucent crescent under a hemidiaphragm.
    subcutaneous_emphysema: lucent streaks in the lateral soft tissue. reticulonodular: diffuse tiny nodules in both
    lungs (ILD). other_lesion: small irregular bright opacity anywhere in the thorax.
    """

    NODULE = "nodule"
    MASS = "mass"
    CARDIOMEGALY = "cardiomegaly"
    EFFUSION = "effusion"
    PNEUMOTHORAX = "pneumothorax"
    ATELECTASIS = "atelectasis"
    INFILTRATION = "infiltration"
    PNEUMONIA = "pneumonia"
    CONSOLIDATION = "consolidation"
    EDEMA = "edema"
    EMPHYSEMA = "emphysema"
    FIBROSIS = "fibrosis"
    PLEURAL_THICKENING = "pleural_thickening"
    HERNIA = "hernia"
    FRACTURE = "fracture"
    SUPPORT_DEVICE = "support_device"
    WIDE_MEDIASTINUM = "wide_mediastinum"
    OPACITY = "opacity"
    PLEURAL_PLAQUE = "pleural_plaque"
    AORTIC_CALCIFICATION = "aortic_calcification"
    AORTA = "aorta"
    PNEUMOMEDIASTINUM = "pneumomediastinum"
    PNEUMOPERITONEUM = "pneumoperitoneum"
    SUBCUTANEOUS_EMPHYSEMA = "subcutaneous_emphysema"
    RETICULONODULAR = "reticulonodular"
    OTHER_LESION = "other_lesion"


_DARK = {Pattern.PNEUMOTHORAX, Pattern.EMPHYSEMA, Pattern.PNEUMOMEDIASTINUM, Pattern.PNEUMOPERITONEUM,
         Pattern.SUBCUTANEOUS_EMPHYSEMA}  # fmt: skip
#: +1 if the pattern makes its box brighter on average, -1 if darker.
POLARITY: dict[Pattern, int] = {p: -1 if p in _DARK else 1 for p in Pattern}

P = Pattern
#: Finding name (every demo dataset's spelling) -> patterns; one of them is drawn per positive image.
CLASS_PATTERNS: dict[str, tuple[Pattern, ...]] = {
    "Atelectasis": (P.ATELECTASIS,), "Cardiomegaly": (P.CARDIOMEGALY,), "Effusion": (P.EFFUSION,),
    "Pleural Effusion": (P.EFFUSION,), "Pleural effusion": (P.EFFUSION,), "Infiltration": (P.INFILTRATION,),
    "Mass": (P.MASS,), "Nodule": (P.NODULE,), "Nodule/Mass": (P.NODULE, P.MASS), "Lung Lesion": (P.NODULE, P.MASS),
    "Pneumonia": (P.PNEUMONIA,), "Pneumothorax": (P.PNEUMOTHORAX,), "Consolidation": (P.CONSOLIDATION,),
    "Edema": (P.EDEMA,), "Emphysema": (P.EMPHYSEMA,), "Fibrosis": (P.FIBROSIS,), "Pulmonary fibrosis": (P.FIBROSIS,),
    "Pleural_Thickening": (P.PLEURAL_THICKENING,), "Pleural Thickening": (P.PLEURAL_THICKENING,),
    "Pleural thickening": (P.PLEURAL_THICKENING,), "Hernia": (P.HERNIA,), "Fracture": (P.FRACTURE,),
    "Support Devices": (P.SUPPORT_DEVICE,), "Enlarged Cardiomediastinum": (P.WIDE_MEDIASTINUM,),
    "Lung Opacity": (P.OPACITY,), "Pleural Other": (P.PLEURAL_PLAQUE,),
    "Calcification of the Aorta": (P.AORTIC_CALCIFICATION,), "Calcification": (P.AORTIC_CALCIFICATION,),
    "Tortuous Aorta": (P.AORTA,), "Aortic enlargement": (P.AORTA,), "Pneumomediastinum": (P.PNEUMOMEDIASTINUM,),
    "Pneumoperitoneum": (P.PNEUMOPERITONEUM,), "Subcutaneous Emphysema": (P.SUBCUTANEOUS_EMPHYSEMA,),
    "ILD": (P.RETICULONODULAR,), "Other lesion": (P.OTHER_LESION,),
}  # fmt: skip

_Q = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
_Q_KEYS = ("q00", "q05", "q25", "q50", "q75", "q95", "q100")
_BOX_VARIABLES = ("center_x_norm", "center_y_norm", "width_norm", "height_norm")
#: nih_bbox_stats.json per_class[c][v] quantiles q00, q05, q25, q50, q75, q95, q100 (normalised by 1024) for
#: v in (center_x_norm, center_y_norm, width_norm, height_norm); classes in the NIH box file's spelling.
BOX_QUANTILES: dict[str, tuple[tuple[float, ...], ...]] = {
    name: tuple(tuple(stats[v][q] for q in _Q_KEYS) for v in _BOX_VARIABLES)
    for name, stats in load_stats("nih_bbox_stats")["per_class"].items()
}

# Relative strength of each pattern (multiplies ``lesion_contrast``); devices and calcium are denser than fluid.
_STRENGTH = {P.NODULE: 1.3, P.MASS: 1.1, P.CARDIOMEGALY: 1.0, P.EFFUSION: 1.2, P.PNEUMOTHORAX: 0.9,
             P.ATELECTASIS: 1.1, P.INFILTRATION: 0.8, P.PNEUMONIA: 1.1, P.CONSOLIDATION: 1.3, P.EDEMA: 0.9,
             P.EMPHYSEMA: 0.5, P.FIBROSIS: 1.0, P.PLEURAL_THICKENING: 1.1, P.HERNIA: 1.0, P.FRACTURE: 1.4,
             P.SUPPORT_DEVICE: 2.0, P.WIDE_MEDIASTINUM: 1.0, P.OPACITY: 0.9, P.PLEURAL_PLAQUE: 1.5,
             P.AORTIC_CALCIFICATION: 1.8, P.AORTA: 1.0, P.PNEUMOMEDIASTINUM: 1.2, P.PNEUMOPERITONEUM: 1.2,
             P.SUBCUTANEOUS_EMPHYSEMA: 1.0, P.RETICULONODULAR: 1.0, P.OTHER_LESION: 1.3}  # fmt: skip


@dataclass(frozen=True)
class Lesion:
    """One drawn pattern: ``box`` is ``(x1, y1, x2, y2)`` in 0-based pixels (x2, y2 exclusive), ``polarity`` +1/-1."""

    pattern: Pattern
    box: tuple[float, float, float, float]
    polarity: int


@dataclass
class ChestImage:
    """``image`` and ``lesion_free`` are float32 ``H W`` in [0, 1]; they differ only by the ``lesions``."""

    image: np.ndarray
    lesion_free: np.ndarray
    lesions: list[Lesion] = field(default_factory=list)


def patterns_for_class(name: str) -> tuple[Pattern, ...]:
    """Patterns that may represent finding ``name`` (exact spelling; see :data:`CLASS_PATTERNS`).

    Raises:
        ValueError: ``name`` has no pattern.
    """
    if name not in CLASS_PATTERNS:
        raise ValueError(f"no demo pattern for class '{name}'; known classes: {sorted(CLASS_PATTERNS)}")
    return CLASS_PATTERNS[name]


def _ellipse(X, Y, cx, cy, rx, ry, angle=0.0, soft=0.08):
    """Soft ellipse mask in (0, 1), 0.5 on the boundary; also returns the normalised radial distance."""
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = X - float(cx), Y - float(cy)
    u, v = (c * dx + s * dy) * (1.0 / float(rx)), (c * dy - s * dx) * (1.0 / float(ry))
    d = np.sqrt(u * u + v * v)
    return expit((1.0 - d) * (1.0 / soft)), d


def _quantile_sample(q: Sequence[float], u: float) -> float:
    return float(np.interp(u, _Q, q))


class _Canvas:
    """Coordinate grids and anatomy of one image (normalised coordinates, x to the right, y down)."""

    def __init__(self, size: int, rng: np.random.Generator):
        self.size = size
        ax = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.X, self.Y = np.meshgrid(ax, ax)
        g = rng.normal(size=12).tolist()
        self.sep, self.lung_rx, self.lung_ry = 0.2 + 0.01 * g[0], 0.16 + 0.008 * g[1], 0.32 + 0.015 * g[2]
        self.lung_cy = 0.45 + 0.015 * g[3]
        self.lungs = {  # side "R" = patient's right = image left
            s: (0.5 + sgn * self.sep, self.lung_cy, self.lung_rx, self.lung_ry, -sgn * (0.1 + 0.03 * g[4]))
            for s, sgn in (("R", -1), ("L", 1))
        }
        self.lung_mask = {s: _ellipse(self.X, self.Y, *p, soft=0.05)[0] for s, p in self.lungs.items()}
        self.heart_p = (0.54 + 0.01 * g[5], 0.62 + 0.015 * g[6], 0.14 + 0.008 * g[7], 0.11 + 0.008 * g[8])
        self.heart = _ellipse(self.X, self.Y, *self.heart_p, soft=0.05)[0]
        self.med_hw = 0.045 + 0.004 * g[9]
        self.mediast = expit((self.med_hw - np.abs(self.X - 0.5)) / 0.008) * expit((0.85 - self.Y) / 0.02)
        body = _ellipse(self.X, self.Y, 0.5, 0.58, 0.47 * (1 + 0.03 * g[10]), 0.6, soft=0.03)[0]
        self.body = body
        self.lung_field = np.maximum(*self.lung_mask.values()) * (1 - self.heart) * (1 - self.mediast)
        tex = gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), sigma=max(size / 90, 0.7))
        self.texture = 0.025 * tex / (tex.std() + 1e-8)
        ribs = (0.5 + 0.5 * np.cos(2 * math.pi * (9 * self.Y + 3 * (self.X - 0.5) ** 2))) ** 4
        tissue, lung_drop = 0.5 + 0.03 * g[11], 0.25
        self.background = (
            0.05
            + (tissue - 0.05) * body
            + 0.12 * self.mediast * body
            - lung_drop * self.lung_field
            + (0.03 * ribs + self.texture) * self.lung_field
        )

    def side_of(self, cx: float) -> str:
        return "R" if cx < 0.5 else "L"

    def into_lung(self, cx: float, cy: float, frac: float = 0.75) -> tuple[float, float]:
        """Move ``(cx, cy)`` radially into its lung's ellipse scaled by ``frac`` (no change if already inside)."""
        lx, ly, rx, ry, _ = self.lungs[self.side_of(cx)]
        d = math.hypot((cx - lx) / rx, (cy - ly) / ry)
        if d <= frac:
            return cx, cy
        return lx + (cx - lx) * frac / d, ly + (cy - ly) * frac / d

    def box_sample(self, name: str, rng: np.random.Generator) -> tuple[float, float, float, float]:
        """(cx, cy, w, h) from the NIH quantiles of ``name``; width and height share a Gaussian copula (rho 0.6)."""
        qx, qy, qw, qh = BOX_QUANTILES[name]
        z = rng.standard_normal(4)
        u = expit(1.702 * np.array([z[0], z[1], z[2], 0.6 * z[2] + 0.8 * z[3]]))  # logistic approx. of Phi
        return tuple(_quantile_sample(q, v) for q, v in zip((qx, qy, qw, qh), u))  # type: ignore[return-value]


def _blobs(cv: _Canvas, rng, cx, cy, w, h, k, rmin, rmax) -> np.ndarray:
    """Union of ``k`` Gaussian blobs centred uniformly in the box, radii a fraction of the box size."""
    out = np.zeros_like(cv.X)
    for _ in range(k):
        bx, by = cx + (rng.random() - 0.5) * w * 0.8, cy + (rng.random() - 0.5) * h * 0.8
        r = rng.uniform(rmin, rmax) * math.sqrt(w * h)
        out = 1 - (1 - out) * (1 - np.exp(-((cv.X - bx) ** 2 + (cv.Y - by) ** 2) / (2 * r * r)))
    return out


_LUNG_BOX_KEY = {P.NODULE: "Nodule", P.MASS: "Mass", P.ATELECTASIS: "Atelectasis", P.PNEUMOTHORAX: "Pneumothorax",
                 P.PNEUMONIA: "Pneumonia", P.CONSOLIDATION: "Pneumonia", P.INFILTRATION: "Infiltrate",
                 P.OPACITY: "Infiltrate"}  # fmt: skip
_DIFFUSE = (P.EDEMA, P.EMPHYSEMA, P.FIBROSIS, P.RETICULONODULAR)
_PLEURA_AND_WALL = (P.EFFUSION, P.PLEURAL_THICKENING, P.FRACTURE, P.PLEURAL_PLAQUE, P.PNEUMOPERITONEUM,
                    P.SUBCUTANEOUS_EMPHYSEMA)  # fmt: skip
_MEDIASTINUM = (P.CARDIOMEGALY, P.HERNIA, P.SUPPORT_DEVICE, P.WIDE_MEDIASTINUM, P.AORTIC_CALCIFICATION, P.AORTA,
                P.PNEUMOMEDIASTINUM)  # fmt: skip


def _draw(cv: _Canvas, pattern: Pattern, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (signed unit-strength delta, mask whose > 0.5 extent is the box) for one pattern."""
    if pattern in _LUNG_BOX_KEY:
        return _draw_lung_lesion(cv, pattern, rng)
    side = "R" if rng.random() < 0.5 else "L"  # drawn for every other pattern, whether it uses the side or not
    if pattern in _DIFFUSE:
        return _draw_diffuse(cv, pattern, rng)
    if pattern in _PLEURA_AND_WALL:
        return _draw_pleura_and_wall(cv, pattern, side, rng)
    if pattern in _MEDIASTINUM:
        return _draw_mediastinum(cv, pattern, rng)
    return _draw_other_lesion(cv, rng)


def _draw_lung_lesion(cv: _Canvas, pattern: Pattern, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Focal lung patterns placed by an NIH box sample moved into the lung (see :data:`_LUNG_BOX_KEY`)."""
    X, Y = cv.X, cv.Y
    cx, cy, w, h = cv.box_sample(_LUNG_BOX_KEY[pattern], rng)
    cx, cy = cv.into_lung(cx, cy)
    side = cv.lung_mask[cv.side_of(cx)]
    if pattern == P.NODULE:
        m = _ellipse(X, Y, cx, cy, w / 2, h / 2, soft=0.12)[0]
        return m, m
    if pattern == P.MASS:
        m = _ellipse(X, Y, cx, cy, 0.42 * w, 0.42 * h, soft=0.1)[0]
        for _ in range(2):
            ox, oy = (rng.random() - 0.5) * 0.5 * w, (rng.random() - 0.5) * 0.5 * h
            m = np.maximum(m, _ellipse(X, Y, cx + ox, cy + oy, 0.28 * w, 0.28 * h, soft=0.1)[0])
        return m, m
    if pattern == P.ATELECTASIS:
        m = _ellipse(X, Y, cx, cy, w / 2, max(0.2 * h, 0.012), angle=rng.normal(0, 0.25), soft=0.15)[0] * side
        return m, m
    if pattern == P.PNEUMOTHORAX:
        ell, d = _ellipse(X, Y, cx, cy, w / 2, h / 2, soft=0.1)
        m = ell * side
        line = side * np.exp(-(((d - 1) / 0.05) ** 2))
        return -m + 0.3 * line, m
    if pattern == P.CONSOLIDATION:
        lx, ly, _, ry, _ = cv.lungs[cv.side_of(cx)]
        zone = expit((Y - ly) / 0.015) if rng.random() < 0.6 else expit((ly - 0.1 * ry - Y) / 0.015)
        m = side * zone * (1 - cv.heart)
        return m, m
    k, r0, r1 = {P.INFILTRATION: (rng.integers(5, 9), 0.1, 0.2), P.PNEUMONIA: (rng.integers(3, 6), 0.2, 0.35),
                 P.OPACITY: (rng.integers(1, 3), 0.3, 0.45)}[pattern]  # fmt: skip
    m = _blobs(cv, rng, cx, cy, w, h, k, r0, r1) * (0.3 + 0.7 * cv.lung_field)
    return m, m / (m.max() + 1e-8)


def _draw_diffuse(cv: _Canvas, pattern: Pattern, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Patterns spread over both lungs: edema, emphysema, fibrosis, reticulonodular (ILD)."""
    X, Y = cv.X, cv.Y
    if pattern == P.EDEMA:
        b = sum(np.exp(-(((X - hx) / 0.11) ** 2 + ((Y - 0.47) / 0.15) ** 2) / 2) for hx in (0.37, 0.63))
        m = b * cv.lung_field
        return m, m / (m.max() + 1e-8)
    if pattern == P.EMPHYSEMA:
        m = np.maximum(*(_ellipse(X, Y, *cv.lungs[s][:2], p[2], p[3] * 1.08, p[4], soft=0.05)[0]
                         for s, p in cv.lungs.items())) * (1 - cv.heart) * (1 - cv.mediast)  # fmt: skip
        return -m, m
    r = gaussian_filter(rng.standard_normal(X.shape).astype(np.float32), sigma=max(cv.size / 110, 0.6))
    net = np.exp(-((r / (0.3 * r.std() + 1e-8)) ** 2))
    if pattern == P.FIBROSIS:
        zone = cv.lung_field * expit((Y - (cv.lung_cy + 0.05)) / 0.03)
        return net * zone, zone
    dots = np.zeros_like(X)
    for _ in range(60):
        dx, dy = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.75)
        dots = np.maximum(dots, np.exp(-((X - dx) ** 2 + (Y - dy) ** 2) / (2 * 0.01**2)))
    return (0.6 * net + dots) * cv.lung_field, cv.lung_field


def _draw_pleura_and_wall(
    cv: _Canvas, pattern: Pattern, side: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Patterns at the pleura or chest wall of one side (``side`` "R"/"L"; effusion picks its own from a box)."""
    X, Y = cv.X, cv.Y
    lx, ly, rx, ry, ang = cv.lungs[side]
    sgn = -1 if side == "R" else 1
    if pattern == P.EFFUSION:
        cx, _, _, h = cv.box_sample("Effusion", rng)
        lx, ly, rx, ry, ang = cv.lungs[cv.side_of(cx)]
        h = float(np.clip(h, 0.06, 0.5))
        lateral = np.clip((np.abs(X - 0.5) - abs(lx - 0.5)) / rx, 0, 1)
        level = ly + ry - h - 0.5 * h * lateral
        m = _ellipse(X, Y, lx, ly, rx * 1.05, ry * 1.03, ang, soft=0.04)[0] * expit((Y - level) / 0.01)
        return m, m
    if pattern == P.PNEUMOPERITONEUM:
        _, d = _ellipse(X, Y, lx, ly, rx, ry, ang)
        m = np.exp(-(((d - 1.07) / 0.03) ** 2)) * expit((Y - (ly + 0.6 * ry)) / 0.01) * cv.body
        return -m, m
    if pattern == P.SUBCUTANEOUS_EMPHYSEMA:
        region = cv.body * (1 - cv.lung_field) * expit(sgn * (X - lx - sgn * rx) / 0.01)
        region = region * expit((Y - 0.2) / 0.02) * expit((0.7 - Y) / 0.02)
        r = gaussian_filter(rng.standard_normal(X.shape).astype(np.float32), sigma=(cv.size / 30, cv.size / 200))
        streak = expit((r - 0.5 * r.std()) / (0.1 * r.std() + 1e-8))
        return -streak * region, region
    _, d = _ellipse(X, Y, lx, ly, rx, ry, ang)
    lateral = expit(sgn * (X - lx) / 0.01)
    if pattern == P.PLEURAL_THICKENING:
        y0 = rng.uniform(ly - 0.7 * ry, ly)
        m = np.exp(-(((d - 0.97) / 0.05) ** 2)) * lateral * expit((Y - y0) / 0.01) * expit((y0 + 0.35 - Y) / 0.01)
        return m, m
    y = rng.uniform(ly - 0.5 * ry, ly + 0.5 * ry)
    x = lx + sgn * rx * math.sqrt(max(1 - ((y - ly) / ry) ** 2, 0.0))
    if pattern == P.PLEURAL_PLAQUE:
        m = _ellipse(X, Y, x, y, 0.012, 0.04, angle=0.0, soft=0.1)[0]
        return m, m
    a = sgn * rng.uniform(0.2, 0.5)  # FRACTURE
    m = _ellipse(X, Y, x, y, 0.04, 0.013, angle=a, soft=0.1)[0]
    gap = np.exp(-(((math.cos(a) * (X - x) + math.sin(a) * (Y - y)) / 0.004) ** 2))
    return m - 0.8 * gap * m, m


def _draw_mediastinum(cv: _Canvas, pattern: Pattern, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Heart, mediastinum, aorta and midline patterns (cardiomegaly, hernia, devices, aorta, pneumomediastinum)."""
    X, Y = cv.X, cv.Y
    if pattern == P.CARDIOMEGALY:
        cx, cy, w, h = cv.box_sample("Cardiomegaly", rng)
        m = _ellipse(X, Y, cx, cy, w / 2, h / 2, soft=0.04)[0]
        return m * cv.lung_field, m
    if pattern == P.HERNIA:
        cx, cy, r = 0.5 + rng.normal(0, 0.015), 0.66 + rng.normal(0, 0.02), rng.uniform(0.06, 0.09)
        m = _ellipse(X, Y, cx, cy, r, 0.85 * r, soft=0.06)[0]
        level = expit((Y - (cy - 0.3 * r)) / 0.004)
        return m * level - 0.8 * m * (1 - level), m
    if pattern == P.SUPPORT_DEVICE:
        y_end = rng.uniform(0.45, 0.65)
        m = np.exp(-(((X - 0.5 - 0.03 * np.sin(4 * Y)) / 0.006) ** 2)) * expit((y_end - Y) / 0.01)
        if rng.random() < 0.5:
            m = np.maximum(m, expit((0.035 - np.abs(X - 0.72)) / 0.004) * expit((0.025 - np.abs(Y - 0.16)) / 0.004))
        return m, m
    if pattern == P.WIDE_MEDIASTINUM:
        hw = rng.uniform(0.08, 0.11)
        m = expit((hw - np.abs(X - 0.5)) / 0.01) * expit((Y - 0.12) / 0.02) * expit((0.45 - Y) / 0.02)
        return m * (1 - cv.mediast), m * (1 - cv.mediast)
    if pattern == P.PNEUMOMEDIASTINUM:
        band = sum(np.exp(-(((X - 0.5 - s * (cv.med_hw + 0.012)) / 0.006) ** 2)) for s in (-1, 1))
        m = band * expit((Y - 0.12) / 0.01) * expit((0.5 - Y) / 0.01)
        return -m, m
    kx, ky, kr = 0.57 + rng.normal(0, 0.008), 0.27 + rng.normal(0, 0.01), rng.uniform(0.035, 0.05)
    if pattern == P.AORTIC_CALCIFICATION:
        rr = np.hypot(X - kx, Y - ky)
        m = np.exp(-(((rr - kr) / 0.005) ** 2)) * expit((ky - Y + 0.3 * kr) / 0.005)
        return m, m
    knob = _ellipse(X, Y, kx + 0.01, ky, kr, kr, soft=0.06)[0]  # AORTA
    desc = np.exp(-(((X - kx - 0.012 * np.sin(20 * Y)) / 0.012) ** 2)) * expit((Y - ky) / 0.01)
    m = np.maximum(knob, desc * expit((0.65 - Y) / 0.01))
    return m, m


def _draw_other_lesion(cv: _Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Small irregular bright opacity anywhere in the thorax (VinDr "Other lesion")."""
    m = _ellipse(cv.X, cv.Y, rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.7), rng.uniform(0.02, 0.04),
                 rng.uniform(0.01, 0.03), angle=rng.uniform(0, math.pi), soft=0.05)[0]  # fmt: skip
    return m, m


def _mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask > 0.5)
    if len(xs) == 0:  # pattern too small for this grid: fall back to the peak pixel
        y, x = np.unravel_index(int(np.argmax(mask)), mask.shape)
        ys, xs = np.array([y]), np.array([x])
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def render_chest(
    image_size: int,
    patterns: Sequence[Pattern | str],
    rng: np.random.Generator,
    lesion_contrast: float = 0.2,
    noise_std: float = 0.012,
) -> ChestImage:
    """Draw one frontal (PA/AP display) chest radiograph with the given lesion patterns.

    The anatomy, texture and pixel noise are drawn from ``rng`` before any lesion, so the same ``rng`` state gives
    the same ``lesion_free`` image whatever ``patterns`` are.

    Args:
        image_size: output side in pixels (square ``H = W``).
        patterns: lesion patterns to draw, in order (names or :class:`Pattern`; repeats allowed).
        rng: the only source of randomness.
        lesion_contrast: display-intensity change of a unit-strength pattern (the lung-to-soft-tissue step is
            about 0.25); default 0.2. Each pattern scales it by its own relative strength (0.8 to 2.0).
        noise_std: standard deviation of the additive pixel noise, default 0.012.

    Returns:
        :class:`ChestImage` with float32 ``H W`` images in [0, 1] and one :class:`Lesion` per pattern.

    Raises:
        ValueError: ``image_size`` < 16, negative ``lesion_contrast`` or an unknown pattern name.
    """
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16, got {image_size}")
    if lesion_contrast < 0:
        raise ValueError(f"lesion_contrast must be >= 0, got {lesion_contrast}")
    pats = [look_up_option(p, Pattern) for p in patterns]
    cv = _Canvas(int(image_size), rng)
    gain, offset = 1 + 0.05 * rng.standard_normal(), 0.02 * rng.standard_normal()
    noise = rng.normal(0.0, noise_std, size=cv.X.shape).astype(np.float32)
    image = cv.background.copy()
    lesions = []
    for p in pats:
        delta, mask = _draw(cv, p, rng)
        image = image + lesion_contrast * _STRENGTH[p] * delta
        if p in (P.PNEUMOTHORAX, P.EMPHYSEMA):  # no (or sparse) lung markings in the lucent region
            image = image - cv.texture * mask
        lesions.append(Lesion(p, _mask_box(mask), POLARITY[p]))

    def finish(a: np.ndarray) -> np.ndarray:
        return np.clip(offset + gain * a + noise, 0.0, 1.0).astype(np.float32)

    return ChestImage(finish(image), finish(cv.background), lesions)


def render_lateral(image_size: int, rng: np.random.Generator, noise_std: float = 0.012) -> np.ndarray:
    """Draw a lesion-free lateral chest view (float32 ``H W`` in [0, 1]): one lung field, anterior heart, spine."""
    ax = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size
    X, Y = np.meshgrid(ax, ax)
    g = rng.normal(size=3).tolist()
    body = _ellipse(X, Y, 0.5, 0.56, 0.4 + 0.02 * g[0], 0.58, soft=0.03)[0]
    lung = _ellipse(X, Y, 0.5, 0.45 + 0.01 * g[1], 0.27, 0.3 + 0.01 * g[2], soft=0.05)[0]
    heart = _ellipse(X, Y, 0.4, 0.62, 0.15, 0.13, soft=0.05)[0]
    spine = expit((0.035 - np.abs(X - 0.8)) / 0.008) * body
    a = 0.05 + 0.45 * body + 0.25 * spine - 0.22 * lung * (1 - heart)
    return np.clip(a + rng.normal(0, noise_std, size=X.shape), 0, 1).astype(np.float32)
