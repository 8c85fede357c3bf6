# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""NVUM: a noisy-multi-label BCE loss regularised by a non-volatile memory of prior-corrected logits per sample.

F. Liu, Y. Chen, Y. Tian, Y. Liu, C. Wang, V. Belagiannis, G. Carneiro, "NVUM: Non-Volatile Unbiased Memory for
Robust Medical Image Classification", MICCAI 2022, arXiv:2103.04053; code github.com/FBLADL/NVUM.

:class:`NVUMLoss` holds the memory ``t`` (``N C``, one row per training sample) as a buffer, updates the rows of the
batch before computing the loss, and keeps it identical on every rank under ``torchrun``. :func:`nvum_prior` computes
the class prior from the training labels in the paper's and in the official code's convention.

"Official" means the public code at its HEAD, commit ``86d431d`` (2022-09-06): ``models/loss.py`` class ``NVUMREG``
and ``train.py`` ``train()``; line numbers below are at that commit. Its regulariser has a gradient through the
prediction. The commits before ``e8b4479`` (``7a8807f`` to ``99bdde8``, March-May 2022, class ``ELR``) fed
``y_pred.detach()`` to it; that variant is the option ``detach_reg_prob=True``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.utils import LossReduction, look_up_option
from monai.utils.enums import StrEnum
from torch.nn.modules.loss import _Loss

from monai_ext.utils.distributed import all_gather_indexed, last_occurrence

__all__ = [
    "NVUMMode",
    "NVUMRegulariser",
    "NVUMMemorySource",
    "PriorConvention",
    "nvum_prior",
    "NVUMLoss",
    "memory_logits_key",
]

_MAX_NAMED = 10  # how many offending samples an error message lists


class NVUMMode(StrEnum):
    """Preset of :class:`NVUMLoss` options: ``paper`` (Eq. 1-3 of the paper) or ``official`` (github FBLADL/NVUM).

    Besides the loss options (table in :class:`NVUMLoss`), the mode decides the class prior's convention
    (:attr:`prior_convention`), so that a bundle names the mode and the code draws the consequences.
    """

    PAPER = "paper"
    OFFICIAL = "official"

    @property
    def prior_convention(self) -> PriorConvention:
        """The :class:`PriorConvention` of :func:`nvum_prior` that goes with this mode (``paper`` -> ``paper``,
        ``official`` -> ``official``)."""
        return PriorConvention.PAPER if self == NVUMMode.PAPER else PriorConvention.OFFICIAL

    @property
    def teacher_mode(self) -> str:
        """The :class:`monai_ext.handlers.ema.TeacherMode` of the EMA teacher that goes with this mode: ``"train"``
        for ``official`` (``net_ema.train()``, ``train.py`` l. 229 at HEAD 86d431d: BatchNorm on batch statistics),
        ``"eval"`` for ``paper`` (whose memory takes no teacher logits; the EMA network only serves evaluation)."""
        return "train" if self == NVUMMode.OFFICIAL else "eval"

    @property
    def ema_buffer_mode(self) -> str:
        """The :class:`monai_ext.handlers.ema.EMABufferMode` that goes with this mode: ``"ema"`` for ``official``
        (``WeightEMA.step`` averages every ``state_dict`` entry, ``train.py`` l. 359-371 at HEAD), ``"copy"`` for
        ``paper``."""
        return "ema" if self == NVUMMode.OFFICIAL else "copy"


class NVUMRegulariser(StrEnum):
    """Form of the memory regulariser.

    - ``dot``: ``log(1 - sigmoid(t_i . p_i))``, one value per sample (paper, Eq. 2).
    - ``elementwise``: ``mean_c log(1 - sigmoid(t_ic * p_ic))`` (official ``models/loss.py`` ``NVUMREG.forward``
      l. 41 at ``86d431d``, averaged over the batch and classes in ``train.py`` l. 254).
    """

    DOT = "dot"
    ELEMENTWISE = "elementwise"


