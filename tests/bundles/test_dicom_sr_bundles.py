# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The DICOM SRs that the four bundles' ``configs/inference.json`` write in ``finalize`` (``dicom_results``,
``decision_threshold``): each bundle runs its real inference config with the demo overlay's small network
(randomly initialised: the SR must hold whatever the network said) on a DICOM input and a non-DICOM one, and the
report of the DICOM case is read back and compared with the case's JSON, the thresholding done here and the source
instances. Detection boxes are also checked against the JSON's ``world_corners`` through the DICOM geometry of the
referenced slice, which MONAI's reader computed independently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

from monai_ext.bundle.workflow import bundle_parser
from monai_ext.demo.dicom_series import write_ct_dicom_series
from monai_ext.dicom import read_classification_sr, read_detection_sr
from tests.dicom.sr_traversal import group_fields, measurement_groups
from tests.torch_threads import one_torch_thread as _one_thread
from tests.transforms.test_photograph import write_photo_dicom

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
INFER = ["configs/inference.json", "configs/demo.json"]
SMALL = {
    "cxr_nvum_classification": {"network_def": "%small_network_def", "image_size": 32},
    "cxr_lt_fpsm_classification": {"network_def": "%small_network_def", "image_size": 32, "fpsm_stages": [4, 3]},
    "rop_meta_softlabel_classification": {"network_def": "%small_network_def", "resize_size": 40, "image_size": 32},
    "deeplesion_mombs_detection": {
        "network_def": "%small_network_def",
        "pixel_spacing": 3.0,
        "image_size": 64,
        "score_threshold": 0.0,  # a random detector scores about its prior (0.01): keep its best boxes
        "detections_per_image": 2,
    },
}

pytestmark = pytest.mark.slow


def _metadata(bundle: str) -> dict:
    return json.loads((BUNDLES / bundle / "configs" / "metadata.json").read_text())


def _checkpoint(bundle: str, path: Path) -> Path:
    torch.manual_seed(0)
    network = bundle_parser(BUNDLES / bundle, INFER, SMALL[bundle]).get_parsed_content("network_def")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": network.state_dict()}, path)
    return path


def _run(run_bundle, bundle: str, inputs: Path, out: Path, ckpt: Path, **override):
    with _one_thread():
        return run_bundle(
            BUNDLES / bundle, INFER, workflow_type="infer", dataset_dir=str(inputs), output_dir=str(out),
            ckpt_path=str(ckpt), **SMALL[bundle], **override,
        )  # fmt: skip


def _check_identity(ds: pydicom.Dataset, source: pydicom.Dataset, bundle: str) -> None:
    meta = _metadata(bundle)
    assert ds.Manufacturer == "robust-medical-bundles" and ds.ManufacturerModelName == meta["name"][:64]
    assert ds.SoftwareVersions[0] == meta["version"] and ds.DeviceSerialNumber == "none"
    assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.SeriesInstanceUID != source.SeriesInstanceUID


def _check_classification(sr_path: Path, record: dict, source: pydicom.Dataset, decisions: dict) -> None:
    assert read_classification_sr(sr_path) == {c: (p, decisions[c]) for c, p in record["probabilities"].items()}
    groups = [group_fields(g) for g in measurement_groups(pydicom.dcmread(sr_path))]
    assert [g["tracking"] for g in groups] == list(record["probabilities"])
    assert [g["fd"] for g in groups] == list(record["probabilities"].values())
    assert all(g["images"] == [(source.SOPClassUID, source.SOPInstanceUID)] for g in groups)


