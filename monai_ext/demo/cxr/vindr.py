# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo VinDr-CXR (Kaggle VinBigData): ``train.csv`` with three simulated readers per image, and 12-bit DICOMs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from monai_ext.demo.cxr.common import (
    draw_clean_labels,
    hex_id,
    render_frontal,
    scaled_count,
    write_csv,
    write_truth,
    writer_summary,
)
from monai_ext.demo.label_noise import LABEL_MODELS, VINDR_ANY_READER

__all__ = ["write_vindr_demo"]


def _save_dicom(path: Path, image: np.ndarray, image_id: str) -> None:
    """Write a DX "for presentation" DICOM file, MONOCHROME2, 12 bits stored in 16, explicit VR little endian."""
    uid = generate_uid(entropy_srcs=[image_id, "sop"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, uid
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[image_id, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[image_id, "series"])
    ds.Modality, ds.PatientID, ds.PatientSex, ds.BodyPartExamined = "DX", image_id[:8], "O", "CHEST"
    ds.Rows, ds.Columns = image.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = np.round(image * 4095).astype("<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_vindr_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 128,
    lesion_contrast: float = 0.2,
    min_positives: int = 3,
    reader_sensitivity: float = 0.8,
) -> dict[str, Any]:
    """VinDr-CXR (Kaggle VinBigData) layout: ``train.csv`` (``image_id,class_name,class_id,rad_id,x_min,y_min,x_max,
    y_max``, one row per image, radiologist and box) and ``train/<image_id>.dicom`` (MONOCHROME2, 12-bit).

    ``round(100 * size)`` images, each read by 3 of the radiologists R1-R17. The clean truth has the >= 2-of-3
    prevalences; every reader finds each true finding with ``reader_sensitivity`` (box jittered by ~3 % of the
    image) and, on abnormal images, adds false findings at a per-class rate fitted so that the any-reader prevalence
    matches the real file. Reader agreement on "normal" is all-or-none as in the real file: a truly normal image gets
    three ``No finding`` rows (class_id 14, empty box), and on an abnormal image a reader who marked nothing copies a
    finding from a colleague.

    Returns:
        summary dict with ``files``, ``n_images``, ``n_rows``, clean positives and per-reader positives.
    """
    root = Path(root)
    r_meta, r_lab, r_img, r_read = np.random.default_rng(seed).spawn(4)
    model = LABEL_MODELS["vindr"]
    classes, prev = model.classes, np.asarray(model.prevalence)
    n = scaled_count(100, size, 3)
    clean = draw_clean_labels("vindr", n, r_lab, min_positives)
    miss3 = (1 - reader_sensitivity) ** 3
    other = np.maximum((1 - model.no_finding) - prev, 1e-3)  # P(abnormal and class absent)
    excess = np.clip((np.asarray([VINDR_ANY_READER[c] for c in classes]) - prev * (1 - miss3)) / other, 0, 0.99)
    fp = 1 - (1 - excess) ** (1 / 3)
    rows, ids, reader_pos = [], [], np.zeros(len(classes), dtype=int)
    for i in range(n):
        image_id = hex_id(r_meta, 32)
        ids.append(image_id)
        image, lesions = render_frontal(classes, clean[i], r_img, image_size, lesion_contrast)
        _save_dicom(root / "train" / f"{image_id}.dicom", image, image_id)
        readers = [f"R{k}" for k in r_meta.choice(np.arange(1, 18), size=3, replace=False)]
        boxes = dict(lesions)
        marks: list[list[tuple[str, tuple]]] = [[] for _ in readers]
        if clean[i].any():
            for r in range(3):
                for j, c in enumerate(classes):
                    if clean[i, j] and r_read.random() < reader_sensitivity:
                        b = np.asarray(boxes[c].box) + r_read.normal(0, 0.03 * image_size, 4)
                    elif not clean[i, j] and r_read.random() < fp[j]:
                        cx, cy, w = r_read.uniform(0.25, 0.75), r_read.uniform(0.25, 0.7), r_read.uniform(0.05, 0.2)
                        b = np.array([cx - w / 2, cy - w / 2, cx + w / 2, cy + w / 2]) * image_size
                    else:
                        continue
                    marks[r].append((c, tuple(np.clip(np.round(np.sort(b.reshape(2, 2), 0).ravel()), 0, image_size))))
            if not any(marks):
                c = classes[int(np.flatnonzero(clean[i])[0])]
                marks[0].append((c, tuple(float(v) for v in boxes[c].box)))
            for r in range(3):
                if not marks[r]:
                    donor = next(m for m in marks if m)
                    marks[r].append(donor[int(r_read.integers(len(donor)))])
        for r, rad in enumerate(readers):
            if not marks[r]:
                rows.append([image_id, "No finding", 14, rad, "", "", "", ""])
            for c, (x1, y1, x2, y2) in marks[r]:
                rows.append([image_id, c, classes.index(c), rad, float(x1), float(y1), float(x2), float(y2)])
            for c in {c for c, _ in marks[r]}:
                reader_pos[classes.index(c)] += 1
    write_csv(root / "train.csv", ["image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max"],
              rows)  # fmt: skip
    files = {"train": str(root / "train.csv"), **write_truth(root, ids, ["train"] * n, classes, clean)}
    return writer_summary("vindr", root, files, classes, clean, clean, ["train"] * n, None, n_rows=len(rows),
                          reader_positives={c: int(v) for c, v in zip(classes, reader_pos)})  # fmt: skip
