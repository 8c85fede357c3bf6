# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""End-to-end runs of ``bundles/covid_ct_mombs_segmentation`` with its ``configs/demo.json`` small-run overlay on
tiny demo data (1-3 epochs, CPU): MoMBS state in checkpoints, resume, difficulty maps, baselines, training fractions,
evaluation, and bad inputs."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from ignite.engine import Events
from monai.engines.utils import IterationEvents

from monai_ext.bundle.workflow import bundle_parser
from monai_ext.bundle.zoo import write_demo_data
from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.handlers.mombs import DIFFICULTY_COLUMNS
from monai_ext.samplers import MoMBSSampler

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "covid_ct_mombs_segmentation"
DEMO, MULTI_GPU = "configs/demo.json", "configs/multi_gpu_train.json"
TRAIN = ["configs/train.json", DEMO]
EVALUATE = [*TRAIN, "configs/evaluate.json"]
BATCH = json.loads((BUNDLE / DEMO).read_text())["batch_size"]  # the demo overlay's batch size (8)
SMALL = {"network_def": "%small_network_def"}  # the demo overlay's small SplitUNet (the benchmark's), for speed
PIVOT = 2
METHOD_KEYS = {"model", "optimizer", "lr_scheduler", "trainer", "rng"}
METHOD_KEYS |= {"mombs_sampler", "mombs_scores", "mombs_assessor"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def covid_demo(demo_root) -> Path:
    """MedSeg-layout demo data (``size=0.4``: 24 training slices of fold 0)."""
    return write_demo_data(demo_root, ["covid_medseg"]) / "covid_medseg"


def _train(run_bundle, dataset_dir: Path, out: Path, hooks=(), **override):
    settings = {"epochs": PIVOT, "pivot_epoch": PIVOT, **SMALL, **override}
    return run_bundle(
        BUNDLE, TRAIN, hooks=hooks, dataset_dir=str(dataset_dir), ckpt_dir=str(out / "models"),
        output_dir=str(out / "eval"), **settings,
    )  # fmt: skip


@pytest.fixture(scope="session")
def trained(covid_demo, run_bundle, tmp_path_factory) -> SimpleNamespace:
    """Two MoMBS epochs (the second planned from the first's scores), shared by the tests that need a checkpoint."""
    out = tmp_path_factory.mktemp("mombs_train")
    plans: dict[int, list[int]] = {}

    def probe(wf):
        trainer, sampler = wf.parser.get_parsed_content("train#trainer"), wf.parser.get_parsed_content("train#sampler")
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: plans.update({e.state.epoch: list(sampler)}))

    wf = _train(run_bundle, covid_demo, out, hooks=[probe])
    datalist = wf.parser.get_parsed_content("train#datalist")
    return SimpleNamespace(out=out, ckpt_dir=out / "models", datalist=datalist, demo=covid_demo, plans=plans)


def test_checkpoint_holds_the_mombs_state(trained):
    ckpt = torch.load(trained.ckpt_dir / "last.pt", weights_only=True, map_location="cpu")
    assert set(ckpt) == METHOD_KEYS
    n = len(trained.datalist)
    sampler, scores = ckpt["mombs_sampler"], ckpt["mombs_scores"]
    assert sampler["loss"].shape == sampler["uncertainty"].shape == (n,)
    assert int(sampler["scores_epoch"]) == PIVOT
    # the sampler was handed the recorder's columns after the last epoch
    recorded = dict(zip(scores["keys"], scores["values"].T))
    torch.testing.assert_close(sampler["loss"], recorded["loss_per_sample"], equal_nan=True)
    torch.testing.assert_close(sampler["uncertainty"], recorded["uncertainty"], equal_nan=True)
    visited = torch.isfinite(sampler["loss"])
    assert int(visited.sum()) == n // BATCH * BATCH  # drop_last: full minibatches only
    # softmax over 2 channels: the voxel-averaged entropy lies in [0, ln 2]
    unc = sampler["uncertainty"][visited]
    assert bool((unc >= 0).all()) and bool((unc <= math.log(2) + 1e-6).all())
    assert "generator_state" in ckpt["mombs_assessor"]


