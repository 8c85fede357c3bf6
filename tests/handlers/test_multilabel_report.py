# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.handlers.multilabel_report: hand-worked tables from a SupervisedEvaluator, agreement with
multilabel_metrics on random data with unknown labels, metrics visible to EPOCH_COMPLETED handlers, and the
all-gather across two gloo ranks."""

from __future__ import annotations

import json
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

from monai_ext.handlers.multilabel_report import MultiLabelReport
from monai_ext.metrics.multilabel import metrics_table, multilabel_metrics

NAN = math.nan
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["a", "b", "Hernia"]


def _worked():
    """a: ranking 1 0 1 0 1 (AUROC 3/6, AP 34/45, F1 at 0.5 6/8); b: separable (1, 1, 1); Hernia: no positive."""
    y_pred = np.array([[0.9, 0.1, 0.3], [0.8, 0.6, 0.3], [0.7, 0.5, 0.3], [0.6, 0.3, 0.3], [0.5, 0.2, 0.3]])
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=float)
    return y_pred, y


def _engine_over(y_pred, y, batch_size):
    """An ignite engine whose outputs are decollated lists of {"pred", "label"} dicts, batch_size rows at a time."""
    batches = [(y_pred[s : s + batch_size], y[s : s + batch_size]) for s in range(0, len(y), batch_size)]

    def step(engine, batch):
        return [{"pred": torch.as_tensor(p), "label": torch.as_tensor(t)} for p, t in zip(*batch)]

    return Engine(step), batches


def test_report_of_supervised_evaluator_hand_worked(tmp_path):
    y_pred, y = _worked()
    data = [{"image": torch.as_tensor(p, dtype=torch.float32), "label": torch.as_tensor(t)} for p, t in zip(y_pred, y)]
    report = MultiLabelReport(
        tmp_path / "report",
        NAMES,
        prefix="test",
        metric_names={"mean_auroc": "val_auc", "map": "val_map", "macro_f1": "val_f1", "macro_recall": "val_recall"},
    )
    seen = {}
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=torch.utils.data.DataLoader(data, batch_size=2),
        network=torch.nn.Identity(),  # pred = the scores
        val_handlers=[report],
    )
    # a handler attached later at EPOCH_COMPLETED (as a stats handler would be) already sees the metrics
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.update(e.state.metrics))
    with pytest.warns(UserWarning, match="'Hernia'"):
        evaluator.run()
    mean_ap = (34 / 45 + 1) / 2
    assert seen == pytest.approx({"val_auc": 0.75, "val_map": mean_ap, "val_f1": 0.875, "val_recall": 1.0})

    table = pd.read_csv(tmp_path / "report" / "test_per_class.csv")
    assert table["class"].tolist() == ["a", "b", "Hernia", "mean"]
    np.testing.assert_allclose(table["auroc"], [0.5, 1.0, NAN, 0.75])
    np.testing.assert_allclose(table["ap"], [34 / 45, 1.0, NAN, mean_ap])
    np.testing.assert_allclose(table["f1"], [0.75, 1.0, NAN, 0.875])
    # a at 0.5: all five predicted positive, TP 3 -> precision 3/5, recall 1; b: predicted {0.6, 0.5}, both TP
    np.testing.assert_allclose(table["precision"], [0.6, 1.0, NAN, 0.8])
    np.testing.assert_allclose(table["recall"], [1.0, 1.0, NAN, 1.0])
    np.testing.assert_allclose(table["n_positive"], [3, 2, 0, NAN])
    md = (tmp_path / "report" / "test_per_class.md").read_text().splitlines()
    assert md[2] == "| a | 5 | 3 | 0.5000 | 0.7556 | 0.7500 | 0.6000 | 1.0000 |"
    assert md[4] == "| Hernia | 5 | 0 | n/a | n/a | n/a | n/a | n/a |"
    png = tmp_path / "report" / "test_roc.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 1000
    assert report.result["skipped"]["ap"] == ["Hernia"]


def test_report_equals_multilabel_metrics_on_random_logits(tmp_path):
    rng = np.random.default_rng(11)
    b, names = 37, ["c0", "c1", "c2", "c3"]
    y = (rng.random((b, 4)) < [0.1, 0.3, 0.5, 0.7]).astype(float)
    y[rng.random((b, 4)) < 0.15] = NAN  # unknown labels
    logits = rng.normal(size=(b, 4)) + 1.5 * np.nan_to_num(y)
    engine, batches = _engine_over(logits, y, batch_size=8)  # uneven last batch of 5
    report = MultiLabelReport(tmp_path, names, activation="sigmoid", threshold=0.4, metric_names={"map": "mAP"})
    report.attach(engine)
    engine.run(batches, max_epochs=1)
    expected = multilabel_metrics(logits, y, names, threshold=0.4, activation="sigmoid")
    written = pd.read_csv(tmp_path / "eval_per_class.csv")  # empty count cells of the mean row read as float NaN
    pd.testing.assert_frame_equal(written, metrics_table(expected).astype({"n_known": float, "n_positive": float}))
    assert engine.state.metrics == {"mAP": expected["map"]}
    assert (tmp_path / "eval_roc.png").read_bytes()[:8] == PNG_MAGIC


def test_report_resets_each_epoch(tmp_path):
    y_pred, y = _worked()
    engine, batches = _engine_over(y_pred[:, :2], y[:, :2], batch_size=2)
    report = MultiLabelReport(tmp_path, ["a", "b"])
    report.attach(engine)
    engine.run(batches, max_epochs=2)  # epoch 2 sees the same 5 rows again, not 10
    assert report.result["per_class"]["a"]["n_known"] == 5
    assert engine.state.metrics["mean_auroc"] == pytest.approx(0.75)


def test_report_errors(tmp_path):
    with pytest.raises(ValueError, match=r"metric_names keys must be among .* got \['auc'\]"):
        MultiLabelReport(tmp_path, NAMES, metric_names={"auc": "x"})
    with pytest.raises(ValueError, match="threshold"):
        MultiLabelReport(tmp_path, NAMES, threshold=2.0)
    with pytest.raises(ValueError, match="softmax"):
        MultiLabelReport(tmp_path, NAMES, activation="softmax")
    engine = Engine(lambda e, batch: [{"pred": torch.zeros(3)}])
    MultiLabelReport(tmp_path, NAMES).attach(engine)
    with pytest.raises(KeyError, match="no 'label'; the report needs predictions and labels"):
        engine.run([0], max_epochs=1)
    engine = Engine(lambda e, batch: [{"pred": torch.zeros(2), "label": torch.zeros(2)}])
    MultiLabelReport(tmp_path, NAMES).attach(engine)
    with pytest.raises(ValueError, match=r"must both be B x 3"):
        engine.run([0], max_epochs=1)


RANK_ROWS = {0: slice(0, 2), 1: slice(2, 5)}  # uneven shares of the 5 worked rows


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _report_worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=60)
    )
    try:
        y_pred, y = _worked()
        engine, batches = _engine_over(y_pred[RANK_ROWS[rank], :2], y[RANK_ROWS[rank], :2], batch_size=2)
        MultiLabelReport(f"{out_dir}/rank{rank}", ["a", "b"]).attach(engine)
        engine.run(batches, max_epochs=1)
        with open(f"{out_dir}/metrics{rank}.json", "w") as f:
            json.dump(engine.state.metrics, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_report_gathers_two_gloo_ranks(tmp_path):
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(
        _report_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True, start_method=start_method
    )
    for rank in range(2):  # every rank scores all 5 rows
        metrics = json.loads((tmp_path / f"metrics{rank}.json").read_text())
        assert metrics == pytest.approx({"mean_auroc": 0.75, "map": (34 / 45 + 1) / 2})
    assert (tmp_path / "rank0" / "eval_per_class.csv").is_file()
    assert not (tmp_path / "rank1").exists()  # only the first rank writes files
