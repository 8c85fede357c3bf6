# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Label audit from NVUM's memory: which training (sample, class) labels does the memory disagree with most?

NVUM's memory ``t`` (:class:`monai_ext.losses.NVUMLoss`) is a running average of prior-corrected ("unbiased")
logits ``z - log(pi)`` of every training sample. :func:`rank_label_disagreement` ranks the (sample, class) pairs by
``|y - sigmoid(t)|``; :class:`LabelAuditWriter` writes that ranking as CSV when training ends;
:func:`precision_at_k` measures it against known flips (e.g. the demo data's injected label noise).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

__all__ = ["MemoryScore", "memory_scores", "rank_label_disagreement", "precision_at_k", "LabelAuditWriter"]

AUDIT_COLUMNS = ("rank", "index", "image", "class_index", "class", "given_label", "memory_score", "disagreement")


class MemoryScore(StrEnum):
    """Probability read from the memory.

    - ``unbiased``: ``sigmoid(t)`` (default). The memory already removes the class prior, so scores of rare and
      common classes share one scale and one ranking across classes is fair: with ``sigmoid(t + log pi)`` nearly
      every positive label of a rare class (prior 0.2 %) would disagree with its low score and crowd the top, while
      its missed positives (the most common NLP-label error) would hardly rise.
    - ``prior``: ``sigmoid(t + log(pi))``, the memory with the prior put back (the temporal ensemble of the raw
      logits), calibrated to the training label frequencies.

    Measured on the demo data (``make bench``), ``prior`` ranks better: ``-log(pi)`` of a rare class (about 6 for a
    0.2 % class) lifts every ``sigmoid(t)`` of that class close to 1, so with ``unbiased`` the top of the ranking
    filled with that class's correct negatives (precision at k below chance), while ``prior`` found the recorded
    flips at 0.21-0.40 precision against a 0.05 base rate. The NVUM bundle therefore writes its audit with
    ``score="prior"``. Note that the prior alone (a memory of zeros) already ranks flips well above the random base
    rate (about 0.25-0.31 on the demo data: flips sit where the prior finds a label unlikely); what the memory adds is
    the precision above that labels-only level (``tests/handlers/test_label_audit_demo.py`` checks both).
    """

    UNBIASED = "unbiased"
    PRIOR = "prior"


def memory_scores(
    memory: torch.Tensor, log_prior: torch.Tensor | None = None, score: MemoryScore | str = MemoryScore.UNBIASED
) -> torch.Tensor:
    """Per (sample, class) probabilities from an NVUM memory.

    Args:
        memory: ``N C`` memory (``NVUMLoss.memory``), logits minus ``log(pi)``.
        log_prior: ``C`` ``log(pi)`` (``NVUMLoss.log_prior``); required for ``score="prior"``.
        score: ``{"unbiased", "prior"}``, see :class:`MemoryScore`; default ``"unbiased"``.

    Returns:
        ``N C`` float32 probabilities in [0, 1] on the CPU.

    Raises:
        ValueError: ``memory`` is not ``N C``, or ``score="prior"`` without a ``C`` ``log_prior``.
    """
    score = look_up_option(score, MemoryScore)
    memory = torch.as_tensor(memory).detach().float().cpu()
    if memory.ndim != 2:
        raise ValueError(f"memory must have shape (N, C), got {tuple(memory.shape)}.")
    if score == MemoryScore.PRIOR:
        if log_prior is None or torch.as_tensor(log_prior).numel() != memory.shape[1]:
            raise ValueError(f'score="prior" needs log_prior with {memory.shape[1]} entries (NVUMLoss.log_prior).')
        memory = memory + torch.as_tensor(log_prior).detach().float().cpu().reshape(1, -1)
    return torch.sigmoid(memory)


def rank_label_disagreement(
    memory: torch.Tensor,
    labels: Any,
    log_prior: torch.Tensor | None = None,
    score: MemoryScore | str = MemoryScore.UNBIASED,
    visited: torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    images: Sequence[Any] | None = None,
    top_k: int | None = None,
    min_disagreement: float = 0.0,
) -> pd.DataFrame:
    """Rank training (sample, class) pairs by ``disagreement = |given label - memory score|``, largest first.

    Pairs with an unknown label (``nan``) and samples the memory never saw (``visited`` False) are left out. Ties
    are broken by sample index, then class index (ascending), so the order is deterministic.

    Example: memory ``[[3.0, -3.0], [-3.0, 0.0]]`` (unbiased logits), labels ``[[0, 0], [0, 1]]`` give
    ``(sample 0, class 0)`` first (score 0.953, disagreement 0.953), then ``(1, 1)`` (0.5, 0.5), then the two
    agreeing pairs (0.047 each).

    Args:
        memory: ``N C`` NVUM memory (``NVUMLoss.memory``).
        labels: ``N C`` given (training, possibly noisy) labels in {0, 1}, ``nan`` = unknown; row ``i`` is the
            sample with dataset index ``i``.
        log_prior: ``C`` ``log(pi)``, needed for ``score="prior"``.
        score: ``{"unbiased", "prior"}``, see :class:`MemoryScore`; default ``"unbiased"``.
        visited: ``N`` bool (e.g. ``NVUMLoss.num_updates > 0``); ``None`` keeps every sample.
        class_names: ``C`` names for the ``class`` column; ``None`` uses the class index as text.
        images: ``N`` image paths (by dataset index) for the ``image`` column; ``None`` leaves it empty.
        top_k: keep only the first ``top_k`` rows; ``None`` (default) keeps all.
        min_disagreement: keep only pairs with disagreement >= this, in [0, 1]; default 0 (all).

    Returns:
        DataFrame with columns ``rank`` (1-based), ``index``, ``image``, ``class_index``, ``class``, ``given_label``,
        ``memory_score``, ``disagreement``.

    Raises:
        ValueError: shapes that do not match (naming both), ``class_names``/``images`` of the wrong length, labels
            other than 0/1/nan, ``top_k`` < 1 or ``min_disagreement`` outside [0, 1].
    """
    scores = memory_scores(memory, log_prior, score).numpy()
    n, c = scores.shape
    labels = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels, dtype=np.float64)
    if labels.shape != (n, c):
        raise ValueError(f"labels shape {labels.shape} does not match memory shape {(n, c)}.")
    known = ~np.isnan(labels)
    if not np.isin(labels[known], (0.0, 1.0)).all():
        raise ValueError("labels must be 0, 1 or nan (unknown).")
    if class_names is not None and len(class_names) != c:
        raise ValueError(f"class_names has {len(class_names)} names for {c} classes.")
    if images is not None and len(images) != n:
        raise ValueError(f"images has {len(images)} entries for {n} samples.")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}.")
    if not 0.0 <= float(min_disagreement) <= 1.0:
        raise ValueError(f"min_disagreement must lie in [0, 1], got {min_disagreement}.")
    keep = known
    if visited is not None:
        visited = np.asarray(torch.as_tensor(visited).detach().cpu(), dtype=bool).reshape(-1)
        if visited.shape != (n,):
            raise ValueError(f"visited shape {visited.shape} does not match the {n} memory rows.")
        keep = keep & visited[:, None]
    disagreement = np.abs(np.where(known, labels, 0.0) - scores)
    keep = keep & (disagreement >= float(min_disagreement))
    rows, cols = np.nonzero(keep)  # row-major: sample, then class ascending
    order = np.argsort(-disagreement[rows, cols], kind="stable")
    if top_k is not None:
        order = order[: int(top_k)]
    rows, cols = rows[order], cols[order]
    names = np.asarray(list(class_names) if class_names is not None else [str(i) for i in range(c)], dtype=object)
    image_col = np.asarray(images, dtype=object)[rows] if images is not None else np.full(rows.shape, "", object)
    return pd.DataFrame(
        {
            "rank": np.arange(1, rows.size + 1),
            "index": rows,
            "image": image_col,
            "class_index": cols,
            "class": names[cols],
            "given_label": labels[rows, cols].astype(np.int64),
            "memory_score": scores[rows, cols],
            "disagreement": disagreement[rows, cols],
        },
        columns=list(AUDIT_COLUMNS),
    )


