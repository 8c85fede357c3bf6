# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Fixtures of the bundle tests: the bundle folders, one session-wide demo-data folder, and the in-process bundle
runner (:func:`monai_ext.bundle.workflow.run_bundle_workflow`; a ``python -m monai.bundle`` subprocess costs ~10 s of
imports). Every bundle test runs its configs merged with the bundle's ``configs/demo.json`` small-run overlay."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from monai_ext.bundle.workflow import run_bundle_workflow
from monai_ext.bundle.zoo import write_demo_data

BUNDLES_DIR = Path(__file__).resolve().parents[2] / "bundles"


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """An empty session folder for demo datasets; call :func:`monai_ext.bundle.zoo.write_demo_data` to fill it."""
    return tmp_path_factory.mktemp("demo_data")


@pytest.fixture(scope="session")
def cxr_demo(demo_root) -> Path:
    """NIH, OpenI and PadChest demo data (``size=0.4`` times each dataset's ``DEMO_OPTIONS`` size, ``seed=6``)."""
    return write_demo_data(demo_root, ["nih", "openi", "padchest"])


@pytest.fixture(scope="session")
def rop_demo(demo_root) -> Path:
    """A small ROP demo set (:func:`monai_ext.demo.rop.write_rop_demo`, ``size=0.7``: 21 infants, about 150 images of
    40 x 40 pixels, seed 0; the smallest size whose meta split holds every class)."""
    from monai_ext.demo.rop import write_rop_demo

    write_rop_demo(demo_root / "rop", size=0.7, seed=0, image_size=40)
    return demo_root / "rop"


@pytest.fixture(scope="session")
def cxr_lt_demo(demo_root) -> Path:
    """A tiny CXR-LT (FPSM + DADAM) demo: ``mimic_cxr_lt/`` (``size=1``: about 70 training, 17 validation, 25
    development and 42 test images of 48 pixels, at least 3 clean positives per class in development/test), and the
    lesion-box sources ``nih/`` (every boxable lesion of both official lists boxed) and ``vindr/`` (50 DICOMs), 64
    pixels each."""
    from monai_ext.demo import get_writer

    root = demo_root / "cxr_lt"
    get_writer("mimic_cxr_lt")(root / "mimic_cxr_lt", size=1.0, seed=0, image_size=48, eval_min_positives=3)
    get_writer("nih")(
        root / "nih", size=1.0, seed=1, image_size=64, bbox_fraction=1.0, bbox_splits=("test", "train_val")
    )
    get_writer("vindr")(root / "vindr", size=0.5, seed=2, image_size=64, min_positives=3)
    return root


@pytest.fixture(scope="session")
def deeplesion_demo(demo_root) -> Path:
    """A small DeepLesion demo (:func:`monai_ext.demo.deeplesion.write_deeplesion_demo`, ``size=0.5``: 12 patients,
    34 key images (25 training, 4 validation, 5 test) of 64 x 64 pixels at 4.8-7.0 mm, seed 0), so that a detection
    epoch takes seconds on the CPU."""
    from monai_ext.demo.deeplesion import write_deeplesion_demo

    write_deeplesion_demo(demo_root / "deeplesion", size=0.5, seed=0, image_size=64)
    return demo_root / "deeplesion"


@pytest.fixture(scope="session")
def bundles_dir() -> Path:
    """The repository's ``bundles/`` folder."""
    return BUNDLES_DIR


@pytest.fixture(scope="session")
def run_bundle():
    """:func:`monai_ext.bundle.workflow.run_bundle_workflow`: ``(bundle_dir, config_file, workflow_type="train",
    hooks=(), **override) -> ConfigWorkflow``."""
    return run_bundle_workflow


def _caused_by(error: BaseException, kind: type[BaseException], pattern: str) -> BaseException:
    """The first exception of type ``kind`` whose message matches ``pattern`` in the ``__cause__`` chain of ``error``
    (MONAI wraps errors raised inside a ``$`` expression in ``RuntimeError("Failed to evaluate ...")``)."""
    chain = [error]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    for e in chain:
        if isinstance(e, kind) and re.search(pattern, str(e), flags=re.S):
            return e
    raise AssertionError(f"no {kind.__name__} matching {pattern!r} in {[f'{type(e).__name__}: {e}' for e in chain]}")


@pytest.fixture(scope="session")
def caused_by() -> Callable[[BaseException, type[BaseException], str], BaseException]:
    """The function ``(error, kind, pattern) -> exception`` finding ``kind`` in ``error``'s ``__cause__`` chain."""
    return _caused_by
