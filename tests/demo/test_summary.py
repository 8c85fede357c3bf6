# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import math

import pandas as pd
import pytest

from monai_ext.demo import DEMO_WRITERS, get_writer, write_demo_datasets
from monai_ext.demo.__main__ import main
from monai_ext.demo.summary import SplitSummary, format_summary, summarize_demo


def test_format_summary_hand_worked():
    rows = [
        SplitSummary("toy", "train", 4, {"A": 0.25, "B": math.nan}),
        SplitSummary("toy", "test", 2, {"A": 0.5, "B": 1.0}),
    ]
    assert format_summary(rows) == (
        "| toy | train | test |\n|---|---|---|\n| items | 4 | 2 |\n| A | 25.0% | 50.0% |\n| B | n/a | 100.0% |"
    )


def test_summary_matches_the_files_on_disk(tmp_path):
    write_demo_datasets(tmp_path, size=0.5, seed=3, names=["nih"])
    rows = {s.split: s for s in summarize_demo(tmp_path, ["nih"])}
    # independent count from the NIH files: the official lists and the pipe-separated labels
    entry = pd.read_csv(tmp_path / "nih" / "Data_Entry_2017_v2020.csv")
    for split, list_name in (("train", "train_val_list.txt"), ("test", "test_list.txt")):
        names = (tmp_path / "nih" / list_name).read_text().split()
        assert rows[split].num_items == len(names)
        labels = entry.set_index("Image Index").loc[names, "Finding Labels"]
        expected = labels.map(lambda s: "Effusion" in s.split("|")).mean()
        assert rows[split].prevalence["Effusion"] == pytest.approx(expected)


def test_unknown_names_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown demo dataset 'nope'"):
        get_writer("nope")
    with pytest.raises(ValueError, match=r"no reader for demo dataset\(s\) \['nope'\]"):
        summarize_demo(tmp_path, ["nope"])


def test_every_writer_is_importable():
    for name in DEMO_WRITERS:
        assert callable(get_writer(name))


def test_command_line_writes_and_summarizes(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--size", "0.3", "--only", "rop", "--summary"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "rop" / "labels.csv").is_file()
    assert "| rop | train | val | meta | test |" in out
