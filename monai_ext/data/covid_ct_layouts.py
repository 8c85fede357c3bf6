# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Where the two COVID-19 CT releases keep their volumes and masks (MedSeg and Ma et al.; see
:mod:`monai_ext.data.covid_ct` for the datalist built from them).

Each finder returns one dict per volume: ``volume_id``, ``image`` and ``mask`` paths (masks under ``mask_root`` with
the release's relative paths), ``units`` (``"slice"`` for MedSeg Dataset 1, whose slices are split one by one,
``"volume"`` otherwise), ``patient_id`` for volumes, and ``hint``, the expected layout for error messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from monai_ext.data.datalist import DatasetLayoutError

__all__ = ["MEDSEG_LABELS", "MA_CASES", "MA_FOLDERS", "ma_case_name", "medseg_volumes", "ma_volumes"]

#: MedSeg mask values.
MEDSEG_LABELS = {"ggo": 1, "consolidation": 2, "effusion": 3}

#: case names of the Zenodo 3757476 release; every folder holds ``<case>.nii.gz`` under the same name.
MA_CASES = tuple(f"coronacases_{i:03d}" for i in range(1, 11)) + (
    "radiopaedia_4_85506_1",
    "radiopaedia_7_85703_0",
    "radiopaedia_10_85902_1",
    "radiopaedia_10_85902_3",
    "radiopaedia_14_85914_0",
    "radiopaedia_27_86410_0",
    "radiopaedia_29_86490_1",
    "radiopaedia_29_86491_1",
    "radiopaedia_36_86526_0",
    "radiopaedia_40_86625_0",
)

#: Ma et al. folders: images, and the mask folder of each mask source.
MA_FOLDERS = {
    "image": "COVID-19-CT-Seg_20cases",
    "infection": "Infection_Mask",
    "lung": "Lung_Mask",
    "lung_and_infection": "Lung_and_Infection_Mask",
}

_MEDSEG_LAYOUT = (
    "Expected MedSeg layout: <dataset_dir>/tr_im.nii.gz + tr_mask.nii.gz (Dataset 1) and "
    "<dataset_dir>/rp_im/<k>.nii.gz + rp_msk/<k>.nii.gz (Dataset 2); choose with medseg_sets."
)
_MA_LAYOUT = (
    "Expected Ma et al. (Zenodo 3757476) layout: <dataset_dir>/COVID-19-CT-Seg_20cases/<case>.nii.gz with "
    "<dataset_dir>/Infection_Mask/<case>.nii.gz or Lung_and_Infection_Mask/<case>.nii.gz, e.g. case "
    "'coronacases_001' or 'radiopaedia_4_85506_1'."
)
_MEDSEG_MASKS = "<mask_dir>/tr_mask.nii.gz and <mask_dir>/rp_msk/<k>.nii.gz."
_MA_MASKS = "<mask_dir>/Infection_Mask/<case>.nii.gz or <mask_dir>/Lung_and_Infection_Mask/<case>.nii.gz."
_NIFTI_SUFFIXES = (".nii.gz", ".nii")


def _stem(file_name: str) -> str:
    return next((file_name[: -len(s)] for s in _NIFTI_SUFFIXES if file_name.endswith(s)), file_name)


def ma_case_name(file_name: str) -> str:
    """Case name of a Ma et al. image or mask file.

    The Zenodo release names every file ``<case>.nii.gz``; the Kaggle mirror ("COVID-19 CT scans") names the images
    ``coronacases_org_001.nii`` and ``radiopaedia_org_covid-19-pneumonia-4_85506_1-dcm.nii``, which map to the
    cases ``coronacases_001`` and ``radiopaedia_4_85506_1``.
    """
    stem = _stem(file_name).replace("coronacases_org_", "coronacases_")
    match = re.fullmatch(r"radiopaedia_org_covid-19-pneumonia-(\d+_\d+_\d+)-dcm", stem)
    return f"radiopaedia_{match.group(1)}" if match else stem


def _ma_patient(case: str) -> str:
    """Radiopaedia cases ``<case>_<study>_<series>`` of the same case number come from the same patient."""
    match = re.fullmatch(r"radiopaedia_(\d+)_\d+_\d+", case)
    return f"radiopaedia_{match.group(1)}" if match else case


