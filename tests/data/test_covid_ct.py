# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for the COVID CT slice readers on tiny NIfTI volumes in the MedSeg and Ma et al. layouts."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_ext.data.covid_ct import MA_CASES, MA_FOLDERS, covid_ct_datalist, ma_case_name
from monai_ext.data.datalist import DatasetLayoutError


def _save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([0.7, 0.7, 5.0, 1.0])
    nib.save(nib.Nifti1Image(arr, affine), str(path))


def _tr_mask() -> np.ndarray:
    m = np.zeros((8, 8, 4), np.uint8)
    m[0:2, 0:2, 1] = 1  # z1: 4 px ground-glass
    m[5, 5, 1] = 2  # z1: 1 px consolidation
    m[3, 3:5, 2] = 3  # z2: 2 px pleural effusion only
    m[7, 7, 3] = 1  # z3: 1 px ground-glass
    return m


def _medseg(root: Path) -> Path:
    hu = np.stack([np.full((8, 8), -1000 + z, np.int16) for z in range(4)], axis=-1)
    _save(root / "tr_im.nii.gz", hu)
    _save(root / "tr_mask.nii.gz", _tr_mask())
    for k, lesion_z in (("1", 1), ("2", None), ("10", 0)):
        _save(root / "rp_im" / f"{k}.nii.gz", np.full((8, 8, 3), -500, np.int16))
        m = np.zeros((8, 8, 3), np.uint8)
        if lesion_z is not None:
            m[2:4, 2:4, lesion_z] = 2
        _save(root / "rp_msk" / f"{k}.nii.gz", m)
    return root


def _ma(root: Path, names=("coronacases_001", "radiopaedia_29_86490_1", "radiopaedia_29_86491_1")) -> Path:
    for name in names:
        stem = ma_case_name(name)
        windowed = stem.startswith("radiopaedia")
        img = np.full((6, 6, 2), 51.0 if windowed else -700.0, np.float32)
        img[0, 0, :] = 0.0 if windowed else -1024.0
        if windowed:
            img[0, 1, :] = 255.0
        _save(root / MA_FOLDERS["image"] / name, img)
        inf = np.zeros((6, 6, 2), np.uint8)
        inf[2:4, 2, 1] = 1
        both = np.ones((6, 6, 2), np.uint8)
        both[3:, :, :] = 2
        both[inf == 1] = 3
        _save(root / MA_FOLDERS["infection"] / f"{stem}.nii.gz", inf)
        _save(root / MA_FOLDERS["lung_and_infection"] / f"{stem}.nii.gz", both)
    return root


@pytest.fixture()
def medseg(tmp_path):
    return _medseg(tmp_path / "covid_medseg")


@pytest.fixture()
def ma(tmp_path):
    return _ma(tmp_path / "covid_ma")


def _array(path):
    return np.asarray(nib.load(path).dataobj)


def test_ma_case_names_match_zenodo_release():
    assert len(MA_CASES) == 20 and len(set(MA_CASES)) == 20
    assert MA_CASES[0] == "coronacases_001" and MA_CASES[9] == "coronacases_010"
    assert "radiopaedia_4_85506_1" in MA_CASES and "radiopaedia_40_86625_0" in MA_CASES


@pytest.mark.parametrize(
    "file_name, case",
    [
        ("coronacases_001.nii.gz", "coronacases_001"),
        ("radiopaedia_4_85506_1.nii.gz", "radiopaedia_4_85506_1"),
        ("coronacases_org_007.nii", "coronacases_007"),  # Kaggle mirror names
        ("radiopaedia_org_covid-19-pneumonia-10_85902_3-dcm.nii", "radiopaedia_10_85902_3"),
    ],
)
def test_ma_case_name(file_name, case):
    assert ma_case_name(file_name) == case


