# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Fixtures of the repository-tooling tests: today's release, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.release import release

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """``(out, entries, record)``: the release of today's tree (wheel included) in a temporary folder ``out``, its
    ``model_info.json`` entries, and the copy of ``bundles/releases.json`` it recorded into (the repository's record
    is left alone)."""
    tmp = tmp_path_factory.mktemp("release")
    record = tmp / "releases.json"
    shutil.copy(BUNDLES / "releases.json", record)
    out = tmp / "out"
    entries = release(out, out.as_uri(), releases_path=record)
    return out, entries, record
