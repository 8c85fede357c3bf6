# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS scheduler: minibatches of mixed difficulty, planned per epoch from the previous epoch's loss and uncertainty.

Li, Han, Zhou, "MoMBS: Mixed-order minibatch sampling enhances model training from diverse-quality images",
arXiv:2505.18741 (2025). From a pivot epoch on, every minibatch pairs hard samples with easy ones so that each
minibatch carries the same total difficulty; the hardest (under-represented) samples then dominate the gradient of
their minibatch while the mid-difficulty ones (poorly labelled, overfitted) are kept away from them. The paper's
Table I baselines (random sampling, self-paced curriculum learning with hard and linear regularisers, online hard
example mining) and its ablations (loss only, uncertainty only, "hi+hi") are values of one option of the same sampler,
see :class:`SamplingStrategy`.

The plan is a pure function of ``(scores, epoch, seed, batch size, world size)``, so every ``torchrun`` rank computes
the same plan from the same (all-gathered) scores and takes its own share of every global minibatch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sized
from typing import Any

import torch
import torch.distributed as dist
from monai.utils import look_up_option
from monai.utils.enums import StrEnum
from torch.utils.data import DistributedSampler

from monai_ext.samplers.ranking import MissingScore, difficulty_order, difficulty_score, fill_missing, ordinal_rank
from monai_ext.samplers.self_paced import (
    SelfPacedRegularizer,
    self_paced_start,
    self_paced_threshold,
    self_paced_weights,
)

__all__ = ["SamplingStrategy", "MixedLayout", "plan_blocks", "MoMBSSampler"]

_DEFAULT_HARD_FRACTION = 0.1
_DEFAULT_START_FRACTION = 0.5  # Kumar et al. 2010: about half of the samples start easy
_DEFAULT_GROWTH = 1.3  # Kumar et al. 2010: lambda grows by 1.3 per iteration of the SPL outer loop


class SamplingStrategy(StrEnum):
    """How the sampler orders an epoch (and, for SCL, weighs its losses) from ``pivot_epoch`` on; before the pivot
    every strategy samples at random with weight 1.

    The values are the methods of Li, Han, Zhou, arXiv:2505.18741: MoMBS and its ablations (Sec. 4.7, Tables II-III)
    and the baselines of its Table I.

    - ``random``: a random permutation every epoch (the usual ``shuffle=True``; the paper's random minibatch
      sampling, "RaMBS").
    - ``mombs``: MoMBS, "Mo+l+u" (default): difficulty = loss rank + uncertainty rank (Sec. 3.2), minibatches of
      equal total difficulty (Sec. 3.3, layout :class:`MixedLayout`).
    - ``mombs_loss``: the "Mo+l" ablation: as ``mombs`` with the loss rank alone.
    - ``mombs_uncertainty``: the "Mo+u" ablation: as ``mombs`` with the uncertainty rank alone.
    - ``anti_mixed``: the "hi+hi" ablation (loss + uncertainty): minibatches of similar difficulty (hard with hard,
      easy with easy), consecutive runs of the difficulty order, in random minibatch order.
    - ``scl_hard``: self-paced curriculum learning (Table I "SCL") with the hard regulariser (Kumar et al., NIPS
      2010): random minibatches, per-sample loss weights ``v = 1 if l < lambda else 0``, see
      :mod:`monai_ext.samplers.self_paced` and :meth:`MoMBSSampler.loss_weights`.
    - ``scl_linear``: SCL with the linear regulariser (Jiang et al., ACM MM 2014, the paper's ref. [6]): random
      minibatches, ``v = max(0, 1 - l / lambda)``.
    - ``ohem``: online hard example mining (Table I "OHEM", the paper's ref. [49]) as in its "2" column: random
      minibatches in which the ``hard_fraction`` highest-loss samples are visited twice (the epoch has ``N + k``
      samples, ``k = floor(hard_fraction * N)``).

    SPE (self-paced ensemble, the paper's ref. [1]) trains an ensemble of classifiers on hardness-binned
    under-samples of a majority class; it is not a sampling order or a per-sample weight of one network and is not
    offered.
    """

    RANDOM = "random"
    MOMBS = "mombs"
    MOMBS_LOSS = "mombs_loss"
    MOMBS_UNCERTAINTY = "mombs_uncertainty"
    ANTI_MIXED = "anti_mixed"
    SCL_HARD = "scl_hard"
    SCL_LINEAR = "scl_linear"
    OHEM = "ohem"

    @property
    def uses_uncertainty(self) -> bool:
        """Whether the plans of this strategy rank by uncertainty (``mombs``, ``mombs_uncertainty``,
        ``anti_mixed``); the others need no uncertainty, so
        :class:`monai_ext.handlers.mombs_assessor.MoMBSAssessor` skips its ``K`` passes for them."""
        return self in (SamplingStrategy.MOMBS, SamplingStrategy.MOMBS_UNCERTAINTY, SamplingStrategy.ANTI_MIXED)

    @property
    def uses_loss_rank(self) -> bool:
        """Whether the difficulty order of this strategy includes the loss rank (``mombs``, ``mombs_loss``,
        ``anti_mixed``)."""
        return self in (SamplingStrategy.MOMBS, SamplingStrategy.MOMBS_LOSS, SamplingStrategy.ANTI_MIXED)

    @property
    def plans_by_difficulty(self) -> bool:
        """Whether the epoch is a layout of the difficulty order (the MoMBS strategies and ``anti_mixed``)."""
        return self.uses_uncertainty or self.uses_loss_rank

    @property
    def uses_loss_weights(self) -> bool:
        """Whether the strategy weighs the per-sample losses (``scl_hard``, ``scl_linear``): the trainer then
        back-propagates ``mean(v * l)`` with the weights of :meth:`MoMBSSampler.loss_weights`."""
        return self in (SamplingStrategy.SCL_HARD, SamplingStrategy.SCL_LINEAR)

    @property
    def self_paced_regularizer(self) -> SelfPacedRegularizer | None:
        """The SPL regulariser of ``scl_hard``/``scl_linear``, ``None`` for the other strategies."""
        return {
            SamplingStrategy.SCL_HARD: SelfPacedRegularizer.HARD,
            SamplingStrategy.SCL_LINEAR: SelfPacedRegularizer.LINEAR,
        }.get(self)


