# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_ext.bundle.verify import KNOWN_SCHEMA_URLS, local_schema_path, verify_bundle_metadata

SHARED_SCHEMA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "monai" / "meta_schema_20240725.json"
URL = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json"


def _metadata(**overrides):
    meta = {
        "schema": URL,
        "version": "0.1.0",
        "changelog": {"0.1.0": "initial"},
        "monai_version": "1.6.1",
        "pytorch_version": "2.14.1",
        "numpy_version": "2.4.6",
        "required_packages_version": {"monai-ext": "0.1.0"},
        "task": "multi-label chest X-ray classification",
        "description": "test bundle",
        "authors": "robust-medical-bundles",
        "copyright": "Copyright (c) 2026",
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": "XR",
                    "num_channels": 1,
                    "spatial_shape": [224, 224],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {"0": "image"},
                }
            },
            "outputs": {
                "pred": {
                    "type": "probabilities",
                    "format": "classes",
                    "num_channels": 2,
                    "spatial_shape": [1, 2],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {"0": "Effusion", "1": "No Finding"},
                }
            },
        },
    }
    meta.update(overrides)
    return meta


def _write(tmp_path, meta):
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(meta))
    return path


@pytest.mark.skipif(not SHARED_SCHEMA.is_file(), reason="shared schema copy only on development/CI machines")
def test_vendored_schema_is_the_published_copy():
    assert local_schema_path(URL).read_bytes() == SHARED_SCHEMA.read_bytes()


def test_valid_metadata_passes_offline(tmp_path):
    verify_bundle_metadata(_write(tmp_path, _metadata()))


def test_missing_required_key_fails_naming_it(tmp_path):
    meta = _metadata()
    del meta["required_packages_version"]
    with pytest.raises(ValueError, match="required_packages_version"):
        verify_bundle_metadata(_write(tmp_path, meta))


def test_bad_tensor_definition_fails(tmp_path):
    meta = _metadata()
    del meta["network_data_format"]["inputs"]["image"]["dtype"]
    with pytest.raises(ValueError, match="dtype"):
        verify_bundle_metadata(_write(tmp_path, meta))


def test_unknown_or_missing_schema_url(tmp_path):
    with pytest.raises(ValueError, match="not a schema this project validates offline"):
        verify_bundle_metadata(_write(tmp_path, _metadata(schema="https://example.org/other.json")))
    meta = _metadata()
    del meta["schema"]
    with pytest.raises(ValueError, match="no 'schema' field"):
        verify_bundle_metadata(_write(tmp_path, meta))
    with pytest.raises(FileNotFoundError, match="bundle metadata not found"):
        verify_bundle_metadata(tmp_path / "absent.json")


def test_every_known_url_maps_to_a_vendored_file():
    for url in KNOWN_SCHEMA_URLS:
        assert local_schema_path(url).is_file()
