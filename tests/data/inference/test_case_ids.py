# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.case_ids: safe ids from relative paths, long ids, collisions and safe names."""

from __future__ import annotations

import pytest

from monai_ext.data.inference.case_ids import case_id_from_path, check_case_id, unique_case_ids


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


def test_unique_case_ids_hash_every_rival_of_a_collision(sha8):
    # the volume kind names 'ct1.nii.gz' by 'ct1', as the folder 'ct1': both get the hash of their relative path
    ids = unique_case_ids(["ct1", "ct1", "CT2"], ["ct1", "ct1.nii.gz", "CT2"])
    assert ids == [f"ct1-{sha8('ct1')}", f"ct1-{sha8('ct1.nii.gz')}", "CT2"]
    with pytest.raises(ValueError, match="'x.png' is listed twice"):
        unique_case_ids(["x.png", "x.png"], ["x.png", "x.png"])
    with pytest.raises(ValueError, match=r"case ids of 'a-.*' and 'a' coincide .*rename one of them"):
        unique_case_ids([f"a-{sha8('a')}", "a", "a.png"], [f"a-{sha8('a')}", "a", "a.png"])


@pytest.mark.parametrize("case_id", ["../evil", "", ".hidden", "-rf", "a/b", None])
def test_check_case_id_rejects_unsafe_names(case_id):
    with pytest.raises(ValueError, match="is not a safe file name"):
        check_case_id(case_id)
    assert check_case_id("p1__ct-0a1b2c3d") == "p1__ct-0a1b2c3d"
