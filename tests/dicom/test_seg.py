# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DICOM SEG and volume SR of segmentation masks (:mod:`monai_ext.dicom.seg`, ``seg_volumes``, ``seg_writer``).

The cases are written the way the bundle writes them (``SegmentationMaskWriter.write``: mask + sidecar on the grid
MONAI reads from the series, ``dicom_series_affine``), over series written by ``write_ct_dicom_series`` with a
non-axial orientation and scrambled file order. Each slice of the test volumes has its own HU offset, so that the
slice a source file holds is found from its pixels, independently of the code under test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from monai_ext.demo.dicom_series import dicom_series_affine, write_ct_dicom_series
from monai_ext.dicom import read_segmentation_seg, read_volume_report, write_segmentation_segs
from monai_ext.handlers.mask_writer import SegmentationMaskWriter

CLASSES = ["ggo", "consolidation"]
SPACING = (0.8, 0.7, 2.5)  # dx (column spacing), dy (row spacing), dz, mm
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SHAPE = (9, 7, 5)  # X (columns) x Y (rows) x Z: 63 pixels a frame, so packed frames straddle bytes
NAME, VERSION = "covid test bundle", "9.8.7"


def _volume() -> np.ndarray:
    """HU with slice k at 100 * k + a column/row ramp: every slice differs from every other."""
    x, y, z = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    return (100.0 * z + 3.0 * x + y - 500.0).astype(np.float64)


def _labels(seed: int = 0) -> np.ndarray:
    """Random labels with slice 0 empty, slice 2 without class 2, and both classes elsewhere."""
    labels = np.random.default_rng(seed).integers(0, 3, size=SHAPE).astype(np.uint8)
    labels[:, :, 0] = 0
    labels[:, :, 2][labels[:, :, 2] == 2] = 0
    return labels


def _case(out: Path, root: Path, case_id: str, labels: np.ndarray, orientation=CORONAL, file_order=(3, 0, 4, 1, 2)):
    """A DICOM series under ``root/case_id`` and the bundle's mask + sidecar of ``labels`` in ``out``."""
    series = root / case_id
    write_ct_dicom_series(
        _volume()[:, :, : labels.shape[2]],
        SPACING,
        series,
        origin=(5.0, -20.0, 30.0),
        image_orientation=orientation,
        file_order=file_order,
        uid_seed=case_id,
    )
    out.mkdir(parents=True, exist_ok=True)
    writer = SegmentationMaskWriter(out, CLASSES, model_version=VERSION)
    affine = dicom_series_affine(SPACING, (5.0, -20.0, 30.0), orientation)
    assert writer.write(case_id, str(series), labels, affine)
    return series


def _slice_of_file(ds: pydicom.Dataset) -> int:
    """The volume slice a source file holds, from its pixels alone (``volume[:, :, k].T``)."""
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    matches = [k for k in range(SHAPE[2]) if np.array_equal(hu, _volume()[:, :, k].T)]
    assert len(matches) == 1
    return matches[0]


def _source_slices(series: Path) -> dict[str, int]:
    """SOPInstanceUID -> volume slice index, by plain pydicom over the files."""
    return {str(ds.SOPInstanceUID): _slice_of_file(ds) for ds in (pydicom.dcmread(f) for f in series.iterdir())}


@pytest.fixture
def written(tmp_path):
    out, labels = tmp_path / "out", _labels()
    series = _case(out, tmp_path / "in", "p1", labels)
    summary = write_segmentation_segs(out, CLASSES, NAME, VERSION)
    assert summary.written == ["p1"] and not summary.problems and not summary.kept
    return out, series, labels


def test_seg_read_back_with_highdicom_equals_mask_and_references_slices(written):
    out, series, labels = written
    slices = _source_slices(series)
    read, uids = read_segmentation_seg(out / "p1_seg.dcm")
    np.testing.assert_array_equal(read, labels)
    assert [slices[u] for u in uids] == list(range(SHAPE[2]))  # uids[k] is the file holding slice k
    read_with_source, uids_with_source = read_segmentation_seg(out / "p1_seg.dcm", source=series)
    np.testing.assert_array_equal(read_with_source, labels)
    assert uids_with_source == uids
    with pytest.raises(ValueError, match="does not reference exactly"):
        read_segmentation_seg(out / "p1_seg.dcm", source=[pydicom.dcmread(f) for f in sorted(series.iterdir())[1:]])
    # per class, against the NIfTI mask the bundle wrote
    nifti = np.asarray(nib.load(str(out / "p1_seg.nii.gz")).dataobj)
    seg = hd.seg.segread(str(out / "p1_seg.dcm"))
    for number in (1, 2):
        binary = seg.get_pixels_by_source_instance(uids, segment_numbers=[number], combine_segments=False)
        np.testing.assert_array_equal(binary[..., 0].transpose(2, 1, 0), (nifti == number).astype(np.uint8))