def test_epoch_after_the_pivot_is_the_mirror_plan_of_the_first_epochs_scores(trained):
    """Independent re-planning: a fresh sampler given the saved scores yields the epoch-2 order the run used."""
    ckpt = torch.load(trained.ckpt_dir / "last.pt", weights_only=True, map_location="cpu")
    assert sorted(trained.plans) == [1, 2]
    n = len(trained.datalist)
    assert len(trained.plans[1]) == len(trained.plans[2]) == n // BATCH * BATCH
    replay = MoMBSSampler(range(n), batch_size=BATCH, pivot_epoch=PIVOT, seed=0, drop_last=True)
    difficulty_table = pd.read_csv(trained.out / "eval" / "difficulty" / "difficulty_epoch0001.csv")
    replay.update_scores(torch.tensor(difficulty_table["loss"].to_numpy()),
                         torch.tensor(difficulty_table["uncertainty"].to_numpy()), epoch=1)  # fmt: skip
    replay.set_epoch(2)
    assert list(replay) == trained.plans[2]
    # mirror layout: each minibatch pairs difficulty ranks i and N-1-i, so every full minibatch has the same rank sum
    rank = dict(zip(difficulty_table["index"], difficulty_table["difficulty_rank"]))
    sums = {sum(rank[i] for i in trained.plans[2][b : b + BATCH]) for b in range(0, len(trained.plans[2]), BATCH)}
    assert len(sums) == 1
    assert int(ckpt["mombs_sampler"]["scores_epoch"]) == PIVOT


