# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DADAM core on hand-built arrays: tail classes, correlation, CutMix/Mixup pixels and labels, the dict transform."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_ext.data.cxr.lesion_boxes import LesionBox
from monai_ext.transforms.dadam import (
    DadamMode,
    DiseasedAreaAugmenter,
    PatchBank,
    RandDiseasedAreaAugmentd,
    correlation_distance,
    label_correlation,
    tail_class_indices,
)

CLASSES = ("A", "B", "C", "No Finding")
A, B, C, NF = range(4)


def _corr(ab: float = 0.0, ac: float = 0.0, bc: float = 0.0) -> np.ndarray:
    m = np.eye(4)
    m[A, B] = m[B, A] = ab
    m[A, C] = m[C, A] = ac
    m[B, C] = m[C, B] = bc
    return m


def _bank(entries) -> PatchBank:
    """entries: (patch array w x h, relative box, class index)."""
    return PatchBank([e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries], CLASSES)


# a 4 x 2 patch of class A at relative box (0.1, 0.2, 0.3, 0.4); values exact in float16
PATCH_A = np.arange(8, dtype=np.float32).reshape(4, 2) / 8
PATCH_B = np.full((2, 2), 0.75, dtype=np.float32)
PATCH_C = np.full((2, 2), 0.25, dtype=np.float32)


@pytest.mark.parametrize(
    "labels, threshold, expected",
    [
        # counts A=1, B=2, C=3 (No Finding=4 ignored): median of (1, 2, 3) = 2 -> A only
        ([[1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]], None, [A]),
        # prevalences 0.25, 0.5, 0.75: below 0.6 -> A, B
        ([[1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]], 0.6, [A, B]),
        # No Finding rare but never tail
        ([[1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 1, 1]], None, []),
    ],
)
def test_tail_class_indices(labels, threshold, expected):
    assert tail_class_indices(labels, threshold, CLASSES) == expected


def test_tail_class_indices_bad_shape():
    with pytest.raises(ValueError, match="does not match"):
        tail_class_indices([[1, 0]], classes=CLASSES)


def test_label_correlation_matches_corrcoef_and_constant_columns():
    rng = np.random.default_rng(3)
    labels = (rng.random((40, 4)) < 0.4).astype(float)
    labels[:, 2] = 0  # a class never positive
    corr = label_correlation(labels)
    varying = [0, 1, 3]
    np.testing.assert_allclose(corr[np.ix_(varying, varying)], np.corrcoef(labels[:, varying].T), atol=1e-12)
    assert corr[2, 2] == 1.0
    assert np.all(corr[2, varying] == 0) and np.all(corr[varying, 2] == 0)
    # by hand: x = (1, 1, 0, 0), y = (1, 0, 0, 0): cov = 0.25 - 0.5 * 0.25 = 0.125, sd 0.5 and sqrt(3) / 4
    hand = label_correlation([[1, 1], [1, 0], [0, 0], [0, 0]])
    assert hand[0, 1] == pytest.approx(0.125 / (0.5 * np.sqrt(3) / 4))


def test_correlation_distance_by_hand():
    a = np.array([[1.0, 0.5], [0.5, 1.0]])
    assert correlation_distance(a, np.eye(2)) == pytest.approx(np.sqrt(0.5))
    with pytest.raises(ValueError, match="shapes"):
        correlation_distance(a, np.eye(3))


def test_cutmix_same_size_pastes_source_crop_at_relative_position():
    aug = DiseasedAreaAugmenter(_bank([(PATCH_A, (0.1, 0.2, 0.3, 0.4), A)]), _corr(), [A])
    bg = np.full((1, 20, 10), 0.5, dtype=np.float32)  # W = 20, H = 10: box x 2..6, y 2..4 (4 x 2, no scaling)
    out, labels, prov = aug.cutmix_on_normal(bg, np.random.default_rng(0))
    assert isinstance(out, np.ndarray) and out.shape == bg.shape
    np.testing.assert_array_equal(out[0, 2:6, 2:4], PATCH_A)
    rest = out.copy()
    rest[0, 2:6, 2:4] = 0.5
    np.testing.assert_array_equal(rest, bg)
    np.testing.assert_array_equal(bg, 0.5)  # background not modified in place
    np.testing.assert_array_equal(labels, [1, 0, 0, 0])
    assert prov["mode"] == "cutmix_normal" and prov["tail_class"] == "A"
    assert prov["patches"][0]["target_box"] == [2, 2, 6, 4] and prov["patches"][0]["alpha"] == 1.0


