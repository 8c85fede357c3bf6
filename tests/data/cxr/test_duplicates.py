# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Every CXR reader refuses a label file or list that names one image twice (both lines named), on the fixtures of
``test_readers.py``: an image listed twice would train twice, or a later row would replace an earlier one."""

from __future__ import annotations

import re

import pytest

from monai_ext.data.cxr import (
    chexpert_datalist,
    mimic_cxr_lt_datalist,
    nih_datalist,
    openi_datalist,
    padchest_datalist,
    vindr_datalist,
)
from monai_ext.data.datalist import DatasetLayoutError
from tests.data.cxr.test_readers import (
    CXP_HEADER,
    CXP_ROWS,
    NIH_ROWS,
    PDC_ROWS,
    VINDR_CSV,
    _cxp,
    _mimic,
    _nih,
    _openi,
    _padchest,
    _touch,
    _write,
)


def _lines(a: int, b: int) -> str:
    return rf"lines {a} and {b}:"


def test_nih_data_entry_row_repeated(tmp_path):
    first = NIH_ROWS.splitlines(keepends=True)[0]
    root = _nih(tmp_path, rows=NIH_ROWS + first.replace("Cardiomegaly", "Effusion"))
    with pytest.raises(DatasetLayoutError, match=_lines(2, 7) + r" image \(column 'Image Index'\) '00000001_000.png'"):
        nih_datalist(root, split="all")


def test_nih_list_entry_repeated(tmp_path):
    root = _nih(tmp_path)
    _write(root / "train_val_list.txt", "00000001_000.png\n00000003_000.png\n\n00000001_000.png\n")
    with pytest.raises(DatasetLayoutError, match=re.escape("train_val_list.txt', lines 1 and 4: image")):
        nih_datalist(root)


def test_nih_image_in_two_folders(tmp_path):
    root = _nih(tmp_path)
    _touch(root / "images_001" / "images" / "00000001_000.png")  # also in images/
    with pytest.raises(
        DatasetLayoutError, match=r"'00000001_000.png' exists in more than one image folder.*images_001"
    ):
        nih_datalist(root)
    assert len(nih_datalist(root, split="test")) == 1  # images not asked for are not a problem


def test_chexpert_path_repeated_under_another_spelling(tmp_path):
    first = CXP_ROWS.splitlines(keepends=True)[0]
    again = first.replace("patient00001/study1", "patient00001/./study1").replace("view1_frontal", "VIEW1_frontal")
    root = _cxp(tmp_path, CXP_ROWS + again)
    with pytest.raises(DatasetLayoutError, match=_lines(2, 6) + r" image \(column 'Path'\) .* again as .*VIEW1"):
        chexpert_datalist(root, frontal_only=False)


def test_padchest_image_repeated(tmp_path):
    root = _padchest(tmp_path, PDC_ROWS + PDC_ROWS.splitlines(keepends=True)[2].replace("2,b0", "9,b0", 1))
    with pytest.raises(DatasetLayoutError, match=_lines(4, 11) + r" image \(column 'ImageID'\) 'b0.png'"):
        padchest_datalist(root)


def test_mimic_dicom_repeated(tmp_path):
    root = _mimic(tmp_path, [[1] + [0] * 25, [0] * 26])
    csv = root / "cxr-lt-2023" / "train.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines + [lines[1]]))
    with pytest.raises(DatasetLayoutError, match=_lines(2, 4) + r" image \(column 'dicom_id'\) 'd0'"):
        mimic_cxr_lt_datalist(root)


def test_openi_rows_naming_one_image(tmp_path):
    root = _openi(tmp_path)
    csv = root / "indiana_projections.csv"
    text = csv.read_text()
    csv.write_text(text + "2,2_IM-0652-1001.dcm.png,Frontal\n")
    with pytest.raises(DatasetLayoutError, match=_lines(4, 7) + r" image \(column 'filename'\)"):
        openi_datalist(root)
    # a second spelling that the report join maps to the same image as line 2
    csv.write_text(text + "1,1_1_IM-0001-4001.dcm.png,Frontal\n")
    with pytest.raises(
        DatasetLayoutError, match=r"line 7, column 'filename': .* image 'CXR1_1_IM-0001-4001' of line 2"
    ):
        openi_datalist(root)


def test_openi_two_reports_with_one_uid(tmp_path):
    root = _openi(tmp_path)
    _write(root / "ecgen-radiology" / "11.xml", (root / "ecgen-radiology" / "10.xml").read_text())
    with pytest.raises(DatasetLayoutError, match=r"10.xml' and '.*11.xml' both have <uId id='CXR10'>"):
        openi_datalist(root)


def test_vindr_exact_repeat_and_image_id_spelling(tmp_path):
    root = tmp_path / "vindr"
    _touch(root / "train" / "img1.dicom", root / "train" / "img2.png")
    rows = VINDR_CSV.splitlines(keepends=True)
    _write(root / "train.csv", "".join(rows + [rows[4]]))
    with pytest.raises(DatasetLayoutError, match=_lines(5, 10) + r" row \(image_id, class_name"):
        vindr_datalist(root)
    _write(root / "train.csv", "".join(rows + [rows[4].replace("img1", "IMG1").replace("R8", "R11")]))
    with pytest.raises(DatasetLayoutError, match=_lines(5, 10) + r" image_id 'img1' is listed again as 'IMG1'"):
        vindr_datalist(root)
    _write(root / "train.csv", VINDR_CSV)
    assert len(vindr_datalist(root)) == 2  # several rows per image (one per reader and box) stay allowed


def test_two_rows_that_are_one_file_on_disk(tmp_path):
    root = _cxp(tmp_path)
    first = root / CXP_ROWS.split(",")[0]
    alias = root / "CheXpert-v1.0-small" / "train" / "patient00009"
    alias.symlink_to(first.parents[1], target_is_directory=True)  # another name for patient00001
    again = CXP_ROWS.splitlines(keepends=True)[0].replace("patient00001", "patient00009")
    _write(root / "CheXpert-v1.0-small" / "train.csv", CXP_HEADER + CXP_ROWS + again)
    with pytest.raises(
        DatasetLayoutError, match=r"patient00001/study1/view1_frontal.jpg' and '.*patient00009/.*same file"
    ):
        chexpert_datalist(root)
    assert len(chexpert_datalist(root, check_files=False)) == 4  # the check reads the disk, so it needs check_files
