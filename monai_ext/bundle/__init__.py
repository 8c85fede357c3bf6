# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Bundle tooling a user needs: offline metadata validation (``verify``), the model-zoo checks (``zoo``), checkpoint
checks (``checkpoint``), in-process bundle runs with overrides (``workflow``) and zoo weights (``weights``)."""

from __future__ import annotations

import importlib

from monai_ext.bundle.checkpoint import check_checkpoint_fits, load_pretrained_weights
from monai_ext.bundle.folders import (
    check_checkpoint_dir,
    check_data_folders,
    check_output_outside_inputs,
    check_writable_folder,
)
from monai_ext.bundle.parameters import PARAMETER_RULES, as_flag, check_parameters
from monai_ext.bundle.requirements import check_monai_ext_version, check_required_packages
from monai_ext.bundle.verify import verify_bundle_metadata
from monai_ext.bundle.workflow import bundle_parser, bundle_workflow, run_bundle_workflow

__all__ = ["check_checkpoint_fits", "verify_bundle_metadata", "bundle_parser", "bundle_workflow"]
__all__ += ["run_bundle_workflow", "as_flag", "check_parameters", "PARAMETER_RULES", "check_checkpoint_dir"]
__all__ += ["check_output_outside_inputs", "check_writable_folder", "load_pretrained_weights"]
__all__ += ["check_data_folders", "check_monai_ext_version", "check_required_packages"]
__all__ += ["publish_weights", "download_weights"]

_LAZY = {"publish_weights": "monai_ext.bundle.weights", "download_weights": "monai_ext.bundle.weights"}


def __getattr__(name: str):
    """Names whose module is also a command (``python -m monai_ext.bundle.weights``), imported on first use so that
    running it does not import it twice."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
