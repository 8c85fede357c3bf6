# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Shared test fixtures: paths of real files that ship inside installed packages (no network access)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _package_file(package: str, *parts: str) -> Path:
    """A file inside an installed package, found from its import spec without importing or downloading anything."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"package '{package}' is not installed; install the test extras: pip install -e '.[test]'")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        pytest.fail(f"'{path}' is missing from the installed package '{package}'; reinstall it")
    return path


@pytest.fixture(scope="session")
def rg1_unci_path() -> Path:
    """``RG1_UNCI.dcm`` from ``pydicom-data``: PA chest CR, MONOCHROME1, BitsStored 15, window 15000/30000."""
    return _package_file("data_store", "data", "RG1_UNCI.dcm")


@pytest.fixture(scope="session")
def ct_small_path() -> Path:
    """``CT_small.dcm`` from pydicom's own test files: 128x128 CT, RescaleIntercept -1024, RescaleSlope 1."""
    return _package_file("pydicom", "data", "test_files", "CT_small.dcm")
