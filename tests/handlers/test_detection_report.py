# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DetectionFROCReport on a hand-made evaluation: boxes back in original pixels, both conventions, the CSV outcomes,
never overwriting."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from ignite.engine import Engine

from monai_ext.handlers import DetectionFROCReport, original_pixel_boxes


def _engine(outputs):
    engine = Engine(lambda e, batch: outputs[e.state.iteration - 1])
    return engine, list(range(len(outputs)))


def test_report_by_hand(tmp_path):
    # image a (zoom 2): lesion [10, 10, 20, 20] in original pixels = [20, 20, 40, 40] working; detections: a hit
    # (0.9), a duplicate hit (0.8) and a miss (0.7). Image b (zoom 1): lesion [0, 0, 9, 9], one detection far away
    # (0.6).
    out = {
        "pred": [
            {"box": torch.tensor([[20.0, 20, 40, 40], [21, 21, 40, 40], [100, 100, 120, 120]]),
             "label_scores": torch.tensor([0.9, 0.8, 0.7])},
            {"box": torch.tensor([[50.0, 50, 60, 60]]), "label_scores": torch.tensor([0.6])},
        ],
        "label": [{"box": torch.tensor([[20.0, 20, 40, 40]])}, {"box": torch.tensor([[0.0, 0, 9, 9]])}],
        "items": [{"zoom": torch.tensor([2.0, 2.0]), "file_name": "a.png"},
                  {"zoom": [1.0, 1.0], "file_name": "b.png"}],
        "names": ["a.png", "b.png"],
    }  # fmt: skip
    report = DetectionFROCReport(tmp_path, prefix="test")
    engine, data = _engine([out])
    report.attach(engine)
    engine.run(data)
    result = json.loads((tmp_path / "test_froc.json").read_text())
    assert result["num_images"] == 2 and result["num_lesions"] == 2
    # official: 0.9 finds lesion a, 0.8 ignored, 0.7 and 0.6 false positives: at 0.5 FP/image (1 FP) sensitivity 1/2
    assert result["official"]["sens@0.5"] == pytest.approx(0.5)
    assert result["official"]["sens@4"] == pytest.approx(0.5)
    # strict: the duplicate is a false positive too (3 FPs), still 1/2 found
    assert result["strict"]["sens@4"] == pytest.approx(0.5)
    rows = list(csv.DictReader(open(tmp_path / "test_detections.csv")))
    assert [r["outcome"] for r in rows] == ["tp", "ignored", "fp", "fp", "missed"]
    assert [float(rows[0][k]) for k in ("x1", "y1", "x2", "y2")] == [10.0, 10.0, 20.0, 20.0]  # zoom undone
    assert rows[-1]["file_name"] == "b.png" and rows[-1]["score"] == ""
    assert (tmp_path / "test_froc.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileExistsError, match="test_froc.json"):
        DetectionFROCReport(tmp_path, prefix="test").attach(Engine(lambda e, b: None))


def test_original_pixel_boxes():
    assert original_pixel_boxes([[2.0, 4, 6, 8]], [2.0, 4.0]).tolist() == [[1.0, 1.0, 3.0, 2.0]]
    assert original_pixel_boxes(torch.tensor([[2.0, 4, 6, 8]]), 2.0).tolist() == [[1.0, 2.0, 3.0, 4.0]]
    with pytest.raises(ValueError, match="positive"):
        original_pixel_boxes([[0.0, 0, 1, 1]], [0.0, 1.0])
