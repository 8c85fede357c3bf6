# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.handlers.mask_writer: masks written on the input grid with the input's affine (NIfTI and DICOM
round trips through MONAI's readers), class volumes, no overwrite, predictions.csv rebuilt from the results."""

from __future__ import annotations

import csv
import json
import os
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from monai.transforms import LoadImage

from monai_ext.demo.dicom_series import write_ct_dicom_series
from monai_ext.handlers.mask_writer import SegmentationMaskWriter, mask_volumes, write_volume_predictions_csv

AFFINE = np.array([[-0.5, 0, 0, 10.0], [0, -0.5, 0, 20.0], [0, 0, 2.0, -30.0], [0, 0, 0, 1]])  # 0.5 mm^3 voxels


def _labels() -> np.ndarray:
    """4 x 3 x 2 labels: 5 voxels of class 1, 2 of class 2, asymmetric in every axis."""
    labels = np.zeros((4, 3, 2), np.uint8)
    labels[0, :, 0] = 1
    labels[3, 2, :] = 1
    labels[1, 0, 1] = 2
    labels[2, 1, 1] = 2
    return labels


def _state(preds, case_ids, shapes=None, images=None):
    batch = []
    for k, case_id in enumerate(case_ids):
        meta = {"filename_or_obj": (images or [f"/data/{c}.nii.gz" for c in case_ids])[k]}
        if shapes is not None:
            meta["spatial_shape"] = torch.tensor(shapes[k])
        batch.append({"case_id": case_id, "image": MetaTensor(torch.zeros(1, 1, 1, 1), meta=meta)})
    return SimpleNamespace(state=SimpleNamespace(output=[{"pred": p} for p in preds], batch=batch))


def _pred(labels, affine=AFFINE, **meta):
    return MetaTensor(torch.as_tensor(labels, dtype=torch.float32)[None], affine=torch.as_tensor(affine), meta=meta)


def test_writes_mask_sidecar_and_volumes(tmp_path):
    writer = SegmentationMaskWriter(tmp_path, ["ggo", "consolidation"], model_version="1.2.0")
    writer(_state([_pred(_labels())], ["c1"], shapes=[(4, 3, 2)]))
    img = nib.load(str(tmp_path / "c1_seg.nii.gz"))
    assert img.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(img.dataobj), _labels())
    np.testing.assert_allclose(img.affine, AFFINE)
    assert int(img.header["qform_code"]) == int(img.header["sform_code"]) == 1
    record = json.loads((tmp_path / "c1_seg.json").read_text())
    assert record == {
        "case_id": "c1", "image": "/data/c1.nii.gz", "seg": "c1_seg.nii.gz", "model_version": "1.2.0",
        "voxels": {"ggo": 5, "consolidation": 2}, "ml": {"ggo": 0.0025, "consolidation": 0.001},
    }  # fmt: skip
    assert writer.written == ["c1"]


def test_lps_affine_is_converted_and_probabilities_argmaxed(tmp_path):
    labels = _labels().clip(0, 1)
    probs = np.stack([1.0 - labels, labels * 0.9]).astype(np.float32)  # C X Y Z, argmax = labels
    pred = MetaTensor(torch.as_tensor(probs), affine=torch.as_tensor(AFFINE), meta={"space": "LPS"})
    SegmentationMaskWriter(tmp_path, ["infection"])(_state([pred], ["c2"]))
    img = nib.load(str(tmp_path / "c2_seg.nii.gz"))
    np.testing.assert_array_equal(np.asarray(img.dataobj), labels)
    np.testing.assert_allclose(img.affine, np.diag([-1, -1, 1, 1]) @ AFFINE)


def test_existing_mask_is_kept_unless_overwrite(tmp_path):
    (tmp_path / "c1_seg.nii.gz").write_bytes(b"earlier result")
    writer = SegmentationMaskWriter(tmp_path, ["ggo", "consolidation"])
    writer(_state([_pred(_labels())], ["c1"]))
    assert (tmp_path / "c1_seg.nii.gz").read_bytes() == b"earlier result"
    assert writer.kept == ["c1"] and not (tmp_path / "c1_seg.json").exists()
    SegmentationMaskWriter(tmp_path, ["ggo", "consolidation"], overwrite=True)(_state([_pred(_labels())], ["c1"]))
    np.testing.assert_array_equal(np.asarray(nib.load(str(tmp_path / "c1_seg.nii.gz")).dataobj), _labels())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize(
    "pred, shapes, error, match",
    [
        (_pred(_labels()), [(8, 6, 2)], ValueError, r"differs from the loaded input's \(8, 6, 2\); add Invertd"),
        (_pred(_labels() * 2), None, ValueError, r"labels span \[0, 4\], not 0..2"),
        (_pred(_labels() + 0.5), None, ValueError, "must hold class indices"),
        (MetaTensor(torch.zeros(4, 4, 3, 2)), None, ValueError, "4 channels; expected 1"),
        (torch.zeros(1, 4, 3, 2), None, TypeError, "not a MetaTensor"),
    ],
)
def test_bad_predictions(tmp_path, pred, shapes, error, match):
    with pytest.raises(error, match=match):
        SegmentationMaskWriter(tmp_path, ["ggo", "consolidation"])(_state([pred], ["c1"], shapes=shapes))


