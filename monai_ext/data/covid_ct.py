# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""COVID-19 CT infection segmentation readers: NIfTI volumes + masks -> one 2D item per axial slice.

Two public releases are read in their own layouts (``layout="medseg"`` or ``"ma"``):

* MedSeg "COVID-19 CT segmentation dataset" (medicalsegmentation.com/covid19): Dataset 1 = 100 axial slices from
  more than 40 patients (``tr_im.nii.gz``, 512 x 512 x 100, HU) with ``tr_mask.nii.gz`` (0 background, 1 ground-glass,
  2 consolidation, 3 pleural effusion); Dataset 2 = 9 Radiopaedia volumes (``rp_im/<k>.nii.gz`` with ``rp_msk/``,
  same labels).
* Ma et al., "COVID-19 CT Lung and Infection Segmentation Dataset" (Zenodo 10.5281/zenodo.3757476, CC BY-NC-SA;
  benchmark: Ma et al., "Towards Efficient COVID-19 CT Annotation: A Benchmark for Lung and Infection Segmentation",
  arXiv:2004.12537): 20 volumes (10 Coronacases in HU, 10 Radiopaedia windowed to [-1250, 250] HU and rescaled to
  [0, 255]) with ``Infection_Mask`` (0/1), ``Lung_Mask`` (1 left, 2 right lung) and ``Lung_and_Infection_Mask``
  (1 left lung, 2 right lung, 3 infection).

