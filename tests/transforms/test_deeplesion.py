# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of the DeepLesion 2.5D loader (16-bit PNG slices -> C x W x H HU) and the in-plane resample with boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.apps.detection.transforms.box_ops import convert_box_to_mask
from monai.apps.detection.transforms.dictionary import BoxToMaskd, ClipBoxToImaged
from monai.transforms import Compose, EnsureTyped, ScaleIntensityRanged
from PIL import Image

from monai_ext.transforms.deeplesion import LoadDeepLesionSlicesd, ZoomToSpacingd, read_deeplesion_png

H, W = 20, 30  # PNG rows, columns
ROWS, COLS = (2, 5), (10, 20)  # bright rectangle: rows 2..4, columns 10..19
BOX = [COLS[0], ROWS[0], COLS[1], ROWS[1]]  # [x1, y1, x2, y2], x = column, pixel edges


def _png(path, hu, bits=16):
    if bits == 16:
        Image.fromarray((np.asarray(hu) + 32768).astype(np.uint16)).save(path)
    else:
        Image.fromarray(np.asarray(hu).astype(np.uint8)).save(path)
    return str(path)


def _rectangle(tmp_path, name="rect.png", background=-1000, lesion=500):
    hu = np.full((H, W), background, dtype=np.int32)
    hu[ROWS[0] : ROWS[1], COLS[0] : COLS[1]] = lesion
    return _png(tmp_path / name, hu)


def test_axis_order_matches_monai_xyxy_boxes(tmp_path):
    path = _rectangle(tmp_path)
    out = LoadDeepLesionSlicesd()({"image": [path] * 3, "spacing": [0.7, 0.7, 5.0], "box": [BOX]})
    img = out["image"]
    assert tuple(img.shape) == (3, W, H) and img.dtype == torch.float32  # spatial axis 0 = x = column
    bright = (img[1] > 0).numpy()
    # MONAI's own box -> mask in xyxy mode, on the loaded spatial shape, gives exactly the bright rectangle
    mask = convert_box_to_mask(np.array([BOX], float), np.array([1]), spatial_size=(W, H), bg_label=0)[0]
    np.testing.assert_array_equal(mask == 1, bright)
    assert float(img[0, 0, 0]) == -1000.0 and float(img[2, COLS[0], ROWS[0]]) == 500.0  # HU = value - 32768


def test_channels_follow_list_order_and_read_once(tmp_path):
    paths = [_png(tmp_path / f"{k}.png", np.full((H, W), v)) for k, v in enumerate((-5, 7, 40))]
    out = LoadDeepLesionSlicesd()({"image": [paths[2], paths[0], paths[1]], "spacing": [1.0, 1.0, 1.0]})
    assert [float(c.mean()) for c in out["image"]] == [40.0, -5.0, 7.0]
    assert out["image"].meta["filename_or_obj"] == paths[0]  # the middle (key) slice


def test_linear_interpolation_from_slice_pairs(tmp_path):
    a, b, c = (_png(tmp_path / f"{k}.png", np.full((H, W), v)) for k, v in enumerate((0, 100, -200)))
    item = {
        "image": [a, b, c],
        "slice_pairs": [[b, a], [b, b], [b, c]],  # the key b, its neighbours a and c
        "slice_weights": [0.25, 0.0, 0.5],
        "spacing": [0.8, 0.8, 5.0],
    }
    out = LoadDeepLesionSlicesd()(item)
    # 0.75 * 100 + 0.25 * 0 = 75; 100; 0.5 * 100 + 0.5 * (-200) = -50
    assert [float(ch.mean()) for ch in out["image"]] == [75.0, 100.0, -50.0]
    plain = LoadDeepLesionSlicesd(interpolate=False)(item)
    assert [float(ch.mean()) for ch in plain["image"]] == [0.0, 100.0, -200.0]
    with pytest.raises(ValueError, match="one entry per path"):
        LoadDeepLesionSlicesd()(dict(item, slice_weights=[0.5]))


