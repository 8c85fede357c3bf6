# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.case_ids: safe ids from relative paths, and long ids."""

from __future__ import annotations

import pytest

from monai_ext.data.inference.case_ids import case_id_from_path


@pytest.mark.parametrize(
    "relative, expected",
    [
        ("a/b/c.dcm", "a__b__c"),
        ("patient 01/study#1/view1_frontal.JPG", "patient_01__study_1__view1_frontal"),
        ("1.2.840.113619.2.55.3", "1.2.840.113619.2.55.3"),  # DICOM UID name without suffix: dots kept
        ("CXR1_1_IM-0001-3001.dcm.png", "CXR1_1_IM-0001-3001.dcm"),  # OpenI: only the last image suffix goes
        ("CON.png", "_CON"),  # Windows device names
        ("nul.dcm", "_nul"),
        (".hidden.png", "hidden"),
        ("-rf.jpeg", "rf"),
        ("ü.png", "_"),
    ],
)
def test_case_id_from_path(relative, expected):
    assert case_id_from_path(relative) == expected


def test_long_case_id_is_cut_with_hash(sha8):
    relative = "d/" + "x" * 200 + ".png"
    case_id = case_id_from_path(relative)
    assert len(case_id) == 150
    assert case_id == "d__" + "x" * 138 + "-" + sha8(relative)
