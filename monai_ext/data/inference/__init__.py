# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Inference datalists for every input kind: find the cases (radiograph files, or NIfTI volumes and DICOM series
folders), give each a stable case id, leave out the cases that already have a result, and set aside unreadable ones
(listed in ``skipped.csv``) before a batch inference run.

One mechanism with a kind parameter (:class:`InputKind` ``{"radiograph", "volume", "photograph",
"deeplesion_slices", "ct_detection"}``, resolved by :func:`case_kind` to a :class:`CaseKind`). The kind owns only what
really differs: which files or folders are cases and what a listed path must be
(:mod:`~monai_ext.data.inference.radiograph`, :mod:`~monai_ext.data.inference.volume`,
:mod:`~monai_ext.data.inference.photograph`, :mod:`~monai_ext.data.inference.deeplesion_slices`), the result file of a
case (``<case_id>.json``, ``<case_id>_seg.nii.gz`` or ``<case_id>/<case_id>_boxes.json``), and how a case is
read. Everything else is shared:

- :func:`inference_datalist` (:mod:`~monai_ext.data.inference.discovery`): a folder (recursive), a ``.txt`` list or
  listed paths, with unique filesystem-safe ids (:mod:`~monai_ext.data.inference.case_ids`);
- :func:`pending_cases` (:mod:`~monai_ext.data.inference.prepare`): the run is resumable. Results are written per
  case (:class:`monai_ext.handlers.prediction_writer.PredictionWriter`,
  :class:`monai_ext.handlers.mask_writer.SegmentationMaskWriter`, both at the kind's
  :meth:`CaseKind.result_path`, never overwriting one unless asked), so a rerun on the same inputs computes only the
  cases that have no result yet;
- :func:`check_readable` (:mod:`~monai_ext.data.inference.readability`): unreadable cases are found before the run.
  Both levels check that a file holds what its header promises where that is cheap (a DICOM's pixel data element
  present and long enough, :mod:`~monai_ext.data.inference.dicom_pixels`; an uncompressed ``.nii`` long enough for
  its shape), and a DICOM series' slice positions (:mod:`~monai_ext.data.inference.series_geometry`). With
  ``level="decode"`` each case is then read through MONAI's ``LoadImage`` with the reader of the pipeline, which
  also catches files whose header parses but whose pixel data is corrupt (compressed DICOM pixel data, a truncated
  ``.nii.gz``). They are logged and
  written to ``<output_dir>/skipped.csv`` (``case_id,image,error``, :func:`write_skipped`), never silently dropped;
- :func:`prepare_inference_datalist` chains the three steps in one call for a bundle's ``inference.json``, the
  first rank deciding under ``torch.distributed``.
"""

from __future__ import annotations

from monai_ext.data.inference.base import Case, CaseKind
from monai_ext.data.inference.case_ids import case_id_from_path
from monai_ext.data.inference.deeplesion_slices import CTDetectionKind, DeepLesionSliceReader, DeepLesionSlicesKind
from monai_ext.data.inference.discovery import inference_datalist
from monai_ext.data.inference.filetypes import NIFTI_SUFFIXES, RADIOGRAPH_SUFFIXES
from monai_ext.data.inference.kinds import InputKind, case_kind
from monai_ext.data.inference.photograph import PhotographKind
from monai_ext.data.inference.prepare import pending_cases, prepare_inference_datalist
from monai_ext.data.inference.radiograph import RadiographKind
from monai_ext.data.inference.readability import SKIPPED_CSV, ReadCheck, check_readable, split_readable, write_skipped
from monai_ext.data.inference.volume import VolumeKind

__all__ = [
    "InputKind",
    "case_kind",
    "Case",
    "CaseKind",
    "RadiographKind",
    "VolumeKind",
    "PhotographKind",
    "DeepLesionSlicesKind",
    "CTDetectionKind",
    "DeepLesionSliceReader",
    "RADIOGRAPH_SUFFIXES",
    "NIFTI_SUFFIXES",
    "SKIPPED_CSV",
    "ReadCheck",
    "case_id_from_path",
    "inference_datalist",
    "pending_cases",
    "check_readable",
    "split_readable",
    "write_skipped",
    "prepare_inference_datalist",
]