def test_affine_and_pixdim_from_spacing(tmp_path):
    path = _rectangle(tmp_path)
    img = LoadDeepLesionSlicesd()({"image": [path], "spacing": [0.6, 0.75, 2.5]})["image"]
    np.testing.assert_allclose(img.pixdim.numpy(), [0.6, 0.75])
    np.testing.assert_allclose(img.affine.numpy(), np.diag([0.6, 0.75, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"'spacing' x/y must be positive finite mm"):
        LoadDeepLesionSlicesd()({"image": [path], "spacing": [float("nan"), 0.7, 1.0]})


def test_bad_pngs_name_the_file(tmp_path):
    eight = _png(tmp_path / "eight.png", np.full((H, W), 100), bits=8)
    with pytest.raises(ValueError, match=r"eight\.png' is a 'L' image, expected a 16-bit grey PNG"):
        LoadDeepLesionSlicesd()({"image": [eight], "spacing": [1, 1, 1]})
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(OSError, match=r"broken\.png"):
        read_deeplesion_png(tmp_path / "broken.png")
    with pytest.raises(FileNotFoundError, match=r"absent\.png"):
        read_deeplesion_png(tmp_path / "absent.png")
    small = _png(tmp_path / "small.png", np.zeros((H, W - 1)))
    with pytest.raises(ValueError, match="differ in size"):
        LoadDeepLesionSlicesd()({"image": [_rectangle(tmp_path), small], "spacing": [1, 1, 1]})


@pytest.mark.parametrize("spacing", [(0.6, 0.7), (1.0, 0.9), (0.8, 0.8)])
def test_chain_to_0p8mm_keeps_box_on_the_rectangle(tmp_path, spacing):
    path = _rectangle(tmp_path)
    chain = Compose(
        [
            LoadDeepLesionSlicesd(keys="image"),
            EnsureTyped("box", dtype=torch.float32),
            EnsureTyped("label", dtype=torch.long),
            ScaleIntensityRanged("image", a_min=-1024, a_max=3071, b_min=0.0, b_max=1.0, clip=True),
            ZoomToSpacingd("image", box_keys="box", pixdim=0.8),
            ClipBoxToImaged(box_keys="box", label_keys="label", box_ref_image_keys="image"),
        ]
    )
    out = chain({"image": [path] * 3, "spacing": [*spacing, 5.0], "box": [BOX], "label": [0]})
    img = out["image"]
    expected = (round(W * spacing[0] / 0.8), round(H * spacing[1] / 0.8))
    assert tuple(img.shape[1:]) == expected
    # realised spacing: the field of view is kept, so spacing * in / out (0.8 up to the rounding of the size)
    np.testing.assert_allclose(img.pixdim.numpy(), [spacing[0] * W / expected[0], spacing[1] * H / expected[1]])
    assert np.all(np.abs(img.pixdim.numpy() - 0.8) < 0.8 / min(expected))
    np.testing.assert_allclose(out["zoom"], [expected[0] / W, expected[1] / H])
    # bright pixels: above halfway between background and lesion in the window
    level = ((-1000 + 500) / 2 + 1024) / 4095
    xs, ys = np.nonzero(img[1].numpy() > level)
    box = np.asarray(out["box"])[0]
    measured = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]  # pixel-edge extent of the bright region
    np.testing.assert_allclose(box, measured, atol=1.0)
    assert np.asarray(out["label"]).tolist() == [0]


def test_boxes_and_mask_after_resample_agree(tmp_path):
    # BoxToMaskd on the resampled image must cover the resampled bright rectangle (same axes after the zoom)
    path = _rectangle(tmp_path)
    chain = Compose(
        [
            LoadDeepLesionSlicesd(),
            ZoomToSpacingd("image", box_keys="box", pixdim=0.8),
            BoxToMaskd(
                box_mask_keys="mask", box_keys="box", label_keys="label", box_ref_image_keys="image", min_fg_label=0
            ),
        ]
    )
    out = chain({"image": [path], "spacing": [0.6, 0.6, 5.0], "box": [BOX], "label": np.array([0])})
    fg = np.asarray(out["mask"])[0] > 0  # BoxToMaskd shifts the background to 0, label 0 to 1
    core = out["image"][0].numpy() > 400  # well inside the lesion after bilinear resize
    assert core.any() and fg[core].all()
    assert fg.sum() < 2 * core.sum() + 2 * sum(core.shape)  # the box is not a loose cover


def test_zoom_to_spacing_errors():
    with pytest.raises(ValueError, match="must be a MetaTensor"):
        ZoomToSpacingd()({"image": torch.zeros(1, 4, 4), "box": [[0, 0, 1, 1]]})