@pytest.mark.parametrize("bundle", ["cxr_nvum_classification", "cxr_lt_fpsm_classification"])
def test_sigmoid_classifier_writes_the_sr_of_its_dicom_case(bundle, rg1_unci_path, run_bundle, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(rg1_unci_path, inputs / "RG1_UNCI.dcm")
    grey = np.random.default_rng(0).integers(0, 256, (48, 40), dtype=np.uint8)
    Image.fromarray(grey).save(inputs / "case_png.png")
    ckpt, out = _checkpoint(bundle, tmp_path / "models" / "model.pt"), tmp_path / "out"
    _run(run_bundle, bundle, inputs, out, ckpt)
    assert sorted(p.name for p in out.glob("*.dcm")) == ["RG1_UNCI_sr.dcm"]  # the PNG case has none
    record = json.loads((out / "RG1_UNCI.json").read_text())
    source = pydicom.dcmread(rg1_unci_path, stop_before_pixels=True)
    sr_path = out / "RG1_UNCI_sr.dcm"
    _check_classification(sr_path, record, source, {c: p >= 0.5 for c, p in record["probabilities"].items()})
    _check_identity(pydicom.dcmread(sr_path), source, bundle)
    # a second run keeps the report; removed, it is back-filled at the new decision_threshold (the median here)
    stamp = sr_path.stat().st_mtime_ns
    _run(run_bundle, bundle, inputs, out, ckpt)
    assert sr_path.stat().st_mtime_ns == stamp
    sr_path.unlink()
    threshold = float(np.median(list(record["probabilities"].values())))
    _run(run_bundle, bundle, inputs, out, ckpt, decision_threshold=threshold)
    decisions = {c: p >= threshold for c, p in record["probabilities"].items()}
    assert any(decisions.values()) and not all(decisions.values())
    _check_classification(sr_path, record, source, decisions)
    # dicom_results=false: no report
    _run(run_bundle, bundle, inputs, tmp_path / "no_sr", ckpt, dicom_results=False)
    assert (tmp_path / "no_sr" / "RG1_UNCI.json").is_file() and not list((tmp_path / "no_sr").glob("*.dcm"))


def test_rop_classifier_reports_the_predicted_class(run_bundle, tmp_path):
    bundle = "rop_meta_softlabel_classification"
    inputs = tmp_path / "inputs"
    rgb = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    photo = write_photo_dicom(inputs / "eye.dcm", rgb)
    ds = pydicom.dcmread(photo)  # a PACS photograph carries its study and series
    ds.StudyInstanceUID, ds.SeriesInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    ds.PatientID = "ROP0001"
    ds.save_as(photo, enforce_file_format=True)
    Image.fromarray(rgb).save(inputs / "eye_png.png")
    ckpt, out = _checkpoint(bundle, tmp_path / "models" / "model.pt"), tmp_path / "out"
    _run(run_bundle, bundle, inputs, out, ckpt)
    assert sorted(p.name for p in out.glob("*.dcm")) == ["eye_sr.dcm"]
    record = json.loads((out / "eye.json").read_text())
    probs = record["probabilities"]
    argmax = max(probs, key=probs.get)
    assert record["predicted_class"] == argmax
    _check_classification(out / "eye_sr.dcm", record, ds, {c: c == argmax for c in probs})
    _check_identity(pydicom.dcmread(out / "eye_sr.dcm"), ds, bundle)


def test_detector_writes_one_region_per_box_on_its_slice(run_bundle, tmp_path):
    bundle = "deeplesion_mombs_detection"
    inputs = tmp_path / "inputs"
    rng = np.random.default_rng(2)
    volume = rng.normal(40.0, 30.0, (40, 32, 5))  # 40 columns, 32 rows, 5 slices
    volume[10:18, 6:12, 1:4] = 300.0
    origin, spacing = (-30.0, -20.0, 50.0), (2.0, 2.5, 5.0)
    write_ct_dicom_series(volume, spacing, inputs / "ct", origin=origin, file_order=[3, 1, 4, 0, 2])
    nifti_out = tmp_path / "out"
    ckpt = _checkpoint(bundle, tmp_path / "models" / "model.pt")
    _run(run_bundle, bundle, inputs, nifti_out, ckpt)
    case = nifti_out / "ct"
    record = json.loads((case / "ct_boxes.json").read_text())
    assert record["space"] == "RAS" and len(record["box"]) > 0
    sr_path = case / "ct_sr.dcm"
    found = read_detection_sr(sr_path)
    assert [b["score"] for b in found] == record["label_scores"]
    by_z = {}
    for f in (inputs / "ct").glob("*.dcm"):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        by_z[round((float(ds.ImagePositionPatient[2]) - origin[2]) / spacing[2])] = ds
    for b, box, z, corners in zip(found, record["box"], record["slice"], record["world_corners"]):
        ds = by_z[z]
        assert b["sop_instance_uid"] == ds.SOPInstanceUID
        points = b["polyline"]
        np.testing.assert_allclose(points[0], [box[0] + 0.5, box[1] + 0.5], atol=1e-4)
        np.testing.assert_allclose(points[2], [box[2] + 0.5, box[3] + 0.5], atol=1e-4)
        # the SCOORD corners, placed by the slice's DICOM geometry, are the JSON's world corners (RAS -> LPS)
        ipp = np.asarray(ds.ImagePositionPatient, float)
        row_dir, col_dir = np.asarray(ds.ImageOrientationPatient[:3], float), np.asarray(ds.ImageOrientationPatient[3:])
        for (c, r), world in zip((points[0], points[2]), corners):
            lps = (
                ipp + (c - 0.5) * float(ds.PixelSpacing[1]) * row_dir + (r - 0.5) * float(ds.PixelSpacing[0]) * col_dir
            )
            np.testing.assert_allclose(lps, np.asarray(world) * [-1, -1, 1], atol=1e-3)
    _check_identity(pydicom.dcmread(sr_path), by_z[0], bundle)
    stamp = sr_path.stat().st_mtime_ns
    _run(run_bundle, bundle, inputs, nifti_out, ckpt)
    assert sr_path.stat().st_mtime_ns == stamp
