# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS scheduler: minibatches of mixed difficulty, planned per epoch from the previous epoch's loss and uncertainty.

Li, Han, Zhou, "MoMBS: Mixed-order minibatch sampling enhances model training from diverse-quality images",
arXiv:2505.18741 (2025). From a pivot epoch on, every minibatch pairs hard samples with easy ones so that each
minibatch carries the same total difficulty; the hardest (under-represented) samples then dominate the gradient of
their minibatch while the mid-difficulty ones (poorly labelled, overfitted) are kept away from them. The baselines
of the paper's comparisons (random sampling, self-paced curriculum learning, online hard example mining) and the
"anti mixed-order" ablation are options of the same sampler, see :class:`SamplingStrategy`.

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

__all__ = ["SamplingStrategy", "MixedLayout", "plan_blocks", "MoMBSSampler"]

_DEFAULT_HARD_FRACTION = 0.1


class SamplingStrategy(StrEnum):
    """How the sampler orders an epoch from the pivot epoch on (before it, every strategy samples at random).

    - ``mombs``: mixed order, every minibatch has the same total difficulty rank (layout: :class:`MixedLayout`).
    - ``random``: a random permutation every epoch (the usual ``shuffle=True``).
    - ``scl``: self-paced curriculum learning as sample dropping: the ``hard_fraction`` of samples with the highest
      loss are left out of the epoch and the same number of lowest-loss samples is visited twice instead (so the
      epoch keeps its length), in random order.
    - ``ohem``: online hard example mining as over-sampling: the ``hard_fraction`` of samples with the highest loss
      are visited twice and the same number of lowest-loss samples is left out (epoch length kept), in random order.
    - ``anti_mixed``: the ablation of the paper: minibatches of similar difficulty (hard with hard, easy with easy),
      consecutive runs of the difficulty order, in random minibatch order.
    """

    MOMBS = "mombs"
    RANDOM = "random"
    SCL = "scl"
    OHEM = "ohem"
    ANTI_MIXED = "anti_mixed"

    @property
    def uses_uncertainty(self) -> bool:
        """Whether the plans of this strategy rank by uncertainty as well as by loss (``mombs``, ``anti_mixed``); the
        others need no uncertainty, so :class:`monai_ext.handlers.mombs_assessor.MoMBSAssessor` skips its ``K``
        passes for them."""
        return self in (SamplingStrategy.MOMBS, SamplingStrategy.ANTI_MIXED)


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
    """Mixed-order minibatch sampler (MoMBS) with random, SCL, OHEM and anti-mixed baselines, ``torchrun`` aware.

    The sampler forms the minibatches itself and yields their indices one after the other: the ``DataLoader`` must
    use ``sampler=`` this sampler, ``shuffle=False`` and the same ``batch_size`` (the bundle sets both from one
    ``batch_size`` id); ``drop_last`` belongs to the sampler (leave the loader's ``False``). It subclasses
    ``torch.utils.data.DistributedSampler`` so that MONAI's ``SupervisedTrainer`` calls :meth:`set_epoch` with the
    1-based ignite epoch at every ``EPOCH_STARTED``; it also works with a single process.

    Each epoch has the same length whatever the strategy, so ignite's ``epoch_length`` stays valid:

    - epochs before ``pivot_epoch`` (or without any scores yet, with a warning) are a random permutation;
    - from ``pivot_epoch`` on, the scores passed to :meth:`update_scores` (by
      :class:`monai_ext.handlers.mombs.MoMBSHandler` at the end of every epoch, from the
      :class:`monai_ext.handlers.per_sample.PerSampleRecorder`) are turned into difficulty (loss rank + uncertainty
      rank, :func:`monai_ext.samplers.ranking.difficulty_score`) and planned by ``strategy``.

    Samples without a score (never visited, ``NaN``) are ranked as ``missing`` says (default: at the median); samples
    not visited in the last epoch keep their last known score. A score column without any finite value is left out
    (loss only, or uncertainty only).

    Under ``torchrun`` (``W`` ranks) the plan is made for global minibatches of ``G = batch_size * W`` samples and
    rank ``r`` takes positions ``[r * batch_size, (r + 1) * batch_size)`` of each, so every rank's local minibatch of
    a ``mirror`` plan (even ``batch_size``) is itself made of whole pairs and the global minibatch is even. The last,
    partial global minibatch (kept unless ``drop_last``) is padded with the first samples of the epoch up to a
    multiple of ``W`` and split evenly, as ``DistributedSampler`` pads, so that every rank runs the same number of
    iterations; with one process nothing is ever repeated.

    Toy ordering, ``N=8``, ``batch_size=4``, one rank, ``mombs``/``mirror``, difficulty ranks = sample indices:
    epoch plans are ``[0, 7, 1, 6, 2, 5, 3, 4]`` or ``[2, 5, 3, 4, 0, 7, 1, 6]`` (minibatch rank sums 14 and 14; the
    minibatch order depends on ``seed + epoch``). With two ranks and ``batch_size=2``: global minibatches
    ``[0, 7, 1, 6]`` and ``[2, 5, 3, 4]``, rank 0 gets ``[0, 7]`` then ``[2, 5]``, rank 1 gets ``[1, 6]`` then
    ``[3, 4]`` (in the same minibatch order on both). With ``N=9`` the middle sample 4 forms the last minibatch
    ``[4]`` (or is dropped with ``drop_last=True``).

    Example::

        sampler = MoMBSSampler(train_ds, batch_size=4, pivot_epoch=20)
        loader = DataLoader(train_ds, batch_size=4, sampler=sampler, shuffle=False)
        # each epoch: recorder collects loss/uncertainty, MoMBSHandler calls sampler.update_scores(...)

    Args:
        dataset: the training dataset (only its length ``N`` is used).
        batch_size: the per-rank minibatch size ``B`` of the ``DataLoader``.
        strategy: a :class:`SamplingStrategy`, default ``"mombs"``.
        layout: a :class:`MixedLayout` for ``mombs``, default ``"mirror"`` (unused by the other strategies).
        pivot_epoch: first (1-based, ignite) epoch planned by ``strategy``, default 20; earlier ones are random.
        hard_fraction: fraction of samples (by loss) that ``scl`` drops / ``ohem`` repeats, in ``[0, 0.5]``,
            ``floor(hard_fraction * N)`` samples; default ``None`` = 0.1 for those strategies (a warning when given to
            another strategy).
        missing: ranking of samples without a score, see :class:`monai_ext.samplers.ranking.MissingScore`.
        num_replicas: number of ranks, default the process group's world size (1 without one).
        rank: this rank, default the process group's rank (0 without one).
        seed: base seed; epoch ``e`` draws from ``torch.Generator().manual_seed(seed + e)``, identically on all ranks.
        drop_last: drop the last, partial global minibatch of every epoch (default ``False``).

    Raises:
        ValueError: ``batch_size`` < 1, ``pivot_epoch`` < 1, ``hard_fraction`` outside ``[0, 0.5]``, an unknown
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
        if hard_fraction is not None and self.strategy not in (SamplingStrategy.SCL, SamplingStrategy.OHEM):
            warnings.warn(f"hard_fraction={hard_fraction} is ignored by strategy '{self.strategy}' (only scl/ohem).")
        fraction = _DEFAULT_HARD_FRACTION if hard_fraction is None else float(hard_fraction)
        if not 0.0 <= fraction <= 0.5:
            raise ValueError(f"hard_fraction must lie in [0, 0.5], got {hard_fraction}.")
        self.hard_fraction = fraction
        self.n = n
        self.batch_size = int(batch_size)
        self.global_batch_size = self.batch_size * num_replicas
        if drop_last and n < self.global_batch_size:
            raise ValueError(
                f"drop_last=True leaves no minibatch: {n} samples < batch_size {self.batch_size} x "
                f"{num_replicas} ranks."
            )
        self.pivot_epoch = int(pivot_epoch)
        self.loss = torch.full((n,), float("nan"), dtype=torch.float32)
        self.uncertainty = torch.full((n,), float("nan"), dtype=torch.float32)
        self.scores_epoch = -1
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

    @property
    def has_scores(self) -> bool:
        """Whether any sample has a finite loss or uncertainty."""
        return bool(torch.isfinite(self.loss).any() or torch.isfinite(self.uncertainty).any())

    def difficulty(self) -> torch.Tensor | None:
        """``N`` int64 difficulty scores from the stored scores (``None`` when there are none).

        Loss rank + uncertainty rank; a column without any finite value is left out.
        """
        columns = [c for c in (self.loss, self.uncertainty) if bool(torch.isfinite(c).any())]
        if not columns:
            return None
        return difficulty_score(*columns, missing=self.missing)

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

    def _swap_fraction(self, g: torch.Generator, repeat_hard: bool) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(math.floor(self.hard_fraction * self.n + 1e-9))
        loss_rank = ordinal_rank(fill_missing(self.loss, self.missing))
        easy, hard = loss_rank < k, loss_rank >= self.n - k
        everyone = torch.arange(self.n)
        if repeat_hard:  # ohem: the k easiest out, the k hardest twice
            indices = torch.cat([everyone[~easy], everyone[hard]])
        else:  # scl: the k hardest out, the k easiest twice
            indices = torch.cat([everyone[~hard], everyone[easy]])
        return self._random_blocks(indices, g)

    def plan(self, epoch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The global plan of an epoch: full minibatches and the partial one, before rank split and padding.

        Args:
            epoch: the epoch to plan, default the one set by :meth:`set_epoch`.

        Returns:
            ``(M, G)`` int64 full global minibatches in visiting order and the ``R`` (``0 <= R < G``) samples of the
            last, partial one.
        """
        epoch = self.epoch if epoch is None else int(epoch)
        g = self._generator(epoch)
        if epoch < self.pivot_epoch or self.strategy == SamplingStrategy.RANDOM:
            return self._random_blocks(torch.arange(self.n), g)
        if not self.has_scores:
            warnings.warn(
                f"MoMBSSampler: epoch {epoch} >= pivot_epoch {self.pivot_epoch} but no scores were given yet "
                f"(update_scores was never called, or every score is NaN); sampling this epoch at random. Attach "
                "monai_ext.handlers.MoMBSHandler with a PerSampleRecorder to the trainer."
            )
            return self._random_blocks(torch.arange(self.n), g)
        if self.strategy in (SamplingStrategy.SCL, SamplingStrategy.OHEM):
            return self._swap_fraction(g, repeat_hard=self.strategy == SamplingStrategy.OHEM)
        if self._order is None:  # ranked once per update_scores, not once per epoch plan
            self._order = difficulty_order(self.difficulty())
        order = self._order
        layout = self.layout if self.strategy == SamplingStrategy.MOMBS else None
        return plan_blocks(order, self.global_batch_size, layout, g)

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
        full, rest = divmod(self.n, self.global_batch_size)
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

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Scores, epoch and seed as tensors, so ``torch.load(..., weights_only=True)`` (``CheckpointLoader``) reads
        them back: ``loss`` and ``uncertainty`` (``N`` float32, ``NaN`` = none), ``scores_epoch``, ``epoch``, ``seed``
        (int64 scalars)."""
        return {
            "loss": self.loss.clone(),
            "uncertainty": self.uncertainty.clone(),
            "scores_epoch": torch.tensor(self.scores_epoch, dtype=torch.int64),
            "epoch": torch.tensor(self.epoch, dtype=torch.int64),
            "seed": torch.tensor(int(self.seed), dtype=torch.int64),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved.

        Raises:
            KeyError: an entry is missing.
            ValueError: the saved scores are not ``N`` long (the training datalist changed).
        """
        missing = [k for k in ("loss", "uncertainty", "scores_epoch", "epoch", "seed") if k not in state_dict]
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
