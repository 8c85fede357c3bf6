# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Offline DADAM: write an augmented MIMIC-CXR-LT training set (the paper's 50k CutMix + 50k Mixup images, Sec. 4.1)
in the MIMIC-CXR-LT layout, with per-patch provenance and a report of the label correlation (Fig. 3) and class
counts (Fig. 4) before and after.

Kim et al., "Feature Pyramid Sum Method and Diseased Area Data Augmentation Method for long-tailed chest X-ray
classification", CXR-LT 2023. The augmentation itself is :mod:`monai_ext.transforms.dadam`.

Only the *training part* of ``train.csv`` is used (backgrounds, label correlation, tail classes): the validation
patients are :func:`~monai_ext.data.cxr.common.patient_val_split` of the ``subject_id`` of every ``train.csv`` row
with the bundle's ``val_fraction`` and ``split_seed``, so no validation image leaks into augmented images.

Example (bundle config ``dadam_generate.json``)::

    "run": "$monai_ext.data.cxr.generate_dadam_dataset(@dataset_dir, @box_sources, @dadam_dir, 50000, 50000)"
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monai_ext.data.cxr.common import patient_val_split
from monai_ext.data.cxr.labels import MIMIC_CXR_LT_CLASSES, NO_FINDING
from monai_ext.data.cxr.lesion_boxes import boxes_per_class, lesion_box_library
from monai_ext.data.cxr.mimic import mimic_cxr_lt_datalist

__all__ = ["DADAM_OUTPUTS", "generate_dadam_dataset"]

DADAM_OUTPUTS = (
    "cxr-lt-2023",
    "files",
    "provenance.csv",
    "dadam_report.json",
    "dadam_correlation.png",
    "dadam_class_counts.png",
)
"""What :func:`generate_dadam_dataset` writes under its ``output_dir``."""

_META = ("subject_id", "study_id", "dicom_id", "ViewPosition", "split", "path")
_STUDY = re.compile(r"(?:^|/)s(\d+)/")
_MAX_REDRAWS = 100


def _study_of(item: dict) -> str:
    study = str(item.get("study_id") or "").strip()
    if study:
        return study
    m = _STUDY.search(Path(item["image"]).as_posix())
    if m is None:
        raise ValueError(f"MIMIC-CXR-LT image '{item['image']}' has no study_id and no 'sXXXXXXXX/' in its path")
    return m.group(1)


def _save_jpeg(image: Any, path: Path, quality: int) -> tuple[int, int]:
    """``1 W H`` in [0, 1] -> 8-bit grey JPEG (rows = y); returns (W, H)."""
    from PIL import Image

    arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float32)[0]
    pixels = np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8).T
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode="L").save(path, quality=quality)
    return arr.shape[0], arr.shape[1]


