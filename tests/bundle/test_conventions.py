# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of :mod:`monai_ext.bundle.conventions` on hand-written configs, including the patterns the first two bundles
used before the bundle template (handlers by position, policies in ``if``/``else`` expressions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_ext.bundle import conventions

H = "train#handlers#"  # + a list position: what the bundles must never write (kept out of the source by this prefix)


def test_positional_references_find_ids_and_override_keys():
    config = {
        "ema_teacher": f"@{H}3",
        f"{H}3#network": "$@network.module",
        "checkpoint": {"scores": f"@{H}12", "model": "@network"},
        "train": {"handlers": [{"_target_": "@ema_teacher", "_mode_": "callable"}]},
        "fine": "@train#handlers",
    }
    assert conventions.positional_references(config) == ["checkpoint#scores", "ema_teacher", f"{H}3#network"]


@pytest.mark.parametrize(
    "expression, branches",
    [
        ("$'official' if @nvum_mode == 'official' else 'paper'", True),
        ("$[c for c in @class_names if c != 'No Finding']", True),
        ("$@ema.network if @use_ema else @network", True),
        ("$monai_ext.data.cxr.nvum_datalist(split='train', **@datalist_args)", False),
        ("$[int(0.7 * @epochs), int(0.9 * @epochs)]", False),
        ("$print('if you see this, else nothing')", False),  # the words inside a string are not a branch
        ("$import os", False),
        ("$@resume_ckpt is None", False),
    ],
)
def test_branching_expressions(expression, branches):
    assert conventions.branching_expressions({"key": expression}) == (["key"] if branches else [])
    assert conventions.branching_expressions({"key": expression[1:]}) == []  # not an expression without the "$"


def test_handler_list_problems_name_non_dict_items():
    config = {
        "train": {
            "handlers": [{"_target_": "StatsHandler"}, "@ema_teacher", {"_target_": "@ema", "_mode_": "callable"}]
        },
        "validate#handlers": "$[]",
    }
    problems = conventions.handler_list_problems(config)
    assert len(problems) == 2
    assert problems[0].startswith(f"{H}1: '@ema_teacher'") and '"_mode_": "callable"' in problems[0]
    assert problems[1] == "validate#handlers: a str, not a list of handler dicts"
    assert conventions.handler_list_problems({"train": {"handlers": [{"_target_": "X"}]}}) == []


def _bundle(root: Path, overlay: dict | None, **configs: dict) -> Path:
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "metadata.json").write_text("{}")
    if overlay is not None:
        (root / "configs" / "demo.json").write_text(json.dumps(overlay))
    for name, config in configs.items():
        (root / "configs" / f"{name}.json").write_text(json.dumps(config))
    return root


def test_overlay_problems(tmp_path):
    assert conventions.overlay_problems(_bundle(tmp_path / "ok", {"image_size": 64})) == []
    missing = conventions.overlay_problems(_bundle(tmp_path / "missing", None))
    assert missing == [
        "configs/demo.json is missing (the small-run overlay of make demo, the benchmarks and the tests)"
    ]
    nested = conventions.overlay_problems(_bundle(tmp_path / "nested", {"train#dataset#_target_": "CacheDataset"}))
    assert nested == ["configs/demo.json sets nested id(s) ['train#dataset#_target_']; an overlay for every config "
                      "sets top-level ids only"]  # fmt: skip


def test_check_conventions_lists_every_problem_of_every_config(tmp_path):
    train = {"ema_teacher": f"@{H}3", "prior": "$'a' if @mode else 'b'", "train": {"handlers": ["@x"]}}
    multi = {"validate#evaluator#val_handlers": "$@validate#handlers if dist.get_rank() == 0 else None"}
    bundle = _bundle(tmp_path / "old_style", None, train=train, multi_gpu_train=multi)
    with pytest.raises(conventions.BundleConventionError) as info:
        conventions.check_conventions(bundle)
    lines = str(info.value).splitlines()
    assert lines[0] == "'old_style' breaks the bundle template (bundles/README.md):"
    assert lines[1:] == [
        "- configs/demo.json is missing (the small-run overlay of make demo, the benchmarks and the tests)",
        "- configs/multi_gpu_train.json: 'validate#evaluator#val_handlers' branches inside a $ expression",
        "- configs/train.json: 'ema_teacher' refers to a handler by list position",
        "- configs/train.json: 'prior' branches inside a $ expression",
        lines[5],
    ]
    assert lines[5].startswith(f"- configs/train.json: {H}0: '@x'")
    good = {
        "ema_teacher": {"_target_": "X"},
        "train": {"handlers": [{"_target_": "@ema_teacher", "_mode_": "callable"}]},
    }
    conventions.check_conventions(_bundle(tmp_path / "good", {"epochs": 1}, train=good))


def test_parameter_problems_unknown_scalar_ids_and_raw_flags():
    config = {
        "amp": False,
        "image_size": 64,
        "my_new_size": 3,  # a user-facing scalar without a rule
        "device": "$monai_ext.utils.default_device()",  # an expression: no rule needed
        "train#dataloader#shuffle": False,  # a nested override: not a top-level id
        "trainer": {"amp": "@amp", "other": "$monai_ext.bundle.as_flag(@amp, 'amp')"},
        "initialize": ["$monai_ext.bundle.check_parameters(amp=@amp, image_size=@image_size)"],
        "ampere": "@amp_like",
    }
    assert conventions.parameter_problems(config) == [
        "'my_new_size' has no rule in monai_ext.bundle.parameters.PARAMETER_RULES",
        "'trainer#amp' uses the boolean 'amp' without monai_ext.bundle.as_flag",
    ]