def test_seg_plain_pydicom(written):
    """Headers, per-frame references and the packed bits, read without highdicom."""
    out, series, labels = written
    ds = pydicom.dcmread(out / "p1_seg.dcm")
    src = pydicom.dcmread(next(series.iterdir()))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and ds.SegmentationType == "BINARY"
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert (ds.Manufacturer, ds.ManufacturerModelName, ds.DeviceSerialNumber) == (
        "robust-medical-bundles",
        NAME,
        "none",
    )
    assert list(ds.SoftwareVersions)[0] == VERSION
    assert [s.SegmentLabel for s in ds.SegmentSequence] == CLASSES
    assert [int(s.SegmentNumber) for s in ds.SegmentSequence] == [1, 2]
    for s, name in zip(ds.SegmentSequence, CLASSES):
        kind = s.SegmentedPropertyTypeCodeSequence[0]
        assert (kind.CodeValue, kind.CodingSchemeDesignator, kind.CodeMeaning) == (name, "99RMB", name)
        assert s.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"  # morphologically abnormal
        assert s.SegmentAlgorithmType == "AUTOMATIC"
        algorithm = s.SegmentationAlgorithmIdentificationSequence[0]
        assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == (NAME, VERSION)
        assert algorithm.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
    assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99RMB"

    slices = _source_slices(series)
    rows, cols, n = int(ds.Rows), int(ds.Columns), int(ds.NumberOfFrames)
    assert (rows, cols) == (SHAPE[1], SHAPE[0])
    bits = np.unpackbits(np.frombuffer(ds.PixelData, np.uint8), bitorder="little")[: n * rows * cols]
    frames = bits.reshape(n, rows, cols)
    seen = set()
    for frame, group in zip(frames, ds.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = slices[str(uid)]
        np.testing.assert_array_equal(frame, (labels[:, :, k].T == number).astype(np.uint8))
        seen.add((k, number))
    present = {(k, c) for k in range(SHAPE[2]) for c in (1, 2) if (labels[:, :, k] == c).any()}
    assert seen == present and (0, 1) not in seen and (2, 2) not in seen  # empty frames omitted
    referenced = {str(i.ReferencedSOPInstanceUID) for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == set(slices)


def test_volume_sr_equals_independent_volumes(written):
    out, series, labels = written
    voxel_ml = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0
    seg = pydicom.dcmread(out / "p1_seg.dcm", stop_before_pixels=True)
    volumes = read_volume_report(out / "p1_volumes_sr.dcm")
    assert [(v.segment_number, v.label, v.unit) for v in volumes] == [(1, "ggo", "ml"), (2, "consolidation", "ml")]
    for v in volumes:
        assert v.value == pytest.approx(int((labels == v.segment_number).sum()) * voxel_ml, rel=1e-9)
        assert v.seg_sop_instance_uid == seg.SOPInstanceUID
    sidecar = json.loads((out / "p1_seg.json").read_text())
    assert [sidecar["ml"][v.label] for v in volumes] == pytest.approx([v.value for v in volumes], rel=1e-6)
    sr = pydicom.dcmread(out / "p1_volumes_sr.dcm")
    src = pydicom.dcmread(next(series.iterdir()))
    assert sr.Modality == "SR" and sr.StudyInstanceUID == src.StudyInstanceUID and sr.ManufacturerModelName == NAME
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"


def test_never_overwrite_backfill_and_overwrite(written):
    out, _, labels = written
    seg, sr = out / "p1_seg.dcm", out / "p1_volumes_sr.dcm"
    for p in (seg, sr):
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (seg, sr)}
    summary = write_segmentation_segs(out, CLASSES, NAME, VERSION)
    assert summary.kept == ["p1"] and not summary.written
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (seg, sr)} == before

    sr.unlink()  # a crash between SEG and SR: the SR is back-filled, referencing the kept SEG
    summary = write_segmentation_segs(out, CLASSES, NAME, VERSION)
    assert summary.kept == ["p1"] and seg.read_bytes() == before[seg][0]
    uid = pydicom.dcmread(seg, stop_before_pixels=True).SOPInstanceUID
    assert {v.seg_sop_instance_uid for v in read_volume_report(sr)} == {uid}

    summary = write_segmentation_segs(out, CLASSES, NAME, VERSION, overwrite="true")
    assert summary.written == ["p1"]
    new_uid = pydicom.dcmread(seg, stop_before_pixels=True).SOPInstanceUID
    assert new_uid != uid and {v.seg_sop_instance_uid for v in read_volume_report(sr)} == {new_uid}
    np.testing.assert_array_equal(read_segmentation_seg(seg)[0], labels)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left

    assert write_segmentation_segs(out / "missing", CLASSES, NAME, VERSION).written == []
    seg.unlink()
    assert write_segmentation_segs(out, CLASSES, NAME, VERSION, enabled="false").written == []
    assert not seg.exists()


