# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Axial CT phantom in Hounsfield units, shared by the CT demo datasets (DeepLesion, COVID-19 CT).

A :class:`BodyPhantom` is one synthetic patient: an elliptical trunk with subcutaneous fat, body wall, spine and
ribs, lungs with vessels that run along the body axis, mediastinum and heart, liver, spleen, kidneys, bowel loops,
pelvic bones and bladder. Every organ's extent is a smooth function of the body position ``t`` in [0, 1]
(0 = lung apex, ~0.42 = lung bases, ~0.45-0.75 = abdomen, 1 = pelvic floor), so adjacent slices of one patient
agree and a lesion drawn over several slices shows the same 3D context a real series has.

Tissue values (HU, mean and texture standard deviation) are typical contrast-enhanced (portal venous) values:
air -1000, lung -860, fat -100, muscle 45, soft tissue 40, liver 60, spleen 50, kidney 150, aorta 130, bone
marrow 250, cortical bone 800, bladder 8. Quantum noise is spatially correlated Gaussian noise (default 12 HU).

The CT writers live in :mod:`monai_ext.demo.deeplesion` and :mod:`monai_ext.demo.covid_ct`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["TISSUES", "BodyPhantom", "tissue_code", "correlated_noise", "hu_to_uint16", "window_to_uint8"]

#: tissue name -> (organ-map code, mean HU, texture standard deviation in HU).
TISSUES: dict[str, tuple[int, float, float]] = {
    "air": (0, -1000.0, 5.0),
    "subcutaneous_fat": (1, -100.0, 12.0),
    "muscle": (2, 45.0, 10.0),
    "visceral_fat": (3, -95.0, 15.0),
    "lung_right": (4, -860.0, 30.0),  # patient right = image left (radiological display)
    "lung_left": (5, -860.0, 30.0),
    "heart": (6, 45.0, 8.0),
    "mediastinal_fat": (7, -90.0, 12.0),
    "aorta": (8, 130.0, 8.0),
    "liver": (9, 60.0, 8.0),
    "spleen": (10, 50.0, 8.0),
    "kidney": (11, 150.0, 12.0),
    "bone_cortex": (12, 800.0, 80.0),
    "bone_marrow": (13, 250.0, 50.0),
    "bowel": (14, 35.0, 12.0),
    "bowel_gas": (15, -950.0, 20.0),
    "bladder": (16, 8.0, 6.0),
    "csf": (17, 10.0, 6.0),
    "trachea": (18, -1000.0, 5.0),
}

_CODE = {name: spec[0] for name, spec in TISSUES.items()}
_MEAN = np.array([spec[1] for spec in sorted(TISSUES.values())], dtype=np.float32)
_SD = np.array([spec[2] for spec in sorted(TISSUES.values())], dtype=np.float32)


