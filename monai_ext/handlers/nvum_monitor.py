# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""What drives NVUM's training, logged while it trains: the gradient of each loss term and the memory's range.

NVUM's loss (:class:`monai_ext.losses.NVUMLoss`) is ``BCE + reg_weight * reg``. When the regulariser's gradient
outgrows the BCE's, the network follows the memory instead of the labels; in paper mode the regulariser is
``log(1 - sigmoid(t_i . p_i))``, whose gradient scales with the memory entries ``t_ic = EMA(z_ic - log pi_c)``, and
a dot product over ``C`` classes of large prior-corrected entries saturates it. :class:`NVUMMonitor` records both
gradients (with respect to the batch logits, the quantity Eq. 4 of the paper gives) and the memory's statistics
every ``interval`` iterations, to TensorBoard and to a CSV, so that a run that collapses shows why.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents
from monai.utils.enums import CommonKeys as Keys

from monai_ext.engines.per_sample import PerSampleKeys

__all__ = ["NVUMMonitor", "MONITOR_COLUMNS"]

logger = logging.getLogger(__name__)

#: the CSV columns, in order
MONITOR_COLUMNS = (
    "iteration",
    "epoch",
    "bce",
    "reg",
    "bce_grad_norm",
    "reg_grad_norm",
    "grad_ratio",
    "memory_min",
    "memory_max",
    "memory_abs_mean",
    "memory_dot_p_mean",
    "sigmoid_dot_mean",
)


class NVUMMonitor:
    """Every ``interval`` iterations: the Frobenius norms of ``d mean(BCE) / dz`` and ``d mean(reg_weight * reg) / dz``
    over the batch logits ``z`` (``B C``), their ratio (regulariser / BCE), the range and mean absolute value of the
    memory rows updated so far, and the batch means of ``t_i . p_i`` and ``sigmoid(t_i . p_i)`` (Eq. 2's argument).

    The terms come from :meth:`monai_ext.losses.NVUMLoss.loss_terms` on the batch's memory rows as updated for this
    iteration (without official mode's batch mixing, so that the monitor draws no random numbers and a monitored
    run trains exactly as an unmonitored one). Attached to a trainer whose ``loss_function`` is not an
    :class:`NVUMLoss` (the BCE baseline), it attaches nothing.

    Args:
        loss: the trainer's loss.
        interval: iterations between records, >= 1.
        output_file: CSV written at every epoch end and at the end of the run (columns :data:`MONITOR_COLUMNS`);
            ``None``: no CSV.
        log_dir: TensorBoard folder: scalars ``nvum/<column>`` go to a ``SummaryWriter`` made there at ``attach``
            (TensorBoard shows it beside ``TensorBoardStatsHandler``'s curves of the same folder); ``None``: none.
        enabled: ``False`` attaches nothing (a bundle switch).

    Raises:
        ValueError: ``interval < 1``.
    """

    def __init__(
        self,
        loss: torch.nn.Module,
        interval: int = 20,
        output_file: str | os.PathLike | None = None,
        log_dir: str | os.PathLike | None = None,
        enabled: bool = True,
    ) -> None:
        if int(interval) < 1:
            raise ValueError(f"NVUMMonitor interval must be >= 1, got {interval}.")
        self.loss, self.interval = loss, int(interval)
        self.output_file = None if output_file is None else Path(output_file)
        self.log_dir, self.enabled = log_dir, bool(enabled)
        self.summary_writer: Any | None = None
        self.records: list[dict[str, float]] = []

    def attach(self, engine: Engine) -> None:
        """Record at ``IterationEvents.LOSS_COMPLETED`` (the logits are still in ``engine.state.output``), write the
        CSV at ``EPOCH_COMPLETED`` and ``COMPLETED``; nothing for a loss without memory or when disabled."""
        from monai_ext.losses.nvum import NVUMLoss

        if not self.enabled or not isinstance(self.loss, NVUMLoss):
            logger.info("NVUMMonitor: the loss holds no NVUM memory (or the monitor is disabled); nothing recorded.")
            return
        engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self)
        if self.log_dir is not None and self.summary_writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.summary_writer = SummaryWriter(log_dir=str(self.log_dir))
            engine.add_event_handler(Events.COMPLETED, lambda _: self.summary_writer.flush())
        if self.output_file is not None:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self.write)
            engine.add_event_handler(Events.COMPLETED, self.write)

    def __call__(self, engine: Engine) -> None:
        if (engine.state.iteration - 1) % self.interval:
            return
        output = engine.state.output
        record = self.measure(output[Keys.PRED], output[Keys.LABEL], output[PerSampleKeys.INDEX])
        record.update(iteration=float(engine.state.iteration), epoch=float(engine.state.epoch))
        self.records.append(record)
        if self.summary_writer is not None:
            for key in MONITOR_COLUMNS[2:]:
                self.summary_writer.add_scalar(f"nvum/{key}", record[key], engine.state.iteration)

    @torch.no_grad()
    def _memory_stats(self) -> dict[str, float]:
        visited = self.loss.num_updates > 0
        rows = self.loss.memory[visited]
        if rows.numel() == 0:
            return {"memory_min": float("nan"), "memory_max": float("nan"), "memory_abs_mean": float("nan")}
        return {
            "memory_min": float(rows.min()),
            "memory_max": float(rows.max()),
            "memory_abs_mean": float(rows.abs().mean()),
        }

    def measure(self, logits: torch.Tensor, target: torch.Tensor, index: torch.Tensor) -> dict[str, float]:
        """The record of one batch (every column of :data:`MONITOR_COLUMNS` but ``iteration`` and ``epoch``).

        Args:
            logits: ``B C`` logits (detached here).
            target: ``B C`` labels.
            index: ``B`` dataset indices.
        """
        index = torch.as_tensor(index).to(device=self.loss.memory.device, dtype=torch.long)
        rows = self.loss.memory[index].detach()
        with torch.enable_grad():
            z = torch.as_tensor(logits).detach().float().requires_grad_(True)
            bce, reg = self.loss.loss_terms(z, torch.as_tensor(target).float(), rows)
            (g_bce,) = torch.autograd.grad(bce.mean(), z, retain_graph=True)
            weighted = self.loss.reg_weight * reg.mean()
            g_reg = torch.autograd.grad(weighted, z)[0] if weighted.requires_grad else torch.zeros_like(z)
        p = torch.sigmoid(z.detach())
        dot = (rows.to(p.device) * p).sum(dim=1)
        bce_norm, reg_norm = float(g_bce.norm()), float(g_reg.norm())
        return {
            "bce": float(bce.detach().mean()),
            "reg": float(reg.detach().mean()),
            "bce_grad_norm": bce_norm,
            "reg_grad_norm": reg_norm,
            "grad_ratio": reg_norm / bce_norm if bce_norm > 0 else float("nan"),
            **self._memory_stats(),
            "memory_dot_p_mean": float(dot.mean()),
            "sigmoid_dot_mean": float(torch.sigmoid(dot).mean()),
        }

    def write(self, engine: Engine | None = None) -> None:
        """Write every record so far to ``output_file`` (replaced as a whole: the file always holds the full run)."""
        if self.output_file is None:
            return
        self.output_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.output_file.with_name(self.output_file.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=MONITOR_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.records)
        os.replace(tmp, self.output_file)