def _prepare_output(out: Path, overwrite: bool) -> None:
    existing = [name for name in DADAM_OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"DADAM output folder '{out}' already holds {existing}; choose another output_dir or pass "
            "overwrite=True to replace them"
        )
    for name in existing:
        p = out / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _plots(out: Path, classes: Sequence[str], corr_before, corr_after, counts_before, counts_after) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(16, 8))
    fig.subplots_adjust(left=0.14, right=0.9, bottom=0.28, top=0.95, wspace=0.45)
    for ax, mat, title in zip(axes, (corr_before, corr_after), ("original train", "original + DADAM")):
        im = ax.imshow(mat, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(f"Pearson label correlation: {title}")
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
    fig.colorbar(im, ax=list(axes), shrink=0.6)
    fig.savefig(out / "dadam_correlation.png", dpi=72)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 8))
    fig.subplots_adjust(left=0.3, right=0.97, top=0.97, bottom=0.08)
    y = np.arange(len(classes))
    ax.barh(y - 0.2, counts_before, height=0.4, label="original train")
    ax.barh(y + 0.2, counts_after, height=0.4, label="original + DADAM")
    ax.set_yticks(y, classes, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("symlog")
    ax.set_xlabel("positive images")
    ax.legend()
    fig.savefig(out / "dadam_class_counts.png", dpi=72)
    plt.close(fig)


def generate_dadam_dataset(
    dataset_dir: str | os.PathLike,
    box_sources: Mapping[str, str | os.PathLike],
    output_dir: str | os.PathLike,
    n_cutmix: int,
    n_mixup: int,
    seed: int = 0,
    val_fraction: float = 0.2,
    split_seed: int = 0,
    tail_threshold: float | None = None,
    class_maps: Mapping[str, Mapping[str, str | None]] | None = None,
    vindr_min_readers: int = 2,
    alpha: float = 0.6,
    min_correlation: float = 0.1,
    max_patches: int = 3,
    max_patch_side: int | None = None,
    jpeg_quality: int = 95,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``n_cutmix`` CutMix-on-normal and ``n_mixup`` Mixup-on-diseased images of the training part of
    MIMIC-CXR-LT ``train.csv``.

    Output (``output_dir``)::

        cxr-lt-2023/train.csv      # MIMIC-CXR-LT columns subject_id,study_id,dicom_id,ViewPosition,split,path + 26
                                   # classes; subject/study/view of the background, dicom_id dadam-cutmix-000001 ...
        files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg   # 8-bit grey JPEG, the background's size
        provenance.csv             # one row per patch: dicom_id, mode, tail_class, background_image, patch_class,
                                   # source, source_image, source_box, target_box (x1 y1 x2 y2 px), alpha
        dadam_report.json          # see Returns
        dadam_correlation.png, dadam_class_counts.png   # the paper's Fig. 3 and Fig. 4

    Backgrounds: CutMix draws a "No Finding" training image uniformly; Mixup draws a tail class uniformly among those
    with a positive training image, then one of its images (redrawn when every class with patches is already
    positive in it). The folder is read by ``cxr_lt_datalist(..., augmented_dir=output_dir)``.

    Args:
        dataset_dir: the ``mimic_cxr_lt/`` folder (:func:`~monai_ext.data.cxr.mimic_cxr_lt_datalist`).
        box_sources: ``{"nih": nih_dir, "vindr": vindr_dir}`` (:func:`~monai_ext.data.cxr.lesion_box_library`).
        output_dir: the new dataset folder.
        n_cutmix, n_mixup: images to write per strategy (>= 0).
        seed: seed of the augmentation draws. Defaults to 0.
        val_fraction, split_seed: the bundle's patient-level validation split of ``train.csv`` (excluded here).
            Default to 0.2 and 0 (the paper's 8:2 split).
        tail_threshold: see :func:`~monai_ext.transforms.dadam.tail_class_indices`. Defaults to None (median).
        class_maps, vindr_min_readers: see :func:`~monai_ext.data.cxr.lesion_box_library`.
        alpha, min_correlation, max_patches: see :class:`~monai_ext.transforms.dadam.DiseasedAreaAugmenter`.
        max_patch_side: see :meth:`~monai_ext.transforms.dadam.PatchBank.from_library`. Defaults to None.
        jpeg_quality: PIL JPEG quality. Defaults to 95.
        overwrite: replace earlier outputs in ``output_dir``. Defaults to False.
        progress: show a tqdm progress bar. Defaults to True.

    Returns:
        The report (also ``dadam_report.json``): ``n_train_images``, ``n_val_patients``, ``n_cutmix``,
        ``n_mixup``, ``tail_classes``, ``tail_classes_without_boxes``, ``boxes_per_class``, ``counts_before``,
        ``counts_after`` (positives per class), ``correlation_frobenius`` (``||R_after - R_before||_F`` of the
        Pearson label correlations), ``settings``.

    Raises:
        FileExistsError: outputs exist and ``overwrite`` is False.
        ValueError: negative counts; CutMix requested but no "No Finding" training image or no tail class with a
            box; Mixup requested but no training image positive for a tail class, or none that can take a patch.
        FileNotFoundError, DatasetLayoutError: from the readers (file, line and fix named).
    """
    from monai.utils import optional_import

    from monai_ext.transforms.dadam import (
        DiseasedAreaAugmenter,
        PatchBank,
        correlation_distance,
        label_correlation,
        radiograph_loader,
        tail_class_indices,
    )

    tqdm, _ = optional_import("tqdm", name="tqdm")
    if n_cutmix < 0 or n_mixup < 0:
        raise ValueError(f"n_cutmix and n_mixup must be >= 0, got {n_cutmix}, {n_mixup}")
    classes = MIMIC_CXR_LT_CLASSES
    out = Path(output_dir).absolute()
    items = mimic_cxr_lt_datalist(dataset_dir, "train", classes=classes)
    val = patient_val_split([it["patient_id"] for it in items], val_fraction, split_seed)
    train = [it for it in items if it["patient_id"] not in val]
    labels = np.asarray([it["label"] for it in train], dtype=np.float64).reshape(-1, len(classes))
    tails = tail_class_indices(labels, tail_threshold, classes)
    corr_before = label_correlation(labels)
    library = lesion_box_library(box_sources, class_maps, classes, vindr_min_readers=vindr_min_readers)
    bank = PatchBank.from_library(library, classes, max_patch_side=max_patch_side)
    augmenter = DiseasedAreaAugmenter(
        bank, corr_before, tails, alpha=alpha, min_correlation=min_correlation, max_patches=max_patches
    )
    nf = classes.index(NO_FINDING)
    normals = [i for i in range(len(train)) if labels[i, nf] >= 0.5]
    by_tail = {t: np.flatnonzero(labels[:, t] >= 0.5) for t in tails}
    by_tail = {t: idx for t, idx in by_tail.items() if idx.size}
    if n_cutmix and not normals:
        raise ValueError(f"CutMix needs '{NO_FINDING}' training images; the training part of train.csv has none")
    if n_cutmix and not augmenter.cutmix_tails:
        raise ValueError(augmenter.missing_tail_patch_message())
    if n_mixup and not by_tail:
        raise ValueError(f"Mixup needs training images positive for a tail class {[classes[t] for t in tails]}")

    _prepare_output(out, overwrite)
    rng = np.random.default_rng(seed)
    loader = radiograph_loader()
    rows, prov_rows = [], []
    jobs = [("cutmix", k) for k in range(1, n_cutmix + 1)] + [("mixup", k) for k in range(1, n_mixup + 1)]
    tail_keys = sorted(by_tail)
    for mode, k in tqdm(jobs, desc="DADAM", disable=not progress):
        for _ in range(_MAX_REDRAWS):
            if mode == "cutmix":
                bg = train[normals[rng.choice(len(normals))]]
                image, lab, prov = augmenter.cutmix_on_normal(loader({"image": bg["image"]})["image"], rng)
                break
            t = tail_keys[rng.choice(len(tail_keys))]
            bg = train[int(by_tail[t][rng.choice(len(by_tail[t]))])]
            if augmenter.mixup_candidates(bg["label"], t):
                image, lab, prov = augmenter.mixup_on_diseased(
                    loader({"image": bg["image"]})["image"], bg["label"], rng, tail_class=t
                )
                break
        else:
            raise ValueError(
                f"Mixup found no background in {_MAX_REDRAWS} draws that can take a patch (every class with boxes "
                "is already positive in the tail-class images); add box sources or use n_mixup=0"
            )
        dicom_id = f"dadam-{mode}-{k:06d}"
        subject, study = str(bg["patient_id"]), _study_of(bg)
        rel = f"files/p{subject[:2]}/p{subject}/s{study}/{dicom_id}.jpg"
        _save_jpeg(image, out / rel, jpeg_quality)
        meta = (subject, study, dicom_id, bg.get("view") or "", "train", rel)
        rows.append(dict(zip(_META, meta)) | {c: int(v >= 0.5) for c, v in zip(classes, lab)})
        for p in prov["patches"]:
            prov_rows.append(
                {
                    "dicom_id": dicom_id,
                    "mode": prov["mode"],
                    "tail_class": prov["tail_class"],
                    "background_image": bg["image"],
                    "patch_class": p["class"],
                    "source": p["source"],
                    "source_image": p["source_image"],
                    "source_box": " ".join(f"{v:g}" for v in p["source_box"]),
                    "target_box": " ".join(str(v) for v in p["target_box"]),
                    "alpha": p["alpha"],
                }
            )

    (out / "cxr-lt-2023").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(_META) + list(classes)).to_csv(out / "cxr-lt-2023" / "train.csv", index=False)
    prov_cols = ["dicom_id", "mode", "tail_class", "background_image", "patch_class", "source", "source_image"]
    prov_cols += ["source_box", "target_box", "alpha"]
    pd.DataFrame(prov_rows, columns=prov_cols).to_csv(out / "provenance.csv", index=False)

    aug_labels = np.asarray([[r[c] for c in classes] for r in rows], dtype=np.float64).reshape(-1, len(classes))
    after = np.concatenate([labels, aug_labels])
    corr_after = label_correlation(after) if len(after) >= 2 else corr_before
    counts_before, counts_after = labels.sum(0).astype(int), after.sum(0).astype(int)
    boxed = set(boxes_per_class(library))
    report = {
        "n_train_images": len(train),
        "n_val_patients": len(val),
        "n_cutmix": n_cutmix,
        "n_mixup": n_mixup,
        "tail_classes": [classes[t] for t in tails],
        "tail_classes_without_boxes": [classes[t] for t in tails if classes[t] not in boxed],
        "boxes_per_class": boxes_per_class(library),
        "counts_before": dict(zip(classes, counts_before.tolist())),
        "counts_after": dict(zip(classes, counts_after.tolist())),
        "correlation_frobenius": correlation_distance(corr_before, corr_after),
        "settings": {
            "dataset_dir": str(Path(dataset_dir).absolute()),
            "box_sources": {k: str(Path(v).absolute()) for k, v in box_sources.items()},
            "seed": seed,
            "val_fraction": val_fraction,
            "split_seed": split_seed,
            "tail_threshold": tail_threshold,
            "vindr_min_readers": vindr_min_readers,
            "alpha": alpha,
            "min_correlation": min_correlation,
            "max_patches": max_patches,
            "max_patch_side": max_patch_side,
        },
    }
    (out / "dadam_report.json").write_text(json.dumps(report, indent=2) + "\n")
    _plots(out, classes, corr_before, corr_after, counts_before, counts_after)
    return report