def test_cutmix_scaled_patch_equals_source_crop_after_scaling():
    aug = DiseasedAreaAugmenter(_bank([(PATCH_A, (0.1, 0.2, 0.3, 0.4), A)]), _corr(), [A], resize_mode="nearest")
    bg = torch.zeros(1, 40, 20)  # twice the size: box x 4..12, y 4..8
    out, _, _ = aug.cutmix_on_normal(bg, np.random.default_rng(0))
    assert isinstance(out, torch.Tensor)
    expected = np.repeat(np.repeat(PATCH_A, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(out[0, 4:12, 4:8].numpy(), expected)
    assert float(out.sum()) == pytest.approx(expected.sum())


def test_cutmix_adds_correlated_classes_without_overlap():
    bank = _bank(
        [
            (PATCH_A, (0.1, 0.2, 0.3, 0.4), A),
            (PATCH_B, (0.15, 0.3, 0.25, 0.5), B),  # overlaps A's target (x 3..5, y 3..5)
            (PATCH_B, (0.5, 0.6, 0.6, 0.8), B),  # free: x 10..12, y 6..8
            (PATCH_C, (0.8, 0.0, 0.9, 0.2), C),
        ]
    )
    aug = DiseasedAreaAugmenter(bank, _corr(ab=1.0, ac=0.05), [A], max_placement_tries=60)
    for seed in range(5):
        out, labels, prov = aug.cutmix_on_normal(np.zeros((1, 20, 10), np.float32), np.random.default_rng(seed))
        np.testing.assert_array_equal(labels, [1, 1, 0, 0])  # B with probability corr = 1; C below min_correlation
        np.testing.assert_array_equal(out[0, 10:12, 6:8], PATCH_B)
        np.testing.assert_array_equal(out[0, 2:6, 2:4], PATCH_A)  # A intact: the overlapping B patch was not used
        assert [p["class"] for p in prov["patches"]] == ["A", "B"]
    # only the overlapping B patch: B is skipped
    aug = DiseasedAreaAugmenter(bank.__class__(*_parts(bank, [0, 1])), _corr(ab=1.0), [A])
    out, labels, prov = aug.cutmix_on_normal(np.zeros((1, 20, 10), np.float32), np.random.default_rng(0))
    np.testing.assert_array_equal(labels, [1, 0, 0, 0])
    assert len(prov["patches"]) == 1
    # max_patches = 1: the tail patch only
    aug = DiseasedAreaAugmenter(bank, _corr(ab=1.0), [A], max_patches=1)
    _, labels, _ = aug.cutmix_on_normal(np.zeros((1, 20, 10), np.float32), np.random.default_rng(0))
    np.testing.assert_array_equal(labels, [1, 0, 0, 0])


def _parts(bank: PatchBank, keep):
    return ([bank.patches[i] for i in keep], bank.relative_boxes[keep], bank.class_indices[keep], bank.classes)


def test_mixup_blends_most_correlated_absent_class():
    bank = _bank([(PATCH_B, (0.5, 0.6, 0.6, 0.8), B), (PATCH_C, (0.1, 0.2, 0.2, 0.4), C)])
    with pytest.warns(UserWarning, match="CutMix on normal images is off"):
        aug = DiseasedAreaAugmenter(bank, _corr(ab=0.8, ac=0.3), [A])
    bg = torch.full((1, 20, 10), 0.5)
    # B is the most correlated with A but already positive: C is blended
    out, labels, prov = aug.mixup_on_diseased(bg, [1, 1, 0, 0], np.random.default_rng(0))
    np.testing.assert_allclose(out[0, 2:4, 2:4].numpy(), 0.6 * 0.25 + 0.4 * 0.5, atol=1e-7)
    rest = out.clone()
    rest[0, 2:4, 2:4] = 0.5
    assert torch.equal(rest, bg)
    np.testing.assert_array_equal(labels, [1, 1, 1, 0])
    assert prov["mode"] == "mixup_diseased" and prov["patches"][0]["class"] == "C"
    assert prov["patches"][0]["alpha"] == 0.6
    # B absent: B (corr 0.8) is blended
    out, labels, _ = aug.mixup_on_diseased(bg, [1, 0, 0, 0], np.random.default_rng(0))
    np.testing.assert_allclose(out[0, 10:12, 6:8].numpy(), 0.6 * 0.75 + 0.4 * 0.5, atol=1e-7)
    np.testing.assert_array_equal(labels, [1, 1, 0, 0])
    # both present: unchanged, no patch
    out, labels, prov = aug.mixup_on_diseased(bg, [1, 1, 1, 0], np.random.default_rng(0))
    assert torch.equal(out, bg) and prov["patches"] == []
    with pytest.raises(ValueError, match="tail class"):
        aug.mixup_on_diseased(bg, [0, 1, 0, 0], np.random.default_rng(0))


def test_augmenter_errors():
    with pytest.warns(UserWarning, match="no tail class has a lesion patch.*'C'"):
        aug = DiseasedAreaAugmenter(_bank([(PATCH_A, (0.1, 0.2, 0.3, 0.4), A)]), _corr(), [C])
    with pytest.raises(ValueError, match="no tail class has a lesion patch.*'C'"):
        aug.cutmix_on_normal(np.zeros((1, 20, 10)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="No Finding"):
        DiseasedAreaAugmenter(_bank([(PATCH_A, (0.1, 0.2, 0.3, 0.4), A)]), _corr(), [A, NF])
    with pytest.raises(ValueError, match="relative box"):
        _bank([(PATCH_A, (0.3, 0.2, 0.1, 0.4), A)])


def _transform(prob: float = 1.0) -> RandDiseasedAreaAugmentd:
    bank = _bank([(PATCH_A, (0.1, 0.2, 0.3, 0.4), A), (PATCH_B, (0.5, 0.6, 0.6, 0.8), B)])
    aug = DiseasedAreaAugmenter(bank, _corr(ab=0.5), [A])
    return RandDiseasedAreaAugmentd(("image", "label"), aug, prob=prob, provenance_key="dadam")


def test_transform_routes_items_and_keeps_meta():
    t = _transform()
    t.set_random_state(0)
    img = MetaTensor(torch.full((1, 20, 10), 0.5), meta={"filename_or_obj": "x.jpg"})
    normal = t({"image": img, "label": torch.tensor([0.0, 0.0, 0.0, 1.0])})
    assert isinstance(normal["image"], MetaTensor) and normal["image"].meta["filename_or_obj"] == "x.jpg"
    assert normal["dadam"]["mode"] == "cutmix_normal"
    assert isinstance(normal["label"], torch.Tensor) and normal["label"][A] == 1 and normal["label"][NF] == 0
    tail = t({"image": img, "label": [1.0, 0.0, 0.0, 0.0]})
    assert tail["dadam"]["mode"] == "mixup_diseased" and tail["label"] == [1.0, 1.0, 0.0, 0.0]
    other = t({"image": img, "label": [0.0, 1.0, 0.0, 0.0]})
    assert other["dadam"] == {} and other["image"] is img
    off = _transform(prob=0.0)({"image": img, "label": [0.0, 0.0, 0.0, 1.0]})
    assert off["dadam"] == {} and off["image"] is img


def test_transform_seeded_and_picklable():
    item = {"image": torch.rand(1, 20, 10), "label": [0.0, 0.0, 0.0, 1.0]}
    outs = []
    for t in (_transform(0.5), pickle.loads(pickle.dumps(_transform(0.5)))):
        t.set_random_state(7)
        outs.append([t(item)["dadam"].get("mode") for _ in range(12)])
    assert outs[0] == outs[1] and set(outs[0]) == {"cutmix_normal", None}


def test_patch_bank_from_library_crops_x_along_width(tmp_path: Path):
    pixels = (np.arange(200).reshape(10, 20) % 251).astype(np.uint8)  # H = 10 rows, W = 20 columns
    path = tmp_path / "img.png"
    Image.fromarray(pixels).save(path)
    box = LesionBox("nih", str(path), "Mass", "A", (2.0, 3.0, 6.0, 5.0), (20, 10))
    bank = PatchBank.from_library([box], CLASSES)
    np.testing.assert_allclose(bank.patches[0], pixels[3:5, 2:6].T / 255.0, atol=1e-3)
    np.testing.assert_allclose(bank.relative_boxes[0], [0.1, 0.3, 0.3, 0.5])
    wrong = LesionBox("nih", str(path), "Mass", "A", (2.0, 3.0, 6.0, 5.0), (10, 20))
    with pytest.raises(ValueError, match="loads as 20x10"):
        PatchBank.from_library([wrong], CLASSES)

    bank.save(tmp_path / "bank.npz")
    loaded = PatchBank.load(tmp_path / "bank.npz")
    assert loaded.boxes == [box] and loaded.classes == CLASSES and loaded.class_indices.tolist() == [A]
    np.testing.assert_array_equal(loaded.patches[0], bank.patches[0])
    np.testing.assert_array_equal(loaded.relative_boxes, bank.relative_boxes)
    small = PatchBank.from_library([box], CLASSES, max_patch_side=2)  # 4 x 2 -> 2 x 1, area = mean of pairs
    np.testing.assert_allclose(
        small.patches[0], bank.patches[0].astype(np.float32).reshape(2, 2, 2).mean(axis=(1, 2))[:, None], atol=1e-3
    )


def test_mode_for_names_the_strategy_the_transform_applies():
    aug = _transform().augmenter  # tail class A with a patch, B not tail, NF = "No Finding"
    assert aug.mode_for([0.0, 0.0, 0.0, 1.0]) == DadamMode.CUTMIX_NORMAL
    assert aug.mode_for(torch.tensor([1.0, 1.0, 0.0, 0.0])) == DadamMode.MIXUP_DISEASED
    assert aug.mode_for(np.array([0.0, 1.0, 0.0, 0.0])) is None
    with pytest.warns(UserWarning, match="no tail class has a lesion patch"):
        no_tail_patch = DiseasedAreaAugmenter(_bank([(PATCH_B, (0.5, 0.6, 0.6, 0.8), B)]), _corr(ab=0.5), [A])
    assert no_tail_patch.mode_for([0.0, 0.0, 0.0, 1.0]) is None  # CutMix off: no tail class has a patch
    assert no_tail_patch.mode_for([1.0, 0.0, 0.0, 0.0]) == DadamMode.MIXUP_DISEASED
