# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ignite handler that records per-sample values (loss, uncertainty, ...) for every dataset index.

It reads what :class:`monai_ext.engines.per_sample.PerSampleTrainer` puts into ``engine.state.output``
(``"index"`` and ``"loss_per_sample"``, or any other per-sample key) and keeps one value per sample and column in
an ``N K`` tensor plus the epoch of each sample's last visit. Under ``torchrun`` the ``(index, value)`` pairs of all
ranks are all-gathered at every iteration so that every rank holds the identical, complete table (the state MoMBS
plans its batches from). The table is method state: put the recorder in the ``CheckpointSaver`` save_dict.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from monai.data import MetaTensor
from monai.utils import IgniteInfo, ensure_tuple, min_version, optional_import

from monai_ext.engines.per_sample import PerSampleKeys
from monai_ext.utils.distributed import all_gather_indexed, last_occurrence

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = ["PerSampleRecorder"]

_MAX_NAMED = 10


def _as_plain_tensor(value: Any) -> torch.Tensor:
    value = value.as_tensor() if isinstance(value, MetaTensor) else torch.as_tensor(value)
    return value.detach()


def _integer_index(index: Any) -> torch.Tensor:
    index = _as_plain_tensor(index).reshape(-1)
    if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
        raise TypeError(f"sample indices must be integers, got dtype {index.dtype}.")
    return index.to(torch.long)


def _output_column(output: Any, key: str) -> torch.Tensor:
    """``B ...`` tensor of ``key`` from a batch output dict or from its decollated list of per-sample dicts."""
    hint = (
        f"engine.state.output has no '{key}'; per-sample values come from monai_ext.engines.PerSampleTrainer "
        f"(keys '{PerSampleKeys.INDEX.value}' and '{PerSampleKeys.LOSS_PER_SAMPLE.value}') or from an engine that "
        f"writes '{key}' for every sample"
    )
    if isinstance(output, Mapping):
        if key not in output:
            raise KeyError(f"{hint} (found keys: {sorted(map(str, output))}).")
        return _as_plain_tensor(output[key])
    if isinstance(output, Sequence) and all(isinstance(o, Mapping) for o in output):
        if not output:
            return torch.zeros(0)
        if any(key not in o for o in output):
            raise KeyError(f"{hint} (found keys: {sorted(map(str, output[0]))}).")
        items = [_as_plain_tensor(o[key]) for o in output]
        device = items[0].device
        return torch.stack([t.to(device).reshape(-1) for t in items])
    raise TypeError(f"engine.state.output must be a dict or a list of dicts (decollated), got {type(output).__name__}.")