def test_difficulty_map_after_the_pivot(trained):
    folder = trained.out / "eval" / "difficulty"
    for epoch in (1, 2):  # epoch 1's scores plan epoch 2 = the pivot
        table = pd.read_csv(folder / f"difficulty_epoch{epoch:04d}.csv")
        assert list(table.columns) == [*DIFFICULTY_COLUMNS, "image", "label", "case_id", "z"]
        assert len(table) == len(trained.datalist)
        assert table["image"].tolist() == [item["image"] for item in trained.datalist]  # row i = datalist item i
        assert (folder / f"difficulty_map_epoch{epoch:04d}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # difficulty = loss rank + uncertainty rank, recomputed from the two rank columns
        np.testing.assert_array_equal(table["difficulty"], table["loss_rank"] + table["uncertainty_rank"])
        assert set(table["category"]) <= {"well_represented", "under_represented", "poorly_labelled", "overfitted"}


def test_resume_restores_scores_and_plans_epoch_3_from_them(trained, run_bundle, tmp_path):
    saved = torch.load(trained.ckpt_dir / "last.pt", weights_only=True, map_location="cpu")
    seen: dict = {}

    def probe(wf):
        trainer, sampler = wf.parser.get_parsed_content("train#trainer"), wf.parser.get_parsed_content("train#sampler")

        def after_load(engine):  # attached after the CheckpointLoader: sees the loaded state
            seen.update(epoch=engine.state.epoch, loss=sampler.loss.clone(), unc=sampler.uncertainty.clone())

        trainer.add_event_handler(Events.STARTED, after_load)
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: seen.update(plan=list(sampler)))

    _train(run_bundle, trained.demo, tmp_path, hooks=[probe], epochs=PIVOT + 1,
           resume_ckpt=str(trained.ckpt_dir / "last.pt"))  # fmt: skip
    assert seen["epoch"] == PIVOT
    torch.testing.assert_close(seen["loss"], saved["mombs_sampler"]["loss"], equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(seen["unc"], saved["mombs_sampler"]["uncertainty"], equal_nan=True, rtol=0, atol=0)
    replay = MoMBSSampler(range(len(trained.datalist)), batch_size=BATCH, pivot_epoch=PIVOT, seed=0, drop_last=True)
    replay.load_state_dict(saved["mombs_sampler"])
    replay.set_epoch(PIVOT + 1)
    assert seen["plan"] == list(replay)


@pytest.mark.parametrize("strategy", ["random", "mombs_loss", "scl_hard", "scl_linear", "ohem"])
def test_strategies_without_uncertainty_train_without_the_assessors_passes(strategy, covid_demo, run_bundle, tmp_path):
    plans: dict[int, list[int]] = {}
    steps: list[dict] = []
    scores: dict[int, torch.Tensor] = {}
    whole: dict[int, Counter] = {}  # every planned sample of an epoch, also those drop_last leaves out

    def probe(wf):
        trainer, sampler = wf.parser.get_parsed_content("train#trainer"), wf.parser.get_parsed_content("train#sampler")

        def started(engine):
            plans[engine.state.epoch] = list(sampler)
            scores[engine.state.epoch] = sampler.loss.clone()
            blocks, partial = sampler.plan()
            whole[engine.state.epoch] = Counter(blocks.reshape(-1).tolist() + partial.tolist())

        def loss_done(engine):  # before decollation: the batch tensors
            out = engine.state.output
            steps.append({k: out[k].detach().clone() for k in ("index", "loss", "loss_per_sample", "loss_weight")
                          if k in out} | {"epoch": engine.state.epoch})  # fmt: skip

        trainer.add_event_handler(Events.EPOCH_STARTED, started)
        trainer.add_event_handler(IterationEvents.LOSS_COMPLETED, loss_done)

    fraction = 0.25 if strategy == "ohem" else None
    wf = _train(run_bundle, covid_demo, tmp_path, hooks=[probe], sampling_strategy=strategy, hard_fraction=fraction)
    ckpt = torch.load(tmp_path / "models" / "last.pt", weights_only=True, map_location="cpu")
    assert set(ckpt) == METHOD_KEYS  # the assessor is always built and checkpointed ...
    # ... but never ran its K disturbed passes: its generator drew nothing and no uncertainty was recorded
    fresh = torch.Generator().manual_seed(wf.parser.get_parsed_content("seed")).get_state()
    assert torch.equal(ckpt["mombs_assessor"]["generator_state"], fresh)
    assert bool(torch.isnan(ckpt["mombs_sampler"]["uncertainty"]).all())
    recorded = dict(zip(ckpt["mombs_scores"]["keys"], ckpt["mombs_scores"]["values"].T))
    assert bool(torch.isnan(recorded["uncertainty"]).all())
    sampler = wf.parser.get_parsed_content("train#sampler")
    assert sampler.strategy == strategy
    assert not (tmp_path / "eval" / "difficulty").exists()  # the map needs the uncertainty
    n = len(wf.parser.get_parsed_content("train#datalist"))
    epoch2, loss1 = plans[2], scores[2]  # epoch 2 (the pivot) is planned from epoch 1's losses
    weighted = [s for s in steps if "loss_weight" in s]
    if strategy in ("random", "mombs_loss"):
        assert len(set(epoch2)) == len(epoch2) and not weighted
    if strategy == "mombs_loss":  # mirror layout of the loss ranks: equal rank sums per minibatch
        replay = MoMBSSampler(range(n), batch_size=BATCH, strategy=strategy, pivot_epoch=PIVOT, drop_last=True)
        replay.update_scores(loss1, None, epoch=1)
        assert epoch2 == list(replay.local_indices(2))
    elif strategy.startswith("scl"):  # random order, weights from epoch 1's losses from the pivot on
        assert len(set(epoch2)) == len(epoch2)
        assert {s["epoch"] for s in weighted} == {2} and len(weighted) == len(steps) // 2
        lambda0 = float(torch.quantile(loss1[torch.isfinite(loss1)].double(), 0.5))
        assert float(ckpt["mombs_sampler"]["self_paced_lambda0"]) == pytest.approx(lambda0)
        assert int(ckpt["mombs_sampler"]["self_paced_start_epoch"]) == PIVOT
        for step in weighted:
            raw = step["loss_per_sample"]
            torch.testing.assert_close(step["loss"], (step["loss_weight"] * raw).mean())
            filled = torch.where(torch.isfinite(loss1), loss1, loss1[torch.isfinite(loss1)].median())
            own = filled[step["index"]].double()
            expected = (own < lambda0).float() if strategy == "scl_hard" else (1 - own / lambda0).clamp(0, 1).float()
            torch.testing.assert_close(step["loss_weight"], expected)
        assert any(float(s["loss_weight"].min()) < 1 for s in weighted)
    elif strategy == "ohem":  # N + k per epoch, the k highest losses of epoch 1 twice
        k = math.floor(0.25 * n)
        assert len(plans[1]) == len(epoch2) == (n + k) // BATCH * BATCH
        # drop_last: samples not visited in epoch 1 have no loss and rank at the (lower) median, ties by index
        filled = torch.where(torch.isfinite(loss1), loss1, loss1[torch.isfinite(loss1)].median())
        hardest = set(torch.argsort(filled, stable=True)[n - k :].tolist())
        assert {i for i, c in whole[2].items() if c == 2} == hardest and sum(whole[2].values()) == n + k
        assert sum(whole[1].values()) == n + k and len(whole[1]) == n  # k random repeats before the pivot


@pytest.mark.parametrize("strategy", ["mombs_uncertainty", "anti_mixed"])
def test_strategies_with_uncertainty_plan_from_the_recorded_scores(strategy, covid_demo, run_bundle, tmp_path):
    plans: dict[int, list[int]] = {}

    def probe(wf):
        trainer, sampler = wf.parser.get_parsed_content("train#trainer"), wf.parser.get_parsed_content("train#sampler")
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: plans.update({e.state.epoch: list(sampler)}))

    wf = _train(run_bundle, covid_demo, tmp_path, hooks=[probe], sampling_strategy=strategy)
    n = len(wf.parser.get_parsed_content("train#datalist"))
    table = pd.read_csv(tmp_path / "eval" / "difficulty" / "difficulty_epoch0001.csv")
    assert bool(np.isfinite(table["uncertainty"]).any())
    replay = MoMBSSampler(range(n), batch_size=BATCH, strategy=strategy, pivot_epoch=PIVOT, drop_last=True)
    replay.update_scores(torch.tensor(table["loss"].to_numpy()), torch.tensor(table["uncertainty"].to_numpy()))
    assert plans[2] == list(replay.local_indices(2))
    if strategy == "mombs_uncertainty":  # mirror of the uncertainty ranks alone
        rank = dict(zip(table["index"], table["uncertainty_rank"]))
        sums = {sum(rank[i] for i in plans[2][b : b + BATCH]) for b in range(0, len(plans[2]), BATCH)}
        assert len(sums) == 1


