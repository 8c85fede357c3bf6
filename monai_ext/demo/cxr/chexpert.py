# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo CheXpert-v1.0-small: ``{train,valid}.csv`` with blank / ``0.0`` / ``-1.0`` values and 8-bit JPEG views."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from monai_ext.demo.cxr.common import (
    NO_FINDING,
    NoiseOption,
    draw_clean_labels,
    draw_noisy_labels,
    render_frontal,
    save_image,
    scaled_count,
    with_no_finding,
    write_csv,
    write_truth,
    writer_summary,
)
from monai_ext.demo.cxr_patterns import render_lateral
from monai_ext.demo.label_noise import LABEL_MODELS, FprMode
from monai_ext.demo.stats import load_stats

__all__ = ["write_chexpert_demo"]

_CHEXPERT_COLS = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", NO_FINDING] + list(LABEL_MODELS["chexpert"].classes)
# CheXpert frontal-train fractions per class (cxr_label_stats.json chexpert_frontal.per_class_frontal): uncertain
# (-1.0) among all images, and explicit 0.0 among the entries that are 0.0 or blank, neg / (neg + blank), to 3 places.
_CHEXPERT_COUNTS = [load_stats("cxr_label_stats")["chexpert_frontal"]["per_class_frontal"][c]
                    for c in LABEL_MODELS["chexpert"].classes]  # fmt: skip
_CHEXPERT_UNCERTAIN = tuple(c["frac_uncertain"] for c in _CHEXPERT_COUNTS)
_CHEXPERT_ZERO = tuple(round(c["neg"] / (c["neg"] + c["blank"]), 3) for c in _CHEXPERT_COUNTS)


def write_chexpert_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 128,
    lesion_contrast: float = 0.2,
    noise: NoiseOption = 1.0,
    fpr_mode: FprMode | str = FprMode.MATCHED,
    min_positives: int = 3,
    uncertain: float = 1.0,
    lateral_fraction: float = 0.2,
) -> dict[str, Any]:
    """CheXpert-v1.0-small layout: ``CheXpert-v1.0-small/{train,valid}.csv`` (header verbatim) and
    ``CheXpert-v1.0-small/{train,valid}/patientNNNNN/studyN/viewN_{frontal,lateral}.jpg`` (8-bit JPEG).

    ``round(240 * size)`` train patients with 1-4 studies and ``round(20 * size)`` valid patients (ids from 64541)
    with one study; a study has one frontal view and, with ``lateral_fraction``, a lesion-free lateral view that
    shares the study's labels (as the real CSV does). Train values: ``1.0``, ``0.0`` or blank (negatives are blank in
    the real proportion), ``-1.0`` uncertain; the noisy labels are marked uncertain with probability
    ``uncertain * 0.5 f_u / p`` on true positives and ``uncertain * 0.5 f_u / (1 - p)`` on true negatives (``f_u``
    the real uncertain fraction, ``p`` the prevalence: half of the uncertain mentions hide a positive; recorded in
    ``demo_label_noise.csv`` with ``noisy = -1.0``). ``No Finding`` is ``1.0`` when no finding other than Support
    Devices is ``1.0``/``-1.0``, else blank. Valid values are ``1.0``/``0.0`` only, clean.

    Returns:
        summary dict as :func:`~monai_ext.demo.cxr.nih.write_nih_demo` (``splits`` ``train``/``valid``, counts over
        frontal and lateral rows).
    """
    root = Path(root)
    r_meta, r_lab, r_img, r_noise = np.random.default_rng(seed).spawn(4)
    classes, prev = LABEL_MODELS["chexpert"].classes, np.asarray(LABEL_MODELS["chexpert"].prevalence)
    studies = []  # (split, patient number, study number)
    for split, n_pat, first in (("train", scaled_count(240, size, 3), 1), ("valid", scaled_count(20, size, 3), 64541)):
        n_st = 1 + np.minimum(r_meta.geometric(0.5, size=n_pat) - 1, 3) if split == "train" else np.ones(n_pat, int)
        studies += [(split, first + p, s + 1) for p in range(n_pat) for s in range(n_st[p])]
    st_split = np.array([s[0] for s in studies])
    clean = np.zeros((len(studies), len(classes)), dtype=np.uint8)
    for s in ("train", "valid"):
        idx = np.flatnonzero(st_split == s)
        clean[idx] = draw_clean_labels("chexpert", len(idx), r_lab, min_positives)
    noisy, rates = draw_noisy_labels(clean, "chexpert", noise, fpr_mode, r_noise)
    noisy[st_split == "valid"] = clean[st_split == "valid"]
    fu = np.asarray(_CHEXPERT_UNCERTAIN) * float(uncertain)
    p_unc = np.where(clean == 1, np.minimum(0.5 * fu / prev, 0.5), 0.5 * fu / (1 - prev))
    values = noisy.astype(np.float64)
    train = (st_split == "train")[:, None]
    values[train & (noisy == clean) & (r_noise.random(clean.shape) < p_unc)] = -1.0
    rows = {"train": [], "valid": []}
    ids, id_split, id_clean, id_noisy, id_values = [], [], [], [], []
    sex, age0 = {}, {}
    for i, (split, pnum, snum) in enumerate(studies):
        sex.setdefault(pnum, ("Female", "Male")[int(r_meta.integers(2))])
        age = age0.setdefault(pnum, int(r_meta.integers(18, 88))) + snum - 1
        views = ["frontal"] + (["lateral"] if r_meta.random() < lateral_fraction else [])
        for v, view in enumerate(views, start=1):
            path = f"CheXpert-v1.0-small/{split}/patient{pnum:05d}/study{snum}/view{v}_{view}.jpg"
            if view == "frontal":
                image, _ = render_frontal(classes, clean[i], r_img, image_size, lesion_contrast)
            else:
                image = render_lateral(image_size, r_img)
            save_image(root / path, image, "jpeg")
            ap = ("AP" if r_meta.random() < 0.85 else "PA") if view == "frontal" else ""
            vals = values[i]
            nf = not np.any(vals[:-1] != 0)  # every class but Support Devices (last column)
            if split == "valid":
                cells = [f"{float(nf):.1f}"] + [f"{x:.1f}" for x in vals]
            else:
                zero = r_meta.random(len(classes)) < np.asarray(_CHEXPERT_ZERO)
                cells = ["1.0" if nf else ""] + [f"{x:.1f}" if x != 0 or z else "" for x, z in zip(vals, zero)]
            rows[split].append([path, sex[pnum], age, view.capitalize(), ap, *cells])
            ids.append(path), id_split.append(split), id_clean.append(clean[i])
            id_noisy.append(noisy[i]), id_values.append(vals)
    for split in ("train", "valid"):
        write_csv(root / "CheXpert-v1.0-small" / f"{split}.csv", _CHEXPERT_COLS, rows[split])
    cols = [*classes, NO_FINDING]
    c_all, n_all = with_no_finding(np.array(id_clean), classes), with_no_finding(np.array(id_noisy), classes)
    vals = np.array(id_values).astype(np.int64)
    v_all = np.concatenate([vals, (np.abs(vals)[:, :-1].sum(1) == 0)[:, None]], 1)
    files = {"train": str(root / "CheXpert-v1.0-small" / "train.csv"),
             "valid": str(root / "CheXpert-v1.0-small" / "valid.csv")}  # fmt: skip
    files.update(write_truth(root, ids, id_split, cols, c_all, v_all))
    n_unc = int((np.array(id_values) == -1).sum())
    return writer_summary(
        "chexpert", root, files, classes, c_all[:, :-1], n_all[:, :-1], id_split, rates, n_uncertain=n_unc
    )
