# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo EyePACS diabetic retinopathy dataset in the Kaggle "Diabetic Retinopathy Detection" layout.

Images are 8-bit RGB JPEG fundus photographs drawn with the fundus model of :mod:`monai_ext.demo.rop` (circular
field of view, pigmented fundus with vignetting, optic disc, arteries and veins; no plus disease) plus the retinal
signs of diabetic retinopathy, whose amount grows with the grade (International Clinical DR scale, Wilkinson et al.,
Ophthalmology 110(9), 2003): grade 1 mild, microaneurysms only (a few small dark red dots); grade 2 moderate, more
microaneurysms, dot-blot haemorrhages and hard exudates (small yellow spots near the macula); grade 3 severe, many
haemorrhages, larger blots, in every quadrant; grade 4 proliferative, as grade 3 plus fine new vessels at the disc.

Grades follow the Kaggle training set's prevalence (about 73.5 % grade 0, 7 % grade 1, 15 % grade 2, 2.5 % grade 3,
2 % grade 4); the two eyes of a patient are correlated (a Gaussian copula), as in the real data. Labels are the
drawn grades (no label noise), so there is no ``demo_truth.csv``.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from monai_ext.demo.rop import _fundus, _vessel

__all__ = ["LEVEL_PREVALENCE", "write_eyepacs_demo"]

#: grade 0..4 -> fraction of images (Kaggle EyePACS training set, rounded).
LEVEL_PREVALENCE = (0.735, 0.07, 0.15, 0.025, 0.02)

#: grade -> (microaneurysms, dot-blot haemorrhages, hard exudates), each a (low, high) count range (high exclusive).
_LESIONS = {
    0: ((0, 1), (0, 1), (0, 1)),
    1: ((3, 7), (0, 1), (0, 1)),
    2: ((6, 12), (2, 6), (3, 10)),
    3: ((10, 16), (12, 20), (4, 12)),
    4: ((10, 16), (10, 18), (4, 12)),
}

_EYE_CORRELATION = 0.8  # correlation of the two eyes' latent Gaussians


def _field_point(rng: np.random.Generator, size: int, r_max: float, centre: np.ndarray | None = None) -> np.ndarray:
    """A uniform random point within radius ``r_max * size`` of ``centre`` (default the image centre)."""
    centre = np.array([size / 2, size / 2]) if centre is None else centre
    r, a = r_max * size * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    return centre + r * np.array([math.cos(a), math.sin(a)])


def _spot(draw: ImageDraw.ImageDraw, p: np.ndarray, radius: float, color: tuple[int, ...]) -> None:
    draw.ellipse([p[0] - radius, p[1] - radius, p[0] + radius, p[1] + radius], fill=color)


def _dr_signs(rng: np.random.Generator, arr: np.ndarray, level: int, eye: str) -> np.ndarray:
    """Draw the DR signs of ``level`` on fundus image ``arr`` (``H W 3`` uint8) and return the new image."""
    size = arr.shape[0]
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    (ma_lo, ma_hi), (h_lo, h_hi), (ex_lo, ex_hi) = _LESIONS[level]
    # the fovea sits opposite the disc (disc right of centre in the unflipped right eye, see monai_ext.demo.rop)
    fovea = np.array([size * (0.5 + (0.06 if eye == "left" else -0.06)), size * 0.5])
    unit = size / 128
    for _ in range(int(rng.integers(ma_lo, ma_hi))):  # microaneurysms: tiny dark red dots, posterior pole
        _spot(draw, _field_point(rng, size, 0.3), unit * rng.uniform(0.9, 1.4), (120, 10, 15, 255))
    for _ in range(int(rng.integers(h_lo, h_hi))):  # dot-blot haemorrhages, larger at grade >= 3
        radius = unit * (rng.uniform(1.5, 2.6) if level < 3 else rng.uniform(2.0, 4.0))
        _spot(draw, _field_point(rng, size, 0.4), radius, (105, 12, 12, 235))
    for _ in range(int(rng.integers(ex_lo, ex_hi))):  # hard exudates: small yellow spots around the macula
        _spot(draw, _field_point(rng, size, 0.18, fovea), unit * rng.uniform(0.8, 1.5), (245, 225, 110, 255))
    if level == 4:  # neovascularisation at the disc: fine, tortuous new vessels
        disc = np.array([size * (0.5 + (-0.16 if eye == "left" else 0.16)), size * 0.5])
        for _ in range(3):
            t = np.linspace(0, 1, 16)[:, None]
            ang = rng.uniform(0, 2 * math.pi) + 0.8 * t
            pts = disc + size * 0.12 * t * np.concatenate([np.cos(ang), np.sin(ang)], 1)
            _vessel(draw, rng, pts, max(1.0, unit), (150, 25, 25, 255), 1.6, size, depth=1)
    layer = layer.filter(ImageFilter.GaussianBlur(0.4 * unit))
    out = Image.alpha_composite(Image.fromarray(arr).convert("RGBA"), layer).convert("RGB")
    return np.asarray(out)


