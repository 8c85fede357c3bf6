# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The classification SR (``monai_ext.dicom.sr_classification``) on the real ``RG1_UNCI.dcm``: read back with
highdicom and with plain pydicom, values equal to the per-case JSON, decisions equal to thresholding done here, the
reference to the source instance, identity, never overwriting, and the cases it cannot report."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from monai_ext.dicom import read_classification_sr, write_classification_srs
from tests.dicom.sr_traversal import ABSENT, PRESENT, group_fields, measurement_groups
from tests.transforms.test_photograph import write_photo_dicom

NAME, VERSION = "Noisy multi-label chest X-ray classification with NVUM", "0.4.0"
CLASSES = ["Atelectasis", "Pleural_Thickening", "Cardiomegaly"]  # Pleural_Thickening: longer than a 16-char SH code
PROBS = {"Atelectasis": 0.5, "Pleural_Thickening": 0.49999999999999994, "Cardiomegaly": 0.8123456789012345}


def _result(out: Path, case: str, image: Path, probs: dict, **extra) -> Path:
    path = out / f"{case}.json"
    path.write_text(json.dumps({"case_id": case, "image": str(image), **extra, "probabilities": probs}))
    return path


@pytest.fixture
def source(rg1_unci_path, tmp_path) -> Path:
    path = tmp_path / "in" / "RG1_UNCI.dcm"
    path.parent.mkdir()
    shutil.copy(rg1_unci_path, path)
    return path