class MixedLayout(StrEnum):
    """How ``mombs`` deals the difficulty order (easiest ``p=0`` to hardest ``p=N-1``) into minibatches of ``B``.

    - ``mirror``: pair ``p`` with ``N-1-p`` (sum ``N-1``) and cut the sequence of pairs into minibatches: with an even
      ``B`` every full minibatch holds ``B/2`` pairs and the same rank sum ``B (N-1) / 2`` (default).
    - ``serpentine``: deal the order to the minibatches as cards, left to right then right to left (``0 1 2 2 1 0
      0 1 2 ...``); with an even ``B`` and ``N`` a multiple of ``B`` every rank sum is equal too.
    """

    MIRROR = "mirror"
    SERPENTINE = "serpentine"


def _split_middle(order: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``order`` without its middle ``N mod block`` entries, and those entries (the partial minibatch)."""
    n = order.numel()
    rest = n % block
    start = (n - rest) // 2
    return torch.cat([order[:start], order[start + rest :]]), order[start : start + rest]


def _mirror(order: torch.Tensor, block: int) -> torch.Tensor:
    length = order.numel()
    i = torch.arange(length // 2)
    pos = torch.stack([i, length - 1 - i], dim=1).reshape(-1)
    if length % 2:
        pos = torch.cat([pos, torch.tensor([length // 2])])
    return order[pos].reshape(-1, block)


def _serpentine(order: torch.Tensor, block: int) -> torch.Tensor:
    n_blocks = order.numel() // block
    q = torch.arange(order.numel())
    rnd, pos = q // n_blocks, q % n_blocks
    row = torch.where(rnd % 2 == 0, pos, n_blocks - 1 - pos)
    out = torch.empty((n_blocks, block), dtype=order.dtype)
    out[row, rnd] = order
    return out


def plan_blocks(
    order: torch.Tensor, block: int, layout: str | MixedLayout | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deal a difficulty order into full minibatches in random order, plus the partial minibatch.

    The middle ``N mod block`` samples of the order (mid difficulty) form the partial minibatch; the other ones are
    dealt by ``layout`` into ``N // block`` full minibatches, whose order is shuffled with ``generator``.

    Toy example, ``N=8``, ``block=4``, difficulty ranks ``p`` (0 = easiest): ``mirror`` gives the minibatches
    ``[0, 7, 1, 6]`` and ``[2, 5, 3, 4]`` (rank sums 14 and 14), ``serpentine`` gives ``[0, 3, 4, 7]`` and
    ``[1, 2, 5, 6]`` (14 and 14), ``None`` (similar difficulty, ``anti_mixed``) gives ``[0, 1, 2, 3]`` and
    ``[4, 5, 6, 7]`` (6 and 22); each in a random order of minibatches.

    Args:
        order: ``N`` int64 sample indices, easiest first (:func:`monai_ext.samplers.ranking.difficulty_order`).
        block: minibatch size (the global one under ``torchrun``).
        layout: a :class:`MixedLayout`, or ``None`` for consecutive runs of the order.
        generator: draws the order of the full minibatches.

    Returns:
        ``(N // block, block)`` full minibatches (rows, in random order) and the ``N mod block`` partial one.
    """
    rest, partial = _split_middle(order, block)
    if rest.numel() == 0:
        return rest.reshape(0, block), partial
    if layout is None:
        blocks = rest.reshape(-1, block)
    elif look_up_option(layout, MixedLayout) == MixedLayout.MIRROR:
        blocks = _mirror(rest, block)
    else:
        blocks = _serpentine(rest, block)
    return blocks[torch.randperm(blocks.shape[0], generator=generator)], partial


class MoMBSSampler(DistributedSampler):
    """Mixed-order minibatch sampler (MoMBS) with the paper's ablations and Table I baselines, ``torchrun`` aware.

    The sampler forms the minibatches itself and yields their indices one after the other: the ``DataLoader`` must
    use ``sampler=`` this sampler, ``shuffle=False`` and the same ``batch_size`` (the bundle sets both from one
    ``batch_size`` id); ``drop_last`` belongs to the sampler (leave the loader's ``False``). It subclasses
    ``torch.utils.data.DistributedSampler`` so that MONAI's ``SupervisedTrainer`` calls :meth:`set_epoch` with the
    1-based ignite epoch at every ``EPOCH_STARTED``; it also works with a single process.

    - epochs before ``pivot_epoch`` (or without any scores yet, with a warning) are a random permutation;
    - from ``pivot_epoch`` on, the scores passed to :meth:`update_scores` (by
      :class:`monai_ext.handlers.mombs.MoMBSHandler` at the end of every epoch, from the
      :class:`monai_ext.handlers.per_sample.PerSampleRecorder`) plan the epoch by ``strategy``
      (:class:`SamplingStrategy`): the MoMBS strategies and ``anti_mixed`` lay out the difficulty order (loss rank
      and/or uncertainty rank, :meth:`difficulty`), ``scl_*`` sample at random and weigh the losses
      (:meth:`loss_weights`), ``ohem`` samples at random with the hardest samples twice.

    ``pivot_epoch`` is 1-based (ignite's epochs; the scores recorded in epoch ``e`` plan epoch ``e + 1``). The official
    code (lhlm1994/MoMBS ``main.py``) switches to MoMBS when its 0-based ``epoch > 20``, i.e. from the 22nd epoch:
    ``pivot_epoch=22`` here. The paper's pivots (Sec. 4.7): 50 on ULD, 20 on CIFAR-LT, 5 on CIFAR-NL. The default 20
    is kept for the bundle's shorter schedule.

    Epoch length: ``N`` for every strategy but ``ohem``, which visits ``N + k`` samples (``k = floor(hard_fraction
    * N)``) in every epoch, before the pivot too (then ``k`` random samples are visited twice), because ignite fixes
    ``epoch_length`` from ``len(loader)`` when the run starts.

    Samples without a score (never visited, ``NaN``) are ranked as ``missing`` says (default: at the median); samples
    not visited in the last epoch keep their last known score. ``mombs`` and ``anti_mixed`` leave out a score column
    without any finite value (loss only, or uncertainty only); ``mombs_loss``/``mombs_uncertainty`` without their
    column sample at random with a warning.

    Under ``torchrun`` (``W`` ranks) the plan is made for global minibatches of ``G = batch_size * W`` samples and
    rank ``r`` takes positions ``[r * batch_size, (r + 1) * batch_size)`` of each, so every rank's local minibatch of
    a ``mirror`` plan (even ``batch_size``) is itself made of whole pairs and the global minibatch is even. The last,
    partial global minibatch (kept unless ``drop_last``) is padded with the first samples of the epoch up to a
    multiple of ``W`` and split evenly, as ``DistributedSampler`` pads, so that every rank runs the same number of
    iterations; with one process nothing is ever repeated (but by ``ohem``).

    Toy ordering, ``N=8``, ``batch_size=4``, one rank, ``mombs``/``mirror``, difficulty ranks = sample indices:
    epoch plans are ``[0, 7, 1, 6, 2, 5, 3, 4]`` or ``[2, 5, 3, 4, 0, 7, 1, 6]`` (minibatch rank sums 14 and 14; the
    minibatch order depends on ``seed + epoch``). With two ranks and ``batch_size=2``: global minibatches
    ``[0, 7, 1, 6]`` and ``[2, 5, 3, 4]``, rank 0 gets ``[0, 7]`` then ``[2, 5]``, rank 1 gets ``[1, 6]`` then
    ``[3, 4]`` (in the same minibatch order on both). With ``N=9`` the middle sample 4 forms the last minibatch
    ``[4]`` (or is dropped with ``drop_last=True``).

    Example::

        sampler = MoMBSSampler(train_ds, batch_size=4, pivot_epoch=22)
        loader = DataLoader(train_ds, batch_size=4, sampler=sampler, shuffle=False)
        # each epoch: recorder collects loss/uncertainty, MoMBSHandler calls sampler.update_scores(...)

    Args:
        dataset: the training dataset (only its length ``N`` is used).
        batch_size: the per-rank minibatch size ``B`` of the ``DataLoader``.
        strategy: a :class:`SamplingStrategy`, default ``"mombs"``.
        layout: a :class:`MixedLayout` for ``mombs``/``mombs_loss``/``mombs_uncertainty``, default ``"mirror"``.
        pivot_epoch: first (1-based, ignite) epoch planned by ``strategy``, default 20; earlier ones are random.
        hard_fraction: fraction of samples (by loss) that ``ohem`` visits twice, in ``[0, 0.5]``, ``floor(
            hard_fraction * N)`` samples; default ``None`` = 0.1 (a warning when given to another strategy).
        self_paced_start_fraction: ``scl_*``: ``lambda_0`` is this quantile of the losses recorded before the first
            weighted epoch, in ``(0, 1]``, default 0.5 (unused by the other strategies).
        self_paced_growth: ``scl_*``: ``lambda`` is multiplied by this factor ``>= 1`` per epoch, default 1.3.
        missing: ranking of samples without a score, see :class:`monai_ext.samplers.ranking.MissingScore`.
        num_replicas: number of ranks, default the process group's world size (1 without one).
        rank: this rank, default the process group's rank (0 without one).
        seed: base seed; epoch ``e`` draws from ``torch.Generator().manual_seed(seed + e)``, identically on all ranks.
        drop_last: drop the last, partial global minibatch of every epoch (default ``False``).

    Raises:
        ValueError: ``batch_size`` < 1, ``pivot_epoch`` < 1, ``hard_fraction`` outside ``[0, 0.5]``,
            ``self_paced_start_fraction`` outside ``(0, 1]``, ``self_paced_growth`` < 1, an unknown
            ``strategy``/``layout``/``missing``, ``rank`` outside ``[0, num_replicas)``, fewer samples than ranks, or
            ``drop_last=True`` with fewer samples than one global minibatch.
    """

    def __init__(
        self,
        dataset: Sized,
        batch_size: int,
        strategy: str | SamplingStrategy = SamplingStrategy.MOMBS,
        layout: str | MixedLayout = MixedLayout.MIRROR,
        pivot_epoch: int = 20,
        hard_fraction: float | None = None,
        self_paced_start_fraction: float = _DEFAULT_START_FRACTION,
        self_paced_growth: float = _DEFAULT_GROWTH,
        missing: str | MissingScore = MissingScore.MEDIAN,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        initialised = dist.is_available() and dist.is_initialized()
        num_replicas = int(num_replicas) if num_replicas is not None else (dist.get_world_size() if initialised else 1)
        rank = int(rank) if rank is not None else (dist.get_rank() if initialised else 0)
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must lie in [0, num_replicas), got rank={rank}, num_replicas={num_replicas}.")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, seed=seed, drop_last=drop_last)
        n = len(dataset)
        if n == 0:
            raise ValueError(
                "MoMBSSampler got an empty dataset: the training datalist holds no sample; check the dataset folder "
                "and the split settings (fold, num_folds, train_fraction) that select the training cases."
            )
        if n < num_replicas:
            raise ValueError(
                "the dataset length is less than the number of participating ranks "
                f"({n} samples, {num_replicas} ranks)."
            )
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        if int(pivot_epoch) < 1:
            raise ValueError(f"pivot_epoch must be >= 1 (ignite epochs start at 1), got {pivot_epoch}.")
        self.strategy = look_up_option(strategy, SamplingStrategy)
        self.layout = look_up_option(layout, MixedLayout)
        self.missing = look_up_option(missing, MissingScore)
        if hard_fraction is not None and self.strategy != SamplingStrategy.OHEM:
            warnings.warn(f"hard_fraction={hard_fraction} is ignored by strategy '{self.strategy}' (only ohem).")
        fraction = _DEFAULT_HARD_FRACTION if hard_fraction is None else float(hard_fraction)
        if not 0.0 <= fraction <= 0.5:
            raise ValueError(f"hard_fraction must lie in [0, 0.5], got {hard_fraction}.")
        if not 0.0 < float(self_paced_start_fraction) <= 1.0:
            raise ValueError(f"self_paced_start_fraction must lie in (0, 1], got {self_paced_start_fraction}.")
        if not float(self_paced_growth) >= 1.0:
            raise ValueError(f"self_paced_growth must be >= 1 (lambda may not shrink), got {self_paced_growth}.")
        self.hard_fraction = fraction
        self.self_paced_start_fraction = float(self_paced_start_fraction)
        self.self_paced_growth = float(self_paced_growth)
        self.n = n
        self.num_repeated = int(math.floor(fraction * n + 1e-9)) if self.strategy == SamplingStrategy.OHEM else 0
        self.epoch_size = n + self.num_repeated
        self.batch_size = int(batch_size)
        self.global_batch_size = self.batch_size * num_replicas
        if drop_last and self.epoch_size < self.global_batch_size:
            raise ValueError(
                f"drop_last=True leaves no minibatch: {self.epoch_size} samples < batch_size {self.batch_size} x "
                f"{num_replicas} ranks."
            )
        self.pivot_epoch = int(pivot_epoch)
        self.loss = torch.full((n,), float("nan"), dtype=torch.float32)
        self.uncertainty = torch.full((n,), float("nan"), dtype=torch.float32)
        self.scores_epoch = -1
        self.self_paced_lambda0 = float("nan")  # scl_*: lambda_0, fixed at the first weighted epoch
        self.self_paced_start_epoch = -1  # ... and that epoch (-1 = not yet)
        self._order: torch.Tensor | None = None  # cached easiest-first order of the current scores
        self.num_samples = self._local_length()
        self.total_size = self.num_samples * num_replicas

    # ---- scores ---------------------------------------------------------------------------------------------------

    def update_scores(self, loss: Any, uncertainty: Any | None = None, epoch: int | None = None) -> None:
        """Set the per-sample scores that plan the next epochs (call it identically on every rank).

        Args:
            loss: ``N`` per-sample losses (``NaN`` = no score).
            uncertainty: ``N`` per-sample uncertainties, or ``None`` (loss only: the uncertainty is cleared).
            epoch: the epoch the scores come from, stored for checkpoints and messages; default unknown (0).

        Raises:
            ValueError: a score vector does not hold ``N`` values.
        """
        for name, values, buffer in (("loss", loss, self.loss), ("uncertainty", uncertainty, self.uncertainty)):
            if values is None:
                buffer.fill_(float("nan"))
                continue
            t = values.as_tensor() if hasattr(values, "as_tensor") else torch.as_tensor(values)
            t = t.detach().reshape(-1)
            if t.numel() != self.n:
                raise ValueError(f"{name} must hold one value per sample ({self.n}), got {t.numel()}.")
            buffer.copy_(t.to(device="cpu", dtype=buffer.dtype))
        self.scores_epoch = 0 if epoch is None else int(epoch)
        self._order = None

    def needs_uncertainty(self, epoch: int) -> bool:
        """Whether the uncertainty recorded in (1-based) epoch ``epoch`` will plan an epoch: the strategy ranks by
        uncertainty (:attr:`SamplingStrategy.uses_uncertainty`) and ``epoch + 1 >= pivot_epoch`` (the scores of
        epoch ``e`` plan epoch ``e + 1``; epochs before the pivot are random).

        Example: ``pivot_epoch=20``: ``needs_uncertainty(18)`` is ``False``, ``needs_uncertainty(19)`` is ``True``.
        """
        return self.strategy.uses_uncertainty and int(epoch) + 1 >= self.pivot_epoch

    def _columns(self) -> list[torch.Tensor]:
        """The score columns the strategy plans from that hold a finite value."""
        if self.strategy == SamplingStrategy.MOMBS_UNCERTAINTY:
            wanted = [self.uncertainty]
        elif self.strategy in (SamplingStrategy.MOMBS, SamplingStrategy.ANTI_MIXED):
            wanted = [self.loss, self.uncertainty]
        else:  # mombs_loss, ohem, scl_*; random needs none but reports the loss
            wanted = [self.loss]
        return [c for c in wanted if bool(torch.isfinite(c).any())]

    @property
    def has_scores(self) -> bool:
        """Whether a score column that the strategy plans from holds a finite value."""
        return bool(self._columns())

    def difficulty(self) -> torch.Tensor | None:
        """``N`` int64 difficulty scores from the stored scores (``None`` when there are none).

        The sum of the ranks of the strategy's columns: loss and uncertainty for ``mombs``/``anti_mixed`` (a column
        without any finite value is left out), the loss alone for ``mombs_loss`` (and ``ohem``/``scl_*``/
        ``random``), the uncertainty alone for ``mombs_uncertainty``.
        """
        columns = self._columns()
        if not columns:
            return None
        return difficulty_score(*columns, missing=self.missing)

    # ---- self-paced loss weights (scl_*) --------------------------------------------------------------------------

    def self_paced_threshold(self, epoch: int | None = None) -> float | None:
        """``lambda`` of epoch ``epoch`` for ``scl_*``: ``lambda_0 * self_paced_growth ** (epoch - e_0)``.

        ``lambda_0`` is fixed, the first time a weighted epoch ``e_0 >= pivot_epoch`` is asked for with scores, as the
        ``self_paced_start_fraction`` quantile of the recorded losses (:func:`self_paced_start`), and checkpointed;
        normally ``e_0 = pivot_epoch``.

        Args:
            epoch: the epoch, default the one set by :meth:`set_epoch`.

        Returns:
            ``lambda``, or ``None`` for another strategy, before the pivot or without any finite loss.
        """
        epoch = self.epoch if epoch is None else int(epoch)
        if not self.strategy.uses_loss_weights or epoch < self.pivot_epoch:
            return None
        if self.self_paced_start_epoch < 0:
            start = self_paced_start(self.loss, self.self_paced_start_fraction)
            if math.isnan(start):
                return None
            self.self_paced_lambda0, self.self_paced_start_epoch = start, epoch
        since = max(0, epoch - self.self_paced_start_epoch)
        return self_paced_threshold(self.self_paced_lambda0, self.self_paced_growth, since)

    def loss_weights(self, epoch: int | None = None) -> torch.Tensor | None:
        """Per-sample loss weights ``v`` of epoch ``epoch`` (``scl_*``), from each sample's last recorded loss.

        ``scl_hard``: ``v = 1 if l < lambda else 0``; ``scl_linear``: ``v = max(0, 1 - l / lambda)``, with ``lambda``
        of :meth:`self_paced_threshold`. A sample without a loss (never visited) takes the value ``missing`` gives it
        (``median``: the median loss). :class:`monai_ext.handlers.self_paced.SelfPacedLossWeights` hands
        ``v[index]`` to the trainer, which back-propagates ``mean(v * l)``.

        Args:
            epoch: the epoch, default the one set by :meth:`set_epoch`.

        Returns:
            ``N`` float32 weights in ``[0, 1]``, or ``None`` (weight 1) for the other strategies, before the pivot or
            without any finite loss.
        """
        threshold = self.self_paced_threshold(epoch)
        if threshold is None:
            return None
        filled = fill_missing(self.loss, self.missing)
        return self_paced_weights(filled, threshold, self.strategy.self_paced_regularizer)

    # ---- planning -------------------------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that :meth:`__iter__` plans (MONAI's trainers call it with the 1-based ignite epoch)."""
        self.epoch = int(epoch)

    def _generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.seed) + int(epoch))

    def _random_blocks(self, indices: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        perm = indices[torch.randperm(indices.numel(), generator=g)]
        full = (perm.numel() // self.global_batch_size) * self.global_batch_size
        return perm[:full].reshape(-1, self.global_batch_size), perm[full:]

    def _epoch_indices(self, g: torch.Generator, planned: bool) -> torch.Tensor:
        """Every sample once, plus ``ohem``'s ``k`` repeats: the ``k`` highest losses when ``planned`` (ties by
        index, the later one harder), else ``k`` random samples."""
        everyone = torch.arange(self.n)
        k = self.num_repeated
        if k == 0:
            return everyone
        if planned:
            loss_rank = ordinal_rank(fill_missing(self.loss, self.missing))
            repeats = everyone[loss_rank >= self.n - k]
        else:
            repeats = torch.randperm(self.n, generator=g)[:k]
        return torch.cat([everyone, repeats])

    def plan(self, epoch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The global plan of an epoch: full minibatches and the partial one, before rank split and padding.

        Args:
            epoch: the epoch to plan, default the one set by :meth:`set_epoch`.

        Returns:
            ``(M, G)`` int64 full global minibatches in visiting order and the ``R`` (``0 <= R < G``) samples of the
            last, partial one (``M * G + R`` = :attr:`epoch_size`).
        """
        epoch = self.epoch if epoch is None else int(epoch)
        g = self._generator(epoch)
        if epoch < self.pivot_epoch or self.strategy == SamplingStrategy.RANDOM:
            return self._random_blocks(self._epoch_indices(g, planned=False), g)
        if not self.has_scores:
            warnings.warn(
                f"MoMBSSampler: epoch {epoch} >= pivot_epoch {self.pivot_epoch} but no scores were given yet "
                f"(update_scores was never called, or every score is NaN) for what strategy '{self.strategy}' plans "
                "from; sampling this epoch at random. Attach monai_ext.handlers.MoMBSHandler with a PerSampleRecorder "
                "to the trainer (and monai_ext.handlers.MoMBSAssessor when the strategy uses the uncertainty)."
            )
            return self._random_blocks(self._epoch_indices(g, planned=False), g)
        if not self.strategy.plans_by_difficulty:  # scl_* (weights, random order), ohem (hard samples twice)
            return self._random_blocks(self._epoch_indices(g, planned=True), g)
        if self._order is None:  # ranked once per update_scores, not once per epoch plan
            self._order = difficulty_order(self.difficulty())
        layout = None if self.strategy == SamplingStrategy.ANTI_MIXED else self.layout
        return plan_blocks(self._order, self.global_batch_size, layout, g)

    def global_batches(self, epoch: int | None = None) -> list[list[int]]:
        """The global minibatches of an epoch as every rank sees them together (after ``drop_last``/padding).

        Args:
            epoch: the epoch, default the one set by :meth:`set_epoch`.
        """
        blocks, partial = self.plan(epoch)
        out = blocks.tolist()
        if partial.numel() and not self.drop_last:
            out.append(self._pad(partial, blocks).tolist())
        return out

    def _pad(self, partial: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
        world = self.num_replicas
        short = -partial.numel() % world
        if short == 0:
            return partial
        donors = torch.cat([blocks.reshape(-1), partial])
        return torch.cat([partial, donors[:short]])

    def _local_length(self) -> int:
        full, rest = divmod(self.epoch_size, self.global_batch_size)
        length = full * self.batch_size
        if rest and not self.drop_last:
            length += math.ceil(rest / self.num_replicas)
        return length

    def local_indices(self, epoch: int | None = None) -> torch.Tensor:
        """This rank's indices of an epoch, in order: its share of every global minibatch.

        Args:
            epoch: the epoch, default the one set by :meth:`set_epoch`.

        Returns:
            ``len(self)`` int64 dataset indices.
        """
        blocks, partial = self.plan(epoch)
        b, r = self.batch_size, self.rank
        parts = [blocks[:, r * b : (r + 1) * b].reshape(-1)]
        if partial.numel() and not self.drop_last:
            padded = self._pad(partial, blocks)
            share = padded.numel() // self.num_replicas
            parts.append(padded[r * share : (r + 1) * share])
        return torch.cat(parts)

    def __iter__(self) -> Iterator[int]:
        return iter(self.local_indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    # ---- checkpoints ----------------------------------------------------------------------------------------------

    _REQUIRED_STATE = ("loss", "uncertainty", "scores_epoch", "epoch", "seed")

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Scores, epoch, seed and the self-paced start as tensors, so ``torch.load(..., weights_only=True)``
        (``CheckpointLoader``) reads them back: ``loss`` and ``uncertainty`` (``N`` float32, ``NaN`` = none),
        ``scores_epoch``, ``epoch``, ``seed`` (int64 scalars), ``self_paced_lambda0`` (float64 scalar, ``NaN`` = not
        fixed yet) and ``self_paced_start_epoch`` (int64 scalar, -1 = not fixed yet)."""
        return {
            "loss": self.loss.clone(),
            "uncertainty": self.uncertainty.clone(),
            "scores_epoch": torch.tensor(self.scores_epoch, dtype=torch.int64),
            "epoch": torch.tensor(self.epoch, dtype=torch.int64),
            "seed": torch.tensor(int(self.seed), dtype=torch.int64),
            "self_paced_lambda0": torch.tensor(self.self_paced_lambda0, dtype=torch.float64),
            "self_paced_start_epoch": torch.tensor(self.self_paced_start_epoch, dtype=torch.int64),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved.

        A state dict written before the self-paced strategies existed (without ``self_paced_lambda0`` and
        ``self_paced_start_epoch``) still loads: the self-paced start is then not fixed, and an ``scl_*`` run fixes
        ``lambda_0`` from the loaded losses at its next epoch (with a warning when that is after the pivot, since the
        schedule then restarts there).

        Raises:
            KeyError: one of ``loss``, ``uncertainty``, ``scores_epoch``, ``epoch``, ``seed`` is missing.
            ValueError: the saved scores are not ``N`` long (the training datalist changed).
        """
        missing = [k for k in self._REQUIRED_STATE if k not in state_dict]
        if missing:
            raise KeyError(f"MoMBSSampler state_dict misses {missing}; found {sorted(state_dict)}.")
        loss = torch.as_tensor(state_dict["loss"]).reshape(-1)
        uncertainty = torch.as_tensor(state_dict["uncertainty"]).reshape(-1)
        if loss.numel() != self.n or uncertainty.numel() != self.n:
            raise ValueError(
                f"checkpoint scores hold {loss.numel()} samples but this sampler has {self.n}; the training datalist "
                "changed."
            )
        self.loss.copy_(loss)
        self.uncertainty.copy_(uncertainty)
        self._order = None
        self.scores_epoch = int(state_dict["scores_epoch"])
        self.epoch = int(state_dict["epoch"])
        self.seed = int(state_dict["seed"])
        if "self_paced_lambda0" in state_dict and "self_paced_start_epoch" in state_dict:
            self.self_paced_lambda0 = float(state_dict["self_paced_lambda0"])
            self.self_paced_start_epoch = int(state_dict["self_paced_start_epoch"])
            return
        self.self_paced_lambda0, self.self_paced_start_epoch = float("nan"), -1
        if self.strategy.uses_loss_weights and self.epoch >= self.pivot_epoch:
            warnings.warn(
                f"MoMBSSampler: the checkpoint (epoch {self.epoch}) has no self_paced_lambda0 (written before the "
                f"scl strategies existed); '{self.strategy}' restarts its self-paced schedule at the next epoch, "
                "with lambda_0 from the loaded losses."
            )
