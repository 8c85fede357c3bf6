# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of monai_ext.transforms.dicom on real DICOM files (pydicom-data, pydicom) and on files written here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from monai.data import ITKReader, MetaTensor, PydicomReader
from monai.transforms import LoadImage, LoadImaged, ShiftIntensityd
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from monai_ext.transforms import DEEPLESION_HU_OFFSET, NormalizeRadiograph, NormalizeRadiographd

pytestmark = pytest.mark.filterwarnings("ignore:PydicomReader.*ImageOrientationPatient:UserWarning")

READERS = {
    "pydicom": PydicomReader,  # default prune_metadata=True: header re-read from the file
    "pydicom_full_meta": lambda: PydicomReader(prune_metadata=False),  # header from the metadata
    "itk": ITKReader,  # GDCM dict without sequences, MONOCHROME1 already inverted
}


def _load(path: Path, reader: str) -> MetaTensor:
    return LoadImage(reader=READERS[reader](), image_only=True, ensure_channel_first=True)(str(path))


def _rows_cols(img, rows: int, cols: int) -> np.ndarray:
    """MONAI's ``[1] W H [1]`` back to the DICOM ``rows x cols`` order."""
    return np.asarray(img, dtype=np.float64).reshape(cols, rows).T


def _write_dicom(
    path: Path,
    stored: np.ndarray,
    bits_allocated: int = 16,
    bits_stored: int = 12,
    signed: int = 0,
    photometric: str = "MONOCHROME2",
    **tags,
) -> Path:
    """A minimal single-frame DICOM (rows x cols = ``stored.shape``) with the given pixel module and extra tags."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName = "CR", "Test^Radiograph"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (
        bits_allocated,
        bits_stored,
        bits_stored - 1,
        signed,
    )
    for keyword, value in tags.items():
        if keyword == "LUT":  # (descriptor, data, VR of LUTData)
            item = Dataset()
            item.LUTDescriptor = value[0]
            data = np.asarray(value[1], dtype="<u2")
            item.add_new(0x00283006, value[2], data.tobytes() if value[2] == "OW" else data.tolist())
            ds.VOILUTSequence = [item]
        else:
            setattr(ds, keyword, value)
    dtype = {(8, 0): np.uint8, (16, 0): "<u2", (16, 1): "<i2"}[(bits_allocated, signed)]
    ds.PixelData = np.asarray(stored).astype(dtype).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# RG1_UNCI.dcm: PA chest CR, MONOCHROME1, BitsStored 15, WindowCenter 15000, WindowWidth 30000, no rescale, no VOI LUT
# Regions as (row0, row1, col0, col1) fractions of the 1955 x 1841 (rows x cols) image, chosen on a rendered PNG:
# upper-zone lung fields lateral to the mediastinum and medial to the ribcage, and the central band of the
# mediastinum at the level of the aortic arch / carina, where the thoracic spine projects on a PA film.
RIGHT_LUNG, LEFT_LUNG = (0.20, 0.32, 0.14, 0.26), (0.20, 0.32, 0.66, 0.78)
MEDIASTINUM, SPINE = (0.30, 0.50, 0.45, 0.55), (0.35, 0.50, 0.47, 0.53)


@pytest.fixture(scope="module")
def rg1_reference(rg1_unci_path) -> np.ndarray:
    """Independent computation: pydicom's stored values, PS3.3 C.11.2.1.2.1 LINEAR window by hand, MONOCHROME1 flip."""
    raw = pydicom.dcmread(rg1_unci_path).pixel_array.astype(np.float64)
    c, w = 15000.0, 30000.0
    return 1.0 - np.clip((raw - (c - 0.5)) / (w - 1) + 0.5, 0.0, 1.0)


@pytest.fixture(scope="module")
def rg1_loaded(rg1_unci_path) -> dict[str, MetaTensor]:
    return {reader: _load(rg1_unci_path, reader) for reader in ("pydicom", "itk")}


def test_rg1_readers_disagree_as_measured(rg1_loaded):
    """The pitfall the transform handles: PydicomReader keeps stored values, ITKReader inverts (32767 - raw)."""
    raw = _rows_cols(rg1_loaded["pydicom"], 1955, 1841)
    itk = _rows_cols(rg1_loaded["itk"], 1955, 1841)
    assert (raw.min(), raw.max()) == (803.0, 26512.0)
    np.testing.assert_array_equal(itk, 32767.0 - raw)


