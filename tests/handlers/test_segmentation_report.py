# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.handlers.segmentation_report: hand-worked per-case Dice from a SupervisedEvaluator over 4x4
slices, multi-class NaN handling and per-epoch reset, agreement with MONAI's DiceMetric on the stacked 3D volumes,
errors, and the gather across two gloo ranks."""

from __future__ import annotations

import json
import logging
import math
import socket
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from ignite.engine import Engine, Events
from monai.engines import SupervisedEvaluator
from monai.metrics import DiceMetric
from monai.networks.utils import one_hot
from monai.transforms import AsDiscreted

from monai_ext.handlers import SegmentationCaseReport

NAN = math.nan


def _mask(*pixels, shape=(4, 4)) -> np.ndarray:
    m = np.zeros(shape, np.int64)
    for r, c in pixels:
        m[r, c] = 1
    return m


# Binary infection, 4x4 slices; (gt pixels, predicted pixels) as (row, col):
#   case_a z0: gt (0,0) (0,1) (1,0) (1,1); pred (0,0) (1,0) (3,2) (3,3)   TP 2, FP 2, FN 2   (slice Dice 1/2)
#   case_a z1: gt (2,2) (2,3);             pred (2,2) (2,3)               TP 2, FP 0, FN 0   (slice Dice 1)
#   case_b z0: gt (0,0) (0,1) (0,2);       pred (0,0)                     TP 1, FP 0, FN 2
#   case_e z0: gt empty;                   pred (1,1)                     empty ground truth
# case_a pools to TP 4, FP 2, FN 2: Dice 8 / (8 + 2 + 2) = 2/3 (the mean of its slice Dice would be 3/4);
# case_b: 2 / (2 + 0 + 2) = 1/2; case_e: NaN, left out. Mean over cases (2/3 + 1/2) / 2 = 7/12,
# population std |2/3 - 1/2| / 2 = 1/12.
SLICES = {
    "a0": ("case_a", _mask((0, 0), (0, 1), (1, 0), (1, 1)), _mask((0, 0), (1, 0), (3, 2), (3, 3))),
    "a1": ("case_a", _mask((2, 2), (2, 3)), _mask((2, 2), (2, 3))),
    "b0": ("case_b", _mask((0, 0), (0, 1), (0, 2)), _mask((0, 0))),
    "e0": ("case_e", _mask(), _mask((1, 1))),
}
EXPECTED_ROWS = [
    # case_id, num_slices, dice, mean_dice, gt_pixels, pred_pixels
    ["case_a", 2, 2 / 3, 2 / 3, 6, 6],
    ["case_b", 1, 1 / 2, 1 / 2, 3, 1],
    ["case_e", 1, NAN, NAN, 0, 1],
]


def _item(name: str) -> dict:
    """Image = 2-channel logits whose argmax is the predicted mask; label = 1 H W class indices."""
    case, gt, pred = SLICES[name]
    logits = torch.as_tensor(np.stack([1 - pred, pred]), dtype=torch.float32)
    return {"image": logits, "label": torch.as_tensor(gt[None], dtype=torch.float32), "case_id": case}


def _evaluator(order, report, batch_size=2):
    data = [_item(n) for n in order]
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=torch.utils.data.DataLoader(data, batch_size=batch_size),
        network=torch.nn.Identity(),  # pred = the logits held in "image"
        postprocessing=AsDiscreted(keys=["pred", "label"], argmax=(True, False), to_onehot=2),
        val_handlers=[report],
    )


def _check_rows(csv_path, expected):
    table = pd.read_csv(csv_path)
    assert list(table.columns) == [
        "case_id",
        "num_slices",
        "dice_infection",
        "mean_dice",
        "gt_pixels_infection",
        "pred_pixels_infection",
    ]
    assert table["case_id"].tolist() == [r[0] for r in expected]
    assert table["num_slices"].tolist() == [r[1] for r in expected]
    np.testing.assert_allclose(table["dice_infection"], [r[2] for r in expected], atol=1e-6)
    np.testing.assert_allclose(table["mean_dice"], [r[3] for r in expected], atol=1e-6)
    assert table["gt_pixels_infection"].tolist() == [r[4] for r in expected]
    assert table["pred_pixels_infection"].tolist() == [r[5] for r in expected]


def test_hand_worked_cases_from_supervised_evaluator(tmp_path, caplog):
    report = SegmentationCaseReport(tmp_path / "out", ["infection"], prefix="val", name="segrep_test")
    # batches [a0, b0] and [a1, e0]: case_a's slices land in different batches
    evaluator = _evaluator(["a0", "b0", "a1", "e0"], report)
    seen = {}
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.update(e.state.metrics))
    with caplog.at_level(logging.WARNING, logger="segrep_test"):
        evaluator.run()
    assert seen == {"val_mean_dice": pytest.approx(7 / 12)}
    assert "1 case(s) with empty 'infection' ground truth" in caplog.text and "['case_e']" in caplog.text
    _check_rows(tmp_path / "out" / "val_per_case.csv", EXPECTED_ROWS)
    assert (tmp_path / "out" / "val_per_case.csv").read_text().splitlines()[3] == "case_e,1,,,0,1"
    summary = json.loads((tmp_path / "out" / "val_summary.json").read_text())
    assert summary["num_cases"] == 3 and summary["num_slices"] == 4
    assert summary["classes"]["infection"] == {
        "mean": pytest.approx(7 / 12),
        "std": pytest.approx(1 / 12),
        "num_cases": 2,
        "empty_gt_cases": 1,
    }
    assert summary["mean_dice"] == {"mean": pytest.approx(7 / 12), "std": pytest.approx(1 / 12), "num_cases": 2}
    assert summary["empty_gt_cases"] == {"infection": ["case_e"]}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["val_per_case.csv", "val_summary.json"]


# Two classes (ggo = channel 1, consolidation = channel 2), 1 x 4 slices given as class-index rows:
#   x z0: gt [1 1 0 0]  pred [1 1 0 2]   ggo TP 2 -> Dice 1; consolidation: empty gt, 1 px predicted -> NaN
#   y z0: gt [1 0 2 2]  pred [1 1 0 0]   ggo TP 1, FP 1 -> 2/3; consolidation TP 0, FN 2 -> 0
#   y z1: gt [0 0 0 0]  pred [0 0 0 0]   adds nothing but a slice
# mean_dice: x = nanmean(1, NaN) = 1; y = (2/3 + 0) / 2 = 1/3; metric (1 + 1/3) / 2 = 2/3.
MULTI = [
    ("x", [1, 1, 0, 0], [1, 1, 0, 2]),
    ("y", [1, 0, 2, 2], [1, 1, 0, 0]),
    ("y", [0, 0, 0, 0], [0, 0, 0, 0]),
]


def _onehot(row) -> torch.Tensor:
    """``3 1 4`` one-hot slice of a row of class indices."""
    return one_hot(torch.tensor(row).reshape(1, 1, 4), 3, dim=0)


def _multi_engine(batches):
    def step(engine, batch):
        return [{"pred": _onehot(p), "label": _onehot(g), "case_id": c} for c, g, p in batch]

    return Engine(step), batches


def test_multiclass_nan_class_and_reset_each_epoch(tmp_path):
    report = SegmentationCaseReport(tmp_path, ["ggo", "consolidation"], metric_name="case_dice")
    engine, batches = _multi_engine([MULTI[:2], MULTI[2:]])
    report.attach(engine)
    epochs = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: epochs.append(e.state.metrics["case_dice"]))
    engine.run(batches, max_epochs=2)
    assert epochs == [pytest.approx(2 / 3)] * 2  # the second epoch is not added to the first
    table = pd.read_csv(tmp_path / "eval_per_case.csv")
    assert list(table.columns) == [
        "case_id",
        "num_slices",
        "dice_ggo",
        "dice_consolidation",
        "mean_dice",
        "gt_pixels_ggo",
        "gt_pixels_consolidation",
        "pred_pixels_ggo",
        "pred_pixels_consolidation",
    ]
    expected = [["x", 1, 1.0, NAN, 1.0, 2, 0, 2, 1], ["y", 2, 2 / 3, 0.0, 1 / 3, 1, 2, 2, 0]]
    np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(float), [r[1:] for r in expected], atol=1e-6)
    assert table["case_id"].tolist() == ["x", "y"]
    summary = json.loads((tmp_path / "eval_summary.json").read_text())
    assert summary["classes"]["consolidation"]["num_cases"] == 1
    assert summary["classes"]["consolidation"]["empty_gt_cases"] == 1
    assert summary["empty_gt_cases"] == {"ggo": [], "consolidation": ["x"]}
    np.testing.assert_array_equal(report.result["counts"][1], [[1, 1, 0], [0, 0, 2]])  # y: (TP, FP, FN) per class


def test_agrees_with_monai_dice_metric_on_stacked_volumes(tmp_path):
    rng = np.random.default_rng(5)
    classes, size = 2, 8
    slices = []
    for case, depth in (("c1", 3), ("c2", 2), ("c3", 4)):
        for z in range(depth):
            gt = rng.integers(0, classes + 1, (size, size))
            if case == "c2":
                gt[gt == 2] = 0  # c2 has no class-2 ground truth: NaN for both computations
            pred = np.where(rng.random((size, size)) < 0.3, rng.integers(0, classes + 1, (size, size)), gt)
            slices.append((case, z, gt, pred))
    order = rng.permutation(len(slices))
    shuffled = [slices[i] for i in order]

    def onehot(mask):
        return one_hot(torch.tensor(mask)[None], classes + 1, dim=0)  # C H W

    def step(engine, batch):
        return [{"pred": onehot(p), "label": onehot(g), "case_id": c} for c, _, g, p in batch]

    engine = Engine(step)
    report = SegmentationCaseReport(tmp_path, ["one", "two"])
    report.attach(engine)
    engine.run([shuffled[i : i + 3] for i in range(0, len(shuffled), 3)], max_epochs=1)
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    expected = []
    for case in ("c1", "c2", "c3"):
        own = sorted((s for s in slices if s[0] == case), key=lambda s: s[1])
        gt = np.stack([s[2] for s in own], axis=-1)  # H W Z
        pred = np.stack([s[3] for s in own], axis=-1)
        volume = [one_hot(torch.tensor(v)[None, None], 3, dim=1) for v in (pred, gt)]  # 1 C H W Z
        expected.append(metric(*volume)[0].numpy())
    expected = np.array(expected)
    assert np.isnan(expected[1, 1]) and np.isnan(expected).sum() == 1
    np.testing.assert_allclose(report.result["dice"], expected, atol=1e-6)
    table = pd.read_csv(tmp_path / "eval_per_case.csv")
    np.testing.assert_allclose(table[["dice_one", "dice_two"]].to_numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(table["mean_dice"], np.nanmean(expected, axis=1), atol=1e-6)
    assert table["num_slices"].tolist() == [3, 2, 4]


def _run_once(report, output):
    engine = Engine(lambda e, b: output)
    report.attach(engine)
    engine.run([0], max_epochs=1)
    return engine


def test_errors(tmp_path):
    with pytest.raises(ValueError, match=r"class_names must name each foreground class once, got \[\]"):
        SegmentationCaseReport(tmp_path, [])
    with pytest.raises(ValueError, match=r"got \['a', 'a'\]"):
        SegmentationCaseReport(tmp_path, ["a", "a"])
    onehot = torch.zeros(2, 4, 4)
    onehot[0] = 1
    bad = [{"pred": onehot, "label": torch.zeros(1, 4, 4), "case_id": "p7"}]
    with pytest.raises(ValueError, match=r"case 'p7': pred shape \(2, 4, 4\) differs from label shape \(1, 4, 4\)"):
        _run_once(SegmentationCaseReport(tmp_path, ["infection"]), bad)
    three = [{"pred": torch.zeros(3, 4, 4), "label": torch.zeros(3, 4, 4), "case_id": "p8"}]
    with pytest.raises(ValueError, match=r"case 'p8': pred and label have shape \(3, 4, 4\); expected .* C = 2"):
        _run_once(SegmentationCaseReport(tmp_path, ["infection"]), three)
    with pytest.raises(KeyError, match="'case_id'"):
        _run_once(SegmentationCaseReport(tmp_path, ["infection"]), [{"pred": onehot, "label": onehot}])


def test_case_ids_from_batch_and_batch_first_output(tmp_path):
    # a batch-first output dict (not decollated) with the case ids in engine.state.batch
    pred = torch.stack([one_hot(torch.tensor(_mask((0, 0), (0, 1)))[None], 2, dim=0)] * 2)  # B 2 4 4
    label = torch.stack([one_hot(torch.tensor(_mask((0, 0)))[None], 2, dim=0)] * 2)
    report = SegmentationCaseReport(tmp_path, ["infection"])
    engine = Engine(lambda e, b: {"pred": pred, "label": label})
    engine.add_event_handler(Events.ITERATION_STARTED, lambda e: setattr(e.state, "batch", {"case_id": ["u", "v"]}))
    report.attach(engine)
    engine.run([0], max_epochs=1)
    # each case: TP 1, FP 1, FN 0 -> 2 / 3
    assert report.result["case_ids"] == ["u", "v"]
    np.testing.assert_allclose(report.result["dice"][:, 0], [2 / 3, 2 / 3])
    assert engine.state.metrics["eval_mean_dice"] == pytest.approx(2 / 3)


# ---- two gloo ranks on CPU ----------------------------------------------------------------------------------------

# case_a's two slices land on different ranks; rank 1 has case_e too; counts of case_a must be summed
RANK_ORDERS = {0: ["a0", "b0"], 1: ["a1", "e0"]}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size, timeout=timedelta(seconds=60)
    )
    try:
        report = SegmentationCaseReport(f"{out_dir}/rank{rank}", ["infection"], prefix="val")
        evaluator = _evaluator(RANK_ORDERS[rank], report, batch_size=1)
        evaluator.run()
        with open(f"{out_dir}/metrics{rank}.json", "w") as f:
            json.dump(evaluator.state.metrics, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_sum_split_cases_and_rank0_writes(tmp_path):
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True, start_method=start_method)
    for rank in (0, 1):
        metrics = json.loads((tmp_path / f"metrics{rank}.json").read_text())
        assert metrics == {"val_mean_dice": pytest.approx(7 / 12)}
    _check_rows(tmp_path / "rank0" / "val_per_case.csv", EXPECTED_ROWS)
    assert not (tmp_path / "rank1").exists()
