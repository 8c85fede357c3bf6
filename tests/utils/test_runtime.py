# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.utils.runtime: the device/backend choices and the torchrun process-group steps of the bundles."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from monai_ext.utils import runtime


def test_default_device_and_backend_follow_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.default_device() == torch.device("cpu")
    assert runtime.default_backend() == "gloo"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.default_device() == torch.device("cuda", 0)
    assert runtime.default_backend() == "nccl"


def test_rank_device(monkeypatch):
    assert runtime.rank_device("gloo") == torch.device("cpu")
    assert runtime.rank_device("GLOO") == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert runtime.rank_device("nccl") == torch.device("cuda", 3)
    monkeypatch.delenv("LOCAL_RANK")
    with pytest.raises(KeyError, match="LOCAL_RANK.*torchrun"):
        runtime.rank_device("nccl")
    with pytest.raises(ValueError, match="unknown distributed backend 'ucc'"):
        runtime.rank_device("ucc")


def test_ddp_device_ids():
    assert runtime.ddp_device_ids(torch.device("cpu")) is None
    assert runtime.ddp_device_ids("cuda:1") == [torch.device("cuda", 1)]


def test_without_a_process_group():
    assert not dist.is_initialized()
    assert runtime.is_secondary_rank() is False
    runtime.finalize_distributed()  # nothing to leave: no error
    with pytest.raises(ValueError, match="unknown distributed backend"):
        runtime.init_distributed("ucc")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    # the environment torchrun sets: init_distributed uses the env:// rendezvous, as in a bundle's multi_gpu_train.json
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    os.environ["LOCAL_RANK"] = str(rank)
    backend = "gloo"
    device = runtime.rank_device(backend)
    runtime.init_distributed(backend, device)
    runtime.init_distributed(backend, device)  # a second call keeps the group (is_initialized)
    record = {"secondary": runtime.is_secondary_rank(), "world": dist.get_world_size(), "device": str(device)}
    runtime.finalize_distributed()
    record["after"] = dist.is_initialized()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w", encoding="utf-8") as f:
        json.dump(record, f)


@pytest.mark.slow
def test_two_ranks_join_identify_and_leave(tmp_path):
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["secondary"] for r in records] == [False, True]
    assert all(r["world"] == 2 and r["device"] == "cpu" and r["after"] is False for r in records)