@pytest.mark.parametrize("reader,header", [("pydicom", "auto"), ("pydicom", "file"), ("itk", "auto"), ("itk", "meta")])
def test_rg1_normalised_same_for_both_readers(rg1_loaded, rg1_reference, reader, header):
    out = NormalizeRadiograph(header=header)(rg1_loaded[reader])
    assert isinstance(out, MetaTensor) and out.dtype == torch.float32
    assert out.shape == rg1_loaded[reader].shape
    assert str(out.meta["filename_or_obj"]).endswith("RG1_UNCI.dcm")
    y = _rows_cols(out, 1955, 1841)
    assert 0.0 <= y.min() and y.max() <= 1.0
    assert np.abs(y - rg1_reference).max() < 1e-6
    assert np.corrcoef(y.ravel(), rg1_reference.ravel())[0, 1] > 0.9999


def test_rg1_full_metadata_path(rg1_unci_path, rg1_reference):
    out = NormalizeRadiograph(header="meta")(_load(rg1_unci_path, "pydicom_full_meta"))
    assert np.abs(_rows_cols(out, 1955, 1841) - rg1_reference).max() < 1e-6


def test_rg1_lungs_darker_than_mediastinum_and_spine(rg1_loaded):
    y = _rows_cols(NormalizeRadiograph()(rg1_loaded["itk"]), 1955, 1841)  # the readers agree (test above)

    def median(region):
        r0, r1, c0, c1 = region
        return float(np.median(y[int(r0 * 1955) : int(r1 * 1955), int(c0 * 1841) : int(c1 * 1841)]))

    lungs = max(median(RIGHT_LUNG), median(LEFT_LUNG))
    assert lungs < median(MEDIASTINUM) - 0.15
    assert lungs < median(SPINE) - 0.15


# ---------------------------------------------------------------------------------------------------------------------
# MONOCHROME1 through both readers for every bit layout, voi="bit_range": y = 1 - (raw - lo) / (hi - lo)
STORED_12 = np.array([[0, 1, 100], [1000, 2000, 4095]])


