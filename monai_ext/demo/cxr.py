# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo chest X-ray datasets written in the real on-disk layouts (NIH, CheXpert, OpenI, PadChest, MIMIC-CXR-LT, VinDr).

Every writer ``write_<name>_demo(root, size=1.0, seed=0, image_size=128, **options) -> dict`` fills ``root`` (the
dataset folder itself, e.g. ``demo_data/nih``) with label files whose headers and value formats are those of the
real release (DATASETS.md 1.1-1.7, 4.3) and with images in the real format and bit depth, smaller than the real ones.
Images carry learnable signal (:mod:`.cxr_patterns`); clean labels follow real prevalences (:mod:`.label_noise`);
the splits that are NLP-mined in reality (NIH train_val and test lists, CheXpert train, MIMIC-CXR-LT train and
development) get asymmetric label noise, the test sets (OpenI, PadChest, CheXpert valid, MIMIC-CXR-LT test) stay
clean. Beside the data every writer leaves ``demo_clean_labels.csv`` (``image, split, <classes>``: the truth the
patterns were drawn from) and, where noise applies, ``demo_label_noise.csv`` (``image, class, clean, noisy``: one
row per label that differs from the truth, ``No Finding`` included). ``image`` is the dataset's own image key
(NIH ``Image Index``, CheXpert ``Path``, OpenI image id, PadChest ``ImageID``, MIMIC ``dicom_id``, VinDr
``image_id``). Everything is drawn from ``numpy.random.default_rng(seed)``: same seed, same bytes.

