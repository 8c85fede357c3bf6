# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MONAI transforms shared by the bundles: radiograph normalisation from DICOM (:mod:`.dicom`) and CT multi-window
stacking (:mod:`.windowing`), grey/RGB(A) radiographs to one channel (:mod:`.channels`), the NaN/infinite image
check (:mod:`.finite`), colour photographs from PNG/JPEG/DICOM (:mod:`.photograph`), FPSM stage-head combination
(:mod:`.stages`), DADAM lesion-patch augmentation (:mod:`.dadam`), DeepLesion 2.5D slices and the in-plane resample
with boxes (:mod:`.deeplesion`)."""

from __future__ import annotations

from .channels import LUMA_WEIGHTS, ToGrayscale, ToGrayscaled
from .dadam import (
    DadamMode,
    DiseasedAreaAugmenter,
    PatchBank,
    RandDiseasedAreaAugmentd,
    correlation_distance,
    dadam_transform,
    label_correlation,
    radiograph_loader,
    tail_class_indices,
)
from .deeplesion import LoadDeepLesionSlicesd, ZoomToSpacingd, read_deeplesion_png
from .dicom import (
    DEEPLESION_HU_OFFSET,
    DicomHeaderSource,
    LoadedPolarity,
    NormalizeRadiograph,
    NormalizeRadiographd,
    RadiographVOI,
)
from .finite import RequireFinited, nonfinite_summary
from .io import LoadImageCheckedd
from .photograph import LoadPhotograph, LoadPhotographd
from .stages import CombineStageLogitsd, StageCombination, combine_stage_logits
from .windowing import MOMBS_COVID_WINDOWS, MultiWindow, MultiWindowd

__all__ = [
    "DEEPLESION_HU_OFFSET",
    "DicomHeaderSource",
    "LoadedPolarity",
    "NormalizeRadiograph",
    "NormalizeRadiographd",
    "RadiographVOI",
    "MOMBS_COVID_WINDOWS",
    "MultiWindow",
    "MultiWindowd",
    "LUMA_WEIGHTS",
    "ToGrayscale",
    "ToGrayscaled",
    "LoadImageCheckedd",
    "LoadPhotograph",
    "LoadPhotographd",
    "RequireFinited",
    "CombineStageLogitsd",
    "StageCombination",
    "combine_stage_logits",
    "nonfinite_summary",
    "DadamMode",
    "DiseasedAreaAugmenter",
    "PatchBank",
    "RandDiseasedAreaAugmentd",
    "correlation_distance",
    "label_correlation",
    "radiograph_loader",
    "tail_class_indices",
    "dadam_transform",
    "LoadDeepLesionSlicesd",
    "ZoomToSpacingd",
    "read_deeplesion_png",
]