@pytest.mark.parametrize(
    "bits_allocated,bits_stored,signed,stored,slope,intercept,expected",
    [
        (16, 12, 0, STORED_12, 2.0, 100.0, 1.0 - STORED_12 / 4095),
        (16, 12, 0, STORED_12, None, None, 1.0 - STORED_12 / 4095),
        (16, 16, 0, STORED_12 * 16, 1.0, -1024.0, 1.0 - STORED_12 * 16 / 65535),
        (16, 16, 1, STORED_12 - 2048, None, None, 1.0 - (STORED_12 - 2048 + 32768) / 65535),
        (16, 12, 1, STORED_12 - 2048, 2.0, -5.0, 1.0 - STORED_12 / 4095),  # itk 5.4.7 leaves these as stored
        (
            8,
            8,
            0,
            np.array([[0, 1, 51], [100, 204, 255]]),
            None,
            None,
            1.0 - np.array([[0, 1, 51], [100, 204, 255]]) / 255,
        ),
    ],
)
@pytest.mark.parametrize("reader", sorted(READERS))
def test_monochrome1_inverted_once_whatever_the_reader(
    tmp_path, reader, bits_allocated, bits_stored, signed, stored, slope, intercept, expected
):
    tags = {} if slope is None else {"RescaleSlope": slope, "RescaleIntercept": intercept}
    path = _write_dicom(tmp_path / "m1.dcm", stored, bits_allocated, bits_stored, signed, "MONOCHROME1", **tags)
    out = NormalizeRadiograph(voi="bit_range")(_load(path, reader))
    np.testing.assert_allclose(_rows_cols(out, 2, 3), expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# DICOM window functions (PS3.3 C.11.2.1.2.1 / C.11.2.1.3), values worked by hand
@pytest.mark.parametrize(
    "tags,stored,expected",
    [
        # LINEAR c=100, w=51: 0 below 74.5, 1 above 124.5, else (x - 99.5) / 50 + 0.5
        ({"WindowCenter": 100, "WindowWidth": 51}, [[74, 75, 100], [124, 125, 200]], [[0, 0.01, 0.51], [0.99, 1, 1]]),
        # the same window on modality values x = 2 * stored - 1000 (stored 537 -> x 74, 550 -> 100)
        (
            {"WindowCenter": 100, "WindowWidth": 51, "RescaleSlope": 2, "RescaleIntercept": -1000},
            [[537, 538, 550], [562, 563, 600]],
            [[0, 0.03, 0.51], [0.99, 1, 1]],
        ),
        # LINEAR_EXACT c=100, w=50: (x - 100) / 50 + 0.5
        (
            {"WindowCenter": 100, "WindowWidth": 50, "VOILUTFunction": "LINEAR_EXACT"},
            [[70, 75, 100], [110, 125, 130]],
            [[0, 0, 0.5], [0.7, 1, 1]],
        ),
        # SIGMOID c=100, w=40: 1 / (1 + exp(-4 (x - 100) / 40))
        (
            {"WindowCenter": 100, "WindowWidth": 40, "VOILUTFunction": "SIGMOID"},
            [[90, 100, 110], [0, 100, 200]],
            [[1 / (1 + math.e), 0.5, 1 / (1 + math.exp(-1))], [1 / (1 + math.exp(10)), 0.5, 1 / (1 + math.exp(-10))]],
        ),
        # two windows: index 0 is used; LINEAR width 1 is a threshold at c - 0.5
        ({"WindowCenter": [10, 500], "WindowWidth": [1, 100]}, [[0, 9, 10], [11, 500, 4095]], [[0, 0, 1], [1, 1, 1]]),
    ],
)
@pytest.mark.parametrize("reader", sorted(READERS))
def test_window_matches_dicom_formula(tmp_path, reader, tags, stored, expected):
    path = _write_dicom(tmp_path / "w.dcm", np.array(stored), **tags)
    out = NormalizeRadiograph()(_load(path, reader))  # "auto": no VOI LUT, so the window
    np.testing.assert_allclose(_rows_cols(out, 2, 3), expected, atol=1e-6)
    inverted = _write_dicom(tmp_path / "w1.dcm", np.array(stored), photometric="MONOCHROME1", **tags)
    out = NormalizeRadiograph(voi="window")(_load(inverted, reader))
    np.testing.assert_allclose(_rows_cols(out, 2, 3), 1.0 - np.array(expected), atol=1e-6)


def test_second_window_by_index(tmp_path):
    path = _write_dicom(
        tmp_path / "w.dcm", np.array([[449, 450, 500], [549, 550, 600]]), WindowCenter=[10, 500], WindowWidth=[1, 101]
    )
    # c=500, w=101: 0 at or below 449.5, 1 above 549.5, else (x - 499.5) / 100 + 0.5
    out = NormalizeRadiograph(window_index=1)(_load(path, "pydicom"))
    np.testing.assert_allclose(_rows_cols(out, 2, 3), [[0, 0.005, 0.505], [0.995, 1, 1]], atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# VOI LUT Sequence: descriptor (4 entries, first mapped 10, 12 bits), data [0, 1000, 3000, 4095]; wins over the window
LUT_STORED = np.array([[0, 10, 11], [12, 13, 100]])
LUT_EXPECTED = np.array([[0, 0, 1000], [3000, 4095, 4095]]) / 4095


@pytest.mark.parametrize("lut_vr", ["US", "OW"])
@pytest.mark.parametrize("reader", sorted(READERS))
def test_voi_lut_sequence(tmp_path, reader, lut_vr):
    path = _write_dicom(
        tmp_path / "lut.dcm",
        LUT_STORED,
        LUT=([4, 10, 12], [0, 1000, 3000, 4095], lut_vr),
        WindowCenter=50,
        WindowWidth=20,
    )
    out = NormalizeRadiograph()(_load(path, reader))
    np.testing.assert_allclose(_rows_cols(out, 2, 3), LUT_EXPECTED, atol=1e-6)


def test_itk_metadata_alone_has_no_voi_lut(tmp_path):
    """ITKReader's GDCM dict drops sequences, so header='meta' falls back to the window (documented)."""
    path = _write_dicom(
        tmp_path / "lut.dcm",
        LUT_STORED,
        LUT=([4, 10, 12], [0, 1000, 3000, 4095], "US"),
        WindowCenter=50,
        WindowWidth=21,
    )  # LINEAR: (x - 49.5) / 20 + 0.5, 0 at or below 39.5
    out = NormalizeRadiograph(header="meta")(_load(path, "itk"))
    np.testing.assert_allclose(_rows_cols(out, 2, 3), [[0, 0, 0], [0, 0, 1]], atol=1e-6)


@pytest.mark.parametrize(
    "voi,expected",
    [
        ("auto", STORED_12 / 4095),  # no VOI LUT, no window: stored bit range
        ("bit_range", STORED_12 / 4095),
        ("min_max", STORED_12 / 4095),  # this image spans 0..4095
    ],
)
def test_bit_range_and_min_max(tmp_path, voi, expected):
    path = _write_dicom(tmp_path / "b.dcm", STORED_12)
    np.testing.assert_allclose(
        _rows_cols(NormalizeRadiograph(voi=voi)(_load(path, "pydicom")), 2, 3), expected, atol=1e-6
    )


def test_min_max_differs_from_bit_range(tmp_path):
    path = _write_dicom(tmp_path / "b.dcm", np.array([[100, 200, 300], [100, 200, 300]]))
    out = NormalizeRadiograph(voi="min_max")(_load(path, "itk"))
    np.testing.assert_allclose(_rows_cols(out, 2, 3), [[0, 0.5, 1], [0, 0.5, 1]], atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# CT in HU
@pytest.mark.parametrize("reader", ["pydicom", "itk"])
def test_ct_small_is_loaded_in_hounsfield_units(ct_small_path, reader):
    """Both readers already apply RescaleIntercept -1024: nothing must rescale again."""
    ds = pydicom.dcmread(ct_small_path)
    assert float(ds.RescaleIntercept) == -1024.0 and float(ds.RescaleSlope) == 1.0
    expected = apply_modality_lut(ds.pixel_array, ds)  # pydicom's own modality LUT, rows x cols
    loaded = _rows_cols(_load(ct_small_path, reader), 128, 128)
    np.testing.assert_array_equal(loaded, expected)
    assert loaded.min() == ds.pixel_array.min() - 1024


@pytest.mark.parametrize("reader", [None, "itk"])
def test_deeplesion_png_round_trips_to_hu(tmp_path, reader):
    hu = np.array([[-1024, -1000, -500, 0], [40, 1000, 3071, 32767]], dtype=np.int32)
    path = tmp_path / "000001_01_01" / "088.png"
    path.parent.mkdir()
    Image.fromarray((hu + 32768).astype(np.uint16)).save(path)
    with Image.open(path) as png:
        assert png.mode == "I;16"  # written as 16-bit grey
    load = LoadImaged("image", reader=None if reader is None else READERS[reader](), ensure_channel_first=True)
    d = load({"image": str(path)})
    assert float(d["image"].max()) == 65535.0  # read as 16-bit, not clipped to 8 bits
    d = ShiftIntensityd("image", offset=DEEPLESION_HU_OFFSET)(d)
    np.testing.assert_array_equal(_rows_cols(d["image"], 2, 4), hu)


# ---------------------------------------------------------------------------------------------------------------------
# PNG / JPEG (no DICOM header)
@pytest.mark.parametrize("reader", [None, "itk"])
@pytest.mark.parametrize("dtype", [np.float32, None])
@pytest.mark.parametrize(
    "values,png_dtype",
    [([[0, 51, 255], [102, 204, 153]], np.uint8), ([[0, 13107, 65535], [26214, 52428, 39321]], np.uint16)],
)
def test_png_scaled_by_bit_depth(tmp_path, reader, dtype, values, png_dtype):
    path = tmp_path / "x.png"
    Image.fromarray(np.array(values, dtype=png_dtype)).save(path)
    load = LoadImaged(
        "image", reader=None if reader is None else READERS[reader](), dtype=dtype, ensure_channel_first=True
    )
    out = NormalizeRadiographd("image")(load({"image": str(path)}))["image"]
    assert out.dtype == torch.float32
    np.testing.assert_allclose(_rows_cols(out, 2, 3), [[0, 0.2, 1], [0.4, 0.8, 0.6]], atol=1e-6)


def test_jpeg_and_png_options(tmp_path):
    Image.fromarray(np.full((2, 3), 255, dtype=np.uint8)).save(tmp_path / "x.jpg")
    out = NormalizeRadiographd("image")(LoadImaged("image")({"image": str(tmp_path / "x.jpg")}))["image"]
    np.testing.assert_allclose(np.asarray(out), 1.0, atol=1e-6)  # mode "L" -> 8 bits
    Image.fromarray(np.array([[0, 1000, 4095]], dtype=np.uint16)).save(tmp_path / "x12.png")
    d = LoadImaged("image")({"image": str(tmp_path / "x12.png")})
    np.testing.assert_allclose(
        np.asarray(NormalizeRadiographd("image", bit_depth=12)(d)["image"]).ravel(), [0, 1000 / 4095, 1]
    )
    np.testing.assert_allclose(
        np.asarray(NormalizeRadiographd("image", voi="min_max")(d)["image"]).ravel(), [0, 1000 / 4095, 1]
    )
    np.testing.assert_allclose(
        np.asarray(NormalizeRadiographd("image")(d)["image"]).ravel(), [0, 1000 / 65535, 4095 / 65535]
    )


def test_numpy_input_and_missing_keys():
    out = NormalizeRadiograph()(np.array([[0, 128, 255]], dtype=np.uint8))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 128 / 255, 1]])
    d = NormalizeRadiographd(["image", "other"], allow_missing_keys=True)(
        {"image": np.array([[0, 255]], np.uint8), "x": 3}
    )
    np.testing.assert_allclose(d["image"], [[0, 1]])
    assert d["x"] == 3
    with pytest.raises(KeyError, match="other"):
        NormalizeRadiographd(["image", "other"])({"image": np.array([[0, 255]], np.uint8)})


