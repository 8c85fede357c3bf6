# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Running a bundle's ``configs/inference.json`` on one received series, in this process (the node imports torch and
MONAI once; a ``python -m monai.bundle`` subprocess would cost about ten seconds per series)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from monai_ext.bundle.workflow import run_bundle_workflow
from monai_ext.serve.routing import BundleRoute

__all__ = ["CaseFailed", "InferenceResult", "run_series_inference", "bundle_identity"]

INFERENCE_CONFIG = "configs/inference.json"


class CaseFailed(RuntimeError):
    """The bundle ran but produced no DICOM result for the series (the message says why)."""


@dataclass
class InferenceResult:
    """What one inference run left.

    Attributes:
        files: every ``*.dcm`` under the job folder, sorted by path (the results to send).
        skipped: the rows of the bundle's ``skipped.csv`` (``case_id``, ``image``, ``error``): unreadable inputs.
    """

    files: list[Path]
    skipped: list[dict[str, str]] = field(default_factory=list)


def bundle_identity(bundle_dir: Path) -> tuple[str, str]:
    """``(name, version)`` from the bundle's ``configs/metadata.json`` (folder name and ``"unknown"`` if absent)."""
    meta = Path(bundle_dir) / "configs" / "metadata.json"
    data = json.loads(meta.read_text()) if meta.is_file() else {}
    return str(data.get("name", Path(bundle_dir).name)), str(data.get("version", "unknown"))


def run_series_inference(route: BundleRoute, instances_dir: Path, job_dir: Path) -> InferenceResult:
    """Run ``route``'s inference configs with ``dataset_dir`` = ``instances_dir`` (the series' folder of received
    instances: one case per radiograph file for a radiograph bundle, one volume for a CT bundle) and ``output_dir`` =
    ``job_dir``.

    Raises:
        CaseFailed: the bundle wrote no ``*.dcm`` (the message gives its ``skipped.csv`` reasons when it has any).
        Exception: whatever the bundle raised (a configuration, checkpoint or reading error).
    """
    run_bundle_workflow(
        route.bundle_dir,
        [INFERENCE_CONFIG, *route.configs],
        "infer",
        dataset_dir=str(instances_dir),
        output_dir=str(job_dir),
        **route.overrides,
    )
    skipped_csv = job_dir / "skipped.csv"
    skipped = []
    if skipped_csv.is_file():
        with open(skipped_csv, newline="", encoding="utf-8") as f:
            skipped = list(csv.DictReader(f))
    files = sorted(p for p in job_dir.rglob("*.dcm") if not p.name.startswith("."))
    if not files:
        reasons = "; ".join(f"{r.get('case_id')}: {r.get('error')}" for r in skipped)
        raise CaseFailed(
            f"bundle {route.name} wrote no DICOM result in '{job_dir}'"
            + (f"; unreadable input: {reasons}" if reasons else " (does this bundle write SEG/SR for DICOM input?)")
        )
    return InferenceResult(files, skipped)
