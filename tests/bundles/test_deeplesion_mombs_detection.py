# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""End-to-end runs of ``bundles/deeplesion_mombs_detection`` with its ``configs/demo.json`` small-run overlay on a
64-pixel DeepLesion demo (1-3 epochs, CPU): MoMBS state in checkpoints, resume, difficulty maps, baselines, training
fractions, the FROC evaluation, inference on PNG series folders and NIfTI volumes, the exported network, two-process
training, and bad inputs.

Every run uses one intra-op thread (:func:`_one_thread`; ``OMP_NUM_THREADS=1`` for the two-process run): on 64-pixel
slices OpenMP's threads cost more than they give, and on a shared 2-core machine they spin while waiting for each
other (one training epoch measured at 1.3 s with one thread, 47 s with two, under a load average of 7)."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from ignite.engine import Events
from monai.engines.utils import IterationEvents
from PIL import Image

from monai_ext.bundle.workflow import bundle_parser, bundle_workflow
from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.data.deeplesion import HU_OFFSET
from monai_ext.handlers.mombs import DIFFICULTY_COLUMNS
from monai_ext.networks.retinanet_detector import PerImageLossKeys
from monai_ext.samplers import MoMBSSampler
from tests.torch_threads import one_torch_thread as _one_thread

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "deeplesion_mombs_detection"
DEMO, MULTI_GPU = "configs/demo.json", "configs/multi_gpu_train.json"
TRAIN = ["configs/train.json", DEMO]
EVALUATE = [*TRAIN, "configs/evaluate.json"]
INFER = ["configs/inference.json", DEMO]
BATCH = json.loads((BUNDLE / DEMO).read_text())["batch_size"]  # the demo overlay's batch size (4)
# the demo overlay's small SplitRetinaNet; the 64-pixel demo slices have 4.8-7.0 mm pixels: 7.5 mm keeps them <= 64 px
SMALL = {"network_def": "%small_network_def", "pixel_spacing": 7.5, "image_size": 64}
PIVOT = 2
METHOD_KEYS = {"model", "optimizer", "lr_scheduler", "trainer", "rng"}
METHOD_KEYS |= {"mombs_sampler", "mombs_scores", "mombs_assessor"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.slow


def _run(run_bundle, *args, **kwargs):
    with _one_thread():
        return run_bundle(*args, **kwargs)


def _train(run_bundle, dataset_dir: Path, out: Path, hooks=(), **override):
    settings = {"epochs": PIVOT, "pivot_epoch": PIVOT, **SMALL, **override}
    return _run(
        run_bundle,
        BUNDLE, TRAIN, hooks=hooks, dataset_dir=str(dataset_dir), ckpt_dir=str(out / "models"),
        output_dir=str(out / "eval"), **settings,
    )  # fmt: skip


def _dl_info(dataset_dir: Path) -> list[dict]:
    with open(dataset_dir / "DL_info.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def trained(deeplesion_demo, run_bundle, tmp_path_factory) -> SimpleNamespace:
    """Two MoMBS epochs (the second planned from the first's scores), shared by the tests that need a checkpoint;
    records each epoch's plan and the recorder's table after epoch 1."""
    out = tmp_path_factory.mktemp("deeplesion_train")
    plans: dict[int, list[int]] = {}
    recorded: dict[int, dict[str, torch.Tensor]] = {}

    def probe(wf):
        trainer, sampler = wf.parser.get_parsed_content("train#trainer"), wf.parser.get_parsed_content("train#sampler")
        recorder = wf.parser.get_parsed_content("mombs_recorder")
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: plans.update({e.state.epoch: list(sampler)}))

        def epoch_done(engine):  # attached after the bundle's handlers: the recorder and the assessor have run
            recorded[engine.state.epoch] = dict(zip(recorder.keys, recorder.values.clone().T))

        trainer.add_event_handler(Events.EPOCH_COMPLETED, epoch_done)

    wf = _train(run_bundle, deeplesion_demo, out, hooks=[probe])
    datalist = wf.parser.get_parsed_content("train#datalist")
    return SimpleNamespace(
        out=out, ckpt_dir=out / "models", datalist=datalist, demo=deeplesion_demo, plans=plans, recorded=recorded
    )


def test_checkpoint_holds_the_mombs_state(trained):
    ckpt = torch.load(trained.ckpt_dir / "last.pt", weights_only=True, map_location="cpu")
    assert set(ckpt) == METHOD_KEYS
    n = len(trained.datalist)
    sampler, scores = ckpt["mombs_sampler"], ckpt["mombs_scores"]
    assert sampler["loss"].shape == sampler["uncertainty"].shape == (n,)
    assert int(sampler["scores_epoch"]) == PIVOT
    recorded = dict(zip(scores["keys"], scores["values"].T))
    torch.testing.assert_close(sampler["loss"], recorded["loss_per_sample"], equal_nan=True)
    torch.testing.assert_close(sampler["uncertainty"], recorded["uncertainty"], equal_nan=True)
    assert "generator_state" in ckpt["mombs_assessor"]
    assert not any(k.startswith("module.") for k in ckpt["model"])
    assert any(k.startswith("classification_head.") for k in ckpt["model"])  # a RetinaNet's weights


def test_every_image_of_the_epoch_before_the_pivot_has_a_loss_and_an_uncertainty(trained):
    n = len(trained.datalist)
    epoch1 = trained.recorded[PIVOT - 1]
    loss, unc = epoch1["loss_per_sample"], epoch1["uncertainty"]
    visited = torch.zeros(n, dtype=torch.bool)
    visited[trained.plans[1]] = True
    assert len(trained.plans[1]) == n // BATCH * BATCH  # drop_last: full minibatches only
    # every image trained on in epoch 1 has a finite loss and (the assessor's K passes) a finite uncertainty
    assert torch.equal(torch.isfinite(loss), visited) and torch.equal(torch.isfinite(unc), visited)
    assert bool((loss[visited] >= 0).all())
    # sigmoid per anchor: the binary entropy lies in [0, ln 2]
    assert bool((unc[visited] >= 0).all()) and bool((unc[visited] <= math.log(2) + 1e-6).all())
    assert float(unc[visited].std()) > 0  # one score per image, not one for the whole set


def test_epoch_after_the_pivot_is_the_mirror_plan_of_the_first_epochs_scores(trained):
    """Independent re-planning: a fresh sampler given epoch 1's recorded scores yields the epoch-2 order used."""
    assert sorted(trained.plans) == [1, 2]
    n = len(trained.datalist)
    assert len(trained.plans[2]) == n // BATCH * BATCH
    epoch1 = trained.recorded[1]
    replay = MoMBSSampler(range(n), batch_size=BATCH, pivot_epoch=PIVOT, seed=0, drop_last=True)
    replay.update_scores(epoch1["loss_per_sample"], epoch1["uncertainty"], epoch=1)
    replay.set_epoch(2)
    assert list(replay) == trained.plans[2]
    assert trained.plans[2] != trained.plans[1]
    # mirror layout: each minibatch pairs difficulty ranks i and N-1-i, so every full minibatch has the same rank sum
    table = pd.read_csv(trained.out / "eval" / "difficulty" / "difficulty_epoch0001.csv")
    rank = dict(zip(table["index"], table["difficulty_rank"]))
    sums = {sum(rank[i] for i in trained.plans[2][b : b + BATCH]) for b in range(0, len(trained.plans[2]), BATCH)}
    assert len(sums) == 1


def test_difficulty_table_and_map(trained):
    folder = trained.out / "eval" / "difficulty"
    table = pd.read_csv(folder / "difficulty_epoch0001.csv")
    assert list(table.columns) == [*DIFFICULTY_COLUMNS, "file_name", "patient_id", "key_slice"]
    assert table["file_name"].tolist() == [item["file_name"] for item in trained.datalist]  # row i = item i
    assert table["key_slice"].tolist() == [item["key_slice"] for item in trained.datalist]
    epoch1 = trained.recorded[1]
    np.testing.assert_allclose(table["loss"], epoch1["loss_per_sample"].double().numpy(), rtol=1e-6)
    np.testing.assert_allclose(table["uncertainty"], epoch1["uncertainty"].double().numpy(), rtol=1e-6)
    np.testing.assert_array_equal(table["difficulty"], table["loss_rank"] + table["uncertainty_rank"])
    assert (folder / "difficulty_map_epoch0001.png").read_bytes()[:8] == PNG_MAGIC


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
    resumed = torch.load(tmp_path / "models" / "last.pt", weights_only=True, map_location="cpu")
    assert int(resumed["mombs_sampler"]["scores_epoch"]) == PIVOT + 1


@pytest.mark.parametrize("strategy", ["random", "scl_hard", "ohem"])
def test_baselines_train_without_the_assessors_passes(strategy, deeplesion_demo, run_bundle, tmp_path):
    fraction = 0.25 if strategy == "ohem" else None
    wf = _train(run_bundle, deeplesion_demo, tmp_path, epochs=1, sampling_strategy=strategy, hard_fraction=fraction)
    ckpt = torch.load(tmp_path / "models" / "last.pt", weights_only=True, map_location="cpu")
    assert set(ckpt) == METHOD_KEYS
    # the assessor never ran its K disturbed passes: its generator drew nothing and no uncertainty was recorded
    fresh = torch.Generator().manual_seed(wf.parser.get_parsed_content("seed")).get_state()
    assert torch.equal(ckpt["mombs_assessor"]["generator_state"], fresh)
    recorded = dict(zip(ckpt["mombs_scores"]["keys"], ckpt["mombs_scores"]["values"].T))
    assert bool(torch.isnan(recorded["uncertainty"]).all())
    assert bool(torch.isnan(ckpt["mombs_sampler"]["uncertainty"]).all())
    assert bool(torch.isfinite(recorded["loss_per_sample"]).any())  # the losses are recorded all the same
    assert wf.parser.get_parsed_content("train#sampler").strategy == strategy
    assert not (tmp_path / "eval" / "difficulty").exists()  # the map needs the uncertainty


@pytest.mark.parametrize("strategy", ["mombs_loss", "mombs_uncertainty"])
def test_ablations_plan_from_the_recorded_scores(strategy, deeplesion_demo, run_bundle, tmp_path):
    plans: dict[int, list[int]] = {}
    scores: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def probe(wf):
        trainer, sampler = wf.parser.get_parsed_content("train#trainer"), wf.parser.get_parsed_content("train#sampler")
        recorder = wf.parser.get_parsed_content("mombs_recorder")

        def done(engine):
            table = dict(zip(recorder.keys, recorder.values.clone().T))
            scores[engine.state.epoch] = (table["loss_per_sample"], table["uncertainty"])

        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: plans.update({e.state.epoch: list(sampler)}))
        trainer.add_event_handler(Events.EPOCH_COMPLETED, done)

    wf = _train(run_bundle, deeplesion_demo, tmp_path, hooks=[probe], sampling_strategy=strategy)
    n = len(wf.parser.get_parsed_content("train#datalist"))
    loss1, unc1 = scores[1]
    assert bool(torch.isfinite(unc1).any()) == (strategy == "mombs_uncertainty")  # the K passes only when used
    replay = MoMBSSampler(range(n), batch_size=BATCH, strategy=strategy, pivot_epoch=PIVOT, drop_last=True)
    replay.update_scores(loss1, unc1 if strategy == "mombs_uncertainty" else None, epoch=1)
    assert plans[2] == list(replay.local_indices(2))
    # mirror of one column's ranks: equal rank sums per minibatch
    column = loss1 if strategy == "mombs_loss" else unc1
    filled = torch.where(torch.isfinite(column), column, column[torch.isfinite(column)].median())
    rank = torch.empty(n, dtype=torch.long)
    rank[torch.argsort(filled, stable=True)] = torch.arange(n)
    sums = {int(rank[plans[2][b : b + BATCH]].sum()) for b in range(0, len(plans[2]), BATCH)}
    assert len(sums) == 1