# ---------------------------------------------------------------------------------------------------------------------
# errors
def test_missing_tag_names_file_tag_and_fix(tmp_path):
    path = _write_dicom(tmp_path / "nowin.dcm", STORED_12)
    for reader in ("pydicom", "itk"):
        with pytest.raises(
            ValueError,
            match=r"nowin\.dcm' \(header read from the file\): DICOM tag WindowCenter "
            r"\(0028,1050\) is missing; use voi='auto' \(VOI LUT, else window, else bit range\)",
        ):
            NormalizeRadiograph(voi="window")(_load(path, reader))
    with pytest.raises(ValueError, match=r"WindowCenter \(0028,1050\) is missing.*or header='file' to read the header"):
        NormalizeRadiograph(voi="window", header="meta")(_load(path, "itk"))
    with pytest.raises(ValueError, match=r"nowin\.dcm.*VOILUTSequence \(0028,3010\) is missing"):
        NormalizeRadiograph(voi="voi_lut")(_load(path, "pydicom"))
    with pytest.raises(ValueError, match=r"nowin\.dcm.*PhotometricInterpretation \(0028,0004\).*prune_metadata=False"):
        NormalizeRadiograph(header="meta")(_load(path, "pydicom"))  # pruned metadata, no file access allowed


def test_corrupt_and_truncated_files(tmp_path, ct_small_path):
    img = MetaTensor(torch.zeros(1, 2, 2), meta={"filename_or_obj": str(tmp_path / "bad.dcm")})
    (tmp_path / "bad.dcm").write_bytes(b"this is not a DICOM file" * 8)
    with pytest.raises(ValueError, match=r"bad\.dcm' could not be read as DICOM.*InvalidDicomError"):
        NormalizeRadiograph(header="file")(img)
    # a DICOM cut inside its header: readable preamble, no PhotometricInterpretation
    (tmp_path / "cut.dcm").write_bytes(ct_small_path.read_bytes()[:400])
    img = MetaTensor(torch.zeros(1, 2, 2), meta={"filename_or_obj": str(tmp_path / "cut.dcm")})
    with pytest.raises(ValueError, match=r"cut\.dcm.*PhotometricInterpretation \(0028,0004\) is missing"):
        NormalizeRadiograph()(img)