def test_medseg_per_slice_items_and_default_multiclass_map(medseg):
    with pytest.warns(UserWarning, match="holds no pixel"):  # rp_msk/2.nii.gz is empty
        items = covid_ct_datalist(medseg, split="all")
    # 4 Dataset-1 slices + 3 volumes x 3 slices, ordered tr then rp by number (1, 2, 10), then z
    assert len(items) == 13
    assert [(it["volume_id"], it["z"]) for it in items[:6]] == [
        ("medseg/tr", 0),
        ("medseg/tr", 1),
        ("medseg/tr", 2),
        ("medseg/tr", 3),
        ("medseg/rp_1", 0),
        ("medseg/rp_1", 1),
    ]
    assert [it["volume_id"] for it in items[-3:]] == ["medseg/rp_10"] * 3
    assert [it["class_pixels"] for it in items[:4]] == [[0, 0], [4, 1], [0, 0], [1, 0]]
    assert [it["has_lesion"] for it in items[:4]] == [False, True, False, True]
    assert items[1]["class_names"] == ["ggo", "consolidation"]
    # the written 2D label of z1: ggo -> 1, consolidation -> 2; effusion at z2 -> background
    expected = np.zeros((8, 8), np.uint8)
    expected[0:2, 0:2] = 1
    expected[5, 5] = 2
    np.testing.assert_array_equal(_array(items[1]["label"]), expected)
    np.testing.assert_array_equal(_array(items[2]["label"]), np.zeros((8, 8)))
    # images are 2D HU slices; tr_im slice z holds -1000 + z
    np.testing.assert_array_equal(_array(items[3]["image"]), np.full((8, 8), -997))
    assert items[3]["patient_id"] == "medseg_tr_003" and items[5]["patient_id"] == "medseg_rp_1"
    # each Dataset-1 slice is its own case; a Dataset-2 volume is one case
    assert [it["case_id"] for it in items[:6]] == [
        "medseg/tr_z000",
        "medseg/tr_z001",
        "medseg/tr_z002",
        "medseg/tr_z003",
        "medseg/rp_1",
        "medseg/rp_1",
    ]
    assert {it["case_id"] for it in items[4:]} == {"medseg/rp_1", "medseg/rp_2", "medseg/rp_10"}
    assert items[0]["source_image"] == str(medseg.absolute() / "tr_im.nii.gz")
    assert items[0]["intensity_source"] == "hu" and items[0]["num_z"] == 4
    # the slice affine is the volume's moved to z (z spacing 5 mm)
    np.testing.assert_allclose(nib.load(items[3]["image"]).affine[:3, 3], [0.0, 0.0, 15.0])


@pytest.mark.parametrize(
    "label_map, unmapped, z, values",
    [
        ({"infection": (1, 2)}, 0, 1, {1: 5}),  # binary infection
        ({"consolidation": 2, "ggo": 1}, 0, 1, {1: 1, 2: 4}),  # class order follows the mapping
        ({"ggo": 1, "consolidation": 2}, 255, 2, {255: 2}),  # effusion marked for an ignore index
        ({"ggo": 1, "consolidation": 2, "effusion": 3}, 0, 2, {3: 2}),
    ],
)
def test_medseg_label_maps(medseg, label_map, unmapped, z, values):
    items = covid_ct_datalist(medseg, medseg_sets=("tr",), split="all", label_map=label_map, unmapped_value=unmapped)
    arr = _array(items[z]["label"])
    found = {int(v): int((arr == v).sum()) for v in np.unique(arr) if v != 0}
    assert found == values


def test_ma_labels_from_both_mask_folders(ma):
    inf = covid_ct_datalist(ma, layout="ma", split="all")
    both = covid_ct_datalist(ma, layout="ma", split="all", ma_mask="lung_and_infection")
    multi = covid_ct_datalist(
        ma, layout="ma", split="all", ma_mask="lung_and_infection", label_map={"left": 1, "right": 2, "infection": 3}
    )
    expected = np.zeros((6, 6), np.uint8)
    expected[2:4, 2] = 1
    for items in (inf, both):
        assert len(items) == 6  # 3 volumes x 2 slices
        np.testing.assert_array_equal(_array(items[1]["label"]), expected)
        assert [it["has_lesion"] for it in items] == [False, True] * 3
    assert multi[1]["class_pixels"] == [18 - 1, 18 - 1, 2]
    assert inf[0]["source_label"].endswith("Infection_Mask/coronacases_001.nii.gz")
    assert both[0]["source_label"].endswith("Lung_and_Infection_Mask/coronacases_001.nii.gz")


