# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The COVID CT reader never loses a volume silently: a mask without its image, two files for one volume and NaN or
infinite voxels are errors naming the files (fixtures of ``test_covid_ct.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from monai_ext.data.covid_ct import MA_FOLDERS, covid_ct_datalist
from monai_ext.data.datalist import DatasetLayoutError
from tests.data.test_covid_ct import _ma, _medseg, _save


def test_ma_image_missing_next_to_its_mask_is_an_error(tmp_path):
    root = _ma(tmp_path / "covid_ma")
    (root / MA_FOLDERS["image"] / "radiopaedia_29_86490_1.nii").unlink()
    match = r"1 COVID CT file\(s\) are missing.*The mask '.*Infection_Mask/radiopaedia_29_86490_1.nii.gz' exists but"
    with pytest.raises(FileNotFoundError, match=match):
        covid_ct_datalist(root, layout="ma", split="all")
    # without the file check the volume keeps its place and needs its slice cache (none here): still an error
    with pytest.raises(FileNotFoundError, match="radiopaedia_29_86490_1.* is missing and no up-to-date slice cache"):
        covid_ct_datalist(root, layout="ma", split="all", check_files=False)


def test_medseg_image_missing_next_to_its_mask_is_an_error(tmp_path):
    root = _medseg(tmp_path / "covid_medseg")
    (root / "rp_im" / "10.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"The mask '.*rp_msk/10.nii.gz' exists but its image '.*rp_im/10"):
        covid_ct_datalist(root, medseg_sets=("rp",), split="all")


def test_missing_image_keeps_folds_when_its_slice_cache_exists(tmp_path):
    root = _ma(tmp_path / "covid_ma", names=("coronacases_001.nii.gz", "coronacases_002", "radiopaedia_29_86490_1"))
    kw = {"layout": "ma", "num_folds": 3, "seed": 1}
    before = {s: covid_ct_datalist(root, split=s, **kw) for s in ("train", "val", "test")}
    assert all(before.values())
    (root / MA_FOLDERS["image"] / "coronacases_001.nii.gz").unlink()
    after = {s: covid_ct_datalist(root, split=s, check_files=False, **kw) for s in ("train", "val", "test")}
    assert after == before


@pytest.mark.parametrize("other", ["coronacases_001.nii.gz", "coronacases_org_001.nii"])
def test_two_files_for_one_ma_case(tmp_path, other):
    root = _ma(tmp_path / "covid_ma")
    _save(root / MA_FOLDERS["image"] / other, np.zeros((6, 6, 2), np.float32))
    with pytest.raises(
        DatasetLayoutError,
        match=r"'.*/coronacases_\S*' and '.*/coronacases_\S*' are both the file of 'coronacases_001'",
    ):
        covid_ct_datalist(root, layout="ma", split="all")


def test_two_files_for_one_medseg_mask(tmp_path):
    root = _medseg(tmp_path / "covid_medseg")
    _save(root / "rp_msk" / "1.nii", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetLayoutError, match=r"rp_msk/1.nii' and '.*rp_msk/1.nii.gz' are both the file of '1'"):
        covid_ct_datalist(root, medseg_sets=("rp",), split="all")


@pytest.mark.parametrize("bad, counts", [(np.nan, "2 NaN and 0 infinite"), (np.inf, "0 NaN and 2 infinite")])
def test_nonfinite_volume_is_rejected_not_written_as_zero(tmp_path, bad, counts):
    root = _ma(tmp_path / "covid_ma", names=("coronacases_001",))
    img = np.full((6, 6, 2), -700.0, np.float32)
    img[1, 1, :] = bad
    _save(root / MA_FOLDERS["image"] / "coronacases_001", img)
    with pytest.raises(DatasetLayoutError, match=rf"coronacases_001.nii' holds {counts} value\(s\) among 72"):
        covid_ct_datalist(root, layout="ma", split="all")


def test_nonfinite_mask_is_rejected(tmp_path):
    root = _ma(tmp_path / "covid_ma", names=("coronacases_001",))
    mask = np.zeros((6, 6, 2), np.float32)
    mask[0, 0, 0] = np.nan
    _save(root / MA_FOLDERS["infection"] / "coronacases_001.nii.gz", mask)
    with pytest.raises(DatasetLayoutError, match=r"Infection_Mask/coronacases_001.nii.gz' holds 1 NaN"):
        covid_ct_datalist(root, layout="ma", split="all")
