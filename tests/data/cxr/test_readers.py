# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""CXR readers on small fixtures written under ``tmp_path`` in each dataset's real on-disk layout."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from monai_ext.data.cxr import (
    CHEXPERT_CLASSES,
    MIMIC_CXR_LT_CLASSES,
    VINDR_CLASSES,
    chexpert_datalist,
    mimic_cxr_lt_datalist,
    nih_boxes,
    nih_datalist,
    nvum_datalist,
    openi_datalist,
    padchest_datalist,
    vindr_datalist,
)
from monai_ext.data.datalist import DatasetLayoutError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _touch(*paths: Path) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def _nan_equal(a, b) -> bool:
    return len(a) == len(b) and all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b))


# ---------------------------------------------------------------- NIH
NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,{sex},View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
)
NIH_ROWS = (
    "00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143\n"
    "00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143\n"
    "00000002_000.png,No Finding,0,2,81,F,AP,2500,2048,0.171,0.171\n"
    "00000003_000.png,Consolidation|Infiltration,0,3,74,F,PA,2500,2048,0.168,0.168\n"
    "00000004_000.png,Mass|Nodule|Pleural_Thickening,0,4,82,M,AP,2048,2500,0.168,0.168\n"
)


def _nih(tmp_path: Path, sex: str = "Patient Gender", rows: str = NIH_ROWS) -> Path:
    root = tmp_path / "nih"
    _write(root / "Data_Entry_2017_v2020.csv", NIH_HEADER.format(sex=sex) + rows)
    _write(root / "train_val_list.txt", "00000001_000.png\n00000001_001.png\n00000003_000.png\n00000004_000.png\n")
    _write(root / "test_list.txt", "00000002_000.png\n")
    _touch(*(root / "images" / f"0000000{i}_000.png" for i in (1, 2, 3)))
    _touch(root / "images_001" / "images" / "00000001_001.png", root / "images_002" / "images" / "00000004_000.png")
    return root


@pytest.mark.parametrize("sex_column", ["Patient Gender", "Patient Sex"])
def test_nih_datalist(tmp_path, sex_column):
    root = _nih(tmp_path, sex_column)
    classes = ("Cardiomegaly", "Emphysema", "Infiltration", "Consolidation", "Nodule", "No Finding")
    items = nih_datalist(root, split="all", classes=classes)
    assert [d["label"] for d in items] == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 1],
        [0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 0],
    ]
    assert [d["index"] for d in items] == [0, 1, 2, 3, 4]
    assert items[1]["image"] == str((root / "images_001" / "images" / "00000001_001.png").absolute())
    assert items[4]["image"] == str((root / "images_002" / "images" / "00000004_000.png").absolute())
    assert (items[2]["patient_id"], items[2]["sex"], items[2]["age"], items[2]["view"]) == ("2", "F", 81, "AP")
    assert [d["image_name"] for d in nih_datalist(root, split="test")] == ["00000002_000.png"]
    train = nih_datalist(root)
    assert [d["image_name"] for d in train] == [
        "00000001_000.png", "00000001_001.png", "00000003_000.png", "00000004_000.png"
    ]  # fmt: skip
    assert train[0]["label"] == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] and train[0]["split"] == "train"


def test_nih_val_split_is_patient_disjoint(tmp_path):
    root = _nih(tmp_path)
    tr = nih_datalist(root, split="train", val_fraction=0.34, seed=1)
    va = nih_datalist(root, split="val", val_fraction=0.34, seed=1)
    assert len(tr) + len(va) == 4 and len({d["patient_id"] for d in va}) == 1  # round(0.34 * 3 patients) = 1
    assert not {d["patient_id"] for d in tr} & {d["patient_id"] for d in va}
    with pytest.raises(ValueError, match="val_fraction > 0"):
        nih_datalist(root, split="val")


