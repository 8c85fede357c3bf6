# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of the demo CXR writers (monai_ext.demo.cxr), their patterns and their label model and noise."""

from __future__ import annotations

import ast
import hashlib
import inspect
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from monai_ext.demo import cxr
from monai_ext.demo.cxr import chexpert as demo_chexpert
from monai_ext.demo.cxr_patterns import BOX_QUANTILES, POLARITY, Pattern, render_chest
from monai_ext.demo.label_noise import (
    LABEL_MODELS,
    NIH_CLASSES,
    NOISE_PAIRS,
    VINDR_ANY_READER,
    corrupt_labels,
    enforce_min_positives,
    noise_rates,
    resolve_noise,
    sample_clean_labels,
)
from monai_ext.demo.stats import load_stats

SIZE, PX = 0.5, 64  # small demo sets: every writer runs in well under a second or two


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Each dataset written once (lazily) under one module-scoped folder."""
    base, done = tmp_path_factory.mktemp("demo"), {}

    def get(name: str):
        if name not in done:
            done[name] = getattr(cxr, f"write_{name}_demo")(base / name, size=SIZE, seed=0, image_size=PX)
        return base / name, done[name]

    return get


def _first_line(path: Path) -> str:
    return path.read_text(encoding="utf-8").split("\n", 1)[0]


def _truth(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    clean = pd.read_csv(root / "demo_clean_labels.csv").set_index("image")
    noise_path = root / "demo_label_noise.csv"
    empty = pd.DataFrame(columns=["image", "class", "clean", "noisy"])
    noise = pd.read_csv(noise_path) if noise_path.exists() else empty
    return clean, noise


def _expected_from_truth(clean: pd.DataFrame, noise: pd.DataFrame) -> pd.DataFrame:
    """Clean labels with every recorded flip applied: what the label files must say."""
    out = clean.drop(columns="split").copy()
    for rec in noise.itertuples(index=False):
        assert out.loc[rec.image, rec._1] == rec.clean  # the record's clean value is the truth
        out.loc[rec.image, rec._1] = rec.noisy
    return out


# ---------------------------------------------------------------- label model and noise


def test_constants_match_the_packaged_statistics():
    # the package data (monai_ext/demo/stats, md5-checked on load; tests/demo/test_stats.py compares it with the
    # original files) is always there: no skip.
    stats = load_stats("cxr_label_stats")
    nih = stats["nih_chestxray14"]
    assert LABEL_MODELS["nih"].joint_counts == tuple(map(tuple, nih["cooccurrence_counts"]))
    assert LABEL_MODELS["nih"].classes == tuple(nih["classes"])
    for name, key in (("padchest", "per_class_exact_terms"), ("vindr", "per_class")):
        block = stats[{"padchest": "padchest_physician_frontal", "vindr": "vindr_cxr_image_level"}[name]][key]
        field = "prevalence" if name == "padchest" else "prev_majority_2of3"
        assert dict(zip(LABEL_MODELS[name].classes, LABEL_MODELS[name].prevalence)) == {
            c: block[c][field] for c in LABEL_MODELS[name].classes
        }
    chex = stats["chexpert_frontal"]["per_class_frontal"]
    chex_classes = LABEL_MODELS["chexpert"].classes
    assert LABEL_MODELS["chexpert"].prevalence == tuple(chex[c]["prev_U_zeros"] for c in chex_classes)
    for pair, (fpr, fnr, fdr) in NOISE_PAIRS.items():
        rec = stats["nih_vs_google_adjudicated"]["pairs"][pair]["all"]
        assert (rec["P_nih1_given_adj0"], rec["P_nih0_given_adj1"], rec["P_adj0_given_nih1"]) == (fpr, fnr, fdr)
    boxes = load_stats("nih_bbox_stats")["per_class"]
    qs = ("q00", "q05", "q25", "q50", "q75", "q95", "q100")
    for c, table in BOX_QUANTILES.items():
        for row, v in zip(table, ("center_x_norm", "center_y_norm", "width_norm", "height_norm")):
            assert row == tuple(boxes[c][v][q] for q in qs)
    assert set(BOX_QUANTILES) == set(boxes) and len(BOX_QUANTILES) == 8
    # No-Finding fractions, the VinDr any-reader rates, OpenI (NVUM rules) and the CheXpert value fractions
    assert LABEL_MODELS["nih"].no_finding == nih["no_finding"]["fraction"] == 0.5384
    assert LABEL_MODELS["chexpert"].no_finding == stats["chexpert_frontal"]["no_finding_fraction_frontal"]
    padchest = stats["padchest_physician_frontal"]
    assert LABEL_MODELS["padchest"].no_finding == padchest["no_NIH14_class_fraction_substring"]
    vindr = stats["vindr_cxr_image_level"]
    assert LABEL_MODELS["vindr"].no_finding == vindr["no_finding_fraction_all_readers_no_finding"]
    assert VINDR_ANY_READER == {c: vindr["per_class"][c]["prev_any_reader"] for c in LABEL_MODELS["vindr"].classes}
    opi = load_stats("nvum_split_reproduction")["opi"]
    rates = {**opi["NIH_setting"]["positive_rate_among_kept_all_views"]}
    rates["Fracture"] = opi["CXP_setting"]["positive_rate_among_kept_all_views"]["Fracture"]
    assert LABEL_MODELS["openi"].no_finding == rates.pop("No_Finding") == 0.8106
    assert dict(zip(LABEL_MODELS["openi"].classes, LABEL_MODELS["openi"].prevalence)) == rates
    assert demo_chexpert._CHEXPERT_UNCERTAIN == tuple(chex[c]["frac_uncertain"] for c in chex_classes)
    # explicit 0.0 among 0.0-or-blank entries, neg / (neg + blank): 15345 / (15345 + 156209) = 0.0894
    assert demo_chexpert._CHEXPERT_ZERO[:3] == (0.089, 0.049, 0.055)


@pytest.mark.parametrize("name", ["nih", "chexpert", "padchest", "vindr", "openi", "mimic_cxr_lt"])
def test_clean_prevalence_follows_the_real_statistics(name):
    # n = 20000: binomial SE <= sqrt(.25/20000) = 0.0035; 4 SE (+ 0.001 for float rounding) keeps the false-alarm
    # rate below 1e-4 per class. The "no finding" fraction is only approximated by the copula: 0.02 absolute.
    model, n = LABEL_MODELS[name], 20000
    y = sample_clean_labels(model, n, np.random.default_rng(1))
    p = np.asarray(model.prevalence)
    assert np.all(np.abs(y.mean(0) - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-3)
    assert abs((y.sum(1) == 0).mean() - model.no_finding) < 0.02


def test_nih_cooccurrence_follows_the_real_conditionals():
    # P(j|i) for the six strongest real pairs (DATASETS.md 2.1); tolerance 0.05 covers sampling error (the rarest
    # conditioning class, Pneumonia, has ~1.3 % x 60000 = 770 draws: SE 0.018) and the PSD projection of the fit.
    y = sample_clean_labels(LABEL_MODELS["nih"], 60000, np.random.default_rng(2)).astype(float)
    i = {c: k for k, c in enumerate(NIH_CLASSES)}
    for a, b, real in [("Edema", "Infiltration", 0.426), ("Pneumonia", "Infiltration", 0.4228),
                       ("Cardiomegaly", "Effusion", 0.3829), ("Effusion", "Infiltration", 0.3004),
                       ("Emphysema", "Pneumothorax", 0.2969), ("Atelectasis", "Effusion", 0.2833)]:  # fmt: skip
        got = (y[:, i[a]] * y[:, i[b]]).sum() / y[:, i[a]].sum()
        assert abs(got - real) < 0.05, (a, b, got)


@pytest.mark.parametrize(
    "classes, prev, scale, mode, expected",
    [
        (["Pneumothorax"], [0.05], 1.0, "raw", [[0.0312, 0.542]]),
        (["Hernia"], [0.002], 1.0, "raw", [[0.2872, 0.3009]]),  # no counterpart: pooled "any finding"
        (["Mass", "Nodule/Mass"], [0.05, 0.05], 1.0, "raw", [[0.0528, 0.5769]] * 2),
        # matched: FPR = p (1 - FNR) FDR / ((1 - FDR)(1 - p)); Pneumothorax FDR = FNR = 0.542 -> 0.05 / 0.95 * 0.542
        (["Pneumothorax"], [0.05], 1.0, "matched", [[0.05 * 0.542 / 0.95, 0.542]]),
        (["Pneumothorax"], [0.05], 0.5, "raw", [[0.0156, 0.271]]),
        (["Edema"], [0.1], 0.0, "raw", [[0.0, 0.0]]),
    ],
)
def test_noise_rates_mapping(classes, prev, scale, mode, expected):
    np.testing.assert_allclose(noise_rates(classes, prev, scale, mode), expected, rtol=1e-9, atol=1e-12)


def test_noise_options_and_errors():
    np.testing.assert_array_equal(resolve_noise(None, ["A", "B"], [0.1, 0.1]), np.zeros((2, 2)))
    np.testing.assert_array_equal(resolve_noise({"B": (0.1, 0.4)}, ["A", "B"], [0.1, 0.1]), [[0, 0], [0.1, 0.4]])
    with pytest.raises(ValueError, match="unknown class"):
        resolve_noise({"C": (0.1, 0.4)}, ["A", "B"], [0.1, 0.1])
    with pytest.raises(ValueError, match=r"must be \(fpr, fnr\)"):
        resolve_noise({"A": (0.1, 1.4)}, ["A", "B"], [0.1, 0.1])
    with pytest.raises(ValueError, match="must be >= 0"):
        noise_rates(["A"], [0.1], -1.0)
    with pytest.raises(ValueError, match="matched"):
        noise_rates(["A"], [0.1], 1.0, "magic")
    with pytest.raises(ValueError, match="does not match 3 classes"):
        corrupt_labels(np.zeros((4, 3)), np.zeros((2, 2)), np.random.default_rng(0))


def test_measured_flip_rates_match_configured():
    # 40000 x 2 entries; FPR/FNR estimated on ~20000 conditioning entries each: 4 SE <= 0.015.
    rng = np.random.default_rng(3)
    clean = (rng.random((40000, 2)) < 0.5).astype(np.uint8)
    rates = np.array([[0.03, 0.55], [0.2, 0.3]])
    noisy = corrupt_labels(clean, rates, np.random.default_rng(4))
    for c in range(2):
        fpr = noisy[clean[:, c] == 0, c].mean()
        fnr = 1 - noisy[clean[:, c] == 1, c].mean()
        assert abs(fpr - rates[c, 0]) < 0.015 and abs(fnr - rates[c, 1]) < 0.015


def test_enforce_min_positives():
    y = np.array([[1, 0], [0, 0], [0, 0], [0, 0]], dtype=np.uint8)
    out = enforce_min_positives(y, 2, np.random.default_rng(0))
    assert out.sum(0).tolist() == [2, 2] and out[0, 0] == 1 and y.sum() == 1  # input untouched
    assert enforce_min_positives(y, 9, np.random.default_rng(0)).sum(0).tolist() == [4, 4]  # capped at N


# ---------------------------------------------------------------- patterns (signal present)


@pytest.mark.parametrize("pattern", list(Pattern))
def test_pattern_changes_its_box_with_its_polarity(pattern):
    boxed = {Pattern.NODULE, Pattern.MASS, Pattern.CARDIOMEGALY, Pattern.EFFUSION, Pattern.PNEUMOTHORAX,
             Pattern.ATELECTASIS, Pattern.INFILTRATION, Pattern.PNEUMONIA}  # fmt: skip
    for seed in range(3):
        chest = render_chest(96, [pattern], np.random.default_rng(seed), lesion_contrast=0.2)
        (les,) = chest.lesions
        x1, y1, x2, y2 = map(int, les.box)
        assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 96
        diff = chest.image - chest.lesion_free
        inside = float(diff[y1:y2, x1:x2].mean())
        assert les.polarity == POLARITY[pattern] and np.sign(inside) == les.polarity
        # NIH-boxed patterns are focal and strong (>= 0.25 x contrast); diffuse ones at least 0.05 x contrast
        assert abs(inside) >= (0.05 if pattern in boxed else 0.01)
        outside = np.ones_like(diff, dtype=bool)
        outside[y1:y2, x1:x2] = False
        assert abs(float(diff[outside].mean())) < abs(inside)


def test_lesion_free_background_does_not_depend_on_patterns():
    a = render_chest(64, [], np.random.default_rng(5))
    b = render_chest(64, ["nodule", "effusion"], np.random.default_rng(5))
    np.testing.assert_array_equal(a.image, b.lesion_free)
    assert a.image.dtype == np.float32 and a.image.min() >= 0 and a.image.max() <= 1
    with pytest.raises(ValueError, match="image_size"):
        render_chest(8, [], np.random.default_rng(0))


# ---------------------------------------------------------------- writers: layouts, formats, noise records


def test_nih_layout_labels_and_boxes(demo):
    root, summary = demo("nih")
    assert _first_line(root / "Data_Entry_2017_v2020.csv") == (
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
    )
    assert _first_line(root / "BBox_List_2017.csv") == "Image Index,Finding Label,Bbox [x,y,w,h],,,"
    df = pd.read_csv(root / "Data_Entry_2017_v2020.csv", keep_default_na=False)
    assert len(df.columns) == 11 and df["Image Index"].str.fullmatch(r"\d{8}_\d{3}\.png").all()
    assert (df.groupby("Patient ID").size() > 1).any()  # patients with several images
    img = Image.open(root / "images" / df["Image Index"][0])
    assert img.mode == "L" and img.size == (PX, PX)
    # patient-disjoint official lists covering every image once
    tv = (root / "train_val_list.txt").read_text().split()
    te = (root / "test_list.txt").read_text().split()
    pid = dict(zip(df["Image Index"], df["Patient ID"]))
    assert sorted(tv + te) == sorted(df["Image Index"]) and not {pid[n] for n in tv} & {pid[n] for n in te}
    # Finding Labels = clean labels + recorded flips; "No Finding" exactly when no disease is left
    clean, noise = _truth(root)
    expected = _expected_from_truth(clean, noise)
    for rec in df.itertuples(index=False):
        tokens = set(rec[1].split("|"))
        row = expected.loc[rec[0]]
        assert tokens == ({c for c in NIH_CLASSES if row[c]} or {"No Finding"}) and row["No Finding"] == (
            tokens == {"No Finding"}
        )
    assert len(noise) > 0 and summary["n_flips"] == int((noise["class"] != "No Finding").sum())
    # boxes: inside the image, on test images, label positive in the file ("Infiltrate" spelling)
    boxes = pd.read_csv(root / "BBox_List_2017.csv")
    assert list(boxes.columns[:6]) == ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]
    labels = dict(zip(df["Image Index"], df["Finding Labels"]))
    for b in boxes.itertuples(index=False):
        assert b[0] in te and b[1].replace("Infiltrate", "Infiltration") in labels[b[0]].split("|")
        assert b[2] >= 0 and b[3] >= 0 and b[4] > 0 and b[5] > 0 and b[2] + b[4] <= PX and b[3] + b[5] <= PX


def test_nih_boxes_mark_where_the_lesion_is(tmp_path):
    # File-level signal check: every box region is compared with the same region of the clean-normal images.
    root = tmp_path / "nih"
    s = cxr.write_nih_demo(root, size=1.0, seed=1, image_size=64, bbox_fraction=1.0, noise=0)
    assert s["n_boxes"] >= 8
    clean, _ = _truth(root)
    normal = [np.asarray(Image.open(root / "images" / n), float) / 255 for n in clean.index[clean["No Finding"] == 1]]
    boxes = pd.read_csv(root / "BBox_List_2017.csv")
    z = []
    for b in boxes.itertuples(index=False):
        x, y, w, h = (int(v) for v in b[2:6])
        img = np.asarray(Image.open(root / "images" / b[0]), float) / 255
        ref = np.mean([n[y : y + h, x : x + w].mean() for n in normal])
        sign = -1 if b[1] == "Pneumothorax" else 1
        z.append(sign * (img[y : y + h, x : x + w].mean() - ref))
    assert np.mean(z) > 0.03 and np.mean(np.asarray(z) > 0) >= 0.75


def test_nih_noise_none_is_clean(tmp_path):
    s = cxr.write_nih_demo(tmp_path / "nih", size=0.2, seed=0, image_size=32, noise=None)
    assert s["n_flips"] == 0 and len(pd.read_csv(tmp_path / "nih" / "demo_label_noise.csv")) == 0
    with pytest.raises(ValueError, match="size must be > 0"):
        cxr.write_nih_demo(tmp_path / "x", size=0)


def test_chexpert_layout_values_and_noise(demo):
    root, summary = demo("chexpert")
    header = (
        "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
        "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,"
        "Support Devices"
    )
    classes = header.split(",")[5:]
    tr = pd.read_csv(root / "CheXpert-v1.0-small" / "train.csv", dtype=str, keep_default_na=False)
    va = pd.read_csv(root / "CheXpert-v1.0-small" / "valid.csv", dtype=str, keep_default_na=False)
    for name in ("train", "valid"):
        assert _first_line(root / "CheXpert-v1.0-small" / f"{name}.csv") == header
    pattern = r"CheXpert-v1\.0-small/train/patient\d{5}/study\d+/view\d_(frontal|lateral)\.jpg"
    assert tr["Path"].str.fullmatch(pattern).all()
    assert set(tr[classes[1:]].stack()) <= {"1.0", "0.0", "-1.0", ""} and {"1.0", "0.0", "-1.0", ""} <= set(
        tr[classes[1:]].stack()
    )
    assert set(tr["No Finding"]) <= {"1.0", ""} and set(va[classes].stack()) <= {"1.0", "0.0"}  # valid: no blank/-1
    img = Image.open(root / tr["Path"][0])
    assert img.format == "JPEG" and img.mode == "L"
    clean, noise = _truth(root)
    expected = _expected_from_truth(clean, noise)
    for df in (tr, va):
        got = df.set_index("Path")[classes].replace("", "0.0").astype(float)
        np.testing.assert_array_equal(got.to_numpy(), expected.loc[got.index, classes].to_numpy())
    assert not noise["image"].str.contains("/valid/").any() and (noise["noisy"] == -1).any()
    assert summary["splits"]["valid"] == len(va)


def test_openi_reports_and_projections(demo):
    root, summary = demo("openi")
    proj = pd.read_csv(root / "indiana_projections.csv")
    assert list(proj.columns) == ["uid", "filename", "projection"] and set(proj["projection"]) == {"Frontal", "Lateral"}
    assert proj["filename"].str.fullmatch(r"\d+_IM-\d{4}-\d{4}\.dcm\.png").all()
    clean, noise = _truth(root)
    assert len(noise) == 0 and set(clean["split"]) == {"test"}
    terms = {"Cardiomegaly": "cardiomegaly", "Effusion": "effusion", "Pneumothorax": "pneumothorax", "Hernia": "hernia"}
    for n in range(1, summary["n_reports"] + 1):
        rep = ET.parse(root / "ecgen-radiology" / f"{n}.xml").getroot()
        auto = "|".join(e.text.lower() for e in rep.findall(".//MeSH/automatic"))
        ids = [e.attrib["id"] for e in rep.findall(".//parentImage")]
        assert ids[0] == f"CXR{n}_IM-{n:04d}-1001" and Image.open(root / "NLMCXR_png" / f"{ids[0]}.png").mode == "L"
        row = clean.loc[ids[0]]
        for c, t in terms.items():
            assert (t in auto) == bool(row[c])
        majors = [e.text for e in rep.findall(".//MeSH/major")]
        assert (majors == ["normal"]) == (row.drop("split").sum() == 0)


def test_padchest_layout_and_terms(demo):
    root, summary = demo("padchest")
    csv_path = root / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
    cols = _first_line(csv_path).split(",")
    assert cols[0] == "" and len(cols) == 36 and cols[1:3] == ["ImageID", "ImageDir"]
    assert cols[-1] == "LocalizationsCUIS"
    df = pd.read_csv(csv_path)
    assert df.columns[0] == "Unnamed: 0" and (df["Unnamed: 0"] == np.arange(len(df))).all()
    lists = [ast.literal_eval(s) for s in df["Labels"]]
    flat = [t for ls in lists for t in ls]
    assert "" in flat and any(t.startswith(" ") for t in flat) and "normal" in flat  # the real quirks
    img = Image.open(root / "images" / str(df["ImageDir"][0]) / df["ImageID"][0])
    assert img.mode == "I;16" and np.asarray(img).dtype == np.uint16 and np.asarray(img).max() <= 4095
    clean, noise = _truth(root)
    assert len(noise) == 0
    frontal = df[df["Projection"] != "L"].set_index("ImageID")
    for image_id, row in clean.iterrows():
        terms = {t.strip() for t in ast.literal_eval(frontal.loc[image_id, "Labels"])}
        assert ("cardiomegaly" in terms) == bool(row["Cardiomegaly"])
        assert ("pleural effusion" in terms) == bool(row["Effusion"])
        assert bool(terms & {"infiltrates", "consolidation"}) == bool(row["Infiltration"])


def test_mimic_cxr_lt_layout_and_clean_test(demo):
    root, summary = demo("mimic_cxr_lt")
    classes = sorted([*LABEL_MODELS["mimic_cxr_lt"].classes, "No Finding"])
    clean, noise = _truth(root)
    expected = _expected_from_truth(clean, noise)
    for s in ("train", "development", "test"):
        df = pd.read_csv(root / "cxr-lt-2023" / f"{s}.csv")
        assert list(df.columns) == ["subject_id", "study_id", "dicom_id", "ViewPosition", "split", "path", *classes]
        assert len(classes) == 26 and (df[classes].sum(axis=1) >= 1).all() and (df["split"] == s).all()
        assert df["path"].str.fullmatch(r"files/p\d{2}/p\d{8}/s\d{8}/[0-9a-f]{8}(-[0-9a-f]{8}){4}\.jpg").all()
        np.testing.assert_array_equal(df[classes].to_numpy(), expected.loc[df["dicom_id"], classes].to_numpy())
        if s == "test":
            assert not set(df["dicom_id"]) & set(noise["image"])
    assert summary["n_flips"] > 0
    assert Image.open(root / df["path"][0]).format == "JPEG"


def test_vindr_layout_dicom_and_readers(demo):
    root, summary = demo("vindr")
    assert _first_line(root / "train.csv") == "image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max"
    df = pd.read_csv(root / "train.csv")
    normal = df["class_id"] == 14
    assert (df.loc[normal, "class_name"] == "No finding").all() and df.loc[normal, "x_min":].isna().all().all()
    assert (df.loc[~normal, "x_min"] <= df.loc[~normal, "x_max"]).all() and df.loc[~normal, "x_min":].max().max() <= PX
    per_image = df.groupby("image_id")
    assert (per_image["rad_id"].nunique() == 3).all()
    n_normal_readers = per_image.apply(lambda g: g.loc[g["class_id"] == 14, "rad_id"].nunique())
    assert set(n_normal_readers) <= {0, 3}  # all-or-none agreement on "normal", as in the real file
    clean, _ = _truth(root)
    truly_normal = set(clean.index[clean.drop(columns="split").sum(axis=1) == 0])
    assert set(n_normal_readers[n_normal_readers == 3].index) == truly_normal
    ds = pydicom.dcmread(root / "train" / f"{df['image_id'][0]}.dicom")
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.pixel_array.shape == (PX, PX) and ds.pixel_array.dtype == np.uint16 and ds.BitsStored == 12


@pytest.mark.parametrize("name", ["nih", "chexpert", "openi", "padchest", "mimic_cxr_lt", "vindr"])
def test_writers_are_deterministic(tmp_path, name):
    write = getattr(cxr, f"write_{name}_demo")

    def digest(folder: Path) -> dict[str, str]:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}

    for d, seed in (("a", 0), ("b", 0), ("c", 1)):
        write(tmp_path / d, size=0.15, seed=seed, image_size=32)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


# ---------------------------------------------------------------- round trip with the readers (when present)


def test_round_trip_with_readers(demo):
    nih = pytest.importorskip("monai_ext.data.cxr.nih")
    chexpert = pytest.importorskip("monai_ext.data.cxr.chexpert")
    root, _ = demo("nih")
    clean, noise = _truth(root)
    expected = _expected_from_truth(clean, noise)
    items = nih.nih_datalist(root, split="all", classes=[*NIH_CLASSES, "No Finding"])
    assert len(items) == len(clean)
    for it in items:
        assert it["label"] == expected.loc[it["image_name"]].astype(float).tolist()
    for name, boxes in nih.nih_boxes(root).items():
        for b in boxes:
            assert 0 <= b["box"][0] < b["box"][2] <= PX and 0 <= b["box"][1] < b["box"][3] <= PX
    root, _ = demo("chexpert")
    clean, _ = _truth(root)
    valid = chexpert.chexpert_datalist(root, split="valid")
    assert len(valid) == int(clean.index.str.contains("/valid/.*frontal", regex=True).sum())
    for it in valid:
        key = Path(it["image"]).relative_to(root.absolute()).as_posix()
        assert it["label"] == clean.loc[key, list(chexpert.CHEXPERT_CLASSES)].astype(float).tolist()


@pytest.mark.parametrize(
    "name, func, key, kwargs",
    [
        ("openi", "openi_datalist", "image_id", {}),
        ("mimic_cxr_lt", "mimic_cxr_lt_datalist", "dicom_id", {"split": "test"}),
        ("vindr", "vindr_datalist", "image_id", {"aggregation": "majority"}),
    ],
)
def test_round_trip_other_readers(demo, name, func, key, kwargs):
    readers = pytest.importorskip("monai_ext.data.cxr")
    root, _ = demo(name)
    clean, _ = _truth(root)
    items = getattr(readers, func)(root, **kwargs)
    assert {it[key] for it in items} <= set(clean.index) and len(items) > 0
    sig = inspect.signature(getattr(readers, func))
    classes = [c for c in sig.parameters["classes"].default if c in clean.columns]
    assert len(classes) >= 10
    for it in items:
        all_classes = list(sig.parameters["classes"].default)
        got = [it["label"][all_classes.index(c)] for c in classes]
        if name == "vindr":  # majority vote of the simulated readers: agree with the truth on most labels
            assert np.mean(np.asarray(got) == clean.loc[it[key], classes].to_numpy()) >= 0.7
        else:  # clean test sets: exactly the truth
            assert got == clean.loc[it[key], classes].astype(float).tolist()


# ---------------------------------------------------------------- options for the CXR-LT (FPSM + DADAM) demo
def _digests(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


def test_nih_box_options_change_only_the_box_file(tmp_path):
    kw = {"size": 0.5, "seed": 2, "image_size": 32}
    default = cxr.write_nih_demo(tmp_path / "a", **kw)
    explicit = cxr.write_nih_demo(tmp_path / "b", bbox_fraction=0.5, bbox_splits=("test",), **kw)
    library = cxr.write_nih_demo(tmp_path / "c", bbox_fraction=1.0, bbox_splits=("test", "train_val"), **kw)
    a, b, c = (_digests(tmp_path / d) for d in "abc")
    assert a == b and explicit["n_boxes"] == default["n_boxes"]
    assert {k for k in a if a[k] != c[k]} == {"BBox_List_2017.csv"}
    # every boxable lesion of both lists: one row per noisy-positive drawn lesion of the 8 boxed classes
    boxes = pd.read_csv(tmp_path / "c" / "BBox_List_2017.csv")
    tv = set((tmp_path / "c" / "train_val_list.txt").read_text().split())
    assert boxes["Image Index"].isin(tv).any() and not boxes["Image Index"].isin(tv).all()
    clean, noise = _truth(tmp_path / "c")
    noisy = _expected_from_truth(clean, noise)
    boxed = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax"]
    # each image draws one lesion per clean positive; boxes need clean and noisy positive
    both = (clean[boxed].to_numpy() == 1) & (noisy[boxed].to_numpy() == 1)
    assert library["n_boxes"] == len(boxes) == int(both.sum())
    only_tv = cxr.write_nih_demo(tmp_path / "d", bbox_splits=("train_val",), **kw)
    assert pd.read_csv(tmp_path / "d" / "BBox_List_2017.csv")["Image Index"].isin(tv).all() and only_tv["n_boxes"]
    assert {k for k, v in _digests(tmp_path / "d").items() if a[k] != v} == {"BBox_List_2017.csv"}
    with pytest.raises(ValueError, match=r"bbox_splits must be among \['test', 'train_val'\], got \['val'\]"):
        cxr.write_nih_demo(tmp_path / "e", bbox_splits=("val",), **kw)


def test_mimic_eval_min_positives_enriches_only_development_and_test(tmp_path):
    kw = {"size": 0.6, "seed": 3, "image_size": 32}
    cxr.write_mimic_cxr_lt_demo(tmp_path / "a", **kw)
    s = cxr.write_mimic_cxr_lt_demo(tmp_path / "b", eval_min_positives=4, **kw)
    read = {d: {sp: pd.read_csv(tmp_path / d / "cxr-lt-2023" / f"{sp}.csv") for sp in ("train", "test")} for d in "ab"}
    # training labels and ids are those of the default (the label stream draws train first)
    pd.testing.assert_frame_equal(read["a"]["train"], read["b"]["train"])
    clean, _ = _truth(tmp_path / "b")
    findings = list(LABEL_MODELS["mimic_cxr_lt"].classes)
    for split in ("development", "test"):
        rows = clean[clean["split"] == split]
        assert (rows[findings].sum(axis=0) >= min(4, len(rows))).all(), split
    test = clean[clean["split"] == "test"]
    assert test["No Finding"].sum() > 0  # enrichment went to abnormal images first
    assert s["splits"]["test"] == len(read["b"]["test"])


def test_enforce_min_positives_prefers_abnormal_rows():
    y = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0], [1, 0, 1]], dtype=np.uint8)
    out = enforce_min_positives(y, 2, np.random.default_rng(0), columns=[1], prefer_abnormal=True)
    assert out[:, 1].sum() == 2 and out[[1, 3], 1].sum() == 0  # rows 1 and 3 (no finding) untouched
    np.testing.assert_array_equal(np.delete(out, 1, axis=1), np.delete(y, 1, axis=1))
    out = enforce_min_positives(y, 4, np.random.default_rng(0), columns=[1], prefer_abnormal=True)
    assert out[[0, 2, 4], 1].tolist() == [1, 1, 1] and out[[1, 3], 1].sum() == 1  # then one all-negative row