Loading a whole volume for every 2D sample would be wasteful, so every axial slice is written once as a 2D NIfTI
image/label pair under ``slice_dir`` (nibabel, with the volume's affine moved to that slice) and reused while the
source files and options are unchanged (:mod:`monai_ext.data.covid_ct_slices`). Masks may come from another root
(``mask_dir``: clean demo masks, corrected masks) in the same layout; where each release keeps its files is
:mod:`monai_ext.data.covid_ct_layouts`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path

import numpy as np
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.covid_ct_layouts import (
    MA_CASES,
    MA_FOLDERS,
    MEDSEG_LABELS,
    ma_case_name,
    ma_volumes,
    medseg_volumes,
)
from monai_ext.data.covid_ct_slices import load_or_write, num_slices
from monai_ext.data.datalist import DatasetLayoutError, assign_indices

__all__ = [
    "CovidLayout",
    "MaMaskSource",
    "CovidSplit",
    "EmptySlicePolicy",
    "EmptyVolumePolicy",
    "IntensityPolicy",
    "MEDSEG_LABELS",
    "MA_CASES",
    "MA_FOLDERS",
    "ma_case_name",
    "covid_ct_datalist",
]


class CovidLayout(StrEnum):
    """Which release's on-disk layout and label convention to read."""

    MEDSEG = "medseg"
    MA = "ma"


class MaMaskSource(StrEnum):
    """Ma et al. mask folder: ``Infection_Mask`` (values 0/1) or ``Lung_and_Infection_Mask`` (0-3)."""

    INFECTION = "infection"
    LUNG_AND_INFECTION = "lung_and_infection"


class CovidSplit(StrEnum):
    """Split selected by :func:`covid_ct_datalist`."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"
    ALL = "all"


class EmptySlicePolicy(StrEnum):
    """What to do with slices whose mapped mask is empty: keep them (``has_lesion`` False) or drop them."""

    KEEP = "keep"
    DROP = "drop"


class EmptyVolumePolicy(StrEnum):
    """What to do with a volume whose whole mapped mask is empty: keep or drop it with a warning, or raise."""

    KEEP = "keep"
    DROP = "drop"
    ERROR = "error"


class IntensityPolicy(StrEnum):
    """Volumes stored in [0, 255] (Ma's Radiopaedia cases): map back to HU, or keep the stored values."""

    TO_HU = "to_hu"
    KEEP = "keep"


def _opt(value: str | Enum) -> str:
    return value.value if isinstance(value, Enum) else value


def _resolve_label_map(label_map: Mapping[str, int | Sequence[int]], allowed: set[int], where: str) -> list:
    if not label_map:
        raise ValueError("label_map must map at least one class name to mask value(s).")
    resolved, seen = [], {}
    for name, values in label_map.items():
        vals = [int(values)] if isinstance(values, (int, np.integer)) else [int(v) for v in values]
        for v in vals:
            if v not in allowed:
                raise ValueError(f"label_map[{name!r}] uses mask value {v}, but {where} masks hold {sorted(allowed)}.")
            if v in seen:
                raise ValueError(f"mask value {v} is mapped to both {seen[v]!r} and {name!r} in label_map.")
            seen[v] = name
        resolved.append([str(name), sorted(vals)])
    return resolved


def _assign_splits(groups: list[str], num_folds: int, fold: int, val_fold: int, train_fraction: float, seed: int):
    """Shuffle patient groups with ``seed``, deal them round-robin into folds; keep a prefix of the training order."""
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    split_of = {}
    train = []
    for pos, g in enumerate(order):
        f = pos % num_folds
        split_of[g] = "test" if f == fold else "val" if f == val_fold else "train"
        if split_of[g] == "train":
            train.append(g)
    keep = math.ceil(train_fraction * len(train) - 1e-9)
    for g in train[max(keep, 1 if train else 0) :]:
        split_of[g] = None  # left out of the reduced training set
    return split_of


def _check_folds(num_folds: int, fold: int, val_fold: int | None, train_fraction: float) -> int:
    """Validate the fold settings; return ``val_fold`` with its default ``(fold + 1) % num_folds`` applied."""
    if num_folds < 3:
        raise ValueError(f"num_folds must be at least 3 (train, val and test folds), got {num_folds}.")
    val_fold = (fold + 1) % num_folds if val_fold is None else val_fold
    if not (0 <= fold < num_folds and 0 <= val_fold < num_folds) or val_fold == fold:
        raise ValueError(f"fold={fold} and val_fold={val_fold} must be distinct folds in [0, {num_folds}).")
    if not 0 < train_fraction <= 1:
        raise ValueError(f"train_fraction must lie in (0, 1], got {train_fraction}.")
    return val_fold


def _slice_options(
    layout: CovidLayout,
    ma_mask: MaMaskSource,
    label_map: Mapping[str, int | Sequence[int]] | None,
    unmapped_value: int,
    intensity: IntensityPolicy,
    windowed_range_hu: tuple[float, float],
) -> dict:
    """The slicer's options (:mod:`monai_ext.data.covid_ct_slices`): allowed mask values, resolved label map,
    intensity handling, and ``key``, the part that names the slice cache."""
    lo, hi = (float(v) for v in windowed_range_hu)
    if not hi > lo:
        raise ValueError(f"windowed_range_hu must be (low, high) with low < high, got {windowed_range_hu}.")

    if not 0 <= int(unmapped_value) <= 255:
        raise ValueError(f"unmapped_value must fit in uint8 [0, 255], got {unmapped_value}.")
    if layout == CovidLayout.MEDSEG:
        allowed, where, default_map = set(MEDSEG_LABELS.values()), "MedSeg", {"ggo": 1, "consolidation": 2}
    elif ma_mask == MaMaskSource.INFECTION:
        allowed, where, default_map = {1}, f"Ma et al. {MA_FOLDERS['infection']}", {"infection": 1}
    else:
        allowed, where, default_map = {1, 2, 3}, f"Ma et al. {MA_FOLDERS['lung_and_infection']}", {"infection": 3}
    resolved = _resolve_label_map(default_map if label_map is None else label_map, allowed, where)
    cache_key = {"label_map": resolved, "unmapped_value": int(unmapped_value), "intensity": intensity.value}
    cache_key["windowed_range_hu"] = [lo, hi]
    options = {"allowed": allowed, "label_map": resolved, "unmapped_value": int(unmapped_value), "key": cache_key}
    options.update({"to_hu": intensity == IntensityPolicy.TO_HU, "windowed_range_hu": (lo, hi)})
    return options


def _require_sources(volumes: list[dict]) -> None:
    """Raise unless every volume has its image and its mask.

    Raises:
        FileNotFoundError: counts the missing files, lists the first few and, for a file whose partner exists (an
            image without its mask or a mask without its image), names both.
    """
    missing = [str(p) for v in volumes for p in (v["image"], v["mask"]) if not p.is_file()]
    if not missing:
        return
    message = f"{len(missing)} COVID CT file(s) are missing, e.g. {missing[:3]}."
    for v in volumes:
        if v["image"].is_file() != v["mask"].is_file():
            present, absent = ("mask", "image") if v["mask"].is_file() else ("image", "mask")
            message += f" The {present} '{v[present]}' exists but its {absent} '{v[absent]}' does not."
            break
    raise FileNotFoundError(f"{message} {volumes[0]['hint']}")


def _split_units(volumes: list[dict], slice_root: Path, options: dict) -> list[tuple[int, int | None, str]]:
    """Splitting units (volume position, z or None, patient group); MedSeg Dataset 1 is split by slice."""
    units = []
    for pos, v in enumerate(volumes):
        if v["units"] == "slice":
            units += [(pos, z, f"medseg_tr_{z:03d}") for z in range(num_slices(v, slice_root, options))]
        else:
            units.append((pos, None, v["patient_id"]))
    return units


def _keep_volume(v: dict, manifest: dict, names: list[str], empty_volume: EmptyVolumePolicy) -> bool:
    """Apply ``empty_volume`` to a volume whose mapped mask is empty (raise, or warn and keep/drop)."""
    total = sum(sum(s["class_pixels"]) for s in manifest["slices"])
    if total == 0:
        if empty_volume == EmptyVolumePolicy.ERROR:
            raise DatasetLayoutError(f"mask '{v['mask']}' holds no pixel of the classes {names}.")
        action = "kept" if empty_volume == EmptyVolumePolicy.KEEP else "dropped"
        warnings.warn(
            f"mask '{v['mask']}' holds no pixel of the classes {names}; volume {action} "
            f"(empty_volume={empty_volume.value!r}).",
            stacklevel=3,  # the caller of covid_ct_datalist
        )
        if empty_volume == EmptyVolumePolicy.DROP:
            return False
    return True


def _slice_items(
    v: dict, out_dir: Path, manifest: dict, wanted: dict, names: list[str], empty_slices: EmptySlicePolicy
) -> list[dict]:
    """Datalist items of the ``wanted`` slices of one sliced volume (``wanted``: unit -> split)."""
    items = []
    for s in manifest["slices"]:
        z = s["z"]
        unit = z if v["units"] == "slice" else None
        if unit not in wanted:
            continue
        lesion = sum(s["class_pixels"])
        if lesion == 0 and empty_slices == EmptySlicePolicy.DROP:
            continue
        items.append(
            {
                "image": str(out_dir / f"image_z{z:04d}.nii.gz"),
                "label": str(out_dir / f"label_z{z:04d}.nii.gz"),
                "has_lesion": lesion > 0,
                "lesion_pixels": lesion,
                "class_pixels": list(s["class_pixels"]),
                "class_names": list(names),
                "z": z,
                "num_z": manifest["shape"][2],
                "volume_id": v["volume_id"],
                "source_image": str(v["image"]),
                "source_label": str(v["mask"]),
                "intensity_source": manifest["intensity_source"],
                "patient_id": f"medseg_tr_{z:03d}" if v["units"] == "slice" else v["patient_id"],
                "case_id": f"medseg/tr_z{z:03d}" if v["units"] == "slice" else v["volume_id"],
                "split": wanted[unit] or "train",
            }
        )
    return items


def covid_ct_datalist(
    dataset_dir: str | os.PathLike,
    layout: str | CovidLayout = CovidLayout.MEDSEG,
    label_map: Mapping[str, int | Sequence[int]] | None = None,
    slice_dir: str | os.PathLike | None = None,
    split: str | CovidSplit = CovidSplit.TRAIN,
    num_folds: int = 5,
    fold: int = 0,
    val_fold: int | None = None,
    train_fraction: float = 1.0,
    seed: int = 0,
    medseg_sets: Sequence[str] = ("tr", "rp"),
    ma_mask: str | MaMaskSource = MaMaskSource.INFECTION,
    empty_slices: str | EmptySlicePolicy = EmptySlicePolicy.KEEP,
    empty_volume: str | EmptyVolumePolicy = EmptyVolumePolicy.KEEP,
    intensity: str | IntensityPolicy = IntensityPolicy.TO_HU,
    windowed_range_hu: tuple[float, float] = (-1250.0, 250.0),
    unmapped_value: int = 0,
    mask_dir: str | os.PathLike | None = None,
    check_files: bool = True,
) -> list[dict]:
    """Read a COVID-19 CT segmentation release into a datalist of 2D axial slices.

    Layouts (``layout``)::

        medseg: <dataset_dir>/tr_im.nii.gz, tr_mask.nii.gz                    Dataset 1, 512 x 512 x 100, HU
                <dataset_dir>/rp_im/<k>.nii.gz, rp_msk/<k>.nii.gz            Dataset 2, 9 volumes
                (tr_lungmasks_updated.nii.gz, rp_lung_msk/, val_im.nii.gz are not read)
        ma:     <dataset_dir>/COVID-19-CT-Seg_20cases/<case>.nii.gz           20 volumes, see MA_CASES
                <dataset_dir>/Infection_Mask/<case>.nii.gz                    0/1        (ma_mask="infection")
                <dataset_dir>/Lung_and_Infection_Mask/<case>.nii.gz           0/1/2/3    (ma_mask="lung_and_infection")

    Ma image files named as in the Kaggle mirror (``coronacases_org_001.nii``,
    ``radiopaedia_org_covid-19-pneumonia-4_85506_1-dcm.nii``) are accepted too, see :func:`ma_case_name`.
    Masks are read from ``mask_dir`` (default ``dataset_dir``) under the same relative paths, e.g.
    ``<mask_dir>/rp_msk/<k>.nii.gz`` or ``<mask_dir>/Infection_Mask/<case>.nii.gz``: point it at the demo's clean
    masks (``<dataset_dir>/demo_clean``) or at corrected masks to evaluate against them.

    Labels: ``label_map`` maps output class names, in order, to source mask value(s); class ``k`` (1-based, in
    mapping order) is written as ``k``, background 0 stays 0, and any other non-zero source value becomes
    ``unmapped_value``. Defaults: MedSeg ``{"ggo": 1, "consolidation": 2}`` (multi-class; pleural effusion 3 ->
    background), Ma ``{"infection": 1}`` on ``Infection_Mask`` or ``{"infection": 3}`` on
    ``Lung_and_Infection_Mask``. A binary infection target from MedSeg is ``{"infection": (1, 2)}``.

    Slices: each volume is cut into axial slices ``[:, :, z]`` (array order as stored, no reorientation) written
    once to ``<slice_dir>/<layout>_<volume>-<hash>/image_z####.nii.gz`` and ``label_z####.nii.gz`` (uint8) with a
    ``manifest.json``; the hash covers the absolute image and mask paths (so masks from another ``mask_dir``
    get their own slices) and the options that change the output, and a slice set is rewritten when its
    source file size or modification time changes. Images are stored as int16 HU (nearest HU) with
    ``intensity="to_hu"``, float32 as read with ``"keep"``. A volume whose values all lie in [0, 255] (Ma's
    Radiopaedia cases) is taken as windowed to ``windowed_range_hu`` and rescaled: ``"to_hu"`` maps it back with
    ``HU = lo + v / 255 * (hi - lo)`` (Ma's README gives [-1250, 250]); items record ``intensity_source``
    (``"hu"`` or ``"window_0_255"``) either way.

    Splits are patient-level: patient groups are shuffled with ``numpy.random.default_rng(seed)`` and dealt
    round-robin into ``num_folds`` folds; fold ``fold`` is the test set, fold ``val_fold`` (default
    ``(fold + 1) % num_folds``) the validation set, the rest training. ``train_fraction`` keeps the first
    ``ceil(fraction * n)`` (at least 1) training groups in shuffled order, so 10 % of the training set is a subset
    of 50 %, which is a subset of 100 %. Groups: MedSeg Dataset 1 has no patient ids (100 slices from more than 40
    patients), so **each of its slices is its own group: the split is slice-level and slices of one patient can
    land in train and test**; MedSeg Dataset 2 volumes and Ma Coronacases are one patient each; Ma Radiopaedia
    cases sharing the case number (``radiopaedia_29_86490_1`` / ``_86491_1``, ``radiopaedia_10_85902_1`` /
    ``_3``) form one patient. The Ma benchmark's own 5-fold protocol (train on one fold, test on four) is not
    built in. Items are ordered by volume (MedSeg ``tr`` then ``rp`` by number; Ma by case name) and then ``z``.

    Args:
        dataset_dir: dataset root (``covid_medseg/`` or ``covid_ma/`` in the demo data).
        layout: ``"medseg"`` (default) or ``"ma"``.
        label_map: class name -> source mask value(s); ``None`` (default) gives the layout's default above.
        slice_dir: where the 2D slices are written; default ``<dataset_dir>/slices_2d``.
        split: ``"train"`` (default), ``"val"``, ``"test"`` or ``"all"`` (every item, ``train_fraction`` ignored).
        num_folds: number of folds (>= 3). Default 5.
        fold: test fold in ``[0, num_folds)``. Default 0.
        val_fold: validation fold, ``None`` (default) for ``(fold + 1) % num_folds``; must differ from ``fold``.
        train_fraction: fraction in (0, 1] of the training groups to keep. Default 1.0.
        seed: seed of the patient shuffle. Default 0.
        medseg_sets: MedSeg parts to read, subset of ``("tr", "rp")``. Default both.
        ma_mask: Ma mask folder, ``"infection"`` (default) or ``"lung_and_infection"``.
        empty_slices: ``"keep"`` (default; items carry ``has_lesion`` False) or ``"drop"``.
        empty_volume: volume whose mapped mask is empty everywhere: ``"keep"`` (default, with a warning),
            ``"drop"`` (with a warning) or ``"error"``.
        intensity: ``"to_hu"`` (default) or ``"keep"`` for [0, 255] volumes, see above.
        windowed_range_hu: (low, high) HU window of the [0, 255] volumes. Default (-1250, 250).
        unmapped_value: output value of non-zero source values absent from ``label_map``. Default 0 (background);
            e.g. 255 to mark them for an ignore index.
        mask_dir: root of the masks, holding the layout's mask paths relative to it (see above); ``None``
            (default) for ``dataset_dir``.
        check_files: ``True`` (default) requires every source volume and mask and rewrites stale slices; ``False``
            uses an existing slice cache even when its sources are gone.

    Returns:
        list of dicts: ``image`` / ``label`` (absolute paths of the 2D NIfTI slice and its uint8 mask, X x Y),
        ``has_lesion`` (bool), ``lesion_pixels`` (int), ``class_pixels`` (pixels per class, in ``label_map``
        order), ``class_names``, ``z``, ``num_z``, ``volume_id``, ``source_image``, ``source_label``,
        ``intensity_source``, ``patient_id``, ``case_id``, ``split`` and ``index``. ``case_id`` (str) names the
        unit a per-case metric pools slices over (e.g. 3D Dice): ``volume_id`` for volumes (MedSeg Dataset 2, Ma
        cases) and ``"medseg/tr_z###"`` (e.g. ``"medseg/tr_z007"``) for each MedSeg Dataset 1 slice, its own case
        as in the split.

    Raises:
        FileNotFoundError: a source volume or mask (under ``mask_dir``) is missing (the message counts them, lists
            the first few, names an image or mask found without its partner, and gives the expected layout). A
            volume is any name with an image or a mask, so an image missing next to its mask is an error, never a
            volume left out.
        DatasetLayoutError: a mask whose shape differs from its image (both files and shapes named), a mask with
            values outside the layout's label set, a volume or mask holding NaN or infinite values (file and counts
            named), two files standing for one volume (``1.nii`` and ``1.nii.gz``, or a Ma case under two
            spellings; both named), or (``empty_volume="error"``) an empty mask.
        ValueError: an unknown option, a label map using values the masks cannot hold, bad fold settings.
    """
    layout = look_up_option(_opt(layout), CovidLayout)
    split = look_up_option(_opt(split), CovidSplit)
    ma_mask = look_up_option(_opt(ma_mask), MaMaskSource)
    empty_slices = look_up_option(_opt(empty_slices), EmptySlicePolicy)
    empty_volume = look_up_option(_opt(empty_volume), EmptyVolumePolicy)
    intensity = look_up_option(_opt(intensity), IntensityPolicy)
    val_fold = _check_folds(num_folds, fold, val_fold, train_fraction)
    options = _slice_options(layout, ma_mask, label_map, unmapped_value, intensity, windowed_range_hu)

    root = Path(dataset_dir).absolute()
    mask_root = root if mask_dir is None else Path(mask_dir).absolute()
    if layout == CovidLayout.MEDSEG:
        volumes = medseg_volumes(root, medseg_sets, mask_root)
    else:
        volumes = ma_volumes(root, ma_mask.value, mask_root)
    if check_files:
        _require_sources(volumes)

    slice_root = Path(slice_dir).absolute() if slice_dir is not None else root / "slices_2d"
    units = _split_units(volumes, slice_root, options)
    split_of = _assign_splits(sorted({u[2] for u in units}), num_folds, fold, val_fold, train_fraction, seed)
    if split != CovidSplit.ALL and split.value not in split_of.values():
        warnings.warn(
            f"the {split.value!r} split is empty: {len(split_of)} patient group(s) dealt into {num_folds} folds "
            f"(fold={fold}, val_fold={val_fold}); use fewer folds or more cases.",
            stacklevel=2,
        )

    names = [name for name, _ in options["label_map"]]
    items = []
    for pos, v in enumerate(volumes):
        wanted = {u[1]: split_of[u[2]] for u in units if u[0] == pos}
        if split != CovidSplit.ALL:
            wanted = {z: s for z, s in wanted.items() if s == split.value}
        if not wanted:
            continue
        out_dir, manifest = load_or_write(v, slice_root, options, check_files)
        if _keep_volume(v, manifest, names, empty_volume):
            items += _slice_items(v, out_dir, manifest, wanted, names, empty_slices)
    return assign_indices(items)
