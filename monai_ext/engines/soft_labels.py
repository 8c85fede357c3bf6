# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Per-sample soft labels of meta soft-label learning: the label logits ``y_hat`` (``N x C``) keyed by dataset index.

Sec. III-B of Algan et al. (Meta Soft Label Generation, ICPR 2020): the label predictions start as ``K * y`` with
``y`` the one-hot noisy label and ``K`` a large number (10), the soft label is ``softmax(y_hat)``, and Eq. 2 updates
the rows of each training batch. :class:`SoftLabelStore` keeps these rows as buffers of a module, so a checkpoint
holds them and a resumed run continues the same labels, and under ``torch.distributed`` every rank applies the rows
of all ranks (:meth:`SoftLabelStore.write` gathers them) so all ranks hold the same ``y_hat``. It also keeps the
noisy labels and, when the datalist has the annotators' readings, their average (the soft-label baseline).

Memory: ``N x C`` float32 for the label logits and for the annotators' average plus ``2 N`` int64, about 88 bytes per
sample with ``C = 3`` (44 MB for 500k samples); the meta step reads and writes only the rows of its batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from monai_ext.utils.distributed import all_gather_indexed, last_occurrence

__all__ = ["SoftLabelStore"]

_MAX_NAMED = 10


def _named(values: Sequence[Any]) -> str:
    values = list(values)
    return f"{values[:_MAX_NAMED]}{' ...' if len(values) > _MAX_NAMED else ''}"


