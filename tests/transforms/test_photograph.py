# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.transforms.photograph: the same pixels as PNG, JPEG and DICOM (RGB, YBR_FULL, MONOCHROME2)
give the same 3 x W x H tensor in [0, 1], in the layout LoadImage gives the PNG; what MONAI's readers return on their
own (the reason for the transform); unsupported files fail naming the file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from monai.data import PILReader, PydicomReader
from monai.transforms import CenterSpatialCropd, Compose, LoadImage, NormalizeIntensityd, Resized
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from monai_ext.data.inference import case_kind
from monai_ext.transforms import LoadPhotograph, LoadPhotographd

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def write_photo_dicom(path: Path, pixels: np.ndarray, photometric: str = "RGB", bits_stored: int | None = None) -> Path:
    """Write ``pixels`` (``H W 3`` uint8 for colour, ``H W`` uint8/uint16 for grey) as an uncompressed ophthalmic
    photograph DICOM; ``YBR_FULL`` converts the RGB pixels with pydicom first."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.5.1"  # Ophthalmic Photography 8 Bit Image
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "OP"
    ds.Rows, ds.Columns = pixels.shape[:2]
    colour = pixels.ndim == 3
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric
    if colour:
        ds.PlanarConfiguration = 0
        if photometric == "YBR_FULL":
            pixels = convert_color_space(pixels, "RGB", "YBR_FULL")
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored = bits, bits_stored or bits
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _rgb(seed: int = 0, shape=(30, 40)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_monai_readers_disagree_on_layout(tmp_path):
    """The measured behaviour the transform corrects: PILReader gives C W H, PydicomReader W H C (not flagged)."""
    pixels = _rgb()
    Image.fromarray(pixels).save(tmp_path / "a.png")
    write_photo_dicom(tmp_path / "a.dcm", pixels)
    png = LoadImage(reader=PILReader(), image_only=True, ensure_channel_first=True)(tmp_path / "a.png")
    assert tuple(png.shape) == (3, 40, 30)
    assert np.array_equal(np.asarray(png), pixels.transpose(2, 1, 0))
    dcm = LoadImage(reader=PydicomReader(), image_only=True, ensure_channel_first=True)(tmp_path / "a.dcm")
    assert tuple(dcm.shape) == (1, 40, 30, 3)  # a fourth axis: the samples axis is not seen as channels


def test_png_and_dicoms_of_the_same_pixels_give_the_same_tensor(tmp_path):
    pixels = _rgb(1)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    load = LoadPhotograph()
    png = load(tmp_path / "a.png")
    expected = torch.as_tensor(pixels.transpose(2, 1, 0).astype(np.float32) / 255.0)
    assert png.shape == (3, 40, 30) and png.dtype == torch.float32
    assert torch.equal(png.as_tensor(), expected)
    assert png.meta["filename_or_obj"] == str(tmp_path / "a.png")
    rgb = load(write_photo_dicom(tmp_path / "rgb.dcm", pixels))
    assert torch.equal(rgb.as_tensor(), expected)
    ybr = load(write_photo_dicom(tmp_path / "ybr.dcm", pixels, "YBR_FULL"))
    # YBR_FULL -> RGB (pydicom) is within one grey level of the original RGB
    assert ybr.shape == (3, 40, 30)
    assert float((ybr.as_tensor() - expected).abs().max()) <= 1.0 / 255.0 + 1e-6


def test_jpeg_in_the_png_layout(tmp_path):
    pixels = _rgb(2)
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=95)
    decoded = np.asarray(Image.open(tmp_path / "a.jpg").convert("RGB"))  # lossy: compare with PIL's own decoding
    out = LoadPhotograph()(tmp_path / "a.jpg")
    assert torch.equal(out.as_tensor(), torch.as_tensor(decoded.transpose(2, 1, 0).astype(np.float32) / 255.0))


def test_grey_and_alpha_become_three_channels(tmp_path):
    grey = np.random.default_rng(3).integers(0, 256, (20, 24), dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    expected = torch.as_tensor(grey.T.astype(np.float32) / 255.0).expand(3, -1, -1)
    load = LoadPhotograph()
    assert torch.equal(load(tmp_path / "g.png").as_tensor(), expected)
    assert torch.equal(load(write_photo_dicom(tmp_path / "g.dcm", grey, "MONOCHROME2")).as_tensor(), expected)
    rgba = np.dstack([_rgb(4, (20, 24)), np.full((20, 24), 7, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    out = load(tmp_path / "rgba.png")
    assert torch.equal(out.as_tensor(), torch.as_tensor(rgba[..., :3].transpose(2, 1, 0).astype(np.float32) / 255.0))
    # 12-bit grey in 16-bit DICOM: divided by 2**12 - 1
    grey16 = np.array([[0, 4095], [2048, 1]], dtype=np.uint16)
    out = load(write_photo_dicom(tmp_path / "g16.dcm", grey16, "MONOCHROME2", bits_stored=12))
    assert torch.allclose(out[0], torch.tensor([[0.0, 2048 / 4095], [1.0, 1 / 4095]]))


def test_bundle_preprocessing_is_identical_for_png_and_dicom(tmp_path):
    pixels = _rgb(5, (300, 280))
    Image.fromarray(pixels).save(tmp_path / "a.png")
    write_photo_dicom(tmp_path / "a.dcm", pixels)
    pipeline = Compose(
        [
            LoadPhotographd("image"),
            Resized("image", spatial_size=256, size_mode="longest", mode="area"),
            CenterSpatialCropd("image", roi_size=(224, 224)),
            NormalizeIntensityd("image", subtrahend=IMAGENET_MEAN, divisor=IMAGENET_STD, channel_wise=True),
        ]
    )
    a, b = pipeline({"image": tmp_path / "a.png"})["image"], pipeline({"image": tmp_path / "a.dcm"})["image"]
    assert a.shape == b.shape == (3, 224, 224)
    assert torch.equal(a.as_tensor(), b.as_tensor())


@pytest.mark.parametrize("photometric", ["PALETTE COLOR", "MONOCHROME1"])
def test_unsupported_dicom_fails_naming_the_file(tmp_path, photometric):
    pixels = np.zeros((4, 4), dtype=np.uint8)
    path = write_photo_dicom(tmp_path / "x.dcm", pixels, photometric)
    with pytest.raises(ValueError, match=rf"x\.dcm.*PhotometricInterpretation '{photometric}' is not supported"):
        LoadPhotograph()(path)
    assert pydicom.dcmread(path).PhotometricInterpretation == photometric


def test_unsupported_png_mode_fails_naming_the_file(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8), mode="L").convert("P").save(tmp_path / "p.png")
    with pytest.raises(ValueError, match=r"p\.png.*mode 'P' is not supported"):
        LoadPhotograph()(tmp_path / "p.png")


def test_ybr_full_422_native_and_jpeg_baseline(tmp_path):
    """YBR_FULL_422 as ophthalmic photographs store it: native (Y1 Y2 Cb Cr per pixel pair) and JPEG baseline."""
    y, x = np.mgrid[0:40, 0:48]
    rgb = np.stack([(x * 5) % 256, (y * 6) % 256, ((x + y) * 3) % 256], -1).astype(np.uint8)
    rgb[:, 1::2] = rgb[:, 0::2]  # pixel pairs share their colour, so 4:2:2 subsampling loses nothing
    path = write_photo_dicom(tmp_path / "native.dcm", rgb)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    pairs = np.stack([ybr[:, 0::2, 0], ybr[:, 1::2, 0], ybr[:, 0::2, 1], ybr[:, 0::2, 2]], -1)
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation, ds.PixelData = "YBR_FULL_422", pairs.astype(np.uint8).tobytes()
    ds.save_as(path)
    expected = torch.as_tensor(rgb.transpose(2, 1, 0).astype(np.float32) / 255.0)
    assert case_kind("photograph").decoder(None)(str(path)) is None
    out = LoadPhotograph()(path)
    assert out.shape == (3, 48, 40) and float((out.as_tensor() - expected).abs().max()) <= 1.0 / 255.0 + 1e-6

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95, subsampling=1)  # 4:2:2
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "jpeg.dcm")
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).transpose(2, 1, 0) / 255.0
    assert case_kind("photograph").decoder(None)(str(tmp_path / "jpeg.dcm")) is None
    out = LoadPhotograph()(tmp_path / "jpeg.dcm")
    assert out.shape == (3, 48, 40) and float((out.as_tensor() - torch.as_tensor(decoded)).abs().max()) <= 1.01 / 255
