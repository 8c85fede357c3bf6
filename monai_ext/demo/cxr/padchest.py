# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo PadChest: the 160K labels CSV (Python-list ``Labels`` with the real quirks) and 16-bit PNGs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from monai_ext.demo.cxr.common import (
    draw_clean_labels,
    hex_id,
    render_frontal,
    save_image,
    scaled_count,
    write_csv,
    write_truth,
    writer_summary,
)
from monai_ext.demo.cxr_patterns import render_lateral
from monai_ext.demo.label_noise import LABEL_MODELS

__all__ = ["write_padchest_demo"]

_PADCHEST_COLS = ("ImageID,ImageDir,StudyDate_DICOM,StudyID,PatientID,PatientBirth,PatientSex_DICOM,ViewPosition_DICOM,"
                  "Projection,MethodProjection,Pediatric,Modality_DICOM,Manufacturer_DICOM,"
                  "PhotometricInterpretation_DICOM,"
                  "PixelRepresentation_DICOM,PixelAspectRatio_DICOM,SpatialResolution_DICOM,BitsStored_DICOM,"
                  "WindowCenter_DICOM,WindowWidth_DICOM,Rows_DICOM,Columns_DICOM,XRayTubeCurrent_DICOM,Exposure_DICOM,"
                  "ExposureInuAs_DICOM,ExposureTime,RelativeXRayExposure_DICOM,ReportID,Report,MethodLabel,Labels,"
                  "Localizations,LabelsLocalizationsBySentence,labelCUIS,LocalizationsCUIS").split(",")  # fmt: skip
# PadChest term, Spanish report stem and UMLS CUI per class (terms are whole PadChest terms; CUIs illustrative).
_PADCHEST_TERMS = {
    "Atelectasis": ("atelectasis", "atelectasi", "C0004144"),
    "Cardiomegaly": ("cardiomegaly", "cardiomegali", "C0018800"),
    "Effusion": ("pleural effusion", "derram pleural", "C0032227"),
    "Infiltration": ("infiltrates", "infiltr", "C0332448"), "Mass": ("mass", "mas", "C0577559"),
    "Nodule": ("nodule", "nodul", "C0028259"), "Pneumonia": ("pneumonia", "neumoni", "C0032285"),
    "Pneumothorax": ("pneumothorax", "neumotorax", "C0032326"),
    "Consolidation": ("consolidation", "consolid", "C0521530"),
    "Edema": ("pulmonary edema", "edem pulmonar", "C0034063"), "Emphysema": ("emphysema", "enfisem", "C0034067"),
    "Fibrosis": ("pulmonary fibrosis", "fibrosis pulmonar", "C0034069"),
    "Pleural_Thickening": ("pleural thickening", "engros pleural", "C0264545"),
    "Hernia": ("hiatal hernia", "hernia hiat", "C0019291"),
}  # fmt: skip
_PADCHEST_DISTRACTORS = ("chronic changes", "kyphosis", "unchanged", "COPD signs")  # match none of the 28 xrv classes


def _digits(rng: np.random.Generator, n: int) -> str:
    return str(int(rng.integers(1, 10))) + "".join(str(d) for d in rng.integers(0, 10, size=n - 1))


