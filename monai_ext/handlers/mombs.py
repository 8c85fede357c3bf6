# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ignite handler that re-plans the MoMBS sampler every epoch and draws the difficulty map.

At the end of every training epoch it reads the per-sample loss and uncertainty that a
:class:`monai_ext.handlers.per_sample.PerSampleRecorder` collected (identical on every rank under ``torchrun``) and
hands them to :meth:`monai_ext.samplers.MoMBSSampler.update_scores`, so that the next epoch is planned from them.
Once the next epoch is at or after the sampler's pivot, rank 0 also writes the difficulty map of Li, Han, Zhou,
arXiv:2505.18741 (their Fig. 6: loss rank against uncertainty rank) as PNG and the per-sample quadrant categories
(:class:`monai_ext.samplers.ranking.DifficultyCategory`) as CSV.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from monai_ext.engines.per_sample import PerSampleKeys
from monai_ext.handlers.per_sample import PerSampleRecorder
from monai_ext.samplers.mombs import MoMBSSampler
from monai_ext.samplers.ranking import DifficultyCategory, categorize, difficulty_score, fill_missing, ordinal_rank

__all__ = ["DIFFICULTY_COLUMNS", "difficulty_table", "save_difficulty_map_png", "MoMBSHandler"]

DIFFICULTY_COLUMNS = (
    "index",
    "loss",
    "uncertainty",
    "loss_rank",
    "uncertainty_rank",
    "difficulty",
    "difficulty_rank",
    "category",
)
_COLOURS = {
    DifficultyCategory.WELL_REPRESENTED.value: "C2",
    DifficultyCategory.OVERFITTED.value: "C1",
    DifficultyCategory.POORLY_LABELLED.value: "C3",
    DifficultyCategory.UNDER_REPRESENTED.value: "C0",
}


def difficulty_table(loss: torch.Tensor, uncertainty: torch.Tensor, missing: str = "median") -> pd.DataFrame:
    """One row per sample: scores, their 0-based ranks, difficulty, difficulty rank and quadrant category.

    Args:
        loss: ``N`` per-sample losses (``NaN`` = no score, ranked as ``missing`` says).
        uncertainty: ``N`` per-sample uncertainties.
        missing: a :class:`monai_ext.samplers.ranking.MissingScore`, default ``"median"``.

    Returns:
        DataFrame with :data:`DIFFICULTY_COLUMNS`, rows in sample-index order; ``difficulty_rank`` is the position in
        the easiest-first order (ties by index).
    """
    loss_rank = ordinal_rank(fill_missing(loss, missing))
    unc_rank = ordinal_rank(fill_missing(uncertainty, missing))
    score = difficulty_score(loss, uncertainty, missing)
    return pd.DataFrame(
        {
            "index": np.arange(loss_rank.numel()),
            "loss": torch.as_tensor(loss).double().numpy(),
            "uncertainty": torch.as_tensor(uncertainty).double().numpy(),
            "loss_rank": loss_rank.numpy(),
            "uncertainty_rank": unc_rank.numpy(),
            "difficulty": score.numpy(),
            "difficulty_rank": ordinal_rank(score).numpy(),
            "category": categorize(loss, uncertainty, missing),
        },
        columns=list(DIFFICULTY_COLUMNS),
    )


