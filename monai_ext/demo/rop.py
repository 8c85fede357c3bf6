# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo ROP (retinopathy of prematurity) plus-disease dataset with three annotators, in the project's ROP layout.

Images are 8-bit RGB RetCam-like fundus photographs: a dark frame around a circular field of view, orange-red
fundus with vignetting and choroidal texture, a pale optic disc (right of the fovea in right eyes, left in left
eyes) and arteries and veins drawn as branching curves. Plus disease is the dilation and tortuosity of the
posterior-pole vessels (ICROP 3rd edition, Chiang et al., Ophthalmology 2021): both grow continuously with a latent
severity, which is cut into normal / pre-plus / plus, so images near the cut points are genuinely ambiguous.

The latent severity follows the known risk factors: lower gestational age and birth weight, peaking near 36 weeks
postmenstrual age (both eyes of an exam correlated). Three readers label every image through their own confusion
matrix (a senior reader, a mid-career reader and a junior reader who over-calls pre-plus, in the spirit of the
i-ROP inter-expert studies, Kalpathy-Cramer et al., Ophthalmology 2016) and sometimes do not read an image. The
true labels are kept in ``demo_truth.csv`` (not part of the layout).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["LABELS_HEADER", "ANNOTATORS", "write_rop_demo"]

#: ``labels.csv`` columns, in order (DATASETS.md section 4.5).
LABELS_HEADER = [
    "image_id", "path", "infant_id", "exam_id", "eye", "gestational_age_wk", "birth_weight_g",
    "postmenstrual_age_wk", "label_A1", "label_A2", "label_A3", "label_majority", "label_consensus", "n_agree",
    "consensus", "stage_A1", "stage_A2", "stage_A3", "zone_A1", "zone_A2", "zone_A3",
]  # fmt: skip

#: reader -> experience, confusion matrix P(read label | true label) over (normal, pre-plus, plus) and the rate of
#: images the reader did not read. Also written to ``annotators.json``.
ANNOTATORS: dict[str, dict[str, Any]] = {
    "A1": {
        "years_experience": 15,
        "role": "senior",
        "missing_rate": 0.03,
        "confusion": [[0.94, 0.05, 0.01], [0.08, 0.84, 0.08], [0.01, 0.09, 0.90]],
    },
    "A2": {
        "years_experience": 6,
        "role": "mid-career",
        "missing_rate": 0.08,
        "confusion": [[0.88, 0.11, 0.01], [0.17, 0.71, 0.12], [0.02, 0.22, 0.76]],
    },
    "A3": {
        "years_experience": 1,
        "role": "junior, over-calls pre-plus",
        "missing_rate": 0.05,
        "confusion": [[0.70, 0.28, 0.02], [0.05, 0.82, 0.13], [0.01, 0.27, 0.72]],
    },
}

_VIEWS = ("posterior", "nasal", "temporal")


