# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Device and process-group choices that bundle configs name, so that a config holds one call and no branching.

A bundle writes ``"device": "$monai_ext.utils.default_device()"`` instead of
``"$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')"``, and its ``multi_gpu_train.json`` overlay
``"dist_backend": "$monai_ext.utils.default_backend()"``, ``"device": "$monai_ext.utils.rank_device(@dist_backend)"``
and ``"initialize": ["$monai_ext.utils.init_distributed(@dist_backend, @device)", ...]``: the policy (CUDA when there
is one, NCCL on CUDA and gloo on the CPU, one GPU per ``LOCAL_RANK``) lives here, under tests.
"""

from __future__ import annotations

import os

import ignite.distributed as idist
import torch
import torch.distributed as dist

__all__ = [
    "default_device",
    "default_backend",
    "rank_device",
    "ddp_device_ids",
    "init_distributed",
    "finalize_distributed",
    "is_secondary_rank",
]

_CPU_BACKENDS = ("gloo", "mpi")


def default_device() -> torch.device:
    """``cuda:0`` when CUDA is available, else ``cpu`` (the model-zoo default of a single-process run)."""
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def default_backend() -> str:
    """``"nccl"`` when CUDA is available, else ``"gloo"`` (the ``torch.distributed`` backend of a ``torchrun`` run)."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def rank_device(backend: str) -> torch.device:
    """The device of this ``torchrun`` process: ``cuda:<LOCAL_RANK>`` for ``nccl``, ``cpu`` for ``gloo``/``mpi``.

    Args:
        backend: the ``torch.distributed`` backend, ``{"nccl", "gloo", "mpi"}`` (case-insensitive).

    Raises:
        ValueError: an unknown backend.
        KeyError: ``nccl`` outside ``torchrun`` (no ``LOCAL_RANK`` in the environment).
    """
    name = str(backend).lower()
    if name in _CPU_BACKENDS:
        return torch.device("cpu")
    if name != "nccl":
        raise ValueError(f"unknown distributed backend {backend!r}; use 'nccl' (GPUs) or 'gloo' (CPU).")
    if "LOCAL_RANK" not in os.environ:
        raise KeyError("dist_backend 'nccl' needs LOCAL_RANK in the environment: start the run with torchrun.")
    return torch.device("cuda", int(os.environ["LOCAL_RANK"]))


def ddp_device_ids(device: torch.device | str) -> list[torch.device] | None:
    """``device_ids`` of ``DistributedDataParallel``: ``[device]`` for a CUDA device, ``None`` for the CPU."""
    device = torch.device(device)
    return [device] if device.type == "cuda" else None


def init_distributed(backend: str, device: torch.device | str | None = None) -> None:
    """Join the ``torchrun`` process group (unless already joined) and make ``device`` current when it is CUDA.

    Args:
        backend: the ``torch.distributed`` backend (see :func:`rank_device`).
        device: this process's device (:func:`rank_device`); default none.

    Raises:
        ValueError: an unknown backend.
    """
    name = str(backend).lower()
    if name not in (*_CPU_BACKENDS, "nccl"):
        raise ValueError(f"unknown distributed backend {backend!r}; use 'nccl' (GPUs) or 'gloo' (CPU).")
    if not dist.is_initialized():
        dist.init_process_group(backend=name)
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.set_device(torch.device(device))
    # ignite's distributed helpers create a gloo group (a blocking rendezvous of every rank) the first time any of
    # them is asked for the rank, e.g. inside a CheckpointSaver that only rank 0 builds: do it now, on every rank, so
    # that rank-0-only handlers cannot leave rank 0 waiting in that rendezvous while the others train.
    idist.sync()


def finalize_distributed() -> None:
    """Leave the process group when one is initialised (the ``finalize`` step of a multi-GPU run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        idist.sync()  # ignite forgets the group too


def is_secondary_rank() -> bool:
    """Whether this process is a ``torchrun`` rank other than 0 (rank-0-only handlers are ``_disabled_`` there)."""
    return bool(dist.is_available() and dist.is_initialized() and dist.get_rank() > 0)
