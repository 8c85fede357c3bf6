# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from ignite.engine import Engine

from monai_ext.handlers.label_audit import LabelAuditWriter, precision_at_k, rank_label_disagreement
from monai_ext.losses import NVUMLoss

S3, S0 = 1 / (1 + math.exp(-3.0)), 0.5  # sigmoid(3) = 0.9526, sigmoid(0)


def test_hand_worked_ranking():
    memory = torch.tensor([[3.0, -3.0], [-3.0, 0.0]])
    labels = [[0, 0], [0, 1]]
    table = rank_label_disagreement(memory, labels, class_names=["A", "B"], images=["/a.png", "/b.png"])
    assert list(table.columns) == [
        "rank", "index", "image", "class_index", "class", "given_label", "memory_score", "disagreement",
    ]  # fmt: skip
    assert table["rank"].tolist() == [1, 2, 3, 4]
    # (0, A): |0 - 0.953|; (1, B): |1 - 0.5|; then the two agreeing pairs tie at 0.047 -> sample order
    assert list(zip(table["index"], table["class"])) == [(0, "A"), (1, "B"), (0, "B"), (1, "A")]
    assert table["image"].tolist() == ["/a.png", "/b.png", "/a.png", "/b.png"]
    assert table["given_label"].tolist() == [0, 1, 0, 0]
    assert np.allclose(table["disagreement"], [S3, S0, 1 - S3, 1 - S3])
    assert np.allclose(table["memory_score"], [S3, S0, 1 - S3, 1 - S3])


@pytest.mark.parametrize(
    "kwargs, expected_pairs",
    [
        ({"min_disagreement": 0.5}, [(0, 0), (1, 1)]),
        ({"top_k": 1}, [(0, 0)]),
        ({"visited": [False, True]}, [(1, 1), (1, 0)]),
        # prior put back: t + log(pi) with pi = (e^-3, 1): sample 0 class 0 -> sigmoid(0) = 0.5, (1, 0) -> sigmoid(-6)
        ({"score": "prior", "log_prior": [-3.0, 0.0]}, [(0, 0), (1, 1), (0, 1), (1, 0)]),
    ],
)
def test_filters_and_scores(kwargs, expected_pairs):
    table = rank_label_disagreement(torch.tensor([[3.0, -3.0], [-3.0, 0.0]]), [[0, 0], [0, 1]], **kwargs)
    assert list(zip(table["index"], table["class_index"])) == expected_pairs


def test_prior_score_values_and_unknown_labels_skipped():
    table = rank_label_disagreement(
        torch.tensor([[3.0, -3.0], [-3.0, 0.0]]), [[0, math.nan], [0, 1]], score="prior", log_prior=[-3.0, 0.0]
    )
    assert list(zip(table["index"], table["class_index"])) == [(0, 0), (1, 1), (1, 0)]  # (0, 1) unknown
    assert np.allclose(table["memory_score"], [0.5, 0.5, 1 / (1 + math.exp(6.0))])


def test_ranking_finds_known_flips_better_than_chance():
    rng = np.random.default_rng(0)
    n, c = 400, 5
    prevalence = np.array([0.4, 0.2, 0.1, 0.05, 0.3])
    clean = (rng.random((n, c)) < prevalence).astype(float)
    # a memory that mostly agrees with the clean labels: unbiased logits +-2 with noise of sd 1.5
    memory = torch.tensor(2.0 * (2 * clean - 1) + rng.normal(0.0, 1.5, (n, c)), dtype=torch.float32)
    flip = rng.random((n, c)) < 0.05
    noisy = np.where(flip, 1 - clean, clean)
    flipped_pairs = set(zip(*np.nonzero(flip)))
    k = len(flipped_pairs)
    table = rank_label_disagreement(memory, noisy)
    base_rate = k / (n * c)
    precision = precision_at_k(table, flipped_pairs, k)
    chance = precision_at_k(list(zip(*np.unravel_index(rng.permutation(n * c), (n, c)))), flipped_pairs, k)
    assert 0.02 < base_rate < 0.08 and chance < 0.15
    assert precision > 0.5 and precision > 5 * base_rate  # 0.65 with this seed


