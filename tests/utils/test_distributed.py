# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from monai_ext.utils.distributed import all_gather_indexed, first_rank_decides

# what each rank holds in two successive gathers: unequal sizes, then one rank empty; 2 values per sample
RANK_INDEX = [{0: [4, 1], 1: [7, 0, 9]}, {0: [], 1: [3]}]
EXPECTED_INDEX = [[4, 1, 7, 0, 9], [3]]
EXPECTED_VALUES = [[[4.5, -4.0], [1.5, -1.0], [7.5, -7.0], [0.5, 0.0], [9.5, -9.0]], [[3.5, -3.0]]]
WORLD_SIZE = 2


def _values(index: list[int]) -> torch.Tensor:
    return torch.tensor([[i + 0.5, -float(i)] for i in index]).reshape(len(index), 2)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gather_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size, timeout=timedelta(seconds=60)
    )
    try:
        gathered = []
        for call in RANK_INDEX:
            index = torch.tensor(call[rank], dtype=torch.long)
            gathered.append(all_gather_indexed(index, _values(call[rank])))
        torch.save(gathered, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_all_gather_indexed_without_process_group_copies():
    index, values = torch.tensor([3, 1]), torch.tensor([[0.5], [0.25]], requires_grad=True)
    out_index, out_values = all_gather_indexed(index, values)
    assert out_index.tolist() == [3, 1] and out_values.tolist() == [[0.5], [0.25]]
    assert not out_values.requires_grad
    out_index[0] = 99
    assert index[0] == 3


@pytest.mark.parametrize(
    "index, values, match",
    [
        (torch.zeros(2, 1, dtype=torch.long), torch.zeros(2), r"index must have shape \(B,\)"),
        (torch.zeros(2, dtype=torch.long), torch.zeros(3), r"one row per index \(shape \(2, \.\.\.\)\)"),
    ],
)
def test_all_gather_indexed_checks_shapes(index, values, match):
    with pytest.raises(ValueError, match=match):
        all_gather_indexed(index, values)


@pytest.mark.slow
def test_all_gather_indexed_two_gloo_ranks_unequal_sizes(tmp_path):
    # fork (where available) spares each rank re-importing torch; the workers are the same under spawn
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(
        _gather_worker,
        args=(WORLD_SIZE, _free_port(), str(tmp_path)),
        nprocs=WORLD_SIZE,
        join=True,
        start_method=start_method,
    )
    for rank in range(WORLD_SIZE):
        gathered = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for (index, values), expected_index, expected_values in zip(gathered, EXPECTED_INDEX, EXPECTED_VALUES):
            assert index.dtype == torch.long
            assert index.tolist() == expected_index
            assert values.tolist() == expected_values


def test_last_occurrence_hand_worked():
    from monai_ext.utils.distributed import last_occurrence

    # values 5 at positions 0 and 2, 2 at 1, 7 at 3 -> last positions in ascending value order: 2 -> 1, 5 -> 2, 7 -> 3
    assert last_occurrence(torch.tensor([5, 2, 5, 7])).tolist() == [1, 2, 3]
    assert last_occurrence(torch.tensor([3, 3, 3])).tolist() == [2]
    assert last_occurrence(torch.tensor([], dtype=torch.long)).tolist() == []


def test_first_rank_decides_without_process_group_just_computes():
    assert first_rank_decides(lambda: [1, 2]) == [1, 2]


def _decide_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size, timeout=timedelta(seconds=60)
    )
    try:
        calls = []
        value = first_rank_decides(lambda: calls.append(rank) or {"from": rank})  # each rank would answer itself

        def fail():
            raise ValueError(f"bad input seen by rank {rank}")

        try:
            first_rank_decides(fail)
            error = None
        except ValueError as e:
            error = str(e)
        with open(f"{out_dir}/rank{rank}.json", "w") as f:
            json.dump({"value": value, "calls": calls, "error": error}, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_first_rank_decides_two_gloo_ranks(tmp_path):
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(
        _decide_worker, args=(WORLD_SIZE, _free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True,
        start_method=start_method,
    )  # fmt: skip
    for rank in range(WORLD_SIZE):
        seen = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert seen["value"] == {"from": 0}  # rank 0's answer everywhere
        assert seen["calls"] == ([0] if rank == 0 else [])  # computed on rank 0 only
        assert seen["error"] == "bad input seen by rank 0"  # re-raised on every rank, none left waiting
