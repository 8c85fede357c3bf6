# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Axial slice cache of the COVID-19 CT readers: one 3D volume + mask -> 2D NIfTI slice pairs and a manifest.

:func:`monai_ext.data.covid_ct.covid_ct_datalist` describes each source volume as a dict (``volume_id``, ``image``
and ``mask`` absolute paths, ``hint`` = the expected layout for error messages) and its output options as a dict
(``allowed`` mask values, resolved ``label_map``, ``unmapped_value``, ``to_hu``, ``windowed_range_hu`` and ``key``,
the JSON-able subset that changes the written slices). This module writes every axial slice ``[:, :, z]`` once as
``image_z####.nii.gz`` / ``label_z####.nii.gz`` (nibabel, the volume's affine moved to that slice) with a
``manifest.json`` and reuses them while the source files and options are unchanged. A volume or mask holding NaN
or infinite values is refused (:mod:`monai_ext.transforms.finite`), never written with 0 in their place.

The cache folder is ``<slice_root>/<volume_id with / -> _>-<digest>``; the digest covers the absolute paths of the
image and the mask and the output options, so two mask roots (e.g. noisy training masks and the demo's
``demo_clean/`` masks, or corrected masks) never share a folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np

from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.transforms.finite import nonfinite_summary

__all__ = ["CACHE_VERSION", "cache_dir", "load_or_write", "num_slices", "slice_affine", "spatial_shape"]

logger = logging.getLogger(__name__)

#: version of the manifest / slice format; a manifest of another version is rewritten. 2: volumes and masks with
#: NaN or infinite values are rejected (version 1 wrote NaN as 0), so older caches are checked again.
CACHE_VERSION = 2


def _stat(path: Path) -> list:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def spatial_shape(path: Path) -> tuple[int, ...]:
    """Shape of a NIfTI file from its header, trailing singleton dimensions (beyond 3) dropped."""
    shape = tuple(int(s) for s in nib.load(str(path)).shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def slice_affine(affine: np.ndarray, z: int) -> np.ndarray:
    """``4 x 4`` affine of the 2D slice ``[:, :, z]``: the volume's, with the origin moved to voxel ``(0, 0, z)``."""
    out = np.array(affine, dtype=np.float64, copy=True)
    out[:3, 3] = affine[:3, :3] @ np.array([0.0, 0.0, float(z)]) + affine[:3, 3]
    return out


def _write_slices(vol: dict, out_dir: Path, options: dict) -> dict:
    """Read one volume + mask, map the labels, write every axial slice as 2D NIfTI, return the manifest."""
    image_path, mask_path = vol["image"], vol["mask"]
    img_shape, msk_shape = spatial_shape(image_path), spatial_shape(mask_path)
    if img_shape != msk_shape:
        raise DatasetLayoutError(
            f"mask '{mask_path}' has shape {msk_shape} but its image '{image_path}' has shape {img_shape}."
        )
    if len(img_shape) != 3:
        raise DatasetLayoutError(f"'{image_path}' has shape {img_shape}; expected a 3D volume (X, Y, Z).")
    nii = nib.load(str(image_path))
    image = np.asanyarray(nii.dataobj).reshape(img_shape).astype(np.float32)
    raw = np.asanyarray(nib.load(str(mask_path)).dataobj).reshape(msk_shape)
    for path, values in ((image_path, image), (mask_path, raw)):
        problem = nonfinite_summary(values)
        if problem is not None:
            raise DatasetLayoutError(
                f"'{path}' holds {problem}; such voxels have no HU value or label (cast to integers they would "
                "become 0: water, or background). Fix the file (e.g. replace them with a value you choose) or leave "
                f"the volume out. {vol['hint']}"
            )
    mask = (np.rint(raw) if raw.dtype.kind == "f" else raw).astype(np.int16)
    found = set(np.unique(mask).tolist())
    if not found <= options["allowed"] | {0}:
        raise DatasetLayoutError(
            f"mask '{mask_path}' holds values {sorted(found)}; expected a subset of {sorted(options['allowed'] | {0})}."
        )
    target = np.where(mask == 0, 0, options["unmapped_value"]).astype(np.uint8)
    for k, (_, values) in enumerate(options["label_map"], start=1):
        target[np.isin(mask, values)] = k
    num_classes = len(options["label_map"])
    windowed = bool(image.min() >= 0 and image.max() <= 255)
    if windowed and options["to_hu"]:
        lo, hi = options["windowed_range_hu"]
        image = lo + image / 255.0 * (hi - lo)
    image_out = np.clip(np.rint(image), -32768, 32767).astype(np.int16) if options["to_hu"] else image
    out_dir.mkdir(parents=True, exist_ok=True)
    slices = []
    for z in range(img_shape[2]):
        affine = slice_affine(nii.affine, z)
        nib.save(nib.Nifti1Image(image_out[:, :, z], affine), str(out_dir / f"image_z{z:04d}.nii.gz"))
        nib.save(nib.Nifti1Image(target[:, :, z], affine), str(out_dir / f"label_z{z:04d}.nii.gz"))
        counts = np.bincount(target[:, :, z].ravel(), minlength=max(num_classes + 1, 1))
        class_pixels = [int(c) for c in counts[1 : num_classes + 1]]
        slices.append({"z": z, "class_pixels": class_pixels})
    manifest = {
        "version": CACHE_VERSION,
        "sources": [_stat(image_path), _stat(mask_path)],
        "options": options["key"],
        "shape": list(img_shape),
        "intensity_source": "window_0_255" if windowed else "hu",
        "slices": slices,
    }
    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, out_dir / "manifest.json")
    return manifest


