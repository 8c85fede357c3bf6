# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.kinds: resolving an input kind, and each kind's result path."""

from __future__ import annotations

import pytest

from monai_ext.data.inference import CaseKind, InputKind, RadiographKind, VolumeKind, case_kind


@pytest.mark.parametrize(
    "kind, expected",
    [("radiograph", RadiographKind), (InputKind.RADIOGRAPH, RadiographKind), ("volume", VolumeKind)],
)
def test_case_kind_resolves_names_and_members(kind, expected):
    spec = case_kind(kind)
    assert isinstance(spec, expected) and isinstance(spec, CaseKind)
    assert spec.name == InputKind(kind).value
    assert case_kind(kind) is spec  # one strategy object per kind


def test_unknown_kind_suggests_the_nearest():
    with pytest.raises(ValueError, match="By 'volumes', did you mean 'volume'"):
        case_kind("volumes")


@pytest.mark.parametrize("kind, name", [("radiograph", "b.json"), ("volume", "b_seg.nii.gz")])
def test_result_path_of_each_kind(tmp_path, kind, name):
    assert case_kind(kind).result_path(tmp_path, "b") == tmp_path / name
    with pytest.raises(ValueError, match=r"case id '\.\./evil' is not a safe file name"):
        case_kind(kind).result_path(tmp_path, "../evil")