def test_empty_mask_axial_in_order(tmp_path):
    """An all-background mask still gives a valid SEG (every frame written, empty) and 0 mL per class."""
    out = tmp_path / "out"
    labels = np.zeros(SHAPE, np.uint8)
    _case(out, tmp_path / "in", "empty", labels, orientation=(1, 0, 0, 0, 1, 0), file_order=None)
    summary = write_segmentation_segs(out, CLASSES, NAME, VERSION)
    assert summary.written == ["empty"] and not summary.problems
    read, uids = read_segmentation_seg(out / "empty_seg.dcm")
    np.testing.assert_array_equal(read, labels)
    ds = pydicom.dcmread(out / "empty_seg.dcm")
    n = int(ds.NumberOfFrames) * int(ds.Rows) * int(ds.Columns)
    assert int(ds.NumberOfFrames) == SHAPE[2] * len(CLASSES) and [s.SegmentLabel for s in ds.SegmentSequence] == CLASSES
    assert not np.unpackbits(np.frombuffer(ds.PixelData, np.uint8), bitorder="little")[:n].any()
    assert [v.value for v in read_volume_report(out / "empty_volumes_sr.dcm")] == [0.0, 0.0]


def test_bad_cases_are_reported_not_fatal(tmp_path, caplog):
    out, src = tmp_path / "out", tmp_path / "in"
    _case(out, src, "good", _labels(1))
    gone = _case(out, src, "gone", _labels(2))
    for f in gone.iterdir():
        f.unlink()
    gone.rmdir()
    _case(out, src, "short", _labels(3))
    for f in sorted((src / "short").iterdir())[:1]:  # one slice fewer than the mask
        f.unlink()
    _case(out, src, "moved", _labels(4))
    record = json.loads((out / "moved_seg.json").read_text())
    record["ml"]["ggo"] *= 2  # a sidecar whose volumes are not the series' geometry
    (out / "moved_seg.json").write_text(json.dumps(record))
    nifti_record = {**record, "case_id": "ct", "image": str(tmp_path / "ct.nii.gz"), "seg": "moved_seg.nii.gz"}
    (out / "ct_seg.json").write_text(json.dumps(nifti_record))
    (out / "orphan_seg.nii.gz").write_bytes((out / "good_seg.nii.gz").read_bytes())
    (out / "broken_seg.json").write_text("{not json")

    summary = write_segmentation_segs(out, CLASSES, NAME, VERSION)
    assert summary.written == ["good"] and summary.not_dicom == ["ct"]
    problems = {p.split("'")[1]: p for p in summary.problems}
    assert sorted(problems) == ["broken", "gone", "moved", "orphan", "short"]
    assert "broken_seg.json" in problems["broken"]
    assert str(gone) in problems["gone"] and "not found" in problems["gone"]
    assert "(9, 7, 5)" in problems["short"] and "(9, 7, 4)" in problems["short"]
    assert "moved_seg.json" in problems["moved"] and "DICOM geometry" in problems["moved"]
    assert "orphan_seg.nii.gz" in problems["orphan"]
    assert all(p in caplog.text for p in summary.problems)
    assert sorted(p.name for p in out.glob("*.dcm")) == ["good_seg.dcm", "good_volumes_sr.dcm"]


def test_no_sct_concept_for_the_bundle_classes():
    """The reason the classes are coded locally: pydicom's SCT dictionary has none of them (update if it gains one)."""
    names = [n.lower() for n in dir(codes.SCT)]
    assert not [n for n in names if "groundglass" in n or "consolidation" in n or n == "infection"]