class PerSampleRecorder:
    """Ignite handler keeping per-sample values of the whole training set, identical on every rank.

    At every ``ITERATION_COMPLETED`` it takes ``engine.state.output["index"]`` (``B`` dataset indices) and the
    per-sample values under ``keys`` (one value per sample each, e.g. ``"loss_per_sample"``), all-gathers them
    across ranks (:func:`monai_ext.utils.distributed.all_gather_indexed`) and writes them into its table with
    vectorised ``index_copy_`` (no loop over samples). Samples not yet visited hold NaN and last epoch ``-1``.
    When one index occurs several times in a gathered batch (a ``DistributedSampler`` pads with repeats), the last
    occurrence in rank order wins, identically on every rank.

    Memory: ``N * (4 K + 8)`` bytes on the CPU, e.g. 6 MB for 500,000 samples and one column.

    Under ``torchrun`` recording is a collective operation: attach the recorder on *every* rank (not among the
    rank-0-only handlers of a ``multi_gpu_train.json``), and let every rank run the same number of iterations (a
    ``DistributedSampler`` does), otherwise the ranks wait for each other forever.

    Example::

        recorder = PerSampleRecorder(num_samples=len(train_datalist), keys=["loss_per_sample"])
        recorder.attach(trainer)  # or list it in the trainer's train_handlers
        save_dict = {"network": net, "optimizer": opt, "per_sample": recorder}  # CheckpointSaver / Loader
        ...
        recorder["loss_per_sample"]  # N losses of the last visit, NaN where never visited
        recorder.last_epoch          # N ints, epoch (1-based) of the last visit, -1 if never

    Args:
        num_samples: ``N``, length of the training datalist (indices from
            :func:`monai_ext.data.datalist.assign_indices` lie in ``[0, N)``).
        keys: the output key(s) to record, one column each, default ``"loss_per_sample"``.
        index_key: the output key of the dataset indices, default ``"index"``.
        name: logger name; ``None`` uses ``engine.logger``. At ``EPOCH_COMPLETED`` it logs how many samples the
            epoch visited.

    Raises:
        ValueError: ``num_samples`` < 1, no ``keys``, or repeated keys.
    """

    def __init__(
        self,
        num_samples: int,
        keys: str | Sequence[str] = PerSampleKeys.LOSS_PER_SAMPLE,
        index_key: str = PerSampleKeys.INDEX,
        name: str | None = None,
    ) -> None:
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1 (the training datalist length), got {num_samples}.")
        columns = [str(k) for k in ensure_tuple(keys)]
        if not columns or len(set(columns)) != len(columns):
            raise ValueError(f"keys must name at least one column, each once, got {columns}.")
        self.num_samples = int(num_samples)
        self.keys: list[str] = columns
        self.index_key = str(index_key)
        self.values = torch.full((self.num_samples, len(columns)), float("nan"), dtype=torch.float32)
        self.last_epoch = torch.full((self.num_samples,), -1, dtype=torch.long)
        self.logger = logging.getLogger(name)
        self._name = name

    def attach(self, engine: Engine) -> None:
        """Record at every ``ITERATION_COMPLETED`` of ``engine``; log the epoch's coverage at ``EPOCH_COMPLETED``.

        Args:
            engine: the trainer producing per-sample outputs (e.g. ``PerSampleTrainer``).
        """
        if self._name is None:
            self.logger = engine.logger
        if not engine.has_event_handler(self, Events.ITERATION_COMPLETED):
            engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        if not engine.has_event_handler(self._log_epoch, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._log_epoch)

    def __call__(self, engine: Engine) -> None:
        """Gather this iteration's ``(index, values)`` from all ranks and write them into the table.

        Raises:
            TypeError: the indices are not integers.
            KeyError: the output misses the index key or one of ``keys``.
            ValueError: a key holds more or fewer than one value per sample.
            IndexError: an index lies outside ``[0, num_samples)``.
        """
        output = engine.state.output
        index = _integer_index(_output_column(output, self.index_key))
        batch = index.shape[0]
        columns = []
        for key in self.keys:
            col = _output_column(output, key)
            if col.numel() != batch:
                raise ValueError(
                    f"'{key}' must hold one value per sample ({batch} for this batch), got shape {tuple(col.shape)}; "
                    "reduce it to one value per sample before recording."
                )
            columns.append(col.reshape(batch).to(device=index.device, dtype=self.values.dtype))
        values = torch.stack(columns, dim=1) if batch else torch.zeros((0, len(self.keys)), dtype=self.values.dtype)
        index, values = all_gather_indexed(index, values.to(index.device))
        self.update(index, values, engine.state.epoch)

    def update(self, index: torch.Tensor, values: torch.Tensor | Mapping[str, torch.Tensor], epoch: int) -> None:
        """Write values for the given samples on this rank only (``__call__`` gathers across ranks first).

        Args:
            index: ``B`` integer dataset indices.
            values: ``B K`` tensor in the order of ``keys`` (``B`` when there is one column), or a mapping from
                every key to a ``B`` tensor.
            epoch: epoch of this visit (ignite epochs start at 1).

        Raises:
            TypeError: ``index`` is not integer.
            KeyError: a mapping misses one of ``keys``.
            ValueError: ``values`` has the wrong shape.
            IndexError: an index lies outside ``[0, num_samples)``.
        """
        index = _integer_index(index)
        if isinstance(values, Mapping):
            missing = [k for k in self.keys if k not in values]
            if missing:
                raise KeyError(f"values miss key(s) {missing}; expected {self.keys}.")
            values = torch.stack([_as_plain_tensor(values[k]).reshape(-1).to(index.device) for k in self.keys], 1)
        values = _as_plain_tensor(values)
        if values.ndim == 1 and len(self.keys) == 1:
            values = values.reshape(-1, 1)
        if tuple(values.shape) != (index.shape[0], len(self.keys)):
            raise ValueError(
                f"values must have shape ({index.shape[0]}, {len(self.keys)}) for {index.shape[0]} indices and keys "
                f"{self.keys}, got {tuple(values.shape)}."
            )
        index = index.to(device=self.values.device, dtype=torch.long)
        bad = (index < 0) | (index >= self.num_samples)
        if bool(bad.any()):
            wrong = index[bad].tolist()
            raise IndexError(
                f"sample index {wrong[:_MAX_NAMED]}{' ...' if len(wrong) > _MAX_NAMED else ''} out of range for "
                f"num_samples={self.num_samples} (valid: 0 to {self.num_samples - 1}); set num_samples to the length "
                "of the training datalist whose indices monai_ext.data.datalist.assign_indices set."
            )
        if index.numel() == 0:
            return
        # keep only the last occurrence of repeated indices, so the result does not depend on index_copy_ order
        keep = last_occurrence(index)
        index = index[keep]
        values = values.to(device=self.values.device, dtype=self.values.dtype)[keep]
        self.values.index_copy_(0, index, values)
        self.last_epoch.index_fill_(0, index, int(epoch))

    def __getitem__(self, key: str) -> torch.Tensor:
        """``N`` values of column ``key`` (a view of the table; NaN where never visited).

        Raises:
            KeyError: ``key`` is not one of ``keys``.
        """
        if key not in self.keys:
            raise KeyError(f"no column '{key}'; columns are {self.keys}.")
        return self.values[:, self.keys.index(key)]

    @property
    def visited(self) -> torch.Tensor:
        """``N`` bool, whether each sample has been recorded at least once."""
        return self.last_epoch >= 0

    def reset(self) -> None:
        """Forget every recorded value (NaN) and visit (-1)."""
        self.values.fill_(float("nan"))
        self.last_epoch.fill_(-1)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and names only, so ``torch.load(..., weights_only=True)`` (``CheckpointLoader``) reads it back."""
        return {"keys": list(self.keys), "values": self.values.clone(), "last_epoch": self.last_epoch.clone()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the table saved by :meth:`state_dict`.

        Raises:
            KeyError: an entry is missing.
            ValueError: the saved columns or number of samples differ from this recorder's.
        """
        missing = [k for k in ("keys", "values", "last_epoch") if k not in state_dict]
        if missing:
            raise KeyError(f"PerSampleRecorder state_dict misses {missing}; found {sorted(state_dict)}.")
        keys = [str(k) for k in state_dict["keys"]]
        values = torch.as_tensor(state_dict["values"])
        last_epoch = torch.as_tensor(state_dict["last_epoch"])
        if keys != self.keys:
            raise ValueError(f"checkpoint recorder columns {keys} differ from this recorder's {self.keys}.")
        if tuple(values.shape) != tuple(self.values.shape) or tuple(last_epoch.shape) != (self.num_samples,):
            raise ValueError(
                f"checkpoint recorder holds {values.shape[0]} samples x {values.shape[1:]} but this one has "
                f"num_samples={self.num_samples} and {len(self.keys)} column(s); the training datalist changed."
            )
        self.values.copy_(values)
        self.last_epoch.copy_(last_epoch)

    def _log_epoch(self, engine: Engine) -> None:
        seen = int((self.last_epoch == engine.state.epoch).sum())
        self.logger.info(
            f"PerSampleRecorder: epoch {engine.state.epoch} recorded {seen} of {self.num_samples} samples."
        )
