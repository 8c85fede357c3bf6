# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The installed monai-ext against a bundle's ``required_packages_version`` (``monai_ext.bundle.requirements``), and
the first ``initialize`` step of every shipped bundle config that runs it."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

import monai_ext
from monai_ext.bundle import check_monai_ext_version, check_required_packages, requirements
from monai_ext.bundle.workflow import bundle_workflow

BUNDLES_DIR = Path(__file__).resolve().parents[2] / "bundles"
BUNDLES = sorted(p.name for p in BUNDLES_DIR.iterdir() if (p / "configs" / "metadata.json").is_file())
STEP = "$monai_ext.bundle.check_required_packages(@_meta_#required_packages_version)"


@pytest.mark.parametrize(
    "required, installed",
    [
        ("0.9.0", "0.9.0"),
        ("0.9.0", "0.9.7"),  # a later patch release
        ("0.9.0", "0.9.1.dev0"),  # a pre-release of a later patch
        ("0.9.0", "0.9.0.post1"),
        ("0.9.0", "0.9.2+local"),
        ("0.9.2", "0.9.10"),  # numeric, not text, order
        ("1.2.3", "1.2.9"),
        ("2", "2.0.5"),  # '2' means 2.0: 2.0.x passes
    ],
)
def test_compatible_versions_pass(required, installed):
    assert check_monai_ext_version(required, installed) == installed


@pytest.mark.parametrize(
    "required, installed, spec",
    [
        ("0.9.0", "0.8.9", ">=0.9.0,<0.10"),  # older
        ("0.9.0", "0.9.0rc1", ">=0.9.0,<0.10"),  # a pre-release of the required version is older than it
        ("0.9.0", "0.10.0", ">=0.9.0,<0.10"),  # the next minor
        ("0.9.0", "0.10.0.dev0", ">=0.9.0,<0.10"),  # and its pre-releases
        ("0.9.0", "1.0.0", ">=0.9.0,<0.10"),
        ("0.9.2", "0.9.1", ">=0.9.2,<0.10"),  # an older patch of the same minor
        ("1.2.3", "1.3.0", ">=1.2.3,<1.3"),
        ("2", "2.1", ">=2,<2.1"),
    ],
)
def test_incompatible_versions_say_what_to_install(required, installed, spec):
    with pytest.raises(ImportError) as info:
        check_monai_ext_version(required, installed)
    message = str(info.value)
    assert f"monai-ext {installed} is installed" in message
    assert f"built against {required}" in message
    assert f'pip install "monai-ext{spec}"' in message


def test_bad_versions_are_named():
    with pytest.raises(ValueError, match="'0.9.x' is not a version"):
        check_monai_ext_version("0.9.x", "0.9.0")
    with pytest.raises(ValueError, match="'nine' is not a version"):
        check_monai_ext_version("0.9.0", "nine")


def test_required_packages_reads_the_installed_distribution(monkeypatch):
    def version(name):
        assert name == "monai-ext"
        return "0.8.1"

    monkeypatch.setattr(requirements.importlib.metadata, "version", version)
    with pytest.raises(ImportError, match=r'monai-ext 0\.8\.1 is installed.*pip install "monai-ext>=0\.9\.0,<0\.10"'):
        check_required_packages({"monai-ext": "0.9.0", "torch": "2.9.1"})
    assert check_required_packages({"monai-ext": "0.8.0", "torch": "99"}) == "0.8.1"  # other packages not checked


def test_source_tree_falls_back_to_the_package_version(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(requirements.importlib.metadata, "version", not_installed)
    monkeypatch.setattr(monai_ext, "__version__", "0.9.4")
    assert check_required_packages({"monai-ext": "0.9.0"}) == "0.9.4"
    monkeypatch.setattr(monai_ext, "__version__", "0.11.0")
    with pytest.raises(ImportError, match="monai-ext 0.11.0 is installed"):
        check_required_packages({"monai-ext": "0.9.0"})
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        requirements.installed_version("torch")  # only monai-ext falls back


def test_metadata_without_monai_ext_is_refused():
    with pytest.raises(KeyError, match="must name 'monai-ext'"):
        check_required_packages({"monai": "1.6.1"})


@pytest.mark.parametrize("name", BUNDLES)
def test_shipped_bundles_accept_this_monai_ext(name):
    meta = json.loads((BUNDLES_DIR / name / "configs" / "metadata.json").read_text())
    assert check_monai_ext_version(meta["required_packages_version"]["monai-ext"], monai_ext.__version__)


@pytest.mark.parametrize("name", BUNDLES)
def test_every_config_checks_the_version_first(name):
    """Each config with its own ``initialize`` (or ``training_setup``) list starts with the check; a config whose
    ``initialize`` runs ``@training_setup`` gets it from there (``multi_gpu_train.json`` runs ``init_distributed``
    first)."""
    found = 0
    for path in sorted((BUNDLES_DIR / name / "configs").glob("*.json")):
        config = json.loads(path.read_text())
        if "training_setup" in config:
            assert config["training_setup"][0] == STEP, path.name
            found += 1
        if "initialize" in config and "@training_setup" not in config["initialize"]:
            assert config["initialize"][0] == STEP, path.name
            found += 1
    assert found >= 3  # train.json's training_setup, evaluate.json and inference.json at least


def test_an_old_monai_ext_stops_the_bundle_at_initialize(monkeypatch):
    monkeypatch.setattr(requirements.importlib.metadata, "version", lambda name: "0.8.0")
    workflow = bundle_workflow(BUNDLES_DIR / "cxr_nvum_classification", "configs/inference.json", "infer")
    with pytest.raises(Exception) as info:  # MONAI wraps the expression's error in a RuntimeError
        workflow.initialize()
    chain, error = [], info.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, ImportError) and 'pip install "monai-ext>=0.9.0,<0.10"' in str(e) for e in chain)
