# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The detection SR (``monai_ext.dicom.sr_detection``) on a demo CT series written with scrambled file order: each box
on the slice instance that MONAI reads as its slice (found here by ``ImagePositionPatient``), its corners at the
DICOM pixel coordinates ``(x + 0.5, y + 0.5)`` (checked by hand on a marked voxel and against MONAI's affine), its
score equal to the JSON, never overwriting, and the cases it cannot report."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from monai.transforms import LoadImage

from monai_ext.demo.dicom_series import write_ct_dicom_series
from monai_ext.dicom import box_polyline, read_detection_sr, write_detection_srs
from tests.dicom.sr_traversal import ABSENT, group_fields, measurement_groups

NAME, VERSION = "Universal lesion detection in CT (DeepLesion) with MoMBS", "0.1.0"
SPACING, ORIGIN = (0.7, 0.8, 2.0), (10.0, 20.0, 30.0)
X, Y, Z = 6, 4, 3  # 6 columns, 4 rows: a swap of x and y would fall outside the rows
MARK = (4, 1, 2)  # the voxel (X, Y, Z) set bright


@pytest.fixture
def series(tmp_path) -> Path:
    volume = np.full((X, Y, Z), -1000.0)
    volume[MARK] = 500.0
    write_ct_dicom_series(volume, SPACING, tmp_path / "series", origin=ORIGIN, file_order=[2, 0, 1])
    return tmp_path / "series"


def _by_slice(folder: Path) -> dict[int, pydicom.Dataset]:
    """Slice index k -> instance, from ImagePositionPatient (axial: z = origin + k * dz), not from monai_ext."""
    found = {}
    for f in folder.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        found[round((float(ds.ImagePositionPatient[2]) - ORIGIN[2]) / SPACING[2])] = ds
    return found


def _result(out: Path, case: str, image: Path, boxes, slices, scores) -> Path:
    path = out / case / f"{case}_boxes.json"
    path.parent.mkdir(parents=True)
    record = {"case_id": case, "image": str(image), "box_mode": "xyxy", "box": boxes, "slice": slices,
              "label": [0] * len(boxes), "label_name": ["lesion"] * len(boxes), "label_scores": scores}  # fmt: skip
    path.write_text(json.dumps(record))
    return path


def test_box_polyline_by_hand():
    # voxel coordinate 1 is the centre of pixel column 1 (0-based), which DICOM puts at 1.5
    assert box_polyline([1, 2, 3, 5]).tolist() == [[1.5, 2.5], [3.5, 2.5], [3.5, 5.5], [1.5, 5.5], [1.5, 2.5]]
    with pytest.raises(ValueError, match="xyxy"):
        box_polyline([3, 2, 1, 5])


def test_marked_voxel_is_at_the_box_pixel_of_its_slice(series):
    """Hand example: the bright voxel (X=4, Y=1, Z=2) is DICOM column 4, row 1 of slice 2; a box on that voxel's
    centre becomes the point (4.5, 1.5), inside that pixel; MONAI's affine puts voxel coordinates where DICOM's
    geometry puts the pixel coordinates."""
    instances = _by_slice(series)
    pixels = instances[MARK[2]].pixel_array
    assert pixels.shape == (Y, X) and np.argwhere(pixels == pixels.max()).tolist() == [[MARK[1], MARK[0]]]
    (column, row), *_ = box_polyline([MARK[0], MARK[1], MARK[0], MARK[1]])
    assert (int(np.floor(column)), int(np.floor(row))) == (MARK[0], MARK[1])
    image = LoadImage(reader="ITKReader", image_only=True)(str(series))
    assert np.unravel_index(int(np.argmax(np.asarray(image))), image.shape) == MARK
    ds = instances[MARK[2]]
    for x, y in ((0.0, 0.0), (2.25, 3.0), (5.0, 1.5)):
        ras = np.asarray(image.affine, dtype=np.float64) @ [x, y, MARK[2], 1.0]
        c, r = x + 0.5, y + 0.5  # SCOORD: the pixel centre of (0, 0) is (0.5, 0.5) and IPP is that centre
        lps = (
            np.asarray(ds.ImagePositionPatient, float)
            + (c - 0.5) * float(ds.PixelSpacing[1]) * np.asarray(ds.ImageOrientationPatient[:3], float)
            + (r - 0.5) * float(ds.PixelSpacing[0]) * np.asarray(ds.ImageOrientationPatient[3:], float)
        )
        np.testing.assert_allclose(ras[:3] * [-1, -1, 1], lps, atol=1e-4)


def test_each_box_is_a_region_on_its_slice_with_its_score(series, tmp_path):
    out = tmp_path / "out"
    boxes, slices, scores = [[1.0, 0.5, 3.25, 2.0], [0.0, 0.0, 5.0, 3.0]], [2, 0], [0.91, 0.2500000000000001]
    _result(out, "ct", series, boxes, slices, scores)
    summary = write_detection_srs(out, ["lesion"], NAME, VERSION)
    sr_path = out / "ct" / "ct_sr.dcm"
    assert summary.written == [sr_path] and not summary.failed
    instances = _by_slice(series)
    expected_refs = [(str(instances[z].SOPClassUID), str(instances[z].SOPInstanceUID)) for z in slices]
    assert expected_refs[0] != expected_refs[1]

    found = read_detection_sr(sr_path)  # highdicom's content API
    assert [b["score"] for b in found] == scores
    assert [(b["sop_class_uid"], b["sop_instance_uid"]) for b in found] == expected_refs
    assert [b["name"] for b in found] == ["lesion 1", "lesion 2"] and {b["finding"] for b in found} == {"Lesion"}
    for b, (x1, y1, x2, y2) in zip(found, boxes):
        hand = [[x1 + 0.5, y1 + 0.5], [x2 + 0.5, y1 + 0.5], [x2 + 0.5, y2 + 0.5], [x1 + 0.5, y2 + 0.5]]
        np.testing.assert_allclose(b["polyline"], [*hand, hand[0]], atol=1e-5)  # SCOORD is FL (float32)

    ds = pydicom.dcmread(sr_path)  # plain pydicom
    groups = [group_fields(g) for g in measurement_groups(ds)]
    assert [g["fd"] for g in groups] == scores and {g["unit"] for g in groups} == {("{probability}", "UCUM")}
    assert {g["finding"] for g in groups} == {("52988006", "SCT")}
    for g, (x1, y1, x2, y2), ref in zip(groups, boxes, expected_refs):
        ((kind, data, image),) = g["scoords"]
        assert kind == "POLYLINE" and image == ref
        points = np.asarray(data).reshape(-1, 2)
        assert len(points) == 5 and points[0].tolist() == points[-1].tolist()  # closed
        np.testing.assert_allclose(points.min(0), [x1 + 0.5, y1 + 0.5], atol=1e-5)
        np.testing.assert_allclose(points.max(0), [x2 + 0.5, y2 + 0.5], atol=1e-5)
    assert ds.StudyInstanceUID == instances[0].StudyInstanceUID and ds.Modality == "SR"
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
    assert sorted(r.ReferencedSOPInstanceUID for r in evidence) == sorted(d.SOPInstanceUID for d in instances.values())


def test_case_without_boxes_reports_the_lesion_absent(series, tmp_path):
    out = tmp_path / "out"
    _result(out, "empty", series, [], [], [])
    write_detection_srs(out, ["lesion"], NAME, VERSION)
    sr_path = out / "empty" / "empty_sr.dcm"
    assert read_detection_sr(sr_path) == []
    (group,) = [group_fields(g) for g in measurement_groups(pydicom.dcmread(sr_path))]
    assert group["decisions"] == {("52988006", "SCT"): ABSENT} and group["tracking"] == "lesion"


def test_never_overwrites_and_reports_bad_cases(series, tmp_path, caplog):
    out = tmp_path / "out"
    _result(out, "ct", series, [[1.0, 1.0, 2.0, 2.0]], [1], [0.5])
    write_detection_srs(out, ["lesion"], NAME, VERSION)
    sr_path = out / "ct" / "ct_sr.dcm"
    before = (sr_path.read_bytes(), sr_path.stat().st_mtime_ns)
    gone = tmp_path / "gone_series"
    shutil.copytree(series, gone)
    _result(out, "gone", gone, [[1.0, 1.0, 2.0, 2.0]], [0], [0.5])
    shutil.rmtree(gone)
    _result(out, "off", series, [[1.0, 1.0, 2.0, 2.0]], [Z], [0.5])  # no such slice
    _result(out, "nifti", tmp_path / "volume.nii.gz", [], [], [])
    with caplog.at_level(logging.WARNING):
        summary = write_detection_srs(out, ["lesion"], NAME, VERSION)
    assert summary.kept == [sr_path] and not summary.written and summary.not_dicom == ["nifti"]
    assert (sr_path.read_bytes(), sr_path.stat().st_mtime_ns) == before
    assert sorted(summary.failed) == ["gone", "off"] and "slice 3" in summary.failed["off"]
    assert any("case 'gone'" in r.getMessage() and "gone_series" in r.getMessage() for r in caplog.records)
    assert sorted(p.parent.name for p in out.glob("*/*_sr.dcm")) == ["ct"]
    assert write_detection_srs(out, ["lesion"], NAME, VERSION, overwrite=True).written == [sr_path]
    assert sr_path.read_bytes() != before[0]
