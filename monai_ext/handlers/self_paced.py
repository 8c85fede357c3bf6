# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ignite handler that hands the sampler's self-paced (SCL) loss weights to the per-sample trainer.

For the ``scl_hard``/``scl_linear`` strategies of :class:`monai_ext.samplers.MoMBSSampler` it writes, at every
``FORWARD_COMPLETED``, the weight ``v`` of each sample of the batch into ``engine.state.output["loss_weight"]``, so
that :class:`monai_ext.engines.PerSampleTrainer` back-propagates ``mean(v * l)`` (the self-paced objective
``sum_i v_i l_i`` of Kumar et al., NIPS 2010) while the recorded ``loss_per_sample`` stays unweighted. The weights
of an epoch are computed once, at its first iteration, from each sample's last recorded loss
(:meth:`monai_ext.samplers.MoMBSSampler.loss_weights`). For every other strategy, and before the pivot, it writes
nothing (weight 1).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
import torch.distributed as dist
from ignite.engine import Engine
from monai.engines.utils import IterationEvents

from monai_ext.engines.per_sample import PerSampleKeys
from monai_ext.samplers.mombs import MoMBSSampler

__all__ = ["SelfPacedLossWeights"]


def _is_first_rank() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class SelfPacedLossWeights:
    """Write ``sampler.loss_weights(epoch)[index]`` into ``engine.state.output["loss_weight"]`` every iteration.

    Once per epoch (at its first iteration) it logs ``lambda`` and the fraction of samples with a weight above 0, and,
    with a ``summary_writer``, adds the TensorBoard scalars ``self_paced/lambda`` and
    ``self_paced/fraction_weighted`` at that epoch.

    Bundle wiring (``bundles/covid_ct_mombs_segmentation/configs/train.json``): the top-level id
    ``self_paced_weights``::

        {"_target_": "monai_ext.handlers.SelfPacedLossWeights", "sampler": "@train#sampler",
         "log_dir": "@output_dir"}

    listed in ``train#handlers`` as ``{"_target_": "@self_paced_weights", "_mode_": "callable"}``; it is always built
    and does nothing unless ``sampling_strategy`` is ``scl_hard``/``scl_linear``.

    Args:
        sampler: the training ``DataLoader``'s :class:`MoMBSSampler` (its ``lambda_0`` is in its ``state_dict``).
        summary_writer: a ``torch.utils.tensorboard.SummaryWriter`` for the per-epoch scalars, default none.
        name: logger name; ``None`` uses ``engine.logger``.
        log_dir: without ``summary_writer``, a TensorBoard folder: a ``SummaryWriter`` is made there (on the first
            rank only, and only once there are weights to log); default none (logger only).
    """

    def __init__(
        self,
        sampler: MoMBSSampler,
        summary_writer: Any | None = None,
        name: str | None = None,
        log_dir: str | os.PathLike | None = None,
    ) -> None:
        self.sampler = sampler
        self.summary_writer = summary_writer
        self.log_dir = log_dir
        self.logger = logging.getLogger(name)
        self._name = name
        self._epoch: int | None = None
        self._weights: torch.Tensor | None = None

    def attach(self, engine: Engine) -> None:
        """Run at every ``IterationEvents.FORWARD_COMPLETED`` of ``engine`` (a per-sample trainer)."""
        if self._name is None:
            self.logger = engine.logger
        if not engine.has_event_handler(self, IterationEvents.FORWARD_COMPLETED):
            engine.add_event_handler(IterationEvents.FORWARD_COMPLETED, self)

    def weights_of_epoch(self, epoch: int) -> torch.Tensor | None:
        """The ``N`` weights of ``epoch`` (computed and logged once per epoch), ``None`` for weight 1."""
        if self._epoch != epoch:
            self._epoch = epoch
            self._weights = self.sampler.loss_weights(epoch)
            if self._weights is not None:
                self._log(epoch, self.sampler.self_paced_threshold(epoch), self._weights)
        return self._weights

    def _log(self, epoch: int, threshold: float, weights: torch.Tensor) -> None:
        fraction = float((weights > 0).float().mean())
        self.logger.info(
            f"SelfPacedLossWeights: epoch {epoch} '{self.sampler.strategy}' lambda={threshold:.6g}, "
            f"{fraction:.1%} of {weights.numel()} samples have a weight > 0 (mean weight {float(weights.mean()):.4f})."
        )
        if self.summary_writer is None and self.log_dir is not None and _is_first_rank():
            from torch.utils.tensorboard import SummaryWriter

            self.summary_writer = SummaryWriter(log_dir=str(self.log_dir))
        if self.summary_writer is not None:
            self.summary_writer.add_scalar("self_paced/lambda", threshold, epoch)
            self.summary_writer.add_scalar("self_paced/fraction_weighted", fraction, epoch)

    def __call__(self, engine: Engine) -> None:
        """Put the weights of the batch's samples into ``engine.state.output["loss_weight"]``."""
        weights = self.weights_of_epoch(int(engine.state.epoch))
        if weights is None:
            return
        index = torch.as_tensor(engine.state.output[PerSampleKeys.INDEX.value])
        batch_weights = weights[index.detach().to("cpu", torch.long)]
        engine.state.output[PerSampleKeys.LOSS_WEIGHT.value] = batch_weights.to(index.device)
