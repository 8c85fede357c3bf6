# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Gathering ``(index, value)`` pairs from every rank, so that all ranks hold the same full per-sample state.

Under ``torchrun`` each rank sees its own share of every batch; per-sample state (NVUM memory, soft labels, MoMBS
scores, :class:`monai_ext.handlers.per_sample.PerSampleRecorder`) is kept identical everywhere by applying the
gathered pairs of all ranks, in rank order, on every rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = ["all_gather_indexed", "last_occurrence", "first_rank_decides"]

T = TypeVar("T")


def _communication_device(reference: torch.device, group: dist.ProcessGroup | None) -> torch.device:
    backend = str(dist.get_backend(group)).lower()
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    if backend == "gloo":
        return torch.device("cpu")
    return reference


def all_gather_indexed(
    index: torch.Tensor, values: torch.Tensor, group: dist.ProcessGroup | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate ``(index, values)`` of all ranks, in rank order, on every rank.

    Ranks may hold different batch sizes (the last batch of an epoch, samplers with uneven shares): the sizes are
    gathered first, every rank pads to the largest, and the padding is trimmed off. Tensors travel on the device
    the backend needs (CUDA for ``nccl``, CPU for ``gloo``) and come back on ``index``'s and ``values``' devices.
    Without an initialised process group (or with one rank) this returns detached copies. With one, it is a
    collective call: every rank of ``group`` must make it, the same number of times.

    Example: rank 0 holds ``index=[4, 1]``, ``values=[0.5, 0.2]`` and rank 1 ``index=[7]``, ``values=[0.9]``;
    both ranks get ``([4, 1, 7], [0.5, 0.2, 0.9])``.

    Args:
        index: ``B`` integer dataset indices of this rank's samples (``B`` may be 0 and differ across ranks).
        values: ``B ...`` values of these samples; the trailing shape and dtype must be the same on every rank.
        group: process group, default the global group.

    Returns:
        ``(sum B,)`` indices and ``(sum B, ...)`` values, detached.

    Raises:
        ValueError: ``index`` is not 1-D or ``values`` does not have ``B`` rows.
    """
    if index.ndim != 1:
        raise ValueError(f"index must have shape (B,), got {tuple(index.shape)}.")
    if values.ndim == 0 or values.shape[0] != index.shape[0]:
        raise ValueError(
            f"values must have one row per index (shape ({index.shape[0]}, ...)), got {tuple(values.shape)}."
        )
    index, values = index.detach(), values.detach()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return index.clone(), values.clone()

    world = dist.get_world_size(group)
    comm = _communication_device(values.device, group)
    size = torch.tensor([index.shape[0]], dtype=torch.long, device=comm)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)

    padded_index = torch.zeros(longest, dtype=index.dtype, device=comm)
    padded_index[: index.shape[0]] = index.to(comm)
    padded_values = torch.zeros((longest, *values.shape[1:]), dtype=values.dtype, device=comm)
    padded_values[: values.shape[0]] = values.to(comm)
    all_index = [torch.empty_like(padded_index) for _ in range(world)]
    all_values = [torch.empty_like(padded_values) for _ in range(world)]
    dist.all_gather(all_index, padded_index, group=group)
    dist.all_gather(all_values, padded_values, group=group)

    gathered_index = torch.cat([t[:n] for t, n in zip(all_index, counts)])
    gathered_values = torch.cat([t[:n] for t, n in zip(all_values, counts)])
    return gathered_index.to(index.device), gathered_values.to(values.device)


def last_occurrence(index: torch.Tensor) -> torch.Tensor:
    """Positions of the last occurrence of every distinct value of ``index``.

    A ``DistributedSampler`` pads an epoch with repeated samples, so gathered indices can repeat; per-sample state
    applies only the last occurrence in rank order, which makes the result independent of ``index_copy_`` order.

    Args:
        index: ``K`` integer tensor.

    Returns:
        ``U`` int64 positions into ``index`` (one per distinct value, in ascending value order).

    Example:
        >>> last_occurrence(torch.tensor([5, 2, 5, 7])).tolist()
        [1, 2, 3]
    """
    order = torch.argsort(index, stable=True)
    sorted_index = index[order]
    last = torch.ones_like(sorted_index, dtype=torch.bool)
    last[:-1] = sorted_index[1:] != sorted_index[:-1]
    return order[last]


def first_rank_decides(
    compute: Callable[[], T], errors: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError)
) -> T:
    """Run ``compute`` on rank 0 only and give its result to every rank (``broadcast_object_list``).

    Used where every rank must see the same answer although the answer may change while they run (e.g. the list of
    inference cases still without a result while other ranks write results). Without an initialised process group
    of several ranks it simply returns ``compute()``. A collective call otherwise: every rank must make it.

    Args:
        compute: the work, called without arguments on rank 0; its result must be picklable.
        errors: exception types raised by ``compute`` that are re-raised on *every* rank (so no rank is left waiting
            in the broadcast). Defaults to ``(OSError, ValueError, KeyError)``.

    Raises:
        the exception of ``errors`` that ``compute`` raised on rank 0, on every rank.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return compute()
    shared: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            shared[0] = compute()
        except errors as e:
            shared[0] = e
    dist.broadcast_object_list(shared, src=0)
    if isinstance(shared[0], BaseException):
        raise shared[0]
    return shared[0]