def test_class_names_checked(tmp_path):
    with pytest.raises(ValueError, match="each class once"):
        SegmentationMaskWriter(tmp_path, ["a", "a"])


def test_mask_volumes_hand_worked():
    out = mask_volumes(_labels(), np.diag([2.0, 3.0, 0.5, 1.0]), ["ggo", "consolidation"])  # 3 mm^3 voxels
    assert out["voxels"] == {"ggo": 5, "consolidation": 2}
    assert out["ml"] == {"ggo": pytest.approx(0.015, rel=1e-12), "consolidation": pytest.approx(0.006, rel=1e-12)}


def test_engine_run_rebuilds_csv_keeping_earlier_rows(tmp_path):
    names = ["infection"]
    batches = [_state([_pred(_labels().clip(0, 1))], [c]).state for c in ("b", "a")]

    def step(engine, k):  # an evaluator's iteration: the decollated batch and output of case k
        engine.state.batch = batches[k].batch
        return batches[k].output

    engine = Engine(step)

    earlier = np.zeros((2, 2, 2), np.uint8)
    earlier[0, 0, 0] = 1
    nib.save(nib.Nifti1Image(earlier, np.diag([1.0, 1.0, 1.0, 1.0])), str(tmp_path / "old_seg.nii.gz"))  # no sidecar
    SegmentationMaskWriter(tmp_path, names, model_version="0.1.0").attach(engine)
    engine.run([0, 1], max_epochs=1)
    with open(tmp_path / "predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["case_id", "image", "seg", "infection_voxels", "infection_ml", "model_version"],
        ["a", "/data/a.nii.gz", "a_seg.nii.gz", "7", "0.0035", "0.1.0"],
        ["b", "/data/b.nii.gz", "b_seg.nii.gz", "7", "0.0035", "0.1.0"],
        ["old", "", "old_seg.nii.gz", "1", "0.001", ""],
    ]
    os.utime(tmp_path / "predictions.csv", (1_000_000, 1_000_000))
    write_volume_predictions_csv(tmp_path, names)
    assert os.stat(tmp_path / "predictions.csv").st_mtime == 1_000_000  # unchanged content: file untouched


def test_round_trip_nifti_input(tmp_path):
    affine = np.array([[0.0, -0.7, 0, 5.0], [-0.9, 0, 0, 6.0], [0, 0, 3.0, 7.0], [0, 0, 0, 1]])  # permuted axes
    rng = np.random.default_rng(0)
    volume = rng.integers(-1000, 400, size=(5, 4, 3)).astype(np.int16)
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "ct.nii.gz"))
    loaded = LoadImage(image_only=True, ensure_channel_first=True)(str(tmp_path / "ct.nii.gz"))
    labels = (loaded[0].numpy() > 0).astype(np.uint8)  # a "prediction" on the loaded grid
    pred = MetaTensor(torch.as_tensor(labels)[None], meta=loaded.meta)
    SegmentationMaskWriter(tmp_path / "out", ["x"])(_state([pred], ["ct"]))
    mask = nib.load(str(tmp_path / "out" / "ct_seg.nii.gz"))
    np.testing.assert_allclose(mask.affine, affine, atol=1e-6)  # the input file's affine
    np.testing.assert_array_equal(np.asarray(mask.dataobj), volume > 0)  # voxel for voxel with the input file


def test_round_trip_dicom_series(tmp_path):
    volume = np.arange(5 * 4 * 3, dtype=np.float64).reshape(5, 4, 3) * 10 - 300
    paths = write_ct_dicom_series(volume, (0.6, 0.9, 2.0), tmp_path / "series", origin=(-50.0, 25.0, 100.0))
    loaded = LoadImage(image_only=True, ensure_channel_first=True)(str(tmp_path / "series"))  # ITKReader
    labels = (loaded[0].numpy() > 0).astype(np.uint8)
    pred = MetaTensor(torch.as_tensor(labels)[None], meta=loaded.meta)
    SegmentationMaskWriter(tmp_path / "out", ["x"])(_state([pred], ["s"]))
    mask = nib.load(str(tmp_path / "out" / "s_seg.nii.gz"))
    np.testing.assert_allclose(mask.affine, loaded.affine.numpy(), atol=1e-6)
    # voxel (i, j, k) of the mask is column i, row j of slice file k: its RAS position from the DICOM header
    for i, j, k in [(0, 0, 0), (4, 1, 2), (2, 3, 1)]:
        ds = pydicom.dcmread(paths[k])
        position = np.array([float(v) for v in ds.ImagePositionPatient])
        lps = position + i * 0.6 * np.array([1, 0, 0]) + j * 0.9 * np.array([0, 1, 0])  # axial: rows +x, columns +y
        np.testing.assert_allclose(mask.affine @ [i, j, k, 1], [-lps[0], -lps[1], lps[2], 1], atol=1e-6)
        hu = float(ds.pixel_array[j, i]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.asarray(mask.dataobj)[i, j, k] == (hu > 0)
