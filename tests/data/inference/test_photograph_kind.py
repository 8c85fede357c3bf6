# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for the photograph input kind (monai_ext.data.inference.photograph) and single-label PredictionWriter
results: colour PNG/JPEG/DICOM photographs are cases, corrupt files and unsupported layouts end in skipped.csv with
the reason, and a softmax inference run writes <case_id>.json with the predicted class and predictions.csv."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.transforms import Activationsd, CenterSpatialCropd, Compose, NormalizeIntensityd, Resized
from PIL import Image

from monai_ext.data.inference import case_kind, check_readable, pending_cases, prepare_inference_datalist
from monai_ext.handlers.prediction_writer import PredictionWriter, write_predictions_csv
from monai_ext.transforms import LoadPhotographd
from tests.transforms.test_photograph import IMAGENET_MEAN, IMAGENET_STD, write_photo_dicom

CLASSES = ["normal", "pre-plus", "plus"]


def _rgb(seed: int, shape=(60, 64)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


@pytest.fixture
def photo_dir(tmp_path):
    root = tmp_path / "in"
    (root / "good").mkdir(parents=True)
    (root / "bad").mkdir()
    Image.fromarray(_rgb(0)).save(root / "good" / "a.png")
    Image.fromarray(_rgb(1)).save(root / "good" / "b.jpg", quality=90)
    write_photo_dicom(root / "good" / "c.dcm", _rgb(2))
    write_photo_dicom(root / "good" / "d.dcm", _rgb(3), "YBR_FULL")
    write_photo_dicom(root / "good" / "e.dcm", _rgb(4)[..., 0].copy(), "MONOCHROME2")
    (root / "bad" / "corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + np.random.default_rng(5).bytes(4000))
    write_photo_dicom(root / "bad" / "palette.dcm", np.zeros((8, 8), np.uint8), "PALETTE COLOR")
    Image.fromarray(_rgb(6)).convert("CMYK").save(root / "bad" / "cmyk.jpg")
    write_photo_dicom(root / "bad" / "short.dcm", _rgb(7))
    data = (root / "bad" / "short.dcm").read_bytes()
    (root / "bad" / "short.dcm").write_bytes(data[:-500])
    return root


def test_unreadable_and_unsupported_are_skipped_with_the_reason(photo_dir, tmp_path):
    out = tmp_path / "out"
    readable = prepare_inference_datalist(photo_dir, out, "photograph")
    assert [item["case_id"] for item in readable] == ["good__a", "good__b", "good__c", "good__d", "good__e"]
    with open(out / "skipped.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    reasons = {row["case_id"]: row["error"] for row in rows}
    assert sorted(reasons) == ["bad__cmyk", "bad__corrupt", "bad__palette", "bad__short"]
    assert "mode 'CMYK' is not supported" in reasons["bad__cmyk"]
    assert "PhotometricInterpretation 'PALETTE COLOR' is not supported" in reasons["bad__palette"]
    assert "short.dcm' is truncated: the pixel data needs 11520 bytes" in reasons["bad__short"]
    assert "corrupt.dcm' has no pixel data" in reasons["bad__corrupt"]  # garbage tags, no Pixel Data element
    # the header level finds the same files (no decoding needed for these)
    _, unreadable = check_readable(
        [{"image": str(p)} for p in sorted((photo_dir / "bad").iterdir())], "photograph", level="header"
    )
    assert len(unreadable) == 4
    # the photograph kind's result is <case_id>.json, as the radiograph kind's
    assert case_kind("photograph").result_path(out, "x").name == "x.json"


def _network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 3))


def _preprocessing() -> Compose:
    return Compose(
        [
            LoadPhotographd("image"),
            Resized("image", spatial_size=(40, 40), mode="area"),
            CenterSpatialCropd("image", roi_size=(32, 32)),
            NormalizeIntensityd("image", subtrahend=IMAGENET_MEAN, divisor=IMAGENET_STD, channel_wise=True),
        ]
    )


def _run(datalist, out, network, overwrite=False) -> PredictionWriter:
    writer = PredictionWriter(out, CLASSES, single_label=True, input_kind="photograph", overwrite=overwrite)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(datalist, _preprocessing()), batch_size=2),
        network=network,
        postprocessing=Activationsd(keys="pred", softmax=True),
        val_handlers=[writer],
    )
    evaluator.run()
    return writer


def test_softmax_inference_writes_predicted_class(photo_dir, tmp_path):
    out = tmp_path / "out"
    datalist = prepare_inference_datalist(photo_dir, out, "photograph")
    network = _network().eval()
    writer = _run(datalist, out, network)
    assert sorted(writer.written) == ["good__a", "good__b", "good__c", "good__d", "good__e"]
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case_id", "image", "predicted_class", *CLASSES]
    for item, row in zip(datalist, rows[1:]):
        record = json.loads((out / f"{item['case_id']}.json").read_text())
        assert list(record) == ["case_id", "image", "predicted_class", "probabilities"]
        with torch.no_grad():
            expected = torch.softmax(network(_preprocessing()({"image": item["image"]})["image"][None]), dim=1)[0]
        probs = [record["probabilities"][c] for c in CLASSES]
        assert np.allclose(probs, expected.numpy(), atol=1e-6) and sum(probs) == pytest.approx(1.0)
        assert record["predicted_class"] == CLASSES[int(expected.argmax())]
        assert row == [item["case_id"], item["image"], record["predicted_class"], *(repr(p) for p in probs)]
    # resumable: every case is done now
    assert pending_cases(datalist, out, "photograph") == []


def test_single_label_rejects_sigmoid_outputs(tmp_path):
    writer = PredictionWriter(tmp_path, CLASSES, single_label=True)
    with pytest.raises(ValueError, match="sum to 1.5, not 1; add Activationsd\\(keys='pred', softmax=True\\)"):
        writer.write("x", "x.png", [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="softmax=True"):
        writer.write("x", "x.png", [2.0, -1.0, 0.0])
    with pytest.raises(ValueError, match="at least two class names"):
        PredictionWriter(tmp_path, ["one"], single_label=True)
    assert not (tmp_path / "x.json").exists()


def test_multilabel_results_keep_their_csv_columns(tmp_path):
    """NVUM's results (no predicted_class) give the same CSV as before; a mixed folder leaves the cell empty."""
    multi = PredictionWriter(tmp_path, CLASSES)
    multi.write("m1", "m1.png", [0.5, 0.5, 0.5])  # sigmoid outputs need not sum to 1
    with open(write_predictions_csv(tmp_path, CLASSES), newline="") as f:
        assert list(csv.reader(f)) == [["case_id", "image", *CLASSES], ["m1", "m1.png", "0.5", "0.5", "0.5"]]
    assert "predicted_class" not in json.loads((tmp_path / "m1.json").read_text())
    PredictionWriter(tmp_path, CLASSES, single_label=True).write("s1", "s1.png", [0.25, 0.25, 0.5])
    with open(write_predictions_csv(tmp_path, CLASSES), newline="") as f:
        assert list(csv.reader(f))[1:] == [
            ["m1", "m1.png", "", "0.5", "0.5", "0.5"],
            ["s1", "s1.png", "plus", "0.25", "0.25", "0.5"],
        ]
