# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The input kinds of batch inference, named by :class:`InputKind` and resolved to their :class:`CaseKind` by
:func:`case_kind`."""

from __future__ import annotations

from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.inference.base import CaseKind
from monai_ext.data.inference.deeplesion_slices import CTDetectionKind, DeepLesionSlicesKind
from monai_ext.data.inference.photograph import PhotographKind
from monai_ext.data.inference.radiograph import RadiographKind
from monai_ext.data.inference.volume import VolumeKind

__all__ = ["InputKind", "case_kind"]


class InputKind(StrEnum):
    """What the inputs of an inference run are.

    - ``"radiograph"``: DICOM/PNG/JPEG image files, one case each; result ``<case_id>.json``
      (:class:`~monai_ext.data.inference.radiograph.RadiographKind`).
    - ``"volume"``: NIfTI files and DICOM series folders, one case each; result ``<case_id>_seg.nii.gz``
      (:class:`~monai_ext.data.inference.volume.VolumeKind`).
    - ``"photograph"``: colour (or grey) DICOM/PNG/JPEG photographs such as fundus images, one case each, checked for
      a layout :class:`monai_ext.transforms.LoadPhotographd` reads; result ``<case_id>.json``
      (:class:`~monai_ext.data.inference.photograph.PhotographKind`).
    - ``"deeplesion_slices"``: DeepLesion-style folders of 16-bit ``NNN.png`` CT slices, one series (case) each;
      result ``<case_id>/<case_id>_boxes.json``
      (:class:`~monai_ext.data.inference.deeplesion_slices.DeepLesionSlicesKind`).
    - ``"ct_detection"``: NIfTI files, DICOM series folders and PNG slice folders, one case each; result
      ``<case_id>/<case_id>_boxes.json`` (:class:`~monai_ext.data.inference.deeplesion_slices.CTDetectionKind`).
    """

    RADIOGRAPH = "radiograph"
    VOLUME = "volume"
    PHOTOGRAPH = "photograph"
    DEEPLESION_SLICES = "deeplesion_slices"
    CT_DETECTION = "ct_detection"


_KINDS: dict[InputKind, CaseKind] = {
    InputKind.RADIOGRAPH: RadiographKind(),
    InputKind.VOLUME: VolumeKind(),
    InputKind.PHOTOGRAPH: PhotographKind(),
    InputKind.DEEPLESION_SLICES: DeepLesionSlicesKind(),
    InputKind.CT_DETECTION: CTDetectionKind(),
}


def case_kind(kind: InputKind | str) -> CaseKind:
    """The :class:`CaseKind` of ``kind``.

    Args:
        kind: {``"radiograph"``, ``"volume"``, ``"photograph"``, ``"deeplesion_slices"``, ``"ct_detection"``}, see
            :class:`InputKind`.

    Raises:
        ValueError: ``kind`` is not an :class:`InputKind` value (the message suggests the nearest).

    Example:
        >>> case_kind("volume").result_path("out", "p1__ct").as_posix()
        'out/p1__ct_seg.nii.gz'
    """
    return _KINDS[look_up_option(kind, InputKind)]