def test_ma_intensity_detection(ma):
    items = covid_ct_datalist(ma, layout="ma", split="all")
    by_vol = {it["volume_id"]: it for it in items if it["z"] == 0}
    corona, rp = by_vol["ma/coronacases_001"], by_vol["ma/radiopaedia_29_86490_1"]
    assert corona["intensity_source"] == "hu" and rp["intensity_source"] == "window_0_255"
    assert _array(corona["image"])[0, 0] == -1024 and _array(corona["image"])[1, 1] == -700
    # [0, 255] -> [-1250, 250] HU: 0 -> -1250, 255 -> 250, 51 -> -1250 + 51 / 255 * 1500 = -950
    arr = _array(rp["image"])
    assert (arr[0, 0], arr[0, 1], arr[1, 1]) == (-1250, 250, -950)
    kept = covid_ct_datalist(ma, layout="ma", split="all", intensity="keep")
    arr = _array(next(it for it in kept if it["volume_id"] == "ma/radiopaedia_29_86490_1")["image"])
    assert (arr[0, 0], arr[0, 1], arr[1, 1]) == (0.0, 255.0, 51.0)


def test_ma_kaggle_image_names(tmp_path):
    names = ("coronacases_org_001.nii", "radiopaedia_org_covid-19-pneumonia-4_85506_1-dcm.nii")
    root = _ma(tmp_path / "ma", names=names)
    items = covid_ct_datalist(root, layout="ma", split="all")
    assert sorted({it["volume_id"] for it in items}) == ["ma/coronacases_001", "ma/radiopaedia_4_85506_1"]


def test_ma_patient_groups(ma):
    items = covid_ct_datalist(ma, layout="ma", split="all")
    assert {it["volume_id"]: it["patient_id"] for it in items} == {
        "ma/coronacases_001": "coronacases_001",
        "ma/radiopaedia_29_86490_1": "radiopaedia_29",
        "ma/radiopaedia_29_86491_1": "radiopaedia_29",
    }
    # one patient, two cases: case_id is the volume
    assert [it["case_id"] for it in items] == [
        "ma/coronacases_001",
        "ma/coronacases_001",
        "ma/radiopaedia_29_86490_1",
        "ma/radiopaedia_29_86490_1",
        "ma/radiopaedia_29_86491_1",
        "ma/radiopaedia_29_86491_1",
    ]