@pytest.mark.parametrize(
    "ranking, k, expected",
    [
        ([(0, 1), (2, 0), (1, 1), (3, 2)], 1, 1.0),
        ([(0, 1), (2, 0), (1, 1), (3, 2)], 2, 0.5),
        ([(0, 1), (2, 0), (1, 1), (3, 2)], 4, 0.5),
        (pd.DataFrame({"index": [2, 0], "class_index": [0, 1]}), 2, 0.5),
    ],
)
def test_precision_at_k(ranking, k, expected):
    assert precision_at_k(ranking, {(0, 1), (1, 1)}, k) == expected


def test_precision_at_k_and_ranking_errors():
    with pytest.raises(ValueError, match=r"k must lie in \[1, 2\]"):
        precision_at_k([(0, 0), (1, 1)], set(), 3)
    with pytest.raises(ValueError, match=r"labels shape \(1, 2\) does not match memory shape \(2, 2\)"):
        rank_label_disagreement(torch.zeros(2, 2), [[0, 1]])
    with pytest.raises(ValueError, match="labels must be 0, 1 or nan"):
        rank_label_disagreement(torch.zeros(1, 2), [[0, 2]])
    with pytest.raises(ValueError, match='score="prior" needs log_prior'):
        rank_label_disagreement(torch.zeros(1, 2), [[0, 1]], score="prior")
    with pytest.raises(ValueError, match="class_names has 1 names for 2 classes"):
        rank_label_disagreement(torch.zeros(1, 2), [[0, 1]], class_names=["A"])


def test_writer_csv_after_training(tmp_path):
    loss = NVUMLoss(num_samples=3, num_classes=2, prior=[0.5, 0.5])
    with torch.no_grad():
        loss.memory.copy_(torch.tensor([[3.0, -3.0], [-3.0, 0.0], [0.0, 0.0]]))
        loss.num_updates.copy_(torch.tensor([2, 1, 0]))  # sample 2 never visited
    # datalist in a different order than the indices: rows are matched by "index"
    datalist = [
        {"image": "/d/s1.png", "label": [0.0, 1.0], "index": 1},
        {"image": "/d/s0.png", "label": [0.0, 0.0], "index": 0},
        {"image": "/d/s2.png", "label": [1.0, 1.0], "index": 2},
    ]
    out = tmp_path / "audit" / "label_audit.csv"
    writer = LabelAuditWriter(loss, datalist, out, class_names=["Effusion", "Mass"])
    engine = Engine(lambda e, b: None)
    writer.attach(engine)
    engine.run([0], max_epochs=1)
    lines = out.read_text().splitlines()
    assert lines[0] == "rank,index,image,class_index,class,given_label,memory_score,disagreement"
    rows = [line.split(",") for line in lines[1:]]
    # min_disagreement 0.5 by default: (0, Effusion) 0.953 and (1, Mass) 0.5; sample 2 left out (never visited)
    assert [r[:6] for r in rows] == [
        ["1", "0", "/d/s0.png", "0", "Effusion", "0"],
        ["2", "1", "/d/s1.png", "1", "Mass", "1"],
    ]
    assert math.isclose(float(rows[0][7]), S3, rel_tol=1e-6) and math.isclose(float(rows[1][7]), 0.5)
    with pytest.raises(ValueError, match="holds 2 items but the memory 3 rows"):
        LabelAuditWriter(loss, datalist[:2], out).ranking()


def test_writer_attaches_nothing_for_a_loss_without_memory(tmp_path):
    """The BCE baseline trained through the NVUM bundle: no memory, so no audit and no file (not an error)."""
    out = tmp_path / "label_audit.csv"
    writer = LabelAuditWriter(torch.nn.BCEWithLogitsLoss(reduction="none"), [], out, name="audit_test")
    engine = Engine(lambda e, b: None)
    writer.attach(engine)
    assert not engine.has_event_handler(writer)
    engine.run([0], max_epochs=1)
    assert not out.exists()