def correlated_noise(rng: np.random.Generator, shape: tuple[int, ...], sd: float, sigma: float = 0.7) -> np.ndarray:
    """Gaussian noise of standard deviation ``sd`` smoothed by a Gaussian of ``sigma`` pixels (CT-like grain)."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return noise * np.float32(sd / max(float(noise.std()), 1e-6))


def hu_to_uint16(hu: np.ndarray) -> np.ndarray:
    """DeepLesion storage: ``round(HU) + 32768`` as uint16 (HU clipped to [-32768, 32767])."""
    return (np.clip(np.rint(hu), -32768, 32767).astype(np.int32) + 32768).astype(np.uint16)


def window_to_uint8(hu: np.ndarray, low: float = -1250.0, high: float = 250.0) -> np.ndarray:
    """Window HU to ``[low, high]`` and rescale to integers in [0, 255] (Ma et al. Radiopaedia cases)."""
    scaled = (np.clip(hu, low, high) - low) / (high - low) * 255.0
    return np.rint(scaled).astype(np.uint8)


def _bump(t: float, start: float, end: float, power: float = 0.5) -> float:
    """Smooth organ extent profile: 0 outside ``[start, end]``, rising to 1 in the middle."""
    if t <= start or t >= end:
        return 0.0
    return float(np.sin(np.pi * (t - start) / (end - start)) ** power)


@dataclass
class _Slice:
    """One axial slice being painted: tissue codes ``m`` (``H W`` int8, changed in place), body position ``t``, and
    the trunk outline at ``t`` (centre ``cx, cy`` and semi-axes ``a, b`` in pixels)."""

    m: np.ndarray
    t: float
    cx: float
    cy: float
    a: float
    b: float

    def paint(self, name, ecx, ecy, ea, eb, angle=0.0, within=None, keep=()) -> None:
        """Set the pixels of an ellipse to tissue ``name`` (only inside ``within``, never over ``keep``)."""
        m, n = self.m, self.m.shape[0]
        if ea <= 0.5 or eb <= 0.5:
            return
        r = max(ea, eb) + 1
        y0, y1 = max(int(ecy - r), 0), min(int(ecy + r) + 2, n)
        x0, x1 = max(int(ecx - r), 0), min(int(ecx + r) + 2, n)
        if y0 >= y1 or x0 >= x1:
            return
        yy, xx = np.arange(y0, y1, dtype=np.float32)[:, None], np.arange(x0, x1, dtype=np.float32)[None, :]
        c, s = np.cos(angle), np.sin(angle)
        u, v = (xx - ecx) * c + (yy - ecy) * s, -(xx - ecx) * s + (yy - ecy) * c
        mask = (u / ea) ** 2 + (v / eb) ** 2 <= 1.0
        sub = m[y0:y1, x0:x1]
        if within is not None:
            mask &= within[y0:y1, x0:x1]
        for code in keep:
            mask &= sub != _CODE[code]
        sub[mask] = _CODE[name]


def _paint_body_wall(sl: _Slice, fat_scale: float) -> tuple[float, float]:
    """Subcutaneous fat, muscle wall and (abdomen) visceral fat; returns the inner semi-axes ``(ai, bi)``."""
    t, cx, cy, a, b = sl.t, sl.cx, sl.cy, sl.a, sl.b
    sl.paint("subcutaneous_fat", cx, cy, a, b)
    fat = 0.05 * fat_scale * (1.0 + 0.5 * _bump(t, 0.45, 1.1, 1.0))
    sl.paint("muscle", cx, cy, a * (1 - fat), b * (1 - fat * 1.2))
    ai, bi = a * (1 - fat - 0.07), b * (1 - fat * 1.2 - 0.09)
    if t >= 0.4:
        sl.paint("visceral_fat", cx, cy - 0.04 * b, ai, bi * 0.9)
    return ai, bi


def _paint_ribs(sl: _Slice, ai: float, bi: float, rib_phase: float) -> None:
    """Ribs: small bony ellipses on the inner wall, alternating in and out of plane along the body axis."""
    t, cx, cy, n = sl.t, sl.cx, sl.cy, sl.m.shape[0]
    if t < 0.55:
        for k in range(14):
            ang = np.pi * (0.1 + 0.8 * (k % 7) / 6.0) + (np.pi if k >= 7 else 0.0)
            if np.sin(2 * np.pi * 9 * t + rib_phase + k) > -0.2:
                rx, ry = cx + 0.9 * ai * np.cos(ang), cy + 0.88 * bi * np.sin(ang)
                sl.paint("bone_cortex", rx, ry, 0.025 * n, 0.012 * n, ang + np.pi / 2)


def _paint_chest_and_upper_abdomen(sl: _Slice, p: dict) -> None:
    """Mediastinum, trachea and heart; liver, spleen and kidneys (patient right = image left)."""
    t, cx, cy, a, b = sl.t, sl.cx, sl.cy, sl.a, sl.b
    if t < 0.42:
        sl.paint("mediastinal_fat", cx, cy - 0.1 * b, 0.22 * a, 0.62 * b)
        if t < 0.16:
            sl.paint("trachea", cx, cy - 0.2 * b, 0.05 * a, 0.07 * b)
        hs = _bump(t, 0.12, 0.42, 0.7) * p["heart"]
        sl.paint("heart", cx + 0.08 * a, cy - 0.18 * b, 0.27 * a * hs, 0.36 * b * hs, 0.3)
    ls = _bump(t, 0.3, 0.64, 0.6) * p["liver"]
    sl.paint("liver", cx - 0.33 * a, cy - 0.02 * b, 0.5 * a * ls, 0.62 * b * ls, -0.25)
    ss = _bump(t, 0.37, 0.56, 0.6)
    sl.paint("spleen", cx + 0.52 * a, cy + 0.25 * b, 0.17 * a * ss, 0.3 * b * ss, 0.6)
    ks = _bump(t, 0.49, 0.69, 0.6)
    for side in (-1, 1):
        sl.paint("kidney", cx + side * 0.38 * a, cy + 0.42 * b, 0.13 * a * ks, 0.2 * b * ks, side * 0.5)


def _paint_bowel(sl: _Slice, bowel: np.ndarray, ai: float, bi: float, cavity: np.ndarray) -> None:
    """Bowel loops (some with gas) inside the abdominal ``cavity``; ``bowel`` as :attr:`BodyPhantom.bowel`."""
    t, cx, cy, a, b = sl.t, sl.cx, sl.cy, sl.a, sl.b
    for u, v, r, t0, t1, gas in bowel:
        if t0 < t < t1:
            rr = r * _bump(t, t0, t1, 0.5)
            bx, by = cx + u * ai, cy - 0.04 * b + v * bi
            sl.paint("bowel", bx, by, rr * a, rr * a, within=cavity)
            if gas:
                sl.paint("bowel_gas", bx, by - 0.3 * rr * a, 0.5 * rr * a, 0.35 * rr * a, within=cavity)


def _paint_pelvis(sl: _Slice) -> None:
    """Bladder and pelvic bones (cortex around marrow)."""
    t, cx, cy, a, b = sl.t, sl.cx, sl.cy, sl.a, sl.b
    bl = _bump(t, 0.84, 1.1, 0.6)
    sl.paint("bladder", cx, cy - 0.12 * b, 0.28 * a * bl, 0.3 * b * bl)
    ps = _bump(t, 0.72, 1.3, 0.5)
    for side in (-1, 1):
        sl.paint("bone_cortex", cx + side * 0.58 * a, cy + 0.15 * b, 0.16 * a * ps, 0.42 * b * ps, side * 0.5)
        sl.paint("bone_marrow", cx + side * 0.58 * a, cy + 0.15 * b, 0.11 * a * ps, 0.36 * b * ps, side * 0.5)


def _paint_lungs(sl: _Slice, lung_scale: float) -> None:
    """Lungs, drawn over the liver domes (which pushes the bases posteriorly), never over heart or ribs."""
    t, cx, cy, a, b = sl.t, sl.cx, sl.cy, sl.a, sl.b
    for side, name, end in ((-1, "lung_right", 0.42), (1, "lung_left", 0.45)):
        s = (_bump(t, -0.02, end * 2 - 0.3, 0.45) if t < end else 0.0) * lung_scale
        if t > 0.3:
            s *= max(0.0, 1.0 - (t - 0.3) / (end - 0.3)) ** 0.5
        ly = cy - 0.05 * b + 0.3 * b * max(0.0, (t - 0.3) / 0.15)
        sl.paint(name, cx + side * 0.46 * a, ly, 0.36 * a * s, 0.64 * b * s, side * 0.12, keep=("heart", "bone_cortex"))


def _paint_spine_and_aorta(sl: _Slice) -> None:
    """Spine (vertebral body, canal, posterior elements) and the aorta in front-left of it."""
    t, cx, cy, a, b = sl.t, sl.cx, sl.cy, sl.a, sl.b
    vy, rv = cy + 0.58 * b, 0.14 * b * (1.0 + 0.3 * _bump(t, 0.75, 1.3, 1.0))
    sl.paint("bone_cortex", cx, vy, rv, rv)
    sl.paint("bone_marrow", cx, vy, rv * 0.78, rv * 0.78)
    sl.paint("bone_cortex", cx, vy + 1.6 * rv, 0.8 * rv, 0.45 * rv)
    sl.paint("csf", cx, vy + 1.25 * rv, 0.42 * rv, 0.38 * rv)
    if t < 0.78:
        sl.paint("aorta", cx + 0.12 * a, vy - 1.55 * rv, 0.075 * b, 0.075 * b)


@dataclass(frozen=True)
class BodyPhantom:
    """One synthetic patient; :meth:`render` draws its axial slice at body position ``t``.

    Attributes:
        size: slice height and width in pixels.
        params: per-patient shape factors (body width/height, fat, organ scales, centre shift), all near 1.
        vessels: ``V x 5`` lung vessels ``(u, v, du, dv, side)``: position in the unit disc of a lung at ``t = 0``
            and drift per unit ``t``; ``side`` 0 = right lung, 1 = left lung.
        bowel: ``L x 6`` bowel loops ``(u, v, r, t0, t1, gas)`` in units of the abdominal cavity.
    """

    size: int
    params: dict
    vessels: np.ndarray
    bowel: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator, size: int) -> BodyPhantom:
        """Draw a patient; ``size`` is the slice side in pixels (e.g. 128-192)."""
        params = {
            "body_w": rng.uniform(0.86, 1.02),
            "body_h": rng.uniform(0.85, 1.05),
            "fat": rng.uniform(0.5, 1.6),
            "lung": rng.uniform(0.9, 1.05),
            "liver": rng.uniform(0.85, 1.1),
            "heart": rng.uniform(0.9, 1.1),
            "dx": rng.uniform(-0.02, 0.02),
            "dy": rng.uniform(-0.02, 0.02),
            "rib_phase": rng.uniform(0, 2 * np.pi),
        }
        n_vessels = max(8, int(70 * (size / 160) ** 2))  # same vessel density whatever the image size
        r = np.sqrt(rng.uniform(0.0, 0.85, n_vessels))
        phi = rng.uniform(0, 2 * np.pi, n_vessels)
        vessels = np.stack(
            [
                r * np.cos(phi),
                r * np.sin(phi),
                rng.normal(0, 0.6, n_vessels),
                rng.normal(0, 0.6, n_vessels),
                rng.integers(0, 2, n_vessels),
            ],
            axis=1,
        )
        n_loops = 30
        t0 = rng.uniform(0.42, 0.92, n_loops)
        bowel = np.stack(
            [
                rng.uniform(-0.7, 0.7, n_loops),
                rng.uniform(-0.6, 0.3, n_loops),
                rng.uniform(0.08, 0.16, n_loops),
                t0,
                t0 + rng.uniform(0.06, 0.18, n_loops),
                rng.random(n_loops) < 0.35,
            ],
            axis=1,
        )
        return cls(size=size, params=params, vessels=vessels, bowel=bowel)

    def geometry(self) -> dict[str, float]:
        """Body centre ``(cx, cy)`` and semi-axes ``(a, b)`` in pixels (before the per-``t`` shape changes)."""
        s, p = float(self.size), self.params
        return {
            "cx": s * (0.5 + p["dx"]),
            "cy": s * (0.52 + p["dy"]),
            "a": 0.42 * s * p["body_w"],
            "b": 0.3 * s * p["body_h"],
        }

    def organ_map(self, t: float) -> np.ndarray:
        """Tissue codes (see :data:`TISSUES`) of the axial slice at body position ``t``, shape ``H W`` (int8)."""
        n = self.size
        g, p = self.geometry(), self.params
        a = g["a"] * (1.0 + 0.08 * _bump(t, 0.7, 1.2, 1.0))  # wider pelvis
        b = g["b"] * (1.0 + 0.1 * _bump(t, 0.4, 0.9, 1.0))  # rounder abdomen
        sl = _Slice(np.zeros((n, n), dtype=np.int8), t, g["cx"], g["cy"], a, b)
        ai, bi = _paint_body_wall(sl, p["fat"])
        cavity = sl.m == _CODE["visceral_fat"]
        _paint_ribs(sl, ai, bi, p["rib_phase"])
        _paint_chest_and_upper_abdomen(sl, p)
        _paint_bowel(sl, self.bowel, ai, bi, cavity)
        _paint_pelvis(sl)
        _paint_lungs(sl, p["lung"])
        _paint_spine_and_aorta(sl)
        return sl.m

    def render(
        self,
        t: float,
        rng: np.random.Generator,
        noise_hu: float = 12.0,
        overlay: Callable[[np.ndarray, np.ndarray], None] | None = None,
        organs: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slice at body position ``t`` in HU.

        Args:
            t: body position in [0, 1] (0 = lung apex, 1 = pelvic floor).
            rng: generator for tissue texture and noise.
            noise_hu: standard deviation of the correlated quantum noise in HU. Default 12.
            overlay: optional ``overlay(hu, organs)`` that edits the noise-free HU image ``H W`` in place (draws
                lesions) before partial-volume blurring and noise, so lesions carry the same grain as the anatomy.
            organs: ``organ_map(t)`` if the caller already has it (saves recomputing it).

        Returns:
            ``(hu, organs)``: float32 HU image ``H W`` (not rounded, clipped to the scanner range [-1024, 3071])
            and the int8 tissue-code map of :meth:`organ_map`.
        """
        organs = self.organ_map(t) if organs is None else organs
        n = self.size
        hu = _MEAN[organs] + _SD[organs] * correlated_noise(rng, (n, n), 1.0, 1.0)
        # lung vessels: tubes along the body axis, seen as bright dots that drift slowly from slice to slice
        g = self.geometry()
        u, v, du, dv, side = self.vessels.T
        px = g["cx"] + np.where(side == 0, -0.46, 0.46) * g["a"] + (u + du * t) * 0.33 * g["a"]
        py = g["cy"] - 0.05 * g["b"] + (v + dv * t) * 0.6 * g["b"]
        ix, iy = np.rint(px).astype(int), np.rint(py).astype(int)
        inside = (ix >= 0) & (ix < n) & (iy >= 0) & (iy < n)
        dots = np.zeros((n, n), dtype=np.float32)
        np.add.at(dots, (iy[inside], ix[inside]), 1.0)
        lung = (organs == _CODE["lung_right"]) | (organs == _CODE["lung_left"])
        hu += np.where(lung, ndimage.gaussian_filter(dots, 0.8) * 3000.0, 0.0).astype(np.float32)
        if overlay is not None:
            overlay(hu, organs)
        hu = ndimage.gaussian_filter(hu, 0.5)  # partial volume at organ borders
        return np.clip(hu + correlated_noise(rng, (n, n), noise_hu), -1024.0, 3071.0), organs


def tissue_code(name: str) -> int:
    """Organ-map code of tissue ``name`` (a key of :data:`TISSUES`).

    Raises:
        ValueError: unknown tissue name.
    """
    if name not in _CODE:
        raise ValueError(f"unknown tissue {name!r}; choose from {sorted(_CODE)}.")
    return _CODE[name]
