# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Fixtures of the bundle tests: the bundle folders, one session-wide demo-data folder, and a helper running a
bundle workflow in-process (``ConfigWorkflow``; a ``python -m monai.bundle`` subprocess costs ~10 s of imports)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from monai.bundle import ConfigWorkflow

from monai_ext.bundle.zoo import write_demo_data

BUNDLES_DIR = Path(__file__).resolve().parents[2] / "bundles"


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """An empty session folder for demo datasets; call :func:`monai_ext.bundle.zoo.write_demo_data` to fill it."""
    return tmp_path_factory.mktemp("demo_data")


@pytest.fixture(scope="session")
def cxr_demo(demo_root) -> Path:
    """NIH, OpenI and PadChest demo data (``size=0.4``, ``seed=6``: 59 NIH training images, each class positive)."""
    return write_demo_data(demo_root, ["nih", "openi", "padchest"])


def _run_bundle(
    bundle_dir: Path,
    config_file: str | Sequence[str],
    workflow_type: str = "train",
    hooks: Sequence[Any] = (),
    **override: Any,
) -> ConfigWorkflow:
    """``initialize``, run ``hooks(workflow)`` (e.g. attach probes to resolved engines), ``run`` and ``finalize``."""
    files = [config_file] if isinstance(config_file, str) else list(config_file)
    wf = ConfigWorkflow(
        config_file=[str(bundle_dir / f) for f in files],
        meta_file=str(bundle_dir / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type=workflow_type,
        **{"bundle_root": str(bundle_dir), **override},
    )
    wf.initialize()
    for hook in hooks:
        hook(wf)
    wf.run()
    wf.finalize()
    return wf


@pytest.fixture(scope="session")
def bundles_dir() -> Path:
    """The repository's ``bundles/`` folder."""
    return BUNDLES_DIR


@pytest.fixture(scope="session")
def run_bundle():
    """The function ``(bundle_dir, config_file, workflow_type="train", hooks=(), **override) -> ConfigWorkflow``."""
    return _run_bundle


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
