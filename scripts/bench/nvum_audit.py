# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""NVUM label audit of a benchmark run, from its saved memory, against the demo data's recorded label flips.

The memory ``t`` of :class:`monai_ext.losses.NVUMLoss` (``N C``, a running average of ``z - log(pi)``) is saved in
the bundle's checkpoints (``models/last.pt``, entry ``"nvum"``). :func:`memory_audit` ranks every training
(sample, class) pair by ``|label - score|`` (:func:`monai_ext.handlers.label_audit.rank_label_disagreement`) for
each memory score (``prior`` = ``sigmoid(t + log(pi))``, the bundle's default, and ``unbiased`` = ``sigmoid(t)``,
see :class:`monai_ext.handlers.label_audit.MemoryScore`) and measures it against the recorded flips
(:func:`recorded_flips`) with :func:`monai_ext.handlers.label_audit.precision_at_k`, next to a labels-only reference
(the same pairs and ``k`` ranked with a memory of zeros, so ``prior`` is the class prior ``pi`` alone: what the
training labels find without the memory). ``log(pi)`` is not saved (a
non-persistent buffer): it is recomputed with :func:`monai_ext.losses.nvum_prior` on the run's training datalist.
:func:`audit_saved_memory` does all of this for one run of the bundle.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils import look_up_option

from monai_ext.bundle.workflow import bundle_parser
from monai_ext.data.datalist import read_csv_checked, require_file
from monai_ext.handlers.label_audit import MemoryScore, precision_at_k, rank_label_disagreement
from monai_ext.losses.nvum import NVUMLoss, NVUMMode, PriorConvention, nvum_prior
from scripts.bench.bundles import TRAIN
from scripts.bench.nvum_bundle import BUNDLE_DIR

__all__ = ["AUDIT_SCORES", "recorded_flips", "memory_audit", "audit_saved_memory"]

AUDIT_SCORES = (MemoryScore.PRIOR.value, MemoryScore.UNBIASED.value)  # the bundle's default first


def recorded_flips(
    noise_csv: str | os.PathLike, datalist: Sequence[Mapping], class_names: Sequence[str]
) -> set[tuple[int, int]]:
    """The demo generator's label flips as ``(dataset index, class index)`` pairs of a training datalist.

    A flip is a ``demo_label_noise.csv`` row (``image, class, clean, noisy``) with ``clean != noisy`` whose image is
    in ``datalist`` (matched by file name) and whose class is one of ``class_names``; other rows (test images,
    classes outside the label space) are left out.

    Args:
        noise_csv: the NIH demo's ``demo_label_noise.csv``.
        datalist: the training datalist (items with ``index`` and ``image``).
        class_names: the class names in output order.

    Raises:
        FileNotFoundError: ``noise_csv`` is missing.
        DatasetLayoutError: ``noise_csv`` misses one of its four columns.
    """
    noise = read_csv_checked(noise_csv, ["image", "class", "clean", "noisy"], "demo label-noise CSV",
                             "Write it with python -m monai_ext.demo.")  # fmt: skip
    position = {Path(str(item["image"])).name: int(item["index"]) for item in datalist}
    column = {str(name): c for c, name in enumerate(class_names)}
    return {
        (position[str(img)], column[str(cls)])
        for img, cls, clean, noisy in zip(noise["image"], noise["class"], noise["clean"], noise["noisy"])
        if str(img) in position and str(cls) in column and float(clean) != float(noisy)
    }


def _labels_by_index(datalist: Sequence[Mapping], label_key: str = "label") -> np.ndarray:
    n = len(datalist)
    rows: list[Any] = [None] * n
    for pos, item in enumerate(datalist):
        i = int(item["index"])
        if not 0 <= i < n or rows[i] is not None:
            raise ValueError(f"datalist item {pos} has index {i}: indices must be 0 to {n - 1}, each once.")
        rows[i] = np.asarray(item[label_key], dtype=np.float64).reshape(-1)
    return np.stack(rows)


