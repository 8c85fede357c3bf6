# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A small Comprehensive SR (highdicom) telling the destination that processing a series failed, and why.

Content tree (codes from ``pydicom.sr.codedict``, DCM)::

    CONTAINER  Failed Analyses (111024)
      HAS PROPERTIES  TEXT   Algorithm Name (111001)     = bundle metadata name
      HAS PROPERTIES  TEXT   Algorithm Version (111003)  = bundle metadata version
      CONTAINS        TEXT   Comment (121106)             = the reason
      CONTAINS        IMAGE  Source image for image processing operation (121322), one per source instance

Same study and patient as the sources (highdicom copies them from the first evidence instance); a new series; the
equipment of every result of the bundles (:mod:`monai_ext.dicom.identity`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from monai_ext.dicom.identity import new_object_attributes

__all__ = ["failure_sr", "write_failure_sr"]

_MAX_TEXT = 1024  # UT would take more; keep the SR small and readable


def failure_sr(
    sources: Sequence[Dataset], reason: str, bundle_name: str, bundle_version: str, series_number: int = 9901
) -> hd.sr.ComprehensiveSR:
    """The failure report of a series.

    Args:
        sources: the received instances (headers are enough), at least one, all of one study.
        reason: why processing failed (truncated to 1024 characters).
        bundle_name, bundle_version: the bundle metadata ``name`` and ``version``.
        series_number: SeriesNumber of the report. Defaults to 9901.

    Raises:
        ValueError: ``sources`` is empty; highdicom refuses the sources (e.g. several studies).
    """
    if not sources:
        raise ValueError("failure_sr needs at least one source instance to reference.")
    root = hd.sr.ContainerContentItem(name=codes.DCM.FailedAnalyses)
    has = hd.sr.RelationshipTypeValues.HAS_PROPERTIES
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    items = [
        hd.sr.TextContentItem(codes.DCM.AlgorithmName, bundle_name or "unknown", relationship_type=has),
        hd.sr.TextContentItem(codes.DCM.AlgorithmVersion, bundle_version or "unknown", relationship_type=has),
        hd.sr.TextContentItem(codes.DCM.Comment, (reason or "unknown")[:_MAX_TEXT], relationship_type=contains),
    ]
    for ds in sources:
        items.append(
            hd.sr.ImageContentItem(
                codes.DCM.SourceImageForImageProcessingOperation,
                referenced_sop_class_uid=ds.SOPClassUID,
                referenced_sop_instance_uid=ds.SOPInstanceUID,
                relationship_type=contains,
            )
        )
    root.ContentSequence = items
    return hd.sr.ComprehensiveSR(
        evidence=list(sources),
        content=root,
        is_complete=True,
        **new_object_attributes(
            bundle_name or "unknown", bundle_version or "unknown", series_number, f"{bundle_name} processing failed"
        ),
    )


def write_failure_sr(path: str | os.PathLike, *args, **kwargs) -> str:
    """Write :func:`failure_sr` ``(*args, **kwargs)`` to ``path``; return its SOPInstanceUID."""
    sr = failure_sr(*args, **kwargs)
    sr.save_as(path, enforce_file_format=True)
    return str(sr.SOPInstanceUID)
