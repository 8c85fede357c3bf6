# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of the PNG bit-depth rule of monai_ext.transforms.NormalizeRadiograph(d): the sBIT chunk, the warning on a
16-bit image using at most 12 bits (the demo PadChest format), and a per-item bit depth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from monai.transforms import LoadImaged
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from monai_ext.demo.cxr.common import save_image
from monai_ext.transforms import NormalizeRadiographd
from monai_ext.transforms.png_bits import png_significant_bits

VALUES_12 = np.array([[0, 1000, 4095]], dtype=np.uint16)


def _png(path, values, sbit: bytes | None = None, mode: str | None = None):
    info = None
    if sbit is not None:
        info = PngInfo()
        info.add(b"sBIT", sbit)
    image = Image.fromarray(values) if mode is None else Image.fromarray(values).convert(mode)
    image.save(path, pnginfo=info)
    return path


def _normalised(path, **kwargs) -> tuple[np.ndarray, list[str]]:
    """The normalised values of the PNG ``path`` and the warnings of the normalisation (not of the loading)."""
    d = LoadImaged("image")({"image": str(path), **kwargs.pop("extra", {})})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = np.asarray(NormalizeRadiographd("image", **kwargs)(d)["image"]).ravel()
    return out, [str(w.message) for w in caught]


def test_sbit_chunk_gives_the_bit_depth(tmp_path):
    path = _png(tmp_path / "x12.png", VALUES_12, sbit=bytes([12]))
    assert png_significant_bits(path) == 12
    assert _normalised(path)[1] == [] and _normalised(path, bit_depth=16)[1] == []
    np.testing.assert_allclose(_normalised(path)[0], [0, 1000 / 4095, 1], rtol=1e-6)
    np.testing.assert_allclose(_normalised(path, bit_depth=16)[0], [0, 1000 / 65535, 4095 / 65535], rtol=1e-6)


def test_16_bit_png_using_12_bits_warns_and_names_the_file(tmp_path):
    path = _png(tmp_path / "x12.png", VALUES_12)
    out, [message] = _normalised(path)
    np.testing.assert_allclose(out, [0, 1000 / 65535, 4095 / 65535], rtol=1e-6)  # the container rule, documented
    assert message.startswith(f"'{path}': a 16-bit image whose values are all below 2**12 (maximum 4095)")
    assert "pass bit_depth=12" in message and "[0, 0.0625]" in message


def test_demo_padchest_png_warns(tmp_path):
    """The demo's PadChest format (12-bit values in a 16-bit PNG, no sBIT) is the case the warning is for."""
    save_image(tmp_path / "pc.png", np.linspace(0.0, 1.0, 12).reshape(3, 4), "png16")
    [message] = _normalised(tmp_path / "pc.png")[1]
    assert "at most 12 bits are used" in message


def test_full_range_16_and_8_bit_images_do_not_warn(tmp_path):
    full = _png(tmp_path / "x16.png", np.array([[0, 4096, 65535]], dtype=np.uint16))
    dark8 = _png(tmp_path / "x8.png", np.array([[0, 3, 10]], dtype=np.uint8))
    assert _normalised(full)[1] == [] and _normalised(dark8)[1] == []
    np.testing.assert_allclose(_normalised(full)[0], [0, 4096 / 65535, 1], rtol=1e-6)
    np.testing.assert_allclose(_normalised(dark8)[0], [0, 3 / 255, 10 / 255], rtol=1e-6)


def test_values_beyond_the_sbit_range_fall_back_to_the_container(tmp_path):
    path = _png(tmp_path / "bad.png", np.array([[0, 5000]], dtype=np.uint16), sbit=bytes([12]))
    out, [message] = _normalised(path)
    np.testing.assert_allclose(out, [0, 5000 / 65535], rtol=1e-6)
    assert message.startswith(f"'{path}': its PNG sBIT chunk says 12 significant bits but it holds values up to 5000")


def test_per_item_bit_depth_key(tmp_path):
    path = _png(tmp_path / "x10.png", np.array([[0, 1023]], dtype=np.uint16))
    out, messages = _normalised(path, bit_depth_key="bits_stored", extra={"bits_stored": 10})
    np.testing.assert_allclose(out, [0, 1])
    assert messages == []
    # NaN (a blank CSV cell): the file's own rule
    [message] = _normalised(path, bit_depth_key="bits_stored", extra={"bits_stored": float("nan")})[1]
    assert "at most 12 bits" in message
    with pytest.raises(ValueError, match=r"item key 'bits_stored' \(bit depth of 'image'\) is 'ten'"):
        _normalised(path, bit_depth_key="bits_stored", extra={"bits_stored": "ten"})


def test_png_significant_bits_of_colour_and_other_files(tmp_path):
    rgb = _png(tmp_path / "rgb.png", np.zeros((2, 2, 3), np.uint8), sbit=bytes([5, 6, 5]))
    assert png_significant_bits(rgb) == 6
    grey_alpha = _png(tmp_path / "la.png", np.zeros((2, 2), np.uint8), sbit=bytes([7, 8]), mode="LA")
    assert png_significant_bits(grey_alpha) == 7
    assert png_significant_bits(_png(tmp_path / "plain.png", VALUES_12)) is None
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a png")
    assert png_significant_bits(tmp_path / "x.jpg") is None
    assert png_significant_bits(tmp_path / "missing.png") is None
