# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo NIH ChestX-ray14: ``Data_Entry_2017_v2020.csv``, the official split lists, ``BBox_List_2017.csv`` and PNGs."""

from __future__ import annotations

import os
from collections.abc import Sequence
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
    write_csv,
    write_truth,
    writer_summary,
)
from monai_ext.demo.label_noise import LABEL_MODELS, FprMode

__all__ = ["write_nih_demo"]

_NIH_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
               "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")  # fmt: skip
_BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
_BOXED = {"Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax"}


def write_nih_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 128,
    lesion_contrast: float = 0.2,
    noise: NoiseOption = 1.0,
    fpr_mode: FprMode | str = FprMode.MATCHED,
    min_positives: int = 3,
    test_fraction: float = 0.25,
    bbox_fraction: float = 0.5,
    bbox_splits: Sequence[str] = ("test",),
) -> dict[str, Any]:
    """NIH ChestX-ray14 layout: ``Data_Entry_2017_v2020.csv``, ``train_val_list.txt``, ``test_list.txt``,
    ``BBox_List_2017.csv`` and ``images/PPPPPPPP_FFF.png`` (8-bit grey, ``image_size`` square).

    ``round(90 * size)`` patients with 1-8 follow-up images each (~2.5 on average), split patient-disjointly into the
    official lists (``test_fraction`` of patients in ``test_list.txt``). ``Finding Labels`` are the *noisy* labels
    (both lists: NIH labels are NLP-mined); ``No Finding`` is set exactly when no noisy disease is left. Box rows
    (label ``Infiltrate`` for Infiltration) are written for ``bbox_fraction`` of the test images' drawn lesions of
    the 8 boxed classes that are also positive in the noisy labels, in PNG pixels ``x, y, w, h``.

    Options for a lesion-box library (DADAM, :mod:`monai_ext.data.cxr.lesion_boxes`): ``bbox_fraction=1.0`` boxes
    every such lesion, and ``bbox_splits=("test", "train_val")`` also boxes the training-list images (the real file
    boxes test-list images only). The box draws of the added split come from their own random stream, so these
    options change ``BBox_List_2017.csv`` only: images, labels and every other file stay as with the defaults.

    Args:
        bbox_fraction: probability that a boxable lesion gets its box row. Defaults to 0.5.
        bbox_splits: official lists whose images get box rows, a subset of ``{"test", "train_val"}``. Defaults to
            ``("test",)`` as the real file.

    Raises:
        ValueError: ``size`` is not positive or ``bbox_splits`` names another list.

    Returns:
        summary dict: ``files``, ``n_images``, ``n_patients``, ``splits``, clean/noisy positives, ``noise_rates``,
        ``n_flips``, ``n_boxes``.
    """
    root = Path(root)
    unknown = sorted(set(bbox_splits) - {"test", "train_val"})
    if unknown:
        raise ValueError(f"bbox_splits must be among ['test', 'train_val'], got {unknown}.")
    # the first four streams are the ones of spawn(4): the extra box stream leaves the default output unchanged
    r_meta, r_lab, r_img, r_noise, r_box = np.random.default_rng(seed).spawn(5)
    classes = LABEL_MODELS["nih"].classes
    n_pat = scaled_count(90, size, 4)
    n_img = 1 + np.minimum(r_meta.geometric(0.4, size=n_pat) - 1, 7)
    perm = r_meta.permutation(n_pat)
    test_pat = set(perm[: max(1, int(round(test_fraction * n_pat)))].tolist())
    names = [f"{p + 1:08d}_{k:03d}.png" for p in range(n_pat) for k in range(n_img[p])]
    pid = np.repeat(np.arange(n_pat), n_img)
    splits = np.array(["test" if p in test_pat else "train_val" for p in pid])
    clean = np.zeros((len(names), len(classes)), dtype=np.uint8)
    for s in ("train_val", "test"):
        idx = np.flatnonzero(splits == s)
        clean[idx] = draw_clean_labels("nih", len(idx), r_lab, min_positives)
    noisy, rates = draw_noisy_labels(clean, "nih", noise, fpr_mode, r_noise)
    rows, boxes = [], []
    sex = r_meta.choice(["M", "F"], size=n_pat, p=[0.565, 0.435])
    age0 = r_meta.integers(18, 86, size=n_pat)
    originals = ((2500, 2048, 0.168), (2992, 2991, 0.143), (3056, 2544, 0.139), (2021, 2021, 0.194))
    for i, name in enumerate(names):
        image, lesions = render_frontal(classes, clean[i], r_img, image_size, lesion_contrast)
        save_image(root / "images" / name, image, "png")
        found = "|".join(sorted(c for c, v in zip(classes, noisy[i]) if v)) or NO_FINDING
        k = int(name[9:12])
        w, h, sp = originals[int(r_meta.integers(len(originals)))]
        view = "PA" if r_meta.random() < 0.6 else "AP"
        rows.append([name, found, k, pid[i] + 1, age0[pid[i]] + k // 3, sex[pid[i]], view, w, h, sp, sp])
        for cls, les in lesions:
            if cls not in _BOXED or not noisy[i, classes.index(cls)]:
                continue
            if splits[i] == "test":  # drawn even without test boxes, so the metadata stream stays as by default
                u = r_meta.random()
            elif "train_val" in bbox_splits:
                u = r_box.random()
            else:
                continue
            if splits[i] in bbox_splits and u < bbox_fraction:
                x1, y1, x2, y2 = les.box
                boxes.append([name, "Infiltrate" if cls == "Infiltration" else cls, x1, y1, x2 - x1, y2 - y1])
    write_csv(root / "Data_Entry_2017_v2020.csv", _NIH_HEADER, rows)
    write_csv(root / "BBox_List_2017.csv", _BBOX_HEADER, boxes)
    for s, fname in (("train_val", "train_val_list.txt"), ("test", "test_list.txt")):
        (root / fname).write_text("".join(f"{n}\n" for n, sp in zip(names, splits) if sp == s), encoding="utf-8")
    cols = [*classes, NO_FINDING]
    clean_nf, noisy_nf = (np.concatenate([y, (y.sum(1) == 0)[:, None].astype(np.uint8)], 1) for y in (clean, noisy))
    files = {"data_entry": str(root / "Data_Entry_2017_v2020.csv"), "bbox": str(root / "BBox_List_2017.csv"),
             "train_val_list": str(root / "train_val_list.txt"), "test_list": str(root / "test_list.txt"),
             **write_truth(root, names, splits, cols, clean_nf, noisy_nf)}  # fmt: skip
    extra = {"n_patients": n_pat, "n_boxes": len(boxes)}
    return writer_summary("nih", root, files, classes, clean, noisy, splits, rates, **extra)