def _expected_folds(groups, num_folds, seed):
    order = [sorted(groups)[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    return {g: pos % num_folds for pos, g in enumerate(order)}


@pytest.mark.parametrize("seed, fold", [(0, 0), (3, 2)])
def test_patient_level_splits(medseg, seed, fold):
    kw = dict(seed=seed, fold=fold, empty_volume="keep")
    with pytest.warns(UserWarning):
        parts = {s: covid_ct_datalist(medseg, split=s, **kw) for s in ("train", "val", "test")}
    groups = [f"medseg_tr_{z:03d}" for z in range(4)] + ["medseg_rp_1", "medseg_rp_2", "medseg_rp_10"]
    folds = _expected_folds(groups, 5, seed)
    val = (fold + 1) % 5
    for name, wanted in (("test", {fold}), ("val", {val}), ("train", set(range(5)) - {fold, val})):
        assert {it["patient_id"] for it in parts[name]} == {g for g, f in folds.items() if f in wanted}
        assert all(it["split"] == name for it in parts[name])
    assert sum(len(p) for p in parts.values()) == 13
    # a patient never spans two splits
    seen = [{it["patient_id"] for it in p} for p in parts.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])


def test_train_fraction_is_nested_and_deterministic(tmp_path):
    root = tmp_path / "m"
    hu = np.zeros((4, 4, 20), np.int16) - 1000
    mask = np.zeros((4, 4, 20), np.uint8)
    mask[0, 0, :] = 1
    _save(root / "tr_im.nii.gz", hu)
    _save(root / "tr_mask.nii.gz", mask)
    ids = {}
    for frac in (0.1, 0.5, 1.0):
        items = covid_ct_datalist(root, medseg_sets=("tr",), train_fraction=frac, seed=7)
        ids[frac] = [it["patient_id"] for it in items]
    # 20 slice-level groups in 5 folds: 12 training groups -> ceil(1.2) = 2, 6, 12
    assert [len(ids[f]) for f in (0.1, 0.5, 1.0)] == [2, 6, 12]
    assert set(ids[0.1]) <= set(ids[0.5]) <= set(ids[1.0])
    again = covid_ct_datalist(root, medseg_sets=("tr",), train_fraction=0.5, seed=7)
    assert [it["patient_id"] for it in again] == ids[0.5]


@pytest.mark.parametrize("policy, count", [("keep", 13), ("drop", 10)])
def test_empty_volume_keep_or_drop_warns(medseg, policy, count):
    with pytest.warns(UserWarning, match=r"rp_msk/2.nii.gz' holds no pixel of the classes \['ggo', 'consolidation'\]"):
        items = covid_ct_datalist(medseg, split="all", empty_volume=policy)
    assert len(items) == count


def test_empty_volume_error(medseg):
    with pytest.raises(DatasetLayoutError, match=r"rp_msk/2.nii.gz' holds no pixel"):
        covid_ct_datalist(medseg, split="all", empty_volume="error")


def test_empty_slices_drop(medseg):
    items = covid_ct_datalist(medseg, medseg_sets=("tr",), split="all", empty_slices="drop")
    assert [it["z"] for it in items] == [1, 3]
    assert [it["index"] for it in items] == [0, 1]


def test_shape_mismatch_names_both_files(tmp_path):
    root = tmp_path / "m"
    _save(root / "tr_im.nii.gz", np.zeros((8, 8, 4), np.int16))
    _save(root / "tr_mask.nii.gz", np.zeros((8, 6, 4), np.uint8))
    match = r"tr_mask.nii.gz' has shape \(8, 6, 4\) .*tr_im.nii.gz' has shape \(8, 8, 4\)"
    with pytest.raises(DatasetLayoutError, match=match):
        covid_ct_datalist(root, medseg_sets=("tr",), split="all")


def test_unexpected_mask_value(tmp_path):
    root = tmp_path / "m"
    mask = _tr_mask()
    mask[0, 0, 0] = 5
    _save(root / "tr_im.nii.gz", np.zeros((8, 8, 4), np.int16))
    _save(root / "tr_mask.nii.gz", mask)
    with pytest.raises(DatasetLayoutError, match=r"tr_mask.nii.gz' holds values \[0, 1, 2, 3, 5\]"):
        covid_ct_datalist(root, medseg_sets=("tr",), split="all")


def test_slices_reused_and_refreshed(medseg, tmp_path):
    kw = dict(medseg_sets=("tr",), split="all", slice_dir=tmp_path / "cache")
    first = covid_ct_datalist(medseg, **kw)
    assert Path(first[0]["image"]).parent.parent == (tmp_path / "cache").absolute()
    stamp = os.stat(first[1]["label"]).st_mtime_ns
    second = covid_ct_datalist(medseg, **kw)
    assert second == first and os.stat(second[1]["label"]).st_mtime_ns == stamp
    # a changed source volume is re-sliced
    mask = _tr_mask()
    mask[:, :, 0] = 1
    _save(medseg / "tr_mask.nii.gz", mask)
    os.utime(medseg / "tr_mask.nii.gz", ns=(stamp + 10**9, stamp + 10**9))
    third = covid_ct_datalist(medseg, **kw)
    assert third[0]["class_pixels"] == [64, 0]
    # another label map gets its own slice folder
    binary = covid_ct_datalist(medseg, label_map={"infection": (1, 2)}, **kw)
    assert Path(binary[0]["label"]).parent != Path(third[0]["label"]).parent


def test_missing_sources_and_check_files(medseg):
    first = covid_ct_datalist(medseg, medseg_sets=("tr",), split="all")
    (medseg / "tr_mask.nii.gz").unlink()
    (medseg / "tr_im.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"2 COVID CT file\(s\) are missing.*tr_im.nii.gz"):
        covid_ct_datalist(medseg, medseg_sets=("tr",), split="all")
    assert covid_ct_datalist(medseg, medseg_sets=("tr",), split="all", check_files=False) == first


def test_missing_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="COVID-19-CT-Seg_20cases"):
        covid_ct_datalist(tmp_path, layout="ma")
    with pytest.raises(FileNotFoundError, match=r"rp_im"):
        covid_ct_datalist(tmp_path, medseg_sets=("rp",))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layout": "ma", "label_map": {"infection": 3}}, r"value 3, but Ma et al. Infection_Mask masks hold \[1\]"),
        ({"label_map": {"a": 1, "b": (1, 2)}}, "mask value 1 is mapped to both 'a' and 'b'"),
        ({"label_map": {}}, "at least one class"),
        ({"num_folds": 2}, "num_folds must be at least 3"),
        ({"fold": 1, "val_fold": 1}, "must be distinct folds"),
        ({"train_fraction": 0.0}, r"train_fraction must lie in \(0, 1\]"),
        ({"layout": "kaggle"}, "kaggle"),
        ({"medseg_sets": ("val",)}, "'tr' or 'rp'"),
        ({"unmapped_value": 300}, "uint8"),
    ],
)
def test_bad_options(ma, kwargs, match):
    with pytest.raises(ValueError, match=match):
        covid_ct_datalist(ma, **kwargs)