def test_nih_errors(tmp_path):
    root = _nih(tmp_path, rows=NIH_ROWS.replace("Cardiomegaly|Emphysema", "Cardiomegaly|Emphysem"))
    msg = r"line 3, column 'Finding Labels': unknown label token\(s\) \['Emphysem'\]"
    with pytest.raises(DatasetLayoutError, match=msg):
        nih_datalist(root, split="all")
    root = _nih(tmp_path / "b")
    (root / "images" / "00000002_000.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 1 NIH image\(s\) are missing.*00000002_000.png"):
        nih_datalist(root, split="test")
    assert len(nih_datalist(root, split="test", check_files=False)) == 1
    _write(root / "test_list.txt", "00000002_000.png\n00000009_000.png\n")
    with pytest.raises(DatasetLayoutError, match=r"test_list.txt', line 2: image '00000009_000.png' is not in"):
        nih_datalist(root, split="test", check_files=False)
    with pytest.raises(ValueError, match="unknown NIH class name"):
        nih_datalist(root, classes=("Infiltrate",))
    with pytest.raises(ValueError, match="trian"):
        nih_datalist(root, split="trian")
    _write(tmp_path / "c" / "nih" / "Data_Entry_2017.csv", "Image Index,Labels,Patient ID\nx.png,Mass,1\n")
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) \['Finding Labels'\]"):
        nih_datalist(tmp_path / "c" / "nih", split="all")
    with pytest.raises(FileNotFoundError, match="Data_Entry_2017_v2020.csv"):
        nih_datalist(tmp_path / "b", split="all")


def test_nih_boxes(tmp_path):
    root = tmp_path / "nih"
    _write(
        root / "BBox_List_2017.csv",
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00000003_000.png,Infiltrate,10.5,20,30,40,,,\n"
        "00000001_000.png,Cardiomegaly,100,200,300,150.25,,,\n"
        "00000003_000.png,Nodule,1,2,3,4,,,\n",
    )
    assert nih_boxes(root) == {
        "00000001_000.png": [{"label": "Cardiomegaly", "box": [100.0, 200.0, 400.0, 350.25]}],
        "00000003_000.png": [
            {"label": "Infiltration", "box": [10.5, 20.0, 40.5, 60.0]},
            {"label": "Nodule", "box": [1.0, 2.0, 4.0, 6.0]},
        ],
    }
    _write(root / "BBox_List_2017.csv", "Image Index,Finding Label,Bbox [x,y,w,h],,,\nx.png,Lesion,1,2,3,4,,,\n")
    with pytest.raises(DatasetLayoutError, match=r"line 2, column 'Finding Label': unknown box label 'Lesion'"):
        nih_boxes(root)
    _write(root / "BBox_List_2017.csv", "Image Index,Finding Label,Bbox [x,y,w,h],,,\nx.png,Mass,1,2,three,4,,,\n")
    with pytest.raises(DatasetLayoutError, match=r"line 2, column 'w': box value 'three' is not a number"):
        nih_boxes(root)


# ---------------------------------------------------------------- CheXpert
CXP_HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,Lung Lesion,"
    "Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,Support Devices\n"
)
CXP_ROWS = (
    "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,1.0,,,,,,,,,0.0,,,,1.0\n"
    "CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg,Female,87,Frontal,AP,"
    ",,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,\n"
    "CheXpert-v1.0-small/train/patient00002/study2/view2_lateral.jpg,Female,87,Lateral,,"
    ",,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,\n"
    "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg,Male,0,Frontal,LL,,,1.0,,,,,1.0,,,0.0,,,\n"
)  # fmt: skip


def _cxp(tmp_path: Path, rows: str = CXP_ROWS) -> Path:
    root = tmp_path / "chexpert"
    _write(root / "CheXpert-v1.0-small" / "train.csv", CXP_HEADER + rows)
    for line in rows.splitlines():
        _touch(root / line.split(",")[0])
    return root


NAN = math.nan
CXP_CLASSES = ("No Finding", "Cardiomegaly", "Lung Opacity", "Edema", "Pneumothorax", "Fracture", "Pneumonia")


@pytest.mark.parametrize(
    "uncertain, blank, expected",
    [
        ("zeros", "zeros", [[1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 0, 1]]),
        ("ones", "zeros", [[1, 0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 0, 1, 0], [0, 1, 0, 0, 0, 0, 1]]),
        (
            "ignore",
            "ignore",
            [
                [1, NAN, NAN, NAN, 0, NAN, NAN],
                [NAN, NAN, 1, NAN, NAN, 1, NAN],
                [NAN, 1, NAN, NAN, NAN, NAN, 1],
            ],
        ),
    ],
)
def test_chexpert_policies(tmp_path, uncertain, blank, expected):
    items = chexpert_datalist(_cxp(tmp_path), classes=CXP_CLASSES, uncertain=uncertain, blank=blank)
    assert len(items) == len(expected)
    for item, row in zip(items, expected):
        assert _nan_equal(item["label"], row)


