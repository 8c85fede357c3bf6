# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DICOM Segmentation (SEG) of a segmentation bundle's label mask, built and read back with highdicom.

The bundle writes an ``X Y Z`` uint8 label mask (0 = background, ``k`` = ``class_names[k - 1]``) on the grid MONAI
loaded (:mod:`monai_ext.handlers.mask_writer`). For a DICOM series that grid is ``X`` = DICOM column, ``Y`` = DICOM
row, ``Z`` = slice along the normal, and :func:`monai_ext.dicom.sources.read_source_instances` returns the source
instances in that slice order; so the SEG frame of slice ``k`` is ``labels[:, :, k].T`` (``Rows x Columns``) and
references ``instances[k]``.

Choices (issue 15):

- **BINARY** segments, one per foreground class, in ``class_names`` order (segment number ``k`` = label ``k``). The
  bundle keeps only the argmax label map, not the probabilities, so a FRACTIONAL (probability) SEG could only
  repeat 0/1 values and would claim a probability it does not have.
- **Empty frames are omitted** (highdicom ``omit_empty_frames=True``): a frame is written only for a (slice, segment)
  pair holding some voxel of the segment. Every class keeps its segment in ``SegmentSequence`` even when it is empty
  (so readers and the volume SR always find ``class_names[k - 1]`` as segment ``k``). For an entirely empty mask
  highdicom cannot omit every frame and writes all of them, empty (a valid SEG that says "nothing found").
- **Codes**: category SCT 49755003 "Morphologically Abnormal Structure" (``codes.SCT.MorphologicallyAbnormalStructure``,
  the DICOM CID 7150 category of lesions) and anatomic region SCT 39607008 "Lung" (``codes.SCT.Lung``; the bundle
  segments lung CT findings). pydicom's ``codes.SCT`` has no concept for ground-glass opacity, consolidation or
  (lung) infection, so the segmented property type is the local scheme ``99RMB`` (value and meaning = the class
  name), declared in ``CodingSchemeIdentificationSequence``. No SNOMED code is invented.
- **Identity**: Manufacturer ``robust-medical-bundles``, ManufacturerModelName = bundle name, SoftwareVersions =
  ``[bundle version, monai_ext version]``, DeviceSerialNumber ``"none"``, and per segment an
  ``AlgorithmIdentificationSequence`` (bundle name and version, family DCM 113037 "Artificial Intelligence"),
  algorithm type AUTOMATIC. The SEG joins the source's study (patient and study attributes copied by highdicom) in a
  new series (UIDs from ``pydicom.uid.generate_uid``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from monai_ext.dicom.identity import (
    MANUFACTURER,
    finding_concept,
    local_coding_scheme,
    new_object_attributes,
)
from monai_ext.dicom.sources import read_source_instances

__all__ = [
    "SEG_SERIES_NUMBER",
    "algorithm_identification",
    "segment_descriptions",
    "check_mask_fits_series",
    "build_segmentation",
    "read_segmentation_seg",
]

SEG_SERIES_NUMBER = 9901
"""``SeriesNumber`` of the SEG series (the volume SR uses 9902); high, to sort after the acquired series."""


def algorithm_identification(model_name: str, model_version: str) -> hd.AlgorithmIdentificationSequence:
    """The SEG ``AlgorithmIdentificationSequence``: the bundle's name and version, family "Artificial Intelligence"."""
    return hd.AlgorithmIdentificationSequence(
        name=str(model_name), family=codes.DCM.ArtificialIntelligence, version=str(model_version), source=MANUFACTURER
    )


def segment_descriptions(
    class_names: Sequence[str], model_name: str, model_version: str
) -> list[hd.seg.SegmentDescription]:
    """One BINARY-segment description per class: number ``k`` for ``class_names[k - 1]``, label = class name.

    Raises:
        ValueError: ``class_names`` is empty or repeats a name.
    """
    names = [str(c) for c in class_names]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct and non-empty, got {names}.")
    algorithm = algorithm_identification(model_name, model_version)
    return [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=name,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=finding_concept(name),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_id=name,
            tracking_uid=generate_uid(),
            anatomic_regions=[codes.SCT.Lung],
        )
        for k, name in enumerate(names, start=1)
    ]


