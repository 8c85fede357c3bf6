# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from scripts.demo_bundles import BUNDLE_DEMOS, BundleDemo, format_results, read_result_table, run_bundle_demo

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


def test_format_results_hand_worked():
    openi = pd.DataFrame({"class": ["A", "B", "mean"], "auroc": [0.5, math.nan, 0.5]})
    padchest = pd.DataFrame({"class": ["A", "B", "mean"], "auroc": [0.75, 0.25, 0.5]})
    assert format_results("b", {"OpenI": openi, "PadChest": padchest}) == (
        "| b: auroc | OpenI | PadChest |\n|---|---|---|\n| A | 0.500 | 0.750 |\n| B | n/a | 0.250 |\n"
        "| mean | 0.500 | 0.500 |"
    )


def test_every_demo_names_an_existing_bundle_with_its_configs():
    for name, demo in BUNDLE_DEMOS.items():
        assert demo.name == name
        for config in ("train.json", "evaluate.json", "inference.json", "demo.json"):
            assert (BUNDLES / name / "configs" / config).is_file()


def test_missing_demo_data_is_named(tmp_path):
    demo = BundleDemo(name="cxr_nvum_classification", datasets={"dataset_dir": "nih"})
    with pytest.raises(FileNotFoundError, match=r"demo dataset '.*nih' not found; run `python -m monai_ext.demo"):
        run_bundle_demo(demo, BUNDLES, tmp_path / "no_demo", tmp_path / "work")
    with pytest.raises(FileNotFoundError, match="bundle configs not found"):
        run_bundle_demo(BundleDemo(name="absent", datasets={}), BUNDLES, tmp_path, tmp_path / "work")


def test_format_results_per_case_summary_hand_worked():
    cases = pd.DataFrame({"case_id": ["a", "b", "c"], "dice_infection": [0.5, 1.0, math.nan]})
    # mean of 0.5 and 1.0 = 0.75; population std = 0.25; the NaN case (empty ground truth) is not counted
    assert format_results("seg", {"Test": cases}, metric="dice_infection", index="case_id") == (
        "| seg | cases | dice_infection: mean +- std |\n|---|---|---|\n| Test | 2 | 0.750 +- 0.250 |"
    )


def test_json_report_is_read_as_one_row_per_section(tmp_path):
    report = {"official": {"sens@1": 0.5, "avg[0.5,1,2]": 0.25}, "strict": {"sens@1": 0.0, "avg[0.5,1,2]": 0.125},
              "num_images": 5, "conventions": {"official": {"duplicate": "ignore"}}}  # fmt: skip
    (tmp_path / "test_froc.json").write_text(json.dumps(report))
    table = read_result_table(tmp_path / "test_froc.json")
    assert table.to_dict("records") == [
        {"class": "official", "sens@1": 0.5, "avg[0.5,1,2]": 0.25},
        {"class": "strict", "sens@1": 0.0, "avg[0.5,1,2]": 0.125},
    ]
    assert format_results("det", {"Test": table}, metric="avg[0.5,1,2]") == (
        "| det: avg[0.5,1,2] | Test |\n|---|---|\n| official | 0.250 |\n| strict | 0.125 |"
    )
    (tmp_path / "empty.json").write_text(json.dumps({"num_images": 5}))
    with pytest.raises(ValueError, match=r"empty\.json' holds no section of numbers"):
        read_result_table(tmp_path / "empty.json")