def _as_int(value: Any) -> int | None:
    """``value`` as an int when it is one (``2``, ``2.0``, ``"2"``, a 0-d tensor), else ``None``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


class SoftLabelStore(nn.Module):
    """Per-sample label logits ``y_hat`` (``N x C``) initialised to ``K * onehot(noisy label)``.

    Args:
        datalist: the training datalist; item ``i`` must hold ``"index"`` = ``i`` (as
            :func:`monai_ext.data.datalist.assign_indices` sets) and an integer ``label_key`` in ``[0, C)``. Items with
            ``"annotator_labels"`` (readings, -1 = not read, as :func:`monai_ext.data.rop.rop_datalist` gives) also
            fill :attr:`annotator_average`.
        num_classes: ``C``.
        init_scale: ``K`` of Sec. III-B (the paper's and both official codes' value is 10). Default 10.0.
        label_key: key of the noisy training label. Default ``"label"``.

    Buffers (saved in ``state_dict``):
        ``label_logits`` ``N C`` float32, ``noisy_labels`` ``N`` int64, ``annotator_average`` ``N C`` float32 (rows
        of zeros where nobody read the image or the datalist has no readings), ``num_updates`` ``N`` int64 (how often
        Eq. 2 rewrote each row).

    Raises:
        ValueError: an empty datalist, ``num_classes < 2``, ``init_scale <= 0``, indices that are not ``0..N-1`` in
            order, a missing or out-of-range label, or an annotator reading outside ``[-1, C)``; the message names
            the item (index and image).
    """

    def __init__(
        self,
        datalist: Sequence[Mapping[str, Any]],
        num_classes: int,
        init_scale: float = 10.0,
        label_key: str = "label",
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        if not init_scale > 0:
            raise ValueError(f"init_scale (K of Sec. III-B) must be > 0, got {init_scale}.")
        if len(datalist) == 0:
            raise ValueError("SoftLabelStore needs the training datalist; it is empty.")
        self.num_classes = int(num_classes)
        self.init_scale = float(init_scale)
        labels, average = self._read(datalist, label_key)
        self.register_buffer("noisy_labels", labels)
        self.register_buffer("label_logits", self.init_scale * nn.functional.one_hot(labels, num_classes).float())
        self.register_buffer("annotator_average", average)
        self.register_buffer("num_updates", torch.zeros(len(labels), dtype=torch.long))

    def _read(self, datalist: Sequence[Mapping[str, Any]], label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy labels ``N`` and the annotators' average ``N C`` (one pass in Python, counts in numpy)."""
        c = self.num_classes
        labels = np.empty(len(datalist), dtype=np.int64)
        counts = np.zeros((len(datalist), c), dtype=np.float32)
        for i, item in enumerate(datalist):
            if int(item.get("index", -1)) != i:
                raise ValueError(
                    f"{self._where(i, item)} has index {item.get('index')!r}; the datalist must carry indices 0..N-1 "
                    "in order (pass it through monai_ext.data.datalist.assign_indices)."
                )
            label = _as_int(item.get(label_key))
            if label is None:
                raise ValueError(
                    f"{self._where(i, item)} has no integer '{label_key}' (found {item.get(label_key)!r})."
                )
            if not 0 <= label < c:
                raise ValueError(f"{self._where(i, item)}: '{label_key}' {label} is outside [0, {c}).")
            labels[i] = label
            for v in item.get("annotator_labels", ()):
                v = int(v)
                if v >= 0:
                    if v >= c:
                        raise ValueError(
                            f"{self._where(i, item)}: annotator readings {list(item['annotator_labels'])} must lie in "
                            f"[-1, {c}) (-1 = not read)."
                        )
                    counts[i, v] += 1
                elif v != -1:
                    raise ValueError(
                        f"{self._where(i, item)}: annotator readings {list(item['annotator_labels'])} must lie in "
                        f"[-1, {c}) (-1 = not read)."
                    )
        read = counts.sum(axis=1, keepdims=True)
        average = np.divide(counts, read, out=np.zeros_like(counts), where=read > 0)
        return torch.from_numpy(labels), torch.from_numpy(average)

    @staticmethod
    def _where(i: int, item: Mapping[str, Any]) -> str:
        return f"training item {i} ({item.get('image', '?')!r})"

    @property
    def num_samples(self) -> int:
        """``N``, the number of training samples."""
        return int(self.label_logits.shape[0])

    @property
    def has_annotator_average(self) -> bool:
        """Whether every sample has at least one annotator reading (needed by the annotator-average baseline)."""
        return bool((self.annotator_average.sum(dim=1) > 0).all())

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}, num_classes={self.num_classes}, init_scale={self.init_scale}"

    def check_index(self, index: Any, batch: int | None = None) -> torch.Tensor:
        """``index`` as int64 on the store's device, checked to lie in ``[0, N)`` (and to have ``batch`` entries).

        Raises:
            TypeError: non-integer indices.
            ValueError: a shape other than ``(batch,)``.
            IndexError: an index outside ``[0, N)``; says how to fix it.
        """
        index = torch.as_tensor(index)
        if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
            raise TypeError(f"index must hold integers, got dtype {index.dtype}.")
        if index.ndim != 1 or (batch is not None and index.shape[0] != batch):
            raise ValueError(f"index shape {tuple(index.shape)} does not match the batch: expected ({batch},).")
        index = index.to(device=self.label_logits.device, dtype=torch.long)
        bad = (index < 0) | (index >= self.num_samples)
        if bool(bad.any()):
            raise IndexError(
                f"index {_named(index[bad].tolist())} out of range for the {self.num_samples} training samples of the "
                "SoftLabelStore; build the store from the same training datalist the trainer iterates."
            )
        return index

    def rows(self, index: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        """Copies of the label logits ``y_hat`` of ``index`` (``B C`` float32), on ``device`` (default the store's)."""
        index = self.check_index(index)
        return self.label_logits[index].clone().to(device or self.label_logits.device)

    def annotator_rows(self, index: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        """The annotators' average label of ``index`` (``B C`` probabilities).

        Raises:
            ValueError: a sample in ``index`` has no annotator reading (its dataset index is named).
        """
        index = self.check_index(index)
        rows = self.annotator_average[index]
        empty = rows.sum(dim=1) == 0
        if bool(empty.any()):
            raise ValueError(
                f"training samples {_named(index[empty].tolist())} have no annotator readings ('annotator_labels'); "
                "the annotator-average baseline needs at least one reading per image."
            )
        return rows.clone().to(device or self.label_logits.device)

    def write(self, index: torch.Tensor, logits: torch.Tensor) -> None:
        """Replace the rows of ``index`` by ``logits`` on every rank (Eq. 2's result).

        A collective call under ``torch.distributed``: the rows of all ranks are gathered and applied by every rank,
        the last occurrence of a repeated index winning (a ``DistributedSampler`` pads epochs with repeats).

        Args:
            index: ``B`` dataset indices.
            logits: ``B C`` new label logits (detached).

        Raises:
            FloatingPointError: ``logits`` holds NaN/inf; names the dataset indices (nothing is written).
        """
        index = self.check_index(index, int(logits.shape[0]))
        if tuple(logits.shape[1:]) != (self.num_classes,):
            raise ValueError(f"logits shape {tuple(logits.shape)} does not match (B, num_classes={self.num_classes}).")
        logits = logits.detach().to(device=self.label_logits.device, dtype=self.label_logits.dtype)
        index, logits = all_gather_indexed(index, logits)
        bad = ~torch.isfinite(logits).all(dim=1)
        if bool(bad.any()):
            raise FloatingPointError(
                f"non-finite soft-label logits for training samples {_named(index[bad].tolist())}; the label "
                "gradient of the meta step diverged: lower beta (the label learning rate) or check the meta images."
            )
        keep = last_occurrence(index)
        rows = index[keep]
        self.label_logits.index_copy_(0, rows, logits[keep])
        self.num_updates.index_add_(0, rows, torch.ones_like(rows))

    def soft_labels(self) -> torch.Tensor:
        """``softmax(y_hat)`` of every sample, ``N C`` probabilities (row ``i`` = dataset index ``i``), detached."""
        return torch.softmax(self.label_logits.detach().float(), dim=1)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:  # noqa: D401
        key = prefix + "label_logits"
        if key in state_dict and tuple(state_dict[key].shape) != tuple(self.label_logits.shape):
            raise ValueError(
                f"the checkpoint's soft labels have shape {tuple(state_dict[key].shape)} but this training set has "
                f"{self.num_samples} samples and {self.num_classes} classes: resume only with the same training "
                "datalist (same dataset_dir, split and label source)."
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