def _vessel(draw, rng, pts0, width, color, sev, scale, depth=0) -> None:
    """Draw one vessel along the base curve ``pts0`` (``N x 2``) with tortuosity growing with ``sev``."""
    n = len(pts0)
    d = np.diff(pts0, axis=0, append=2 * pts0[-1:] - pts0[-2:-1])
    normal = np.stack([-d[:, 1], d[:, 0]], 1) / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    t = np.linspace(0, 1, n)
    amp = scale * (0.004 + 0.016 * sev) * (1 + rng.normal(0, 0.15)) * np.sin(np.pi * np.clip(t * 3, 0, 1))
    wiggle = amp * np.sin(2 * np.pi * rng.uniform(5, 8) * t + rng.uniform(0, 2 * np.pi))
    pts = pts0 + normal * wiggle[:, None]
    for c0, c1 in ((0, n // 3), (n // 3, 2 * n // 3), (2 * n // 3, n)):  # taper towards the periphery
        w = max(1, int(round(width * (1 - 0.5 * t[c0]))))
        draw.line(pts[c0 : c1 + 1].ravel().tolist(), fill=color, width=w, joint="curve")
    if depth == 0:
        for _ in range(2):
            j = int(rng.integers(n // 4, 3 * n // 4))
            ang = math.atan2(d[j, 1], d[j, 0]) + rng.choice([-1, 1]) * rng.uniform(0.4, 0.9)
            length = scale * rng.uniform(0.12, 0.25)
            tt = np.linspace(0, 1, n // 2)[:, None]
            base = pts[j] + tt * length * np.array([math.cos(ang), math.sin(ang)])
            _vessel(draw, rng, base, width * 0.6, color, sev, scale, depth + 1)


def _fundus(rng, size: int, eye: str, view: str, sev: float, pigment: np.ndarray) -> np.ndarray:
    """One fundus image ``H W 3`` uint8 for latent plus severity ``sev`` (0 normal .. ~1.6 severe plus)."""
    s = 2 * size  # draw at twice the resolution, then reduce (anti-aliasing)
    shift = {"posterior": 0.0, "nasal": 0.22, "temporal": -0.3}[view] * s
    disc = np.array([0.5 * s + 0.16 * s - shift, 0.5 * s + rng.normal(0, 0.02) * s])
    tex = np.asarray(Image.fromarray(rng.normal(0, 1, (s // 8, s // 8)).astype(np.float32)).resize((s, s), 2))
    base = (pigment * (1 + 0.06 * tex[..., None])).astype(np.float32)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    rd = 0.065 * s
    draw.ellipse([disc[0] - rd, disc[1] - rd, disc[0] + rd, disc[1] + rd], fill=(250, 214, 150))
    artery, vein = (178, 42, 28), (128, 22, 22)
    w_a, w_v = s * 0.011 * (1 + 0.45 * sev), s * 0.016 * (1 + 0.7 * sev)
    n = 30
    for start, bend, length in (
        (-2.35, -0.9, 0.75),
        (2.35, 0.9, 0.75),
        (-1.9, -0.3, 0.55),
        (1.9, 0.3, 0.55),
        (-0.6, 0.2, 0.5),
        (0.6, -0.2, 0.5),
        (0.0, 0.0, 0.35),
    ):
        for color, width, off in ((vein, w_v, 0.08), (artery, w_a, -0.08)):
            t = np.linspace(0, 1, n)[:, None]
            ang = start + off + bend * t + rng.normal(0, 0.05)
            rad = 0.9 * rd + t * length * s * rng.uniform(0.9, 1.1)
            _vessel(draw, rng, disc + rad * np.concatenate([np.cos(ang), np.sin(ang)], 1), width, color, sev, s)
    img = img.reduce(2).filter(ImageFilter.GaussianBlur(rng.uniform(0.25, 1.0)))
    arr = np.asarray(img).astype(np.float32) * rng.uniform(0.8, 1.15) + rng.normal(0, 4, (size, size, 3))
    arr = np.clip(arr * _vignette(size), 0, 255).astype(np.uint8)
    return arr[:, ::-1] if eye == "OS" else arr


@functools.lru_cache(maxsize=4)
def _vignette(size: int) -> np.ndarray:
    """Radial illumination fall-off ``H W 1`` of the circular field of view (0 outside it)."""
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(xx - (size - 1) / 2, yy - (size - 1) / 2) / (0.47 * size)
    return np.where(r <= 1, 1 - 0.35 * r**2, 0.0)[..., None].astype(np.float32)


def _majority(readings: list[int]) -> tuple[int, int]:
    """Mode of the readings (-1 = not read) with ties to the higher label, and the largest group size.

    The rule of :func:`monai_ext.data.rop.majority_label` with ``tie_break="higher"`` (not imported here, to keep
    the writer free of the MONAI / torch import). No reading gives ``(-1, 0)``.
    """
    counts = Counter(v for v in readings if v >= 0)
    if not counts:
        return -1, 0
    top = max(counts.values())
    return max(v for v, c in counts.items() if c == top), top


def _read(rng, true: int, spec: dict) -> int:
    """One reader's label of an image of class ``true`` (-1 = not read)."""
    if rng.random() < spec["missing_rate"]:
        return -1
    return int(rng.choice(3, p=spec["confusion"][true]))


def write_rop_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 128,
    split_fractions: tuple[float, float, float, float] = (0.6, 0.1, 0.15, 0.15),
) -> dict[str, Any]:
    """Write a demo ROP dataset under ``root``.

    Layout (DATASETS.md 4.5; ``demo_truth.csv`` is the demo's ground truth)::

        root/images/<infant_id>/<exam_id>/<eye>_<view>_<k>.png   8-bit RGB, e.g. images/I0001/E01/OD_posterior_1.png
        root/labels.csv         one row per image, columns LABELS_HEADER, sorted by image_id
        root/splits.csv         infant_id,split  (train / val / test / meta), one row per infant
        root/annotators.json    {"A1": {"years_experience": 15, ...}, ...}
        root/demo_truth.csv     image_id,label_true,severity,stage_true,zone_true

    ``label_Ak`` are 0 normal / 1 pre-plus / 2 plus, empty when reader k did not read the image (its stage and
    zone are then empty too); ``label_majority`` is the mode of the available readings with ties to the higher
    severity and -1 without readings; ``n_agree`` the size of the largest agreeing group; ``consensus`` 1 iff all
    three readers read the image and agree (the rule of :func:`monai_ext.data.rop.majority_label` with
    ``tie_break="higher"``); ``label_consensus`` that label, else -1. Stages are ICROP 0-5 and
    zones 1-3. ``path`` is relative to ``root``. Each infant has 1-3 exams at 31-40 weeks postmenstrual age, each
    exam both eyes, each eye a posterior view plus sometimes nasal / temporal views and a repeated capture.

    Args:
        root: dataset folder (created), e.g. ``demo_data/rop``.
        size: scale of the number of infants (1.0 = 30 infants, about 270 images). Default 1.0.
        seed: seed of ``numpy.random.default_rng``. Default 0.
        image_size: image side in pixels. Default 128.
        split_fractions: infant fractions of train / val / test / meta. Default (0.6, 0.1, 0.15, 0.15).

    Returns:
        summary dict: ``root``, ``infants``, ``images``, ``true_label_counts``, ``consensus_rate`` and
        ``images_per_split``.

    Raises:
        ValueError: ``image_size`` < 32 or split fractions that are not 4 non-negative numbers summing to 1.
    """
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32, got {image_size}.")
    if len(split_fractions) != 4 or abs(sum(split_fractions) - 1.0) > 1e-6 or min(split_fractions) < 0:
        raise ValueError(f"split_fractions must be 4 non-negative numbers summing to 1, got {split_fractions}.")
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n_inf = max(8, int(round(30 * size)))
    splits = _infant_splits(rng, n_inf, split_fractions)

    rows, truth = [], []
    for i in range(n_inf):
        infant = f"I{i + 1:04d}"
        ga = float(np.clip(rng.normal(27.5, 2.2), 23.0, 32.0))
        bw = float(np.clip(1000 + 110 * (ga - 27.5) + rng.normal(0, 150), 500, 1500))
        risk = 0.75 - 0.13 * (ga - 27.5) - 0.0007 * (bw - 1000) + rng.normal(0, 0.3)
        pigment = np.array([rng.uniform(185, 225), rng.uniform(70, 105), rng.uniform(30, 55)])
        pma = max(31.0, ga + 4.0) + rng.uniform(0, 1.5)
        for e in range(1, int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3])) + 1):
            if pma > 40:
                break
            exam = f"E{e:02d}"
            exam_effect = 0.35 * math.exp(-(((pma - 36.0) / 2.5) ** 2)) + rng.normal(0, 0.1)
            for eye in ("OD", "OS"):
                sev = max(0.0, risk + exam_effect - 0.45 + rng.normal(0, 0.08))
                true = 0 if sev < 0.5 else 1 if sev < 1.0 else 2
                stage = int(np.clip(round(1.8 * sev + rng.normal(0, 0.6)), 0, 5))
                zone = 1 if (sev > 1.0 and rng.random() < 0.4) else int(rng.choice([2, 3], p=[0.7, 0.3]))
                views = [("posterior", 1)] + [("posterior", 2)] * int(rng.random() < 0.2)
                views += [(v, 1) for v in _VIEWS[1:] if rng.random() < 0.5]
                for view, k in views:
                    rel = f"images/{infant}/{exam}/{eye}_{view}_{k}.png"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(_fundus(rng, image_size, eye, view, sev, pigment)).save(
                        root / rel, compress_level=1
                    )
                    reads = {a: _read(rng, true, spec) for a, spec in ANNOTATORS.items()}
                    stages = {a: int(np.clip(stage + rng.choice([-1, 0, 1], p=[0.1, 0.8, 0.1]), 0, 5)) for a in reads}
                    zones = {a: int(np.clip(zone + rng.choice([-1, 0, 1], p=[0.07, 0.86, 0.07]), 1, 3)) for a in reads}
                    major, n_agree = _majority(list(reads.values()))
                    cons = int(min(reads.values()) >= 0 and len(set(reads.values())) == 1)
                    image_id = f"{infant}_{exam}_{eye}_{view}_{k}"
                    rows.append(
                        [image_id, rel, infant, exam, eye, f"{ga:.1f}", f"{bw:.0f}", f"{pma:.1f}"]
                        + ["" if reads[a] < 0 else reads[a] for a in ANNOTATORS]
                        + [major, reads["A1"] if cons else -1, n_agree, cons]
                        + ["" if reads[a] < 0 else stages[a] for a in ANNOTATORS]
                        + ["" if reads[a] < 0 else zones[a] for a in ANNOTATORS]
                    )
                    truth.append([image_id, true, f"{sev:.4f}", stage, zone])
            pma += rng.uniform(1.0, 3.0)

    splits = _cover_consensus_classes(splits, rows, np.random.default_rng([seed, 1]))
    _write_tables(root, rows, truth, splits)
    return _summary(root, n_inf, rows, truth, splits)


def _infant_splits(
    rng: np.random.Generator, n_inf: int, split_fractions: tuple[float, float, float, float]
) -> np.ndarray:
    """Split of each infant (train / val / test / meta), val, test and meta at least one infant each, shuffled."""
    counts = [max(1, int(round(f * n_inf))) for f in split_fractions[1:]]
    splits = np.array(["val"] * counts[0] + ["test"] * counts[1] + ["meta"] * counts[2])
    return np.concatenate([np.array(["train"] * (n_inf - len(splits))), splits])[rng.permutation(n_inf)]


def _cover_consensus_classes(splits: np.ndarray, rows: list, rng: np.random.Generator) -> np.ndarray:
    """Swap infants so that the meta and test splits hold a unanimous image of every class where the data allow.

    The clean meta set must contain every class (:func:`monai_ext.data.rop.check_meta_splits`) and a test set
    without plus images cannot score plus; the random infant split of a small demo often misses the rare plus class.
    For each of meta and test and each missing class, a train infant with a unanimous image of that class trades
    places with an infant of the split whose leaving uncovers no other class. Image generation is unaffected.
    """
    splits = splits.copy()
    index = {f"I{i + 1:04d}": i for i in range(len(splits))}
    classes: dict[int, set[int]] = {i: set() for i in range(len(splits))}
    for r in rows:
        if r[14] == 1:  # consensus
            classes[index[r[2]]].add(int(r[12]))  # label_consensus

    def covered(split: str, without: int = -1) -> set[int]:
        return set().union(*(classes[i] for i in np.flatnonzero(splits == split) if i != without))

    for split in ("meta", "test"):
        for c in range(len(ANNOTATORS)):
            if c in covered(split):
                continue
            donors = [i for i in np.flatnonzero(splits == "train") if c in classes[i]]
            members = [i for i in np.flatnonzero(splits == split) if covered(split, without=i) >= covered(split)]
            if donors and members:
                donor, member = int(rng.choice(donors)), int(rng.choice(members))
                splits[donor], splits[member] = split, "train"
    return splits


def _write_tables(root: Path, rows: list, truth: list, splits: np.ndarray) -> None:
    """Write ``labels.csv`` and ``demo_truth.csv`` (sorted by image id, in place), ``splits.csv`` and
    ``annotators.json``."""
    rows.sort(key=lambda r: r[0])
    truth.sort(key=lambda r: r[0])
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([LABELS_HEADER] + rows)
    with open(root / "demo_truth.csv", "w", newline="") as f:
        csv.writer(f).writerows([["image_id", "label_true", "severity", "stage_true", "zone_true"]] + truth)
    with open(root / "splits.csv", "w", newline="") as f:
        csv.writer(f).writerows([["infant_id", "split"]] + [[f"I{i + 1:04d}", str(s)] for i, s in enumerate(splits)])
    with open(root / "annotators.json", "w") as f:
        json.dump(ANNOTATORS, f, indent=2)


def _summary(root: Path, n_inf: int, rows: list, truth: list, splits: np.ndarray) -> dict[str, Any]:
    """The writer's summary dict (see :func:`write_rop_demo`)."""
    split_of = {f"I{i + 1:04d}": str(s) for i, s in enumerate(splits)}
    return {
        "root": str(root),
        "infants": n_inf,
        "images": len(rows),
        "true_label_counts": {
            name: sum(t[1] == c for t in truth) for c, name in enumerate(("normal", "pre-plus", "plus"))
        },
        "consensus_rate": float(np.mean([r[14] for r in rows])) if rows else 0.0,
        "images_per_split": {s: sum(split_of[r[2]] == s for r in rows) for s in ("train", "val", "test", "meta")},
    }
