# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Fixtures of the inference-input tests: writers of small real files (PNG, corrupt DICOM, truncated PNG, NIfTI, DICOM
series) and one input folder per kind in its real layout."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from monai_ext.demo.dicom_series import write_ct_dicom_series

PREAMBLE = b"\0" * 128 + b"DICM"
SPACING = (0.8, 0.8, 2.0)


def _sha8(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _png(path: Path, seed: int = 0, size: tuple[int, int] = (40, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
    return path


def _corrupt_dicom(path: Path, seed: int = 0) -> Path:
    """A valid preamble and random bytes after it: pydicom still parses a 'header' of garbage tags."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PREAMBLE + np.random.default_rng(seed).bytes(4000))
    return path


def _truncated_png(path: Path) -> Path:
    full = _png(path, seed=3).read_bytes()
    path.write_bytes(full[: len(full) // 2])
    return path


def _nifti(path: Path, shape: tuple[int, ...] = (6, 5, 3)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full(shape, -500, np.int16), np.diag([-0.8, -0.8, 2.0, 1.0])), str(path))
    return path


def _series(folder: Path, n_slices: int = 3, seed: str = "s") -> list[Path]:
    return write_ct_dicom_series(np.full((6, 5, n_slices), -500.0), SPACING, folder, uid_seed=seed)


@pytest.fixture
def sha8() -> Callable[[str], str]:
    """``text -> first 8 hex digits of its SHA-1`` (the hash suffix of colliding case ids)."""
    return _sha8


@pytest.fixture
def png() -> Callable[..., Path]:
    """``(path, seed=0, size=(40, 48)) -> path``: writes a random 8-bit grayscale PNG."""
    return _png


@pytest.fixture
def nifti() -> Callable[..., Path]:
    """``(path, shape=(6, 5, 3)) -> path``: writes an int16 NIfTI of -500 HU."""
    return _nifti


@pytest.fixture
def series() -> Callable[..., list[Path]]:
    """``(folder, n_slices=3, seed="s") -> files``: writes a CT DICOM series of -500 HU, one slice per file."""
    return _series


@pytest.fixture
def input_dir(tmp_path, rg1_unci_path) -> Path:
    """in/ of radiographs: a real DICOM, a corrupt DICOM without suffix, two PNG/JPEG whose ids collide ignoring case,
    a truncated PNG, and files that are no case (notes.txt, DICOMDIR, hidden files and folders)."""
    root = tmp_path / "in"
    (root / "dicom").mkdir(parents=True)
    os.symlink(rg1_unci_path, root / "dicom" / "RG1_UNCI.dcm")
    _corrupt_dicom(root / "dicom" / "IM0001")  # no suffix: found by its preamble
    _png(root / "png" / "a.png", seed=1)
    _png(root / "png" / "A.jpg", seed=2)  # 'png__A' and 'png__a' collide on a case-insensitive filesystem
    _truncated_png(root / "png" / "broken.png")
    (root / "notes.txt").write_text("not an image\n")
    (root / "DICOMDIR").write_bytes(PREAMBLE)
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    _png(root / ".cache" / "thumb.png")
    _png(root / "png" / "._a.png")  # macOS AppleDouble companion
    return root


@pytest.fixture
def tree(tmp_path) -> Path:
    """in/: a.nii.gz, sub/B.nii, p1/ct/ (series + notes.txt), multi/ (two series), single/ (one slice), hidden files."""
    root = tmp_path / "in"
    _nifti(root / "a.nii.gz")
    _nifti(root / "sub" / "B.nii")
    _series(root / "p1" / "ct")
    (root / "p1" / "ct" / "notes.txt").write_text("not an image")
    _series(root / "multi", seed="one")
    for k, path in enumerate(_series(root / "tmp_two", n_slices=2, seed="two")):
        path.rename(root / "multi" / f"X{k}.dcm")
    (root / "tmp_two").rmdir()
    _series(root / "single", n_slices=1)
    _nifti(root / ".hidden.nii.gz")
    _nifti(root / ".cache" / "c.nii.gz")
    return root


KIND_SUFFIXES = {"radiograph": ".png", "volume": ".nii.gz"}


@pytest.fixture
def kind_suffix() -> dict[str, str]:
    """The file suffix of one case of each input kind in the shared-path tests (a PNG, or a NIfTI volume)."""
    return dict(KIND_SUFFIXES)


@pytest.fixture
def case_file() -> Callable[[str, Path], Path]:
    """``(kind, path without suffix) -> path``: writes one readable case of ``kind`` (a PNG, or a NIfTI volume)."""

    def write(kind: str, stem: Path) -> Path:
        path = stem.with_name(stem.name + KIND_SUFFIXES[kind])
        return _png(path) if kind == "radiograph" else _nifti(path)

    return write