def memory_audit(
    memory_state: Mapping[str, torch.Tensor],
    datalist: Sequence[Mapping],
    flips: Collection[tuple[int, int]],
    mode: NVUMMode | str = NVUMMode.PAPER,
    convention: PriorConvention | str = PriorConvention.PAPER,
    prior_eps: float | None = None,
    scores: Sequence[MemoryScore | str] = AUDIT_SCORES,
    loss_prior: Sequence[float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Precision at k of the memory's label-disagreement ranking, for each memory score.

    ``log(pi)`` is rebuilt as training built it: ``NVUMLoss(N, C, nvum_prior(datalist, convention), mode=mode,
    prior_eps=prior_eps).log_prior``, and the saved ``memory``/``num_updates`` are loaded into that loss (which
    checks their shapes). The ranking holds every (sample, class) pair with a known label of a sample the memory
    saw (``num_updates > 0``); ``k`` is the number of ``flips`` among those pairs (all of them once every sample was
    seen), so precision at k is also recall at k. A random ranking has expected precision ``base_rate = k /
    n_pairs``. ``labels_only_precision_at_k`` is the precision at the same ``k`` of the same pairs ranked with the
    memory replaced by zeros and the ``prior`` score, i.e. by ``|label - pi_c|`` (pairs whose label the class prior
    finds unlikely first; ties in sample, then class order): the level a ranking reaches from the labels alone, the
    same for every score.

    Example: memory ``[[1, -3], [3, -3], [-3, 2], [0.5, 1]]``, labels ``[[1, 0], [0, 0], [0, 1], [0, 0]]``
    (paper prior 0.25 per class, ``log(pi) = -1.386``) and flips ``{(0, 0), (1, 0)}``: ``prior`` ranks (1, 0)
    (0.834), (0, 0) (0.595) first, precision 1.0; ``unbiased`` ranks (1, 0) (0.953), (3, 1) (0.731) first,
    precision 0.5; base rate 2 / 8. Labels only, every score is 0.25: the two positive labels (0, 0) and (2, 1)
    (disagreement 0.75) come first, labels-only precision 0.5.

    Args:
        memory_state: ``NVUMLoss.state_dict()`` as saved in the checkpoint (``memory`` ``N C``, ``num_updates``
            ``N``).
        datalist: the run's training datalist (items with ``index`` 0 to ``N - 1`` and ``label``, a ``C`` vector
            with ``nan`` = unknown).
        flips: ``(dataset index, class index)`` pairs whose label is known to be wrong (:func:`recorded_flips`).
        mode: the run's ``nvum_mode``, ``{"paper", "official"}``; sets ``prior_eps`` when that is ``None``.
        convention: the run's prior convention, ``{"paper", "official"}`` (see :func:`monai_ext.losses.nvum_prior`).
        prior_eps: the run's ``nvum_prior_eps``; ``None`` (default) takes the mode's.
        scores: memory scores to rank by, default ``("prior", "unbiased")``.
        loss_prior: the prior the run's loss subtracted when it differs from the datalist's (a ``loss_def#prior``
            override, e.g. the study's no-prior ablation with ones); the memory's scores put back this one, the
            labels-only ranking keeps the datalist's prior. ``None``: the datalist's.

    Returns:
        ``{score: {"k", "precision_at_k", "n_flips" (all ``flips``), "n_pairs" (ranked pairs), "base_rate",
        "labels_only_precision_at_k"}}`` in ``scores`` order; both precisions are ``nan`` when no flip is ranked,
        ``base_rate`` when no pair is.

    Raises:
        ValueError: datalist indices that are not 0 to ``N - 1`` once each; an unknown score, mode or convention;
            a ``memory_state`` that does not match the datalist's ``N`` samples (``NVUMLoss.load_state_dict``).
    """
    scores = [look_up_option(s, MemoryScore) for s in scores]
    labels = _labels_by_index(datalist)
    n, c = labels.shape
    loss = NVUMLoss(n, c, nvum_prior(labels, convention), mode=mode, prior_eps=prior_eps)
    memory_keys = ("memory", "num_updates")  # the mixing generator's _extra_state plays no part in the audit
    loss.load_state_dict({k: torch.as_tensor(memory_state[k]) for k in memory_keys}, strict=False)
    visited = loss.num_updates > 0
    labels_only = rank_label_disagreement(
        torch.zeros_like(loss.memory), labels, loss.log_prior, MemoryScore.PRIOR, visited=visited
    )
    memory_log_prior = loss.log_prior
    if loss_prior is not None:
        memory_log_prior = NVUMLoss(n, c, loss_prior, mode=mode, prior_eps=prior_eps).log_prior
    out: dict[str, dict[str, Any]] = {}
    for score in scores:
        ranking = rank_label_disagreement(loss.memory, labels, memory_log_prior, score, visited=visited)
        ranked = set(zip(ranking["index"].tolist(), ranking["class_index"].tolist()))
        k = len(ranked & {(int(i), int(j)) for i, j in flips})
        out[score.value] = {
            "k": k,
            "precision_at_k": precision_at_k(ranking, flips, k) if k > 0 else float("nan"),
            "n_flips": len(flips),
            "n_pairs": len(ranking),
            "base_rate": k / len(ranking) if len(ranking) else float("nan"),
            "labels_only_precision_at_k": precision_at_k(labels_only, flips, k) if k > 0 else float("nan"),
        }
    return out


def audit_saved_memory(
    overrides: Mapping[str, Any],
    noise_csv: str | os.PathLike,
    bundle_dir: str | os.PathLike = BUNDLE_DIR,
    checkpoint: str = "last.pt",
    scores: Sequence[MemoryScore | str] = AUDIT_SCORES,
) -> dict[str, dict[str, Any]] | None:
    """The label audit of one bundle run (:func:`memory_audit`) from the memory in its checkpoint.

    Reads the bundle's ``train.json`` with the run's ``overrides`` for the training datalist (``train#datalist``),
    ``class_names``, ``nvum_mode``, ``prior_convention``, ``nvum_prior_eps`` and ``ckpt_dir`` (and the loss's own prior
    from a ``loss_def#prior`` override, see ``loss_prior`` of :func:`memory_audit`), then loads
    ``ckpt_dir/<checkpoint>`` with ``torch.load(weights_only=True)``.

    Args:
        overrides: the run's overrides (:func:`scripts.bench.nvum_study.run_overrides`).
        noise_csv: the NIH demo's ``demo_label_noise.csv``.
        bundle_dir: the bundle folder the run used.
        checkpoint: file name under ``ckpt_dir``, default ``"last.pt"`` (the memory at the end of training, which
            the bundle's ``LabelAuditWriter`` also ranks).
        scores: see :func:`memory_audit`.

    Returns:
        see :func:`memory_audit`; ``None`` when the checkpoint's ``"nvum"`` entry holds no memory (the BCE baseline,
        whose loss has no state).

    Raises:
        FileNotFoundError: the checkpoint, the noise CSV or the bundle config is missing.
    """
    # the network is not read here, and its override may name the demo overlay's small_network_def (not in train.json)
    parser = bundle_parser(bundle_dir, TRAIN, {k: v for k, v in overrides.items() if k != "network_def"})
    ckpt_file = require_file(Path(parser.get_parsed_content("ckpt_dir")) / checkpoint, "the run's checkpoint",
                             "Train the run first (make bench).")  # fmt: skip
    state = torch.load(ckpt_file, map_location="cpu", weights_only=True).get("nvum") or {}
    if "memory" not in state:
        return None
    datalist = parser.get_parsed_content("train#datalist")
    class_names = list(parser.get_parsed_content("class_names"))
    return memory_audit(
        state,
        datalist,
        recorded_flips(noise_csv, datalist, class_names),
        mode=parser.get_parsed_content("nvum_mode"),
        convention=parser.get_parsed_content("prior_convention"),
        prior_eps=parser.get_parsed_content("nvum_prior_eps"),
        scores=scores,
        loss_prior=overrides.get("loss_def#prior"),
    )