def test_empty_split_warns(ma):
    # 2 patient groups (coronacases_001, radiopaedia_29) in 5 folds: folds 0 and 1 only, no training group
    with pytest.warns(UserWarning, match=r"the 'train' split is empty: 2 patient group\(s\) dealt into 5 folds"):
        assert covid_ct_datalist(ma, layout="ma", split="train") == []


# ---- masks from another root (clean / corrected masks) -------------------------------------------------------------
def _clean_masks(root: Path) -> Path:
    """``<root>/demo_clean`` with masks that differ from the noisy ones in known places."""
    clean = root / "demo_clean"
    tr = _tr_mask()
    tr[4:7, 0:2, 0] = 2  # z0: 6 px consolidation the noisy mask missed
    _save(clean / "tr_mask.nii.gz", tr)
    for k in ("1", "2", "10"):
        m = np.zeros((8, 8, 3), np.uint8)
        m[5:8, 5:8, 2] = 1  # z2: 9 px ground-glass in every volume
        _save(clean / "rp_msk" / f"{k}.nii.gz", m)
    return clean


def test_mask_dir_noisy_then_clean_do_not_share_slices(medseg, tmp_path):
    clean_root = _clean_masks(medseg)
    kw = dict(split="all", slice_dir=tmp_path / "cache", empty_volume="drop")
    with pytest.warns(UserWarning, match="rp_msk/2.nii.gz' holds no pixel"):  # only the noisy rp 2 is empty
        noisy = covid_ct_datalist(medseg, **kw)
    stamps = {it["label"]: os.stat(it["label"]).st_mtime_ns for it in noisy}
    clean = covid_ct_datalist(medseg, mask_dir=clean_root, **kw)
    # 4 tr slices + 3 rp volumes x 3 slices (no volume empty in the clean masks)
    assert len(noisy) == 10 and len(clean) == 13
    assert clean[0]["source_label"] == str(clean_root.absolute() / "tr_mask.nii.gz")
    assert clean[4]["source_label"] == str(clean_root.absolute() / "rp_msk" / "1.nii.gz")
    assert [it["class_pixels"] for it in clean[:4]] == [[0, 6], [4, 1], [0, 0], [1, 0]]
    assert [it["class_pixels"] for it in clean[4:7]] == [[0, 0], [0, 0], [9, 0]]
    assert [it["class_pixels"] for it in noisy[4:7]] == [[0, 0], [0, 4], [0, 0]]
    # same images, separate label folders, and every written label equals its own source mask's slice
    assert [it["image"] for it in clean[:4]] != [it["image"] for it in noisy[:4]]  # one slice folder per mask root
    np.testing.assert_array_equal(_array(clean[0]["image"]), _array(noisy[0]["image"]))
    for items, root in ((noisy, medseg), (clean, clean_root)):
        for it in items:
            rel = "tr_mask.nii.gz" if it["volume_id"] == "medseg/tr" else f"rp_msk/{it['volume_id'][10:]}.nii.gz"
            src = _array(str(root / rel))[:, :, it["z"]]
            expected = np.where(src == 3, 0, src)  # default map: ggo 1, consolidation 2, effusion -> background
            np.testing.assert_array_equal(_array(it["label"]), expected, err_msg=it["label"])
    # the clean read left the noisy slices alone, and the noisy cache is still reused
    assert {it["label"]: os.stat(it["label"]).st_mtime_ns for it in noisy} == stamps
    with pytest.warns(UserWarning, match="holds no pixel"):
        again = covid_ct_datalist(medseg, **kw)
    assert again == noisy and {it["label"]: os.stat(it["label"]).st_mtime_ns for it in again} == stamps