def test_focal_all_ranking_loss_trains_one_epoch(deeplesion_demo, run_bundle, tmp_path):
    steps: list[dict] = []

    def probe(wf):
        trainer = wf.parser.get_parsed_content("train#trainer")

        def loss_done(engine):
            out = engine.state.output
            steps.append({k: v.clone() for k, v in out["pred"].items()} | {"ranked": out["loss_per_sample"].clone()})

        trainer.add_event_handler(IterationEvents.LOSS_COMPLETED, loss_done)

    # pivot 3: epoch 1 plans nothing, so the assessor skips its K passes (this test is about the loss)
    wf = _train(run_bundle, deeplesion_demo, tmp_path, hooks=[probe], epochs=1, pivot_epoch=3, ranking_loss="focal_all")
    assert len(steps) == len(wf.parser.get_parsed_content("train#datalist")) // BATCH
    for step in steps:  # the ranked value is the focal loss over all anchors, not the sampled-anchor mean
        torch.testing.assert_close(step["ranked"], step[PerImageLossKeys.CLS_FOCAL_ALL.value])
        assert not torch.allclose(step["ranked"], step[PerImageLossKeys.CLS_SAMPLED_MEAN.value])
    recorded = wf.parser.get_parsed_content("mombs_recorder")
    values = dict(zip(recorded.keys, recorded.values.T))["loss_per_sample"]
    assert bool(torch.isfinite(values).any()) and bool((values[torch.isfinite(values)] >= 0).all())


