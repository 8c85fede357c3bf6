# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Inferers: 2.5D slice-by-slice lesion detection on CT volumes with a 2D MONAI detector (``slice_detection``) and
the mapping of its slice boxes to world and original voxel coordinates (``slice_boxes_to_world``, same module).

Every inferer a bundle config names is exported here: ``monai_ext.inferers.SliceDetectionInferer``.
"""

from __future__ import annotations

from monai_ext.inferers.slice_detection import SliceDetectionInferer, context_slice_indices, slice_boxes_to_world

__all__ = ["SliceDetectionInferer", "context_slice_indices", "slice_boxes_to_world"]
