# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import math
import socket
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from ignite.engine import Engine
from monai.data import DataLoader, Dataset
from monai.handlers import CheckpointLoader, CheckpointSaver

from monai_ext.data.datalist import assign_indices
from monai_ext.engines.per_sample import PerSampleTrainer
from monai_ext.handlers.per_sample import PerSampleRecorder

NAN = math.nan


def _fake_engine(output, epoch: int = 1) -> SimpleNamespace:
    return SimpleNamespace(state=SimpleNamespace(output=output, epoch=epoch))


def _as_list(t: torch.Tensor) -> list:
    """Tensor to list with NaN replaced by None, so that lists compare with ``==``."""
    return [None if isinstance(v, float) and math.isnan(v) else v for v in t.tolist()]


def test_update_fills_exactly_the_given_indices():
    rec = PerSampleRecorder(num_samples=5)
    rec.update(torch.tensor([3, 1]), torch.tensor([0.5, 0.25]), epoch=2)
    assert _as_list(rec["loss_per_sample"]) == [None, 0.25, None, 0.5, None]
    assert rec.last_epoch.tolist() == [-1, 2, -1, 2, -1]
    assert rec.visited.tolist() == [False, True, False, True, False]
    rec.update(torch.tensor([1, 4]), torch.tensor([0.75, 1.5]), epoch=3)
    assert _as_list(rec["loss_per_sample"]) == [None, 0.75, None, 0.5, 1.5]
    assert rec.last_epoch.tolist() == [-1, 3, -1, 2, 3]
    rec.reset()
    assert _as_list(rec["loss_per_sample"]) == [None] * 5 and rec.last_epoch.tolist() == [-1] * 5


def test_update_repeated_index_keeps_last_occurrence():
    rec = PerSampleRecorder(num_samples=3)
    rec.update(torch.tensor([2, 0, 2, 2]), torch.tensor([1.0, 5.0, 2.0, 3.0]), epoch=1)
    assert _as_list(rec["loss_per_sample"]) == [5.0, None, 3.0]


def test_several_columns_from_dict_output():
    rec = PerSampleRecorder(num_samples=4, keys=["loss_per_sample", "uncertainty"])
    output = {
        "index": torch.tensor([2, 0]),
        "loss_per_sample": torch.tensor([0.5, 0.25]),
        "uncertainty": torch.tensor([[0.125], [0.0625]]),
        "pred": torch.zeros(2, 3),
    }
    rec(_fake_engine(output, epoch=4))
    assert _as_list(rec["loss_per_sample"]) == [0.25, None, 0.5, None]
    assert _as_list(rec["uncertainty"]) == [0.0625, None, 0.125, None]
    assert rec.last_epoch.tolist() == [4, -1, 4, -1]


def test_decollated_output_list_of_dicts():
    rec = PerSampleRecorder(num_samples=3)
    # what MONAI's decollate makes of the batch output: scalars become Python numbers
    output = [{"index": 2, "loss_per_sample": 0.5, "loss": 0.375}, {"index": 0, "loss_per_sample": 0.25, "loss": 0.375}]
    rec(_fake_engine(output))
    assert _as_list(rec["loss_per_sample"]) == [0.25, None, 0.5]


@pytest.mark.parametrize(
    "index, match",
    [
        ([0, 5], r"sample index \[5\] out of range for num_samples=5 \(valid: 0 to 4\)"),
        ([-1, 2], r"sample index \[-1\] out of range for num_samples=5"),
    ],
)
def test_index_out_of_range(index, match):
    rec = PerSampleRecorder(num_samples=5)
    with pytest.raises(IndexError, match=match):
        rec(_fake_engine({"index": torch.tensor(index), "loss_per_sample": torch.zeros(2)}))
    assert rec.visited.sum() == 0