Common options: ``lesion_contrast`` (default 0.2, see :func:`.cxr_patterns.render_chest`); ``noise`` (``None``/0 =
clean, a float scales the NIH-vs-radiologist rates, or ``{class: (fpr, fnr)}``; default 1.0); ``fpr_mode``
(:class:`.label_noise.FprMode`); ``min_positives`` (default 3): demo-only enrichment, every class gets at least this
many clean positives per split so that per-class AUC is defined; 0 keeps the real prevalences.
"""

from __future__ import annotations

import csv
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from monai_ext.demo.stats import load_stats

from .cxr_patterns import Lesion, patterns_for_class, render_chest, render_lateral
from .label_noise import LABEL_MODELS, VINDR_ANY_READER, FprMode, corrupt_labels, enforce_min_positives, resolve_noise
from .label_noise import sample_clean_labels

__all__ = ["write_nih_demo", "write_chexpert_demo", "write_openi_demo", "write_padchest_demo",
           "write_mimic_cxr_lt_demo", "write_vindr_demo"]  # fmt: skip

NoiseOption = float | Mapping[str, Sequence[float]] | None
NO_FINDING = "No Finding"
_NIH_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
               "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")  # fmt: skip
_BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
_BOXED = {"Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax"}
_CHEXPERT_COLS = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", NO_FINDING] + list(LABEL_MODELS["chexpert"].classes)
# CheXpert frontal-train fractions per class (cxr_label_stats.json chexpert_frontal.per_class_frontal): uncertain
# (-1.0) among all images, and explicit 0.0 among the entries that are 0.0 or blank, neg / (neg + blank), to 3 places.
_CHEXPERT_COUNTS = [load_stats("cxr_label_stats")["chexpert_frontal"]["per_class_frontal"][c]
                    for c in LABEL_MODELS["chexpert"].classes]  # fmt: skip
_CHEXPERT_UNCERTAIN = tuple(c["frac_uncertain"] for c in _CHEXPERT_COUNTS)
_CHEXPERT_ZERO = tuple(round(c["neg"] / (c["neg"] + c["blank"]), 3) for c in _CHEXPERT_COUNTS)
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
_OPENI_TERMS = {  # OpenI MeSH <automatic> spellings and a <major> heading per class
    "Atelectasis": (("atelectasis", "atelectases"), "Pulmonary Atelectasis"),
    "Cardiomegaly": (("cardiomegaly",), "Cardiomegaly"),
    "Effusion": (("pleural effusion", "pleural effusions"), "Pleural Effusion"),
    "Infiltration": (("infiltrates",), "Infiltrate"),
    "Mass": (("mass",), "Mass"), "Nodule": (("nodule",), "Nodule"), "Pneumonia": (("pneumonia",), "Pneumonia"),
    "Pneumothorax": (("pneumothorax",), "Pneumothorax"), "Edema": (("pulmonary edema", "edema"), "Pulmonary Edema"),
    "Emphysema": (("pulmonary emphysema", "emphysema"), "Pulmonary Emphysema"),
    "Fibrosis": (("pulmonary fibrosis",), "Pulmonary Fibrosis"),
    "Pleural_Thickening": (("pleural thickening",), "Pleural Thickening"),
    "Hernia": (("hernia, hiatal",), "Hernia, Hiatal"), "Fracture": (("fracture", "rib fracture"), "Fractures, Bone"),
}  # fmt: skip


def _counts(base: int, size: float, minimum: int) -> int:
    if size <= 0:
        raise ValueError(f"size must be > 0, got {size}")
    return max(minimum, int(round(base * size)))


def _clean_labels(name: str, n: int, rng: np.random.Generator, min_positives: int) -> np.ndarray:
    y = sample_clean_labels(LABEL_MODELS[name], n, rng)
    return enforce_min_positives(y, min_positives, rng) if min_positives > 0 and n > 0 else y


def _render(classes, labels_row, rng, image_size, lesion_contrast) -> tuple[np.ndarray, list[tuple[str, Lesion]]]:
    """Draw one frontal image for a clean label row; returns (float image, [(class, lesion)])."""
    names = [c for c, v in zip(classes, labels_row) if v]
    pats = [patterns_for_class(c)[int(rng.integers(len(patterns_for_class(c))))] for c in names]
    chest = render_chest(image_size, pats, rng, lesion_contrast)
    return chest.image, list(zip(names, chest.lesions))


def _save(path: Path, image: np.ndarray, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "png16":  # 12-bit values in a 16-bit PNG, as the PadChest BitsStored_DICOM column says
        Image.fromarray(np.round(image * 4095).astype(np.uint16)).save(path, format="PNG")
        return
    img = Image.fromarray(np.round(image * 255).astype(np.uint8))
    img.save(path, format="JPEG", quality=95) if fmt == "jpeg" else img.save(path, format="PNG")


def _write_csv(path: Path, header: Sequence[str] | str, rows: Sequence[Sequence[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        if isinstance(header, str):  # verbatim header line (NIH bracketed names, BBox trailing commas)
            f.write(header + "\n")
        w = csv.writer(f, lineterminator="\n")
        if not isinstance(header, str):
            w.writerow(header)
        w.writerows(rows)


def _with_no_finding(y: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Append the derived No Finding column: 1 when no finding other than Support Devices is positive."""
    keep = [i for i, c in enumerate(classes) if c != "Support Devices"]
    return np.concatenate([y, (y[:, keep].sum(1) == 0)[:, None].astype(np.uint8)], axis=1)


def _write_truth(root: Path, ids, splits, classes, clean, noisy=None) -> dict[str, str]:
    """Write demo_clean_labels.csv and, when ``noisy`` is given, demo_label_noise.csv; return {kind: path}.

    ``noisy`` holds the label values as written (0/1, or -1 for a CheXpert uncertain mention); one noise row per
    entry that differs from ``clean``.
    """
    files = {"clean_labels": str(root / "demo_clean_labels.csv")}
    _write_csv(root / "demo_clean_labels.csv", ["image", "split", *classes],
               [[i, s, *map(int, row)] for i, s, row in zip(ids, splits, clean)])  # fmt: skip
    if noisy is not None:
        r, c = np.nonzero(np.asarray(noisy) != np.asarray(clean))
        rows = [[ids[i], classes[j], int(clean[i, j]), int(noisy[i, j])] for i, j in zip(r, c)]
        _write_csv(root / "demo_label_noise.csv", ["image", "class", "clean", "noisy"], rows)
        files["label_noise"] = str(root / "demo_label_noise.csv")
    return files


