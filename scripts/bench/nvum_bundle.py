# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The ``cxr_nvum_classification`` bundle as the NVUM benchmark uses it.

- :func:`bundle_network`: the bundle's shipped ``network_def`` (DenseNet121), for the step-time benchmark.

The overrides of the efficacy study's runs are :func:`scripts.bench.nvum_study.run_overrides`.
"""

from __future__ import annotations

import os

import torch

from monai_ext.bundle.workflow import bundle_parser
from scripts.bench.bundles import NVUM_BUNDLE, TRAIN

__all__ = ["BUNDLE_DIR", "bundle_network"]

BUNDLE_DIR = NVUM_BUNDLE


def bundle_network(bundle_dir: str | os.PathLike = BUNDLE_DIR, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The network of the bundle's ``configs/train.json`` (``network_def``), built as the bundle builds it.

    Raises:
        FileNotFoundError: ``configs/train.json`` is missing under ``bundle_dir``.
    """
    return bundle_parser(bundle_dir, TRAIN).get_parsed_content("network_def").to(device)