def test_chexpert_views_patients_and_split(tmp_path):
    root = _cxp(tmp_path)
    items = chexpert_datalist(root)
    assert [d["patient_id"] for d in items] == ["patient00001", "patient00002", "patient00003"]
    assert items[0]["image"] == str(root.absolute() / "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg")
    assert len(items[0]["label"]) == len(CHEXPERT_CLASSES)
    assert (items[2]["view"], items[2]["sex"], items[2]["age"]) == ("LL", "Male", 0)
    assert len(chexpert_datalist(root, frontal_only=False)) == 4
    pa_ap = chexpert_datalist(root, projections=("PA", "AP"))
    assert [d["patient_id"] for d in pa_ap] == ["patient00001", "patient00002"]
    assert len(chexpert_datalist(root, drop_zero_age=True)) == 2
    tr = chexpert_datalist(root, val_fraction=0.34, seed=0)
    va = chexpert_datalist(root, split="val", val_fraction=0.34, seed=0)
    assert len(tr) == 2 and len(va) == 1 and va[0]["split"] == "val"
    assert va[0]["patient_id"] not in {d["patient_id"] for d in tr}
    assert chexpert_datalist(root, split="val", val_fraction=0.34, seed=0) == va  # deterministic


def test_chexpert_errors(tmp_path):
    root = _cxp(tmp_path, CXP_ROWS.replace("Male,0,Frontal,LL,,,1.0", "Male,0,Frontal,LL,,,2.0"))
    with pytest.raises(DatasetLayoutError, match=r"line 5, column 'Cardiomegaly': label value '2.0' is not one of"):
        chexpert_datalist(root)
    root = _cxp(tmp_path / "b", CXP_ROWS.replace("train/patient00001/", "train/pat1/"))
    with pytest.raises(DatasetLayoutError, match=r"line 2, column 'Path': cannot find 'patientNNNNN/'"):
        chexpert_datalist(root)
    with pytest.raises(FileNotFoundError, match="valid.csv"):
        chexpert_datalist(root, split="valid")
    with pytest.raises(ValueError, match="unknown CheXpert class name"):
        chexpert_datalist(root, classes=("Effusion",))


# ---------------------------------------------------------------- OpenI
def _report(n: int, images: list[str], major: list[str], automatic: list[str]) -> str:
    mesh = "".join(f"<major>{t}</major>" for t in major) + "".join(f"<automatic>{t}</automatic>" for t in automatic)
    imgs = "".join(f'<parentImage id="{i}"><figureId>F1</figureId></parentImage>' for i in images)
    return f'<?xml version="1.0" encoding="utf-8"?><eCitation><uId id="CXR{n}"/><MeSH>{mesh}</MeSH>{imgs}</eCitation>'


def _openi(tmp_path: Path) -> Path:
    root = tmp_path / "openi"
    reports = root / "ecgen-radiology"
    _write(reports / "1.xml", _report(1, ["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"], ["normal"], []))
    _write(
        reports / "2.xml",
        _report(2, ["CXR2_IM-0652-1001", "CXR2_IM-0652-2001"], ["Cardiomegaly/borderline", "Opacity/lung"],
                ["Cardiomegaly", "atelectases"]),
    )  # fmt: skip
    _write(
        reports / "10.xml", _report(10, ["CXR10_IM-0002-1001"], ["Calcified Granuloma/lung"], ["calcified granuloma"])
    )
    _write(
        root / "indiana_projections.csv",
        "uid,filename,projection\n"
        "1,1_IM-0001-4001.dcm.png,Frontal\n1,1_IM-0001-3001.dcm.png,Lateral\n"
        "2,2_IM-0652-1001.dcm.png,Frontal\n2,2_IM-0652-2001.dcm.png,Lateral\n"
        "10,10_IM-0002-1001.dcm.png,Frontal\n",
    )
    names = ("CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001", "CXR2_IM-0652-1001", "CXR2_IM-0652-2001")
    for i in names + ("CXR10_IM-0002-1001",):
        _touch(root / "NLMCXR_png" / f"{i}.png")
    return root


