# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo DeepLesion dataset in the real layout: ``DL_info.csv`` plus 16-bit PNG slices (HU = value - 32768).

Each series is a body phantom (:class:`monai_ext.demo.ct.BodyPhantom`) scanned from lung apex to pelvis; the
folder ``Images_png/<pppppp_ss_ss>/`` holds only the key slices and a few neighbours (``Slice_range``), as the real
release does. Lesions are 3D ellipsoids with the HU and host organ of their coarse type (lung nodule in lung,
hypodense liver lesion, enlarged mediastinal / abdominal / pelvic node in fat, renal cyst, lytic or sclerotic bone
lesion, subcutaneous soft-tissue mass) and span the adjacent slices their size and the slice interval imply.

Diverse quality as in the real data, each kind recorded per lesion in ``demo_lesions.csv`` (not part of the real
layout; column ``annotation``: ``box`` / ``unannotated`` / ``loose_box`` / ``noisy``, column ``appearance``:
``typical`` / ``tiny`` / ``low_contrast``):

- incomplete annotation: DeepLesion marks only the lesions radiologists bookmarked; about 50 % of its lesions are
  reported to be unannotated (Bai & Xia, "An end-to-end framework for universal lesion detection with missing
  annotations", arXiv 2303.15024, 2023, quoting the rate from Yan et al.'s LENS / MULAN work; Cai et al., "Lesion
  Harvester", TMI 2021). ``unannotated_rate`` (default 0.5) is the target fraction of training-split lesions drawn on
  a key slice without a ``DL_info.csv`` row; the val and test splits stay complete, so sensitivity is measured
  against every drawn lesion;
- loose boxes: ``Bounding_boxes`` are derived from the RECIST diameters, not from the lesion outline, and are loose
  for many lesions; ``loose_box_rate`` (default 0.3, our choice; no published rate) of the reliable training rows
  get a box enlarged 1.3-1.8 times and shifted, still containing the whole drawn lesion;
- tiny and low-contrast lesions are under-represented: ``subtle_rate`` (default 0.1, our choice) of all lesions are
  drawn either tiny (0.4-0.7 times the type's smallest diameter, at least 2.5 px) or at 30 % of their contrast
  to the host tissue;
- ``Possibly_noisy`` = 1 marks rows whose measurement is off (scaled and shifted), rate ``noisy_rate``.

Every drawn lesion, annotated or not, is listed in ``demo_lesions.csv`` with its true geometry and HU.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from monai_ext.demo.ct import TISSUES, BodyPhantom, hu_to_uint16, tissue_code

__all__ = ["DL_INFO_HEADER", "DEMO_LESIONS_HEADER", "LESION_SPECS", "CLEAN_DL_INFO", "write_deeplesion_demo"]

#: the demo's complete annotation (not part of the real layout): every drawn key-image lesion with its RECIST
#: measurement and padded box, none unannotated, loose or ``Possibly_noisy``; for the clean-label learnability check.
CLEAN_DL_INFO = "DL_info_clean.csv"

#: ``DL_info.csv`` header, verbatim from the NIH release.
DL_INFO_HEADER = (
    "File_name,Patient_index,Study_index,Series_ID,Key_slice_index,Measurement_coordinates,Bounding_boxes,"
    "Lesion_diameters_Pixel_,Normalized_lesion_location,Coarse_lesion_type,Possibly_noisy,Slice_range,"
    "Spacing_mm_px_,Image_size,DICOM_windows,Patient_gender,Patient_age,Train_Val_Test"
).split(",")

#: header of ``demo_lesions.csv``: one row per drawn lesion; pixel coordinates 0-based, ``hu`` = intended HU.
DEMO_LESIONS_HEADER = [
    "File_name",
    "lesion",
    "coarse_type",
    "annotated",
    "possibly_noisy",
    "center_x",
    "center_y",
    "center_slice",
    "radius_long_px",
    "radius_short_px",
    "radius_slices",
    "angle_deg",
    "hu",
    "host",
    "annotation",
    "appearance",
]

#: coarse type -> (host tissues, body position range t, HU range(s), long diameter range mm, DICOM window,
#: weight). Weights are the approximate type counts of the 9,816 typed val/test lesions (Yan et al. 2018), quoted from
#: memory and not checked against DL_info.csv: they set plausible proportions, not exact ones.
LESION_SPECS: dict[int, dict[str, Any]] = {
    1: {
        "host": ("bone_marrow",),
        "t": (0.05, 0.98),
        "hu": ((20, 70), (850, 1150)),
        "mm": (8, 20),
        "window": (-450, 1050),
        "weight": 258,
    },
    2: {
        "host": ("visceral_fat",),
        "t": (0.46, 0.8),
        "hu": ((30, 55),),
        "mm": (10, 40),
        "window": (-175, 275),
        "weight": 2166,
    },
    3: {
        "host": ("mediastinal_fat",),
        "t": (0.08, 0.36),
        "hu": ((30, 50),),
        "mm": (10, 30),
        "window": (-160, 240),
        "weight": 1638,
    },
    4: {"host": ("liver",), "t": (0.36, 0.58), "hu": ((5, 35),), "mm": (8, 40), "window": (-175, 275), "weight": 1318},
    5: {
        "host": ("lung_right", "lung_left"),
        "t": (0.05, 0.38),
        "hu": ((-60, 40),),
        "mm": (6, 30),
        "window": (-1350, 150),
        "weight": 2426,
    },
    6: {"host": ("kidney",), "t": (0.53, 0.65), "hu": ((0, 25),), "mm": (8, 28), "window": (-175, 275), "weight": 490},
    7: {
        "host": ("subcutaneous_fat",),
        "t": (0.1, 0.95),
        "hu": ((30, 55),),
        "mm": (10, 35),
        "window": (-175, 275),
        "weight": 677,
    },
    8: {
        "host": ("visceral_fat",),
        "t": (0.8, 0.97),
        "hu": ((30, 55),),
        "mm": (10, 40),
        "window": (-175, 275),
        "weight": 843,
    },
}

_FIG = "{:g}"


def _join(values) -> str:
    return ", ".join(_FIG.format(float(v)) for v in values)


def _place(
    rng, phantom, t, ctype, px_mm, z_mm, taken, appearance: str = "typical", contrast: float = 1.0
) -> dict | None:
    """Draw a lesion of ``ctype`` centred in its host tissue on the slice at ``t``; ``None`` if it does not fit.
    ``appearance`` ``"tiny"`` shrinks it, ``"low_contrast"`` keeps 30 % of its contrast to the host tissue;
    ``contrast`` scales every lesion's HU difference to its host first (1 = the type's HU range)."""
    spec = LESION_SPECS[ctype]
    organs = phantom.organ_map(t)
    host = np.isin(organs, [tissue_code(h) for h in spec["host"]])
    if not host.any():
        return None
    depth = ndimage.distance_transform_edt(host)
    long_mm = math.exp(rng.uniform(math.log(spec["mm"][0]), math.log(spec["mm"][1])))
    if appearance == "tiny":
        long_mm = max(rng.uniform(0.4, 0.7) * spec["mm"][0], 2.5 * px_mm)
    r_long = long_mm / 2 / px_mm
    r_short = r_long * rng.uniform(0.6, 0.95)
    need = {7: 0.5, 1: 1.0}.get(ctype, 0.8 * r_short)  # subcutaneous / bone lesions may bulge out of thin hosts
    ys, xs = np.nonzero(depth >= need)
    if ys.size == 0:
        return None
    for _ in range(8):
        k = rng.integers(ys.size)
        cx, cy = xs[k] + rng.uniform(-0.5, 0.5), ys[k] + rng.uniform(-0.5, 0.5)
        if all(math.hypot(cx - o["cx"], cy - o["cy"]) > r_long + o["r_long"] + 3 for o in taken):
            break
    else:
        return None
    hu_range = spec["hu"][rng.integers(len(spec["hu"]))]
    hu = float(rng.uniform(*hu_range))
    host_hu = float(np.mean([TISSUES[h][1] for h in spec["host"]]))
    hu = host_hu + contrast * (hu - host_hu)
    if appearance == "low_contrast":
        hu = host_hu + 0.3 * (hu - host_hu)
    return {
        "type": ctype,
        "cx": cx,
        "cy": cy,
        "r_long": r_long,
        "r_short": r_short,
        "r_z": long_mm / 2 * rng.uniform(0.7, 1.1) / z_mm,
        "angle": rng.uniform(0, np.pi),
        "hu": hu,
        "host": "/".join(spec["host"]),
        "appearance": appearance,
    }


def _draw(hu: np.ndarray, lesion: dict, k: int, rng: np.random.Generator) -> None:
    """Blend the cross-section of ``lesion`` at slice ``k`` into the noise-free ``hu`` (1-pixel soft edge)."""
    dz = (k - lesion["zc"]) / lesion["r_z"]
    if abs(dz) >= 1:
        return
    s = math.sqrt(1 - dz * dz)
    a, b = lesion["r_long"] * s, lesion["r_short"] * s
    n = hu.shape[0]
    y0, y1 = max(int(lesion["cy"] - a) - 2, 0), min(int(lesion["cy"] + a) + 3, n)
    x0, x1 = max(int(lesion["cx"] - a) - 2, 0), min(int(lesion["cx"] + a) + 3, n)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    c, sn = math.cos(lesion["angle"]), math.sin(lesion["angle"])
    u, v = (xx - lesion["cx"]) * c + (yy - lesion["cy"]) * sn, -(xx - lesion["cx"]) * sn + (yy - lesion["cy"]) * c
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    w = np.clip((1.0 - rho) * min(a, b) + 0.5, 0.0, 1.0)
    texture = rng.normal(0.0, 6.0, w.shape)
    sub = hu[y0:y1, x0:x1]
    sub[...] = sub * (1 - w) + (lesion["hu"] + texture) * w


def _recist(rng, lesion: dict, k: int, noisy: bool) -> np.ndarray:
    """RECIST long and short axes (8 values, 0-based pixels) of ``lesion`` as measured on slice ``k``."""
    dz = (k - lesion["zc"]) / lesion["r_z"]
    s = math.sqrt(max(1 - dz * dz, 0.0))
    a, b = lesion["r_long"] * s, lesion["r_short"] * s
    cx, cy = lesion["cx"], lesion["cy"]
    if noisy:  # a measurement that is clearly off: wrong size and shifted
        f = rng.choice([rng.uniform(0.45, 0.7), rng.uniform(1.4, 1.8)])
        a, b = a * f, b * f
        cx, cy = cx + rng.uniform(-1, 1) * lesion["r_long"], cy + rng.uniform(-1, 1) * lesion["r_long"]
    c, sn = math.cos(lesion["angle"]), math.sin(lesion["angle"])
    pts = np.array([cx - a * c, cy - a * sn, cx + a * c, cy + a * sn, cx + b * sn, cy - b * c, cx - b * sn, cy + b * c])
    return pts + rng.normal(0.0, 0.3, 8)


@dataclass(frozen=True)
class _Options:
    """Options of one :func:`write_deeplesion_demo` call and the lesion-type distribution drawn from."""

    image_size: int
    unannotated_rate: float
    noisy_rate: float
    multi_lesion_rate: float
    noise_hu: float
    loose_box_rate: float
    subtle_rate: float
    lesion_contrast: float
    types: np.ndarray  # coarse lesion types, sorted
    weights: np.ndarray  # their probabilities (LESION_SPECS weights, normalised)

    @property
    def pad(self) -> float:
        """Bounding-box padding in pixels: the release pads 5 px at 512."""
        return 5.0 * self.image_size / 512.0


@dataclass(frozen=True)
class _Series:
    """One CT series of one patient's study: identifiers, patient fields and scan geometry."""

    pid: int
    study: int
    series: int
    split: int  # Train_Val_Test code 1/2/3
    gender: str
    age: str
    px_mm: float
    z_mm: float
    length: float  # scanned body length in mm (lung apex to pelvic floor)

    @property
    def folder(self) -> str:
        return f"{self.pid:06d}_{self.study:02d}_{self.series:02d}"

    @property
    def n_total(self) -> int:
        return int(self.length / self.z_mm) + 1

    def t_of(self, k: int) -> float:
        """Body position of 1-based slice ``k``."""
        return (k - 1) * self.z_mm / self.length


def _check_options(
    unannotated_rate: float,
    noisy_rate: float,
    multi_lesion_rate: float,
    image_size: int,
    split_fractions: tuple[float, float, float],
    loose_box_rate: float = 0.0,
    subtle_rate: float = 0.0,
) -> None:
    """Raise ``ValueError`` naming the first option of :func:`write_deeplesion_demo` that is out of range."""
    for name, rate in (
        ("noisy_rate", noisy_rate),
        ("multi_lesion_rate", multi_lesion_rate),
        ("loose_box_rate", loose_box_rate),
        ("subtle_rate", subtle_rate),
    ):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {rate}.")
    if not 0.0 <= unannotated_rate <= 0.9:
        raise ValueError(
            f"unannotated_rate must lie in [0, 0.9] (every key image keeps at least one row), got {unannotated_rate}."
        )
    if image_size < 64:
        raise ValueError(f"image_size must be >= 64, got {image_size}.")
    if len(split_fractions) != 3 or abs(sum(split_fractions) - 1.0) > 1e-6 or min(split_fractions) < 0:
        raise ValueError(f"split_fractions must be 3 non-negative numbers summing to 1, got {split_fractions}.")


def _split_codes(rng: np.random.Generator, n_patients: int, split_fractions: tuple[float, float, float]) -> np.ndarray:
    """``Train_Val_Test`` code (1 train, 2 val, 3 test) of each patient, val and test at least one patient each."""
    n_val = max(1, int(round(split_fractions[1] * n_patients)))
    n_test = max(1, int(round(split_fractions[2] * n_patients)))
    codes = np.array([2] * n_val + [3] * n_test + [1] * (n_patients - n_val - n_test))
    return codes[rng.permutation(n_patients)]


def _appearance(rng: np.random.Generator, opt: _Options) -> str:
    """``"typical"``, or with probability ``subtle_rate`` ``"tiny"`` or ``"low_contrast"`` (equally likely)."""
    if rng.random() >= opt.subtle_rate:
        return "typical"
    return "tiny" if rng.random() < 0.5 else "low_contrast"


def _place_key_lesions(
    rng: np.random.Generator, phantom: BodyPhantom, ser: _Series, opt: _Options
) -> tuple[list[tuple[int, list[dict]]], list[dict]]:
    """Choose 1-3 key slices and place their lesions (a second annotated one, and in training an unannotated one,
    with the option rates); returns ``([(key slice, its lesions)], every lesion of the series)``."""
    keys: list[tuple[int, list[dict]]] = []
    lesions: list[dict] = []
    n_keys = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    for _ in range(40):
        if len(keys) == n_keys:
            break
        ctype = int(rng.choice(opt.types, p=opt.weights))
        if keys:  # further key images lie a few slices away in the same series
            k = keys[-1][0] + int(rng.choice([-1, 1]) * rng.integers(2, 7))
        else:
            k = int(round(rng.uniform(*LESION_SPECS[ctype]["t"]) * ser.length / ser.z_mm)) + 1
        if not 1 <= k <= ser.n_total or any(k == kk for kk, _ in keys):
            continue
        t = ser.t_of(k)
        on_slice = [les for les in lesions if abs(les["zc"] - k) < les["r_z"]]
        first = _place(
            rng, phantom, t, ctype, ser.px_mm, ser.z_mm, on_slice, _appearance(rng, opt), opt.lesion_contrast
        )
        if first is None:
            continue
        first["annotated"] = True
        found = [first]
        wanted = [True] * int(rng.random() < opt.multi_lesion_rate)
        if ser.split == 1:  # u unannotated per a annotated lesions: u / (a + u) = unannotated_rate on average
            mean = (len(wanted) + 1) * opt.unannotated_rate / (1.0 - opt.unannotated_rate)
            wanted += [False] * (int(mean) + int(rng.random() < mean - int(mean)))
        for annotated in wanted:
            for _ in range(6):
                ctype = int(rng.choice(opt.types, p=opt.weights))
                other = _place(
                    rng,
                    phantom,
                    t,
                    ctype,
                    ser.px_mm,
                    ser.z_mm,
                    on_slice + found,
                    _appearance(rng, opt),
                    opt.lesion_contrast,
                )
                if other is not None:
                    other["annotated"] = annotated
                    found.append(other)
                    break
        for les in found:
            les["zc"] = k + rng.uniform(-0.4, 0.4) * min(les["r_z"], 1.0)
        lesions.extend(found)
        keys.append((k, found))
    return keys, lesions


def _write_slices(
    folder: Path, rng: np.random.Generator, phantom: BodyPhantom, ser: _Series, lesions: list[dict], lo: int, hi: int,
    noise_hu: float,
) -> int:  # fmt: skip
    """Render slices ``lo..hi`` of the series with its lesions into ``folder`` as 16-bit PNGs; returns the count."""
    folder.mkdir(exist_ok=True)
    for k in range(lo, hi + 1):

        def overlay(img, _organs, k=k, lesions=lesions):
            for les in lesions:
                _draw(img, les, k, rng)

        hu, _ = phantom.render(ser.t_of(k), rng, noise_hu, overlay=overlay)
        Image.fromarray(hu_to_uint16(hu)).save(folder / f"{k:03d}.png", compress_level=1)
    return len(range(lo, hi + 1))


def _truth_row(file_name: str, j: int, les: dict, noisy: bool, annotation: str) -> list:
    """``demo_lesions.csv`` row of lesion ``j`` of a key image (unformatted numbers)."""
    return [file_name, j, les["type"], int(les["annotated"]), int(noisy), les["cx"], les["cy"], les["zc"],
            les["r_long"], les["r_short"], les["r_z"], math.degrees(les["angle"]), les["hu"], les["host"],
            annotation, les["appearance"]]  # fmt: skip


def _extent(les: dict, k: int) -> tuple[float, float]:
    """Half-extents (x, y) in pixels of the cross-section of ``les`` on slice ``k``, its 1-pixel soft edge included."""
    dz = (k - les["zc"]) / les["r_z"]
    s = math.sqrt(max(1 - dz * dz, 0.0))
    a, b = les["r_long"] * s, les["r_short"] * s
    c, sn = math.cos(les["angle"]), math.sin(les["angle"])
    return math.hypot(a * c, b * sn) + 0.5, math.hypot(a * sn, b * c) + 0.5


def _loosen(rng: np.random.Generator, box: list[float], les: dict, k: int, size: int) -> list[float]:
    """A loose box: the union of ``box`` and the drawn lesion, enlarged 1.3-1.8 times and shifted so that it still
    contains that union (0-based pixels, clipped to the image)."""
    ex, ey = _extent(les, k)
    x0, y0 = min(box[0], les["cx"] - ex), min(box[1], les["cy"] - ey)
    x1, y1 = max(box[2], les["cx"] + ex), max(box[3], les["cy"] + ey)
    out = []
    for lo, hi in ((x0, x1), (y0, y1)):
        half, mid = (hi - lo) / 2, (hi + lo) / 2
        grown = half * rng.uniform(1.3, 1.8)
        mid += rng.uniform(-1.0, 1.0) * (grown - half)
        out.append((mid - grown, mid + grown))
    (ax, bx), (ay, by) = out
    return [max(ax, 0.0), max(ay, 0.0), min(bx, size - 1.0), min(by, size - 1.0)]


def _dl_info_row(
    rng: np.random.Generator, ser: _Series, opt: _Options, k: int, les: dict, noisy: bool, body_box: tuple,
    slice_range: tuple[int, int], window: list, loose: bool = False,
) -> list:  # fmt: skip
    """``DL_info.csv`` row of an annotated lesion on key slice ``k``: RECIST axes, padded box, diameters, location."""
    bx0, bx1, by0, by1 = body_box
    pts = _recist(rng, les, k, noisy)
    xs, ys = pts[0::2], pts[1::2]
    box = [
        max(xs.min() - opt.pad, 0.0),
        max(ys.min() - opt.pad, 0.0),
        min(xs.max() + opt.pad, opt.image_size - 1.0),
        min(ys.max() + opt.pad, opt.image_size - 1.0),
    ]
    if loose:
        box = _loosen(rng, box, les, k, opt.image_size)
    diam = sorted(
        [math.hypot(pts[2] - pts[0], pts[3] - pts[1]), math.hypot(pts[6] - pts[4], pts[7] - pts[5])], reverse=True
    )
    loc = np.clip([(les["cx"] - bx0) / (bx1 - bx0), (les["cy"] - by0) / (by1 - by0), ser.t_of(k)], 0, 1)
    return [f"{ser.folder}_{k:03d}.png", ser.pid, ser.study, ser.series, k, _join(pts + 1), _join(np.array(box) + 1),
            _join(diam), _join(loc), les["type"] if ser.split != 1 else -1, int(noisy),
            f"{slice_range[0]}, {slice_range[1]}", _join([ser.px_mm, ser.px_mm, ser.z_mm]),
            f"{opt.image_size}, {opt.image_size}", _join(window), ser.gender, ser.age, ser.split]  # fmt: skip


def _annotate_keys(
    rng: np.random.Generator, phantom: BodyPhantom, ser: _Series, opt: _Options, keys: list, lo: int, hi: int,
    rows: list, truth: list, clean_rows: list, clean_rng: np.random.Generator,
) -> None:  # fmt: skip
    """Append every key-image lesion to ``truth`` and ``clean_rows`` (boxed, never noisy or loose; its RECIST jitter
    from ``clean_rng``, so ``rng``'s draws are those without it) and the annotated ones to ``rows``
    (``Possibly_noisy`` drawn)."""
    for k, found in keys:
        body = np.nonzero(phantom.organ_map(ser.t_of(k)))
        body_box = (body[1].min(), body[1].max(), body[0].min(), body[0].max())
        file_name = f"{ser.folder}_{k:03d}.png"
        window = LESION_SPECS[found[0]["type"]]["window"]
        for j, les in enumerate(found):
            noisy = bool(les["annotated"] and rng.random() < opt.noisy_rate)
            loose = bool(les["annotated"] and not noisy and ser.split == 1 and rng.random() < opt.loose_box_rate)
            kind = "unannotated" if not les["annotated"] else "noisy" if noisy else "loose_box" if loose else "box"
            truth.append(_truth_row(file_name, j, les, noisy, kind))
            clean_rows.append(_dl_info_row(clean_rng, ser, opt, k, les, False, body_box, (lo, hi), window))
            if les["annotated"]:
                rows.append(_dl_info_row(rng, ser, opt, k, les, noisy, body_box, (lo, hi), window, loose))


def _write_dl_info(path: Path, rows: list) -> None:
    rows.sort(key=lambda r: r[0])  # stable: lesions of one image keep their order
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(DL_INFO_HEADER)
        writer.writerows(rows)


def _write_tables(root: Path, rows: list, truth: list, clean_rows: list) -> None:
    """Write ``DL_info.csv`` (sorted by file name), ``DL_info_clean.csv`` (every drawn key-image lesion boxed) and
    ``demo_lesions.csv`` (by file name and lesion)."""
    _write_dl_info(root / "DL_info.csv", rows)
    _write_dl_info(root / CLEAN_DL_INFO, clean_rows)
    truth.sort(key=lambda r: (r[0], r[1]))
    with open(root / "demo_lesions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(DEMO_LESIONS_HEADER)
        writer.writerows([r[:5] + [_FIG.format(v) for v in r[5:13]] + r[13:] for r in truth])


def _summary(root: Path, rows: list, truth: list, n_patients: int, n_series: int, n_slices: int) -> dict[str, Any]:
    """The writer's summary dict (see :func:`write_deeplesion_demo`)."""
    images = {}
    for r in rows:
        images.setdefault(r[0], r[-1])
    names = {1: "train", 2: "val", 3: "test"}
    return {
        "root": str(root),
        "patients": n_patients,
        "series": n_series,
        "key_images": len(images),
        "lesions": len(rows),
        "unannotated_lesions": sum(1 for r in truth if not r[3]),
        "unannotated_fraction_train": (
            sum(1 for r in truth if not r[3]) / max(1, sum(1 for r in truth if images.get(r[0], 0) == 1))
        ),
        "loose_boxes": sum(1 for r in truth if r[14] == "loose_box"),
        "subtle_lesions": sum(1 for r in truth if r[15] != "typical"),
        "possibly_noisy": sum(int(r[10]) for r in rows),
        "slices": n_slices,
        "images_per_split": {names[c]: sum(1 for v in images.values() if v == c) for c in names},
    }


def write_deeplesion_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 160,
    unannotated_rate: float = 0.5,
    noisy_rate: float = 0.04,
    multi_lesion_rate: float = 0.15,
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    noise_hu: float = 12.0,
    loose_box_rate: float = 0.3,
    subtle_rate: float = 0.1,
    lesion_contrast: float = 1.0,
) -> dict[str, Any]:
    """Write a demo DeepLesion dataset under ``root``.

    Layout (as the NIH release; ``demo_lesions.csv`` is the demo's ground truth)::

        root/DL_info.csv                       one row per annotated lesion, header DL_INFO_HEADER, sorted
        root/Images_png/000001_01_01/109.png   uint16 PNG, HU = value - 32768, image_size x image_size
        root/demo_lesions.csv                  every drawn lesion, annotated or not (DEMO_LESIONS_HEADER)
        root/DL_info_clean.csv                 the complete, exact annotation (CLEAN_DL_INFO): every drawn lesion

    CSV conventions follow the release: multi-value fields are quoted ``", "``-separated lists of 6 significant
    digits; ``Measurement_coordinates`` (RECIST long axis x1, y1, x2, y2 then short axis) and ``Bounding_boxes``
    (RECIST extent padded by ``5 * image_size / 512`` pixels, the release pads 5 px at 512) are **1-based**;
    ``Lesion_diameters_Pixel_`` are the axis lengths; ``Normalized_lesion_location`` is (x, y) relative to the body
    bounding box and z the body position (0 = lung apex, 1 = pelvic floor); ``Coarse_lesion_type`` is -1 in the
    training split and 1-8 in val/test; ``Slice_range`` is the first/last slice in the series folder (shared by
    its key images); ``Spacing_mm_px_`` is "x, y, z" mm with the pixel size scaled to the smaller image (real
    0.6-0.9 mm at 512 px); ``Train_Val_Test`` 1/2/3 is assigned per patient.

    Args:
        root: dataset folder (created), e.g. ``demo_data/deeplesion``.
        size: scale of the number of patients (1.0 = 24 patients, about 65 key images). Default 1.0.
        seed: seed of ``numpy.random.default_rng``. Default 0.
        image_size: slice side in pixels. Default 160.
        unannotated_rate: target fraction of the training-split lesions that are drawn without a ``DL_info.csv``
            row, in [0, 0.9]; per training key image with ``a`` annotated lesions, on average
            ``a * rate / (1 - rate)`` more lesions are drawn unannotated (fewer where they do not fit; the realised
            fraction is in the summary). Default 0.5 (see the module docstring). Val and test stay complete.
        noisy_rate: probability that a row is ``Possibly_noisy`` with a perturbed measurement. Default 0.04.
        multi_lesion_rate: probability that a key image has a second annotated lesion. Default 0.15.
        split_fractions: patient fractions of train / val / test. Default (0.7, 0.15, 0.15).
        noise_hu: CT noise standard deviation in HU. Default 12.
        loose_box_rate: probability that a reliable training row gets a loose box. Default 0.3.
        subtle_rate: probability that a lesion (any split) is drawn tiny or low-contrast. Default 0.1.
        lesion_contrast: factor on every lesion's HU difference to its host tissue (> 0). Default 1 (the types' HU
            ranges). With 1 many lesions look like the phantom's normal round structures (a lymph node like a bowel
            loop, a liver lesion 25-55 HU below the liver), which a small detector trained from scratch on a few
            hundred slices does not learn on a CPU; the detection study (``scripts.bench.deeplesion_study``) uses a
            larger factor so that a CPU-sized study has a detector to compare sampling strategies on.

    Returns:
        summary dict: ``root``, ``patients``, ``series``, ``key_images``, ``lesions`` (rows of ``DL_info.csv``),
        ``unannotated_lesions``, ``unannotated_fraction_train`` (of the training lesions), ``loose_boxes``,
        ``subtle_lesions``, ``possibly_noisy``, ``slices`` (PNG files) and ``images_per_split``.

    Raises:
        ValueError: a rate outside [0, 1] (``unannotated_rate`` outside [0, 0.9]), ``image_size`` < 64, split
            fractions that do not sum to 1, or ``lesion_contrast`` <= 0.
    """
    _check_options(
        unannotated_rate, noisy_rate, multi_lesion_rate, image_size, split_fractions, loose_box_rate, subtle_rate
    )
    if not lesion_contrast > 0:
        raise ValueError(f"lesion_contrast must be > 0, got {lesion_contrast}.")
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "Images_png").mkdir(parents=True, exist_ok=True)

    n_patients = max(6, int(round(24 * size)))
    codes = _split_codes(rng, n_patients, split_fractions)
    types = np.array(sorted(LESION_SPECS))
    weights = np.array([LESION_SPECS[c]["weight"] for c in types], dtype=float)
    weights /= weights.sum()
    opt = _Options(
        image_size,
        unannotated_rate,
        noisy_rate,
        multi_lesion_rate,
        noise_hu,
        loose_box_rate,
        subtle_rate,
        float(lesion_contrast),
        types,
        weights,
    )

    rows, truth, clean_rows, n_series, n_slices = [], [], [], 0, 0
    clean_rng = np.random.default_rng([seed, 1])
    for pid in range(1, n_patients + 1):
        split = int(codes[pid - 1])
        gender = "F" if rng.random() < 0.46 else "M"
        age = "" if rng.random() < 0.03 else str(int(rng.integers(18, 90)))
        phantom = BodyPhantom.random(rng, image_size)
        for study in range(1, 1 + 1 + int(rng.random() < 0.35) + int(rng.random() < 0.1)):
            for series in range(1, 1 + 1 + int(rng.random() < 0.1)):
                px_mm = rng.uniform(0.6, 0.9) * 512.0 / image_size
                z_mm = float(rng.choice([1.25, 2.5, 5.0], p=[0.2, 0.3, 0.5]))
                length = 680.0 * rng.uniform(0.9, 1.1)
                ser = _Series(pid, study, series, split, gender, age, px_mm, z_mm, length)
                keys, lesions = _place_key_lesions(rng, phantom, ser, opt)
                if not keys:
                    continue
                n_series += 1
                ks = [k for k, _ in keys]
                lo = max(1, min(ks) - min(int(round(30 / z_mm)), 4) + int(rng.integers(0, 2)))
                hi = min(ser.n_total, max(ks) + min(int(round(30 / z_mm)), 4) - int(rng.integers(0, 2)))
                n_slices += _write_slices(
                    root / "Images_png" / ser.folder, rng, phantom, ser, lesions, lo, hi, noise_hu
                )
                _annotate_keys(rng, phantom, ser, opt, keys, lo, hi, rows, truth, clean_rows, clean_rng)

    _write_tables(root, rows, truth, clean_rows)
    return _summary(root, rows, truth, n_patients, n_series, n_slices)
