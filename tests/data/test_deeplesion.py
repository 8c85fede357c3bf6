# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for the DeepLesion reader on a tiny dataset in the real layout (DL_info.csv + uint16 PNG slices)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.data.deeplesion import DL_INFO_COLUMNS, HU_OFFSET, deeplesion_datalist, deeplesion_subset


def _row(name, key, box, noisy=0, ltype=-1, srange="108, 110", spacing="0.8, 0.8, 5", split=1):
    patient, study, series = (int(v) for v in name.split("_")[:3])
    return {
        "File_name": name,
        "Patient_index": patient,
        "Study_index": study,
        "Series_ID": series,
        "Key_slice_index": key,
        "Measurement_coordinates": "11, 21, 31, 41, 12, 22, 32, 42",
        "Bounding_boxes": box,
        "Lesion_diameters_Pixel_": "28.3, 14.1",
        "Normalized_lesion_location": "0.5, 0.25, 0.75",
        "Coarse_lesion_type": ltype,
        "Possibly_noisy": noisy,
        "Slice_range": srange,
        "Spacing_mm_px_": spacing,
        "Image_size": "512, 512",
        "DICOM_windows": "-175, 275",
        "Patient_gender": "M",
        "Patient_age": "51",
        "Train_Val_Test": split,
    }


ROWS = [
    _row("000001_01_01_109.png", 109, "10, 20, 30, 40"),
    _row("000001_01_01_109.png", 109, "100, 110, 120, 130", noisy=1, ltype=4),
    _row("000002_01_02_005.png", 5, "1, 2, 3, 4", srange="5, 9", spacing="0.7, 0.7, 1", split=2, ltype=5),
    _row("000003_02_01_020.png", 20, "5, 5, 6, 6", srange="18, 22", spacing="0.7, 0.7, nan", split=3),
]
# slices on disk per series folder; 000003_02_01/019.png is missing (a gap inside Slice_range)
SLICES = {"000001_01_01": [108, 109, 110], "000002_01_02": [5, 6, 7, 8, 9], "000003_02_01": [18, 20, 21, 22]}