class NVUMMemorySource(StrEnum):
    """Which logits feed the memory update (Eq. 3).

    - ``prediction``: the trained network's own logits, detached (paper).
    - ``teacher``: the ``memory_logits`` passed to ``forward`` (an EMA teacher's; official ``train.py`` l. 242-251
      at ``86d431d``, see :class:`monai_ext.handlers.ema.EMATeacher`).
    """

    PREDICTION = "prediction"
    TEACHER = "teacher"


class PriorConvention(StrEnum):
    """Class prior of :func:`nvum_prior`.

    - ``paper``: ``pi_c`` = fraction of training samples labelled positive for class ``c``.
    - ``official``: the last column is "No Finding"; ``pi_c = (1 - P(NoFinding)) * positive_rate_c`` for the
      diseases and ``P(NoFinding)`` for the last column (official ``data/cx14_dataloader_cut.py``,
      ``ChestDataset.calc_prior``, l. 118-132 at ``86d431d``).
    """

    PAPER = "paper"
    OFFICIAL = "official"


# option -> (paper value, official value at 86d431d); every official difference is one of these, each overridable
_PRESETS: dict[str, tuple[Any, Any]] = {
    "reg_weight": (0.1, 1.0),
    "regulariser": (NVUMRegulariser.DOT, NVUMRegulariser.ELEMENTWISE),
    "prob_clamp": (0.0, 1e-4),
    "detach_reg_prob": (False, False),  # True: the official code before commit e8b4479
    "memory_source": (NVUMMemorySource.PREDICTION, NVUMMemorySource.TEACHER),
    "mix_memory": (False, True),
    "prior_eps": (0.0, 1e-12),
}


def _label_matrix(labels: Any, label_key: str) -> np.ndarray:
    if isinstance(labels, Sequence) and labels and isinstance(labels[0], Mapping):
        missing = [i for i, item in enumerate(labels) if label_key not in item]
        if missing:
            raise KeyError(f"datalist items {missing[:_MAX_NAMED]} have no '{label_key}' entry.")
        labels = [np.asarray(item[label_key], dtype=np.float64).reshape(-1) for item in labels]
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    matrix = np.asarray(labels, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"labels must form a non-empty N x C matrix, got shape {matrix.shape}.")
    return matrix


def nvum_prior(
    labels: Any, convention: PriorConvention | str = PriorConvention.PAPER, label_key: str = "label"
) -> torch.Tensor:
    """Class prior ``pi`` (``C``, float32, in [0, 1]) of a training label matrix, for :class:`NVUMLoss`.

    A label counts as positive when it equals 1; ``nan`` (unknown) and 0 count as not positive, and the denominator
    is the number of samples ``N`` (as in the official code).

    Example: labels ``[[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 0, 1]]`` (last column "No Finding") give
    ``[0.5, 0.25, 0.5]`` in the paper convention and ``[0.25, 0.125, 0.5]`` in the official one
    (``P(NoFinding) = 0.5``).

    Args:
        labels: ``N C`` multi-label matrix (array, tensor or nested lists), or a MONAI datalist whose items hold
            the label vector under ``label_key``.
        convention: ``"paper"`` (per-class positive rate, default) or ``"official"`` (last column must be
            "No Finding"; see :class:`PriorConvention`).
        label_key: the label entry of datalist items, default ``"label"``.

    Returns:
        ``C`` float32 tensor.

    Raises:
        ValueError: ``labels`` is not a non-empty ``N C`` matrix, an unknown ``convention``, or the official
            convention with fewer than 2 columns.
        KeyError: a datalist item has no ``label_key``.
    """
    convention = look_up_option(convention, PriorConvention)
    matrix = _label_matrix(labels, label_key)
    rate = (matrix == 1).sum(axis=0) / matrix.shape[0]
    if convention == PriorConvention.OFFICIAL:
        if matrix.shape[1] < 2:
            raise ValueError(
                "the official prior needs the disease columns followed by a 'No Finding' column, got "
                f"{matrix.shape[1]} column(s)."
            )
        no_finding = rate[-1]
        rate = np.concatenate([(1.0 - no_finding) * rate[:-1], [no_finding]])
    return torch.as_tensor(rate, dtype=torch.float32)