def test_openi_datalist(tmp_path):
    root = _openi(tmp_path)
    classes = ("Atelectasis", "Cardiomegaly", "Calcified Granuloma", "Granuloma", "Lung Opacity", "No Finding")
    items = openi_datalist(root, classes=classes)
    assert [d["image_id"] for d in items] == ["CXR1_1_IM-0001-4001", "CXR2_IM-0652-1001", "CXR10_IM-0002-1001"]
    assert [d["label"] for d in items] == [[0, 0, 0, 0, 0, 1], [1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0]]
    assert items[0]["image"] == str(root.absolute() / "NLMCXR_png" / "CXR1_1_IM-0001-4001.png")
    assert [d["patient_id"] for d in items] == ["CXR1", "CXR2", "CXR10"]
    major = openi_datalist(root, classes=classes, mesh="major")
    assert [d["label"] for d in major] == [[0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 0]]
    assert len(openi_datalist(root, projection="all")) == 5
    assert [d["image_id"] for d in openi_datalist(root, projection="all", one_per_report=True)] == [
        "CXR1_1_IM-0001-3001", "CXR2_IM-0652-1001", "CXR10_IM-0002-1001"
    ]  # fmt: skip


def test_openi_errors(tmp_path):
    root = _openi(tmp_path)
    csv = root / "indiana_projections.csv"
    csv.write_text(csv.read_text() + "2,2_IM-9999-1001.dcm.png,Frontal\n")
    with pytest.warns(UserWarning, match=r"1 row\(s\) .* match no <parentImage>.*2_IM-9999-1001.dcm.png \(line 7\)"):
        assert len(openi_datalist(root)) == 3
    csv.write_text("uid,filename,projection\n2,2_IM-0652-1001.dcm.png,PA\n")
    with pytest.raises(DatasetLayoutError, match=r"line 2, column 'projection': unknown projection 'PA'"):
        openi_datalist(root)
    _write(root / "ecgen-radiology" / "3.xml", "<eCitation><uId id='CXR3'/>")
    with pytest.raises(DatasetLayoutError, match=r"3.xml' is not valid XML"):
        openi_datalist(root)


# ---------------------------------------------------------------- PadChest
PDC_HEADER = (
    ",ImageID,ImageDir,StudyDate_DICOM,StudyID,PatientID,PatientBirth,PatientSex_DICOM,ViewPosition_DICOM,Projection,"
    "MethodProjection,Pediatric,Modality_DICOM,Manufacturer_DICOM,PhotometricInterpretation_DICOM,"
    "PixelRepresentation_DICOM,PixelAspectRatio_DICOM,SpatialResolution_DICOM,BitsStored_DICOM,WindowCenter_DICOM,"
    "WindowWidth_DICOM,Rows_DICOM,Columns_DICOM,XRayTubeCurrent_DICOM,Exposure_DICOM,ExposureInuAs_DICOM,"
    "ExposureTime,RelativeXRayExposure_DICOM,ReportID,Report,MethodLabel,Labels,Localizations,"
    "LabelsLocalizationsBySentence,labelCUIS,LocalizationsCUIS\n"
)
_MAN = "Manual review of DICOM fields"


def _pdc_row(k, image, pat, birth, proj, labels, method="Physician", mproj=_MAN, sex="M"):
    return (
        f"{k},{image},{k % 2},20100101,st{k},{pat},{birth},{sex},POSTEROANTERIOR,{proj},{mproj},No,CR,Philips,"
        f'MONOCHROME2,0,1,0.1,12,2048,4096,2000,2000,10,5,5000,100,1.0,r{k},"report text",{method},"{labels}",'
        f"\"['loc left']\",\"[['normal']]\",[C1 C2],[C3]\n"
    )


PDC_ROWS = "".join(
    [
        _pdc_row(0, "a0.png", "P1", 1950.0, "PA", "['pleural effusion', ' cardiomegaly', '']"),
        _pdc_row(1, "a1.png", "P1", 1950.0, "PA", "['nodule']"),  # second image of P1
        _pdc_row(2, "b0.png", "P2", 1960.0, "AP", "['normal']", sex="F"),
        _pdc_row(3, "c0.png", "P3", 1970.0, "AP_horizontal", "['pneumonia']"),
        _pdc_row(4, "d0.png", "P4", 1970.0, "PA", "['pseudonodule', 'NSG tube']", method="RNN_model"),
        _pdc_row(5, "e0.png", "P5", 2015.0, "PA", "['normal']"),  # 4 years old in 2019
        _pdc_row(6, "f0.png", "P6", 1980.0, "PA", ""),  # empty Labels cell
        _pdc_row(7, "g0.png", "P7", 1980.0, "PA", "['']", mproj="resnet-50.t7"),
        _pdc_row(8, "h0.png", "P8", 1940.0, "PA", "['consolidation']"),
    ]
)
PDC_CLASSES = ("Cardiomegaly", "Effusion", "Nodule", "Pneumonia", "Consolidation", "Infiltration", "Tube", "No Finding")


