# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.discovery: the shared path that every input kind takes (folder search, .txt
lists, listed paths, case ids, input errors), asserted alike for radiographs and volumes."""

from __future__ import annotations

import pytest

from monai_ext.data.inference import inference_datalist

KINDS = ["radiograph", "volume"]
NOUN = {"radiograph": "image", "volume": "volume"}


@pytest.mark.parametrize("kind", KINDS)
def test_folder_search_is_sorted_recursive_and_leaves_out_hidden_entries(tmp_path, case_file, kind):
    root = tmp_path / "in"
    b, a, deep = case_file(kind, root / "b"), case_file(kind, root / "a"), case_file(kind, root / "p 1" / "x" / "c")
    case_file(kind, root / ".hidden")
    case_file(kind, root / ".cache" / "d")
    (root / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    (root / "notes.txt").write_text("no case")
    datalist = inference_datalist(root, kind)
    assert datalist == [
        {"image": str(a), "case_id": "a"},
        {"image": str(b), "case_id": "b"},
        {"image": str(deep), "case_id": "p_1__x__c"},
    ]
    assert inference_datalist(root, kind) == datalist  # the same ids on every run


@pytest.mark.parametrize("kind", KINDS)
def test_ids_colliding_ignoring_case_all_get_the_hash_of_their_path(tmp_path, case_file, sha8, kind):
    upper, lower = case_file(kind, tmp_path / "CT"), case_file(kind, tmp_path / "ct")
    rel = {p: p.relative_to(tmp_path).as_posix() for p in (upper, lower)}
    assert inference_datalist(tmp_path, kind, image_key="img", case_key="id") == [
        {"img": str(upper), "id": f"CT-{sha8(rel[upper])}"},
        {"img": str(lower), "id": f"ct-{sha8(rel[lower])}"},
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_txt_list_keeps_its_order_and_resolves_relative_paths(tmp_path, case_file, kind):
    first, second = case_file(kind, tmp_path / "data" / "z" / "one"), case_file(kind, tmp_path / "data" / "a" / "two")
    listing = tmp_path / "cases.txt"
    listing.write_text(f"# today\n\n  data/z/{first.name}  \n{second}\n")
    expected = [{"image": str(first), "case_id": "z__one"}, {"image": str(second), "case_id": "a__two"}]
    assert inference_datalist(listing, kind) == expected  # ids relative to the deepest common folder data/
    assert inference_datalist([first, second], kind) == expected
    assert inference_datalist(str(first), kind) == [{"image": str(first), "case_id": "one"}]


@pytest.mark.parametrize("kind", KINDS)
def test_input_errors_name_the_input(tmp_path, case_file, kind):
    with pytest.raises(FileNotFoundError, match="inference input not found: '.*nowhere'"):
        inference_datalist(tmp_path / "nowhere", kind)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"found under '.*empty' \(searched recursively"):
        inference_datalist(tmp_path / "empty", kind)
    with pytest.raises(ValueError, match="the inputs are an empty list"):
        inference_datalist([], kind)
    listing = tmp_path / "cases.txt"
    listing.write_text("# nothing today\n\n")
    with pytest.raises(ValueError, match=f"the input list '.*cases.txt' names no {NOUN[kind]}"):
        inference_datalist(listing, kind)
    listing.write_text("gone\n")
    with pytest.raises(FileNotFoundError, match="gone"):
        inference_datalist(listing, kind)
    path = case_file(kind, tmp_path / "x")
    with pytest.raises(ValueError, match=f"'{path.name}' is listed twice in the inputs"):
        inference_datalist([path, path], kind)
    with pytest.raises(ValueError, match="did you mean 'radiograph'"):
        inference_datalist(path, "radiographs")