def cache_dir(vol: dict, slice_root: Path, options: dict) -> Path:
    """``<slice_root>/<volume_id with / -> _>-<sha1 of the image and mask absolute paths and options["key"]>``."""
    identity = [str(Path(vol["image"]).absolute()), str(Path(vol["mask"]).absolute()), options["key"]]
    digest = hashlib.sha1(json.dumps(identity).encode()).hexdigest()[:8]
    return slice_root / f"{vol['volume_id'].replace('/', '_')}-{digest}"


def num_slices(vol: dict, slice_root: Path, options: dict) -> int:
    """Number of axial slices, from the image's NIfTI header, else from an existing slice cache.

    Raises:
        FileNotFoundError: the image is missing and has no slice cache.
    """
    if vol["image"].is_file():
        return spatial_shape(vol["image"])[-1]
    manifest = cache_dir(vol, slice_root, options) / "manifest.json"
    if manifest.is_file():
        return int(json.loads(manifest.read_text())["shape"][-1])
    raise FileNotFoundError(f"COVID CT volume '{vol['image']}' is missing and has no slice cache. {vol['hint']}")


def load_or_write(vol: dict, slice_root: Path, options: dict, check_files: bool) -> tuple[Path, dict]:
    """Slice folder and manifest of ``vol``: reused when fresh, else (re)written from the sources.

    A cache is fresh when its manifest has the current version and options, all its slice files exist and, if the
    sources exist, their paths, sizes and modification times are unchanged; with ``check_files`` the sources must
    exist for a cache to count as fresh.

    Raises:
        FileNotFoundError: no fresh cache and the image or mask is missing (both paths and ``vol["hint"]`` named).
        DatasetLayoutError: as written by the slicer (shape mismatch, unexpected mask values, NaN or infinite
            values in the volume or mask).
    """
    out_dir = cache_dir(vol, slice_root, options)
    manifest_path = out_dir / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        sources_present = vol["image"].is_file() and vol["mask"].is_file()
        fresh = manifest.get("version") == CACHE_VERSION and manifest.get("options") == options["key"]
        if sources_present:
            fresh = fresh and manifest.get("sources") == [_stat(vol["image"]), _stat(vol["mask"])]
        elif check_files:
            fresh = False
        files_ok = all(
            (out_dir / f"{kind}_z{s['z']:04d}.nii.gz").is_file()
            for s in manifest["slices"]
            for kind in ("image", "label")
        )
        if fresh and files_ok:
            return out_dir, manifest
    if not (vol["image"].is_file() and vol["mask"].is_file()):
        raise FileNotFoundError(
            f"COVID CT volume '{vol['image']}' or mask '{vol['mask']}' is missing and no up-to-date slice cache "
            "(current version and options) exists under "
            f"'{out_dir}'. {vol['hint']}"
        )
    logger.info("writing axial slices of %s to %s", vol["image"], out_dir)
    return out_dir, _write_slices(vol, out_dir, options)