def _resolve(name: str, value: Any, mode: NVUMMode) -> Any:
    return _PRESETS[name][0 if mode == NVUMMode.PAPER else 1] if value is None else value


class NVUMLoss(_Loss):
    """NVUM loss: binary cross-entropy plus a regulariser against a per-sample memory of unbiased logits.

    Liu et al., "NVUM: Non-Volatile Unbiased Memory for Robust Medical Image Classification", MICCAI 2022,
    https://arxiv.org/abs/2103.04053. For sample ``i`` with logits ``z_i`` (``C``), probabilities
    ``p_i = sigmoid(z_i)`` and labels ``y_i``:

    - memory update (Eq. 3), done first, for every sample of the batch (of all ranks), from detached logits::

        t_i <- beta * t_i + (1 - beta) * (z_i - log(pi))

    - loss (Eq. 1-2), with the *updated* ``t_i`` and ``p_i`` not detached::

        l_i = BCE(y_i, p_i) + reg_weight * log(1 - sigmoid(t_i . p_i))

      where ``BCE(y_i, p_i) = -(1/C) sum_c [y_ic log p_ic + (1 - y_ic) log(1 - p_ic)]`` is averaged over the
      ``C`` classes (torch's and the official code's convention; the paper does not fix the normalisation).

    - gradient (Eq. 4): ``dl_i/dz_ic = (p_ic - y_ic) / C + reg_weight * g_ic`` with
      ``g_ic = -sigmoid(t_i . p_i) p_ic (1 - p_ic) t_ic``; ``reduction="mean"`` divides by ``B`` as well.

    ``log(1 - sigmoid(s))`` is computed as ``logsigmoid(-s)`` (the same value, finite for large ``s``).

    **Official mode.** The public code (github FBLADL/NVUM) differs from the equations above. ``mode="official"``
    follows it at its HEAD, commit ``86d431d``: ``models/loss.py`` class ``NVUMREG`` (``logits_adjust`` l. 21-26,
    ``forward`` l. 28-43, ``update_hist`` l. 45-59) driven by ``train.py`` ``train()`` (l. 216-275). It sets every
    difference at once; each is also an explicit option (``None`` takes the mode's value):

    ====================  =====================  ==========================================================
    option                paper                  official (source at ``86d431d``)
    ====================  =====================  ==========================================================
    ``reg_weight``        ``0.1``                ``1``: ``opts.py`` l. 25 (the paper states no value; 0.1
                                                 won the noisy-validation tuning of ``make bench``'s powered
                                                 study, where 1 and 10 let the dot-product regulariser
                                                 outweigh BCE; see the bundle README)
    ``regulariser``       ``"dot"``              ``"elementwise"``: ``log(1 - sigmoid(q_ic p_ic))`` per class
                                                 (``models/loss.py`` ``NVUMREG.forward`` l. 41;
                                                 ``train.py`` l. 253-254 takes ``mean(bce + w * reg)`` over
                                                 ``B x C``)
    ``prob_clamp``        ``0`` (none)           ``1e-4``: ``p`` clamped to ``[1e-4, 1 - 1e-4]`` in the
                                                 regulariser (``models/loss.py`` l. 33-35)
    ``detach_reg_prob``   ``False``              ``False``: ``p`` is not detached (l. 41), so the
                                                 regulariser has a gradient. ``True`` reproduces the commits
                                                 before ``e8b4479`` (``7a8807f`` to ``99bdde8``, class
                                                 ``ELR``, ``y_pred.detach()`` at l. 138 of ``7a8807f``):
                                                 the regulariser is then a constant with respect to the
                                                 network and only the BCE term trains it
    ``memory_source``     ``"prediction"``       ``"teacher"``: memory fed by an EMA teacher's logits
                                                 (``train.py`` l. 242 and l. 244-251 call ``update_hist``
                                                 before the loss; pass ``memory_logits``)
    ``mix_memory``        ``False``              ``True``: ``q_i = m t_i + (1 - m) t_perm(i)`` with a random
                                                 permutation of the batch and ``m = max(u, 1 - u)``,
                                                 ``u ~ Beta(1, 1) = U(0, 1)`` (``train.py`` l. 236-238,
                                                 ``models/loss.py`` ``update_hist`` l. 56-59)
    ``prior_eps``         ``0``                  ``1e-12``: ``log(pi + 1e-12)`` (``models/loss.py``
                                                 ``logits_adjust`` l. 22)
    ====================  =====================  ==========================================================

    The official prior is :func:`nvum_prior` with ``convention="official"``. The official code also evaluates the EMA
    network (``train.py`` l. 148-153, 172-178, 194, 198), an EMA of every ``state_dict`` entry with decay 0.99
    (``WeightEMA``, l. 343-371) that runs its teacher forward in training mode (``net_ema.train()``, l. 229):
    :class:`monai_ext.handlers.ema.EMATeacher` with ``buffer_mode="ema"``, ``teacher_mode="train"``; and it uses
    ``beta=0.9``, ``reg_weight=1`` (``opts.py`` l. 25-26). Not reproduced: the official step runs under amp's
    ``autocast`` (``train.py`` l. 240); this loss computes in the dtype of ``input``, with the memory in float32 (as
    ``pred_hist``, ``models/loss.py`` l. 15 and l. 47).

    **Distributed.** Under ``torchrun`` the ``(index, logits)`` of every rank are gathered
    (:func:`monai_ext.utils.distributed.all_gather_indexed`) before the update, so every rank holds the same memory;
    ``forward`` is then a collective call that every rank must make equally often. When a gathered batch holds one
    index several times (a ``DistributedSampler`` pads with repeats) the last occurrence in rank order is applied,
    once. The memory is only updated while the module is in training mode (the default); ``.eval()`` computes the
    loss against the memory as it is.

    **Checkpoints.** ``memory`` (``N C`` float32) and ``num_updates`` (``N`` int64, how often each row was updated)
    are buffers: put the loss into ``CheckpointSaver``'s ``save_dict``. The prior is not saved (it comes from the
    config). Memory for ``N = 500,000``, ``C = 14``: 28 MB on the loss's device.

    Example::

        prior = nvum_prior(train_datalist)  # or nvum_prior(labels, "official")
        loss = NVUMLoss(num_samples=len(train_datalist), num_classes=14, prior=prior, reduction="none")
        per_sample = loss(logits, labels, index=batch["index"])  # B

    Args:
        num_samples: ``N``, length of the training datalist (indices in ``[0, N)``).
        num_classes: ``C``, number of outputs.
        prior: ``C`` class prior ``pi`` in [0, 1] (see :func:`nvum_prior`).
        beta: memory momentum of Eq. 3, in [0, 1), default 0.9.
        reg_weight: weight of the regulariser, >= 0; ``None`` takes the mode's: 1.0 in official mode (``opts.py``
            l. 25), 0.1 in paper mode (the paper gives no value; 0.1 won the noisy-validation tuning of the powered
            study in ``make bench``, where 1 and 10 let the dot-product regulariser outweigh BCE and collapse
            training, see the bundle README).
        mode: ``"paper"`` (default) or ``"official"``; preset of the options below.
        reduction: ``{"none", "mean", "sum"}`` over the batch; ``"none"`` gives ``B`` per-sample losses (what
            :class:`monai_ext.engines.PerSampleTrainer` needs). Default ``"mean"``.
        regulariser: ``{"dot", "elementwise"}``, see :class:`NVUMRegulariser`; ``None`` takes the mode's.
        prob_clamp: ``eps`` to clamp ``p`` to ``[eps, 1 - eps]`` inside the regulariser, in [0, 0.5); ``None``
            takes the mode's.
        detach_reg_prob: whether ``p`` is detached inside the regulariser (then only the BCE term has a gradient; the
            official code before commit ``e8b4479``); ``None`` takes the mode's (``False`` in both).
        memory_source: ``{"prediction", "teacher"}``, see :class:`NVUMMemorySource`; ``None`` takes the mode's.
        mix_memory: whether the regulariser uses batch-mixed memory rows; ``None`` takes the mode's.
        prior_eps: added to ``pi`` before the log, >= 0; ``None`` takes the mode's.
        generator: random source of the memory mixing; ``None`` uses a private ``torch.Generator`` seeded with 0.
            The mixing draws happen on the CPU: per ``forward`` with ``mix_memory`` and ``B >= 2``, first
            ``u = torch.rand((), generator=generator)``, then ``torch.randperm(B, generator=generator)``.

    Raises:
        ValueError: a size, ``beta``, ``reg_weight``, ``prob_clamp`` or ``prior_eps`` is out of range; ``prior``
            does not have ``C`` entries or has ``pi + prior_eps <= 0`` (``log`` undefined: set ``prior_eps``), or
            an unknown option value.
    """

    def __init__(
        self,
        num_samples: int,
        num_classes: int,
        prior: Sequence[float] | np.ndarray | torch.Tensor,
        beta: float = 0.9,
        reg_weight: float | None = None,
        mode: NVUMMode | str = NVUMMode.PAPER,
        reduction: LossReduction | str = LossReduction.MEAN,
        regulariser: NVUMRegulariser | str | None = None,
        prob_clamp: float | None = None,
        detach_reg_prob: bool | None = None,
        memory_source: NVUMMemorySource | str | None = None,
        mix_memory: bool | None = None,
        prior_eps: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(reduction=look_up_option(reduction, LossReduction).value)
        if int(num_samples) < 1 or int(num_classes) < 1:
            raise ValueError(
                f"num_samples and num_classes must be >= 1, got num_samples={num_samples}, num_classes={num_classes}."
            )
        if not 0.0 <= float(beta) < 1.0:
            raise ValueError(f"beta must lie in [0, 1), got {beta}.")
        self.mode = look_up_option(mode, NVUMMode)
        reg_weight = _resolve("reg_weight", reg_weight, self.mode)
        if float(reg_weight) < 0.0:
            raise ValueError(f"reg_weight must be >= 0, got {reg_weight}.")
        self.num_samples, self.num_classes = int(num_samples), int(num_classes)
        self.beta, self.reg_weight = float(beta), float(reg_weight)
        self.regulariser = look_up_option(_resolve("regulariser", regulariser, self.mode), NVUMRegulariser)
        self.prob_clamp = float(_resolve("prob_clamp", prob_clamp, self.mode))
        self.detach_reg_prob = bool(_resolve("detach_reg_prob", detach_reg_prob, self.mode))
        self.memory_source = look_up_option(_resolve("memory_source", memory_source, self.mode), NVUMMemorySource)
        self.mix_memory = bool(_resolve("mix_memory", mix_memory, self.mode))
        self.prior_eps = float(_resolve("prior_eps", prior_eps, self.mode))
        if not 0.0 <= self.prob_clamp < 0.5:
            raise ValueError(f"prob_clamp must lie in [0, 0.5), got {self.prob_clamp}.")
        if self.prior_eps < 0.0:
            raise ValueError(f"prior_eps must be >= 0, got {self.prior_eps}.")
        prior_t = torch.as_tensor(np.asarray(prior, dtype=np.float64) if not isinstance(prior, torch.Tensor) else prior)
        prior_t = prior_t.detach().to(torch.float64).reshape(-1)
        if prior_t.numel() != self.num_classes:
            raise ValueError(f"prior must have num_classes={self.num_classes} entries, got {prior_t.numel()}.")
        if bool(((prior_t < 0) | (prior_t > 1) | torch.isnan(prior_t)).any()):
            raise ValueError(f"prior must lie in [0, 1], got {prior_t.tolist()}.")
        shifted = prior_t + self.prior_eps
        if bool((shifted <= 0).any()):
            zero = torch.nonzero(shifted <= 0).reshape(-1).tolist()
            raise ValueError(
                f"prior is 0 for class(es) {zero} and prior_eps={self.prior_eps}, so log(prior) is -inf: drop classes "
                "without training positives, or set prior_eps (the official code uses 1e-12)."
            )
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self._warned_ignored = False
        self.register_buffer("log_prior", torch.log(shifted).to(torch.float32), persistent=False)
        self.register_buffer("memory", torch.zeros(self.num_samples, self.num_classes, dtype=torch.float32))
        self.register_buffer("num_updates", torch.zeros(self.num_samples, dtype=torch.long))

    def extra_repr(self) -> str:
        return (
            f"num_samples={self.num_samples}, num_classes={self.num_classes}, beta={self.beta}, "
            f"reg_weight={self.reg_weight}, mode={self.mode.value}, regulariser={self.regulariser.value}, "
            f"prob_clamp={self.prob_clamp}, detach_reg_prob={self.detach_reg_prob}, "
            f"memory_source={self.memory_source.value}, mix_memory={self.mix_memory}, prior_eps={self.prior_eps}, "
            f"reduction={self.reduction}"
        )

    # ---- memory ------------------------------------------------------------------------------------------------

    def _check_index(self, index: Any, batch: int) -> torch.Tensor:
        if index is None:
            raise ValueError(
                "NVUMLoss needs the dataset index of every sample (index=, shape B): train with "
                "monai_ext.engines.PerSampleTrainer on a datalist passed through "
                "monai_ext.data.datalist.assign_indices, or call loss(logits, labels, index=batch['index'])."
            )
        index = torch.as_tensor(index)
        if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
            raise TypeError(f"index must hold integers, got dtype {index.dtype}.")
        if tuple(index.shape) != (batch,):
            raise ValueError(
                f"index shape {tuple(index.shape)} does not match the batch of input: expected ({batch},)."
            )
        index = index.to(device=self.memory.device, dtype=torch.long)
        bad = (index < 0) | (index >= self.num_samples)
        if bool(bad.any()):
            wrong = index[bad].tolist()
            raise IndexError(
                f"index {wrong[:_MAX_NAMED]}{' ...' if len(wrong) > _MAX_NAMED else ''} out of range for "
                f"num_samples={self.num_samples} (valid: 0 to {self.num_samples - 1}); set num_samples to the length "
                "of the training datalist whose indices monai_ext.data.datalist.assign_indices set."
            )
        return index

    def update_memory(self, index: torch.Tensor, logits: torch.Tensor) -> None:
        """Apply Eq. 3 to the given rows on this rank only (``forward`` gathers across ranks first).

        Args:
            index: ``K`` int64 dataset indices in ``[0, N)`` (checked by the caller); repeated indices: the last
                occurrence is applied, once.
            logits: ``K C`` finite logits (detached), any float dtype.
        """
        if index.numel() == 0:
            return
        index = index.to(self.memory.device)
        logits = logits.detach().to(device=self.memory.device, dtype=self.memory.dtype)
        keep = last_occurrence(index)
        rows, values = index[keep], logits[keep]
        updated = self.beta * self.memory[rows] + (1.0 - self.beta) * (values - self.log_prior)
        self.memory.index_copy_(0, rows, updated)
        self.num_updates.index_add_(0, rows, torch.ones_like(rows))

    # ---- loss --------------------------------------------------------------------------------------------------

    def _memory_rows(self, index: torch.Tensor, device: torch.device) -> torch.Tensor:
        rows = self.memory[index].to(device)
        if not self.mix_memory or rows.shape[0] < 2:
            return rows
        u = float(torch.rand((), generator=self.generator))
        m = max(u, 1.0 - u)
        perm = torch.randperm(rows.shape[0], generator=self.generator).to(device)
        return m * rows + (1.0 - m) * rows[perm]

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        index: torch.Tensor | None = None,
        memory_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Update the memory rows of the batch (Eq. 3), then compute the loss (Eq. 1-2) with the updated rows.

        Args:
            input: ``B C`` logits of the trained network.
            target: ``B C`` binary labels in {0, 1} (no ``nan``: map unknown labels before training).
            index: ``B`` int64 dataset indices of the samples (required).
            memory_logits: ``B C`` logits that feed the memory when ``memory_source="teacher"`` (an EMA teacher's,
                written by :class:`monai_ext.handlers.ema.EMATeacher` into ``engine.state.output``); ignored (with
                one warning per loss instance) when ``memory_source="prediction"``.

        Returns:
            ``B`` per-sample losses (``reduction="none"``) or their mean / sum.

        Raises:
            ValueError: shape mismatches (naming both shapes), a missing ``index``, ``nan`` labels, or
                ``memory_source="teacher"`` without ``memory_logits``.
            TypeError: ``index`` is not integer.
            IndexError: an index lies outside ``[0, num_samples)``.
            FloatingPointError: the logits that feed the memory hold ``nan``/``inf``; names the dataset indices.
        """
        if input.ndim != 2 or input.shape[1] != self.num_classes:
            raise ValueError(
                f"input shape {tuple(input.shape)} does not match (B, num_classes={self.num_classes}); NVUMLoss takes "
                "B C logits."
            )
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"target shape {tuple(target.shape)} does not match input shape {tuple(input.shape)}.")
        index = self._check_index(index, input.shape[0])
        target = target.to(dtype=input.dtype)
        if bool(torch.isnan(target).any()):
            raise ValueError(
                "target holds nan (unknown labels); NVUM needs binary labels: map unknown labels to 0 or 1 in the "
                "datalist (e.g. the readers' uncertain/unknown policy) before training."
            )
        if self.memory_source == NVUMMemorySource.TEACHER:
            if memory_logits is None:
                raise ValueError(
                    'memory_source="teacher" (official mode) needs memory_logits: attach '
                    "monai_ext.handlers.ema.EMATeacher to the PerSampleTrainer (it writes 'memory_logits' into "
                    'engine.state.output), or set memory_source="prediction".'
                )
            if tuple(memory_logits.shape) != tuple(input.shape):
                raise ValueError(
                    f"memory_logits shape {tuple(memory_logits.shape)} does not match input shape {tuple(input.shape)}."
                )
            source, what = memory_logits.detach(), "memory_logits (EMA teacher)"
        else:
            if memory_logits is not None and not self._warned_ignored:
                warnings.warn(
                    'NVUMLoss: memory_logits are ignored with memory_source="prediction" (the memory is fed by the '
                    'network\'s own logits); set memory_source="teacher" to feed it from the EMA teacher.',
                    stacklevel=2,
                )
                self._warned_ignored = True
            source, what = input.detach(), "network logits"
        finite = torch.isfinite(source).all(dim=1)
        if not bool(finite.all()):
            bad = index[~finite.to(index.device)].tolist()
            raise FloatingPointError(
                f"NVUMLoss: {what} are nan/inf for {len(bad)} of {input.shape[0]} samples, dataset indices "
                f"{bad[:_MAX_NAMED]}{' ...' if len(bad) > _MAX_NAMED else ''}; the memory was not updated. Check "
                "those images, lower the learning rate or enable gradient clipping, or try amp=False."
            )
        if self.training:
            all_index, all_logits = all_gather_indexed(index, source.float())
            self.update_memory(all_index, all_logits)

        bce, reg = self.loss_terms(input, target, self._memory_rows(index, input.device))
        loss = bce + self.reg_weight * reg
        if self.reduction == LossReduction.MEAN.value:
            return loss.mean()
        if self.reduction == LossReduction.SUM.value:
            return loss.sum()
        return loss

    def loss_terms(
        self, input: torch.Tensor, target: torch.Tensor, memory_rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two per-sample terms of Eq. 1-2 for given memory rows, without touching the memory:
        ``BCE(y_i, p_i)`` (mean over classes) and the regulariser (unweighted; this loss's ``regulariser``,
        ``prob_clamp`` and ``detach_reg_prob``). ``forward`` returns ``bce + reg_weight * reg``; monitors
        (:class:`monai_ext.handlers.NVUMMonitor`) call it to take the two gradients apart.

        Args:
            input: ``B C`` logits.
            target: ``B C`` binary labels.
            memory_rows: ``B C`` memory rows ``t_i`` (or their batch mix).

        Returns:
            ``(bce, reg)``, two ``B`` tensors.
        """
        t = memory_rows.to(device=input.device, dtype=input.dtype)
        p = torch.sigmoid(input)
        p_reg = p.detach() if self.detach_reg_prob else p
        if self.prob_clamp > 0:
            p_reg = p_reg.clamp(self.prob_clamp, 1.0 - self.prob_clamp)
        if self.regulariser == NVUMRegulariser.DOT:
            reg = F.logsigmoid(-(t * p_reg).sum(dim=1))
        else:
            reg = F.logsigmoid(-(t * p_reg)).mean(dim=1)
        bce = F.binary_cross_entropy_with_logits(input, target.to(input.dtype), reduction="none").mean(dim=1)
        return bce, reg

    # ---- checkpoints -------------------------------------------------------------------------------------------

    def get_extra_state(self) -> dict[str, torch.Tensor]:
        """``{"generator_state": uint8 tensor}``, the memory-mixing generator, saved as the state dict's
        ``_extra_state`` so that a resumed run mixes as an uninterrupted one; ``weights_only``-safe."""
        return {"generator_state": self.generator.get_state()}

    def set_extra_state(self, state: Any) -> None:
        """Restore the generator state saved by :meth:`get_extra_state`.

        Raises:
            KeyError: ``generator_state`` is missing.
        """
        if not isinstance(state, Mapping) or "generator_state" not in state:
            found = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise KeyError(f"NVUMLoss checkpoint: '_extra_state' misses 'generator_state'; found {found}.")
        self.generator.set_state(torch.as_tensor(state["generator_state"]).to(torch.uint8).cpu())

    def _load_from_state_dict(
        self,
        state_dict: Mapping[str, Any],
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        saved = state_dict.get(prefix + "memory")
        if isinstance(saved, torch.Tensor) and tuple(saved.shape) != tuple(self.memory.shape):
            saved_n, saved_c = (tuple(saved.shape) + (None, None))[:2]
            if saved.ndim == 2 and saved_c != self.num_classes:
                raise ValueError(
                    f"NVUMLoss checkpoint: this checkpoint was trained with {saved_c} classes, the config has "
                    f"{self.num_classes}: use the config that matches the checkpoint (num_classes={saved_c} and its "
                    "label set), or leave the loss out of the CheckpointLoader load_dict to start with an empty "
                    "memory."
                )
            raise ValueError(
                f"NVUMLoss checkpoint: the memory holds {saved_n} samples, the config has num_samples="
                f"{self.num_samples}: the training datalist changed; resume with the same training datalist (same "
                "order, same indices), or leave the loss out of the CheckpointLoader load_dict to start with an "
                "empty memory."
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


def memory_logits_key(loss: torch.nn.Module) -> str | None:
    """The ``engine.state.output`` key an EMA teacher must fill for ``loss``: ``"memory_logits"`` for an
    :class:`NVUMLoss` whose memory is fed by a teacher (``memory_source="teacher"``, official mode), else ``None``
    (paper mode, or a loss without memory such as the BCE baseline): the teacher then skips its extra forward.

    Bundle use: ``"output_key": "$monai_ext.losses.memory_logits_key(@loss)"`` on the
    :class:`monai_ext.handlers.EMATeacher`.
    """
    if isinstance(loss, NVUMLoss) and loss.memory_source == NVUMMemorySource.TEACHER:
        return "memory_logits"
    return None
