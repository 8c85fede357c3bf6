# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of the demo DeepLesion's diverse quality: unannotated lesions, loose boxes, tiny / low-contrast lesions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from monai_ext.demo.ct import TISSUES
from monai_ext.demo.deeplesion import write_deeplesion_demo

SIZE = 96
RATES = {"unannotated_rate": 0.5, "loose_box_rate": 0.4, "subtle_rate": 0.2}


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(", ")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "deeplesion"
    summary = write_deeplesion_demo(root, size=1.0, seed=11, image_size=SIZE, noisy_rate=0.05, **RATES)
    info = pd.read_csv(root / "DL_info.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(root / "demo_lesions.csv")
    split = dict(zip(info["File_name"], info["Train_Val_Test"].astype(int)))
    truth["split"] = truth["File_name"].map(split)
    return root, summary, info, truth


def test_recorded_fractions_close_to_configured(demo):
    _, summary, _, truth = demo
    train = truth[truth["split"] == 1]
    assert len(train) >= 60
    unannotated = float((train["annotation"] == "unannotated").mean())
    assert abs(unannotated - RATES["unannotated_rate"]) < 0.1
    assert summary["unannotated_fraction_train"] == pytest.approx(unannotated)
    reliable = train[train["annotation"].isin(["box", "loose_box"])]
    assert abs(float((reliable["annotation"] == "loose_box").mean()) - RATES["loose_box_rate"]) < 0.15
    subtle = float((truth["appearance"] != "typical").mean())
    assert abs(subtle - RATES["subtle_rate"]) < 0.08
    assert set(truth["appearance"]) == {"typical", "tiny", "low_contrast"}
    assert summary["loose_boxes"] == int((truth["annotation"] == "loose_box").sum())
    assert summary["subtle_lesions"] == int((truth["appearance"] != "typical").sum())


def test_annotation_column_matches_the_csv(demo):
    _, _, info, truth = demo
    # the annotated flag and the annotation kind agree; the rows of DL_info.csv are exactly the annotated lesions
    assert ((truth["annotation"] == "unannotated") == (truth["annotated"] == 0)).all()
    assert ((truth["annotation"] == "noisy") == (truth["possibly_noisy"] == 1)).all()
    per_image = info.groupby("File_name").size()
    annotated = truth[truth["annotated"] == 1].groupby("File_name").size()
    pd.testing.assert_series_equal(per_image, annotated, check_names=False)
    # unannotated lesions have no row: no box of their image is centred on them
    for _, les in truth[truth["annotation"] == "unannotated"].iterrows():
        boxes = [_floats(b) for b in info.loc[info["File_name"] == les["File_name"], "Bounding_boxes"]]
        centres = [((b[0] + b[2]) / 2 - 1, (b[1] + b[3]) / 2 - 1) for b in boxes]
        assert min(math.dist(c, (les["center_x"], les["center_y"])) for c in centres) > 1.0


def test_val_and_test_are_completely_annotated(demo):
    _, _, _, truth = demo
    assert (truth["split"] == 3).any()
    assert not (truth.loc[truth["split"] != 1, "annotation"] == "unannotated").any()
    assert not (truth.loc[truth["split"] != 1, "annotation"] == "loose_box").any()


def test_loose_boxes_contain_the_drawn_lesion_and_are_loose(demo):
    root, _, info, truth = demo
    annotated = truth[truth["annotated"] == 1].sort_values(["File_name", "lesion"]).reset_index(drop=True)
    assert list(annotated["File_name"]) == list(info["File_name"])  # same order: by file name, then CSV order
    loose = 0
    for (_, row), (_, les) in zip(info.iterrows(), annotated.iterrows()):
        if les["annotation"] != "loose_box":
            continue
        loose += 1
        x1, y1, x2, y2 = np.array(_floats(row["Bounding_boxes"])) - 1  # 1-based -> 0-based
        # the drawn lesion: pixels that differ from the same slice's host by more than half the lesion contrast are
        # hard to isolate in noise, so use the true ellipse on the key slice, sampled densely
        k = int(row["Key_slice_index"])
        s = math.sqrt(max(1 - ((k - les["center_slice"]) / les["radius_slices"]) ** 2, 0.0))
        a, b = les["radius_long_px"] * s, les["radius_short_px"] * s
        th = np.linspace(0, 2 * np.pi, 720)
        ang = math.radians(les["angle_deg"])
        px = les["center_x"] + a * np.cos(th) * math.cos(ang) - b * np.sin(th) * math.sin(ang)
        py = les["center_y"] + a * np.cos(th) * math.sin(ang) + b * np.sin(th) * math.cos(ang)
        assert x1 <= px.min() and px.max() <= x2 and y1 <= py.min() and py.max() <= y2, row["File_name"]
        # loose: at least 1.3 times the lesion's extent along each axis (unless clipped at the image border)
        if x1 > 0 and y1 > 0 and x2 < SIZE - 1 and y2 < SIZE - 1:
            assert x2 - x1 >= 1.29 * (px.max() - px.min()) and y2 - y1 >= 1.29 * (py.max() - py.min())
    assert loose >= 5


def test_subtle_lesions_are_small_or_faint(demo):
    root, _, info, truth = demo
    spacing = {f: _floats(s)[0] for f, s in zip(info["File_name"], info["Spacing_mm_px_"])}
    from monai_ext.demo.deeplesion import LESION_SPECS

    for _, les in truth[truth["appearance"] == "tiny"].iterrows():
        long_mm = 2 * les["radius_long_px"] * spacing[les["File_name"]]
        smallest = LESION_SPECS[int(les["coarse_type"])]["mm"][0]
        assert long_mm <= max(0.7 * smallest, 2.5 * spacing[les["File_name"]]) + 1e-6
    for _, les in truth[truth["appearance"] == "low_contrast"].iterrows():
        host = float(np.mean([TISSUES[h][1] for h in les["host"].split("/")]))
        spec = LESION_SPECS[int(les["coarse_type"])]["hu"]
        full = max(abs(v - host) for rng in spec for v in rng)  # the largest contrast a typical lesion could have
        assert abs(les["hu"] - host) <= 0.3 * full + 1e-6
    assert (truth["appearance"] == "low_contrast").sum() >= 2


def test_rate_options_checked(tmp_path):
    with pytest.raises(ValueError, match="unannotated_rate must lie in"):
        write_deeplesion_demo(tmp_path / "a", unannotated_rate=0.95)
    with pytest.raises(ValueError, match="loose_box_rate"):
        write_deeplesion_demo(tmp_path / "a", loose_box_rate=-0.1)
    with pytest.raises(ValueError, match="subtle_rate"):
        write_deeplesion_demo(tmp_path / "a", subtle_rate=2.0)
    clean = write_deeplesion_demo(tmp_path / "b", size=0.01, seed=2, image_size=64, unannotated_rate=0.0,
                                  loose_box_rate=0.0, subtle_rate=0.0, noisy_rate=0.0)  # fmt: skip
    truth = pd.read_csv(tmp_path / "b" / "demo_lesions.csv")
    assert set(truth["annotation"]) == {"box"} and set(truth["appearance"]) == {"typical"}
    assert clean["unannotated_lesions"] == clean["loose_boxes"] == clean["subtle_lesions"] == 0