def _padchest(tmp_path: Path, rows: str = PDC_ROWS) -> Path:
    root = tmp_path / "padchest"
    _write(root / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv", PDC_HEADER + rows)
    for line in rows.splitlines():
        k, image = line.split(",")[:2]
        _touch(root / "images" / str(int(k) % 2) / image)
    return root


def test_padchest_datalist(tmp_path):
    root = _padchest(tmp_path)
    items = padchest_datalist(root, classes=PDC_CLASSES)
    assert [d["image_id"] for d in items] == ["a0.png", "b0.png", "h0.png"]
    assert [d["label"] for d in items] == [
        [1, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 1, 0, 0],
    ]
    assert items[0]["terms"] == ["pleural effusion", "cardiomegaly"]
    assert items[0]["image"] == str(root.absolute() / "images" / "0" / "a0.png")
    assert (items[1]["patient_id"], items[1]["sex"], items[1]["birth_year"], items[1]["projection"]) == (
        "P2", "F", 1960, "AP"
    )  # fmt: skip
    every = padchest_datalist(
        root, classes=PDC_CLASSES, label_methods=None, projections=None, projection_methods=None,
        one_per_patient=False, min_age=None, keep_unlabelled=True,
    )  # fmt: skip
    assert [d["image_id"] for d in every] == [f"{c}0.png" for c in "a"] + ["a1.png"] + [f"{c}0.png" for c in "bcdefgh"]
    by_id = {d["image_id"]: d["label"] for d in every}
    assert by_id["d0.png"] == [0, 0, 1, 0, 0, 0, 1, 0]  # substring: pseudonodule -> Nodule, NSG tube -> Tube
    assert by_id["g0.png"] == [0, 0, 0, 0, 0, 0, 0, 1]  # [''] = no term = No Finding
    assert all(math.isnan(v) for v in by_id["f0.png"])
    exact = padchest_datalist(root, classes=PDC_CLASSES, label_methods=None, term_match="exact")
    assert {d["image_id"]: d["label"] for d in exact}["d0.png"] == [0, 0, 0, 0, 0, 0, 1, 0]
    excluded = padchest_datalist(root, exclude_images=("a0.png",))
    assert [d["image_id"] for d in excluded] == ["a1.png", "b0.png", "h0.png"]


def test_padchest_errors(tmp_path):
    root = _padchest(tmp_path, PDC_ROWS.replace("['normal']", "['normal'"))
    with pytest.raises(DatasetLayoutError, match=r"line 4, column 'Labels': cannot parse label list"):
        padchest_datalist(root)
    root = _padchest(tmp_path / "b")
    (root / "images" / "0" / "h0.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 3 PadChest image\(s\) are missing.*h0.png"):
        padchest_datalist(root)
    flat = _padchest(tmp_path / "c", PDC_ROWS)
    for p in sorted((flat / "images").glob("*/*.png")):
        p.rename(flat / "images" / p.name)
    for d in ("0", "1"):
        (flat / "images" / d).rmdir()
    assert padchest_datalist(flat)[0]["image"] == str(flat.absolute() / "images" / "a0.png")


# ---------------------------------------------------------------- MIMIC-CXR-LT
def _mimic(tmp_path: Path, values: list[list[int]], shuffle: bool = False) -> Path:
    root = tmp_path / "mimic_cxr_lt"
    classes = list(reversed(MIMIC_CXR_LT_CLASSES)) if shuffle else list(MIMIC_CXR_LT_CLASSES)
    lines = [",".join(["subject_id", "study_id", "dicom_id", "ViewPosition", "split", "path"] + classes)]
    for k, vals in enumerate(values):
        path = f"files/p1{k}/p1{k}000000/s5{k}000000/d{k}.jpg"
        by_name = dict(zip(MIMIC_CXR_LT_CLASSES, vals))
        meta = [f"1{k}000000", f"5{k}000000", f"d{k}", "PA", "train", path]
        lines.append(",".join(meta + [str(by_name[c]) for c in classes]))
        _touch(root / path)
    _write(root / "cxr-lt-2023" / "train.csv", "\n".join(lines) + "\n")
    return root


def test_mimic_cxr_lt(tmp_path):
    rows = [[0] * 26, [0] * 26, [0] * 26]
    rows[0][14] = 1  # No Finding
    rows[1][0] = rows[1][24] = 1  # Atelectasis, Support Devices
    rows[2][21] = 1  # Pneumoperitoneum
    root = _mimic(tmp_path, rows, shuffle=True)
    items = mimic_cxr_lt_datalist(root)
    assert [d["label"] for d in items] == [[float(v) for v in r] for r in rows]
    assert [d["patient_id"] for d in items] == ["10000000", "11000000", "12000000"]
    assert items[1]["image"] == str(root.absolute() / "files/p11/p11000000/s51000000/d1.jpg")
    sub = mimic_cxr_lt_datalist(root, classes=("Support Devices", "Atelectasis"))
    assert [d["label"] for d in sub] == [[0, 0], [1, 1], [0, 0]]
    rows[2][3] = 2
    with pytest.raises(DatasetLayoutError, match=r"line 4, column 'Consolidation': label value '2' is not 0 or 1"):
        mimic_cxr_lt_datalist(_mimic(tmp_path / "b", rows))
    with pytest.raises(FileNotFoundError, match="development.csv"):
        mimic_cxr_lt_datalist(root, split="development")


# ---------------------------------------------------------------- VinDr-CXR
VINDR_CSV = (
    "image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max\n"
    "img2,No finding,14,R1,,,,\n"
    "img2,No finding,14,R2,,,,\n"
    "img2,No finding,14,R3,,,,\n"
    "img1,Cardiomegaly,3,R8,691.0,1375.0,1653.0,1831.0\n"
    "img1,Aortic enlargement,0,R8,1264.0,743.0,1611.0,1019.0\n"
    "img1,Cardiomegaly,3,R9,700.0,1380.0,1650.0,1830.0\n"
    "img1,Nodule/Mass,8,R10,10.0,20.0,30.0,40.0\n"
    "img1,Nodule/Mass,8,R10,50.0,60.0,70.0,80.0\n"
)


def test_vindr_datalist(tmp_path):
    root = tmp_path / "vindr"
    _write(root / "train.csv", VINDR_CSV)
    _touch(root / "train" / "img1.dicom", root / "train" / "img2.png")
    classes = ("Aortic enlargement", "Cardiomegaly", "Nodule/Mass", "No finding")
    anyr = vindr_datalist(root, classes=classes)
    assert [d["image_id"] for d in anyr] == ["img1", "img2"]
    assert [d["label"] for d in anyr] == [[1, 1, 1, 0], [0, 0, 0, 1]]
    assert [d["votes"] for d in anyr] == [[1, 2, 1, 0], [0, 0, 0, 3]]
    assert [d["label"] for d in vindr_datalist(root, classes=classes, aggregation="majority")] == [
        [0, 1, 0, 0], [0, 0, 0, 1]
    ]  # fmt: skip
    assert anyr[0]["boxes"] == {
        "R10": {"box": [[10.0, 20.0, 30.0, 40.0], [50.0, 60.0, 70.0, 80.0]], "label": [8, 8]},
        "R8": {"box": [[691.0, 1375.0, 1653.0, 1831.0], [1264.0, 743.0, 1611.0, 1019.0]], "label": [3, 0]},
        "R9": {"box": [[700.0, 1380.0, 1650.0, 1830.0]], "label": [3]},
    }
    assert anyr[1]["boxes"] == {r: {"box": [], "label": []} for r in ("R1", "R2", "R3")}
    assert anyr[1]["image"].endswith("img2.png") and anyr[0]["image"].endswith("img1.dicom")
    assert len(vindr_datalist(root)[0]["label"]) == len(VINDR_CLASSES)
    with pytest.raises(ValueError, match=r"unknown VinDr-CXR class name\(s\) \['No Finding'\]"):
        vindr_datalist(root, classes=("No Finding",))
    _write(root / "train.csv", VINDR_CSV.replace("Nodule/Mass,8,R10,10.0", "Nodule/Mass,7,R10,10.0"))
    with pytest.raises(DatasetLayoutError, match=r"line 8, column 'class_id': class_id '7' does not match"):
        vindr_datalist(root)
    _write(root / "train.csv", VINDR_CSV.replace("Cardiomegaly,3,R9,700.0", "Cardiomegaly,3,R9,"))
    with pytest.raises(DatasetLayoutError, match=r"line 7, column 'x_min': box coordinate '' of finding"):
        vindr_datalist(root)


# ---------------------------------------------------------------- NVUM alignment on fixtures
def test_nvum_nih_and_chexpert_fixtures(tmp_path):
    items = nvum_datalist(_nih(tmp_path), "nih", split="train")
    # 00000003_000 (Consolidation|Infiltration) is dropped; labels over the 14 NIH-setting classes
    assert [d["image_name"] for d in items] == ["00000001_000.png", "00000001_001.png", "00000004_000.png"]
    assert [d["label"] for d in items] == [
        [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0],
    ]
    assert [d["index"] for d in items] == [0, 1, 2]
    cxp = nvum_datalist(_cxp(tmp_path), "chexpert", val_fraction=0.0)
    # row 1 is No Finding but Support Devices -> dropped; row 2: Lung Opacity -> dropped; row 4: Age 0 -> dropped
    assert cxp == []
    rows = CXP_ROWS.replace("Male,0,", "Male,40,")
    cxp = nvum_datalist(_cxp(tmp_path / "b", rows), "chexpert", val_fraction=0.0)
    assert [d["label"] for d in cxp] == [[1, 0, 1, 0, 0, 0, 0, 0]]  # Cardiomegaly, Pneumonia
    with pytest.raises(ValueError, match="only in the 'nih' setting"):
        nvum_datalist(tmp_path / "nih", "nih", setting="chexpert")
    with pytest.raises(ValueError, match="pass setting='nih' or setting='chexpert'"):
        nvum_datalist(tmp_path, "padchest")
    with pytest.raises(ValueError, match=r"split 'train' is not available for 'openi'"):
        nvum_datalist(tmp_path, "openi", setting="nih", split="train")


def test_nvum_padchest_openi_fixtures(tmp_path):
    pdc = nvum_datalist(_padchest(tmp_path), "padchest", setting="nih")
    # h0 (consolidation) is dropped; a0 -> Cardiomegaly + Effusion; b0 -> No Finding
    assert [d["image_id"] for d in pdc] == ["a0.png", "b0.png"] and pdc[0]["split"] == "test"
    assert [d["label"] for d in pdc] == [[0, 1, 1] + [0] * 11, [0] * 13 + [1]]
    opi = nvum_datalist(_openi(tmp_path), "openi", setting="chexpert")
    # CXR10 (calcified granuloma) is dropped; CXR2 -> Cardiomegaly + Atelectasis; CXR1 -> No Finding
    assert [d["image_id"] for d in opi] == ["CXR1_1_IM-0001-4001", "CXR2_IM-0652-1001"]
    assert [d["label"] for d in opi] == [[0, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 1, 0, 0, 0, 0]]


def test_padchest_bits_stored(tmp_path):
    """``BitsStored_DICOM`` (column 19 of the row) becomes ``bits_stored``: the bits of the 16-bit PNG holding data."""
    items = padchest_datalist(_padchest(tmp_path), classes=PDC_CLASSES)
    assert [d["bits_stored"] for d in items] == [12, 12, 12]
    ten = PDC_ROWS.replace(",12,2048,4096,", ",10,2048,4096,", 1)  # a0.png, the first row, stored in 10 bits
    items = padchest_datalist(_padchest(tmp_path / "ten", ten), classes=PDC_CLASSES)
    assert [d["bits_stored"] for d in items] == [10, 12, 12]
    blank = PDC_ROWS.replace(",12,2048,4096,", ",,2048,4096,", 1)
    assert padchest_datalist(_padchest(tmp_path / "blank", blank), classes=PDC_CLASSES)[0]["bits_stored"] is None
    bad = PDC_ROWS.replace(",12,2048,4096,", ",twelve,2048,4096,", 1)
    with pytest.raises(DatasetLayoutError, match=r"line 2.*BitsStored_DICOM.*'twelve'"):
        padchest_datalist(_padchest(tmp_path / "bad", bad), classes=PDC_CLASSES)