def write_padchest_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 128,
    lesion_contrast: float = 0.2,
    min_positives: int = 3,
    lateral_fraction: float = 0.3,
) -> dict[str, Any]:
    """PadChest layout: ``PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv`` (unnamed integer index column, then
    the 35 named columns verbatim) and ``images/<ImageDir>/<ImageID>`` (16-bit PNG holding 12-bit values).

    ``round(100 * size)`` studies (one per patient, 10 % of patients with a second study); each study has a frontal
    image (``Projection`` PA 85 %, AP 8 %, AP_horizontal 7 %) and, with ``lateral_fraction``, a lesion-free ``L``
    image with the same report. ``MethodLabel`` is ``Physician`` for 85 % of studies (``RNN_model`` otherwise),
    ``MethodProjection`` ``Manual review of DICOM fields`` for 95 %; 2 % of patients are children (``PatientBirth``
    2012). ``Labels`` is a Python-list literal of whole PadChest terms (``['normal']`` when no finding), with the
    real quirks: an empty term ``''`` in 3 % of rows, a leading space on 5 % of terms (each at least once), and
    harmless extra terms (``'chronic changes'``...). Labels are clean (a test set). As in torchxrayvision's
    substring rule, a ``'consolidation'`` term also makes the row an Infiltration, so the clean Infiltration label
    includes every Consolidation. ``demo_clean_labels.csv`` lists the frontal images.

    Returns:
        summary dict with ``files``, ``n_images`` (frontal), clean positives.
    """
    root = Path(root)
    r_meta, r_lab, r_img, _ = np.random.default_rng(seed).spawn(4)
    classes = LABEL_MODELS["padchest"].classes
    n_st = scaled_count(100, size, 3)
    clean = draw_clean_labels("padchest", n_st, r_lab, min_positives)
    drawn = clean.copy()
    clean[:, classes.index("Infiltration")] |= clean[:, classes.index("Consolidation")]
    rows, ids = [], []
    patient = None
    for s in range(n_st):
        if patient is None or r_meta.random() >= 0.1:
            child = r_meta.random() < 0.02
            patient, birth = _digits(r_meta, 37), float(2012 if child else r_meta.integers(1925, 1995))
            sex = ("M", "F")[int(r_meta.integers(2))]
        study = _digits(r_meta, 38)
        date = f"{r_meta.integers(2009, 2018)}{r_meta.integers(1, 13):02d}{r_meta.integers(1, 29):02d}"
        pos = [c for c, v in zip(classes, drawn[s]) if v]
        terms = [_PADCHEST_TERMS[c][0] for c in pos] or ["normal"]
        if r_meta.random() < 0.1:
            terms.append(_PADCHEST_DISTRACTORS[int(r_meta.integers(len(_PADCHEST_DISTRACTORS)))])
        # quirks: leading space on 5 % of terms, an empty term in 3 % of rows (each forced once, rows 2 and 3)
        terms = [" " + t if r_meta.random() < 0.05 or (s == 1 and k == 0) else t for k, t in enumerate(terms)]
        terms += [""] if r_meta.random() < 0.03 or s == 2 else []
        report = " " + (" . ".join(_PADCHEST_TERMS[c][1] for c in pos) if pos else "sin hallazg patolog") + " ."
        cuis = "[" + " ".join(f"'{_PADCHEST_TERMS[c][2]}'" for c in pos) + "]"
        locs = ["loc basal"] if pos and r_meta.random() < 0.5 else []
        method = "Physician" if r_meta.random() < 0.85 else "RNN_model"
        u = r_meta.random()
        front = "PA" if u < 0.85 else ("AP" if u < 0.93 else "AP_horizontal")
        views = [front] + (["L"] if r_meta.random() < lateral_fraction else [])
        for proj in views:
            image_id = f"{study}_{hex_id(r_meta, 6)}.png"
            image_dir = int(r_meta.integers(0, 4))
            if proj == "L":
                image = render_lateral(image_size, r_img)
            else:
                image = render_frontal(classes, drawn[s], r_img, image_size, lesion_contrast)[0]
                ids.append(image_id)
            save_image(root / "images" / str(image_dir) / image_id, image, "png16")
            view_dicom = {"PA": "POSTEROANTERIOR", "AP": "AP", "AP_horizontal": "AP", "L": "LATERAL"}[proj]
            manual = "Manual review of DICOM fields" if r_meta.random() < 0.95 else "resnet-50.t7"
            rows.append([len(rows), image_id, image_dir, date, study, patient, birth, sex, view_dicom, proj, manual,
                         "Yes" if birth > 2009 else "No", "CR", "ImagingDynamicsCompanyLtd", "MONOCHROME2", 0, "None",
                         "None", 12, 2048, 4096, image_size, image_size, int(r_meta.integers(100, 500)),
                         int(r_meta.integers(2, 20)), int(r_meta.integers(2000, 20000)), int(r_meta.integers(5, 30)),
                         "None", int(r_meta.integers(4000000, 5000000)), report, method, str(terms), str(locs),
                         str([terms, locs] if locs else [terms]), cuis, "['C1282378']" if locs else "[]"])  # fmt: skip
    csv_path = root / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
    write_csv(csv_path, ["", *_PADCHEST_COLS], rows)
    files = {"labels": str(csv_path), **write_truth(root, ids, ["test"] * len(ids), classes, _frontal(clean, rows))}
    fr = _frontal(clean, rows)
    return writer_summary("padchest", root, files, classes, fr, fr, ["test"] * len(ids), None)


def _frontal(study_labels: np.ndarray, rows: list) -> np.ndarray:
    """Per-frontal-image labels of PadChest rows (study labels repeated, laterals dropped), in row order."""
    study_of = {}
    for r in rows:
        study_of.setdefault(r[4], len(study_of))
    return np.array([study_labels[study_of[r[4]]] for r in rows if r[9] != "L"], dtype=np.uint8)
