# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import pandas as pd
import pytest
import torch

from monai_ext.data.datalist import DatasetLayoutError
from scripts.bench.nvum_audit import audit_saved_memory, memory_audit, recorded_flips

# memory_audit docstring example: classes A, B; paper prior 0.25 each (log -1.386); flips (0, A) and (1, A)
MEMORY = [[1.0, -3.0], [3.0, -3.0], [-3.0, 2.0], [0.5, 1.0]]
LABELS = [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
FLIPS = {(0, 0), (1, 0)}


def _datalist(labels):
    return [{"index": i, "image": f"/x/{i}.png", "label": label} for i, label in enumerate(labels)]


def _state(memory, num_updates):
    return {"memory": torch.tensor(memory), "num_updates": torch.tensor(num_updates)}


def test_recorded_flips_keeps_training_images_and_known_classes(tmp_path):
    datalist = [{"index": i, "image": f"/data/nih/images/0000000{i}_000.png"} for i in range(3)]
    pd.DataFrame(
        {"image": ["00000000_000.png", "00000002_000.png", "00000002_000.png", "00000009_000.png",
                   "00000001_000.png", "00000001_000.png"],
         "class": ["A", "No Finding", "B", "A", "Consolidation", "A"],
         "clean": [1, 0, 1, 1, 1, 1], "noisy": [0, 1, 0, 0, 0, 1]}
    ).to_csv(tmp_path / "noise.csv", index=False)  # fmt: skip
    # left out: an image outside the datalist, a class outside the label space, a row with clean == noisy
    assert recorded_flips(tmp_path / "noise.csv", datalist, ["A", "B", "No Finding"]) == {(0, 0), (2, 2), (2, 1)}


def test_recorded_flips_needs_the_noise_columns(tmp_path):
    (tmp_path / "noise.csv").write_text("image,class\na.png,A\n")
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) \['clean', 'noisy'\]"):
        recorded_flips(tmp_path / "noise.csv", [], ["A"])
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        recorded_flips(tmp_path / "nope.csv", [], ["A"])


@pytest.mark.parametrize(
    "num_updates, prior_p, unbiased_p, n_pairs",
    [
        # prior ranks (1, A) 0.834, (0, A) 0.595 first; unbiased (1, A) 0.953, (3, B) 0.731
        ([1, 1, 1, 1], 1.0, 0.5, 8),
        # sample 3 never seen: unbiased now ranks (1, A) 0.953, (0, A) 0.269 first
        ([1, 1, 1, 0], 1.0, 1.0, 6),
    ],
)
def test_memory_audit_both_scores_by_hand(num_updates, prior_p, unbiased_p, n_pairs):
    out = memory_audit(_state(MEMORY, num_updates), _datalist(LABELS), FLIPS)
    assert list(out) == ["prior", "unbiased"]
    # labels only (every score 0.25): the positive labels (0, A), (2, B) (disagreement 0.75) rank first -> 1 of 2
    assert out["prior"] == {"k": 2, "precision_at_k": prior_p, "n_flips": 2, "n_pairs": n_pairs,
                            "base_rate": pytest.approx(2 / n_pairs), "labels_only_precision_at_k": 0.5}  # fmt: skip
    assert out["unbiased"]["labels_only_precision_at_k"] == 0.5
    assert out["unbiased"]["precision_at_k"] == unbiased_p


def test_memory_audit_flip_of_an_unseen_sample_is_left_out_of_k():
    out = memory_audit(_state(MEMORY, [1, 0, 1, 1]), _datalist(LABELS), FLIPS, scores=["unbiased"])
    # only (0, A) is ranked: k = 1; unbiased ranks (3, B) 0.731 first -> precision 0; base rate 1 / 6; labels only
    # ranks the positive (0, A) first (ties with (2, B), sample order) -> 1
    assert out == {"unbiased": {"k": 1, "precision_at_k": 0.0, "n_flips": 2, "n_pairs": 6,
                                "base_rate": pytest.approx(1 / 6), "labels_only_precision_at_k": 1.0}}  # fmt: skip


@pytest.mark.parametrize(
    "labels, flips, expected",
    [
        # paper prior [0.5, 0.25]: disagreement |label - pi| = (0, A) 0.5, (0, B) 0.25, (1, A) 0.5, (1, B) 0.75,
        # (2, A) 0.5, (2, B) 0.25, (3, A) 0.5, (3, B) 0.25 -> order (1, B), (0, A), (1, A), (2, A), ...; k = 2
        ([[1, 0], [0, 1], [1, 0], [0, 0]], {(1, 1), (3, 1)}, 0.5),
        ([[1, 0], [0, 1], [1, 0], [0, 0]], {(1, 1), (0, 0)}, 1.0),
        ([[1, 0], [0, 1], [1, 0], [0, 0]], {(2, 0), (3, 1)}, 0.0),
        # an unknown label (nan) is not ranked and counts as not positive in the prior: [0.25, 0.25]; the positives
        # (1, B) and (3, A) tie at 0.75, sample order puts (1, B) first; k = 1
        ([[0, 0], [0, 1], [0, 0], [1, float("nan")]], {(1, 1)}, 1.0),
    ],
)
def test_memory_audit_labels_only_ranks_by_the_class_prior(labels, flips, expected):
    # the memory itself does not matter to the labels-only reference: a memory that finds every flip gives the same
    memory = [[5.0 if (i, j) in flips else -5.0 for j in range(2)] for i in range(4)]
    for mem in (memory, [[0.0, 0.0]] * 4):
        out = memory_audit(_state(mem, [1] * 4), _datalist(labels), flips, scores=["prior"])
        assert out["prior"]["labels_only_precision_at_k"] == expected
    assert out["prior"]["precision_at_k"] == expected  # memory of zeros: the prior score is the labels-only one


