# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Label spaces, term rules, label alignment and the patient split of the CXR readers."""

from __future__ import annotations

import math

import pytest

from monai_ext.data.cxr import (
    MIMIC_CXR_LT_CLASSES,
    NIH_CLASSES,
    NVUM_CHEXPERT_SETTING_CLASSES,
    NVUM_NIH_SETTING_CLASSES,
    OPENI_TERM_RULES,
    PADCHEST_CLASSES,
    PADCHEST_TERM_RULES,
    VINDR_CLASSES,
    align_labels,
    match_terms,
    nvum_setting_classes,
    parse_padchest_labels,
    patient_val_split,
)


def test_class_lists():
    assert len(NIH_CLASSES) == 14 and "Pleural_Thickening" in NIH_CLASSES
    assert len(MIMIC_CXR_LT_CLASSES) == 26 and list(MIMIC_CXR_LT_CLASSES) == sorted(MIMIC_CXR_LT_CLASSES)
    assert len(VINDR_CLASSES) == 15 and VINDR_CLASSES[14] == "No finding" and VINDR_CLASSES[8] == "Nodule/Mass"
    assert NVUM_NIH_SETTING_CLASSES == (
        "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
        "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia", "No Finding",
    )  # fmt: skip
    assert nvum_setting_classes("chexpert") == NVUM_CHEXPERT_SETTING_CLASSES
    assert len(NVUM_CHEXPERT_SETTING_CLASSES) == 8 and NVUM_CHEXPERT_SETTING_CLASSES[-1] == "No Finding"
    assert len(PADCHEST_CLASSES) == 28 and "Tube" in PADCHEST_CLASSES


@pytest.mark.parametrize(
    "terms, rules, match, expected",
    [
        (["pleural effusion"], PADCHEST_TERM_RULES, "substring", {"Effusion"}),
        ([" pseudonodule", ""], PADCHEST_TERM_RULES, "substring", {"Nodule"}),
        (["pseudonodule"], PADCHEST_TERM_RULES, "exact", set()),
        (["nodule"], PADCHEST_TERM_RULES, "exact", {"Nodule"}),
        (["consolidation"], PADCHEST_TERM_RULES, "substring", {"Consolidation", "Infiltration"}),
        (["air bronchogram"], PADCHEST_TERM_RULES, "substring", {"Consolidation", "Infiltration"}),
        (["NSG tube"], PADCHEST_TERM_RULES, "substring", {"Tube"}),
        (["tuberculosis sequelae"], PADCHEST_TERM_RULES, "substring", {"Tuberculosis"}),
        (["endoprosthesis stent"], PADCHEST_TERM_RULES, "exact", {"Tube"}),
        (["pacemaker"], PADCHEST_TERM_RULES, "substring", {"Support Devices"}),
        (["adenopathy"], PADCHEST_TERM_RULES, "substring", {"Hilar Enlargement"}),
        (["apical pleural thickening"], PADCHEST_TERM_RULES, "substring", {"Pleural_Thickening"}),
        (["normal"], PADCHEST_TERM_RULES, "substring", set()),
        (["calcified granuloma"], OPENI_TERM_RULES, "substring", {"Calcified Granuloma", "Granuloma"}),
        (["Atelectases", "opacity"], OPENI_TERM_RULES, "substring", {"Atelectasis", "Lung Opacity"}),
        (["Pulmonary Emphysema"], OPENI_TERM_RULES, "substring", {"Emphysema"}),
        (["infiltrates"], OPENI_TERM_RULES, "substring", {"Infiltration"}),
    ],
)
def test_match_terms(terms, rules, match, expected):
    assert match_terms(terms, rules, match) == expected


def test_match_terms_bad_mode():
    with pytest.raises(ValueError, match="substring"):
        match_terms(["x"], PADCHEST_TERM_RULES, "fuzzy")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("['normal']", ["normal"]),
        ("['cardiomegaly', ' pleural effusion', '']", ["cardiomegaly", "pleural effusion"]),
        ("['']", []),
        ("[]", []),
        ("['COPD signs', 'NSG tube']", ["COPD signs", "NSG tube"]),
    ],
)
def test_parse_padchest_labels(text, expected):
    assert parse_padchest_labels(text) == expected


@pytest.mark.parametrize("text", ["'normal'", "[1, 2]", "['a'"])
def test_parse_padchest_labels_bad(text):
    with pytest.raises((ValueError, SyntaxError)):
        parse_padchest_labels(text)


def test_align_labels():
    src = ("A", "B", "Pleural Effusion", "X", "No Finding")
    items = [
        {"image": "0", "label": [1, 0, 0, 0, 0]},  # kept: A
        {"image": "1", "label": [0, 0, 1, 0, 0]},  # kept: renamed Effusion
        {"image": "2", "label": [1, 0, 0, 1, 0]},  # dropped: X is outside the target
        {"image": "3", "label": [0, 1, 0, 0, 0]},  # dropped: B is listed in drop_positive
        {"image": "4", "label": [0, 0, 0, 0, 0]},  # dropped: nothing positive left
        {"image": "5", "label": [0, 0, 0, 0, 1]},  # kept: No Finding
    ]
    out = align_labels(
        items, src, ("No Finding", "Effusion", "A", "B", "Z"), rename={"Pleural Effusion": "Effusion"},
        drop_positive=("B",),
    )  # fmt: skip
    assert [d["image"] for d in out] == ["0", "1", "5"]
    expected = [[0, 0, 1, 0, math.nan], [0, 1, 0, 0, math.nan], [1, 0, 0, 0, math.nan]]
    for d, e in zip(out, expected):
        assert d["label"][:4] == e[:4] and math.isnan(d["label"][4])
    assert items[0]["label"] == [1, 0, 0, 0, 0]  # input untouched
    kept = align_labels(items, src, ("A", "X"), drop_unlabelled=False)
    assert [d["image"] for d in kept] == ["0", "2", "4"]  # B, Pleural Effusion, No Finding positives dropped
    with pytest.raises(ValueError, match="has 2 entries, expected 5"):
        align_labels([{"image": "x", "label": [0, 1]}], src, ("A",))


def test_patient_val_split():
    ids = [f"p{i}" for i in range(20) for _ in range(i % 3 + 1)]
    val = patient_val_split(ids, 0.25, seed=3)
    assert len(val) == 5 and val <= set(ids)
    assert patient_val_split(reversed(ids), 0.25, seed=3) == val  # independent of row order
    assert patient_val_split(ids, 0.0, seed=3) == set()
    assert any(patient_val_split(ids, 0.25, seed=s) != val for s in range(4, 8))
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\), got 1.0"):
        patient_val_split(ids, 1.0, seed=0)
