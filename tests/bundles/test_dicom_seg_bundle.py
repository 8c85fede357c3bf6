# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``bundles/covid_ct_mombs_segmentation/configs/inference.json`` writes a DICOM SEG and volume SR for a DICOM-series
input (``dicom_results``, default true; its ``finalize`` back-fills cases inferred earlier) and none for a NIfTI input.
A fixed threshold "network" makes the mask non-trivial; the series is coronal and written in scrambled file order."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch

from monai_ext.bundle.workflow import run_bundle_workflow
from monai_ext.demo.dicom_series import write_ct_dicom_series
from monai_ext.dicom import read_segmentation_seg, read_volume_report
from tests.bundles.covid_threshold_network import ThresholdInfectionNetwork as _Threshold

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "covid_ct_mombs_segmentation"
INFERENCE = ["configs/inference.json", "configs/demo.json"]
pytestmark = pytest.mark.slow


def _volume() -> np.ndarray:
    """40 x 36 x 5 HU: -800 with a 200 HU block at x 4..17, y 20..31 in slices 1 and 3, and a slice-specific offset
    in one corner voxel so that every slice's pixels differ."""
    volume = np.full((40, 36, 5), -800.0)
    volume[4:18, 20:32, [1, 3]] = 200.0
    volume[0, 0, :] = -900.0 + 10.0 * np.arange(5)
    return volume


def test_inference_writes_seg_for_dicom_series_only(tmp_path):
    root = tmp_path / "root"
    series = root / "input" / "p2" / "series"
    write_ct_dicom_series(_volume(), (0.8, 0.7, 2.5), series, origin=(-12.0, -34.0, -56.0),
                          image_orientation=(1, 0, 0, 0, 0, -1), file_order=[2, 4, 0, 3, 1])  # fmt: skip
    nib.save(
        nib.Nifti1Image(_volume().astype(np.int16), np.diag([-0.8, -0.7, 2.5, 1])), str(root / "input" / "ct1.nii.gz")
    )
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    (root / "metadata.json").write_text(json.dumps(meta))
    network = _Threshold()
    (root / "models").mkdir()
    torch.save({"model": network.state_dict()}, root / "models" / "model.pt")

    def run(**override):
        return run_bundle_workflow(BUNDLE, INFERENCE, "infer", meta_file=root / "metadata.json",
                                   bundle_root=str(root), network=network, **override)  # fmt: skip

    out = root / "eval" / "predictions"
    run(dicom_results="false")
    assert sorted(p.name for p in out.glob("*_seg.nii.gz")) == ["ct1_seg.nii.gz", "p2__series_seg.nii.gz"]
    assert not list(out.glob("*.dcm"))
    run()  # nothing left to infer: finalize back-fills the SEG of the DICOM case, none for the NIfTI case
    assert sorted(p.name for p in out.glob("*.dcm")) == ["p2__series_seg.dcm", "p2__series_volumes_sr.dcm"]

    mask = np.asarray(nib.load(str(out / "p2__series_seg.nii.gz")).dataobj)
    assert mask[:, :, [1, 3]].sum() > 100 and mask[:, :, [0, 2, 4]].sum() == 0
    labels, uids = read_segmentation_seg(out / "p2__series_seg.dcm")
    np.testing.assert_array_equal(labels, mask)
    for k, uid in enumerate(uids):  # the instance referenced for slice k holds slice k's pixels
        [ds] = [d for d in (pydicom.dcmread(f) for f in series.iterdir()) if d.SOPInstanceUID == uid]
        np.testing.assert_allclose(ds.pixel_array + float(ds.RescaleIntercept), _volume()[:, :, k].T)
    seg = pydicom.dcmread(out / "p2__series_seg.dcm", stop_before_pixels=True)
    assert seg.ManufacturerModelName == meta["name"] and list(seg.SoftwareVersions)[0] == meta["version"]
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["infection"]
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == (meta["name"], meta["version"])
    [volume] = read_volume_report(out / "p2__series_volumes_sr.dcm")
    sidecar = json.loads((out / "p2__series_seg.json").read_text())
    assert volume.label == "infection" and volume.value == pytest.approx(sidecar["ml"]["infection"], rel=1e-6)
    assert volume.value == pytest.approx(int((mask == 1).sum()) * 0.8 * 0.7 * 2.5 / 1000, rel=1e-9)
