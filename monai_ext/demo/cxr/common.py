# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""What every demo CXR writer shares: case counts, clean and noisy label draws, frontal rendering, image and CSV
writing, the ``demo_clean_labels.csv`` / ``demo_label_noise.csv`` truth files and the summary dict.

Helpers of the writers in :mod:`monai_ext.demo.cxr` (one module per dataset); not a public API.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from monai_ext.demo.cxr_patterns import Lesion, patterns_for_class, render_chest
from monai_ext.demo.label_noise import (
    LABEL_MODELS,
    FprMode,
    corrupt_labels,
    enforce_min_positives,
    resolve_noise,
    sample_clean_labels,
)

__all__ = ["NoiseOption", "NO_FINDING", "scaled_count", "draw_clean_labels", "render_frontal", "save_image",
           "write_csv", "with_no_finding", "write_truth", "draw_noisy_labels", "writer_summary", "hex_id"]  # fmt: skip

#: a writer's ``noise`` option: ``None``/0 (clean), a scale of the measured rates, or ``{class: (fpr, fnr)}``.
NoiseOption = float | Mapping[str, Sequence[float]] | None
NO_FINDING = "No Finding"


def scaled_count(base: int, size: float, minimum: int) -> int:
    """Number of cases (patients, studies, reports) of a writer: ``round(base * size)``, at least ``minimum``.

    Raises:
        ValueError: ``size`` is not positive.
    """
    if size <= 0:
        raise ValueError(f"size must be > 0, got {size}")
    return max(minimum, int(round(base * size)))


def draw_clean_labels(name: str, n: int, rng: np.random.Generator, min_positives: int) -> np.ndarray:
    """``n x C`` clean labels from :data:`~monai_ext.demo.label_noise.LABEL_MODELS` ``[name]``, every class with at
    least ``min_positives`` positives when ``min_positives > 0`` (demo-only enrichment)."""
    y = sample_clean_labels(LABEL_MODELS[name], n, rng)
    return enforce_min_positives(y, min_positives, rng) if min_positives > 0 and n > 0 else y


def render_frontal(
    classes: Sequence[str], labels_row: Sequence[int], rng: np.random.Generator, image_size: int, lesion_contrast: float
) -> tuple[np.ndarray, list[tuple[str, Lesion]]]:
    """Draw one frontal image for a clean label row; returns (float image, [(class, lesion)])."""
    names = [c for c, v in zip(classes, labels_row) if v]
    pats = [patterns_for_class(c)[int(rng.integers(len(patterns_for_class(c))))] for c in names]
    chest = render_chest(image_size, pats, rng, lesion_contrast)
    return chest.image, list(zip(names, chest.lesions))


def save_image(path: Path, image: np.ndarray, fmt: str) -> None:
    """Save a float image in [0, 1] as ``fmt``: ``"png"`` (8-bit), ``"jpeg"`` (8-bit, quality 95) or ``"png16"``
    (12-bit values in a 16-bit PNG); parent folders are created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "png16":  # 12-bit values in a 16-bit PNG, as the PadChest BitsStored_DICOM column says
        Image.fromarray(np.round(image * 4095).astype(np.uint16)).save(path, format="PNG")
        return
    img = Image.fromarray(np.round(image * 255).astype(np.uint8))
    img.save(path, format="JPEG", quality=95) if fmt == "jpeg" else img.save(path, format="PNG")


def write_csv(path: Path, header: Sequence[str] | str, rows: Sequence[Sequence[Any]]) -> None:
    """Write ``rows`` under ``header`` (a list of column names, or a verbatim header line), ``\\n`` line ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        if isinstance(header, str):  # verbatim header line (NIH bracketed names, BBox trailing commas)
            f.write(header + "\n")
        w = csv.writer(f, lineterminator="\n")
        if not isinstance(header, str):
            w.writerow(header)
        w.writerows(rows)


def with_no_finding(y: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Append the derived No Finding column: 1 when no finding other than Support Devices is positive."""
    keep = [i for i, c in enumerate(classes) if c != "Support Devices"]
    return np.concatenate([y, (y[:, keep].sum(1) == 0)[:, None].astype(np.uint8)], axis=1)


def write_truth(
    root: Path,
    ids: Sequence[str],
    splits: Sequence[str],
    classes: Sequence[str],
    clean: np.ndarray,
    noisy: np.ndarray | None = None,
) -> dict[str, str]:
    """Write demo_clean_labels.csv and, when ``noisy`` is given, demo_label_noise.csv; return {kind: path}.

    ``noisy`` holds the label values as written (0/1, or -1 for a CheXpert uncertain mention); one noise row per
    entry that differs from ``clean``.
    """
    files = {"clean_labels": str(root / "demo_clean_labels.csv")}
    write_csv(root / "demo_clean_labels.csv", ["image", "split", *classes],
              [[i, s, *map(int, row)] for i, s, row in zip(ids, splits, clean)])  # fmt: skip
    if noisy is not None:
        r, c = np.nonzero(np.asarray(noisy) != np.asarray(clean))
        rows = [[ids[i], classes[j], int(clean[i, j]), int(noisy[i, j])] for i, j in zip(r, c)]
        write_csv(root / "demo_label_noise.csv", ["image", "class", "clean", "noisy"], rows)
        files["label_noise"] = str(root / "demo_label_noise.csv")
    return files


def draw_noisy_labels(
    clean: np.ndarray, name: str, noise: NoiseOption, fpr_mode: FprMode | str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt ``clean`` with the ``noise`` option of dataset ``name``; returns ``(noisy labels, C x 2 rates)``."""
    model = LABEL_MODELS[name]
    rates = resolve_noise(None if noise == 0 else noise, model.classes, model.prevalence, fpr_mode)
    return corrupt_labels(clean, rates, rng), rates


def writer_summary(
    name: str,
    root: Path,
    files: dict,
    classes: Sequence[str],
    clean: np.ndarray,
    noisy: np.ndarray,
    splits: Sequence[str],
    rates: np.ndarray | None,
    **extra: Any,
) -> dict[str, Any]:
    """The dict a writer returns: files, sizes per split, clean/noisy positives per class, flips and noise rates."""
    split_names, split_counts = np.unique(np.asarray(splits), return_counts=True)
    out = {
        "dataset": name,
        "root": str(root),
        "files": files,
        "n_images": int(len(clean)),
        "splits": {str(s): int(n) for s, n in zip(split_names, split_counts)},
        "classes": list(classes),
        "positives_clean": {c: int(v) for c, v in zip(classes, clean.sum(0))},
        "positives_noisy": {c: int(v) for c, v in zip(classes, noisy.sum(0))},
        "n_flips": int((clean != noisy).sum()),
        "noise_rates": {c: (float(a), float(b)) for c, (a, b) in zip(classes, rates)} if rates is not None else {},
    }
    out.update(extra)
    return out


def hex_id(rng: np.random.Generator, n_hex: int) -> str:
    """``n_hex`` random lowercase hex digits."""
    return "".join("0123456789abcdef"[i] for i in rng.integers(0, 16, size=n_hex))