def precision_at_k(ranking: pd.DataFrame | Iterable[tuple[int, int]], flipped_pairs: Collection, k: int) -> float:
    """Fraction of the first ``k`` ranked (sample, class) pairs that are known flips.

    Args:
        ranking: a :func:`rank_label_disagreement` DataFrame (columns ``index``, ``class_index``), or
            ``(sample_index, class_index)`` pairs, best first.
        flipped_pairs: the ``(sample_index, class_index)`` pairs whose label is known to be wrong.
        k: how many top pairs to check, 1 to ``len(ranking)``.

    Returns:
        precision in [0, 1]. Ranking at random gives, in expectation, the fraction of ranked pairs that are flipped.

    Raises:
        ValueError: ``k`` outside ``[1, len(ranking)]``.
    """
    if isinstance(ranking, pd.DataFrame):
        pairs = list(zip(ranking["index"].tolist(), ranking["class_index"].tolist()))
    else:
        pairs = [(int(i), int(j)) for i, j in ranking]
    if not 1 <= int(k) <= len(pairs):
        raise ValueError(f"k must lie in [1, {len(pairs)}] (the ranking's length), got {k}.")
    flipped = {(int(i), int(j)) for i, j in flipped_pairs}
    return sum(pair in flipped for pair in pairs[: int(k)]) / int(k)