def test_train_fraction_keeps_a_subset_of_the_training_cases(trained, run_bundle, tmp_path):
    parser = bundle_parser(BUNDLE, TRAIN, {"dataset_dir": str(trained.demo), "train_fraction": 0.5})
    half = parser.get_parsed_content("train#datalist")
    full = {item["image"] for item in trained.datalist}
    assert 0 < len(half) < len(trained.datalist)
    assert {item["image"] for item in half} <= full


def test_evaluate_writes_per_case_dice_against_the_clean_masks(trained, run_bundle, tmp_path):
    out = tmp_path / "test"
    wf = run_bundle(
        BUNDLE, EVALUATE, ckpt_dir=str(trained.ckpt_dir), output_dir=str(out),
        dataset_dir=str(trained.demo), eval_mask_dir=str(trained.demo / "demo_clean"), **SMALL,
    )  # fmt: skip
    datalist = wf.parser.get_parsed_content("validate#datalist")
    assert all("/demo_clean" in item["source_label"] for item in datalist)
    table = pd.read_csv(out / "test_per_case.csv")
    assert sorted(table["case_id"]) == sorted({item["case_id"] for item in datalist})
    slices = pd.Series([item["case_id"] for item in datalist]).value_counts()
    assert table.set_index("case_id")["num_slices"].to_dict() == slices.to_dict()
    dice = table["dice_infection"].dropna()
    assert len(dice) > 0 and bool(((dice >= 0) & (dice <= 1)).all())


def test_mask_of_another_shape_names_both_files(trained, run_bundle, tmp_path, caused_by):
    data = tmp_path / "covid_medseg"
    shutil.copytree(trained.demo, data, ignore=shutil.ignore_patterns("slices_2d"))
    mask = nib.load(data / "tr_mask.nii.gz")  # Dataset 1 slices are in every split
    cut = np.asarray(mask.dataobj)[:, :-2]
    nib.save(nib.Nifti1Image(cut, mask.affine), data / "tr_mask.nii.gz")
    with pytest.raises(Exception) as info:
        _train(run_bundle, data, tmp_path / "run", epochs=1)
    caused_by(info.value, DatasetLayoutError, r"tr_mask\.nii\.gz' has shape .* but its image '.*tr_im\.nii\.gz'")


def test_an_empty_mask_volume_is_kept_with_a_warning(trained, run_bundle, tmp_path):
    data = tmp_path / "covid_medseg"
    shutil.copytree(trained.demo, data, ignore=shutil.ignore_patterns("slices_2d"))
    for mask_path in sorted((data / "rp_msk").glob("*.nii.gz")):
        mask = nib.load(mask_path)
        nib.save(nib.Nifti1Image(np.zeros(mask.shape, np.uint8), mask.affine), mask_path)
    with pytest.warns(UserWarning, match=r"rp_msk/1\.nii\.gz' holds no pixel of the classes \['infection'\]"):
        from monai_ext.data.covid_ct import covid_ct_datalist

        items = covid_ct_datalist(data, label_map={"infection": [1, 2]}, split="all")
    assert any(item["volume_id"] == "medseg/rp_1" and not item["has_lesion"] for item in items)