def save_difficulty_map_png(
    table: pd.DataFrame, path: str | os.PathLike, title: str | None = None, max_points: int = 50_000, dpi: int = 100
) -> Path:
    """Scatter of loss rank (x) against uncertainty rank (y), coloured by quadrant, with the median lines.

    Drawn with ``Figure`` + ``FigureCanvasAgg`` (no pyplot state). With more than ``max_points`` samples every
    ``ceil(N / max_points)``-th sample (by index) is drawn, the counts in the legend are those of all samples.

    Args:
        table: a :func:`difficulty_table`.
        path: the PNG file; its folder is created.
        title: figure title, default none.
        max_points: most points drawn, default 50,000.
        dpi: resolution, default 100.

    Returns:
        the path written.

    Raises:
        ValueError: ``max_points`` < 1.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}.")
    n = len(table)
    step = max(1, -(-n // max_points))
    shown = table.iloc[::step]
    fig = Figure(figsize=(6.5, 6.0))
    ax = fig.add_subplot(1, 1, 1)
    counts = table["category"].value_counts()
    size = 12.0 if len(shown) <= 2_000 else 2.0
    for category in DifficultyCategory:
        rows = shown[shown["category"] == category.value]
        ax.scatter(
            rows["loss_rank"],
            rows["uncertainty_rank"],
            s=size,
            c=_COLOURS[category.value],
            label=f"{category.value} ({int(counts.get(category.value, 0))})",
            rasterized=True,
            linewidths=0,
        )
    middle = (n - 1) / 2
    ax.axvline(middle, color="0.4", linestyle="--", linewidth=0.8)
    ax.axhline(middle, color="0.4", linestyle="--", linewidth=0.8)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_xlabel("loss rank (0 = lowest loss)")
    ax.set_ylabel("uncertainty rank (0 = lowest uncertainty)")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize="small", markerscale=3.0)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out, dpi=dpi, format="png", bbox_inches="tight")
    return out


class MoMBSHandler:
    """Feed the recorder's per-sample scores to a :class:`MoMBSSampler` at every ``EPOCH_COMPLETED``.

    After epoch ``e`` the scores of every sample's last visit (``NaN`` for samples never visited) become the scores
    that plan epoch ``e + 1`` (:meth:`MoMBSSampler.update_scores`); the sampler is then re-planned when the trainer
    sets epoch ``e + 1`` at ``EPOCH_STARTED``. Every rank must run this handler (the plan is computed on each rank
    from the identical recorder table); only rank 0 writes files.

    When ``output_dir`` is given, ``e + 1 >= sampler.pivot_epoch``, the sampler's strategy ranks by uncertainty
    (:attr:`monai_ext.samplers.SamplingStrategy.uses_uncertainty`; the other strategies get no map) and some
    uncertainty is known (else a warning), rank 0 writes ``<output_dir>/difficulty_map_epoch<e:04d>.png``
    (:func:`save_difficulty_map_png`) and ``<output_dir>/difficulty_epoch<e:04d>.csv`` (:func:`difficulty_table`,
    columns :data:`DIFFICULTY_COLUMNS`).

    Bundle wiring (see ``bundles/covid_ct_mombs_segmentation/configs/train.json``): ``train#sampler`` is the
    :class:`MoMBSSampler` (also ``train#dataloader#sampler``, with ``shuffle`` false and the same ``batch_size``),
    ``mombs_recorder`` a ``PerSampleRecorder`` with ``"keys": ["loss_per_sample", "uncertainty"]`` and
    ``mombs_handler``::

        {"_target_": "monai_ext.handlers.MoMBSHandler", "sampler": "@train#sampler",
         "recorder": "@mombs_recorder", "output_dir": "@difficulty_dir"}

    both listed in ``train#handlers`` by reference (the recorder before the handler).

    Args:
        sampler: the training ``DataLoader``'s sampler.
        recorder: the recorder attached to the same trainer.
        loss_key: recorder column of the per-sample loss, default ``"loss_per_sample"``.
        uncertainty_key: recorder column of the per-sample uncertainty, default ``"uncertainty"``; ``None`` plans
            from the loss alone (then no difficulty map can be drawn).
        output_dir: folder for the PNG/CSV files; ``None`` (default) writes nothing.
        max_points: most points drawn in the PNG, default 50,000.
        name: logger name; ``None`` uses ``engine.logger``.
        datalist: the training datalist (``train#datalist``); when given, the CSV also has the columns
            ``datalist_keys`` of each sample (``index`` is the datalist position), so that a flagged sample can be
            opened directly. Default none.
        datalist_keys: item keys copied into the CSV, default ``("image", "label")``; a key absent from an item
            gives an empty cell.

    Raises:
        KeyError: ``loss_key`` or ``uncertainty_key`` is not a column of ``recorder``.
        ValueError: ``sampler`` and ``recorder`` disagree on the number of samples, ``datalist`` has another length,
            or ``output_dir`` is given without an ``uncertainty_key``.
    """

    def __init__(
        self,
        sampler: MoMBSSampler,
        recorder: PerSampleRecorder,
        loss_key: str = PerSampleKeys.LOSS_PER_SAMPLE,
        uncertainty_key: str | None = "uncertainty",
        output_dir: str | os.PathLike | None = None,
        max_points: int = 50_000,
        name: str | None = None,
        datalist: Sequence[Mapping] | None = None,
        datalist_keys: Sequence[str] = ("image", "label"),
    ) -> None:
        if datalist is not None and len(datalist) != recorder.num_samples:
            raise ValueError(
                f"datalist has {len(datalist)} items but the recorder {recorder.num_samples} samples; pass the "
                "training datalist the sampler's dataset was built from."
            )
        for key in (loss_key, uncertainty_key):
            if key is not None and key not in recorder.keys:
                raise KeyError(f"the recorder has no column '{key}'; its columns are {recorder.keys}.")
        if recorder.num_samples != sampler.n:
            raise ValueError(
                f"the recorder holds {recorder.num_samples} samples but the sampler {sampler.n}; both must cover the "
                "whole training datalist."
            )
        if output_dir is not None and uncertainty_key is None:
            raise ValueError("the difficulty map (output_dir) needs uncertainty_key; set it or output_dir=None.")
        self.sampler = sampler
        self.recorder = recorder
        self.loss_key = str(loss_key)
        self.uncertainty_key = None if uncertainty_key is None else str(uncertainty_key)
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.max_points = int(max_points)
        self.datalist = datalist
        self.datalist_keys = [str(k) for k in datalist_keys]
        self.logger = logging.getLogger(name)
        self._name = name

    def attach(self, engine: Engine) -> None:
        """Run at every ``EPOCH_COMPLETED`` of ``engine`` (the trainer the recorder is attached to)."""
        if self._name is None:
            self.logger = engine.logger
        if not engine.has_event_handler(self, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        """Pass the recorder's scores to the sampler; write the difficulty map on rank 0 after the pivot."""
        epoch = int(engine.state.epoch)
        loss = self.recorder[self.loss_key].clone()
        uncertainty = None if self.uncertainty_key is None else self.recorder[self.uncertainty_key].clone()
        self.sampler.update_scores(loss, uncertainty, epoch=epoch)
        if epoch + 1 < self.sampler.pivot_epoch:
            return
        known = int(self.recorder.visited.sum())
        self.logger.info(
            f"MoMBSHandler: epoch {epoch + 1} is planned by '{self.sampler.strategy}' from the scores of {known} of "
            f"{self.recorder.num_samples} samples."
        )
        if self.output_dir is None or uncertainty is None or not self.sampler.strategy.uses_uncertainty:
            return  # the map plots the uncertainty, which the loss-only strategies neither assess nor use
        if not bool(torch.isfinite(uncertainty).any()):
            warnings.warn(
                f"MoMBSHandler: no sample has a finite '{self.uncertainty_key}' after epoch {epoch}; the next epoch is "
                "planned from the loss alone and no difficulty map is written (is the uncertainty recorded?)."
            )
            return
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return
        table = difficulty_table(loss, uncertainty, self.sampler.missing)
        if self.datalist is not None:
            for key in self.datalist_keys:
                table[key] = [str(item.get(key, "")) for item in self.datalist]
        self.output_dir.mkdir(parents=True, exist_ok=True)
        table.to_csv(self.output_dir / f"difficulty_epoch{epoch:04d}.csv", index=False)
        save_difficulty_map_png(
            table,
            self.output_dir / f"difficulty_map_epoch{epoch:04d}.png",
            title=f"MoMBS difficulty map after epoch {epoch} ({len(table)} samples)",
            max_points=self.max_points,
        )
