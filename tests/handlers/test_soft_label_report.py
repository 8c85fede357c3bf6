# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.handlers.soft_label_report: soft_labels.csv row by row (rows follow the datalist, soft labels
follow each item's index), the moved-labels figure, the trainer's COMPLETED event, overwrite, and the errors on a
datalist that does not fit the soft labels."""

from __future__ import annotations

import csv
import logging

import pytest
import torch
from ignite.engine import Engine

from monai_ext.handlers import SoftLabelReport
from monai_ext.handlers.soft_label_report import _moved_by_agreement, soft_label_rows

CLASSES = ["normal", "pre-plus", "plus"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Store:
    """Stand-in for SoftLabelStore: fixed N x C probabilities."""

    def __init__(self, probs: torch.Tensor) -> None:
        self.probs = probs
        self.num_samples = probs.shape[0]

    def soft_labels(self) -> torch.Tensor:
        return self.probs


def _item(index: int, label: int, readings: list[int], n_agree: int) -> dict:
    return {
        "image": f"/data/img{index}.png",
        "index": index,
        "label": label,
        "annotators": ["A1", "A2", "A3"],
        "annotator_labels": readings,
        "n_agree": n_agree,
    }


# datalist out of index order on purpose: row i of the soft labels belongs to the item with index i
DATALIST = [
    _item(2, 2, [2, 1, -1], 1),
    _item(0, 0, [0, 0, 0], 3),
    _item(3, 1, [1, 1, 2], 2),
    _item(1, 0, [0, 1, 2], 1),
]
PROBS = torch.tensor(
    [
        [0.8, 0.15, 0.05],  # index 0: argmax 0 = label 0 -> no
        [0.2, 0.7, 0.1],  # index 1: argmax 1 != label 0 -> yes
        [0.1, 0.6, 0.3],  # index 2: argmax 1 != label 2 -> yes
        [0.3, 0.4, 0.3],  # index 3: argmax 1 = label 1 -> no
    ],
    dtype=torch.float64,
)


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_csv_rows_follow_the_datalist_and_the_index(tmp_path):
    report = SoftLabelReport(_Store(PROBS), DATALIST, tmp_path / "out", CLASSES)
    written = report.write()
    rows = _read(tmp_path / "out" / "soft_labels.csv")
    assert rows[0] == [
        "image",
        "index",
        "noisy_label",
        "label_A1",
        "label_A2",
        "label_A3",
        "n_agree",
        "soft_normal",
        "soft_pre-plus",
        "soft_plus",
        "soft_argmax",
        "changed",
    ]
    assert rows[1] == ["/data/img2.png", "2", "2", "2", "1", "-1", "1", "0.1", "0.6", "0.3", "1", "yes"]
    assert rows[2] == ["/data/img0.png", "0", "0", "0", "0", "0", "3", "0.8", "0.15", "0.05", "0", "no"]
    assert rows[3] == ["/data/img3.png", "3", "1", "1", "1", "2", "2", "0.3", "0.4", "0.3", "1", "no"]
    assert rows[4] == ["/data/img1.png", "1", "0", "0", "1", "2", "1", "0.2", "0.7", "0.1", "1", "yes"]
    assert len(rows) == 5
    png = (tmp_path / "out" / "soft_labels_moved.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 2000
    assert written == {"csv": tmp_path / "out" / "soft_labels.csv", "png": tmp_path / "out" / "soft_labels_moved.png"}


def test_moved_counts_by_agreement():
    header, rows = soft_label_rows(PROBS, DATALIST, CLASSES)
    # n_agree 1: indices 2 (moved) and 1 (moved); n_agree 2: index 3 (kept); n_agree 3: index 0 (kept)
    assert _moved_by_agreement(rows, header) == [("1", 2, 2), ("2", 1, 0), ("3", 1, 0)]


def test_written_at_trainer_completed_and_refreshed(tmp_path):
    store = _Store(PROBS.clone())
    report = SoftLabelReport(store, DATALIST, tmp_path, CLASSES)
    trainer = Engine(lambda e, b: None)
    report.attach(trainer)
    assert not (tmp_path / "soft_labels.csv").exists()
    trainer.run([0, 1], max_epochs=1)
    assert _read(tmp_path / "soft_labels.csv")[2][-1] == "no"
    store.probs[0] = torch.tensor([0.1, 0.1, 0.8], dtype=torch.float64)  # index 0 now moves
    trainer.run([0, 1], max_epochs=1)  # a rerun refreshes the report (overwrite=True by default)
    assert _read(tmp_path / "soft_labels.csv")[2][-2:] == ["2", "yes"]


def test_overwrite_false_keeps_the_existing_file(tmp_path, caplog):
    (tmp_path / "soft_labels.csv").write_text("old\n")
    report = SoftLabelReport(_Store(PROBS), DATALIST, tmp_path, CLASSES, overwrite=False)
    with caplog.at_level(logging.WARNING):
        written = report.write()
    assert (tmp_path / "soft_labels.csv").read_text() == "old\n"
    assert written["csv"] is None and written["png"] == tmp_path / "soft_labels_moved.png"
    assert "exists and was kept (overwrite=False)" in caplog.text
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_errors_name_what_does_not_fit(tmp_path):
    with pytest.raises(ValueError, match="3 soft labels but 4 datalist items"):
        soft_label_rows(PROBS[:3], DATALIST, CLASSES)
    bad = [dict(DATALIST[0]), *DATALIST[1:]]
    bad[0]["index"] = 4
    with pytest.raises(ValueError, match=r"item 0 \('/data/img2.png'\): index 4 is outside \[0, 4\)"):
        soft_label_rows(PROBS, bad, CLASSES)
    bad[0]["index"] = 0
    with pytest.raises(ValueError, match="index 0 repeats"):
        soft_label_rows(PROBS, bad, CLASSES)
    with pytest.raises(ValueError, match=r"must be N x 2 \(2 class names\)"):
        soft_label_rows(PROBS, DATALIST, CLASSES[:2])
    store = _Store(PROBS)
    store.num_samples = 5
    with pytest.raises(ValueError, match="4 rows but num_samples is 5"):
        SoftLabelReport(store, DATALIST, tmp_path, CLASSES).write()
    with pytest.raises(ValueError, match="class_names must name each class once"):
        SoftLabelReport(_Store(PROBS), DATALIST, tmp_path, ["a", "a", "b"])