class _NaNForOneSample(torch.nn.Module):
    """A split U-Net whose output is NaN for the first sample of every batch."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.net = network
        self.tap = network.tap

    def encode(self, x):
        return self.net.encode(x)

    def decode(self, features):
        return self.net.decode(features)

    def forward(self, x):
        y = self.net(x)
        poison = torch.zeros_like(y)
        poison[0] = float("nan")
        return y + poison


def test_nan_loss_of_one_sample_stops_training_naming_it(covid_demo, run_bundle, tmp_path, caused_by):
    from monai_ext.networks import SplitUNet

    net = SplitUNet(spatial_dims=2, in_channels=3, out_channels=2, channels=(4, 8), strides=(2,))
    with pytest.raises(Exception) as info:
        _train(run_bundle, covid_demo, tmp_path, epochs=1, network_def=_NaNForOneSample(net))
    caused_by(info.value, FloatingPointError, rf"1 of {BATCH} samples")


@pytest.mark.skipif(not (BUNDLE / MULTI_GPU).exists(), reason=f"{MULTI_GPU} not written yet")
def test_two_process_gloo_training_plans_the_same_epoch_on_both_ranks(covid_demo, tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
        "-m", "monai.bundle", "run", "--config_file", f"['{TRAIN[0]}','{DEMO}','{MULTI_GPU}']",
        "--bundle_root", str(BUNDLE), "--dist_backend", "gloo", "--dataset_dir", str(covid_demo), "--epochs", "2",
        "--pivot_epoch", "2", "--batch_size", "4", "--network_def", SMALL["network_def"],
        "--ckpt_dir", str(tmp_path / "models"), "--output_dir", str(tmp_path / "eval"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=BUNDLE, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    ckpt = torch.load(tmp_path / "models" / "last.pt", weights_only=True, map_location="cpu")
    assert set(ckpt) == METHOD_KEYS
    assert not any(k.startswith("module.") for k in ckpt["model"])  # the unwrapped network is saved
    # both ranks' samples were recorded: 2 ranks x 4 per step over the full global minibatches
    n = int(ckpt["mombs_sampler"]["loss"].numel())
    assert int(torch.isfinite(ckpt["mombs_sampler"]["loss"]).sum()) == n // 8 * 8
    assert (tmp_path / "eval" / "difficulty" / "difficulty_map_epoch0001.png").is_file()


@pytest.mark.parametrize(
    "setting,dataset,classes",
    [
        ("configs/ma_layout.json", "covid_ma", ["infection"]),
        ("configs/multiclass.json", "covid_medseg", ["ggo", "consolidation"]),
    ],
)
def test_settings_train_one_epoch(setting, dataset, classes, run_bundle, tmp_path_factory, tmp_path):
    from monai_ext.demo import write_demo_datasets

    root = tmp_path_factory.mktemp("covid_settings")
    write_demo_datasets(root, size=1.0, seed=0, names=[dataset])  # 6 Ma volumes: every fold gets a patient
    data = root / dataset
    wf = run_bundle(
        BUNDLE, [*TRAIN, setting], dataset_dir=str(data), ckpt_dir=str(tmp_path / "models"),
        output_dir=str(tmp_path / "eval"), epochs=1, **SMALL,
    )  # fmt: skip
    assert wf.parser.get_parsed_content("class_names") == classes
    datalist = wf.parser.get_parsed_content("train#datalist")
    assert {item["volume_id"].split("/")[0] for item in datalist} == {dataset.split("_")[1]}
    ckpt = torch.load(tmp_path / "models" / "last.pt", weights_only=True, map_location="cpu")
    out_weights = [v for k, v in ckpt["model"].items() if k.endswith("weight") and v.ndim == 4][-1]
    assert len(classes) + 1 in out_weights.shape[:2]  # the last (transposed) convolution emits background + classes


def test_uncertainty_is_assessed_from_the_epoch_before_the_pivot(covid_demo, run_bundle, tmp_path):
    """pivot 3 plans epoch 3 from epoch 2's scores: epoch 1 skips the K re-runs (no uncertainty, no map)."""
    seen = {}

    def probe(wf):
        trainer, sampler = wf.parser.get_parsed_content("train#trainer"), wf.parser.get_parsed_content("train#sampler")
        trainer.add_event_handler(
            Events.EPOCH_COMPLETED, lambda e: seen.update({e.state.epoch: sampler.uncertainty.clone()})
        )

    _train(run_bundle, covid_demo, tmp_path, hooks=[probe], epochs=2, pivot_epoch=3)
    assert bool(torch.isnan(seen[1]).all())
    assert int(torch.isfinite(seen[2]).sum()) == len(seen[2]) // BATCH * BATCH
    folder = tmp_path / "eval" / "difficulty"
    assert sorted(p.name for p in folder.iterdir()) == ["difficulty_epoch0002.csv", "difficulty_map_epoch0002.png"]