def _write(root: Path, rows=ROWS, slices=SLICES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "DL_info.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    for series, indices in slices.items():
        folder = root / "Images_png" / series
        folder.mkdir(parents=True, exist_ok=True)
        for i in indices:
            hu = np.full((8, 8), -1000 + i, dtype=np.int32)
            Image.fromarray((hu + HU_OFFSET).astype(np.uint16)).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture()
def root(tmp_path):
    return _write(tmp_path / "deeplesion")


def _names(item):
    return [str(Path(p).relative_to(Path(p).parents[1])) for p in item["image"]]


def test_header_constant_is_verbatim():
    header = (
        "File_name,Patient_index,Study_index,Series_ID,Key_slice_index,Measurement_coordinates,Bounding_boxes,"
        "Lesion_diameters_Pixel_,Normalized_lesion_location,Coarse_lesion_type,Possibly_noisy,Slice_range,"
        "Spacing_mm_px_,Image_size,DICOM_windows,Patient_gender,Patient_age,Train_Val_Test"
    )
    assert ",".join(DL_INFO_COLUMNS) == header


def test_full_train_item(root):
    items = deeplesion_datalist(root, split="train")
    folder = root.absolute() / "Images_png" / "000001_01_01"
    expected = {
        "file_name": "000001_01_01_109.png",
        "series": "000001_01_01",
        "patient_id": "000001",
        "key_slice": 109,
        "slice_range": [108, 110],
        "spacing": [0.8, 0.8, 5.0],
        "dicom_window": [-175.0, 275.0],
        "image_size": [512, 512],
        "gender": "M",
        "age": 51.0,
        "split": "train",
        "box": [[9.0, 19.0, 29.0, 39.0]],  # 1-based CSV box minus 1
        "recist": [[10.0, 20.0, 30.0, 40.0, 11.0, 21.0, 31.0, 41.0]],
        "diameter_px": [[28.3, 14.1]],
        "location": [[0.5, 0.25, 0.75]],
        "lesion_type": [-1],
        "possibly_noisy": [0],
        "label": [0],  # 0-based: MONAI detectors take classes 0..num_classes-1
        "image": [str(folder / "108.png"), str(folder / "109.png"), str(folder / "110.png")],
        "index": 0,
    }
    assert items == [expected]


def test_hu_offset_in_fixture_png(root):
    # the listed key slice decodes to HU = value - 32768 (fixture writes HU -1000 + slice index)
    item = deeplesion_datalist(root, split="train")[0]
    arr = np.asarray(Image.open(item["image"][1])).astype(np.int64) - HU_OFFSET
    assert arr.dtype == np.int64 and int(arr[0, 0]) == -1000 + 109


def test_noisy_lesions_grouped_by_file_name(root):
    item = deeplesion_datalist(root, split="train", include_noisy=True)[0]
    assert item["box"] == [[9.0, 19.0, 29.0, 39.0], [99.0, 109.0, 119.0, 129.0]]
    assert item["label"] == [0, 0]
    assert item["lesion_type"] == [-1, 4]
    assert item["possibly_noisy"] == [0, 1]


def test_image_dropped_when_all_lesions_noisy(tmp_path):
    rows = [_row("000001_01_01_109.png", 109, "10, 20, 30, 40", noisy=1)]
    root = _write(tmp_path / "dl", rows=rows, slices={"000001_01_01": [108, 109, 110]})
    assert deeplesion_datalist(root, split="all") == []
    assert len(deeplesion_datalist(root, split="all", include_noisy=True)) == 1


@pytest.mark.parametrize(
    "split, files",
    [
        ("train", ["000001_01_01_109.png"]),
        ("val", ["000002_01_02_005.png"]),
        ("test", ["000003_02_01_020.png"]),
        ("all", ["000001_01_01_109.png", "000002_01_02_005.png", "000003_02_01_020.png"]),
    ],
)
def test_splits_and_sorted_order(root, split, files):
    items = deeplesion_datalist(root, split=split)
    assert [it["file_name"] for it in items] == files
    assert [it["index"] for it in items] == list(range(len(files)))


@pytest.mark.parametrize(
    "file_name, num_slices, check_files, expected",
    [
        # both ends of Slice_range [108, 110] fall back to the nearest slice towards the key
        ("000001_01_01_109.png", 5, True, ["108", "108", "109", "110", "110"]),
        ("000001_01_01_109.png", 1, True, ["109"]),
        # key slice at the start of Slice_range [5, 9]
        ("000002_01_02_005.png", 3, True, ["005", "005", "006"]),
        ("000002_01_02_005.png", 5, True, ["005", "005", "005", "006", "007"]),
        # 019.png is missing inside Slice_range [18, 22]: falls back to the key when files are checked
        ("000003_02_01_020.png", 5, True, ["018", "020", "020", "021", "022"]),
        ("000003_02_01_020.png", 5, False, ["018", "019", "020", "021", "022"]),
    ],
)
def test_neighbour_fallback(root, file_name, num_slices, check_files, expected):
    items = deeplesion_datalist(root, split="all", num_slices=num_slices, check_files=check_files)
    item = next(it for it in items if it["file_name"] == file_name)
    series = file_name[:12]
    assert _names(item) == [f"{series}/{s}.png" for s in expected]


def test_slice_interval_mm(root):
    items = {it["file_name"]: it for it in deeplesion_datalist(root, split="all", slice_interval_mm=2.0)}
    # z spacing 5 mm: 2 mm is 0.4 slice -> nearest slice is the key, linear pair (key, +-1) with weight 0.4
    a = items["000001_01_01_109.png"]
    assert _names(a) == ["000001_01_01/109.png"] * 3
    assert [[Path(p).name for p in pair] for pair in a["slice_pairs"]] == [
        ["109.png", "108.png"],
        ["109.png", "109.png"],
        ["109.png", "110.png"],
    ]
    assert a["slice_weights"] == pytest.approx([0.4, 0.0, 0.4])
    # z spacing 1 mm: 2 slices; -2 lies below Slice_range [5, 9] and falls back to the key 5
    b = items["000002_01_02_005.png"]
    assert _names(b) == ["000002_01_02/005.png", "000002_01_02/005.png", "000002_01_02/007.png"]
    assert b["slice_weights"] == [0.0, 0.0, 0.0]
    # NaN z spacing: key slice in every channel, as the official loader
    c = items["000003_02_01_020.png"]
    assert _names(c) == ["000003_02_01/020.png"] * 3
    assert math.isnan(c["spacing"][2])


def test_no_interval_keys_without_slice_interval(root):
    item = deeplesion_datalist(root, split="train")[0]
    assert "slice_pairs" not in item and "slice_weights" not in item


@pytest.mark.parametrize(
    "column, value, match",
    [
        ("Bounding_boxes", "10, 20, 30", r"line 2, column 'Bounding_boxes'.*expected 4 comma-separated numbers"),
        ("Bounding_boxes", "10, x, 30, 40", r"line 2, column 'Bounding_boxes'.*not a number"),
        ("Bounding_boxes", "10, 20, 30, 40, 50", r"line 2, column 'Bounding_boxes'.*expected 4 comma-separated"),
        ("Bounding_boxes", "30, 20, 10, 40", r"line 2, column 'Bounding_boxes'.*x1 <= x2"),
        ("Bounding_boxes", "10, 40, 30, 20", r"line 2, column 'Bounding_boxes'.*y1 <= y2"),
        ("Bounding_boxes", "10, 20, 514, 40", r"line 2, column 'Bounding_boxes'.*outside the image.*'512, 512'"),
        ("Bounding_boxes", "10, 20, 30, 600", r"line 2, column 'Bounding_boxes'.*outside the image"),
        ("Bounding_boxes", "-1, 20, 30, 40", r"line 2, column 'Bounding_boxes'.*outside the image"),
        ("Image_size", "512", r"line 2, column 'Image_size'.*expected 2"),
        ("Spacing_mm_px_", "0.8; 0.8; 5", r"line 2, column 'Spacing_mm_px_'.*expected 3"),
        ("Key_slice_index", "110", r"line 2, column 'Key_slice_index'.*110 differs from the slice 109"),
        ("Train_Val_Test", "4", r"line 2, column 'Train_Val_Test'.*expected 1, 2 or 3"),
        ("Slice_range", "110, 112", r"line 2, column 'Slice_range'.*key slice 109 lies outside \[110, 112\]"),
        ("File_name", "000001_01_01.png", r"line 2, column 'File_name'"),
    ],
)
def test_malformed_values_name_line_and_column(tmp_path, column, value, match):
    rows = [dict(r) for r in ROWS]
    rows[0][column] = value
    root = _write(tmp_path / "dl", rows=rows)
    with pytest.raises(DatasetLayoutError, match=match):
        deeplesion_datalist(root, split="all", check_files=False)


def test_inconsistent_split_within_image(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[1]["Train_Val_Test"] = 2
    root = _write(tmp_path / "dl", rows=rows)
    with pytest.raises(DatasetLayoutError, match=r"line 3, column 'Train_Val_Test'.*split 'train' on line 2"):
        deeplesion_datalist(root, split="all")


def test_missing_column(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "DICOM_windows"} for r in ROWS]
    root = _write(tmp_path / "dl", rows=rows)
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) \['DICOM_windows'\]"):
        deeplesion_datalist(root)


