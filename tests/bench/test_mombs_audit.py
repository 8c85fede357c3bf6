# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS difficulty categories against the demo's corrupted masks, on a hand-made noise record and datalist.

Worked case (label map keeps source values 1 and 2)::

    index  mask             z   lesions crossing z (label, corruption)        corrupted  kinds
    0      tr_mask.nii.gz   0   (1, dilate)                                   yes        dilate
    1      tr_mask.nii.gz   1   (2, none); (3, missing) left out: effusion    no
    2      rp_msk/1.nii.gz  3   (1, missing k 2-4)                            yes        missing
    3      rp_msk/1.nii.gz  4   (1, missing k 2-4), (1, erode k 4-5)          yes        missing, erode
    4      rp_msk/1.nii.gz  6   none                                          no

Categories: 0 and 2 poorly_labelled, 3 under_represented, 1 well_represented, 4 overfitted. Corrupted 3 of 5 (base
rate 0.6): P(category | corrupted) = poorly 2/3, under 1/3; P(category | clean) = well 1/2, overfitted 1/2; every
corrupted slice has high loss (1.0) and no clean one (0.0); among high-loss corrupted slices 2/3 are called poorly
labelled; among high-loss clean slices the share is undefined (nan).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from monai_ext.data.datalist import DatasetLayoutError
from scripts.bench.mombs_audit import (
    category_vs_corruption,
    latest_difficulty_csv,
    pool_category_tables,
    slice_corruption,
)

HEADER = "mask,lesion,label,corruption,i_first,i_last,j_first,j_last,k_first,k_last,voxels_clean,voxels_noisy\n"
NOISE = [
    "tr_mask.nii.gz,0,1,dilate,1,5,1,5,0,0,20,30",
    "tr_mask.nii.gz,1,2,none,1,5,1,5,1,1,20,20",
    "tr_mask.nii.gz,2,3,missing,6,9,6,9,1,1,10,0",
    "rp_msk/1.nii.gz,0,1,missing,1,5,1,5,2,4,60,0",
    "rp_msk/1.nii.gz,1,1,erode,6,9,6,9,4,5,30,12",
]
SLICES = [("tr_mask.nii.gz", 0), ("tr_mask.nii.gz", 1), ("rp_msk/1.nii.gz", 3), ("rp_msk/1.nii.gz", 4),
          ("rp_msk/1.nii.gz", 6)]  # fmt: skip
CATEGORY = ["poorly_labelled", "well_represented", "poorly_labelled", "under_represented", "overfitted"]


@pytest.fixture
def noise_case(tmp_path):
    root = tmp_path / "covid_medseg"
    root.mkdir()
    (root / "demo_mask_noise.csv").write_text(HEADER + "\n".join(NOISE) + "\n")
    datalist = [{"index": i, "source_label": str(root / mask), "z": z, "volume_id": mask}
                for i, (mask, z) in enumerate(SLICES)]  # fmt: skip
    return root, datalist


def _difficulty(categories):
    return pd.DataFrame({"index": range(len(categories)), "category": categories})


def test_slice_corruption_joins_lesions_by_mask_and_slice(noise_case):
    root, datalist = noise_case
    table = slice_corruption(root / "demo_mask_noise.csv", list(reversed(datalist)), root, {1, 2})
    assert table["index"].tolist() == [0, 1, 2, 3, 4]
    assert table["mask"].tolist() == [m for m, _ in SLICES]
    assert table["lesions"].tolist() == [1, 1, 1, 2, 0]
    assert table["corrupted"].tolist() == [True, False, True, True, False]
    assert table["missing"].tolist() == [0, 0, 1, 1, 0]
    assert table["erode"].tolist() == [0, 0, 0, 1, 0]
    assert table["dilate"].tolist() == [1, 0, 0, 0, 0]
    assert table["corruptions"].tolist() == ["dilate", "", "missing", "missing;erode", ""]


def test_slice_corruption_keeps_only_mapped_labels(noise_case):
    root, datalist = noise_case
    table = slice_corruption(root / "demo_mask_noise.csv", datalist, root, {3})  # effusion only
    assert table["corrupted"].tolist() == [False, True, False, False, False]
    assert table["lesions"].tolist() == [0, 1, 0, 0, 0]