def test_non_dicom_with_dicom_policy(tmp_path):
    Image.fromarray(np.zeros((2, 3), np.uint8)).save(tmp_path / "x.png")
    d = LoadImaged("image")({"image": str(tmp_path / "x.png")})
    with pytest.raises(ValueError, match=r"x\.png' has no DICOM header.*voi='window'"):
        NormalizeRadiographd("image", voi="window")(d)
    with pytest.raises(ValueError, match=r"x\.png' could not be read as DICOM"):
        NormalizeRadiographd("image", header="file")(d)
    with pytest.raises(ValueError, match=r"cannot tell the bit depth.*bit_depth=8 or 16"):
        NormalizeRadiograph()(MetaTensor(torch.zeros(1, 2, 2)))


def test_colour_and_bad_options(tmp_path):
    path = _write_dicom(tmp_path / "rgb.dcm", STORED_12, photometric="PALETTE COLOR")
    with pytest.raises(ValueError, match=r"rgb\.dcm.*'PALETTE COLOR'; only MONOCHROME1/MONOCHROME2"):
        NormalizeRadiograph()(_load(path, "pydicom_full_meta"))
    with pytest.raises(ValueError, match="window_index=2 but WindowCenter"):
        NormalizeRadiograph(window_index=2)(
            _load(_write_dicom(tmp_path / "w.dcm", STORED_12, WindowCenter=9, WindowWidth=9), "pydicom")
        )
    with pytest.raises(ValueError, match="did you mean 'window'"):
        NormalizeRadiograph(voi="windw")
    with pytest.warns(UserWarning, match=r"w\.dcm.*bit_depth=12 is ignored for DICOM"):
        NormalizeRadiograph(bit_depth=12)(_load(tmp_path / "w.dcm", "pydicom"))
    with pytest.raises(ValueError, match="bit_depth must be None or in 1..32"):
        NormalizeRadiograph(bit_depth=0)