def test_mask_dir_ma(ma, tmp_path):
    clean = tmp_path / "corrected"
    m = np.zeros((6, 6, 2), np.uint8)
    m[0, 0:3, 0] = 1
    for case in ("coronacases_001", "radiopaedia_29_86490_1", "radiopaedia_29_86491_1"):
        _save(clean / MA_FOLDERS["infection"] / f"{case}.nii.gz", m)
    items = covid_ct_datalist(ma, layout="ma", split="all", mask_dir=clean)
    assert [it["class_pixels"] for it in items] == [[3], [0]] * 3
    assert items[0]["image"].startswith(str((ma / "slices_2d").absolute()))
    assert items[0]["source_label"] == str(clean.absolute() / "Infection_Mask" / "coronacases_001.nii.gz")


def test_mask_dir_missing_masks(medseg, tmp_path):
    clean = tmp_path / "corrected"
    _save(clean / "tr_mask.nii.gz", _tr_mask())
    match = (
        r"3 COVID CT file\(s\) are missing, e\.g\. \[.*corrected/rp_msk/1.nii.gz.*\]\..*"
        r"Masks are read from mask_dir '.*corrected' with the same relative paths: .*<mask_dir>/rp_msk/<k>.nii.gz"
    )
    with pytest.raises(FileNotFoundError, match=match):
        covid_ct_datalist(medseg, split="all", mask_dir=clean)
    with pytest.raises(FileNotFoundError, match=r"Infection_Mask/coronacases_001.nii.gz.*<mask_dir>/Infection_Mask"):
        covid_ct_datalist(_ma(tmp_path / "covid_ma"), layout="ma", split="all", mask_dir=clean)


def test_mask_dir_demo_clean_masks(tmp_path):
    demo = pytest.importorskip("monai_ext.demo.covid_ct")
    pd = pytest.importorskip("pandas")
    root = tmp_path / "covid_medseg"
    demo.write_covid_medseg_demo(root, size=0.1, seed=3, image_size=48, missing_rate=0.3, erode_rate=0.3)
    kw = dict(split="all", medseg_sets=("rp",), slice_dir=tmp_path / "cache", label_map={"infection": (1, 2)})
    with warnings.catch_warnings():  # a noisy volume may have lost every lesion ("holds no pixel")
        warnings.simplefilter("ignore", UserWarning)
        noisy = covid_ct_datalist(root, **kw)
    clean = covid_ct_datalist(root, mask_dir=root / "demo_clean", **kw)
    assert [(it["case_id"], it["z"]) for it in noisy] == [(it["case_id"], it["z"]) for it in clean]
    rows = pd.read_csv(root / "demo_mask_noise.csv")
    rows = rows[rows["mask"].str.startswith("rp_msk/") & (rows["corruption"] != "none")]
    assert len(rows) >= 2
    by_slice = {(it["case_id"], it["z"]): (n, it) for n, it in zip(noisy, clean)}
    for r in rows.itertuples():
        case = f"medseg/rp_{r.mask[len('rp_msk/') : -len('.nii.gz')]}"
        box = (slice(r.i_first, r.i_last + 1), slice(r.j_first, r.j_last + 1))
        source = _array(str(root / "demo_clean" / r.mask))
        differs = []
        for z in range(r.k_first, r.k_last + 1):
            n, c = by_slice[(case, z)]
            np.testing.assert_array_equal(_array(c["label"]), np.isin(source[:, :, z], (1, 2)).astype(np.uint8))
            differs.append(bool((_array(n["label"])[box] != _array(c["label"])[box]).any()))
        assert any(differs), (r.mask, r.lesion, r.corruption)