def test_missing_key_slice_and_check_files(tmp_path):
    root = _write(tmp_path / "dl", slices={"000001_01_01": [108, 110]})
    with pytest.raises(FileNotFoundError, match=r"3 DeepLesion key slice\(s\).*000001_01_01/109.png"):
        deeplesion_datalist(root, split="all")
    items = deeplesion_datalist(root, split="all", check_files=False)
    assert len(items) == 3


def test_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="DL_info.csv"):
        deeplesion_datalist(tmp_path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_slices": 2}, "positive odd"),
        ({"num_slices": 0}, "positive odd"),
        ({"slice_interval_mm": 0.0}, "slice_interval_mm must be positive"),
        ({"split": "training"}, "training"),
    ],
)
def test_bad_options(root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        deeplesion_datalist(root, **kwargs)


def test_box_on_the_image_border_is_accepted(tmp_path):
    # 1-based box touching both borders of a 512 x 512 image -> 0-based [0, 0, 511, 511]
    rows = [dict(r) for r in ROWS]
    rows[0]["Bounding_boxes"] = "1, 1, 512, 512"
    items = deeplesion_datalist(_write(tmp_path / "dl", rows=rows), split="train")
    assert items[0]["box"] == [[0.0, 0.0, 511.0, 511.0]]


def test_noisy_lesions_dropped_in_every_split(tmp_path):
    # the official MULAN and 3DCE loaders drop Possibly_noisy lesions from train, val and test alike
    rows = [dict(r) for r in ROWS]
    rows[2]["Possibly_noisy"] = 1  # the only (val) lesion of 000002_01_02_005.png
    rows[3]["Possibly_noisy"] = 1  # the only (test) lesion of 000003_02_01_020.png
    root = _write(tmp_path / "dl", rows=rows)
    assert deeplesion_datalist(root, split="val") == [] and deeplesion_datalist(root, split="test") == []
    assert [len(it["box"]) for it in deeplesion_datalist(root, split="test", include_noisy=True)] == [1]


@pytest.mark.parametrize("slice_interval_mm", [None, 0.7])
def test_missing_neighbour_error_names_files_and_line(tmp_path, slice_interval_mm):
    # 000003_02_01/019.png lies inside Slice_range [18, 22] but is missing; the image is on line 5 (4th data row)
    rows = [dict(r) for r in ROWS]
    rows[3]["Spacing_mm_px_"] = "0.7, 0.7, 1"  # 0.7 mm = 0.7 slice: the nearest (and the pair's far) slice is 19
    root = _write(tmp_path / "dl", rows=rows)
    with pytest.raises(DatasetLayoutError, match=r"line 5, column 'Slice_range'.*000003_02_01/019\.png"):
        deeplesion_datalist(root, split="all", missing_neighbours="error", slice_interval_mm=slice_interval_mm)


def test_missing_neighbour_error_ignores_ends_of_slice_range(root):
    # key slice 5 is the first of Slice_range [5, 9]: slice 4 is outside the release, not missing -> no error
    items = deeplesion_datalist(root, split="val", num_slices=5, missing_neighbours="error")
    assert _names(items[0]) == [f"000002_01_02/{s}.png" for s in ("005", "005", "005", "006", "007")]
    # the default falls back to the key slice for the missing 019.png (as the official get_slice_name)
    item = deeplesion_datalist(root, split="test", missing_neighbours="nearest")[0]
    assert _names(item) == ["000003_02_01/020.png", "000003_02_01/020.png", "000003_02_01/021.png"]
    with pytest.raises(ValueError, match="skip"):
        deeplesion_datalist(root, missing_neighbours="skip")


# ----------------------------------------------------------------------------------------------------- subsets
def _items(n_patients, images_per_patient=(1, 2, 3)):
    items = []
    for p in range(n_patients):
        for k in range(images_per_patient[p % len(images_per_patient)]):
            items.append({"patient_id": f"{p:06d}", "file_name": f"{p:06d}_01_01_{k:03d}.png", "index": len(items)})
    return items


def test_subset_keeps_whole_patients_nested_and_reindexed():
    items = _items(40)
    quarter, half, full = (deeplesion_subset(items, f, seed=7) for f in (0.25, 0.5, 1.0))
    patients = [{it["patient_id"] for it in s} for s in (quarter, half, full)]
    assert [len(p) for p in patients] == [10, 20, 40]
    assert patients[0] < patients[1] < patients[2]  # nested
    for subset, kept in zip((quarter, half, full), patients):
        # all images of a kept patient, in the input order, indices 0..n-1
        expected = [it["file_name"] for it in items if it["patient_id"] in kept]
        assert [it["file_name"] for it in subset] == expected
        assert [it["index"] for it in subset] == list(range(len(subset)))
    assert [it["index"] for it in items] == list(range(len(items)))  # input untouched
    assert [it["file_name"] for it in deeplesion_subset(items, 0.25, seed=7)] == [it["file_name"] for it in quarter]
    other = {it["patient_id"] for it in deeplesion_subset(items, 0.25, seed=8)}
    assert other != patients[0]


def test_subset_by_image_and_rounding():
    items = _items(10)  # 1, 2, 3, 1, 2, 3, ... images: 19 images
    assert len(items) == 19
    assert len(deeplesion_subset(items, 0.5, seed=0, by="image")) == 10  # round(9.5) half up
    assert len({it["patient_id"] for it in deeplesion_subset(items, 0.25, seed=0)}) == 3  # round(2.5) half up


@pytest.mark.parametrize(
    "fraction, by, match",
    [
        (0.1, "patient", r"fraction 0.1 of 3 patient\(s\) \(6 key images\) keeps no patient"),
        (0.0, "patient", r"fraction must lie in \(0, 1\]"),
        (1.5, "patient", r"fraction must lie in \(0, 1\]"),
        (0.5, "study", "by must be"),
    ],
)
def test_subset_errors(fraction, by, match):
    with pytest.raises(ValueError, match=match):
        deeplesion_subset(_items(3), fraction, seed=0, by=by)
