# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import math

import pytest

from monai_ext.data.datalist import (
    DatasetLayoutError,
    assign_indices,
    class_prevalence,
    class_totals,
    csv_lines,
    read_csv_checked,
    require_dir,
    require_file,
    require_unique,
    row_error,
    spelling_key,
)


def test_assign_indices_is_position_and_in_place():
    items = [{"image": "b.png"}, {"image": "a.png"}, {"image": "c.png"}]
    out = assign_indices(items)
    assert out is items
    assert [it["index"] for it in items] == [0, 1, 2]
    assert items[1]["image"] == "a.png"


def test_read_csv_checked_names_missing_column(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("Image Index,Finding Labels\nx.png,No Finding\n")
    df = read_csv_checked(path, ["Image Index", "Finding Labels"], what="NIH CSV")
    assert list(df["Image Index"]) == ["x.png"]
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) \['Patient ID'\].*found columns"):
        read_csv_checked(path, ["Image Index", "Patient ID"], what="NIH CSV", hint="Use the official file.")


def test_missing_file_and_dir_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match="NIH CSV not found: .*nope.csv'. Download it"):
        read_csv_checked(tmp_path / "nope.csv", ["a"], what="NIH CSV", hint="Download it.")
    with pytest.raises(FileNotFoundError, match="image directory not found"):
        require_dir(tmp_path / "images", "image")
    assert require_file(__file__, "this test").name == "test_datalist.py"


def test_row_error_points_at_file_line():
    err = row_error("x.csv", 0, "Labels", "cannot parse")
    assert isinstance(err, ValueError)
    assert str(err) == "'x.csv', line 2, column 'Labels': cannot parse"


def test_class_totals_and_prevalence_ignore_unknown():
    # class A: 1, 0, nan -> 1 positive out of 2 known; class B: 1, 1, 0 -> 2 of 3
    items = [{"label": [1.0, 1.0]}, {"label": [0.0, 1.0]}, {"label": [math.nan, 0.0]}]
    assert class_totals(items, ["A", "B"]) == {"A": 1, "B": 2}
    prev = class_prevalence(items, ["A", "B"])
    assert prev["A"] == pytest.approx(0.5)
    assert prev["B"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 entries but 3 class names"):
        class_totals(items, ["A", "B", "C"])


def test_require_unique_names_both_lines_and_spellings():
    require_unique(["a.png", "b.png"], csv_lines(2), "x.csv", "image")  # unique: no error
    with pytest.raises(DatasetLayoutError, match=r"^'x.csv', lines 2 and 4: image 'a.png' is listed twice"):
        require_unique(["a.png", "b.png", "a.png"], csv_lines(3), "x.csv", "image")
    with pytest.raises(DatasetLayoutError, match=r"lines 1 and 3: image 'dir/a.png' is listed again as 'DIR/./A.PNG'"):
        require_unique(["dir/a.png", "b.png", "DIR/./A.PNG"], [1, 2, 3], "list.txt", "image")
    with pytest.raises(DatasetLayoutError, match=r"lines 5 and 9: row \('x', '1'\) is listed twice"):
        require_unique([("x", "1"), ("x", "2"), ("x", "1")], [5, 7, 9], "x.csv", "row", key=tuple)
    assert spelling_key(" a\\..\\B.PNG ") == spelling_key("b.png") and spelling_key(3) == 3