def check_mask_fits_series(labels_shape: Sequence[int], instances: Sequence[Dataset], where: str = "mask") -> None:
    """Check that an ``X Y Z`` mask has one voxel per pixel of each instance: ``(Columns, Rows, len(instances))``.

    Raises:
        ValueError: naming ``where``, both shapes and the series.
    """
    if not instances:
        raise ValueError(f"{where}: the source series has no instance.")
    rows, columns = int(instances[0].Rows), int(instances[0].Columns)
    for ds in instances:
        if (int(ds.Rows), int(ds.Columns)) != (rows, columns):
            raise ValueError(f"{where}: the source series mixes image sizes; a SEG needs one Rows x Columns.")
    expected = (columns, rows, len(instances))
    if tuple(int(s) for s in labels_shape) != expected:
        raise ValueError(
            f"{where}: mask shape {tuple(labels_shape)} (X Y Z) does not match the source series "
            f"{instances[0].get('SeriesInstanceUID', '?')} (Columns x Rows x slices = {expected}); the mask was not "
            "computed on this series."
        )


def build_segmentation(
    labels: np.ndarray,
    source_instances: Sequence[Dataset],
    class_names: Sequence[str],
    model_name: str,
    model_version: str,
    series_number: int = SEG_SERIES_NUMBER,
) -> hd.seg.Segmentation:
    """A BINARY DICOM SEG of an ``X Y Z`` label mask over its source series.

    Args:
        labels: ``X Y Z`` integer labels in ``0..len(class_names)`` (``X`` = column, ``Y`` = row, ``Z`` = slice).
        source_instances: the series' datasets in volume slice order (:func:`read_source_instances`; headers
            suffice), ``source_instances[k]`` = slice ``k``.
        class_names: the foreground classes; label ``k`` is ``class_names[k - 1]``.
        model_name: the bundle's name (``ManufacturerModelName``, algorithm name).
        model_version: the bundle's version.
        series_number: ``SeriesNumber`` of the new series. Defaults to :data:`SEG_SERIES_NUMBER`.

    Returns:
        The SEG (one segment per class; frame of slice ``k`` and segment ``s`` = ``labels[:, :, k].T == s``,
        referencing ``source_instances[k]``; empty frames omitted).

    Raises:
        ValueError: the shape does not match the series (:func:`check_mask_fits_series`), labels outside
            ``0..len(class_names)``, or bad ``class_names``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be X Y Z, got shape {labels.shape}.")
    check_mask_fits_series(labels.shape, source_instances)
    descriptions = segment_descriptions(class_names, model_name, model_version)
    if labels.size and (labels.min() < 0 or labels.max() > len(descriptions)):
        raise ValueError(f"labels span [{labels.min()}, {labels.max()}], not 0..{len(descriptions)} ({class_names}).")
    frames = np.ascontiguousarray(labels.transpose(2, 1, 0)).astype(np.uint8)  # Z x Rows x Columns
    return hd.seg.Segmentation(
        source_images=list(source_instances),
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        content_label="SEGMENTATION",
        content_description=f"{model_name} {model_version}"[:64],
        **new_object_attributes(model_name, model_version, series_number, f"{model_name} segmentation"),
        omit_empty_frames=bool(labels.any()),  # highdicom cannot omit every frame
        coding_schemes=[local_coding_scheme()],
    )


def read_segmentation_seg(
    path: str | os.PathLike, source: str | os.PathLike | Sequence[Dataset] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Read a SEG written by :func:`build_segmentation` back into an ``X Y Z`` label map, with highdicom.

    Args:
        path: the SEG file.
        source: the source series (a folder, or its datasets in slice order) that fixes the slice order; None uses
            the order of the SEG's ``ReferencedSeriesSequence`` instances (which :func:`build_segmentation` writes in
            slice order).

    Returns:
        ``(labels, uids)``: ``X Y Z`` uint8 labels (value = segment number, 0 = none; omitted frames are empty) and
        the referenced SOP instance UIDs, ``uids[k]`` = slice ``k``.

    Raises:
        ValueError: the SEG overlaps segments, references several series, or does not reference exactly the
            instances of ``source``.
    """
    seg = hd.seg.segread(str(path))
    referenced = [
        str(item.ReferencedSOPInstanceUID)
        for series in seg.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    ]
    if len(seg.ReferencedSeriesSequence) != 1:
        raise ValueError(f"SEG '{path}' references {len(seg.ReferencedSeriesSequence)} series, expected one.")
    if source is not None:
        instances = read_source_instances(source) if isinstance(source, (str, os.PathLike)) else list(source)
        uids = [str(ds.SOPInstanceUID) for ds in instances]
        if sorted(uids) != sorted(referenced):
            raise ValueError(f"SEG '{path}' does not reference exactly the {len(uids)} instances of its source.")
    else:
        uids = referenced
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, combine_segments=True, assert_missing_frames_are_empty=True
    )
    return np.ascontiguousarray(np.asarray(pixels).transpose(2, 1, 0)).astype(np.uint8), uids
