# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of the ROP demo writer: layout, derived label columns, infant-level splits, reader noise, determinism."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from monai_ext.demo.rop import write_rop_demo

HEADER = (
    "image_id,path,infant_id,exam_id,eye,gestational_age_wk,birth_weight_g,postmenstrual_age_wk,"
    "label_A1,label_A2,label_A3,label_majority,label_consensus,n_agree,consensus,"
    "stage_A1,stage_A2,stage_A3,zone_A1,zone_A2,zone_A3"
)
SIZE = 96


@pytest.fixture(scope="module")
def rop(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "rop"
    summary = write_rop_demo(root, size=0.3, seed=7, image_size=SIZE)
    labels = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    return root, summary, labels


@pytest.mark.parametrize(
    "readings, majority, n_agree, consensus, label_consensus",
    [
        (("0", "0", "0"), 0, 3, 1, 0),
        (("2", "2", "2"), 2, 3, 1, 2),
        (("0", "0", "2"), 0, 2, 0, -1),
        (("0", "1", "2"), 2, 1, 0, -1),  # three-way tie -> higher severity
        (("1", "", "0"), 1, 1, 0, -1),  # tie between the two readers who read it
        (("1", "", "1"), 1, 2, 0, -1),  # agreement but a missing reader: no consensus
        (("", "", ""), -1, 0, 0, -1),
    ],
)
def test_rule_table(readings, majority, n_agree, consensus, label_consensus):
    """The hand-worked 4.5 rules that ``_derived`` (used on the written file below) implements."""
    assert _derived(readings) == (majority, n_agree, consensus, label_consensus)


def _derived(readings):
    read = [int(v) for v in readings if v != ""]
    if not read:
        return -1, 0, 0, -1
    counts = Counter(read)
    top = max(counts.values())
    majority = max(v for v, c in counts.items() if c == top)
    consensus = int(len(read) == 3 and top == 3)
    return majority, top, consensus, majority if consensus else -1


def test_header_and_derived_columns(rop):
    root, summary, labels = rop
    assert (root / "labels.csv").read_text().splitlines()[0] == HEADER
    assert len(labels) == summary["images"] and list(labels["image_id"]) == sorted(labels["image_id"])
    for _, r in labels.iterrows():
        got = (int(r["label_majority"]), int(r["n_agree"]), int(r["consensus"]), int(r["label_consensus"]))
        assert got == _derived((r["label_A1"], r["label_A2"], r["label_A3"])), r["image_id"]
        for a in ("A1", "A2", "A3"):
            assert r[f"label_{a}"] in ("", "0", "1", "2")
            assert (r[f"stage_{a}"] == "") == (r[f"label_{a}"] == "") == (r[f"zone_{a}"] == "")
            assert r[f"stage_{a}"] == "" or 0 <= int(r[f"stage_{a}"]) <= 5
            assert r[f"zone_{a}"] == "" or 1 <= int(r[f"zone_{a}"]) <= 3
        assert r["path"] == f"images/{r['infant_id']}/{r['exam_id']}/{r['image_id'].split('_', 2)[2]}.png"
        assert r["eye"] in ("OD", "OS") and r["path"].split("/")[-1].startswith(r["eye"] + "_")
    assert (labels[["label_A1", "label_A2", "label_A3"]] == "").any(axis=None)  # some images were not read
    assert labels["consensus"].eq("1").any() and labels["consensus"].eq("0").any()


def test_covariates_plausible(rop):
    _, _, labels = rop
    ga, bw, pma = (labels[c].astype(float) for c in ("gestational_age_wk", "birth_weight_g", "postmenstrual_age_wk"))
    assert ga.between(23, 32).all() and bw.between(500, 1500).all() and pma.between(31, 40).all()
    assert (pma > ga).all()
    assert labels.groupby("infant_id")["gestational_age_wk"].nunique().eq(1).all()


def test_infant_level_splits_and_annotators(rop):
    root, summary, labels = rop
    splits = pd.read_csv(root / "splits.csv", dtype=str)
    assert list(splits.columns) == ["infant_id", "split"]
    assert splits["infant_id"].is_unique and set(splits["split"]) == {"train", "val", "test", "meta"}
    assert set(labels["infant_id"]) <= set(splits["infant_id"])
    merged = labels.merge(splits, on="infant_id")
    assert merged.groupby("infant_id")["split"].nunique().eq(1).all()
    assert merged["split"].value_counts().to_dict() == summary["images_per_split"]
    ann = json.loads((root / "annotators.json").read_text())
    assert sorted(ann) == ["A1", "A2", "A3"]
    assert [ann[a]["years_experience"] for a in ("A1", "A2", "A3")] == [15, 6, 1]
    for spec in ann.values():
        np.testing.assert_allclose(np.sum(spec["confusion"], axis=1), 1.0)


def test_readers_have_realistic_noise(rop):
    root, _, labels = rop
    truth = pd.read_csv(root / "demo_truth.csv").set_index("image_id").loc[labels["image_id"]]
    true = truth["label_true"].to_numpy()
    assert set(true) == {0, 1, 2}
    acc = {}
    for a in ("A1", "A2", "A3"):
        read = labels[f"label_{a}"] != ""
        acc[a] = float((labels.loc[read, f"label_{a}"].astype(int).to_numpy() == true[read.to_numpy()]).mean())
    assert acc["A1"] > acc["A2"] > 0.6 and acc["A1"] > acc["A3"]
    normal = true == 0
    over_call = {a: float((labels[f"label_{a}"].to_numpy()[normal] == "1").mean()) for a in ("A1", "A3")}
    assert over_call["A3"] > 2 * over_call["A1"]  # the junior reader over-calls pre-plus


def test_images_rgb_with_plus_signal(rop):
    root, _, labels = rop
    truth = pd.read_csv(root / "demo_truth.csv").set_index("image_id")
    dark = {0: [], 2: []}
    for _, r in labels.iterrows():
        img = Image.open(root / r["path"])
        arr = np.asarray(img)
        assert img.mode == "RGB" and arr.dtype == np.uint8 and arr.shape == (SIZE, SIZE, 3)
        assert arr[0, 0].max() == 0 and arr[-1, -1].max() == 0  # dark frame around the field of view
        centre = arr[SIZE // 3 : 2 * SIZE // 3, SIZE // 3 : 2 * SIZE // 3].reshape(-1, 3).mean(0)
        assert centre[0] > centre[1] > centre[2]  # orange-red fundus
        label = truth.loc[r["image_id"], "label_true"]
        if label in dark and "posterior" in r["path"]:
            green = arr[SIZE // 5 : 4 * SIZE // 5, SIZE // 5 : 4 * SIZE // 5, 1].astype(float)
            dark[label].append(float((green < 0.6 * np.median(green)).mean()))  # vessel pixels
    # dilated, tortuous vessels cover more of the posterior pole in plus disease
    assert np.mean(dark[2]) > 1.2 * np.mean(dark[0])


def test_reader_round_trip(rop):
    reader = pytest.importorskip("monai_ext.data.rop")
    root, _, labels = rop
    meta = reader.rop_datalist(root, split="meta")
    assert meta and all(it["split"] == "meta" for it in meta)
    train = reader.rop_datalist(root, split="train", label_source="majority")
    assert len(train) == int((labels.merge(pd.read_csv(root / "splits.csv", dtype=str))["split"] == "train").sum())


def test_deterministic_and_errors(tmp_path):
    write_rop_demo(tmp_path / "a", size=0.2, seed=3, image_size=32)
    write_rop_demo(tmp_path / "b", size=0.2, seed=3, image_size=32)
    write_rop_demo(tmp_path / "c", size=0.2, seed=4, image_size=32)
    text = (tmp_path / "a" / "labels.csv").read_text()
    assert text == (tmp_path / "b" / "labels.csv").read_text() != (tmp_path / "c" / "labels.csv").read_text()
    first = pd.read_csv(tmp_path / "a" / "labels.csv")["path"][0]
    assert (tmp_path / "a" / first).read_bytes() == (tmp_path / "b" / first).read_bytes()
    with pytest.raises(ValueError, match="split_fractions"):
        write_rop_demo(tmp_path / "d", split_fractions=(0.5, 0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="image_size"):
        write_rop_demo(tmp_path / "d", image_size=16)


@pytest.mark.parametrize("size, seed", [(1.0, 9), (1.0, 0), (1.5, 9)])
def test_meta_and_test_splits_hold_a_unanimous_image_of_every_class(tmp_path, size, seed):
    from monai_ext.data import check_meta_splits, rop_datalist

    write_rop_demo(tmp_path, size=size, seed=seed, image_size=32)
    lists = {s: rop_datalist(tmp_path, s) for s in ("train", "meta", "test")}
    counts = check_meta_splits(lists["train"], lists["meta"], lists["test"], num_classes=3)
    assert min(counts["meta"]) >= 1 and min(counts["test"]) >= 1
    assert all(it["consensus"] == 1 for it in lists["meta"] + lists["test"])