def test_slice_corruption_rejects_unknown_kinds(noise_case, tmp_path):
    root, datalist = noise_case
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + NOISE[0] + "\n" + NOISE[1].replace("none", "shifted") + "\n")
    with pytest.raises(DatasetLayoutError, match=r"line 3, column 'corruption': 'shifted'"):
        slice_corruption(bad, datalist, root, {1, 2})
    with pytest.raises(FileNotFoundError, match="demo mask-noise CSV"):
        slice_corruption(tmp_path / "none.csv", datalist, root, {1, 2})


def test_category_vs_corruption_worked_case(noise_case):
    root, datalist = noise_case
    corruption = slice_corruption(root / "demo_mask_noise.csv", datalist, root, {1, 2})
    out = category_vs_corruption(_difficulty(CATEGORY), corruption)
    out["counts"] = {c: dict(v) for c, v in out["counts"].items()}
    for category in out["counts"].values():  # no appearance column: every lesion typical; no wrong-class lesion
        assert category.pop("under_represented") == 0 and category.pop("wrong_class") == 0
    assert out["counts"] == {
        "under_represented": {"slices": 1, "corrupted": 1, "clean": 0, "missing": 1, "erode": 1, "dilate": 0},
        "poorly_labelled": {"slices": 2, "corrupted": 2, "clean": 0, "missing": 1, "erode": 0, "dilate": 1},
        "overfitted": {"slices": 1, "corrupted": 0, "clean": 1, "missing": 0, "erode": 0, "dilate": 0},
        "well_represented": {"slices": 1, "corrupted": 0, "clean": 1, "missing": 0, "erode": 0, "dilate": 0},
    }
    assert (out["n_slices"], out["n_corrupted"], out["base_rate"]) == (5, 3, pytest.approx(0.6))
    assert out["p_category_given_corrupted"] == pytest.approx(
        {"under_represented": 1 / 3, "poorly_labelled": 2 / 3, "overfitted": 0.0, "well_represented": 0.0}
    )
    assert out["p_category_given_clean"] == pytest.approx(
        {"under_represented": 0.0, "poorly_labelled": 0.0, "overfitted": 0.5, "well_represented": 0.5}
    )
    assert out["corrupted_share"] == pytest.approx(
        {"under_represented": 1.0, "poorly_labelled": 1.0, "overfitted": 0.0, "well_represented": 0.0}
    )
    assert out["p_high_loss_given_corrupted"] == 1.0 and out["p_high_loss_given_clean"] == 0.0
    assert out["p_poorly_given_corrupted_high_loss"] == pytest.approx(2 / 3)
    assert math.isnan(out["p_poorly_given_clean_high_loss"])


def test_pooling_adds_counts_and_recomputes_shares(noise_case):
    root, datalist = noise_case
    corruption = slice_corruption(root / "demo_mask_noise.csv", datalist, root, {1, 2})
    first = category_vs_corruption(_difficulty(CATEGORY), corruption)
    swapped = ["well_represented", "poorly_labelled", "overfitted", "overfitted", "under_represented"]
    pooled = pool_category_tables([first, category_vs_corruption(_difficulty(swapped), corruption)])
    expected = {"slices": 3, "corrupted": 2, "clean": 1, "missing": 1, "erode": 0, "dilate": 1, "wrong_class": 0,
                "under_represented": 0}  # fmt: skip
    assert pooled["counts"]["poorly_labelled"] == expected
    assert pooled["counts"]["overfitted"]["slices"] == 3 and pooled["counts"]["overfitted"]["corrupted"] == 2
    assert (pooled["n_slices"], pooled["n_corrupted"]) == (10, 6)
    # high loss: corrupted 3 (first run) + 0 (second) of 6; clean 0 + 2 (index 1 poorly, index 4 under) of 4
    assert pooled["p_high_loss_given_corrupted"] == pytest.approx(0.5)
    assert pooled["p_high_loss_given_clean"] == pytest.approx(0.5)
    assert pooled["p_poorly_given_clean_high_loss"] == pytest.approx(0.5)


