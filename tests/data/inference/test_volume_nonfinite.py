# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The volume decode check refuses a CT holding NaN or infinite voxels (the case goes to skipped.csv) instead of
letting it through to an empty mask."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from monai_ext.data.inference import check_readable


def test_decode_check_refuses_nan_and_infinite_voxels(tmp_path):
    items = []
    for name, bad in (("good", None), ("some_nan", np.nan), ("all_nan", "all"), ("inf", np.inf)):
        volume = np.full((6, 5, 3), -500.0, np.float32)
        if bad == "all":
            volume[:] = np.nan
        elif bad is not None:
            volume[1, 1, :] = bad
        path = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(volume, np.eye(4)), str(path))
        items.append({"image": str(path), "case_id": name})
    ok, bad = check_readable(items, "volume")
    assert [i["case_id"] for i in ok] == ["good"]
    errors = {b["case_id"]: b["error"] for b in bad}
    assert "3 NaN and 0 infinite value(s) among 90" in errors["some_nan"]
    assert "90 NaN and 0 infinite value(s) among 90" in errors["all_nan"]
    assert "0 NaN and 3 infinite value(s) among 90" in errors["inf"]
    # the header check cannot see voxel values: all four pass it (the pipeline's RequireFinited guards those runs)
    ok_header, _ = check_readable(items, "volume", level="header")
    assert len(ok_header) == 4
