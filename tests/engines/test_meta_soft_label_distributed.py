# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Two gloo ranks train with meta soft labels under DistributedDataParallel: both must end with the same soft labels,
network and label network, every row updated by the rank that held it."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from monai_ext.engines import MetaSoftLabelTrainer, SoftLabelStore
from monai_ext.networks import LabelNetwork

N, D, C = 10, 4, 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _items(n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, D, generator=g), torch.randint(0, C, (n,), generator=g)
    return [{"image": x[i], "label": int(y[i]), "index": i} for i in range(n)]


def _worker(rank: int, world: int, port: int, out_dir: str, label_source: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )
    try:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(D, 6), nn.BatchNorm1d(6), nn.Tanh())
        net.add_module("fc", nn.Linear(6, C))
        items, meta = _items(N, 1), _items(8, 2)
        label_net = LabelNetwork(net, C, feature_layer="fc")
        ddp = nn.parallel.DistributedDataParallel(net)
        train_loader = DataLoader(items, batch_size=3, sampler=DistributedSampler(items, shuffle=True, seed=0))
        meta_loader = DataLoader(meta, batch_size=2, sampler=DistributedSampler(meta, shuffle=True, seed=0))
        trainer = MetaSoftLabelTrainer(
            device="cpu", max_epochs=2, train_data_loader=train_loader, network=ddp,
            optimizer=torch.optim.SGD(ddp.parameters(), lr=0.05), loss_function=nn.CrossEntropyLoss(reduction="none"),
            soft_labels=SoftLabelStore(items, C), meta_data_loader=meta_loader, warmup_epochs=1, beta=50.0,
            label_source=label_source, label_network=label_net,
            label_optimizer=torch.optim.Adam(label_net.linear.parameters(), lr=1e-2),
        )  # fmt: skip
        trainer.run()
        torch.save(
            {
                "store": trainer.soft_labels.state_dict(),
                "net": dict(net.named_parameters()),
                "label": label_net.state_dict(),
            },
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("label_source", ["per_sample", "network"])
def test_two_gloo_ranks_hold_identical_soft_labels_and_networks(tmp_path, label_source):
    start = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(
        _worker, args=(2, _free_port(), str(tmp_path), label_source), nprocs=2, join=True, start_method=start
    )
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for part in ("store", "net", "label"):  # (DDP keeps parameters equal; BatchNorm running stats stay per rank)
        for key in r0[part]:
            assert torch.equal(r0[part][key], r1[part][key]), (part, key)
    # one meta epoch: every one of the N rows was rewritten once (the sampler pads 10 -> 2 x 5, one row twice)
    updates = r0["store"]["num_updates"]
    assert bool((updates >= 1).all()) and int(updates.sum()) == N
    initial = 10.0 * torch.nn.functional.one_hot(torch.tensor([it["label"] for it in _items(N, 1)]), C).float()
    assert not torch.allclose(r0["store"]["label_logits"], initial)
