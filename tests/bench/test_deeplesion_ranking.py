# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The ranking audit's pieces on hand-made tables."""

from __future__ import annotations

import pandas as pd
import pytest

from scripts.bench.deeplesion_ranking import SCORES, image_noise_flags, ranking_report


def test_noise_flags_from_the_demo_record(tmp_path):
    csv = tmp_path / "demo_lesions.csv"
    pd.DataFrame(
        {
            "File_name": ["a.png", "a.png", "a.png", "b.png", "c.png"],
            "annotation": ["box", "unannotated", "unannotated", "loose_box", "unannotated"],
            "appearance": ["typical", "typical", "typical", "typical", "tiny"],
        }
    ).to_csv(csv, index=False)
    flags = image_noise_flags(csv, ["a.png", "b.png", "c.png", "d.png"])
    assert flags["n_unannotated"].tolist() == [2, 0, 1, 0]
    assert flags["unannotated_2plus"].tolist() == [True, False, False, False]
    assert flags["loose_box"].tolist() == [False, True, False, False]
    assert flags["subtle"].tolist() == [False, False, True, False]


def test_ranking_report_by_hand():
    names = [f"{i}.png" for i in range(4)]
    scores = pd.DataFrame({"file_name": names, **{s: [0.1, 0.2, 0.3, 0.4] for s in SCORES}})
    scores["focal_all"] = [0.4, 0.3, 0.2, 0.1]  # the reverse order: rank correlation -1
    flags = pd.DataFrame({"file_name": names, "unannotated_2plus": [False, False, True, True],
                          "loose_box": [True, False, False, False], "subtle": [False] * 4})  # fmt: skip
    report = ranking_report(scores, flags)
    assert report["spearman"]["focal_all"]["u_fpn_k8"] == pytest.approx(-1.0)
    assert report["spearman"]["sampled_mean_a"]["u_fpn_k8"] == pytest.approx(1.0)
    # the two highest scores are the two unannotated images: AUROC 1; focal_all ranks them lowest: 0
    assert report["auroc"]["unannotated_2plus"]["u_fpn_k8"] == pytest.approx(1.0)
    assert report["auroc"]["unannotated_2plus"]["focal_all"] == pytest.approx(0.0)
    assert report["base_rate"]["unannotated_2plus"] == pytest.approx(0.5)
    assert report["auroc"]["subtle"]["u_fpn_k8"] != report["auroc"]["subtle"]["u_fpn_k8"]  # NaN: no positive
