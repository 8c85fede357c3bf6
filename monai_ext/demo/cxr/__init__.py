# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo chest X-ray datasets written in the real on-disk layouts (NIH, CheXpert, OpenI, PadChest, MIMIC-CXR-LT, VinDr).

Every writer ``write_<name>_demo(root, size=1.0, seed=0, image_size=128, **options) -> dict`` fills ``root`` (the
dataset folder itself, e.g. ``demo_data/nih``) with label files whose headers and value formats are those of the
real release (DATASETS.md 1.1-1.7, 4.3) and with images in the real format and bit depth, smaller than the real ones.
Images carry learnable signal (:mod:`monai_ext.demo.cxr_patterns`); clean labels follow real prevalences
(:mod:`monai_ext.demo.label_noise`); the splits that are NLP-mined in reality (NIH train_val and test lists, CheXpert
train, MIMIC-CXR-LT train and development) get asymmetric label noise, the test sets (OpenI, PadChest, CheXpert valid,
MIMIC-CXR-LT test) stay clean. Beside the data every writer leaves ``demo_clean_labels.csv`` (``image, split,
<classes>``: the truth the patterns were drawn from) and, where noise applies, ``demo_label_noise.csv`` (``image,
class, clean, noisy``: one row per label that differs from the truth, ``No Finding`` included). ``image`` is the
dataset's own image key (NIH ``Image Index``, CheXpert ``Path``, OpenI image id, PadChest ``ImageID``, MIMIC
``dicom_id``, VinDr ``image_id``). Everything is drawn from ``numpy.random.default_rng(seed)``: same seed, same bytes.

Common options: ``lesion_contrast`` (default 0.2, see :func:`monai_ext.demo.cxr_patterns.render_chest`); ``noise``
(``None``/0 = clean, a float scales the NIH-vs-radiologist rates, or ``{class: (fpr, fnr)}``; default 1.0);
``fpr_mode`` (:class:`monai_ext.demo.label_noise.FprMode`); ``min_positives`` (default 3): demo-only enrichment, every
class gets at least this many clean positives per split so that per-class AUC is defined; 0 keeps the real
prevalences.

This package's ``__init__`` is the public entry; one module per dataset (``nih``, ``chexpert``, ``openi``,
``padchest``, ``mimic``, ``vindr``) holds its writer, and ``common`` what they share (label draws, image and CSV
writing, the truth files, the summary dict).
"""

from __future__ import annotations

from monai_ext.demo.cxr.chexpert import write_chexpert_demo
from monai_ext.demo.cxr.mimic import write_mimic_cxr_lt_demo
from monai_ext.demo.cxr.nih import write_nih_demo
from monai_ext.demo.cxr.openi import write_openi_demo
from monai_ext.demo.cxr.padchest import write_padchest_demo
from monai_ext.demo.cxr.vindr import write_vindr_demo

__all__ = ["write_nih_demo", "write_chexpert_demo", "write_openi_demo", "write_padchest_demo",
           "write_mimic_cxr_lt_demo", "write_vindr_demo"]  # fmt: skip