def _noisy(clean: np.ndarray, name: str, noise: NoiseOption, fpr_mode, rng) -> tuple[np.ndarray, np.ndarray]:
    model = LABEL_MODELS[name]
    rates = resolve_noise(None if noise == 0 else noise, model.classes, model.prevalence, fpr_mode)
    return corrupt_labels(clean, rates, rng), rates


def _summary(name: str, root: Path, files: dict, classes, clean, noisy, splits, rates, **extra) -> dict[str, Any]:
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
) -> dict[str, Any]:
    """NIH ChestX-ray14 layout: ``Data_Entry_2017_v2020.csv``, ``train_val_list.txt``, ``test_list.txt``,
    ``BBox_List_2017.csv`` and ``images/PPPPPPPP_FFF.png`` (8-bit grey, ``image_size`` square).

    ``round(90 * size)`` patients with 1-8 follow-up images each (~2.5 on average), split patient-disjointly into the
    official lists (``test_fraction`` of patients in ``test_list.txt``). ``Finding Labels`` are the *noisy* labels
    (both lists: NIH labels are NLP-mined); ``No Finding`` is set exactly when no noisy disease is left. Box rows
    (label ``Infiltrate`` for Infiltration) are written for ``bbox_fraction`` of the test images' drawn lesions of
    the 8 boxed classes that are also positive in the noisy labels, in PNG pixels ``x, y, w, h``.

    Returns:
        summary dict: ``files``, ``n_images``, ``n_patients``, ``splits``, clean/noisy positives, ``noise_rates``,
        ``n_flips``, ``n_boxes``.
    """
    root = Path(root)
    r_meta, r_lab, r_img, r_noise = np.random.default_rng(seed).spawn(4)
    classes = LABEL_MODELS["nih"].classes
    n_pat = _counts(90, size, 4)
    n_img = 1 + np.minimum(r_meta.geometric(0.4, size=n_pat) - 1, 7)
    perm = r_meta.permutation(n_pat)
    test_pat = set(perm[: max(1, int(round(test_fraction * n_pat)))].tolist())
    names = [f"{p + 1:08d}_{k:03d}.png" for p in range(n_pat) for k in range(n_img[p])]
    pid = np.repeat(np.arange(n_pat), n_img)
    splits = np.array(["test" if p in test_pat else "train_val" for p in pid])
    clean = np.zeros((len(names), len(classes)), dtype=np.uint8)
    for s in ("train_val", "test"):
        idx = np.flatnonzero(splits == s)
        clean[idx] = _clean_labels("nih", len(idx), r_lab, min_positives)
    noisy, rates = _noisy(clean, "nih", noise, fpr_mode, r_noise)
    rows, boxes = [], []
    sex = r_meta.choice(["M", "F"], size=n_pat, p=[0.565, 0.435])
    age0 = r_meta.integers(18, 86, size=n_pat)
    originals = ((2500, 2048, 0.168), (2992, 2991, 0.143), (3056, 2544, 0.139), (2021, 2021, 0.194))
    for i, name in enumerate(names):
        image, lesions = _render(classes, clean[i], r_img, image_size, lesion_contrast)
        _save(root / "images" / name, image, "png")
        found = "|".join(sorted(c for c, v in zip(classes, noisy[i]) if v)) or NO_FINDING
        k = int(name[9:12])
        w, h, sp = originals[int(r_meta.integers(len(originals)))]
        view = "PA" if r_meta.random() < 0.6 else "AP"
        rows.append([name, found, k, pid[i] + 1, age0[pid[i]] + k // 3, sex[pid[i]], view, w, h, sp, sp])
        for cls, les in lesions:
            keep = splits[i] == "test" and cls in _BOXED and noisy[i, classes.index(cls)]
            if keep and r_meta.random() < bbox_fraction:
                x1, y1, x2, y2 = les.box
                boxes.append([name, "Infiltrate" if cls == "Infiltration" else cls, x1, y1, x2 - x1, y2 - y1])
    _write_csv(root / "Data_Entry_2017_v2020.csv", _NIH_HEADER, rows)
    _write_csv(root / "BBox_List_2017.csv", _BBOX_HEADER, boxes)
    for s, fname in (("train_val", "train_val_list.txt"), ("test", "test_list.txt")):
        (root / fname).write_text("".join(f"{n}\n" for n, sp in zip(names, splits) if sp == s), encoding="utf-8")
    cols = [*classes, NO_FINDING]
    clean_nf, noisy_nf = (np.concatenate([y, (y.sum(1) == 0)[:, None].astype(np.uint8)], 1) for y in (clean, noisy))
    files = {"data_entry": str(root / "Data_Entry_2017_v2020.csv"), "bbox": str(root / "BBox_List_2017.csv"),
             "train_val_list": str(root / "train_val_list.txt"), "test_list": str(root / "test_list.txt"),
             **_write_truth(root, names, splits, cols, clean_nf, noisy_nf)}  # fmt: skip
    return _summary("nih", root, files, classes, clean, noisy, splits, rates, n_patients=n_pat, n_boxes=len(boxes))


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
        summary dict as :func:`write_nih_demo` (``splits`` ``train``/``valid``, counts over frontal and lateral rows).
    """
    root = Path(root)
    r_meta, r_lab, r_img, r_noise = np.random.default_rng(seed).spawn(4)
    classes, prev = LABEL_MODELS["chexpert"].classes, np.asarray(LABEL_MODELS["chexpert"].prevalence)
    studies = []  # (split, patient number, study number)
    for split, n_pat, first in (("train", _counts(240, size, 3), 1), ("valid", _counts(20, size, 3), 64541)):
        n_st = 1 + np.minimum(r_meta.geometric(0.5, size=n_pat) - 1, 3) if split == "train" else np.ones(n_pat, int)
        studies += [(split, first + p, s + 1) for p in range(n_pat) for s in range(n_st[p])]
    st_split = np.array([s[0] for s in studies])
    clean = np.zeros((len(studies), len(classes)), dtype=np.uint8)
    for s in ("train", "valid"):
        idx = np.flatnonzero(st_split == s)
        clean[idx] = _clean_labels("chexpert", len(idx), r_lab, min_positives)
    noisy, rates = _noisy(clean, "chexpert", noise, fpr_mode, r_noise)
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
                image, _ = _render(classes, clean[i], r_img, image_size, lesion_contrast)
            else:
                image = render_lateral(image_size, r_img)
            _save(root / path, image, "jpeg")
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
        _write_csv(root / "CheXpert-v1.0-small" / f"{split}.csv", _CHEXPERT_COLS, rows[split])
    cols = [*classes, NO_FINDING]
    c_all, n_all = _with_no_finding(np.array(id_clean), classes), _with_no_finding(np.array(id_noisy), classes)
    vals = np.array(id_values).astype(np.int64)
    v_all = np.concatenate([vals, (np.abs(vals)[:, :-1].sum(1) == 0)[:, None]], 1)
    files = {"train": str(root / "CheXpert-v1.0-small" / "train.csv"),
             "valid": str(root / "CheXpert-v1.0-small" / "valid.csv")}  # fmt: skip
    files.update(_write_truth(root, ids, id_split, cols, c_all, v_all))
    n_unc = int((np.array(id_values) == -1).sum())
    return _summary("chexpert", root, files, classes, c_all[:, :-1], n_all[:, :-1], id_split, rates, n_uncertain=n_unc)


def write_openi_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 128,
    lesion_contrast: float = 0.2,
    min_positives: int = 3,
    lateral_fraction: float = 0.9,
) -> dict[str, Any]:
    """OpenI (Indiana) layout: ``ecgen-radiology/<n>.xml`` reports, Kaggle ``indiana_projections.csv``
    (``uid,filename,projection``) and ``NLMCXR_png/CXR<n>_IM-xxxx-xxxx.png`` (8-bit PNG).

    ``round(80 * size)`` reports, each with one frontal image (``IM-kkkk-1001``) and, with ``lateral_fraction``, a
    lesion-free lateral one (``IM-kkkk-2001``). Labels are clean (OpenI is a test set) and written as MeSH
    ``<automatic>`` terms (what torchxrayvision and NVUM read) plus ``<major>`` headings (``normal`` when there is
    no finding). ``demo_clean_labels.csv`` lists the frontal images (the laterals carry no drawn signal).

    Returns:
        summary dict with ``files``, ``n_images`` (frontal), ``n_reports``, clean positives.
    """
    root = Path(root)
    r_meta, r_lab, r_img, _ = np.random.default_rng(seed).spawn(4)
    classes = LABEL_MODELS["openi"].classes
    n_rep = _counts(80, size, 3)
    clean = _clean_labels("openi", n_rep, r_lab, min_positives)
    proj_rows, ids = [], []
    for n in range(1, n_rep + 1):
        y = clean[n - 1]
        stem = f"IM-{n:04d}"
        images = [(f"CXR{n}_{stem}-1001", "Frontal")]
        if r_meta.random() < lateral_fraction:
            images.append((f"CXR{n}_{stem}-2001", "Lateral"))
        for img_id, proj in images:
            image = _render(classes, y, r_img, image_size, lesion_contrast)[0] if proj == "Frontal" else None
            _save(root / "NLMCXR_png" / f"{img_id}.png", render_lateral(image_size, r_img) if image is None else image,
                  "png")  # fmt: skip
            proj_rows.append([n, f"{img_id[3:]}.dcm.png", proj])
        ids.append(images[0][0])
        pos = [c for c, v in zip(classes, y) if v]
        rep = ET.Element("eCitation")
        ET.SubElement(rep, "meta", type="rr")
        ET.SubElement(rep, "uId", id=f"CXR{n}")
        ET.SubElement(rep, "pmcId", id=str(n))
        ET.SubElement(rep, "docSource").text = "CXR"
        ET.SubElement(rep, "IUXRId", id=str(n))
        abstract = ET.SubElement(ET.SubElement(ET.SubElement(rep, "MedlineCitation"), "Article"), "Abstract")
        findings = "; ".join(_OPENI_TERMS[c][1] for c in pos) or "The heart and lungs are within normal limits"
        ET.SubElement(abstract, "AbstractText", Label="FINDINGS").text = f"{findings}."
        impression = "Abnormal." if pos else "Normal chest x-XXXX."
        ET.SubElement(abstract, "AbstractText", Label="IMPRESSION").text = impression
        mesh = ET.SubElement(rep, "MeSH")
        for c in pos or ["normal"]:
            ET.SubElement(mesh, "major").text = _OPENI_TERMS[c][1] if pos else "normal"
        for c in pos:
            terms = _OPENI_TERMS[c][0]
            ET.SubElement(mesh, "automatic").text = terms[int(r_meta.integers(len(terms)))]
        for k, (img_id, _) in enumerate(images, start=1):
            parent = ET.SubElement(rep, "parentImage", id=img_id)
            ET.SubElement(parent, "figureId").text = f"F{k}"
            ET.SubElement(parent, "caption").text = "Xray Chest PA and Lateral"
            ET.SubElement(ET.SubElement(parent, "panel", type="single"), "url").text = (
                f"/hadoop/storage/radiology/extract/{img_id}.jpg"
            )
        (root / "ecgen-radiology").mkdir(parents=True, exist_ok=True)
        ET.indent(rep, space="   ")
        ET.ElementTree(rep).write(root / "ecgen-radiology" / f"{n}.xml", encoding="utf-8", xml_declaration=True)
    _write_csv(root / "indiana_projections.csv", ["uid", "filename", "projection"], proj_rows)
    files = {"reports": str(root / "ecgen-radiology"), "projections": str(root / "indiana_projections.csv"),
             **_write_truth(root, ids, ["test"] * n_rep, classes, clean)}  # fmt: skip
    return _summary("openi", root, files, classes, clean, clean, ["test"] * n_rep, None, n_reports=n_rep)


def _hexid(rng: np.random.Generator, n_hex: int) -> str:
    return "".join("0123456789abcdef"[i] for i in rng.integers(0, 16, size=n_hex))


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
    n_st = _counts(100, size, 3)
    clean = _clean_labels("padchest", n_st, r_lab, min_positives)
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
            image_id = f"{study}_{_hexid(r_meta, 6)}.png"
            image_dir = int(r_meta.integers(0, 4))
            if proj == "L":
                image = render_lateral(image_size, r_img)
            else:
                image = _render(classes, drawn[s], r_img, image_size, lesion_contrast)[0]
                ids.append(image_id)
            _save(root / "images" / str(image_dir) / image_id, image, "png16")
            view_dicom = {"PA": "POSTEROANTERIOR", "AP": "AP", "AP_horizontal": "AP", "L": "LATERAL"}[proj]
            manual = "Manual review of DICOM fields" if r_meta.random() < 0.95 else "resnet-50.t7"
            rows.append([len(rows), image_id, image_dir, date, study, patient, birth, sex, view_dicom, proj, manual,
                         "Yes" if birth > 2009 else "No", "CR", "ImagingDynamicsCompanyLtd", "MONOCHROME2", 0, "None",
                         "None", 12, 2048, 4096, image_size, image_size, int(r_meta.integers(100, 500)),
                         int(r_meta.integers(2, 20)), int(r_meta.integers(2000, 20000)), int(r_meta.integers(5, 30)),
                         "None", int(r_meta.integers(4000000, 5000000)), report, method, str(terms), str(locs),
                         str([terms, locs] if locs else [terms]), cuis, "['C1282378']" if locs else "[]"])  # fmt: skip
    csv_path = root / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
    _write_csv(csv_path, ["", *_PADCHEST_COLS], rows)
    files = {"labels": str(csv_path), **_write_truth(root, ids, ["test"] * len(ids), classes, _frontal(clean, rows))}
    fr = _frontal(clean, rows)
    return _summary("padchest", root, files, classes, fr, fr, ["test"] * len(ids), None)


def _frontal(study_labels: np.ndarray, rows: list) -> np.ndarray:
    """Per-frontal-image labels of PadChest rows (study labels repeated, laterals dropped), in row order."""
    study_of = {}
    for r in rows:
        study_of.setdefault(r[4], len(study_of))
    return np.array([study_labels[study_of[r[4]]] for r in rows if r[9] != "L"], dtype=np.uint8)


def write_mimic_cxr_lt_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 128,
    lesion_contrast: float = 0.2,
    noise: NoiseOption = 1.0,
    fpr_mode: FprMode | str = FprMode.MATCHED,
    min_positives: int = 3,
) -> dict[str, Any]:
    """MIMIC-CXR-LT 2023 layout: ``cxr-lt-2023/{train,development,test}.csv`` with the 6 metadata columns
    ``subject_id,study_id,dicom_id,ViewPosition,split,path`` then the 26 classes (alphabetical, 0/1), and
    ``files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg`` (8-bit JPEG).

    ``round(100 * size)`` subjects with 1-3 studies of one frontal image, split by subject 60/15/25 % into train,
    development and test. Prevalences are long-tailed (:data:`.label_noise.LABEL_MODELS` ``"mimic_cxr_lt"``);
    ``No Finding`` is 1 exactly when no finding other than Support Devices is positive, so every image has at least
    one positive. Train and development labels are noisy, test labels clean.

    Returns:
        summary dict as :func:`write_nih_demo` (classes without No Finding).
    """
    root = Path(root)
    r_meta, r_lab, r_img, r_noise = np.random.default_rng(seed).spawn(4)
    classes = LABEL_MODELS["mimic_cxr_lt"].classes
    cols = sorted([*classes, NO_FINDING])
    n_sub = _counts(100, size, 6)
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
        clean[idx] = _clean_labels("mimic_cxr_lt", len(idx), r_lab, min_positives)
    noisy, rates = _noisy(clean, "mimic_cxr_lt", noise, fpr_mode, r_noise)
    noisy[splits == "test"] = clean[splits == "test"]
    study_ids = 50000000 + r_meta.choice(9990000, size=len(subj), replace=False)
    order = [cols.index(c) for c in [*classes, NO_FINDING]]
    rows = {s: [] for s in ("train", "development", "test")}
    ids = []
    for i, k in enumerate(subj):
        sid = int(sub_ids[k])
        dicom = "-".join(_hexid(r_meta, 8) for _ in range(5))
        path = f"files/p{str(sid)[:2]}/p{sid}/s{study_ids[i]}/{dicom}.jpg"
        _save(root / path, _render(classes, clean[i], r_img, image_size, lesion_contrast)[0], "jpeg")
        y = _with_no_finding(noisy[i : i + 1], classes)[0]
        lab = [0] * len(cols)
        for j, o in enumerate(order):
            lab[o] = int(y[j])
        rows[splits[i]].append([sid, int(study_ids[i]), dicom, "PA" if r_meta.random() < 0.5 else "AP", splits[i], path,
                                *lab])  # fmt: skip
        ids.append(dicom)
    header = ["subject_id", "study_id", "dicom_id", "ViewPosition", "split", "path", *cols]
    files = {}
    for s, r in rows.items():
        _write_csv(root / "cxr-lt-2023" / f"{s}.csv", header, r)
        files[s] = str(root / "cxr-lt-2023" / f"{s}.csv")
    c_nf, n_nf = _with_no_finding(clean, classes), _with_no_finding(noisy, classes)
    files.update(_write_truth(root, ids, splits, [*classes, NO_FINDING], c_nf, n_nf))
    return _summary("mimic_cxr_lt", root, files, classes, clean, noisy, splits, rates, n_subjects=n_sub)


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
    n = _counts(100, size, 3)
    clean = _clean_labels("vindr", n, r_lab, min_positives)
    miss3 = (1 - reader_sensitivity) ** 3
    other = np.maximum((1 - model.no_finding) - prev, 1e-3)  # P(abnormal and class absent)
    excess = np.clip((np.asarray([VINDR_ANY_READER[c] for c in classes]) - prev * (1 - miss3)) / other, 0, 0.99)
    fp = 1 - (1 - excess) ** (1 / 3)
    rows, ids, reader_pos = [], [], np.zeros(len(classes), dtype=int)
    for i in range(n):
        image_id = _hexid(r_meta, 32)
        ids.append(image_id)
        image, lesions = _render(classes, clean[i], r_img, image_size, lesion_contrast)
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
    _write_csv(root / "train.csv", ["image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max"],
               rows)  # fmt: skip
    files = {"train": str(root / "train.csv"), **_write_truth(root, ids, ["train"] * n, classes, clean)}
    return _summary("vindr", root, files, classes, clean, clean, ["train"] * n, None, n_rows=len(rows),
                    reader_positives={c: int(v) for c, v in zip(classes, reader_pos)})  # fmt: skip
