# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo OpenI (Indiana): ``ecgen-radiology/<n>.xml`` reports with MeSH terms, ``indiana_projections.csv`` and PNGs."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from monai_ext.demo.cxr.common import (
    draw_clean_labels,
    render_frontal,
    save_image,
    scaled_count,
    write_csv,
    write_truth,
    writer_summary,
)
from monai_ext.demo.cxr_patterns import render_lateral
from monai_ext.demo.label_noise import LABEL_MODELS

__all__ = ["write_openi_demo"]

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
    n_rep = scaled_count(80, size, 3)
    clean = draw_clean_labels("openi", n_rep, r_lab, min_positives)
    proj_rows, ids = [], []
    for n in range(1, n_rep + 1):
        y = clean[n - 1]
        stem = f"IM-{n:04d}"
        images = [(f"CXR{n}_{stem}-1001", "Frontal")]
        if r_meta.random() < lateral_fraction:
            images.append((f"CXR{n}_{stem}-2001", "Lateral"))
        for img_id, proj in images:
            if proj == "Frontal":
                image = render_frontal(classes, y, r_img, image_size, lesion_contrast)[0]
            else:
                image = render_lateral(image_size, r_img)
            save_image(root / "NLMCXR_png" / f"{img_id}.png", image, "png")
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
    write_csv(root / "indiana_projections.csv", ["uid", "filename", "projection"], proj_rows)
    files = {"reports": str(root / "ecgen-radiology"), "projections": str(root / "indiana_projections.csv"),
             **write_truth(root, ids, ["test"] * n_rep, classes, clean)}  # fmt: skip
    return writer_summary("openi", root, files, classes, clean, clean, ["test"] * n_rep, None, n_reports=n_rep)
