# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""End-to-end runs of ``bundles/rop_meta_softlabel_classification`` with its ``configs/demo.json`` small-run overlay
on a tiny ROP demo set (40 x 40 images, 2-3 epochs with one warm-up epoch, CPU): training with the meta stage and
its checkpoint, the soft-label report, the baselines and the label network, evaluation, inference on PNG / JPEG /
DICOM photographs, the DR pre-training overlay, a two-process run, and the errors a user meets with bad inputs."""

from __future__ import annotations

import csv
import json
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
from monai.transforms import MapTransform
from PIL import Image

from monai_ext.data import rop_datalist
from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.demo.eyepacs import write_eyepacs_demo

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "rop_meta_softlabel_classification"
DEMO = "configs/demo.json"
TRAIN, INFERENCE = ["configs/train.json", DEMO], ["configs/inference.json", DEMO]
EVALUATE = [*TRAIN, "configs/evaluate.json"]
PRETRAIN = [*TRAIN, "configs/pretrain_dr.json"]
MULTI_GPU = "configs/multi_gpu_train.json"
CLASSES = ["normal", "pre-plus", "plus"]
BATCH = json.loads((BUNDLE / DEMO).read_text())["batch_size"]  # the demo overlay's training batch size
K = 10.0  # train.json's label_init_scale
# the demo overlay's small ResNet on 40 x 40 images cropped to 32, one warm-up epoch, meta batches of 2 (the tiny
# meta split has 3-5 images; the meta loader drops the last partial batch)
SMALL = {"network_def": "%small_network_def", "resize_size": 40, "image_size": 32, "meta_batch_size": 2}
SMALL_TRAIN = {**SMALL, "warmup_epochs": 1}
CKPT_KEYS = {"model", "soft_labels", "label_network", "label_optimizer", "optimizer", "lr_scheduler", "rng", "trainer"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: the runs are tiny and the machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def meta_file(tmp_path_factory) -> dict:
    """``{"meta_file": path}`` of a stand-in metadata file while the bundle has none (inference reads
    ``_meta_#version``), else ``{}``."""
    if (BUNDLE / "configs" / "metadata.json").is_file():
        return {}
    path = tmp_path_factory.mktemp("rop_meta") / "metadata.json"
    path.write_text(json.dumps({"version": "0.0.0-test"}))
    return {"meta_file": str(path)}


def _train(run_bundle, dataset_dir: Path, out: Path, config=TRAIN, hooks=(), **override):
    return run_bundle(
        BUNDLE, config, hooks=hooks, dataset_dir=str(dataset_dir), ckpt_dir=str(out / "models"),
        output_dir=str(out / "eval"), **{**SMALL_TRAIN, **override},
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(rop_demo, run_bundle, tmp_path_factory) -> SimpleNamespace:
    """Two epochs (one warm-up, one meta epoch) on the ROP demo, shared by the tests that need a checkpoint."""
    out = tmp_path_factory.mktemp("rop_train")
    seen = {}

    def probe(wf):
        store = wf.parser.get_parsed_content("soft_labels")
        wf.parser.get_parsed_content("train#trainer").add_event_handler(
            Events.EPOCH_STARTED(once=2), lambda e: seen.update(start_of_meta=store.label_logits.detach().clone())
        )

    wf = _train(run_bundle, rop_demo, out, hooks=[probe], epochs=2)
    datalist = wf.parser.get_parsed_content("train#datalist")
    return SimpleNamespace(ckpt_dir=out / "models", output_dir=out / "eval", datalist=datalist, demo=rop_demo, **seen)


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


def test_train_checkpoint_holds_the_moved_soft_labels_and_the_label_network(trained):
    assert {"model.pt", "last.pt"} <= {p.name for p in trained.ckpt_dir.glob("*.pt")}
    ckpt = _load(trained.ckpt_dir / "last.pt")
    assert set(ckpt) == CKPT_KEYS
    n = len(trained.datalist)
    noisy = torch.tensor([item["label"] for item in trained.datalist])
    store = ckpt["soft_labels"]
    torch.testing.assert_close(store["noisy_labels"], noisy, rtol=0, atol=0)
    init = K * torch.nn.functional.one_hot(noisy, 3).float()
    # the logits entering the meta epoch are K * onehot(noisy label) (Sec. III-B); the meta epoch visits every row
    # once (the training loader keeps its last partial batch) and Eq. 2 moves each of them
    torch.testing.assert_close(trained.start_of_meta, init, rtol=0, atol=0)
    assert store["label_logits"].shape == (n, 3)
    assert store["num_updates"].tolist() == [1] * n
    moved = (store["label_logits"] - init).abs().amax(dim=1)
    assert bool((moved > 1e-3).all()), f"rows not moved by Eq. 2: {(moved <= 1e-3).nonzero().flatten().tolist()}"
    assert int(ckpt["trainer"]["iteration"]) == 2 * -(-n // BATCH)
    assert {"linear.weight", "linear.bias"} <= set(ckpt["label_network"])
    assert not bool(ckpt["label_network"]["encoder_ready"])  # the per-sample mode never builds the label network


def test_soft_labels_csv_matches_the_saved_store_and_the_datalist(trained):
    logits = _load(trained.ckpt_dir / "last.pt")["soft_labels"]["label_logits"]
    soft = torch.softmax(logits.double(), dim=1).numpy()
    table = pd.read_csv(trained.output_dir / "soft_labels.csv", keep_default_na=False)
    assert table["index"].tolist() == [item["index"] for item in trained.datalist]
    assert table["image"].tolist() == [item["image"] for item in trained.datalist]
    assert table["noisy_label"].tolist() == [item["label"] for item in trained.datalist]
    annotators = trained.datalist[0]["annotators"]
    assert annotators == ["A1", "A2", "A3"]
    for k, a in enumerate(annotators):
        assert table[f"label_{a}"].tolist() == [item["annotator_labels"][k] for item in trained.datalist], a
    probs = table[[f"soft_{c}" for c in CLASSES]].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(probs, soft[table["index"]], rtol=1e-6, atol=1e-7)  # float32 store vs float64 softmax
    argmax = probs.argmax(axis=1)
    assert table["soft_argmax"].tolist() == argmax.tolist()
    assert table["changed"].tolist() == ["yes" if a != y else "no" for a, y in zip(argmax, table["noisy_label"])]
    assert (trained.output_dir / "soft_labels_moved.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_label_network_source_trains_and_saves_its_encoder(rop_demo, run_bundle, tmp_path):
    _train(run_bundle, rop_demo, tmp_path, epochs=2, soft_label_source="network")
    ckpt = _load(tmp_path / "models" / "last.pt")
    assert bool(ckpt["label_network"]["encoder_ready"])
    assert any(k.startswith("encoder.") for k in ckpt["label_network"]), sorted(ckpt["label_network"])[:5]
    # the label network's Adam moved its linear layer in the meta epoch
    assert ckpt["label_optimizer"]["state"], "the label optimizer never stepped"


@pytest.mark.parametrize("method", ["cross_entropy", "annotator_average"])
def test_baselines_run_and_cross_entropy_keeps_the_initial_labels(rop_demo, run_bundle, tmp_path, method):
    wf = _train(run_bundle, rop_demo, tmp_path, epochs=2, soft_label_method=method)
    store = _load(tmp_path / "models" / "last.pt")["soft_labels"]
    assert int(store["num_updates"].sum()) == 0  # no meta step in a baseline
    init = K * torch.nn.functional.one_hot(store["noisy_labels"], 3).float()
    torch.testing.assert_close(store["label_logits"], init, rtol=0, atol=0)
    assert wf.parser.get_parsed_content("train#trainer").state.epoch == 2


def test_evaluate_report_accuracy_matches_its_predictions(trained, run_bundle, tmp_path):
    run_bundle(BUNDLE, EVALUATE, dataset_dir=str(trained.demo), ckpt_dir=str(trained.ckpt_dir),
               output_dir=str(tmp_path), **SMALL)  # fmt: skip
    report = json.loads((tmp_path / "classification_report.json").read_text())
    table = pd.read_csv(tmp_path / "predictions.csv")
    test = rop_datalist(trained.demo, split="test", num_classes=3)
    assert sorted(table["image"]) == sorted(item["image"] for item in test)
    truth = {item["image"]: CLASSES[item["label"]] for item in test}
    assert table["true_label"].tolist() == [truth[i] for i in table["image"]]
    probs = table[[f"prob_{c}" for c in CLASSES]].to_numpy()
    predicted = [CLASSES[k] for k in probs.argmax(axis=1)]
    assert table["predicted_label"].tolist() == predicted
    accuracy = float(np.mean(np.array(predicted) == table["true_label"].to_numpy()))
    assert report["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inference_preprocessing_equals_the_validation_preprocessing(trained):
    from monai.transforms import Compose

    from monai_ext.bundle.workflow import bundle_parser

    png = trained.datalist[0]["image"]
    overrides = {**SMALL, "dataset_dir": str(trained.demo)}
    val = bundle_parser(BUNDLE, TRAIN, overrides).get_parsed_content("validate#preprocessing")
    infer = bundle_parser(BUNDLE, INFERENCE, {k: v for k, v in overrides.items() if k != "meta_batch_size"})
    got = infer.get_parsed_content("preprocessing")({"image": png})
    expected = val({"image": png, "label": 0, "index": 0})
    assert isinstance(val, Compose) and got["image"].shape == (3, 32, 32)
    torch.testing.assert_close(torch.as_tensor(got["image"]), torch.as_tensor(expected["image"]), rtol=0, atol=0)
    assert got["image_path"] == png


def _rgb_dicom(path: Path, pixels: np.ndarray) -> None:
    """Write ``H x W x 3`` uint8 ``pixels`` as an uncompressed RGB secondary-capture DICOM."""
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "OP", "ROP-TEST"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_inference_on_png_jpeg_and_dicom_writes_one_result_each_and_never_rewrites(
    trained, run_bundle, meta_file, tmp_path
):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    png = Path(trained.datalist[0]["image"])
    shutil.copy(png, inputs / "case_png.png")
    rgb = np.asarray(Image.open(png).convert("RGB"))
    Image.fromarray(rgb).save(inputs / "case_jpeg.jpg", quality=95)
    _rgb_dicom(inputs / "case_dicom.dcm", rgb)
    (inputs / "broken.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"not a dicom dataset" * 4)
    out = tmp_path / "predictions"
    args = dict(dataset_dir=str(inputs), output_dir=str(out), ckpt_path=str(trained.ckpt_dir / "model.pt"), **meta_file)
    args.update({k: v for k, v in SMALL.items() if k != "meta_batch_size"})
    run_bundle(BUNDLE, INFERENCE, workflow_type="infer", **args)
    records = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert sorted(records) == ["case_dicom", "case_jpeg", "case_png"]
    for case, record in records.items():
        assert record["case_id"] == case
        assert list(record["probabilities"]) == CLASSES
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert record["predicted_class"] == max(record["probabilities"], key=record["probabilities"].get)
    # the DICOM holds the PNG's pixels losslessly: the same probabilities
    assert records["case_dicom"]["probabilities"] == pytest.approx(records["case_png"]["probabilities"], abs=1e-6)
    with open(out / "skipped.csv", newline="") as f:
        skipped = list(csv.DictReader(f))
    assert [Path(r["image"]).name for r in skipped] == ["broken.dcm"] and skipped[0]["error"]
    table = pd.read_csv(out / "predictions.csv")
    assert table["case_id"].tolist() == sorted(records)
    assert table["predicted_class"].tolist() == [records[c]["predicted_class"] for c in table["case_id"]]
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    run_bundle(BUNDLE, INFERENCE, workflow_type="infer", **args)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert sorted(after) == sorted(before)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert {k: after[k][1] for k in after if k.endswith(".json")} == {
        k: before[k][1] for k in before if k.endswith(".json")
    }  # results are never rewritten


# ---- bad input ---------------------------------------------------------------------------------------------------


def _copy_demo(demo: Path, to: Path) -> Path:
    """A copy of the demo's tables with its images linked (for editing ``labels.csv`` / ``splits.csv``)."""
    to.mkdir()
    for name in ("labels.csv", "splits.csv", "annotators.json"):
        shutil.copy(demo / name, to / name)
    (to / "images").symlink_to(demo / "images")
    return to


def test_meta_set_without_plus_names_the_class(rop_demo, run_bundle, tmp_path, caused_by):
    data = _copy_demo(rop_demo, tmp_path / "rop")
    labels, splits = pd.read_csv(data / "labels.csv", dtype=str), pd.read_csv(data / "splits.csv", dtype=str)
    meta_infants = set(splits.loc[splits["split"] == "meta", "infant_id"])
    plus = labels["infant_id"].isin(meta_infants) & (labels["label_consensus"] == "2")
    assert plus.any(), "the demo's meta split has no consensus plus image to remove"
    labels = labels[~plus]  # the meta infants keep their other images
    labels.to_csv(data / "labels.csv", index=False)
    with pytest.raises(RuntimeError) as info:
        _train(run_bundle, data, tmp_path, epochs=1)
    caused_by(info.value, ValueError, r"meta set has no image of class\(es\) 2 \(plus\)")
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").glob("*.pt"))


def test_test_image_listed_in_training_is_refused(rop_demo, run_bundle, tmp_path, caused_by):
    train = rop_datalist(rop_demo, split="train", num_classes=3)
    leaked = dict(rop_datalist(rop_demo, split="test", num_classes=3)[0], index=len(train))
    with pytest.raises(RuntimeError) as info:
        _train(run_bundle, rop_demo, tmp_path, epochs=1, **{"train#datalist": [*train, leaked]})
    caused_by(info.value, ValueError, rf"test image '{leaked['image_id']}' .* is also in the train list \(train index "
              rf"{len(train)}, same image\)")  # fmt: skip


def test_unknown_annotator_label_names_file_line_and_column(rop_demo, run_bundle, tmp_path, caused_by):
    data = _copy_demo(rop_demo, tmp_path / "rop")
    lines = (data / "labels.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = lines[5].split(",")
    row[header.index("label_A2")] = "7"
    lines[5] = ",".join(row)
    (data / "labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(RuntimeError) as info:
        _train(run_bundle, data, tmp_path, epochs=1)
    # data row 4 is line 6 of the file (the header is line 1)
    caused_by(info.value, DatasetLayoutError, r"labels\.csv', line 6, column 'label_A2': expected a class in \[0, 3\) "
              r"or empty, found 7")  # fmt: skip


class _NaNImage(MapTransform):
    """Replace the image of the one item whose ``image_path`` ends with ``name`` by NaN."""

    def __init__(self, name: str) -> None:
        super().__init__(keys="image")
        self.name = name

    def __call__(self, data):
        d = dict(data)
        if str(d["image_path"]).endswith(self.name):
            d["image"] = d["image"] * float("nan")
        return d


def test_nan_training_image_stops_training_naming_the_file(rop_demo, run_bundle, tmp_path, caused_by):
    bad = rop_datalist(rop_demo, split="train", num_classes=3)[3]["image"]
    name = str(Path(bad).relative_to(rop_demo))
    with pytest.raises(RuntimeError) as info:  # in the warm-up's first epoch
        _train(run_bundle, rop_demo, tmp_path, epochs=1, **{"train#random_transforms": [_NaNImage(name)]})
    caused_by(info.value, FloatingPointError, rf"{Path(bad).name}")


# ---- DR pre-training and distributed training --------------------------------------------------------------------


def test_pretrain_dr_checkpoint_initialises_the_rop_backbone(rop_demo, run_bundle, tmp_path_factory, tmp_path):
    eyepacs = tmp_path_factory.mktemp("eyepacs_demo") / "eyepacs"
    write_eyepacs_demo(eyepacs, size=0.1, seed=0, image_size=40)
    dr = tmp_path / "dr"
    run_bundle(BUNDLE, PRETRAIN, dataset_dir=str(eyepacs), ckpt_dir=str(dr / "models_dr"),
               output_dir=str(dr / "eval_dr"), **SMALL)  # fmt: skip
    dr_ckpt = _load(dr / "models_dr" / "model.pt")
    assert dr_ckpt["model"]["fc.weight"].shape[0] == 2  # no DR / DR
    seen = {}

    def probe(wf):  # attached after the bundle's CheckpointLoaders: sees the loaded weights
        net = wf.parser.get_parsed_content("network")
        wf.parser.get_parsed_content("train#trainer").add_event_handler(
            Events.STARTED, lambda e: seen.update({k: v.detach().clone() for k, v in net.state_dict().items()})
        )

    _train(run_bundle, rop_demo, tmp_path / "rop", hooks=[probe], epochs=1,
           pretrained_ckpt=str(dr / "models_dr" / "model.pt"))  # fmt: skip
    torch.testing.assert_close(seen["conv1.weight"], dr_ckpt["model"]["conv1.weight"], rtol=0, atol=0)
    assert seen["fc.weight"].shape[0] == 3  # the 2-class head was skipped (strict_shape false)
    rop_ckpt = _load(tmp_path / "rop" / "models" / "last.pt")
    assert not torch.equal(rop_ckpt["model"]["conv1.weight"], dr_ckpt["model"]["conv1.weight"])  # then it trained


def test_two_process_gloo_training_runs_the_meta_stage(rop_demo, meta_file, tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
        "-m", "monai.bundle", "run", "--config_file", f"['{TRAIN[0]}','{DEMO}','{MULTI_GPU}']",
        "--bundle_root", str(BUNDLE), "--dist_backend", "gloo", "--dataset_dir", str(rop_demo),
        "--epochs", "2", "--warmup_epochs", "1", "--batch_size", "8", "--meta_batch_size", "1",
        "--resize_size", "40", "--image_size", "32", "--network_def", SMALL["network_def"],
        "--ckpt_dir", str(tmp_path / "models"), "--output_dir", str(tmp_path / "eval"),
    ]  # fmt: skip
    if meta_file:
        command[command.index("--bundle_root") : command.index("--bundle_root")] = [
            "--meta_file",
            meta_file["meta_file"],
        ]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=BUNDLE, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    ckpt = _load(tmp_path / "models" / "last.pt")
    n = ckpt["soft_labels"]["label_logits"].shape[0]
    # the meta epoch: every row written (gathered from both ranks; DistributedSampler pads with repeats)
    assert bool((ckpt["soft_labels"]["num_updates"] >= 1).all())
    table = pd.read_csv(tmp_path / "eval" / "soft_labels.csv")
    assert len(table) == n
