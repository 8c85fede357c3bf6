# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of the CT demo writers: DeepLesion (DL_info.csv + uint16 PNG) and COVID-19 CT (MedSeg and Ma layouts)."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from monai_ext.demo.covid_ct import write_covid_ma_demo, write_covid_medseg_demo
from monai_ext.demo.deeplesion import write_deeplesion_demo

DL_HEADER = (
    "File_name,Patient_index,Study_index,Series_ID,Key_slice_index,Measurement_coordinates,Bounding_boxes,"
    "Lesion_diameters_Pixel_,Normalized_lesion_location,Coarse_lesion_type,Possibly_noisy,Slice_range,"
    "Spacing_mm_px_,Image_size,DICOM_windows,Patient_gender,Patient_age,Train_Val_Test"
)
SIZE = 96


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(", ")]


def _nii(path):
    img = nib.load(str(path))
    return np.asarray(img.dataobj), img


# ----------------------------------------------------------------------------------------------------- DeepLesion
@pytest.fixture(scope="module")
def dl(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "deeplesion"
    summary = write_deeplesion_demo(root, size=0.3, seed=3, image_size=SIZE, noisy_rate=0.3, unannotated_rate=0.6)
    info = pd.read_csv(root / "DL_info.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(root / "demo_lesions.csv")
    return root, summary, info, truth


def test_dl_header_and_quoting(dl):
    root, _, info, _ = dl
    lines = (root / "DL_info.csv").read_text().splitlines()
    assert lines[0] == DL_HEADER
    assert list(info["File_name"]) == sorted(info["File_name"])
    # multi-value fields are quoted ", "-separated lists, as in the release
    assert lines[1].count('"') == 2 * 8
    for col, n in (
        ("Measurement_coordinates", 8),
        ("Bounding_boxes", 4),
        ("Lesion_diameters_Pixel_", 2),
        ("Normalized_lesion_location", 3),
        ("Slice_range", 2),
        ("Spacing_mm_px_", 3),
        ("Image_size", 2),
        ("DICOM_windows", 2),
    ):
        assert info[col].map(lambda t: len(t.split(", "))).eq(n).all(), col
    assert set(info["Image_size"]) == {f"{SIZE}, {SIZE}"}
    assert set(info["Patient_gender"]) <= {"M", "F"}


def test_dl_fields_consistent(dl):
    _, _, info, truth = dl
    pad = 5 * SIZE / 512
    # images with a loose box (the demo's deliberately enlarged/shifted boxes) only need to contain the RECIST extent
    loose = set(truth.loc[truth["annotation"] == "loose_box", "File_name"])
    for _, r in info.iterrows():
        m = _floats(r["Measurement_coordinates"])
        box = _floats(r["Bounding_boxes"])
        xs, ys = m[0::2], m[1::2]
        expect = [max(min(xs) - pad, 1), max(min(ys) - pad, 1), min(max(xs) + pad, SIZE), min(max(ys) + pad, SIZE)]
        if r["File_name"] in loose:
            tight = [min(xs), min(ys), max(xs), max(ys)]
            assert box[0] <= tight[0] + 1e-3 and box[1] <= tight[1] + 1e-3
            assert box[2] >= tight[2] - 1e-3 and box[3] >= tight[3] - 1e-3
        else:
            np.testing.assert_allclose(box, expect, atol=2e-3 * max(expect))
        long_d, short_d = _floats(r["Lesion_diameters_Pixel_"])
        axes = sorted([math.dist(m[0:2], m[2:4]), math.dist(m[4:6], m[6:8])], reverse=True)
        np.testing.assert_allclose([long_d, short_d], axes, rtol=1e-4)
        lo, hi = (int(v) for v in _floats(r["Slice_range"]))
        assert lo <= int(r["Key_slice_index"]) <= hi
        assert (
            r["File_name"] == f"{int(r['Patient_index']):06d}_{int(r['Study_index']):02d}_"
            f"{int(r['Series_ID']):02d}_{int(r['Key_slice_index']):03d}.png"
        )
        assert all(0 <= v <= 1 for v in _floats(r["Normalized_lesion_location"]))
        ctype, split = int(r["Coarse_lesion_type"]), int(r["Train_Val_Test"])
        assert (ctype == -1) if split == 1 else (1 <= ctype <= 8)
        assert r["Possibly_noisy"] in ("0", "1")
    # one split per patient, one Slice_range per series folder
    assert info.groupby("Patient_index")["Train_Val_Test"].nunique().eq(1).all()
    assert info.assign(series=info["File_name"].str[:12]).groupby("series")["Slice_range"].nunique().eq(1).all()
    assert set(info["Train_Val_Test"]) == {"1", "2", "3"}


def test_dl_folders_hold_exactly_slice_range(dl):
    root, summary, info, _ = dl
    n = 0
    for series, rng_text in (
        info.assign(series=info["File_name"].str[:12]).groupby("series")["Slice_range"].first().items()
    ):
        lo, hi = (int(v) for v in _floats(rng_text))
        files = sorted(p.name for p in (root / "Images_png" / series).iterdir())
        assert files == [f"{k:03d}.png" for k in range(lo, hi + 1)]
        assert 3 <= hi - lo + 1 <= 20  # only a few neighbours, like the release
        n += len(files)
    assert n == summary["slices"]


def test_dl_png_uint16_hu_round_trip(dl):
    root, _, _, truth = dl
    checked = 0
    for _, les in truth.iterrows():
        folder, _, k = les["File_name"][:-4].rpartition("_")
        img = Image.open(root / "Images_png" / folder / f"{k}.png")
        arr = np.array(img)
        assert img.mode == "I;16" and arr.dtype == np.uint16 and arr.shape == (SIZE, SIZE)
        hu = arr.astype(np.int32) - 32768
        assert hu.min() >= -1024 and hu[0, 0] < -900  # air in the corner
        if les["radius_short_px"] < 2.5 or abs(les["center_slice"] - int(k)) > 0.45 * les["radius_slices"]:
            continue
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        a = math.radians(les["angle_deg"])
        c, s = math.cos(a), math.sin(a)
        u = (xx - les["center_x"]) * c + (yy - les["center_y"]) * s
        v = -(xx - les["center_x"]) * s + (yy - les["center_y"]) * c
        core = (u / les["radius_long_px"]) ** 2 + (v / les["radius_short_px"]) ** 2 < 0.25
        assert abs(hu[core].mean() - les["hu"]) < 30, (les["File_name"], hu[core].mean(), les["hu"])
        checked += 1
    assert checked >= 5


def test_dl_label_noise_records(dl):
    _, summary, info, truth = dl
    annotated = truth[truth["annotated"] == 1]
    assert len(annotated) == len(info) == summary["lesions"]
    unannotated = truth[truth["annotated"] == 0]
    assert len(unannotated) == summary["unannotated_lesions"] > 0
    split_of = dict(zip(info["File_name"], info["Train_Val_Test"]))
    assert {split_of[f] for f in unannotated["File_name"]} == {"1"}  # only the training split is incomplete
    assert int(info["Possibly_noisy"].astype(int).sum()) == int(annotated["possibly_noisy"].sum()) > 0
    # reliable rows: the RECIST centre lies at the true lesion centre (1-based -> 0-based)
    for (_, r), (_, t) in zip(info.iterrows(), annotated.iterrows()):
        m = np.array(_floats(r["Measurement_coordinates"])) - 1
        centre = m[0:4].reshape(2, 2).mean(0)
        if r["Possibly_noisy"] == "0":
            assert np.hypot(*(centre - [t["center_x"], t["center_y"]])) < 1.0


def test_dl_reader_round_trip(dl):
    reader = pytest.importorskip("monai_ext.data.deeplesion")
    root, _, info, _ = dl
    items = reader.deeplesion_datalist(root, split="all", include_noisy=True, num_slices=3)
    assert sum(len(it["box"]) for it in items) == len(info)
    first = info[info["File_name"] == items[0]["file_name"]].iloc[0]
    np.testing.assert_allclose(items[0]["box"][0], np.array(_floats(first["Bounding_boxes"])) - 1, atol=1e-6)
    assert all(len(it["image"]) == 3 for it in items)


def test_dl_deterministic_and_options(tmp_path):
    a = write_deeplesion_demo(tmp_path / "a", size=0.01, seed=5, image_size=64)
    write_deeplesion_demo(tmp_path / "b", size=0.01, seed=5, image_size=64)
    write_deeplesion_demo(tmp_path / "c", size=0.01, seed=6, image_size=64)
    text = (tmp_path / "a" / "DL_info.csv").read_text()
    assert text == (tmp_path / "b" / "DL_info.csv").read_text() != (tmp_path / "c" / "DL_info.csv").read_text()
    first = sorted((tmp_path / "a" / "Images_png").rglob("*.png"))[0]
    other = tmp_path / "b" / first.relative_to(tmp_path / "a")
    assert np.array_equal(np.array(Image.open(first)), np.array(Image.open(other)))
    assert a["patients"] == 6
    with pytest.raises(ValueError, match="noisy_rate"):
        write_deeplesion_demo(tmp_path / "d", noisy_rate=1.5)
    with pytest.raises(ValueError, match="split_fractions"):
        write_deeplesion_demo(tmp_path / "d", split_fractions=(0.5, 0.5, 0.5))


# -------------------------------------------------------------------------------------------------- COVID MedSeg
@pytest.fixture(scope="module")
def medseg(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "covid_medseg"
    summary = write_covid_medseg_demo(
        root, size=0.12, seed=1, image_size=SIZE, missing_rate=0.2, erode_rate=0.25, dilate_rate=0.25
    )
    return root, summary


def test_medseg_files_shapes_affines(medseg):
    root, summary = medseg
    im, img = _nii(root / "tr_im.nii.gz")
    assert im.shape == (SIZE, SIZE, summary["train_slices"]) and im.dtype == np.float32
    for name in ("tr_mask.nii.gz", "tr_lungmasks_updated.nii.gz", "demo_clean/tr_mask.nii.gz"):
        m, mimg = _nii(root / name)
        assert m.shape == im.shape and m.dtype == np.uint8
        np.testing.assert_array_equal(mimg.affine, img.affine)
    assert _nii(root / "val_im.nii.gz")[0].shape[2] == summary["val_slices"]
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    for k in range(1, summary["volumes"] + 1):
        vol, vimg = _nii(root / "rp_im" / f"{k}.nii.gz")
        assert vol.dtype == np.int16 and vol.min() >= -1024
        for folder in ("rp_msk", "rp_lung_msk", "demo_clean/rp_msk"):
            m, mimg = _nii(root / folder / f"{k}.nii.gz")
            assert m.shape == vol.shape
            np.testing.assert_array_equal(mimg.affine, vimg.affine)


def test_medseg_labels_and_hu(medseg):
    root, _ = medseg
    im = _nii(root / "tr_im.nii.gz")[0]
    clean = _nii(root / "demo_clean" / "tr_mask.nii.gz")[0]
    lungs = _nii(root / "tr_lungmasks_updated.nii.gz")[0]
    assert set(np.unique(clean)) == {0, 1, 2, 3}
    assert set(np.unique(_nii(root / "tr_mask.nii.gz")[0])) <= {0, 1, 2, 3}
    assert set(np.unique(lungs)) == {0, 1, 2}
    assert np.all(lungs[(clean == 1) | (clean == 2)] > 0)  # GGO and consolidation lie in the lungs
    assert np.all(lungs[clean == 3] == 0)  # effusion lies outside them
    assert (clean.reshape(-1, clean.shape[2]).max(0) == 0).any()  # some slices hold no lesion
    core = ndimage.binary_erosion
    st = np.ones((3, 3, 1), bool)
    for label, lo, hi in ((1, -760, -440), (2, -160, 90), (3, -25, 45)):
        inner = core(clean == label, st)
        assert inner.sum() > 20 and lo < im[inner].mean() < hi, (label, im[inner].mean())
    healthy = core((lungs > 0) & (clean == 0), st, iterations=3)
    assert -900 < np.median(im[healthy]) < -740
    assert np.median(im[:2, :2, :]) < -950  # air
    # the left lung (1) lies on the image's right, i.e. at larger x (patient left in RAS: 'L' axis code)
    xs = np.nonzero(lungs)[0]
    assert xs[lungs[lungs > 0] == 1].mean() > xs[lungs[lungs > 0] == 2].mean()


def _check_noise(root, rows, mask_name=None):
    """Every recorded corruption agrees with the clean and noisy masks; nothing else differs."""
    changed_allowed = {}
    for mask, grp in rows.groupby("mask"):
        noisy = _nii(root / mask)[0]
        clean = _nii(root / "demo_clean" / mask)[0]
        allowed = np.zeros(noisy.shape, bool)
        boxes = []
        for _, r in grp.iterrows():
            sl = (
                slice(max(r.i_first - 3, 0), r.i_last + 4),
                slice(max(r.j_first - 3, 0), r.j_last + 4),
                slice(r.k_first, r.k_last + 1),
            )
            boxes.append((sl, r))
            if r.corruption != "none":
                allowed[sl] = True
        assert not np.any((noisy != clean) & ~allowed), mask
        for sl, r in boxes:
            isolated = all(
                not all(a.start < b.stop and b.start < a.stop for a, b in zip(sl, other))
                for other, o in boxes
                if o.lesion != r.lesion
            )
            if not isolated:
                continue
            c, n = clean[sl] > 0, noisy[sl] > 0
            if r.corruption == "none":
                assert np.array_equal(c, n) and r.voxels_clean == r.voxels_noisy
            elif r.corruption == "missing":
                assert not n.any() and r.voxels_noisy == 0 < r.voxels_clean
            elif r.corruption == "erode":
                assert np.all(c[n]) and n.sum() < c.sum() and r.voxels_noisy < r.voxels_clean
            elif r.corruption == "dilate":
                assert np.all(n[c]) and n.sum() > c.sum() and r.voxels_noisy > r.voxels_clean
            else:  # wrong_class: the same voxels, GGO (1) and consolidation (2) swapped
                assert r.corruption == "wrong_class" and np.array_equal(c, n)
                inside = clean[sl] > 0
                assert np.array_equal(noisy[sl][inside], (3 - clean[sl])[inside]) and clean[sl].max() <= 2
            changed_allowed[r.corruption] = changed_allowed.get(r.corruption, 0) + 1
    return changed_allowed


def test_medseg_noise_record(medseg):
    root, summary = medseg
    rows = pd.read_csv(root / "demo_mask_noise.csv")
    assert list(rows.columns) == [
        "mask",
        "lesion",
        "label",
        "corruption",
        "i_first",
        "i_last",
        "j_first",
        "j_last",
        "k_first",
        "k_last",
        "voxels_clean",
        "voxels_noisy",
        "appearance",
    ]
    assert set(rows["appearance"]) == {"typical"}  # no under-represented lesions unless asked for
    assert len(rows) == summary["lesions"]
    assert set(rows["mask"]) == {"tr_mask.nii.gz"} | {f"rp_msk/{k}.nii.gz" for k in range(1, summary["volumes"] + 1)}
    assert set(rows["label"]) <= {1, 2, 3}
    assert set(rows["corruption"]) == {"none", "missing", "erode", "dilate"}
    assert len(_check_noise(root, rows)) >= 3  # corruption types checked on isolated lesions


@pytest.fixture(scope="module")
def medseg_study(tmp_path_factory):
    """The study's kind of set: Dataset 1 only, wrong-class noise, tiny and low-contrast slices."""
    root = tmp_path_factory.mktemp("demo") / "covid_medseg"
    summary = write_covid_medseg_demo(
        root, seed=5, image_size=64, n_slices=80, n_volumes=0, missing_rate=0.1, erode_rate=0.1, dilate_rate=0.1,
        wrong_class_rate=0.3, tiny_rate=0.3, low_contrast_rate=0.3,
    )  # fmt: skip
    return root, summary, pd.read_csv(root / "demo_mask_noise.csv")


def test_medseg_study_set_records_every_corruption_as_applied(medseg_study):
    root, summary, rows = medseg_study
    assert summary["train_slices"] == 80 and summary["volumes"] == 0
    assert (root / "rp_im").is_dir() and not any((root / "rp_im").iterdir())  # Dataset 2 present and empty
    assert set(rows["mask"]) == {"tr_mask.nii.gz"}
    assert set(rows["corruption"]) == {"none", "missing", "erode", "dilate", "wrong_class"}
    assert summary["corruptions"]["wrong_class"] == (rows["corruption"] == "wrong_class").sum() > 0
    assert not ((rows["corruption"] == "wrong_class") & (rows["label"] == 3)).any()  # effusions keep their label
    assert _check_noise(root, rows).get("wrong_class", 0) >= 1


def _lesion_stats(root, rows):
    """Per lesion row: clean lesion pixels in its box and its contrast (mean HU of the lesion's inner pixels minus
    the median HU of the lesion-free lung of its slice)."""
    im, clean = _nii(root / "tr_im.nii.gz")[0], _nii(root / "demo_clean" / "tr_mask.nii.gz")[0]
    lungs = _nii(root / "tr_lungmasks_updated.nii.gz")[0]
    out = []
    for _, r in rows.iterrows():
        k = r.k_first
        box = (slice(r.i_first, r.i_last + 1), slice(r.j_first, r.j_last + 1), k)
        lesion = clean[box] == r.label
        inner = ndimage.binary_erosion(lesion) if ndimage.binary_erosion(lesion).sum() >= 3 else lesion
        lung = (lungs[..., k] > 0) & (clean[..., k] == 0)
        out.append((int(lesion.sum()), float(im[box][inner].mean() - np.median(im[..., k][lung]))))
    return np.array(out)


def test_medseg_under_represented_lesions_are_smaller_and_fainter(medseg_study):
    root, summary, rows = medseg_study
    assert summary["appearances"] == {
        a: int((rows["appearance"] == a).sum()) for a in ("typical", "tiny", "low_contrast")
    }
    # one appearance per slice (each Dataset 1 slice is its own patient); an effusion is always typical
    covid = rows[rows["label"] < 3]
    assert (covid.groupby("k_first")["appearance"].nunique() == 1).all()
    assert set(rows.loc[rows["label"] == 3, "appearance"]) <= {"typical"}
    ggo = rows[rows["label"] == 1]
    stats = {a: _lesion_stats(root, ggo[ggo["appearance"] == a]) for a in ("typical", "tiny", "low_contrast")}
    assert all(len(v) >= 5 for v in stats.values()), {a: len(v) for a, v in stats.items()}
    size, contrast = {a: v[:, 0] for a, v in stats.items()}, {a: v[:, 1] for a, v in stats.items()}
    assert np.median(size["tiny"]) < np.median(size["typical"]) / 3
    assert np.median(contrast["low_contrast"]) < np.median(contrast["typical"]) / 2
    assert np.median(contrast["low_contrast"]) > 20  # still brighter than the lung
    # pure-GGO typical lesions: -700..-500 HU against lung -860 (texture and noise averaged out)
    assert 120 < np.median(contrast["typical"]) < 400


def test_medseg_study_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="tiny_rate and low_contrast_rate"):
        write_covid_medseg_demo(tmp_path / "a", tiny_rate=0.7, low_contrast_rate=0.4)
    with pytest.raises(ValueError, match="n_slices must be >= 8"):
        write_covid_medseg_demo(tmp_path / "a", n_slices=4)
    with pytest.raises(ValueError, match="sum to at most 1"):
        write_covid_medseg_demo(tmp_path / "a", missing_rate=0.5, wrong_class_rate=0.6)


# ------------------------------------------------------------------------------------------------------ COVID Ma
@pytest.fixture(scope="module")
def ma(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "covid_ma"
    summary = write_covid_ma_demo(
        root, size=0.5, seed=2, image_size=SIZE, missing_rate=0.25, erode_rate=0.25, dilate_rate=0.25
    )
    return root, summary


def test_ma_names_ranges_masks(ma):
    root, summary = ma
    assert summary["cases"] == ["coronacases_001", "coronacases_002", "radiopaedia_4_85506_1", "radiopaedia_7_85703_0"]
    for folder in ("COVID-19-CT-Seg_20cases", "Infection_Mask", "Lung_Mask", "Lung_and_Infection_Mask"):
        assert sorted(p.name for p in (root / folder).iterdir()) == sorted(f"{c}.nii.gz" for c in summary["cases"])
    for case in summary["cases"]:
        im, img = _nii(root / "COVID-19-CT-Seg_20cases" / f"{case}.nii.gz")
        inf = _nii(root / "Infection_Mask" / f"{case}.nii.gz")[0]
        lung = _nii(root / "Lung_Mask" / f"{case}.nii.gz")[0]
        both, bimg = _nii(root / "Lung_and_Infection_Mask" / f"{case}.nii.gz")
        assert inf.shape == lung.shape == both.shape == im.shape
        np.testing.assert_array_equal(bimg.affine, img.affine)
        assert set(np.unique(inf)) <= {0, 1} and set(np.unique(lung)) == {0, 1, 2}
        assert set(np.unique(both)) <= {0, 1, 2, 3}
        np.testing.assert_array_equal(both == 3, inf == 1)
        np.testing.assert_array_equal(np.where(inf == 1, 0, both), np.where(inf == 1, 0, lung))
        clean = _nii(root / "demo_clean" / "Infection_Mask" / f"{case}.nii.gz")[0]
        if case.startswith("radiopaedia"):
            # [-1250, 250] HU -> [0, 255]: air (-1000 HU) is 250 / 1500 * 255 = 42.5, bone saturates at 255
            assert im.dtype == np.uint8 and im.max() == 255 and 41 <= np.median(im[:3, :3, :]) <= 44
            hu = -1250 + im.astype(float) / 255 * 1500  # invert the release's windowing
        else:
            assert im.dtype == np.int16 and im.min() >= -1024 and im.max() > 300
            hu = im.astype(float)
        inner = ndimage.binary_erosion(clean == 1, np.ones((3, 3, 1), bool))
        assert -750 < hu[inner].mean() < -150  # GGO with some consolidation
        healthy = ndimage.binary_erosion(lung > 0, iterations=2) & ~ndimage.binary_dilation(clean == 1, iterations=3)
        assert -900 < np.median(hu[healthy]) < -740


def test_ma_noise_record(ma):
    root, summary = ma
    rows = pd.read_csv(root / "demo_mask_noise.csv")
    assert set(rows["mask"]) == {f"Infection_Mask/{c}.nii.gz" for c in summary["cases"]}
    assert set(rows["label"]) == {1}
    assert len(_check_noise(root, rows)) >= 3


def test_covid_reader_round_trip(ma, medseg, tmp_path):
    reader = pytest.importorskip("monai_ext.data.covid_ct")
    items = reader.covid_ct_datalist(ma[0], layout="ma", split="all", slice_dir=tmp_path / "ma")
    assert len({it["volume_id"] for it in items}) == 4
    assert {it["intensity_source"] for it in items} == {"hu", "window_0_255"}
    items = reader.covid_ct_datalist(medseg[0], layout="medseg", split="all", slice_dir=tmp_path / "medseg")
    assert any(it["has_lesion"] for it in items) and not all(it["has_lesion"] for it in items)


def test_covid_deterministic_and_errors(tmp_path):
    kwargs = dict(size=0.1, image_size=64)
    write_covid_ma_demo(tmp_path / "a", seed=4, **kwargs)
    write_covid_ma_demo(tmp_path / "b", seed=4, **kwargs)
    for rel in ("COVID-19-CT-Seg_20cases/coronacases_001.nii.gz", "Infection_Mask/radiopaedia_4_85506_1.nii.gz"):
        np.testing.assert_array_equal(_nii(tmp_path / "a" / rel)[0], _nii(tmp_path / "b" / rel)[0])
    assert (tmp_path / "a" / "demo_mask_noise.csv").read_text() == (tmp_path / "b" / "demo_mask_noise.csv").read_text()
    with pytest.raises(ValueError, match="sum to at most 1"):
        write_covid_medseg_demo(tmp_path / "c", missing_rate=0.6, erode_rate=0.6)
    with pytest.raises(ValueError, match="rates"):
        write_covid_ma_demo(tmp_path / "c", dilate_rate=-0.1)
    with pytest.raises(ValueError, match="noise_radius"):
        write_covid_ma_demo(tmp_path / "c", noise_radius=6)


def test_dl_clean_annotation_boxes_every_drawn_lesion(dl):
    root, _, info, truth = dl
    clean = pd.read_csv(root / "DL_info_clean.csv", dtype=str, keep_default_na=False)
    assert list(clean.columns) == list(info.columns)
    assert len(clean) == len(truth)  # every drawn key-image lesion, annotated or not
    assert set(clean["Possibly_noisy"]) == {"0"}
    assert sorted(set(clean["File_name"])) == sorted(set(truth["File_name"]))
