# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""End-to-end runs of ``bundles/cxr_nvum_classification`` with its ``configs/demo.json`` small-run overlay on tiny
demo data (1-2 epochs, CPU): train, evaluate, resume, label audit, inference, and the errors a user meets with bad
inputs."""

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

import numpy as np
import pandas as pd
import pytest
import torch
from ignite.engine import Events
from monai.networks.nets import DenseNet121
from sklearn.metrics import roc_auc_score

from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.handlers.label_audit import AUDIT_COLUMNS

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "cxr_nvum_classification"
DEMO = "configs/demo.json"
TRAIN, INFERENCE = ["configs/train.json", DEMO], ["configs/inference.json", DEMO]
EVALUATE = [*TRAIN, "configs/evaluate.json"]
MULTI_GPU = "configs/multi_gpu_train.json"
BATCH = json.loads((BUNDLE / DEMO).read_text())["batch_size"]  # the demo overlay's training batch size
SMALL = {"network_def": "%small_network_def"}  # the demo overlay's small DenseNet (the benchmark's), for speed
NIH_CLASSES = [
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia", "No Finding",
]  # fmt: skip
CKPT_KEYS = {"model", "student", "ema", "nvum", "optimizer", "lr_scheduler", "trainer", "rng"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def trained(cxr_demo, run_bundle, tmp_path_factory) -> SimpleNamespace:
    """One epoch of training on the NIH demo data, shared by the tests that need a checkpoint."""
    out = tmp_path_factory.mktemp("nvum_train")
    ckpt_dir, output_dir = out / "models", out / "eval"
    wf = run_bundle(
        BUNDLE, TRAIN, dataset_dir=str(cxr_demo / "nih"), epochs=1, ckpt_dir=str(ckpt_dir),
        output_dir=str(output_dir), **SMALL,
    )  # fmt: skip
    datalist = wf.parser.get_parsed_content("train#datalist")
    return SimpleNamespace(ckpt_dir=ckpt_dir, output_dir=output_dir, datalist=datalist, demo=cxr_demo)


def test_train_writes_checkpoints_with_method_state(trained):
    assert sorted(p.name for p in trained.ckpt_dir.glob("*.pt")) == ["checkpoint_epoch=1.pt", "last.pt", "model.pt"]
    ckpt = torch.load(trained.ckpt_dir / "last.pt", weights_only=True, map_location="cpu")
    assert set(ckpt) == CKPT_KEYS
    # the train loader drops the last partial batch (a batch of one would break BatchNorm)
    visited = len(trained.datalist) // BATCH * BATCH
    assert ckpt["trainer"]["iteration"] == len(trained.datalist) // BATCH
    assert ckpt["nvum"]["memory"].shape == (len(trained.datalist), len(NIH_CLASSES))
    # every training image was seen once in the single epoch
    updates = ckpt["nvum"]["num_updates"]
    assert set(updates.tolist()) <= {0, 1} and int(updates.sum()) == visited  # each visited sample once
    # small DenseNet(init_features=16, growth_rate=16, block_config=(2, 4, 6, 4)): 16 + 2*16 = 48 -> 24, 24 + 4*16 = 88
    # -> 44, 44 + 6*16 = 140 -> 70 (transitions halve), 70 + 4*16 = 134 features into the classifier
    assert ckpt["model"]["class_layers.out.weight"].shape == (len(NIH_CLASSES), 134)


def test_label_audit_matches_saved_memory(trained):
    table = pd.read_csv(trained.output_dir / "label_audit.csv")
    assert tuple(table.columns) == AUDIT_COLUMNS
    assert len(table) > 0
    memory = torch.load(trained.ckpt_dir / "last.pt", weights_only=True, map_location="cpu")["nvum"]["memory"]
    # the bundle scores with the prior put back: sigmoid(t + log pi), pi = training positive rate (paper mode)
    labels = np.array([item["label"] for item in trained.datalist])
    log_prior = torch.as_tensor(np.log(labels.mean(axis=0)), dtype=memory.dtype)
    rows, cols = table["index"].to_numpy(), table["class_index"].to_numpy()
    expected = torch.sigmoid(memory[rows, cols] + log_prior[cols]).numpy()
    np.testing.assert_allclose(table["memory_score"].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(table["given_label"], labels[table["index"], table["class_index"]])
    assert table["class"].tolist() == [NIH_CLASSES[c] for c in table["class_index"]]
    assert table["image"].tolist() == [trained.datalist[i]["image"] for i in table["index"]]
    assert (table["disagreement"] >= 0.5).all()  # LabelAuditWriter's default min_disagreement
    assert table["disagreement"].is_monotonic_decreasing
    assert table["rank"].tolist() == list(range(1, len(table) + 1))


def test_evaluate_reports_match_sklearn(trained, run_bundle, tmp_path):
    collected = {"pred": [], "label": []}

    def collect(engine):
        for item in engine.state.output:
            collected["pred"].append(item["pred"].detach().cpu().numpy().reshape(-1))
            collected["label"].append(item["label"].detach().cpu().numpy().reshape(-1))

    def probe(wf):
        wf.parser.get_parsed_content("validate#evaluator").add_event_handler(Events.ITERATION_COMPLETED, collect)

    for test_set in ("openi", "padchest"):  # one test set per run, chosen by the test_set id
        run_bundle(
            BUNDLE, EVALUATE, hooks=[probe] if test_set == "openi" else [], ckpt_dir=str(trained.ckpt_dir),
            output_dir=str(tmp_path), test_set=test_set, test_dir=str(trained.demo / test_set), **SMALL,
        )  # fmt: skip
    for prefix in ("openi", "padchest"):
        for suffix in ("_per_class.csv", "_per_class.md", "_roc.png"):
            assert (tmp_path / f"{prefix}{suffix}").stat().st_size > 0, f"{prefix}{suffix}"
    table = pd.read_csv(tmp_path / "openi_per_class.csv")
    rows = table.set_index("class")
    assert list(rows.index[: len(NIH_CLASSES)]) == NIH_CLASSES
    assert all(c in (tmp_path / "openi_per_class.md").read_text() for c in NIH_CLASSES)
    pred, label = np.stack(collected["pred"]), np.stack(collected["label"])
    assert pred.shape[1] == len(NIH_CLASSES) and pred.shape[0] > 0
    aucs = []
    for c, name in enumerate(NIH_CLASSES):
        known = ~np.isnan(label[:, c])
        y = label[known, c]
        assert rows.loc[name, "n_known"] == known.sum(), name
        auc = roc_auc_score(y, pred[known, c]) if 0 < y.sum() < y.size else math.nan
        aucs.append(auc)
        if math.isnan(auc):
            assert math.isnan(rows.loc[name, "auroc"]), name
        else:
            assert rows.loc[name, "auroc"] == pytest.approx(auc, abs=1e-9), name
    mean_rows = [r for r in rows.index if str(r).lower().startswith("mean")]
    assert mean_rows, f"no mean row in {list(rows.index)}"
    assert float(rows.loc[mean_rows[0], "auroc"]) == pytest.approx(np.nanmean(aucs), abs=1e-9)
    assert 0.0 <= np.nanmean(aucs) <= 1.0


def test_resume_continues_at_epoch_2_with_saved_memory(trained, run_bundle, tmp_path):
    last = trained.ckpt_dir / "last.pt"
    saved = torch.load(last, weights_only=True, map_location="cpu")
    seen = {"epochs": []}

    def probe(wf):
        trainer, loss = wf.parser.get_parsed_content("train#trainer"), wf.parser.get_parsed_content("loss")

        def after_load(engine):  # attached after the CheckpointLoader, so it sees the loaded state
            seen.update(epoch=engine.state.epoch, memory=loss.memory.detach().cpu().clone())
            seen.update(num_updates=loss.num_updates.detach().cpu().clone())

        trainer.add_event_handler(Events.STARTED, after_load)
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: seen["epochs"].append(e.state.epoch))

    wf = run_bundle(
        BUNDLE, TRAIN, hooks=[probe], dataset_dir=str(trained.demo / "nih"), epochs=2, resume_ckpt=str(last),
        ckpt_dir=str(tmp_path / "models"), output_dir=str(tmp_path / "eval"), **SMALL,
    )  # fmt: skip
    assert seen["epoch"] == 1
    assert seen["epochs"] == [2]
    torch.testing.assert_close(seen["memory"], saved["nvum"]["memory"], rtol=0, atol=0)
    torch.testing.assert_close(seen["num_updates"], saved["nvum"]["num_updates"], rtol=0, atol=0)
    assert wf.parser.get_parsed_content("train#trainer").state.epoch == 2
    resumed = torch.load(tmp_path / "models" / "last.pt", weights_only=True, map_location="cpu")
    visited = len(trained.datalist) // BATCH * BATCH
    assert int(resumed["nvum"]["num_updates"].sum()) == 2 * visited  # two epochs, last partial batch dropped


@pytest.fixture
def inference_inputs(trained, rg1_unci_path, tmp_path) -> Path:
    """A folder with the real RG1_UNCI.dcm, two demo PNGs and a corrupt PNG."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copy(rg1_unci_path, folder / "RG1_UNCI.dcm")
    for png in sorted((trained.demo / "nih" / "images").glob("*.png"))[:2]:
        shutil.copy(png, folder / png.name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a png at all" * 8)
    return folder


def test_inference_writes_one_result_per_readable_case_and_is_idempotent(
    trained, inference_inputs, run_bundle, tmp_path
):
    out = tmp_path / "predictions"
    pngs = sorted(p.stem for p in inference_inputs.glob("*.png") if p.name != "broken.png")
    args = dict(
        dataset_dir=str(inference_inputs),
        output_dir=str(out),
        ckpt_path=str(trained.ckpt_dir / "model.pt"),
        batch_size=1,
        **SMALL,
    )  # batch_size: the shipped inference batch size, one case at a time
    run_bundle(BUNDLE, INFERENCE, workflow_type="infer", **args)
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(["RG1_UNCI", *pngs])
    for path in out.glob("*.json"):
        record = json.loads(path.read_text())
        assert record["case_id"] == path.stem
        assert list(record["probabilities"]) == NIH_CLASSES
        assert all(0.0 <= p <= 1.0 for p in record["probabilities"].values())
    with open(out / "skipped.csv", newline="") as f:
        skipped = list(csv.DictReader(f))
    assert [(r["case_id"], Path(r["image"]).name) for r in skipped] == [("broken", "broken.png")]
    assert skipped[0]["error"]
    predictions = pd.read_csv(out / "predictions.csv")
    assert predictions["case_id"].tolist() == sorted(["RG1_UNCI", *pngs])
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    run_bundle(BUNDLE, INFERENCE, workflow_type="infer", **args)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert sorted(after) == sorted(before)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert {k: after[k][1] for k in after if k.endswith(".json")} == {
        k: before[k][1] for k in before if k.endswith(".json")
    }  # results are never rewritten


def test_inference_batches_mixed_dicom_and_png(trained, inference_inputs, run_bundle, tmp_path):
    (inference_inputs / "broken.png").unlink()
    out = tmp_path / "predictions"
    run_bundle(BUNDLE, INFERENCE, workflow_type="infer", dataset_dir=str(inference_inputs), output_dir=str(out),
               ckpt_path=str(trained.ckpt_dir / "model.pt"), batch_size=3, **SMALL)  # fmt: skip
    records = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert sorted(records) == sorted(p.stem for p in inference_inputs.iterdir())
    assert all(Path(r["image"]).is_file() for r in records.values())


def test_dataset_csv_without_a_column_names_it(trained, run_bundle, tmp_path, caused_by):
    nih = tmp_path / "nih"
    shutil.copytree(trained.demo / "nih", nih, ignore=shutil.ignore_patterns("images"))
    os.symlink(trained.demo / "nih" / "images", nih / "images")
    entries = pd.read_csv(nih / "Data_Entry_2017_v2020.csv")
    entries.drop(columns=["Finding Labels"]).to_csv(nih / "Data_Entry_2017_v2020.csv", index=False)
    # MONAI wraps errors raised inside a "$" expression in RuntimeError("Failed to evaluate ...") from the original
    with pytest.raises(RuntimeError) as info:
        run_bundle(BUNDLE, TRAIN, dataset_dir=str(nih), epochs=1, ckpt_dir=str(tmp_path / "m"),
                   output_dir=str(tmp_path / "e"), **SMALL)  # fmt: skip
    message = r"Data_Entry_2017_v2020\.csv' is missing column\(s\) \['Finding Labels'\]"
    caused_by(info.value, DatasetLayoutError, message)


def test_checkpoint_of_another_class_count_names_the_size_mismatch(trained, run_bundle, tmp_path, caused_by):
    net8 = DenseNet121(spatial_dims=2, in_channels=3, out_channels=8)
    torch.save({"model": net8.state_dict()}, tmp_path / "model8.pt")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(sorted((trained.demo / "nih" / "images").glob("*.png"))[0], inputs / "case.png")
    with pytest.raises(RuntimeError) as info:  # the shipped inference config: its DenseNet121 checks the file
        run_bundle(BUNDLE, "configs/inference.json", workflow_type="infer", dataset_dir=str(inputs),
                   output_dir=str(tmp_path / "o"), ckpt_path=str(tmp_path / "model8.pt"))  # fmt: skip
    caused_by(
        info.value,
        ValueError,
        r"model8\.pt.*'class_layers\.out\.weight': checkpoint \(8, 1024\) vs network \(14, 1024\).*--setting",
    )
    assert not list((tmp_path / "o").glob("*.json"))


class _NaNLogits(torch.nn.Module):
    """``B 3 H W`` -> ``B C`` logits that are all NaN."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3))) * float("nan")


def test_nan_logits_stop_training_with_floating_point_error(trained, run_bundle, tmp_path, caused_by):
    with pytest.raises(RuntimeError) as info:
        run_bundle(BUNDLE, TRAIN, dataset_dir=str(trained.demo / "nih"), epochs=1, network_def=_NaNLogits(14),
                   ckpt_dir=str(tmp_path / "m"), output_dir=str(tmp_path / "e"))  # fmt: skip
    caused_by(info.value, FloatingPointError, rf"logits are nan/inf for {BATCH} of {BATCH} samples")


@pytest.mark.skipif(not (BUNDLE / MULTI_GPU).exists(), reason=f"{MULTI_GPU} not written yet")
def test_two_process_gloo_training(cxr_demo, tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
        "-m", "monai.bundle", "run", "--config_file", f"['{TRAIN[0]}','{DEMO}','{MULTI_GPU}']",
        "--bundle_root", str(BUNDLE), "--dist_backend", "gloo", "--dataset_dir", str(cxr_demo / "nih"),
        "--epochs", "1", "--batch_size", "8", "--network_def", SMALL["network_def"],
        "--ckpt_dir", str(tmp_path / "models"), "--output_dir", str(tmp_path / "eval"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=BUNDLE, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "models" / "last.pt").is_file()
    assert (tmp_path / "eval" / "label_audit.csv").is_file()


def test_padchest_images_scaled_by_their_stored_bits(cxr_demo):
    """PadChest's 16-bit PNGs hold 12-bit values (``BitsStored_DICOM``): the bundle's load transforms divide by
    2**12 - 1, not by the 16-bit container's 2**16 - 1 (which put every image into [0, 0.0625])."""
    from monai.transforms import Compose
    from PIL import Image

    from monai_ext.bundle.workflow import bundle_parser

    parser = bundle_parser(
        BUNDLE, EVALUATE, {"test_set": "padchest", "test_dir": str(cxr_demo / "padchest"), "output_dir": "unused"}
    )
    item = parser.get_parsed_content("validate#datalist")[0]
    assert item["bits_stored"] == 12
    loaded = Compose(parser.get_parsed_content("validate#load_transforms"))(dict(item))["image"]
    raw = np.asarray(Image.open(item["image"]), dtype=np.float64)
    assert raw.max() > 2**11  # the demo image really uses the 12 bits
    np.testing.assert_allclose(np.asarray(loaded)[0], raw.T / 4095.0, atol=1e-5)
