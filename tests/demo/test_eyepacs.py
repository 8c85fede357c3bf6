# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of the EyePACS demo writer: Kaggle layout, grade prevalence and eye correlation, DR signs, determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from monai_ext.demo import DEMO_WRITERS, get_writer
from monai_ext.demo.__main__ import main
from monai_ext.demo.eyepacs import LEVEL_PREVALENCE, _dr_signs, _levels, write_eyepacs_demo

SIZE = 48


@pytest.fixture(scope="module")
def eyepacs(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "eyepacs"
    summary = write_eyepacs_demo(root, size=0.5, seed=3, image_size=SIZE)
    labels = pd.read_csv(root / "trainLabels.csv", dtype=str, keep_default_na=False)
    return root, summary, labels


def test_layout(eyepacs):
    root, summary, labels = eyepacs
    assert (root / "trainLabels.csv").read_text().splitlines()[0] == "image,level"
    assert len(labels) == summary["images"] == 2 * summary["patients"] == 150
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(f"{i}.jpeg" for i in labels["image"])
    patients = labels["image"].str.split("_").str[0]
    eyes = labels["image"].str.split("_").str[1]
    # both eyes of every patient, left first, patients in numeric order
    assert list(eyes) == ["left", "right"] * summary["patients"]
    assert (patients.iloc[::2].values == patients.iloc[1::2].values).all()
    numbers = patients.iloc[::2].astype(int).tolist()
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert set(labels["level"]) <= {"0", "1", "2", "3", "4"}
    counts = labels["level"].astype(int).value_counts()
    assert summary["level_counts"] == {k: int(counts.get(k, 0)) for k in range(5)}
    assert summary["dr_fraction"] == pytest.approx((labels["level"] != "0").mean())
    with Image.open(root / "train" / f"{labels['image'][0]}.jpeg") as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (SIZE, SIZE)


def test_grade_prevalence_and_eye_correlation():
    """The grade sampler alone (no images): Kaggle marginals per eye, and the two eyes of a patient correlated."""
    levels = _levels(np.random.default_rng(0), 40000)
    assert levels.shape == (40000, 2)
    for eye in range(2):
        freq = np.bincount(levels[:, eye], minlength=5) / len(levels)
        np.testing.assert_allclose(freq, LEVEL_PREVALENCE, atol=0.006)
    same = (levels[:, 0] == levels[:, 1]).mean()
    independent = sum(p * p for p in LEVEL_PREVALENCE)  # 0.57 if the eyes were independent
    assert same > independent + 0.15
    assert np.corrcoef(levels[:, 0] > 0, levels[:, 1] > 0)[0, 1] > 0.5


def test_demo_prevalence_roughly_kaggle(eyepacs):
    _, summary, _ = eyepacs
    assert 0.12 <= summary["dr_fraction"] <= 0.42  # 26.5 % expected, 150 images from 75 correlated patients
    assert summary["level_counts"][0] > summary["level_counts"][2] > summary["level_counts"][4]


def test_dr_signs_grow_with_grade():
    """Grade 0 draws nothing; the number of changed pixels grows with the grade; exudates are yellow."""
    base = np.full((128, 128, 3), (200, 90, 40), np.uint8)
    changed = []
    for level in range(5):
        out = _dr_signs(np.random.default_rng(level), base, level, "right")
        assert out.shape == base.shape and out.dtype == np.uint8
        changed.append(int((np.abs(out.astype(int) - base).sum(-1) > 30).sum()))
        if level == 2:
            yellow = (out[..., 1] > 150) & (out[..., 2] > 70)
            assert yellow.any()
    assert changed[0] == 0
    assert 0 < changed[1] < changed[2] < changed[3]
    assert changed[4] > changed[2]


def test_deterministic_and_seeded(tmp_path):
    def digest(root):
        return hashlib.md5(b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())).hexdigest()

    a = write_eyepacs_demo(tmp_path / "a", size=0.05, seed=5, image_size=32)
    b = write_eyepacs_demo(tmp_path / "b", size=0.05, seed=5, image_size=32)
    c = write_eyepacs_demo(tmp_path / "c", size=0.05, seed=6, image_size=32)
    assert a["images"] == c["images"] == 20  # 150 * 0.05 = 7.5 patients, raised to the minimum of 10
    assert {k: v for k, v in a.items() if k != "root"} == {k: v for k, v in b.items() if k != "root"}
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="image_size must be >= 32"):
        write_eyepacs_demo(tmp_path, image_size=16)
    with pytest.raises(ValueError, match="size must be positive"):
        write_eyepacs_demo(tmp_path, size=0)


def test_registered_and_summarized(tmp_path, capsys):
    assert DEMO_WRITERS["eyepacs"] == ("monai_ext.demo.eyepacs", "write_eyepacs_demo")
    assert get_writer("eyepacs") is write_eyepacs_demo
    assert list(DEMO_WRITERS).index("eyepacs") == len(DEMO_WRITERS) - 1  # the other datasets keep their seeds
    assert main(["--out", str(tmp_path), "--size", "0.2", "--only", "eyepacs", "--summary"]) == 0
    out = capsys.readouterr().out
    labels = pd.read_csv(tmp_path / "eyepacs" / "trainLabels.csv")
    assert "| eyepacs | train | val |" in out
    # 30 patients, 3 in val: 54 train and 6 val images
    assert len(labels) == 60 and "| items | 54 | 6 |" in out
