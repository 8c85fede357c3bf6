# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of :mod:`monai_ext.bundle.workflow` on a tiny hand-written bundle whose configs record what ran."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from monai_ext.bundle.workflow import bundle_parser, bundle_workflow, config_paths, run_bundle_workflow

LOGGING = (
    "[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=f\n[logger_root]\nlevel=WARNING\nhandlers=h\n"
    "[handler_h]\nclass=StreamHandler\nlevel=WARNING\nformatter=f\nargs=(sys.stdout,)\n"
    "[formatter_f]\nformat=%(message)s\n"
)


@pytest.fixture
def bundle(tmp_path) -> Path:
    """``train.json`` appends its epochs and output file to a list; ``demo.json`` overrides the epochs."""
    root = tmp_path / "tiny"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "metadata.json").write_text(json.dumps({"version": "1.2.3"}))
    (root / "configs" / "logging.conf").write_text(LOGGING)
    train = {
        "imports": ["$import pathlib"],
        "epochs": 30,
        "out": "$@bundle_root + '/ran.txt'",
        "initialize": ["$pathlib.Path(@out).write_text('init ' + str(@epochs))"],
        "run": ["$pathlib.Path(@out).write_text(pathlib.Path(@out).read_text() + ' run ' + @_meta_#version)"],
    }
    (root / "configs" / "train.json").write_text(json.dumps(train))
    (root / "configs" / "demo.json").write_text(json.dumps({"epochs": 2}))
    return root


def test_config_paths_resolve_under_the_bundle_and_name_the_missing(bundle):
    assert config_paths(bundle, "configs/train.json") == [str(bundle / "configs" / "train.json")]
    with pytest.raises(FileNotFoundError, match=r"config file\(s\) not found: \[.*nope.json'\]"):
        config_paths(bundle, ["configs/train.json", "configs/nope.json"])


def test_bundle_parser_merges_in_order_and_applies_overrides_last(bundle):
    assert bundle_parser(bundle).get_parsed_content("epochs") == 30
    assert bundle_parser(bundle, ["configs/train.json", "configs/demo.json"]).get_parsed_content("epochs") == 2
    parser = bundle_parser(bundle, ["configs/train.json", "configs/demo.json"], {"epochs": 5})
    assert parser.get_parsed_content("epochs") == 5
    assert parser.get_parsed_content("bundle_root") == str(bundle.resolve())
    assert parser.get_parsed_content("_meta_#version") == "1.2.3"
    with pytest.raises(FileNotFoundError, match="not a bundle folder"):
        bundle_parser(bundle / "configs")


def test_run_bundle_workflow_runs_initialize_hooks_run_finalize(bundle, tmp_path):
    seen = []
    wf = run_bundle_workflow(bundle, ["configs/train.json", "configs/demo.json"], hooks=[lambda w: seen.append(w)])
    assert seen == [wf]
    assert (bundle / "ran.txt").read_text() == "init 2 run 1.2.3"
    other = tmp_path / "elsewhere"
    other.mkdir()
    run_bundle_workflow(bundle, "configs/train.json", bundle_root=str(other), epochs=7)  # an override wins
    assert (other / "ran.txt").read_text() == "init 7 run 1.2.3"


def test_bundle_workflow_logging_file(bundle):
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        root.setLevel(logging.DEBUG)
        bundle_workflow(bundle)  # logging left alone
        assert root.level == logging.DEBUG
        bundle_workflow(bundle, logging_file=True)  # the bundle's logging.conf is applied
        assert root.level == logging.WARNING
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
    with pytest.raises(FileNotFoundError, match="logging config not found"):
        bundle_workflow(bundle, logging_file=bundle / "nope.conf")


def test_unknown_override_keys_are_refused_with_the_closest_ids(bundle):
    with pytest.raises(KeyError, match=r"'epoch'.*did you mean \['epochs'\]"):
        bundle_workflow(bundle, ["configs/train.json"], epoch=3)
    with pytest.raises(KeyError, match="'nothing#here'"):
        bundle_parser(bundle, "configs/train.json", {"nothing#here": 1})


@pytest.mark.parametrize("value", ["$__import__('os').getcwd()", "@epochs", "%configs/train.json#x"])
def test_path_overrides_that_the_parser_would_interpret_are_refused(bundle, value):
    (bundle / "configs" / "paths.json").write_text(json.dumps({"output_dir": "$@bundle_root + '/eval'"}))
    with pytest.raises(ValueError, match="'output_dir' = .*must not start with"):
        bundle_workflow(bundle, ["configs/train.json", "configs/paths.json"], output_dir=value)
    bundle_workflow(bundle, ["configs/train.json", "configs/paths.json"], output_dir="./$weird")
