# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Inference never reads its own outputs as inputs and checks its output folder before any case runs; folder
symlinks are followed once per real folder, loops and broken links are logged and left out."""

from __future__ import annotations

import logging

import pytest

from monai_ext.data.inference import inference_datalist, pending_cases, prepare_inference_datalist
from monai_ext.data.inference.discovery import OUTPUT_MARKER, mark_output_folder


def test_output_folder_inside_inputs_is_refused_before_anything(tmp_path, png):
    inputs = tmp_path / "in"
    png(inputs / "a.png")
    for out in (inputs, inputs / "predictions"):
        with pytest.raises(ValueError, match=rf"output_dir '.*' is inside the input folder '{inputs}'"):
            prepare_inference_datalist(inputs, out, "radiograph")
    assert not (inputs / "predictions").exists()


def test_output_folder_that_cannot_be_created_is_named(tmp_path, png):
    png(tmp_path / "in" / "a.png")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(PermissionError, match=r"'output_dir' = '.*a_file/out' cannot be written \(Not a directory\)"):
        prepare_inference_datalist(tmp_path / "in", tmp_path / "a_file" / "out", "radiograph")


def test_a_marked_result_folder_is_left_out_of_discovery(tmp_path, png, caplog):
    png(tmp_path / "in" / "a.png")
    png(tmp_path / "in" / "old_results" / "b.png")
    mark_output_folder(tmp_path / "in" / "old_results")
    assert (tmp_path / "in" / "old_results" / OUTPUT_MARKER).is_file()
    with caplog.at_level(logging.WARNING):
        items = inference_datalist(tmp_path / "in", "radiograph")
    assert [d["case_id"] for d in items] == ["a"]
    assert "old_results" in caplog.text and "results of an earlier run" in caplog.text


def test_folder_symlinks_followed_once_loops_and_broken_links_logged(tmp_path, png, caplog):
    inputs = tmp_path / "in"
    png(inputs / "a.png")
    png(tmp_path / "elsewhere" / "b.png")
    (inputs / "linked").symlink_to(tmp_path / "elsewhere")  # os.walk alone does not descend into it
    (inputs / "loop").symlink_to(inputs)
    (inputs / "gone.png").symlink_to(tmp_path / "missing.png")
    (inputs / "z_same.png").symlink_to(inputs / "a.png")  # one file, two paths: one case
    with caplog.at_level(logging.WARNING):
        items = inference_datalist(inputs, "radiograph")
    assert [d["case_id"] for d in items] == ["a", "linked__b"]
    assert "symlink loop" in caplog.text and "broken symlink" in caplog.text and "gone.png" in caplog.text
    assert "z_same.png" in caplog.text and "a second path to one file" in caplog.text


def test_overwrite_given_as_text_is_parsed_strictly(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    items = [{"case_id": "a", "image": "a.png"}]
    assert pending_cases(items, tmp_path, "radiograph", overwrite="false") == []
    assert pending_cases(items, tmp_path, "radiograph", overwrite="TRUE") == items
    with pytest.raises(ValueError, match="'overwrite' must be a boolean"):
        pending_cases(items, tmp_path, "radiograph", overwrite="flase")