def test_stem_disturbance_trains_one_epoch_with_the_same_losses(trained, run_bundle, tmp_path):
    """``disturb_at="stem"`` changes only where the assessor disturbs: epoch 1 trains as the shared run (same seed,
    same losses) but the uncertainties differ."""
    wf = _train(run_bundle, trained.demo, tmp_path, epochs=1, disturb_at="stem")
    assert str(wf.parser.get_parsed_content("network").disturb_at) == "stem"
    recorder = wf.parser.get_parsed_content("mombs_recorder")
    stem = dict(zip(recorder.keys, recorder.values.T))
    fpn = trained.recorded[1]
    torch.testing.assert_close(stem["loss_per_sample"], fpn["loss_per_sample"], equal_nan=True)
    visited = torch.isfinite(stem["uncertainty"])
    assert torch.equal(visited, torch.isfinite(fpn["uncertainty"]))
    assert not torch.allclose(stem["uncertainty"][visited], fpn["uncertainty"][visited])


def test_train_fraction_keeps_about_half_the_patients(trained, caused_by):
    full = trained.datalist
    parser = bundle_parser(BUNDLE, TRAIN, {"dataset_dir": str(trained.demo), "train_fraction": 0.5})
    half = parser.get_parsed_content("train#datalist")
    patients = {item["patient_id"] for item in full}
    kept = {item["patient_id"] for item in half}
    assert len(kept) == math.floor(0.5 * len(patients) + 0.5)
    assert kept < patients
    # every image of a kept patient, and only those, in the full list's order, re-indexed 0..n-1
    assert [item["file_name"] for item in half] == [item["file_name"] for item in full if item["patient_id"] in kept]
    assert [item["index"] for item in half] == list(range(len(half)))
    tiny = bundle_parser(BUNDLE, TRAIN, {"dataset_dir": str(trained.demo), "train_fraction": 0.01})
    with pytest.raises(Exception) as info:
        tiny.get_parsed_content("train#datalist")
    caused_by(info.value, ValueError, rf"fraction 0.01 of {len(patients)} patient\(s\).*keeps no patient")


