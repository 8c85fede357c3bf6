# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.handlers.prediction_writer: a tiny SupervisedEvaluator over a real DICOM, a PNG and a JPEG
(plus a corrupt DICOM and a truncated PNG that end in skipped.csv) writes one JSON per case and predictions.csv; a
rerun changes nothing; overwrite=True rewrites."""

from __future__ import annotations

import csv
import json
import logging
import os

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.transforms import Activationsd, Compose, LoadImaged, Resized
from PIL import Image

from monai_ext.data.inference import case_kind, pending_cases, prepare_inference_datalist
from monai_ext.handlers.mask_writer import SegmentationMaskWriter
from monai_ext.handlers.prediction_writer import PredictionWriter, write_predictions_csv
from monai_ext.transforms.dicom import NormalizeRadiographd

CLASSES = ["Effusion", "Nodule", "Pneumothorax"]
SIZE = (32, 32)


def _grey(seed: int, size=(48, 40)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8), mode="L")


@pytest.fixture
def input_dir(tmp_path, rg1_unci_path):
    root = tmp_path / "in"
    for sub in ("dicom", "png", "jpeg", "bad"):
        (root / sub).mkdir(parents=True)
    os.symlink(rg1_unci_path, root / "dicom" / "RG1_UNCI.dcm")
    _grey(1).save(root / "png" / "chest.png")
    _grey(2).save(root / "jpeg" / "frontal.jpg", quality=90)
    (root / "bad" / "corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + np.random.default_rng(3).bytes(4000))
    _grey(4).save(root / "bad" / "truncated.png")
    full = (root / "bad" / "truncated.png").read_bytes()
    (root / "bad" / "truncated.png").write_bytes(full[: len(full) // 2])
    return root


def _preprocessing() -> Compose:
    return Compose(
        [
            LoadImaged("image", reader="PydicomReader", ensure_channel_first=True),
            NormalizeRadiographd("image"),
            Resized("image", SIZE),
        ]
    )


@pytest.fixture
def network() -> torch.nn.Module:
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, len(CLASSES)),
    )
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net.eval()


def _run(datalist, network, out, **writer_kwargs) -> PredictionWriter:
    writer = PredictionWriter(out, CLASSES, name="test_writer", **writer_kwargs)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(datalist, _preprocessing()), batch_size=2, num_workers=0),
        network=network,
        postprocessing=Activationsd(keys="pred", sigmoid=True),
        val_handlers=[writer],
    )
    evaluator.run()
    return writer


def _snapshot(folder):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.glob("*.json"))}


def test_inference_run_writes_skips_and_never_overwrites(input_dir, tmp_path, network, caplog):
    out = tmp_path / "out"
    todo = prepare_inference_datalist(input_dir, out, "radiograph", reader="PydicomReader")
    ids = ["dicom__RG1_UNCI", "jpeg__frontal", "png__chest"]
    assert [d["case_id"] for d in todo] == ids
    with open(out / "skipped.csv", newline="") as f:
        skipped = list(csv.DictReader(f))
    assert [(r["case_id"], r["image"]) for r in skipped] == [
        ("bad__corrupt", str(input_dir / "bad/corrupt.dcm")),
        ("bad__truncated", str(input_dir / "bad/truncated.png")),
    ]
    assert "corrupt.dcm' has no pixel data" in skipped[0]["error"]  # garbage after the preamble: no Pixel Data tag
    assert skipped[1]["error"].startswith("OSError: ") and "truncated" in skipped[1]["error"].lower()

    writer = _run(todo, network, out, model_version="0.1.0")
    assert writer.written == ids and writer.kept == []
    # expected probabilities computed here, one image at a time, without the evaluator
    with torch.no_grad():
        expected = {d["case_id"]: torch.sigmoid(network(_preprocessing()(d)["image"][None]))[0] for d in todo}
    records = {}
    for item in todo:
        record = json.loads((out / f"{item['case_id']}.json").read_text())
        assert list(record) == ["case_id", "image", "model_version", "probabilities"]
        assert record["case_id"] == item["case_id"] and record["image"] == item["image"]
        assert record["model_version"] == "0.1.0"
        assert list(record["probabilities"]) == CLASSES
        np.testing.assert_allclose(list(record["probabilities"].values()), expected[item["case_id"]], rtol=1e-5)
        records[item["case_id"]] = record
    assert len({tuple(r["probabilities"].values()) for r in records.values()}) == 3  # the cases differ

    # predictions.csv holds exactly the JSON values
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case_id", "image", *CLASSES]
    assert [r[0] for r in rows[1:]] == ids
    for row in rows[1:]:
        record = records[row[0]]
        assert row[1] == record["image"]
        assert [float(v) for v in row[2:]] == list(record["probabilities"].values())

    # a rerun finds nothing to do; forcing the same cases through the evaluator overwrites nothing
    before, csv_before = _snapshot(out), (out / "predictions.csv").read_bytes()
    assert prepare_inference_datalist(input_dir, out, "radiograph", reader="PydicomReader") == []
    with caplog.at_level(logging.WARNING, logger="test_writer"):
        writer = _run(todo, network, out, model_version="0.2.0")
    assert writer.written == [] and writer.kept == ids
    assert "3 case(s) already had a result" in caplog.text
    assert _snapshot(out) == before
    assert (out / "predictions.csv").read_bytes() == csv_before
    assert not list(out.glob(".*.tmp"))

    # overwrite=True rewrites every result (new model version), and the CSV still matches
    writer = _run(todo, network, out, model_version="0.2.0", overwrite=True)
    assert writer.written == ids
    for case_id in ids:
        assert json.loads((out / f"{case_id}.json").read_text())["model_version"] == "0.2.0"
    assert _snapshot(out) != before


def test_batch_first_dict_output(tmp_path):
    # decollate=False: one dict per iteration, tensors batch-first, case ids collated into a list
    out = tmp_path / "out"
    outputs = [{"pred": torch.tensor([[0.25, 0.5, 1.0], [0.0, 0.125, 0.75]])}]
    batches = [{"case_id": ["c1", "c2"], "image": ["/d/c1.png", "/d/c2.png"]}]
    engine = Engine(lambda e, batch: outputs[0])
    PredictionWriter(out, CLASSES).attach(engine)
    engine.run(batches, max_epochs=1)
    assert json.loads((out / "c2.json").read_text()) == {
        "case_id": "c2",
        "image": "/d/c2.png",
        "probabilities": {"Effusion": 0.0, "Nodule": 0.125, "Pneumothorax": 0.75},
    }
    assert (out / "predictions.csv").read_text().splitlines() == [
        "case_id,image,Effusion,Nodule,Pneumothorax",
        "c1,/d/c1.png,0.25,0.5,1.0",
        "c2,/d/c2.png,0.0,0.125,0.75",
    ]


@pytest.mark.parametrize(
    "pred, case_id, error, match",
    [
        ([2.0, -1.0, 0.5], "c", ValueError, r"span \[-1, 2\], not probabilities .* Activationsd"),
        ([0.1, 0.2], "c", ValueError, "2 values but 3 class names"),
        ([0.1, 0.2, 0.3], "../c", ValueError, "not a safe file name"),
    ],
)
def test_write_rejects_bad_predictions(tmp_path, pred, case_id, error, match):
    with pytest.raises(error, match=match):
        PredictionWriter(tmp_path, CLASSES).write(case_id, "/d/c.png", torch.tensor(pred))
    assert not list(tmp_path.iterdir())


def test_missing_case_id_and_bad_options(tmp_path):
    engine = Engine(lambda e, batch: [{"pred": torch.tensor([0.1, 0.2, 0.3])}])
    PredictionWriter(tmp_path, CLASSES).attach(engine)
    with pytest.raises(KeyError, match="engine.state.batch have no 'case_id'"):
        engine.run([[{"image": "/d/c.png"}]], max_epochs=1)
    with pytest.raises(ValueError, match="each class once"):
        PredictionWriter(tmp_path, ["a", "a"])


def test_predictions_csv_skips_foreign_json_and_adds_other_classes(tmp_path, caplog):
    (tmp_path / "a.json").write_text(json.dumps({"case_id": "a", "image": "/a.png", "probabilities": {"x": 0.5}}))
    (tmp_path / "b.json").write_text(json.dumps({"case_id": "b", "image": "/b.png", "probabilities": {"y": 0.1}}))
    (tmp_path / "config.json").write_text(json.dumps({"epochs": 3}))
    (tmp_path / "broken.json").write_text('{"case_id": ')
    with caplog.at_level(logging.WARNING):
        path = write_predictions_csv(tmp_path, ["x"])
    assert path.read_text().splitlines() == ["case_id,image,x,y", "a,/a.png,0.5,", "b,/b.png,,0.1"]
    assert "config.json' left out of predictions.csv: not a prediction file" in caplog.text
    assert "broken.json' left out" in caplog.text
    assert "other classes ['y']" in caplog.text


@pytest.mark.parametrize(
    "writer_class, kind, pred",
    [
        (PredictionWriter, "radiograph", (torch.tensor([0.1, 0.2, 0.3]),)),
        (SegmentationMaskWriter, "volume", (np.zeros((4, 3, 2), np.uint8), np.eye(4))),
    ],
)
def test_a_written_result_is_the_kinds_result_and_marks_the_case_done(tmp_path, writer_class, kind, pred):
    writer = writer_class(tmp_path, CLASSES)
    assert writer.result_path("c1") == case_kind(kind).result_path(tmp_path, "c1")
    assert writer.write("c1", "/d/c1", *pred)
    assert writer.result_path("c1").is_file()
    items = [{"case_id": "c1", "image": "/d/c1"}, {"case_id": "c2", "image": "/d/c2"}]
    assert pending_cases(items, tmp_path, kind) == [items[1]]
