# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``covid_ct_mombs_segmentation`` inference on a CT holding NaN voxels: with ``read_check="decode"`` (default) it is
listed in skipped.csv and the other cases are segmented; with ``read_check="header"`` the pipeline's
``RequireFinited`` stops the run naming the file, instead of writing a mask that is empty on the NaN slices."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_ext.bundle.workflow import bundle_parser
from tests.bundles.test_covid_ct_inference import bundle_root  # noqa: F401 -- the fixture, used by nan_root
from tests.bundles.test_covid_ct_inference import AFFINE, BUNDLE, INFERENCE, SMALL, _run, _save_ckpt, _volume

pytestmark = pytest.mark.slow


@pytest.fixture
def nan_root(bundle_root):  # noqa: F811 -- the imported fixture
    volume = _volume()
    volume[:, :, 2] = np.nan  # one slice of NaN
    nib.save(nib.Nifti1Image(volume.astype(np.float32), AFFINE), str(bundle_root / "input" / "nan_ct.nii.gz"))
    torch.manual_seed(0)
    _save_ckpt(bundle_root, bundle_parser(BUNDLE, INFERENCE, SMALL).get_parsed_content("network_def"))
    return bundle_root


def test_nan_volume_goes_to_skipped_csv(nan_root):
    _run(nan_root)
    out = nan_root / "eval" / "predictions"
    with open(out / "skipped.csv", newline="") as f:
        skipped = {r["case_id"]: r["error"] for r in csv.DictReader(f)}
    assert "1440 NaN and 0 infinite value(s) among 7200" in skipped["nan_ct"]
    assert not (out / "nan_ct_seg.nii.gz").exists() and (out / "ct1_seg.nii.gz").is_file()


def test_nan_volume_with_header_check_stops_naming_the_file(nan_root, caused_by):
    with pytest.raises(Exception) as info:
        _run(nan_root, read_check="header")
    caused_by(info.value, ValueError, r"nan_ct.nii.gz' holds 1440 NaN and 0 infinite value\(s\) among 7200")
    assert not (nan_root / "eval" / "predictions" / "nan_ct_seg.nii.gz").exists()
