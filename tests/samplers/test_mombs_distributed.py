# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Two gloo ranks on CPU: recorder -> handler -> sampler gives the same plan on both, with disjoint shares."""

from __future__ import annotations

import socket
from datetime import timedelta
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from scipy.stats import rankdata

from monai_ext.handlers import MoMBSHandler, PerSampleRecorder
from monai_ext.samplers import MoMBSSampler

WORLD = 2
N = 13  # global batch 2 x 2 = 4: three full ones, then the middle sample padded to 2
BATCH = 2


def _loss(index: list[int]) -> list[float]:
    return [((7 * i) % N) / N for i in index]  # distinct per sample


def _uncertainty(index: list[int]) -> list[float]:
    return [((5 * i) % N) / N for i in index]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _engine(epoch: int) -> SimpleNamespace:
    return SimpleNamespace(state=SimpleNamespace(epoch=epoch))


def _local_batches(sampler: MoMBSSampler) -> list[list[int]]:
    order = list(sampler)
    return [order[i : i + BATCH] for i in range(0, len(order), BATCH)]


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60)
    )
    try:
        result: dict = {}
        try:
            MoMBSSampler(range(1), batch_size=1)
        except ValueError as e:
            result["error"] = str(e)
        sampler = MoMBSSampler(range(N), batch_size=BATCH, pivot_epoch=2, seed=4)  # world and rank from the group
        recorder = PerSampleRecorder(num_samples=N, keys=["loss_per_sample", "uncertainty"])
        handler = MoMBSHandler(sampler, recorder, output_dir=f"{out_dir}/rank{rank}", name="mombs_test")
        for epoch in (1, 2):
            sampler.set_epoch(epoch)
            batches = _local_batches(sampler)
            result[f"epoch{epoch}"] = batches
            result[f"global{epoch}"] = sampler.global_batches()
            for batch in batches:  # the recorder all-gathers every rank's (index, loss, uncertainty)
                output = {
                    "index": torch.tensor(batch),
                    "loss_per_sample": torch.tensor(_loss(batch)),
                    "uncertainty": torch.tensor(_uncertainty(batch)),
                }
                recorder(SimpleNamespace(state=SimpleNamespace(output=output, epoch=epoch)))
            handler(_engine(epoch))
        result["len"] = len(sampler)
        torch.save(result, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_plan_identically_and_share_every_global_batch(tmp_path):
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True, start_method=start_method)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for res in results:
        assert "less than the number of participating ranks (1 samples, 2 ranks)" in res["error"]
        assert res["len"] == 7  # 3 full batches of 2 + 1 from the padded last one
    # difficulty ranks of the scores recorded in epoch 1, computed independently
    every = list(range(N))
    difficulty = (rankdata(_loss(every), method="ordinal") - 1) + (rankdata(_uncertainty(every), method="ordinal") - 1)
    drank = rankdata(difficulty, method="ordinal") - 1
    for epoch in (1, 2):
        assert results[0][f"global{epoch}"] == results[1][f"global{epoch}"]
        local = [res[f"epoch{epoch}"] for res in results]
        assert len(local[0]) == len(local[1]) == 4
        seen = [i for batches in local for b in batches for i in b]
        assert set(seen) == set(every) and len(seen) == N + 1  # one pad in the last global batch
        for k in range(3):  # full global batches: disjoint shares, the global batch is rank 0's then rank 1's
            share0, share1 = local[0][k], local[1][k]
            assert not set(share0) & set(share1)
            assert share0 + share1 == results[0][f"global{epoch}"][k]
            if epoch == 2:  # mirror: every share is one pair (rank sum N - 1), every global batch sums 2 (N - 1)
                assert int(drank[share0].sum()) == int(drank[share1].sum()) == N - 1
        if epoch == 2:
            assert [local[0][3][0]] == [int(drank.tolist().index(6))]  # the middle sample, rank 6, comes last
    assert (tmp_path / "rank0" / "difficulty_epoch0001.csv").is_file()
    assert (tmp_path / "rank0" / "difficulty_map_epoch0002.png").is_file()
    assert not (tmp_path / "rank1").exists()
