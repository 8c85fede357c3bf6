# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``monai_ext.utils.RNGState``: a run's random states as a ``weights_only`` checkpoint entry (issue 9)."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import torch
from monai.transforms import Compose, OneOf, RandFlipd, RandRotate90d, RandScaleCropd, Resized

from monai_ext.utils import RNGState, randomizable_transforms


def _pipeline(last=RandRotate90d) -> Compose:
    nested = Compose([OneOf([RandFlipd("image", prob=0.5, spatial_axis=1), last("image", prob=0.5)])])
    return Compose([RandScaleCropd("image", roi_scale=0.5, random_size=True), Resized("image", (8, 8)), nested])


def _draws(pipeline: Compose) -> list:
    image = {"image": torch.arange(256, dtype=torch.float32).reshape(1, 16, 16)}
    augmented = [pipeline(dict(image))["image"].as_tensor() for _ in range(4)]
    return [torch.rand(3), np.random.rand(3), random.random(), random.gauss(0, 1), *augmented]


def _assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert np.array_equal(np.asarray(x), np.asarray(y))


def test_paths_name_every_randomizable_including_nested_and_wrapped_ones():
    paths = {p: type(t).__name__ for p, t in randomizable_transforms([_pipeline()])}
    assert paths == {
        "0": "Compose",
        "0.transforms.0": "RandScaleCropd",
        "0.transforms.0.cropper": "RandScaleCrop",  # the array transform that draws the crop
        "0.transforms.2": "Compose",
        "0.transforms.2.transforms.0": "OneOf",
        "0.transforms.2.transforms.0.transforms.0": "RandFlipd",
        "0.transforms.2.transforms.0.transforms.1": "RandRotate90d",
    }


def test_restored_states_repeat_every_draw_through_a_weights_only_checkpoint(tmp_path):
    pipeline = _pipeline().set_random_state(seed=7)
    rng = RNGState([pipeline])
    _draws(pipeline)  # move every generator away from its seed
    torch.save({"rng": rng.state_dict()}, tmp_path / "ckpt.pt")
    expected = _draws(pipeline)
    _draws(pipeline)
    rng.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True)["rng"])
    _assert_same(_draws(pipeline), expected)


def test_a_fresh_pipeline_of_the_same_shape_continues_the_saved_one():
    saved_pipeline = _pipeline().set_random_state(seed=1)
    _draws(saved_pipeline)
    state = RNGState([saved_pipeline]).state_dict()
    expected = _draws(saved_pipeline)
    fresh = _pipeline().set_random_state(seed=2)  # a new run: other seeds, same config
    RNGState([fresh]).load_state_dict(state)
    _assert_same(_draws(fresh), expected)


def test_a_pipeline_of_another_shape_is_refused_and_nothing_changes():
    state = RNGState([_pipeline()]).state_dict()
    other = _pipeline(last=RandFlipd)
    before = torch.get_rng_state()
    torch.rand(1)
    moved = torch.get_rng_state()
    with pytest.raises(ValueError) as error:
        RNGState([other]).load_state_dict(state)
    message = str(error.value)
    assert "'0.transforms.2.transforms.0.transforms.1' is RandRotate90d in the checkpoint, RandFlipd in the config" in (
        message
    )
    assert "rng_state#strict=false" in message
    assert torch.equal(torch.get_rng_state(), moved) and not torch.equal(moved, before)
    with pytest.raises(
        ValueError, match=r"'0.transforms.0' \(RandScaleCropd\) is in the checkpoint, not in the config"
    ):
        RNGState([Compose([Resized("image", (8, 8))])]).load_state_dict(RNGState([_pipeline()]).state_dict())


def test_not_strict_restores_the_global_generators_and_warns(caplog):
    state = RNGState([_pipeline()]).state_dict()
    expected = torch.rand(3)
    other = _pipeline(last=RandFlipd).set_random_state(seed=5)
    other_state = other.transforms[0].R.get_state()
    with caplog.at_level(logging.WARNING):
        RNGState([other], strict=False).load_state_dict(state)
    assert torch.equal(torch.rand(3), expected)
    assert np.array_equal(other.transforms[0].R.get_state()[1], other_state[1])  # transforms left alone
    assert "transform random states not restored" in caplog.text


def test_missing_entries_are_named():
    state = RNGState([]).state_dict()
    del state["numpy"]
    with pytest.raises(KeyError, match=r"misses \['numpy'\]"):
        RNGState([]).load_state_dict(state)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine's warning")
def test_a_cuda_state_on_a_machine_without_cuda_warns(caplog):
    state = RNGState([]).state_dict()
    assert state["cuda"] == []  # CUDA never initialised: nothing to save
    state["cuda"] = [torch.get_rng_state()]
    with caplog.at_level(logging.WARNING):
        RNGState([]).load_state_dict(state)
    assert "CUDA is not available" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_current_cuda_generator_is_restored():
    torch.rand(1, device="cuda")
    rng = RNGState([])
    state = rng.state_dict()
    expected = torch.rand(4, device="cuda")
    rng.load_state_dict(state)
    assert torch.equal(torch.rand(4, device="cuda"), expected)