def test_multilabel_report_holds_the_json_values_and_thresholded_decisions(source, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _result(out, "rg1", source, PROBS, model_version=VERSION)
    summary = write_classification_srs(out, CLASSES, NAME, VERSION, threshold=0.5)
    sr_path = out / "rg1_sr.dcm"
    assert summary.written == [sr_path] and not summary.failed
    expected = {c: (p, p >= 0.5) for c, p in PROBS.items()}
    assert expected["Atelectasis"][1] and not expected["Pleural_Thickening"][1]  # the edge: p == threshold is present
    assert read_classification_sr(sr_path) == expected  # highdicom's content API

    ds, src = pydicom.dcmread(sr_path), pydicom.dcmread(source, stop_before_pixels=True)
    groups = [group_fields(g) for g in measurement_groups(ds)]
    assert [g["tracking"] for g in groups] == CLASSES  # class_names order
    for g in groups:
        c = g["tracking"]
        assert g["fd"] == PROBS[c]  # FloatingPointValue: the JSON's float64 exactly
        assert g["ds"] == pytest.approx(PROBS[c], abs=1e-13)  # NumericValue: 16-character DS
        assert g["unit"] == ("{probability}", "UCUM")
        assert g["finding"] == (c, "99RMB")
        assert g["decisions"] == {(c, "99RMB"): PRESENT if PROBS[c] >= 0.5 else ABSENT}
        assert g["images"] == [(src.SOPClassUID, src.SOPInstanceUID)]
    assert src.SOPClassUID == pydicom.uid.ComputedRadiographyImageStorage
    # the report joins the source's study and patient in a new series, with the bundle's identity
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientID == src.PatientID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert ds.Manufacturer == "robust-medical-bundles" and ds.ManufacturerModelName == NAME
    assert ds.SoftwareVersions[0] == VERSION and ds.DeviceSerialNumber == "none"
    assert ds.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
    assert [r.ReferencedSOPInstanceUID for r in evidence] == [src.SOPInstanceUID]


def test_threshold_moves_the_decisions(source, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _result(out, "rg1", source, PROBS)
    write_classification_srs(out, CLASSES, NAME, VERSION, threshold=0.9)
    assert {c: d for c, (_, d) in read_classification_sr(out / "rg1_sr.dcm").items()} == {c: False for c in CLASSES}
    with pytest.raises(ValueError, match="decision_threshold"):
        write_classification_srs(out, CLASSES, NAME, VERSION, threshold=1.0)


def test_single_label_decision_is_the_predicted_class(source, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    probs = {"normal": 0.2, "pre-plus": 0.5, "plus": 0.3}
    _result(out, "rop", source, probs, predicted_class="pre-plus")
    _result(out, "no_class", source, probs)  # a single-label result must name its class
    summary = write_classification_srs(out, list(probs), NAME, VERSION, single_label=True)
    found = read_classification_sr(out / "rop_sr.dcm")
    argmax = max(probs, key=probs.get)
    assert found == {c: (p, c == argmax) for c, p in probs.items()}
    assert list(summary.failed) == ["no_class"] and "predicted_class" in summary.failed["no_class"]


def test_never_overwrites_and_overwrite_replaces(source, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _result(out, "rg1", source, PROBS)
    write_classification_srs(out, CLASSES, NAME, VERSION)
    sr_path = out / "rg1_sr.dcm"
    before = (sr_path.read_bytes(), sr_path.stat().st_mtime_ns)
    _result(out, "rg1", source, {**PROBS, "Cardiomegaly": 0.1})  # a changed result does not replace the report
    summary = write_classification_srs(out, CLASSES, NAME, VERSION)
    assert summary.kept == [sr_path] and not summary.written
    assert (sr_path.read_bytes(), sr_path.stat().st_mtime_ns) == before
    summary = write_classification_srs(out, CLASSES, NAME, VERSION, overwrite=True)
    assert summary.written == [sr_path]
    assert read_classification_sr(sr_path)["Cardiomegaly"] == (0.1, False)
    assert not list(out.glob(".*"))  # no temporary file left


def test_missing_unreadable_and_non_dicom_sources(source, tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    _result(out, "ok", source, PROBS)
    _result(out, "gone", tmp_path / "in" / "deleted.dcm", PROBS)
    bad = tmp_path / "in" / "bad.dcm"
    bad.write_bytes(b"\x00" * 128 + b"DICM" + b"not a dataset")
    _result(out, "bad", bad, PROBS)
    png = tmp_path / "in" / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    _result(out, "png", png, PROBS)
    (out / "notes.json").write_text('{"other": 1}')  # not a result: left alone
    with caplog.at_level(logging.WARNING):
        summary = write_classification_srs(out, CLASSES, NAME, VERSION)
    assert summary.written == [out / "ok_sr.dcm"]
    assert sorted(summary.failed) == ["bad", "gone"] and summary.not_dicom == ["png"]
    assert sorted(p.name for p in out.glob("*_sr.dcm")) == ["ok_sr.dcm"]
    for case, name in (("gone", "deleted.dcm"), ("bad", "bad.dcm")):
        assert any(f"case '{case}'" in r.getMessage() and name in r.getMessage() for r in caplog.records), case
    # back-fill: once the source is back, the next scan writes the missing report only
    shutil.copy(source, tmp_path / "in" / "deleted.dcm")
    summary = write_classification_srs(out, CLASSES, NAME, VERSION)
    assert summary.written == [out / "gone_sr.dcm"] and summary.kept == [out / "ok_sr.dcm"]


def test_source_without_study_uid_is_reported_and_empty_type_2_patient_is_filled(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    rgb = np.zeros((8, 8, 3), np.uint8)
    bare = write_photo_dicom(tmp_path / "in" / "bare.dcm", rgb)  # no study, series or patient
    _result(out, "bare", bare, PROBS)
    photo = write_photo_dicom(tmp_path / "in" / "photo.dcm", rgb)
    ds = pydicom.dcmread(photo)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    ds.save_as(photo, enforce_file_format=True)
    _result(out, "photo", photo, PROBS)
    summary = write_classification_srs(out, CLASSES, NAME, VERSION)
    assert list(summary.failed) == ["bare"] and "StudyInstanceUID" in summary.failed["bare"]
    assert summary.written == [out / "photo_sr.dcm"]
    sr = pydicom.dcmread(out / "photo_sr.dcm")
    assert sr.StudyInstanceUID == ds.StudyInstanceUID and sr.PatientName == "" and sr.PatientID == ""


def test_disabled_or_missing_folder_writes_nothing(source, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _result(out, "rg1", source, PROBS)
    assert not write_classification_srs(out, CLASSES, NAME, VERSION, enabled="false").written
    assert not list(out.glob("*_sr.dcm"))
    assert not write_classification_srs(tmp_path / "nowhere", CLASSES, NAME, VERSION).written
    assert not (tmp_path / "nowhere").exists()