def _nifti_files(folder: Path, name_of: Callable[[str], str], hint: str) -> dict[str, Path]:
    """The NIfTI files of ``folder`` (none if it does not exist) by the name ``name_of(file name)`` they stand for.

    Raises:
        DatasetLayoutError: two files stand for one name (e.g. ``1.nii`` and ``1.nii.gz``, or ``coronacases_001.nii.gz``
            and the Kaggle spelling ``coronacases_org_001.nii``); both are named.
    """
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(p for p in folder.iterdir() if p.name.endswith(_NIFTI_SUFFIXES)):
        name = name_of(path.name)
        if name in found:
            raise DatasetLayoutError(
                f"'{found[name]}' and '{path}' are both the file of {name!r}; keep one of them. {hint}".rstrip()
            )
        found[name] = path
    return found


def _find_nifti(folder: Path, stem: str) -> Path:
    for suffix in _NIFTI_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return folder / f"{stem}.nii.gz"


def _mask_hint(mask_root: Path, root: Path, layout: str) -> str:
    if mask_root == root:
        return ""
    return f" Masks are read from mask_dir '{mask_root}' with the same relative paths: {layout}"


def medseg_volumes(root: Path, sets: Sequence[str], mask_root: Path) -> list[dict]:
    """MedSeg volumes of the parts ``sets`` (``"tr"``: Dataset 1, ``"rp"``: Dataset 2, by number).

    A Dataset 2 volume is every number with an image in ``rp_im/`` or a mask in ``rp_msk/``, so an image missing
    next to its mask is reported missing (by the caller's file check) instead of leaving the list.

    Raises:
        FileNotFoundError: the Dataset 2 folder is missing.
        DatasetLayoutError: two files of one folder stand for one volume (``1.nii`` and ``1.nii.gz``).
        ValueError: an entry of ``sets`` is neither ``"tr"`` nor ``"rp"``.
    """
    vols = []
    hint = _MEDSEG_LAYOUT + _mask_hint(mask_root, root, _MEDSEG_MASKS)
    for s in sets:
        if s == "tr":
            vols.append({"volume_id": "medseg/tr", "image": root / "tr_im.nii.gz"})
            vols[-1].update({"mask": _find_nifti(mask_root, "tr_mask"), "units": "slice"})
        elif s == "rp":
            folder = root / "rp_im"
            if not folder.is_dir():
                raise FileNotFoundError(f"MedSeg Dataset 2 folder not found: '{folder}'. {_MEDSEG_LAYOUT}")
            images = _nifti_files(folder, _stem, hint)
            masks = _nifti_files(mask_root / "rp_msk", _stem, hint)
            stems = sorted(set(images) | set(masks), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
            for k in stems:
                vols.append(
                    {
                        "volume_id": f"medseg/rp_{k}",
                        "image": images.get(k, folder / f"{k}.nii.gz"),
                        "mask": masks.get(k, mask_root / "rp_msk" / f"{k}.nii.gz"),
                        "patient_id": f"medseg_rp_{k}",
                        "units": "volume",
                    }
                )
        else:
            raise ValueError(f"medseg_sets entries must be 'tr' or 'rp', got {s!r}.")
    for v in vols:
        v["hint"] = hint
    return vols


def ma_volumes(root: Path, mask_source: str, mask_root: Path) -> list[dict]:
    """Ma et al. volumes by case name, masks from the ``MA_FOLDERS[mask_source]`` folder.

    A case is every name with an image or a mask, so an image missing next to its mask is reported missing (by the
    caller's file check) instead of leaving the list and shifting the folds.

    Raises:
        FileNotFoundError: the image folder is missing or holds no NIfTI file.
        DatasetLayoutError: two files of one folder stand for one case (e.g. ``coronacases_001.nii.gz`` and
            ``coronacases_org_001.nii``).
    """
    folder = root / MA_FOLDERS["image"]
    if not folder.is_dir():
        raise FileNotFoundError(f"Ma et al. image folder not found: '{folder}'. {_MA_LAYOUT}")
    hint = _MA_LAYOUT + _mask_hint(mask_root, root, _MA_MASKS)
    images = _nifti_files(folder, ma_case_name, hint)
    if not images:
        raise FileNotFoundError(f"no NIfTI volume in '{folder}'. {_MA_LAYOUT}")
    mask_dir = mask_root / MA_FOLDERS[mask_source]
    masks = _nifti_files(mask_dir, ma_case_name, hint)
    vols = []
    for case in sorted(set(images) | set(masks)):
        vols.append(
            {
                "volume_id": f"ma/{case}",
                "image": images.get(case, folder / f"{case}.nii.gz"),
                "mask": masks.get(case, mask_dir / f"{case}.nii.gz"),
                "patient_id": _ma_patient(case),
                "units": "volume",
                "hint": hint,
            }
        )
    return vols
