# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A run killed after epoch ``k`` and resumed from its checkpoint ends exactly where an uninterrupted run ends, for
the training bundles (``configs/demo.json`` overlay, small networks, ``num_workers=0``, CPU).

The kill is simulated by terminating the ``N``-epoch run at the end of epoch ``k`` (after the bundle's own handlers,
so the epoch's checkpoint is written as in a run that dies during epoch ``k + 1``); a *new* workflow then resumes from
the checkpoint with ``resume_ckpt`` and trains to epoch ``N``. Every tensor of the two final checkpoints (weights,
method state, optimizer, scheduler, trainer counters, random states) must be identical: both runs execute the same
CPU operations in the same order, so equality is bitwise (``torch.equal``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.handlers import from_engine

from monai_ext.bundle.zoo import write_demo_data

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
NVUM, MOMBS = BUNDLES / "cxr_nvum_classification", BUNDLES / "covid_ct_mombs_segmentation"
ROP = BUNDLES / "rop_meta_softlabel_classification"
FPSM = BUNDLES / "cxr_lt_fpsm_classification"
TRAIN = ["configs/train.json", "configs/demo.json"]
SMALL = {"network_def": "%small_network_def", "num_workers": 0}

pytestmark = pytest.mark.slow


def _differences(a: object, b: object, path: str = "") -> list[str]:
    """Paths at which two loaded checkpoints differ (tensors compared with ``torch.equal``, NaNs equal)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}/{i}")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        same = a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))
        same = same and (not a.is_floating_point() or torch.equal(a.isnan(), b.isnan()))
        return [] if same else [f"{path}: tensors differ"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def _terminate_after(epoch: int):
    """A hook that stops the trainer at the end of ``epoch``, after the bundle's handlers (its checkpoint saved)."""

    def hook(wf):
        trainer = wf.parser.get_parsed_content("train#trainer")
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=epoch), lambda engine: engine.terminate())

    return hook


def _record_losses(losses: dict[int, torch.Tensor]):
    """A hook that keeps every iteration's training loss (it depends on every random draw of the step, such as the
    official NVUM mode's memory mixing, also where a draw leaves the weights unchanged, e.g. with
    ``detach_reg_prob=True``)."""

    def hook(wf):
        def record(engine):
            loss = from_engine(["loss"], first=True)(engine.state.output)  # as the bundle's StatsHandler reads it
            losses[engine.state.iteration] = torch.as_tensor(loss).detach().clone()

        wf.parser.get_parsed_content("train#trainer").add_event_handler(Events.ITERATION_COMPLETED, record)

    return hook


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


def _check_resume_reproduces(run_bundle, bundle: Path, out: Path, epochs: int, killed_after: int, **override):
    run = dict(epochs=epochs, **SMALL, **override)
    full_losses: dict[int, torch.Tensor] = {}
    run_bundle(
        bundle, TRAIN, hooks=[_record_losses(full_losses)], ckpt_dir=str(out / "full" / "models"),
        output_dir=str(out / "full" / "eval"), **run,
    )  # fmt: skip
    killed = out / "killed" / "models"
    run_bundle(
        bundle, TRAIN, hooks=[_terminate_after(killed_after)], ckpt_dir=str(killed),
        output_dir=str(out / "killed" / "eval"), **run,
    )  # fmt: skip
    epoch_file = _load(killed / f"checkpoint_epoch={killed_after}.pt")  # what a killed run leaves behind
    trainer = epoch_file["trainer"]  # ignite keeps iteration and epoch_length, not the epoch
    assert int(trainer["iteration"]) == killed_after * int(trainer["epoch_length"])
    assert not _differences(epoch_file, _load(killed / "last.pt"))  # nothing drew randomness after the saver
    resumed_losses: dict[int, torch.Tensor] = {}
    run_bundle(
        bundle, TRAIN, hooks=[_record_losses(resumed_losses)], ckpt_dir=str(out / "resumed" / "models"),
        output_dir=str(out / "resumed" / "eval"), resume_ckpt=str(killed / "last.pt"), **run,
    )  # fmt: skip
    full, resumed = _load(out / "full" / "models" / "last.pt"), _load(out / "resumed" / "models" / "last.pt")
    assert int(resumed["trainer"]["iteration"]) == epochs * int(resumed["trainer"]["epoch_length"])
    assert resumed_losses and min(resumed_losses) == int(trainer["iteration"]) + 1
    differences = _differences({i: full_losses[i] for i in resumed_losses}, resumed_losses, "/loss at iteration")
    differences += _differences(full, resumed)
    assert not differences, "the resumed run differs from the uninterrupted one at:\n" + "\n".join(differences[:20])
    assert "rng" in full, f"the checkpoint holds no random states: {sorted(full)}"


def test_nvum_resumed_run_equals_the_uninterrupted_run(cxr_demo, run_bundle, tmp_path):
    """Augmentation (random crop scale, flips), shuffle and the validation loader's draws all continue exactly."""
    _check_resume_reproduces(run_bundle, NVUM, tmp_path, epochs=3, killed_after=1, dataset_dir=str(cxr_demo / "nih"))


def test_nvum_official_mode_resumed_run_equals_the_uninterrupted_run(cxr_demo, run_bundle, tmp_path):
    """The official mode mixes memory rows with NVUMLoss's own generator, which the checkpoint must carry too."""
    _check_resume_reproduces(
        run_bundle, NVUM, tmp_path, epochs=2, killed_after=1, dataset_dir=str(cxr_demo / "nih"), nvum_mode="official"
    )


def test_mombs_resumed_run_equals_the_uninterrupted_run(demo_root, run_bundle, tmp_path):
    """MoMBS plans (sampler), disturbance noise (assessor) and flips/rotations (transforms) all continue exactly;
    the kill falls after the pivot, so the resumed epochs are planned from restored scores."""
    covid = write_demo_data(demo_root, ["covid_medseg"]) / "covid_medseg"
    _check_resume_reproduces(
        run_bundle, MOMBS, tmp_path, epochs=4, killed_after=2, pivot_epoch=2, dataset_dir=str(covid)
    )


def test_rop_meta_soft_label_resumed_run_equals_the_uninterrupted_run(rop_demo, run_bundle, tmp_path):
    """Killed after the first meta epoch (no warm-up): the soft labels (label logits and update counts), shuffles,
    flips and the meta loader's batches all continue exactly. 92 training images in batches of 20 make 5 iterations
    per epoch, 7 meta images in batches of 2 (last partial batch dropped) 3 meta batches per pass: a meta pass
    straddles the kill."""
    _check_resume_reproduces(
        run_bundle, ROP, tmp_path, epochs=2, killed_after=1, dataset_dir=str(rop_demo), warmup_epochs=0,
        batch_size=20, meta_batch_size=2, resize_size=40, image_size=32,
    )  # fmt: skip


def test_fpsm_with_on_the_fly_dadam_resumed_run_equals_the_uninterrupted_run(cxr_lt_demo, run_bundle, tmp_path):
    """FPSM {4, 3} with DADAM on every eligible item: the DADAM transform's draws (tail class, patches, placement),
    crops, rotations and shuffles all continue exactly. About 70 training images in batches of 16 make 4 iterations
    per epoch."""
    _check_resume_reproduces(
        run_bundle, FPSM, tmp_path, epochs=2, killed_after=1, dataset_dir=str(cxr_lt_demo / "mimic_cxr_lt"),
        box_sources={"nih": str(cxr_lt_demo / "nih"), "vindr": str(cxr_lt_demo / "vindr")}, dadam_prob=1.0,
        image_size=32, fpsm_stages=[4, 3],
    )  # fmt: skip
