# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``write_demo_datasets`` (``make demo``) gives the NVUM demo's datasets their DEMO_OPTIONS: more NIH patients,
enriched classes and a stronger lesion contrast than the writers' own defaults, which direct writer calls keep; the
CXR-LT demo gets a long-tailed MIMIC-CXR-LT and NIH/VinDr lesion boxes for its tail classes."""

from __future__ import annotations

import pandas as pd

from monai_ext.demo import DEMO_OPTIONS, get_writer, write_demo_datasets

SIZE = 0.2


def _clean(root) -> pd.DataFrame:
    return pd.read_csv(root / "demo_clean_labels.csv")


def test_nih_gets_more_patients_and_enriched_classes(tmp_path):
    opts = DEMO_OPTIONS["nih"]
    summary = write_demo_datasets(tmp_path / "demo", size=SIZE, seed=0, names=["nih"])["nih"]
    direct = get_writer("nih")(tmp_path / "direct", size=SIZE, seed=0)
    assert summary["n_patients"] == round(90 * SIZE * opts["size"]) > direct["n_patients"] == round(90 * SIZE)
    clean = _clean(tmp_path / "demo" / "nih")
    classes = summary["classes"]
    for split, rows in clean.groupby("split"):  # every class has min_positives clean positives in each split
        need = min(opts["min_positives"], len(rows))
        assert (rows[classes].sum(0) >= need).all(), split
    assert _clean(tmp_path / "direct")[classes].sum(0).min() < opts["min_positives"]


def test_test_sets_get_their_size_and_positives(tmp_path):
    summaries = write_demo_datasets(tmp_path, size=1.0, seed=0, names=["openi", "padchest"])
    assert summaries["openi"]["n_reports"] == round(80 * DEMO_OPTIONS["openi"]["size"])
    for name in ("openi", "padchest"):
        clean = _clean(tmp_path / name)
        assert clean[summaries[name]["classes"]].sum(0).min() >= DEMO_OPTIONS[name]["min_positives"]


def test_every_option_reaches_the_writer(tmp_path, monkeypatch):
    import importlib

    from monai_ext.demo import DEMO_WRITERS

    calls = {}
    for name in DEMO_OPTIONS:
        module = importlib.import_module(DEMO_WRITERS[name][0])
        func = get_writer(name).__name__
        monkeypatch.setattr(module, func, lambda root, _n=name, **kw: calls.setdefault(_n, kw))
    write_demo_datasets(tmp_path, size=0.5, seed=2, names=list(DEMO_OPTIONS))
    for name, opts in DEMO_OPTIONS.items():
        expected = {**opts, "size": 0.5 * opts.get("size", 1.0)}
        assert {k: calls[name][k] for k in expected} == expected, name
    assert DEMO_OPTIONS["nih"]["lesion_contrast"] > 0.2  # stronger than the writers' default


def test_cxr_lt_demo_has_a_long_tail_and_boxes_for_its_tail_classes(tmp_path):
    # make demo's options at half size: the NIH and VinDr demos give every DADAM-mapped lesion class boxes
    summaries = write_demo_datasets(tmp_path, size=0.5, seed=0, names=["mimic_cxr_lt", "nih", "vindr"])
    nih = pd.read_csv(tmp_path / "nih" / "BBox_List_2017.csv")["Finding Label"].value_counts()
    for name in ("Mass", "Nodule", "Infiltrate", "Pneumothorax"):  # NIH -> Mass, Nodule, Infiltration, Pneumothorax
        assert nih.get(name, 0) >= 5, name
    tv = set((tmp_path / "nih" / "train_val_list.txt").read_text().split())
    assert pd.read_csv(tmp_path / "nih" / "BBox_List_2017.csv")["Image Index"].isin(tv).any()
    vindr = pd.read_csv(tmp_path / "vindr" / "train.csv")
    agreed = vindr[vindr["class_id"] != 14].groupby(["class_name", "image_id"])["rad_id"].nunique() >= 2
    per_class = agreed.groupby(level=0).sum()
    for name in ("Nodule/Mass", "Pleural thickening", "Pulmonary fibrosis", "Infiltration"):
        assert per_class.get(name, 0) >= 5, name  # images whose class >= 2 of 3 readers marked
    # MIMIC-CXR-LT: long-tailed training counts, every class scorable in test
    train = pd.read_csv(tmp_path / "mimic_cxr_lt" / "cxr-lt-2023" / "train.csv")
    counts = train[summaries["mimic_cxr_lt"]["classes"]].sum(axis=0)
    assert counts.max() >= 8 * max(1, counts.min())
    test = _clean(tmp_path / "mimic_cxr_lt").query("split == 'test'")
    need = min(DEMO_OPTIONS["mimic_cxr_lt"]["eval_min_positives"], len(test))
    assert (test[summaries["mimic_cxr_lt"]["classes"]].sum(axis=0) >= need).all()