def test_evaluate_writes_the_froc_report_and_never_overwrites_it(trained, run_bundle, tmp_path, caused_by):
    out = tmp_path / "test"
    common = dict(ckpt_dir=str(trained.ckpt_dir), output_dir=str(out), dataset_dir=str(trained.demo), **SMALL)
    _run(run_bundle, BUNDLE, EVALUATE, "eval", **common)
    report = json.loads((out / "test_froc.json").read_text())
    # the test lesions, counted from DL_info.csv (Train_Val_Test 3, not Possibly_noisy)
    rows = [r for r in _dl_info(trained.demo) if r["Train_Val_Test"] == "3" and r["Possibly_noisy"] == "0"]
    assert report["num_lesions"] == len(rows) > 0
    assert report["num_images"] == len({r["File_name"] for r in rows})
    for convention in ("official", "strict"):
        values = report[convention]
        assert set(values) == {"sens@0.5", "sens@1", "sens@2", "sens@4", "avg[0.5,1,2]"}
        assert all(0.0 <= v <= 1.0 for v in values.values())
        assert values["avg[0.5,1,2]"] == pytest.approx((values["sens@0.5"] + values["sens@1"] + values["sens@2"]) / 3)
        assert values["sens@0.5"] <= values["sens@1"] <= values["sens@2"] <= values["sens@4"]
    assert (out / "test_froc.png").read_bytes()[:8] == PNG_MAGIC
    with Image.open(out / "test_froc.png") as png:
        png.verify()
    detections = pd.read_csv(out / "test_detections.csv")
    assert set(detections["file_name"]) <= {r["File_name"] for r in rows}
    assert set(detections["outcome"]) <= {"tp", "ignored", "fp", "missed"}
    # each lesion is either found once (tp) or listed as missed
    assert int(detections["outcome"].isin(["tp", "missed"]).sum()) == len(rows)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(Exception) as info:
        _run(run_bundle, BUNDLE, EVALUATE, "eval", **common)
    caused_by(info.value, FileExistsError, r"test_froc\.json exists")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _test_series(demo: Path) -> list[str]:
    return sorted({r["File_name"].rsplit("_", 1)[0] for r in _dl_info(demo) if r["Train_Val_Test"] == "3"})