# Worked case with appearances and a wrong-class lesion (the columns the study's generator writes): the five slices
# above, lesion 1 of tr_mask.nii.gz tiny, plus slice 5 = tr_mask.nii.gz z 2 with a wrong-class, low-contrast lesion.
#   index  corrupted  under-represented  category
#   0      yes        no                 poorly_labelled
#   1      no         yes (tiny)         well_represented
#   2      yes        no                 poorly_labelled
#   3      yes        no                 under_represented
#   4      no         no                 overfitted
#   5      yes (wrong class; no in binary)  yes (low contrast)  under_represented
# Multiclass: base rate corrupted 4/6, precision of poorly_labelled 2/2 = 1 (lift 1.5); base rate under-represented
# 2/6, precision of under_represented 1/2 (slices 3, 5; lift 1.5). Binary (wrong class invisible): base rate 3/6.
def test_precision_vs_base_rate_with_appearance_and_wrong_class(tmp_path):
    root = tmp_path / "covid_medseg"
    root.mkdir()
    rows = [line + ("," + ("tiny" if k == 1 else "typical")) for k, line in enumerate(NOISE)]
    rows.append("tr_mask.nii.gz,3,1,wrong_class,1,5,1,5,2,2,20,20,low_contrast")
    (root / "demo_mask_noise.csv").write_text(HEADER.strip() + ",appearance\n" + "\n".join(rows) + "\n")
    slices = SLICES + [("tr_mask.nii.gz", 2)]
    datalist = [{"index": i, "source_label": str(root / m), "z": z} for i, (m, z) in enumerate(slices)]
    categories = CATEGORY + ["under_represented"]
    table = slice_corruption(root / "demo_mask_noise.csv", datalist, root, {1, 2})
    assert table["under_represented"].tolist() == [False, True, False, False, False, True]
    assert table["appearance"].tolist() == ["typical", "tiny", "typical", "typical", "typical", "low_contrast"]
    assert table["wrong_class"].tolist() == [0, 0, 0, 0, 0, 1]
    precision = category_vs_corruption(_difficulty(categories), table)["precision"]
    assert precision == pytest.approx({"precision_poorly_labelled": 1.0, "base_rate_corrupted": 4 / 6,
                                       "precision_under_represented": 0.5, "base_rate_under_represented": 2 / 6,
                                       "lift_poorly_labelled": 1.5, "lift_under_represented": 1.5})  # fmt: skip
    binary = slice_corruption(root / "demo_mask_noise.csv", datalist, root, {1, 2}, wrong_class_visible=False)
    assert binary["corrupted"].tolist() == [True, False, True, True, False, False]
    assert category_vs_corruption(_difficulty(categories), binary)["precision"]["base_rate_corrupted"] == 0.5
    bad = root / "bad.csv"
    bad.write_text(HEADER.strip() + ",appearance\n" + NOISE[0] + ",faint\n")
    with pytest.raises(DatasetLayoutError, match=r"line 2, column 'appearance': 'faint'"):
        slice_corruption(bad, datalist, root, {1, 2})


def test_category_vs_corruption_checks_its_inputs(noise_case, tmp_path):
    root, datalist = noise_case
    corruption = slice_corruption(root / "demo_mask_noise.csv", datalist, root, {1, 2})
    with pytest.raises(DatasetLayoutError, match="disagree on sample indices, e.g. \\[4\\]"):
        category_vs_corruption(_difficulty(CATEGORY[:4]), corruption)
    with pytest.raises(DatasetLayoutError, match=r"line 4, column 'category': 'noisy'"):
        category_vs_corruption(_difficulty(CATEGORY[:2] + ["noisy"] + CATEGORY[3:]), corruption)
    with pytest.raises(FileNotFoundError, match="MoMBS difficulty CSV"):
        category_vs_corruption(tmp_path / "difficulty_epoch0001.csv", corruption)


def test_latest_difficulty_csv(tmp_path):
    for name in ("difficulty_epoch0009.csv", "difficulty_epoch0012.csv", "difficulty_map_epoch0013.png",
                 "difficulty_epoch0013.csv.tmp"):  # fmt: skip
        (tmp_path / name).write_text("")
    assert latest_difficulty_csv(tmp_path) == tmp_path / "difficulty_epoch0012.csv"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no difficulty_epochNNNN.csv"):
        latest_difficulty_csv(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="difficulty folder"):
        latest_difficulty_csv(tmp_path / "missing")
