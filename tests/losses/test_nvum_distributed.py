# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Two gloo ranks on CPU see disjoint batches; both must end with the memory a single process computes."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from monai_ext.losses import NVUMLoss

NUM_SAMPLES, NUM_CLASSES = 11, 3
PRIOR = [0.5, 0.25, 0.125]
# per rank and iteration; disjoint within an iteration except sample 6 in the last one (a DistributedSampler pads
# with repeats): the last occurrence in rank order (rank 1's) must win on both ranks
RANK_BATCHES = {0: [[9, 0, 3], [5, 7, 1, 10], [6, 2]], 1: [[2, 4], [6, 8], [6, 3]]}
ITERATIONS = 3


def _logits(index: list[int], iteration: int, rank: int) -> torch.Tensor:
    """Logits that differ per sample, iteration and rank (so a repeated index is not trivially the same)."""
    return torch.tensor([[(i - 5) / 4 + c / 2 - iteration / 8 + rank / 16 for c in range(NUM_CLASSES)] for i in index])


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
        loss = NVUMLoss(NUM_SAMPLES, NUM_CLASSES, PRIOR, beta=0.9, reduction="none")
        losses = []
        for it in range(ITERATIONS):
            index = RANK_BATCHES[rank][it]
            z = _logits(index, it, rank)
            losses.append(loss(z, torch.zeros_like(z), index=torch.tensor(index)))
        torch.save({"state": loss.state_dict(), "losses": losses}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _single_process() -> NVUMLoss:
    """The same iterations in one process: each step sees the batches of all ranks, in rank order."""
    loss = NVUMLoss(NUM_SAMPLES, NUM_CLASSES, PRIOR, beta=0.9, reduction="none")
    for it in range(ITERATIONS):
        index = RANK_BATCHES[0][it] + RANK_BATCHES[1][it]
        z = torch.cat([_logits(RANK_BATCHES[r][it], it, r) for r in (0, 1)])
        loss(z, torch.zeros_like(z), index=torch.tensor(index))
    return loss


@pytest.mark.slow
def test_two_gloo_ranks_hold_identical_memory_equal_to_single_process(tmp_path):
    world_size = len(RANK_BATCHES)
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(
        _worker, args=(world_size, _free_port(), str(tmp_path)), nprocs=world_size, join=True, start_method=start_method
    )
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world_size)]
    reference = _single_process()
    assert torch.equal(results[0]["state"]["memory"], results[1]["state"]["memory"])
    assert torch.equal(results[0]["state"]["num_updates"], results[1]["state"]["num_updates"])
    assert torch.allclose(results[0]["state"]["memory"], reference.memory, atol=1e-6)
    assert results[0]["state"]["num_updates"].tolist() == reference.num_updates.tolist()
    # sample 6: iteration 1 (rank 1), then in iteration 2 rank 0 and rank 1 both hold it -> rank 1's logits, once
    z1, z2 = _logits([6], 1, 1)[0], _logits([6], 2, 1)[0]
    log_pi = torch.log(torch.tensor(PRIOR))
    t6 = 0.9 * (0.1 * (z1 - log_pi)) + 0.1 * (z2 - log_pi)
    assert torch.allclose(results[1]["state"]["memory"][6], t6, atol=1e-6)
    assert reference.num_updates[6] == 2
    # every sample was visited; the loss on rank 1 used the gathered (global) update of its rows
    assert bool((reference.num_updates > 0).all())
    last_rank1 = results[1]["losses"][-1]
    assert last_rank1.shape == (2,) and torch.isfinite(last_rank1).all()