def _series_spacing(demo: Path, series: str) -> list[float]:
    row = next(r for r in _dl_info(demo) if r["File_name"].startswith(series + "_"))
    return [float(v) for v in row["Spacing_mm_px_"].split(",")]


def _nifti_from_pngs(folder: Path, spacing: list[float], path: Path) -> None:
    """The PNG series as a NIfTI volume in HU: axis 0 = image column x, axis 1 = row y, axis 2 = slice, with an
    affine of the spacing (as MONAI loads the PNG folder)."""
    files = sorted(folder.glob("*.png"), key=lambda p: int(p.stem))
    hu = np.stack([np.asarray(Image.open(f), dtype=np.int32) - HU_OFFSET for f in files], axis=-1)  # y, x, z
    nib.save(nib.Nifti1Image(hu.transpose(1, 0, 2).astype(np.int16), np.diag([*spacing, 1.0])), str(path))


def test_inference_on_png_series_and_nifti_volumes(trained, run_bundle, tmp_path):
    series = _test_series(trained.demo)
    inputs = tmp_path / "input"
    inputs.mkdir()
    shutil.copytree(trained.demo / "Images_png" / series[0], inputs / series[0])
    # the same series as a NIfTI volume: the same detections, in the same voxel grid
    _nifti_from_pngs(inputs / series[0], _series_spacing(trained.demo, series[0]), inputs / "volume.nii.gz")
    broken = inputs / "broken_series"  # an 8-bit PNG slice: not a DeepLesion slice
    broken.mkdir()
    Image.fromarray(np.full((64, 64), 100, np.uint8)).save(broken / "001.png")
    out = tmp_path / "predictions"
    common = dict(ckpt_dir=str(trained.ckpt_dir), dataset_dir=str(inputs), output_dir=str(out),
                  dl_info_csv=str(trained.demo / "DL_info.csv"), **SMALL)  # fmt: skip
    _run(run_bundle, BUNDLE, INFER, "infer", **common)
    cases = {series[0]: inputs / series[0], "volume": inputs / "volume.nii.gz"}
    records = {}
    for case, source in cases.items():
        records[case] = json.loads((out / case / f"{case}_boxes.json").read_text())
        record = records[case]
        assert record["case_id"] == case and Path(record["image"]) == source
        assert record["model_name"] == "deeplesion_mombs_detection" and record["box_mode"] == "xyxy"
        n = len(record["box"])
        for key in ("label", "label_scores", "slice", "world_corners", "box_world", "label_name"):
            assert len(record[key]) == n, key
        assert all(0 <= s < len(list((inputs / series[0]).glob("*.png"))) for s in record["slice"])
        assert record["spacing"] == pytest.approx(_series_spacing(trained.demo, series[0]))
    png, nifti = records[series[0]], records["volume"]
    assert len(png["box"]) > 0
    assert png["slice"] == nifti["slice"]
    np.testing.assert_allclose(png["box"], nifti["box"], atol=1e-3)
    np.testing.assert_allclose(png["label_scores"], nifti["label_scores"], atol=1e-4)
    first = int(min(p.stem for p in (inputs / series[0]).glob("*.png")))
    assert png["slice_file_number"] == [first + s for s in png["detector_slice"]]
    table = pd.read_csv(out / "detections.csv")
    assert table["case_id"].value_counts().to_dict() == {c: len(r["box"]) for c, r in records.items()}
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped["case_id"].tolist() == ["broken_series"]
    assert "001.png" in skipped["error"].iloc[0]
    # a second run leaves the finished cases alone
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/*_boxes.json")}
    _run(run_bundle, BUNDLE, INFER, "infer", **common)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*_boxes.json")} == stamps
    assert pd.read_csv(out / "detections.csv").equals(table)


def test_exported_retinanet_is_the_trained_splitretinanet(tmp_path):
    """In place of the model zoo's verify_net_in_out (a detector has no single output tensor)."""
    parser = bundle_parser(BUNDLE, INFER)
    torch.manual_seed(0)
    split = parser.get_parsed_content("network_def").eval()
    export = parser.get_parsed_content("export_network_def").eval()
    assert type(export).__name__ == "RetinaNet" and type(split).__name__ == "SplitRetinaNet"
    assert list(split.state_dict()) == list(export.state_dict())
    export.load_state_dict(split.state_dict())
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), _one_thread():
        a, b = split(x), export(x)
    assert set(a) == set(b) == {split.cls_key, split.box_reg_key}
    for key in a:
        assert len(a[key]) == len(b[key]) == 4  # one map per FPN level (returned layers 1-3 plus the pooled one)
        for u, v in zip(a[key], b[key]):
            torch.testing.assert_close(u, v, rtol=0, atol=0)


@pytest.mark.parametrize("overlay", [{}, {"network_def": "%small_network_def"}], ids=["shipped", "small"])
def test_training_and_inference_build_the_same_network(overlay):
    nets = []
    for configs in (TRAIN, INFER):
        torch.manual_seed(0)
        nets.append(bundle_parser(BUNDLE, configs, overlay).get_parsed_content("network_def"))
    train, infer = (net.state_dict() for net in nets)
    assert list(train) == list(infer)
    for key in train:
        torch.testing.assert_close(train[key], infer[key], rtol=0, atol=0)


@pytest.mark.skipif(not (BUNDLE / MULTI_GPU).exists(), reason=f"{MULTI_GPU} not written yet")
def test_two_process_gloo_training_keeps_the_mombs_state(deeplesion_demo, tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
        "-m", "monai.bundle", "run", "--config_file", f"['{TRAIN[0]}','{DEMO}','{MULTI_GPU}']",
        "--bundle_root", str(BUNDLE), "--dist_backend", "gloo", "--dataset_dir", str(deeplesion_demo), "--epochs", "2",
        "--pivot_epoch", "2", "--batch_size", "4", "--network_def", SMALL["network_def"],
        "--pixel_spacing", str(SMALL["pixel_spacing"]), "--image_size", str(SMALL["image_size"]),
        "--ckpt_dir", str(tmp_path / "models"), "--output_dir", str(tmp_path / "eval"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=BUNDLE, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    ckpt = torch.load(tmp_path / "models" / "last.pt", weights_only=True, map_location="cpu")
    assert set(ckpt) == METHOD_KEYS
    assert not any(k.startswith("module.") for k in ckpt["model"])  # the unwrapped network is saved
    # both ranks' images were recorded: 2 ranks x 4 per step over the full global minibatches
    n = int(ckpt["mombs_sampler"]["loss"].numel())
    finite = torch.isfinite(ckpt["mombs_sampler"]["loss"])
    assert int(finite.sum()) == n // 8 * 8
    assert torch.equal(torch.isfinite(ckpt["mombs_sampler"]["uncertainty"]), finite)
    assert (tmp_path / "eval" / "difficulty" / "difficulty_map_epoch0001.png").is_file()


def _copy_demo(demo: Path, dest: Path) -> Path:
    shutil.copytree(demo, dest)
    return dest


def _edit_first_training_row(data: Path, column: str, edit) -> int:
    """Apply ``edit`` to ``column`` of the first training row of ``DL_info.csv``; return its 1-based file line."""
    path = data / "DL_info.csv"
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    row = next(i for i, r in enumerate(rows) if r["Train_Val_Test"] == "1")
    rows[row][column] = edit(rows[row][column])
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return row + 2  # the header is line 1


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda box: ", ".join(box.split(",")[:3]), "expected 4 comma-separated numbers, found 3"),
        (lambda box: ", ".join(box.split(",")[i].strip() for i in (2, 1, 0, 3)), "expected x1 <= x2 and y1 <= y2"),
    ],
    ids=["three_box_values", "x2_before_x1"],
)
def test_bad_box_row_names_the_file_line_and_column(edit, pattern, deeplesion_demo, run_bundle, tmp_path, caused_by):
    data = _copy_demo(deeplesion_demo, tmp_path / "deeplesion")
    line = _edit_first_training_row(data, "Bounding_boxes", edit)
    with pytest.raises(Exception) as info:
        _train(run_bundle, data, tmp_path / "run", epochs=1)
    error = caused_by(info.value, DatasetLayoutError, pattern)
    assert f"'{data / 'DL_info.csv'}', line {line}, column 'Bounding_boxes'" in str(error)
    assert not list((tmp_path / "run").rglob("*.pt"))  # stopped before training


def test_8_bit_key_slice_stops_training_naming_the_file(deeplesion_demo, run_bundle, tmp_path, caused_by):
    data = _copy_demo(deeplesion_demo, tmp_path / "deeplesion")
    row = next(r for r in _dl_info(data) if r["Train_Val_Test"] == "1")
    series, key = row["File_name"].rsplit("_", 1)
    png = data / "Images_png" / series / key
    Image.fromarray((np.asarray(Image.open(png), dtype=np.int32) // 256).astype(np.uint8)).save(png)
    n = len(bundle_parser(BUNDLE, TRAIN, {"dataset_dir": str(data)}).get_parsed_content("train#datalist"))
    with pytest.raises(Exception) as info:  # one minibatch of every training image: the bad one is read
        _train(run_bundle, data, tmp_path / "run", epochs=1, batch_size=n)
    caused_by(info.value, ValueError, rf"{png}.*16-bit|16-bit.*{png}")


def test_a_new_training_run_refuses_the_checkpoints_of_an_earlier_one(deeplesion_demo, tmp_path, caused_by):
    ckpt = tmp_path / "models"
    ckpt.mkdir()
    (ckpt / "last.pt").write_bytes(b"an earlier run")
    workflow = bundle_workflow(BUNDLE, TRAIN, "train", dataset_dir=str(deeplesion_demo), ckpt_dir=str(ckpt),
                               output_dir=str(tmp_path / "eval"), **SMALL)  # fmt: skip
    with pytest.raises(Exception) as info:
        workflow.initialize()
    caused_by(info.value, FileExistsError, r"\['last.pt'\].*--resume_ckpt.*--overwrite true")
    assert (ckpt / "last.pt").read_bytes() == b"an earlier run"


@pytest.mark.parametrize(
    "configs, override, pattern",
    [
        (TRAIN, {"train_fraction": 1.5}, r"'train_fraction' = 1.5"),
        (TRAIN, {"num_disturbances": 0, "epochs": "3"}, r"'epochs' = '3'.*'num_disturbances' = 0"),
        (INFER, {"slice_batch_size": 0}, r"'slice_batch_size' = 0"),
        (INFER, {"amp": "ja"}, r"'amp' = 'ja': must be true or false"),
    ],
    ids=["train_fraction", "disturbances_and_epochs", "slice_batch_size", "amp"],
)
def test_bad_settings_stop_the_run_at_the_start(configs, override, pattern, deeplesion_demo, tmp_path, caused_by):
    workflow = bundle_workflow(BUNDLE, configs, "train" if configs == TRAIN else "infer",
                               dataset_dir=str(deeplesion_demo), ckpt_dir=str(tmp_path / "models"),
                               output_dir=str(tmp_path / "eval"), **{**SMALL, **override})  # fmt: skip
    with pytest.raises(Exception) as info:
        workflow.initialize()
    caused_by(info.value, ValueError, pattern)
    assert not (tmp_path / "models").exists() and not (tmp_path / "eval").exists()  # nothing ran
