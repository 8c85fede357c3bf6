# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Label volumes from a MONAI Label datastore as the segmentation bundle's 2D slice datalist.

monailabel's ``BundleTrainTask`` hands a bundle ``{"image": volume, "label": label volume}`` items as
``train#dataset#data``. ``covid_ct_mombs_segmentation`` trains a 2D network on axial slices: its ``train#datalist``
is :func:`monai_ext.data.covid_ct.covid_ct_datalist` (one item per slice with ``index``, ``case_id``, ``z``, ...,
slices cached as 2D NIfTI files), which the MoMBS sampler, recorder and handler all read. So the volumes are staged
as a MedSeg "Dataset 2" folder (``rp_im/<k>.nii.gz``, ``rp_msk/<k>.nii.gz``, symbolic links) and read by that same
function, with the bundle's own ``label_map``: a MONAI Label label file holds 0 and the bundle's class values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_ext.data.covid_ct import covid_ct_datalist

__all__ = ["stage_medseg_volumes", "volume_slice_datalist"]

_NIFTI = (".nii.gz", ".nii")


def _suffix(path: Path) -> str:
    for s in _NIFTI:
        if path.name.endswith(s):
            return s
    raise ValueError(
        f"'{path}' is not a NIfTI file ({', '.join(_NIFTI)}); the segmentation trainer reads NIfTI image and label "
        "volumes (put NIfTI studies in the datastore)."
    )


def stage_medseg_volumes(items: Sequence[Mapping[str, str]], folder: str | os.PathLike) -> Path:
    """Link image/label volume pairs into a new MedSeg Dataset 2 folder: ``rp_im/<k>`` and ``rp_msk/<k>``, k = 1..n.

    Args:
        items: ``{"image": path, "label": path}`` per volume (MONAI Label's datalist).
        folder: a folder that must not exist yet (nothing is replaced).

    Returns:
        ``folder``.

    Raises:
        FileExistsError: ``folder`` exists.
        FileNotFoundError: an image or label file is missing (item index named).
        ValueError: no items, or a file is not NIfTI.
    """
    root = Path(folder)
    if not items:
        raise ValueError("no labelled volume to train on; save a final label for at least one image first.")
    links = []
    for k, item in enumerate(items, start=1):
        for key, sub in (("image", "rp_im"), ("label", "rp_msk")):
            src = Path(item[key]).absolute()
            if not src.is_file():
                raise FileNotFoundError(f"datalist item {k - 1}: {key} '{src}' does not exist.")
            links.append((src, Path(sub) / f"{k}{_suffix(src)}"))
    root.mkdir(parents=True, exist_ok=False)
    (root / "rp_im").mkdir()
    (root / "rp_msk").mkdir()
    for src, rel in links:
        os.symlink(src, root / rel)
    return root


def volume_slice_datalist(
    items: Sequence[Mapping[str, str]],
    work_dir: str | os.PathLike,
    label_map: Mapping[str, int | Sequence[int]],
) -> list[dict]:
    """The bundle's slice datalist (:func:`monai_ext.data.covid_ct.covid_ct_datalist`, ``split="all"``) of the
    volumes ``items``, staged under ``<work_dir>/volumes`` with slices under ``<work_dir>/slices``.

    Args:
        items: ``{"image", "label"}`` volume pairs.
        work_dir: a new folder for this datalist.
        label_map: the bundle's ``label_map`` (class name -> label value(s)).

    Raises:
        as :func:`stage_medseg_volumes` and :func:`~monai_ext.data.covid_ct.covid_ct_datalist` (e.g. a label value
        outside the MedSeg set {0, 1, 2, 3}, or a label of another shape than its image).
    """
    work = Path(work_dir)
    staged = stage_medseg_volumes(items, work / "volumes")
    return covid_ct_datalist(
        staged,
        layout="medseg",
        medseg_sets=("rp",),
        label_map=dict(label_map),
        slice_dir=work / "slices",
        split="all",
    )
