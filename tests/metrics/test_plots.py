# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.metrics.plots: PNG files are written, readable and non-empty; skipped classes warn by name."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from monai_ext.metrics.froc import compute_detection_froc
from monai_ext.metrics.plots import _per_class_curves, save_froc_png, save_pr_curves_png, save_roc_curves_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path):
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        w, h = im.size
        pixels = np.asarray(im.convert("L"))
    assert w > 300 and h > 200
    assert pixels.min() < 100 < pixels.max()  # something was drawn on the white background


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 4)) < 0.4).astype(float)
    y[:, 3] = 0.0  # "Hernia": no positive
    y[rng.random((60, 4)) < 0.1] = math.nan
    y_pred = np.clip(0.4 * np.nan_to_num(y) + 0.6 * rng.random((60, 4)), 0, 1)
    return y_pred, y, ["Atelectasis", "Edema", "Effusion", "Hernia"]


@pytest.mark.parametrize("save", [save_roc_curves_png, save_pr_curves_png])
def test_per_class_curves_png(tmp_path, scores, save):
    y_pred, y, names = scores
    out = tmp_path / "plots" / "nested" / "curves.png"  # folders are created
    with pytest.warns(UserWarning, match="'Hernia'"):
        written = save(y_pred, y, names, out)
    assert written == out
    _check_png(out)


def test_pr_staircase_area_is_the_average_precision():
    # the drawn staircase holds precision P_n over recall (R_{n-1}, R_n]; its area must be the step-wise AP.
    # ranking 1 0 1 0 1 (AP 34/45, worked in test_multilabel.py) plus a tie: 0.5 (1) and 0.5 (0)
    y_pred = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.5])[:, None]
    y = np.array([1, 0, 1, 0, 1, 0], dtype=float)[:, None]
    [(name, recall, precision, ap)] = _per_class_curves(y_pred, y, ["a"], "pr")
    # thresholds: 0.9 (R 1/3, P 1), 0.7 (R 2/3, P 2/3), 0.5 (R 1, P 3/6) -> (1 + 2/3 + 1/2) / 3 = 13/18
    np.testing.assert_allclose(recall, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(precision, [1, 1, 2 / 3, 1 / 2])
    assert np.sum(np.diff(recall) * precision[1:]) == pytest.approx(13 / 18)
    assert ap == pytest.approx(13 / 18)


def test_many_classes_roc_png(tmp_path):
    # 26 classes (CXR-LT size) cycle through colours and line styles without error
    rng = np.random.default_rng(1)
    y = (rng.random((80, 26)) < 0.5).astype(float)
    y[0], y[1] = 0.0, 1.0  # every class has both values
    y_pred = rng.random((80, 26))
    out = save_roc_curves_png(y_pred, y, [f"class {k}" for k in range(26)], tmp_path / "roc26.png", title="26")
    _check_png(out)


def test_froc_png(tmp_path):
    pred = [[[0, 0, 10, 10], [30, 30, 40, 40]], [[0, 0, 20, 12]], [[50, 50, 60, 60]]]
    scores = [[0.9, 0.4], [0.6], [0.5]]
    gt = [[[0, 0, 10, 10]], [[0, 0, 20, 20]], []]
    r1 = compute_detection_froc(pred, scores, gt)
    r2 = compute_detection_froc(pred, [[0.9, 0.7], [0.3], [0.8]], gt, duplicate="false_positive")
    out = save_froc_png({"baseline": r2, "MoMBS": r1}, tmp_path / "nested" / "froc.png")
    _check_png(out)
    with Image.open(out) as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    # both curves are drawn in their own colours (C0 blue #1f77b4, C1 orange #ff7f0e)
    for colour in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):
        assert (np.abs(rgb - colour).sum(axis=-1) < 30).sum() > 50
    # one curve alone, a result without 0.5-2 rates (legend falls back to its own mean)
    r3 = compute_detection_froc(pred, scores, gt, fp_rates=(1.0, 8.0))
    _check_png(save_froc_png({"one": r3}, tmp_path / "one.png", title="one arm"))


def test_froc_png_never_overwrites_unless_asked(tmp_path):
    r = compute_detection_froc([[[0, 0, 9, 9]]], [[0.9]], [[[0, 0, 9, 9]]])
    out = tmp_path / "froc.png"
    out.write_bytes(b"earlier result")
    with pytest.raises(FileExistsError, match="froc.png exists; choose another path or pass overwrite=True"):
        save_froc_png({"a": r}, out)
    assert out.read_bytes() == b"earlier result"
    save_froc_png({"a": r}, out, overwrite=True)
    _check_png(out)


def test_froc_png_errors(tmp_path):
    with pytest.raises(ValueError, match="results is empty"):
        save_froc_png({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"'bad' misses key\(s\) \['fps_per_image'"):
        save_froc_png({"bad": {"fp_rates": [1.0]}}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