@pytest.mark.parametrize(
    "output, error, match",
    [
        ({"index": torch.tensor([0])}, KeyError, "no 'loss_per_sample'.*PerSampleTrainer"),
        ({"loss_per_sample": torch.zeros(1)}, KeyError, "no 'index'"),
        ({"index": torch.tensor([0, 1]), "loss_per_sample": torch.zeros(2, 3)}, ValueError, "one value per sample"),
        ({"index": torch.tensor([0.0]), "loss_per_sample": torch.zeros(1)}, TypeError, "integers"),
    ],
)
def test_bad_output(output, error, match):
    rec = PerSampleRecorder(num_samples=5)
    with pytest.raises(error, match=match):
        rec(_fake_engine(output))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"num_samples": 0}, "num_samples must be >= 1"), ({"num_samples": 3, "keys": ["a", "a"]}, "each once")],
)
def test_bad_init(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PerSampleRecorder(**kwargs)


def test_state_dict_round_trip_weights_only(tmp_path):
    rec = PerSampleRecorder(num_samples=4, keys=["loss_per_sample", "uncertainty"])
    rec.update(torch.tensor([1, 3]), torch.tensor([[0.5, 2.0], [0.25, 4.0]]), epoch=7)
    torch.save({"per_sample": rec.state_dict()}, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)

    other = PerSampleRecorder(num_samples=4, keys=["loss_per_sample", "uncertainty"])
    other.load_state_dict(loaded["per_sample"])
    assert _as_list(other["loss_per_sample"]) == [None, 0.5, None, 0.25]
    assert _as_list(other["uncertainty"]) == [None, 2.0, None, 4.0]
    assert other.last_epoch.tolist() == [-1, 7, -1, 7]

    with pytest.raises(ValueError, match="num_samples=5"):
        PerSampleRecorder(num_samples=5, keys=["loss_per_sample", "uncertainty"]).load_state_dict(loaded["per_sample"])
    with pytest.raises(ValueError, match=r"columns \['loss_per_sample', 'uncertainty'\] differ"):
        PerSampleRecorder(num_samples=4).load_state_dict(loaded["per_sample"])


def test_checkpoint_saver_and_loader_round_trip(tmp_path):
    rec = PerSampleRecorder(num_samples=3)
    rec.update(torch.tensor([2]), torch.tensor([1.25]), epoch=1)
    saver_engine = Engine(lambda engine, batch: None)
    CheckpointSaver(str(tmp_path), save_dict={"per_sample": rec}, save_final=True).attach(saver_engine)
    saver_engine.run([0], max_epochs=1)
    (path,) = tmp_path.glob("*.pt")

    restored = PerSampleRecorder(num_samples=3)
    loader_engine = Engine(lambda engine, batch: None)
    CheckpointLoader(str(path), load_dict={"per_sample": restored}).attach(loader_engine)
    loader_engine.run([0], max_epochs=1)
    assert _as_list(restored["loss_per_sample"]) == [None, None, 1.25]
    assert restored.last_epoch.tolist() == [-1, -1, 1]


def test_with_trainer_records_visited_samples_only():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(6, 4, generator=g), (torch.rand(6, 2, generator=g) > 0.5).float()
    datalist = assign_indices([{"image": images[i], "label": labels[i]} for i in range(6)])
    net = torch.nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(torch.randn(2, 4, generator=g))
        net.bias.zero_()
    trainer = PerSampleTrainer(
        device="cpu",
        max_epochs=1,
        epoch_length=2,  # 2 of the 3 batches: samples 4 and 5 are never visited
        train_data_loader=DataLoader(Dataset(datalist), batch_size=2, shuffle=False),
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.0),
        loss_function=torch.nn.BCEWithLogitsLoss(reduction="none"),
    )
    rec = PerSampleRecorder(num_samples=6)
    rec.attach(trainer)
    trainer.run()
    with torch.no_grad():
        expected = [float(F.binary_cross_entropy_with_logits(net(images[i]), labels[i])) for i in range(4)]
    assert rec.last_epoch.tolist() == [1, 1, 1, 1, -1, -1]
    assert torch.allclose(rec["loss_per_sample"][:4], torch.tensor(expected), atol=1e-6)
    assert _as_list(rec["loss_per_sample"][4:]) == [None, None]


def test_update_of_one_batch_in_500k_buffer_is_fast():
    n, batch = 500_000, 512
    rec = PerSampleRecorder(num_samples=n)
    g = torch.Generator().manual_seed(0)
    index = torch.randperm(n, generator=g)[:batch]
    values = torch.rand(batch, generator=g)
    engine = _fake_engine({"index": index, "loss_per_sample": values})
    rec(engine)  # warm-up
    start = time.perf_counter()
    rec(engine)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert int(rec.visited.sum()) == batch
    assert torch.equal(rec["loss_per_sample"][index], values)


# ---- two gloo ranks on CPU ----------------------------------------------------------------------------------------

NUM_SAMPLES = 11
# disjoint, unequal index sets per rank and iteration; together they cover 0..10
RANK_BATCHES = {0: [[9, 0, 3], [5, 7, 1, 10]], 1: [[2, 4], [6, 8]]}


def _loss_of(index: list[int]) -> torch.Tensor:
    return torch.tensor([i / 4 for i in index])  # exact in float32


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recorder_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size, timeout=timedelta(seconds=60)
    )
    try:
        rec = PerSampleRecorder(num_samples=NUM_SAMPLES)
        for it, index in enumerate(RANK_BATCHES[rank]):
            output = {"index": torch.tensor(index), "loss_per_sample": _loss_of(index)}
            rec(_fake_engine(output, epoch=it + 1))
        torch.save(rec.state_dict(), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_hold_identical_complete_buffer(tmp_path):
    world_size = len(RANK_BATCHES)
    # fork (where available) spares each rank re-importing MONAI; the worker is the same under spawn
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(
        _recorder_worker,
        args=(world_size, _free_port(), str(tmp_path)),
        nprocs=world_size,
        join=True,
        start_method=start_method,
    )
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world_size)]
    expected_values = [[i / 4] for i in range(NUM_SAMPLES)]
    # samples of the first iteration were seen in epoch 1, those of the second in epoch 2
    first = set(RANK_BATCHES[0][0] + RANK_BATCHES[1][0])
    expected_epochs = [1 if i in first else 2 for i in range(NUM_SAMPLES)]
    for state in states:
        assert state["values"].tolist() == expected_values
        assert state["last_epoch"].tolist() == expected_epochs
    assert torch.equal(states[0]["values"], states[1]["values"])
