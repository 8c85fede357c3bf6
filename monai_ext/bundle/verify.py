# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Validate a bundle's ``configs/metadata.json`` against the MONAI metadata schema without network access.

``python -m monai.bundle verify_metadata`` downloads the schema named in the metadata's ``"schema"`` field unless the
file given as ``--filepath`` already exists. This module passes the vendored copy of the published schema as that file,
so the check is exactly MONAI's own, offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from monai.bundle import verify_metadata

__all__ = ["KNOWN_SCHEMA_URLS", "local_schema_path", "verify_bundle_metadata"]

# md5 of the vendored file; MONAI checks it before validating, so a modified copy is caught.
_SCHEMA_MD5 = {"meta_schema_20240725.json": "4625e840dbeadde2ed8b69679e397566"}

_SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

KNOWN_SCHEMA_URLS: dict[str, str] = {
    "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json": (
        "meta_schema_20240725.json"
    ),
    "https://project-monai.github.io/schema/meta_schema_20240725.json": "meta_schema_20240725.json",
}


def local_schema_path(url: str) -> Path:
    """Vendored schema file for a published schema ``url``.

    Raises:
        ValueError: ``url`` is not one of :data:`KNOWN_SCHEMA_URLS`.
    """
    if url not in KNOWN_SCHEMA_URLS:
        raise ValueError(
            f"metadata 'schema' {url!r} is not a schema this project validates offline; use one of "
            f"{sorted(KNOWN_SCHEMA_URLS)}."
        )
    return _SCHEMA_DIR / KNOWN_SCHEMA_URLS[url]


def verify_bundle_metadata(meta_file: str | os.PathLike) -> None:
    """Run MONAI's ``verify_metadata`` on ``meta_file`` with the vendored schema (no download).

    Raises:
        FileNotFoundError: ``meta_file`` does not exist.
        ValueError: the ``schema`` field is missing or unknown, or the metadata does not validate (MONAI's message,
            which names the failing key).
    """
    meta_path = Path(meta_file)
    if not meta_path.is_file():
        raise FileNotFoundError(f"bundle metadata not found: '{meta_path}'. Expected <bundle>/configs/metadata.json.")
    with open(meta_path, encoding="utf-8") as f:
        url = json.load(f).get("schema")
    if url is None:
        raise ValueError(f"'{meta_path}' has no 'schema' field; set it to the published URL of meta_schema_20240725.")
    schema = local_schema_path(url)
    verify_metadata(meta_file=str(meta_path), filepath=str(schema), hash_val=_SCHEMA_MD5[schema.name], hash_type="md5")