@pytest.mark.parametrize("mode, convention, expected", [("paper", "paper", 1.0), ("official", "official", 0.0)])
def test_memory_audit_rebuilds_the_runs_prior(mode, convention, expected):
    # the worked case of conftest.py: classes A, No Finding; the flip (0, A) ranks first only with the paper prior
    labels = [[0.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
    memory = [[2.5, -3.0], [-3.0, 2.0], [-3.0, 2.0], [3.0, 1.2]]
    out = memory_audit(_state(memory, [3] * 4), _datalist(labels), {(0, 0)}, mode, convention, scores=["prior"])
    assert out["prior"]["precision_at_k"] == expected


def test_memory_audit_rejects_mismatched_state_and_indices():
    with pytest.raises(ValueError, match="memory holds 3 samples, the config has num_samples=4"):
        memory_audit(_state(MEMORY[:3], [1, 1, 1]), _datalist(LABELS), FLIPS)
    datalist = _datalist(LABELS)
    datalist[1]["index"] = 0
    with pytest.raises(ValueError, match="indices must be 0 to 3, each once"):
        memory_audit(_state(MEMORY, [1] * 4), datalist, FLIPS)
    with pytest.raises(ValueError, match="sigmoid"):
        memory_audit(_state(MEMORY, [1] * 4), _datalist(LABELS), FLIPS, scores=["sigmoid"])


def _overrides(method: str, dataset_dir, run_dir) -> dict:
    """The ids of a study run that the audit reads (as :func:`scripts.bench.nvum_study.run_overrides` sets them)."""
    return {"dataset_dir": str(dataset_dir), "ckpt_dir": str(run_dir / "models"), "output_dir": str(run_dir / "eval"),
            "nvum_mode": "paper" if method == "bce" else method}  # fmt: skip


@pytest.mark.parametrize("method, prior_p", [("paper", 1.0), ("official", 0.0)])
def test_audit_saved_memory_reads_the_run_from_the_bundle_config(bench_dirs, method, prior_p):
    overrides = _overrides(method, bench_dirs["nih"], bench_dirs["work"] / f"{method}_seed0")
    out = audit_saved_memory(overrides, bench_dirs["noise"], bench_dirs["bundle"])
    # labels only: (3, A) (label 1, prior 0.25 or 0.125) ranks first, not the flip (0, A)
    assert out["prior"] == {"k": 1, "precision_at_k": prior_p, "n_flips": 1, "n_pairs": 8, "base_rate": 0.125,
                            "labels_only_precision_at_k": 0.0}  # fmt: skip
    assert out["unbiased"]["precision_at_k"] == 1.0


def test_audit_saved_memory_bce_run_and_missing_checkpoint(bench_dirs):
    work, bundle = bench_dirs["work"], bench_dirs["bundle"]
    overrides = _overrides("bce", bench_dirs["nih"], work / "bce_seed0")
    assert audit_saved_memory(overrides, bench_dirs["noise"], bundle) is None
    overrides = _overrides("paper", bench_dirs["nih"], work / "paper_seed1")
    with pytest.raises(FileNotFoundError, match=r"paper_seed1/models/last.pt"):
        audit_saved_memory(overrides, bench_dirs["noise"], bundle)


def test_memory_audit_puts_back_the_prior_the_loss_subtracted():
    # a memory trained with a prior of ones holds raw logits: its `prior` score is sigmoid(t + log 1) = sigmoid(t),
    # which ranks like `unbiased` with the datalist's prior (worked example of memory_audit: precision 0.5, not 1.0)
    state = _state(MEMORY, [1] * 4)
    default = memory_audit(state, _datalist(LABELS), FLIPS, scores=["prior", "unbiased"])
    ones = memory_audit(state, _datalist(LABELS), FLIPS, scores=["prior"], loss_prior=[1.0, 1.0])
    assert default["prior"]["precision_at_k"] == 1.0 and default["unbiased"]["precision_at_k"] == 0.5
    assert ones["prior"]["precision_at_k"] == 0.5
    # the labels-only reference keeps the datalist's prior (|label - pi|), whatever the loss subtracted
    assert ones["prior"]["labels_only_precision_at_k"] == default["prior"]["labels_only_precision_at_k"] == 0.5
