# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo MIMIC-CXR-LT 2023: ``cxr-lt-2023/{train,development,test}.csv`` (26 long-tailed classes) and JPEGs."""

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
    hex_id,
    render_frontal,
    save_image,
    scaled_count,
    with_no_finding,
    write_csv,
    write_truth,
    writer_summary,
)
from monai_ext.demo.label_noise import LABEL_MODELS, FprMode, enforce_min_positives, sample_clean_labels

__all__ = ["write_mimic_cxr_lt_demo"]


def write_mimic_cxr_lt_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 128,
    lesion_contrast: float = 0.2,
    noise: NoiseOption = 1.0,
    fpr_mode: FprMode | str = FprMode.MATCHED,
    min_positives: int = 3,
    eval_min_positives: int | None = None,
) -> dict[str, Any]:
    """MIMIC-CXR-LT 2023 layout: ``cxr-lt-2023/{train,development,test}.csv`` with the 6 metadata columns
    ``subject_id,study_id,dicom_id,ViewPosition,split,path`` then the 26 classes (alphabetical, 0/1), and
    ``files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg`` (8-bit JPEG).

    ``round(100 * size)`` subjects with 1-3 studies of one frontal image, split by subject 60/15/25 % into train,
    development and test. Prevalences are long-tailed (:data:`~monai_ext.demo.label_noise.LABEL_MODELS`
    ``"mimic_cxr_lt"``); ``No Finding`` is 1 exactly when no finding other than Support Devices is positive, so every
    image has at least one positive. Train and development labels are noisy, test labels clean.

    The tail follows the prevalences once the splits are large: at ``size=50`` (about 7,800 images, 4,700 train /
    1,150 development / 2,000 test) the training head classes have 1,000-1,700 (noisy) positives and the rarest 5-15,
    the 0.1-30 % prevalence range of the label model. At small sizes ``min_positives`` (per split, clean labels;
    demo-only enrichment) flattens the tail so that every class can be scored.

    Args:
        size: scale of the number of subjects (``round(100 * size)``). Defaults to 1.0.
        min_positives: at least this many clean positives per class in each split. Defaults to 3.
        eval_min_positives: the same minimum for the development and test splits only, e.g. 30 so that tail classes
            can be measured in a study while training keeps its long tail; added positives go to images that already
            have a finding first, so No Finding keeps its share. None uses ``min_positives``. Defaults to None.

    Returns:
        summary dict as :func:`~monai_ext.demo.cxr.nih.write_nih_demo` (classes without No Finding).
    """
    root = Path(root)
    r_meta, r_lab, r_img, r_noise = np.random.default_rng(seed).spawn(4)
    classes = LABEL_MODELS["mimic_cxr_lt"].classes
    cols = sorted([*classes, NO_FINDING])
    n_sub = scaled_count(100, size, 6)
    sub_ids = 10000000 + np.sort(r_meta.choice(9990000, size=n_sub, replace=False))
    cut = np.cumsum([max(1, round(0.6 * n_sub)), max(1, round(0.15 * n_sub))])
    sub_split = np.array(["train"] * cut[0] + ["development"] * (cut[1] - cut[0]) + ["test"] * (n_sub - cut[1]))
    sub_split = sub_split[r_meta.permutation(n_sub)]
    n_st = 1 + np.minimum(r_meta.geometric(0.6, size=n_sub) - 1, 2)
    subj = np.repeat(np.arange(n_sub), n_st)
    splits = sub_split[subj]
    clean = np.zeros((len(subj), len(classes)), dtype=np.uint8)
    for s in ("train", "development", "test"):
        idx = np.flatnonzero(splits == s)
        if s == "train" or eval_min_positives is None:
            clean[idx] = draw_clean_labels("mimic_cxr_lt", len(idx), r_lab, min_positives)
        else:  # enrichment on abnormal images first, so that No Finding keeps its share
            y = sample_clean_labels(LABEL_MODELS["mimic_cxr_lt"], len(idx), r_lab)
            clean[idx] = enforce_min_positives(y, eval_min_positives, r_lab, prefer_abnormal=True) if len(idx) else y
    noisy, rates = draw_noisy_labels(clean, "mimic_cxr_lt", noise, fpr_mode, r_noise)
    noisy[splits == "test"] = clean[splits == "test"]
    study_ids = 50000000 + r_meta.choice(9990000, size=len(subj), replace=False)
    order = [cols.index(c) for c in [*classes, NO_FINDING]]
    rows = {s: [] for s in ("train", "development", "test")}
    ids = []
    for i, k in enumerate(subj):
        sid = int(sub_ids[k])
        dicom = "-".join(hex_id(r_meta, 8) for _ in range(5))
        path = f"files/p{str(sid)[:2]}/p{sid}/s{study_ids[i]}/{dicom}.jpg"
        save_image(root / path, render_frontal(classes, clean[i], r_img, image_size, lesion_contrast)[0], "jpeg")
        y = with_no_finding(noisy[i : i + 1], classes)[0]
        lab = [0] * len(cols)
        for j, o in enumerate(order):
            lab[o] = int(y[j])
        rows[splits[i]].append([sid, int(study_ids[i]), dicom, "PA" if r_meta.random() < 0.5 else "AP", splits[i], path,
                                *lab])  # fmt: skip
        ids.append(dicom)
    header = ["subject_id", "study_id", "dicom_id", "ViewPosition", "split", "path", *cols]
    files = {}
    for s, r in rows.items():
        write_csv(root / "cxr-lt-2023" / f"{s}.csv", header, r)
        files[s] = str(root / "cxr-lt-2023" / f"{s}.csv")
    c_nf, n_nf = with_no_finding(clean, classes), with_no_finding(noisy, classes)
    files.update(write_truth(root, ids, splits, [*classes, NO_FINDING], c_nf, n_nf))
    return writer_summary("mimic_cxr_lt", root, files, classes, clean, noisy, splits, rates, n_subjects=n_sub)