def _levels(rng: np.random.Generator, n_patients: int) -> np.ndarray:
    """Grades ``n_patients x 2`` (left, right): each eye's marginal is :data:`LEVEL_PREVALENCE`, the eyes of one
    patient are correlated through latent Gaussians with correlation :data:`_EYE_CORRELATION`."""
    shared = rng.normal(size=(n_patients, 1))
    own = rng.normal(size=(n_patients, 2))
    z = math.sqrt(_EYE_CORRELATION) * shared + math.sqrt(1 - _EYE_CORRELATION) * own
    u = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    cuts = np.cumsum(LEVEL_PREVALENCE)[:-1]
    return np.searchsorted(cuts, u, side="right")


def write_eyepacs_demo(root: str | os.PathLike, size: float = 1.0, seed: int = 0, image_size: int = 128) -> dict:
    """Write a demo EyePACS dataset under ``root``.

    Layout (Kaggle "Diabetic Retinopathy Detection", read by :func:`monai_ext.data.eyepacs.eyepacs_datalist`)::

        root/trainLabels.csv          image,level   one row per image, sorted by patient then eye (left first)
        root/train/<image>.jpeg       8-bit RGB JPEG, e.g. train/10_left.jpeg

    Patients get distinct random numeric ids (as Kaggle's ``10``, ``13``, ``15``, ...), both eyes each.

    Args:
        root: dataset folder (created), e.g. ``demo_data/eyepacs``.
        size: scale of the number of patients (1.0 = 150 patients, 300 images; at least 10 patients). Default 1.0.
        seed: seed of ``numpy.random.default_rng``. Default 0.
        image_size: image side in pixels. Default 128.

    Returns:
        summary dict: ``root``, ``patients``, ``images``, ``level_counts`` (grade 0-4) and ``dr_fraction``
        (fraction of images with grade >= 1).

    Raises:
        ValueError: ``image_size`` < 32 or ``size`` <= 0.
    """
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32, got {image_size}.")
    if not size > 0:
        raise ValueError(f"size must be positive, got {size}.")
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "train").mkdir(parents=True, exist_ok=True)
    n_patients = max(10, int(round(150 * size)))
    patients = np.sort(rng.choice(np.arange(10, 10 + 300 * n_patients), n_patients, replace=False))
    levels = _levels(rng, n_patients)
    rows = []
    for patient, pair in zip(patients, levels):
        pigment = np.array([rng.uniform(165, 225), rng.uniform(60, 110), rng.uniform(25, 60)])
        for eye, level in zip(("left", "right"), pair):
            image_id = f"{patient}_{eye}"
            arr = _fundus(rng, image_size, "OS" if eye == "left" else "OD", "posterior", 0.0, pigment)
            Image.fromarray(_dr_signs(rng, arr, int(level), eye)).save(root / "train" / f"{image_id}.jpeg", quality=92)
            rows.append([image_id, int(level)])
    with open(root / "trainLabels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["image", "level"]] + rows)
    counts = np.bincount([r[1] for r in rows], minlength=5)
    return {
        "root": str(root),
        "patients": n_patients,
        "images": len(rows),
        "level_counts": {k: int(c) for k, c in enumerate(counts)},
        "dr_fraction": float(1 - counts[0] / len(rows)),
    }