def _datalist_labels(datalist: Sequence[Mapping], num_samples: int, label_key: str, image_key: str) -> tuple:
    if len(datalist) != num_samples:
        raise ValueError(
            f"the datalist holds {len(datalist)} items but the memory {num_samples} rows; pass the training datalist "
            "the loss was built for."
        )
    labels: list[Any] = [None] * num_samples
    images: list[str] = [""] * num_samples
    for pos, item in enumerate(datalist):
        if "index" not in item or label_key not in item:
            raise KeyError(
                f"datalist item {pos} has no 'index' or '{label_key}'; run monai_ext.data.datalist.assign_indices."
            )
        i = int(item["index"])
        if not 0 <= i < num_samples or labels[i] is not None:
            raise ValueError(f"datalist item {pos} has index {i}: indices must be 0 to {num_samples - 1}, each once.")
        labels[i] = np.asarray(item[label_key], dtype=np.float64).reshape(-1)
        image = item.get(image_key, "")
        images[i] = str(image[0] if isinstance(image, (list, tuple)) and image else image)
    return np.stack(labels), images


class LabelAuditWriter:
    """Write the memory's label-disagreement ranking of the training set as CSV when training completes.

    The CSV has the columns of :func:`rank_label_disagreement` (``rank, index, image, class_index, class,
    given_label, memory_score, disagreement``), sorted by disagreement, largest first. Only rank 0 writes under
    ``torchrun`` (the memory is identical on every rank).

    Example (bundle ``train.json``)::

        {"_target_": "monai_ext.handlers.label_audit.LabelAuditWriter", "loss": "@loss",
         "datalist": "@train#datalist", "output_file": "$@output_dir + '/label_audit.csv'",
         "class_names": "@class_names"}

    Args:
        loss: the trained :class:`monai_ext.losses.NVUMLoss` (its ``memory``, ``log_prior``, ``num_updates``); a loss
            without ``memory`` makes :meth:`attach` a no-op.
        datalist: the training datalist (items with ``index``, ``label_key`` and ``image_key``).
        output_file: CSV path; parent folders are created.
        class_names: ``C`` class names; ``None`` writes class indices.
        score: ``{"unbiased", "prior"}``, see :class:`MemoryScore`; default ``"unbiased"``.
        top_k: write only the first ``top_k`` rows; ``None`` (default) writes all that pass ``min_disagreement``.
        min_disagreement: write only pairs with disagreement >= this; default 0.5 (the memory's thresholded
            prediction contradicts the label), which keeps the file small for 500k x 14 pairs.
        label_key: label entry of datalist items, default ``"label"``.
        image_key: image entry of datalist items, default ``"image"``.
        name: logger name; ``None`` uses ``engine.logger``.
    """

    def __init__(
        self,
        loss: torch.nn.Module,
        datalist: Sequence[Mapping],
        output_file: str | Path,
        class_names: Sequence[str] | None = None,
        score: MemoryScore | str = MemoryScore.UNBIASED,
        top_k: int | None = None,
        min_disagreement: float = 0.5,
        label_key: str = "label",
        image_key: str = "image",
        name: str | None = None,
    ) -> None:
        self.loss = loss
        self.datalist = datalist
        self.output_file = Path(output_file)
        self.class_names = None if class_names is None else list(class_names)
        self.score = look_up_option(score, MemoryScore)
        self.top_k = top_k
        self.min_disagreement = float(min_disagreement)
        self.label_key, self.image_key = label_key, image_key
        self.logger = logging.getLogger(name)
        self._name = name

    def attach(self, engine: Engine) -> None:
        """Write the CSV at ``Events.COMPLETED`` of ``engine``; attach nothing (and log it) when the loss holds no
        memory (e.g. the BCE baseline trained through the same bundle), since there is nothing to audit."""
        if self._name is None:
            self.logger = engine.logger
        if not hasattr(self.loss, "memory"):
            self.logger.info(
                f"LabelAuditWriter: the loss {type(self.loss).__name__} holds no NVUM memory; no label audit is "
                "written."
            )
            return
        if not engine.has_event_handler(self, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self)

    def ranking(self) -> pd.DataFrame:
        """The ranking of the loss's current memory (see :func:`rank_label_disagreement`)."""
        labels, images = _datalist_labels(self.datalist, self.loss.memory.shape[0], self.label_key, self.image_key)
        return rank_label_disagreement(
            self.loss.memory,
            labels,
            log_prior=self.loss.log_prior,
            score=self.score,
            visited=self.loss.num_updates > 0,
            class_names=self.class_names,
            images=images,
            top_k=self.top_k,
            min_disagreement=self.min_disagreement,
        )

    def __call__(self, engine: Engine | None = None) -> None:
        """Write the CSV (rank 0 only)."""
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return
        table = self.ranking()
        self.output_file.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(self.output_file, index=False)
        self.logger.info(f"LabelAuditWriter: wrote {len(table)} (sample, class) pairs to {self.output_file}.")
