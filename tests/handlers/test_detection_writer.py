# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.handlers.detection_writer: a SupervisedEvaluator with SliceDetectionInferer over a NIfTI
volume and a DeepLesion PNG slice folder (a folder with a gap ends in skipped.csv) writes one zoo-style JSON per case
and detections.csv; a rerun finds nothing to do; an existing result is never replaced; a case without boxes still
gets its JSON."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.apps.detection.transforms.dictionary import AffineBoxToWorldCoordinated
from monai.data import DataLoader, Dataset, MetaTensor
from monai.engines import SupervisedEvaluator
from monai.transforms import Compose, EnsureTyped, LoadImaged, ScaleIntensityRanged, Spacingd
from PIL import Image

from monai_ext.data.inference import DeepLesionSliceReader, prepare_inference_datalist
from monai_ext.handlers import DetectionWriter
from monai_ext.handlers.detection_writer import DETECTION_CSV_COLUMNS, write_detections_csv
from monai_ext.inferers import SliceDetectionInferer

BOX = [2.0, 3.0, 6.0, 9.0]  # what the stub detector finds on every slice, in the resampled grid
NIFTI_AFFINE = np.array([[-0.5, 0, 0, 40.0], [0, 0.5, 0, -20.0], [0, 0, 2.0, -100.0], [0, 0, 0, 1]])
PNG_SPACING = (0.8, 0.8, 5.0)


class BoxEverywhere(torch.nn.Module):
    """Stands in for an eval-mode RetinaNetDetector: ``boxes`` boxes (``BOX``, score 0.7, label 0) per image."""

    target_box_key, target_label_key, pred_score_key = "boxes", "labels", "labels_scores"

    def __init__(self, boxes: int = 1) -> None:
        super().__init__()
        self.boxes = boxes

    def forward(self, images, use_inferer=True):
        n = self.boxes
        return [
            {
                "boxes": torch.tensor([BOX] * n).reshape(n, 4),
                "labels": torch.zeros(n, dtype=torch.long),
                "labels_scores": torch.full((n,), 0.7),
            }
            for _ in images
        ]


def _png_series(folder, numbers, size=(10, 8)):
    folder.mkdir(parents=True)
    for number in numbers:
        Image.fromarray(np.full(size[::-1], 32768 - 500, np.uint16)).save(folder / f"{number:03d}.png")


@pytest.fixture
def inputs(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    nib.save(nib.Nifti1Image(np.full((16, 12, 3), -500, np.int16), NIFTI_AFFINE), str(root / "ct.nii.gz"))
    _png_series(root / "000001_01_01", [20, 21, 22])
    _png_series(root / "gappy", [1, 3])
    return root


def _run(inputs, out, detector, **writer_kwargs):
    reader = DeepLesionSliceReader(spacing=PNG_SPACING)
    datalist = prepare_inference_datalist(inputs, out, "ct_detection", reader=reader, distributed=False)
    preprocessing = Compose(
        [
            LoadImaged("image", reader=reader, ensure_channel_first=True),
            ScaleIntensityRanged("image", -1024, 3071, 0.0, 1.0, clip=True),
            Spacingd("image", pixdim=(1.0, 1.0, -1.0)),  # in-plane only, as the bundle does (0.8 there)
            EnsureTyped("image"),
        ]
    )
    writer = DetectionWriter(out, class_names=["lesion"], model_name="deeplesion_mombs_detection", **writer_kwargs)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(datalist, preprocessing), batch_size=1),
        network=detector.eval(),
        inferer=SliceDetectionInferer(num_slices=3, batch_size=2),
        val_handlers=[writer],
        decollate=False,
    )
    if datalist:
        evaluator.run()
    return datalist, writer


def test_evaluator_writes_zoo_style_json_per_case_and_the_csv(inputs, tmp_path):
    out = tmp_path / "out"
    datalist, writer = _run(inputs, out, BoxEverywhere(), model_version="0.1.0")
    assert sorted(i["case_id"] for i in datalist) == ["000001_01_01", "ct"]
    with open(out / "skipped.csv", newline="", encoding="utf-8") as f:
        assert [r["case_id"] for r in csv.DictReader(f)] == ["gappy"]
    assert sorted(writer.written) == ["000001_01_01", "ct"]

    ct = json.loads((out / "ct" / "ct_boxes.json").read_text())
    assert ct["image"] == str(inputs / "ct.nii.gz") and ct["model_name"] == "deeplesion_mombs_detection"
    assert ct["model_version"] == "0.1.0" and ct["space"] == "RAS" and ct["box_mode"] == "xyxy"
    np.testing.assert_allclose(ct["spacing"], [0.5, 0.5, 2.0])
    np.testing.assert_allclose(ct["detector_spacing"], [1.0, 1.0, 2.0])
    assert ct["slice"] == [0, 1, 2] and ct["detector_slice"] == [0, 1, 2]
    assert ct["label"] == [0, 0, 0] and ct["label_name"] == ["lesion"] * 3
    assert ct["label_scores"] == pytest.approx([0.7] * 3)  # float32 scores
    # 0.5 mm -> 1 mm keeps the first voxel's centre (checked physically in test_slice_boxes_to_world), so
    # original voxel = 2 x resampled voxel
    np.testing.assert_allclose(ct["box"], [[4.0, 6.0, 12.0, 18.0]] * 3, atol=1e-4)
    # world corners by hand from the NIfTI affine: x = 40 - 0.5 i, y = -20 + 0.5 j, z = -100 + 2 k
    np.testing.assert_allclose(ct["world_corners"][1], [[38.0, -17.0, -98.0], [34.0, -11.0, -98.0]], atol=1e-4)
    # box_world is what MONAI's AffineBoxToWorldCoordinated gives for the flat 3D box on the resampled image
    image = MetaTensor(torch.zeros(1, 8, 6, 3), affine=torch.as_tensor(NIFTI_AFFINE @ np.diag([2.0, 2.0, 1.0, 1.0])))
    monai_world = AffineBoxToWorldCoordinated("box", "image")(
        {"image": image, "box": torch.tensor([[2.0, 3, 1, 6, 9, 1]])}
    )
    np.testing.assert_allclose(ct["box_world"][1], np.asarray(monai_world["box"][0]), atol=1e-4)

    png = json.loads((out / "000001_01_01" / "000001_01_01_boxes.json").read_text())
    assert png["slice_file_number"] == [20, 21, 22]
    np.testing.assert_allclose(png["spacing"], PNG_SPACING)
    # resampled to 1 mm from 0.8 mm: original pixel = resampled pixel / 0.8, world = original pixel x 0.8
    np.testing.assert_allclose(png["box"][0], [2.5, 3.75, 7.5, 11.25], atol=1e-4)
    np.testing.assert_allclose(png["world_corners"][2], [[2.0, 3.0, 10.0], [6.0, 9.0, 10.0]], atol=1e-4)

    with open(out / "detections.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == DETECTION_CSV_COLUMNS
    assert [(r["case_id"], r["slice"]) for r in rows] == [("000001_01_01", str(z)) for z in range(3)] + [
        ("ct", str(z)) for z in range(3)
    ]
    row = rows[4]  # ct, slice 1
    assert [float(row[c]) for c in ("x1", "y1", "x2", "y2")] == pytest.approx([4.0, 6.0, 12.0, 18.0], abs=1e-4)
    assert [float(row[c]) for c in ("world_x1", "world_y1", "world_z1")] == pytest.approx([38.0, -17.0, -98.0])
    assert row["label"] == "0" and float(row["score"]) == pytest.approx(0.7)


def test_rerun_finds_nothing_and_existing_results_are_never_replaced(inputs, tmp_path):
    out = tmp_path / "out"
    _run(inputs, out, BoxEverywhere())
    before = (out / "ct" / "ct_boxes.json").read_text()
    datalist, _ = _run(inputs, out, BoxEverywhere(boxes=0))
    assert datalist == []
    writer = DetectionWriter(out)
    empty = {"box": torch.zeros(0, 4), "label": torch.zeros(0), "label_scores": torch.zeros(0), "slice": torch.zeros(0)}
    assert writer.write("ct", "x", empty, np.eye(4)) is False and writer.kept == ["ct"]
    assert (out / "ct" / "ct_boxes.json").read_text() == before
    assert DetectionWriter(out, overwrite=True).write("ct", "x", empty, np.eye(4)) is True
    assert json.loads((out / "ct" / "ct_boxes.json").read_text())["box"] == []


def test_a_case_without_detections_gets_its_json_and_no_csv_row(inputs, tmp_path):
    out = tmp_path / "out"
    _run(inputs, out, BoxEverywhere(boxes=0))
    ct = json.loads((out / "ct" / "ct_boxes.json").read_text())
    assert ct["box"] == [] and ct["slice"] == [] and ct["world_corners"] == [] and ct["label_scores"] == []
    (out / "stray").mkdir()
    (out / "stray" / "stray_boxes.json").write_text("{not json")
    with open(write_detections_csv(out), newline="", encoding="utf-8") as f:
        assert len(list(csv.reader(f))) == 1  # header only


def test_bad_predictions_are_named():
    writer = DetectionWriter("unused", class_names=["lesion"])
    with pytest.raises(KeyError, match=r"case 'a': the prediction has no \['slice'\]"):
        writer.record("a", "x", {"box": torch.zeros(1, 4), "label": [0], "label_scores": [0.5]}, np.eye(4))
    bad_label = {"box": torch.zeros(1, 4), "label": [2], "label_scores": [0.5], "slice": [0]}
    with pytest.raises(ValueError, match=r"case 'a': labels \[2\] outside 0..0"):
        writer.record("a", "x", bad_label, np.eye(4))
    short = {"box": torch.zeros(2, 4), "label": [0], "label_scores": [0.5], "slice": [0, 1]}
    with pytest.raises(ValueError, match="2 boxes, 1 labels"):
        writer.record("a", "x", short, np.eye(4))
    with pytest.raises(ValueError, match="input_kind must be"):
        DetectionWriter("unused", input_kind="volume")


def test_a_decollating_evaluator_is_told_to_stop(inputs, tmp_path):
    datalist = prepare_inference_datalist(inputs / "ct.nii.gz", tmp_path / "out", "ct_detection", distributed=False)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(datalist, LoadImaged("image", ensure_channel_first=True)), batch_size=1),
        network=BoxEverywhere().eval(),
        inferer=SliceDetectionInferer(),
        val_handlers=[DetectionWriter(tmp_path / "out")],
    )  # decollate=True by default
    with pytest.raises(ValueError, match="3 predictions \\(list\\) for 1 cases.*decollate=False"):
        evaluator.run()
