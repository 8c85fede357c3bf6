# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Demo COVID-19 CT segmentation datasets in the two real layouts (MedSeg and Ma et al.), with mask label noise.

Chest slices come from :class:`monai_ext.demo.ct.BodyPhantom`. COVID-19 findings are drawn the way they look
on CT: ground-glass opacity (GGO, -700..-500 HU) and consolidation (-100..50 HU, often the core of a GGO patch)
as irregular peripheral, posterior- and basal-predominant patches inside the lungs; pleural effusion (0..20 HU)
as a dependent crescent at the posterior lung base (MedSeg layout only, outside the lung mask).

Training masks carry realistic annotation noise, because MoMBS (Li, Han, Zhou, arXiv 2505.18741) is benchmarked
against it: each lesion is independently left out (``missing``), under-drawn (``erode``: 2D erosion per slice),
over-drawn (``dilate``, within the thoracic cavity) or, MedSeg layout only, given the other class (``wrong_class``:
GGO and consolidation swapped) at configurable rates. Optionally a minority of MedSeg Dataset 1 slices hold
under-represented lesions (``tiny`` or ``low_contrast``, column ``appearance`` of the noise record). The clean
masks are kept under
``demo_clean/`` (same relative paths) and every lesion is listed in ``demo_mask_noise.csv``; neither is part of
the real layouts.

NIfTI conventions: arrays are ``x y z`` (x = image column, patient right -> left; y = image row, anterior ->
posterior; z = slice, inferior -> superior) with affine ``diag(-dx, -dy, dz)`` (a DICOM LPS grid in RAS
coordinates); masks are uint8; lung masks use 1 = left lung, 2 = right lung (Ma et al.'s convention, assumed for
MedSeg too).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from monai_ext.demo.ct import BodyPhantom, tissue_code, window_to_uint8

__all__ = [
    "MA_CORONACASES",
    "MA_RADIOPAEDIA",
    "MASK_NOISE_HEADER",
    "CORRUPTIONS",
    "APPEARANCES",
    "write_covid_medseg_demo",
    "write_covid_ma_demo",
]

#: Coronacases file names of the Zenodo release 3757476 (``COVID-19-CT-Seg_20cases`` and the mask folders
#: use the same names), HU volumes.
MA_CORONACASES = tuple(f"coronacases_{k:03d}" for k in range(1, 11))
#: Radiopaedia file names of the same release, volumes windowed to [-1250, 250] HU and rescaled to [0, 255].
MA_RADIOPAEDIA = (
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

#: header of ``demo_mask_noise.csv``: one row per lesion of a noisy mask; voxel index ranges are inclusive,
#: in the NIfTI array order (i = x, j = y, k = slice) and bound the clean lesion.
MASK_NOISE_HEADER = [
    "mask",
    "lesion",
    "label",
    "corruption",
    "i_first",
    "i_last",
    "j_first",
    "j_last",
    "k_first",
    "k_last",
    "voxels_clean",
    "voxels_noisy",
    "appearance",
]
#: ``corruption`` values of ``demo_mask_noise.csv``: ``none`` or one kind per lesion; ``wrong_class`` swaps GGO (1)
#: and consolidation (2) within the lesion (invisible to a binary infection target).
CORRUPTIONS = ("none", "missing", "erode", "dilate", "wrong_class")
#: ``appearance`` values: ``typical`` lesions; ``tiny`` (radius 2-4 % of the image side instead of 5-14 %) and
#: ``low_contrast`` (GGO -810..-770 HU, consolidation -450..-350 HU, against lung -860 HU) on a minority of slices.
APPEARANCES = ("typical", "tiny", "low_contrast")

GGO, CONSOLIDATION, EFFUSION = 1, 2, 3
_LUNG_R, _LUNG_L = tissue_code("lung_right"), tissue_code("lung_left")


def _lesions(
    rng, organs: np.ndarray, n: int, z_ratio: float, effusion: bool, appearance: str = "typical"
) -> tuple[np.ndarray, list, np.ndarray]:
    """Place ``n`` COVID lesions (and optionally an effusion) in the lungs of ``organs`` (``Z H W``).

    ``z_ratio`` = slice interval / pixel size; ``appearance`` one of :data:`APPEARANCES` for every lesion. Returns
    the clean label volume (0/1/2/3), the lesions as ``(bounding-box slices, cropped mask, label, appearance)``
    (the effusion is ``typical``) and the stacked per-voxel target HU and blending weight.
    """
    r_range, min_voxels = ((0.02, 0.04), 3) if appearance == "tiny" else ((0.05, 0.14), 6)
    z, h, w = organs.shape
    lung = (organs == _LUNG_R) | (organs == _LUNG_L)
    labels = np.zeros(organs.shape, np.uint8)
    target = np.zeros(organs.shape, np.float32)
    weight = np.zeros(organs.shape, np.float32)
    found: list[tuple[tuple[slice, ...], np.ndarray, int]] = []
    if effusion:
        side = rng.choice([_LUNG_R, _LUNG_L, -1], p=[0.4, 0.3, 0.3])
        thick = rng.uniform(0.04, 0.1) * h
        for k in range(z):
            for code in (_LUNG_R, _LUNG_L) if side == -1 else (side,):
                m = organs[k] == code
                rows = np.nonzero(m.any(axis=1))[0]
                if rows.size == 0:
                    continue
                frac = 1.0 - k / max(z - 1, 1)  # slice 0 is the most inferior: thickest at the base
                sub = m & (np.arange(h)[:, None] > rows.max() - thick * frac**1.5)
                labels[k][sub] = EFFUSION
                target[k][sub] = rng.uniform(0, 20)
                weight[k][sub] = 1.0
        if (labels == EFFUSION).any():
            found.append(_crop(labels == EFFUSION) + (EFFUSION, "typical"))
    free = lung & (labels == 0)
    # peripheral (subpleural) candidates: within 7 % of the image side from the lung border, in-plane
    periph = np.stack([ndimage.distance_transform_edt(f) <= 0.07 * h for f in free]) & free
    kk, yy, xx = np.nonzero(periph)
    if kk.size == 0 or n == 0:
        return labels, found, np.stack([target, weight])
    p = np.exp(2.0 * yy / h + 1.5 * (1 - kk / max(z - 1, 1)))  # posterior and basal predominance
    p /= p.sum()
    field = ndimage.gaussian_filter(rng.standard_normal(organs.shape).astype(np.float32), (2.0 / z_ratio, 3, 3))
    field /= max(float(field.std()), 1e-6)
    forbidden = ndimage.binary_dilation(labels > 0, iterations=3)
    n_found = 0
    for _ in range(n * 6):
        if n_found == n:
            break
        j = rng.choice(kk.size, p=p)
        c = (kk[j], yy[j], xx[j])
        r = rng.uniform(*r_range) * h
        radii = (max(r * rng.uniform(0.5, 1.1) / z_ratio, 0.6), r * rng.uniform(0.7, 1.3), r * rng.uniform(0.7, 1.3))
        sl = tuple(
            slice(max(int(cc - 2 * rr) - 1, 0), min(int(cc + 2 * rr) + 2, dim))
            for cc, rr, dim in zip(c, radii, organs.shape)
        )
        grid = np.ogrid[sl]
        f = np.sqrt(sum(((g - cc) / rr) ** 2 for g, cc, rr in zip(grid, c, radii))) + 0.35 * field[sl]
        region = (f < 1.0) & lung[sl]
        if region.sum() < min_voxels or (region & forbidden[sl]).any():
            continue
        kind = rng.choice(["ggo", "mixed", "consolidation"], p=[0.5, 0.35, 0.15])
        hu_ggo, hu_cons = rng.uniform(-700, -500), rng.uniform(-100, 50)
        if appearance == "low_contrast":
            hu_ggo, hu_cons = -790 + (hu_ggo + 600) / 5, -400 + (hu_cons + 25) * 2 / 3  # same draws, rescaled
        core = region & (f < (0.55 if kind == "mixed" else 1.0 if kind == "consolidation" else -1.0))
        labels[sl][region] = GGO
        labels[sl][core] = CONSOLIDATION
        soft = np.clip((1.1 - f) / 0.4, 0.0, 1.0) * lung[sl]
        upd = soft > weight[sl]
        target[sl][upd] = hu_ggo if kind != "consolidation" else hu_cons
        weight[sl][upd] = soft[upd]
        target[sl][core] = hu_cons
        weight[sl][core] = 1.0
        full = np.zeros(organs.shape, bool)
        full[sl] = region
        found.append(_crop(full) + (CONSOLIDATION if kind == "consolidation" else GGO, appearance))
        big = (slice(sl[0].start, sl[0].stop),) + tuple(slice(max(q.start - 6, 0), q.stop + 6) for q in sl[1:])
        forbidden[big] |= ndimage.binary_dilation(full[big], iterations=6)
        n_found += 1
    return labels, found, np.stack([target, weight])


def _ct_case(
    rng,
    size: int,
    n_slices: int,
    t_range: tuple[float, float],
    n_lesions: int,
    effusion: bool,
    px_mm: float,
    z_mm: float,
    noise_hu: float,
    independent: bool,
    appearance_rates: tuple[float, float] = (0.0, 0.0),
    appearance: str = "typical",
) -> dict[str, np.ndarray]:
    """One chest CT (``Z H W``): HU, clean labels, lung mask (1 left, 2 right) and the lesion list.

    ``independent`` makes every slice a different patient (MedSeg's 100-slice set) with its own lesions; then
    ``appearance_rates`` = (tiny, low contrast) are the shares of slices whose lesions are all ``tiny`` or all
    ``low_contrast`` (drawn only when one is > 0, so the default draws the same random numbers as before).
    ``appearance`` applies to every lesion of a non-independent case.
    """
    if independent:
        ts = rng.uniform(*t_range, n_slices)
        ns = rng.choice([0, 1, 2, 3, 4], n_slices, p=[0.15, 0.3, 0.25, 0.2, 0.1])
        looks = ["typical"] * n_slices
        if any(appearance_rates):
            p_tiny, p_low = appearance_rates
            looks = list(rng.choice(list(APPEARANCES), n_slices, p=[1 - p_tiny - p_low, p_tiny, p_low]))
        parts = [
            _ct_case(
                rng, size, 1, (t, t), int(n), effusion and rng.random() < 0.3, px_mm, z_mm, noise_hu, False,
                appearance=str(look),
            )
            for t, n, look in zip(ts, ns, looks)
        ]  # fmt: skip
        out = {key: np.concatenate([p[key] for p in parts]) for key in ("hu", "labels", "lungs")}
        out["lesions"] = [
            ((slice(k, k + 1),) + sl[1:], sub, label, look)
            for k, part in enumerate(parts)
            for sl, sub, label, look in part["lesions"]
        ]
        return out
    phantom = BodyPhantom.random(rng, size)
    ts = np.linspace(t_range[1], t_range[0], n_slices)  # slice 0 is inferior
    organs = np.stack([phantom.organ_map(t) for t in ts])
    labels, lesions, (target, weight) = _lesions(rng, organs, n_lesions, z_mm / px_mm, effusion, appearance)
    hu = np.empty(organs.shape, np.float32)
    for k, t in enumerate(ts):

        def overlay(img, _organs, k=k):
            wk = weight[k]
            tex = rng.normal(0.0, 25.0, img.shape).astype(np.float32)
            img[...] = np.where(wk > 0, img * (1 - wk) + (target[k] + tex) * wk, img)

        hu[k] = phantom.render(t, rng, noise_hu, overlay=overlay, organs=organs[k])[0]
    lungs = np.where(organs == _LUNG_L, 1, np.where(organs == _LUNG_R, 2, 0)).astype(np.uint8)
    lungs[labels == EFFUSION] = 0
    return {"hu": hu, "labels": labels, "lungs": lungs, "lesions": lesions}


def _crop(region: np.ndarray, pad: int = 8) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Bounding box of ``region`` (``Z H W``) padded in-plane by ``pad`` and the cropped mask."""
    k, y, x = np.nonzero(region)
    h, w = region.shape[1:]
    sl = (
        slice(k.min(), k.max() + 1),
        slice(max(y.min() - pad, 0), min(y.max() + pad + 1, h)),
        slice(max(x.min() - pad, 0), min(x.max() + pad + 1, w)),
    )
    return sl, region[sl]


def _corrupt(rng, labels: np.ndarray, lesions: list, rates: dict[str, float], radius: int, allowed: np.ndarray):
    """Apply per-lesion annotation noise; returns the noisy labels and one record per lesion."""
    noisy = labels.copy()
    ball = np.zeros((1, 2 * radius + 1, 2 * radius + 1), bool)
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    ball[0] = xx**2 + yy**2 <= radius**2
    records = []
    for sl, region, label, look in lesions:
        u = rng.random()
        kind = "none"
        for name in CORRUPTIONS[1:]:
            if u < rates[name]:
                kind = name
                break
            u -= rates[name]
        if kind == "wrong_class" and label not in (GGO, CONSOLIDATION):
            kind = "none"  # an effusion has no other class to be confused with
        out = noisy[sl]
        if kind == "missing":
            out[region] = 0
        elif kind == "erode":
            out[region & ~ndimage.binary_erosion(region, ball)] = 0
        elif kind == "dilate":
            out[ndimage.binary_dilation(region, ball) & (labels[sl] == 0) & allowed[sl]] = label
        elif kind == "wrong_class":
            clean = labels[sl]
            out[region & (clean == GGO)] = CONSOLIDATION
            out[region & (clean == CONSOLIDATION)] = GGO
        records.append((sl, region, label, kind, look))
    return noisy, records


def _save(path: Path, data_zhw: np.ndarray, spacing: tuple[float, float, float], dtype) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    img = nib.Nifti1Image(np.ascontiguousarray(data_zhw.transpose(2, 1, 0)).astype(dtype), affine)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))


def _rates(
    missing_rate: float, erode_rate: float, dilate_rate: float, noise_radius: int, wrong_class_rate: float = 0.0
) -> dict[str, float]:
    rates = {"missing": missing_rate, "erode": erode_rate, "dilate": dilate_rate, "wrong_class": wrong_class_rate}
    if min(rates.values()) < 0 or sum(rates.values()) > 1:
        raise ValueError(f"mask noise rates must be >= 0 and sum to at most 1, got {rates}.")
    if not 1 <= noise_radius <= 4:  # lesions are cropped with an 8-pixel margin and kept 6 pixels apart
        raise ValueError(f"noise_radius must lie in [1, 4] pixels, got {noise_radius}.")
    return rates


def _noise_rows(rel: str, labels: np.ndarray, noisy: np.ndarray, records: list) -> list[list]:
    rows = []
    for j, (sl, region, label, kind, look) in enumerate(records):
        k, y, x = np.nonzero(region)
        near = ndimage.binary_dilation(region, np.ones((1, 3, 3), bool), iterations=4)
        x0, y0, k0 = sl[2].start, sl[1].start, sl[0].start
        rows.append(
            [
                rel,
                j,
                label,
                kind,
                x0 + x.min(),
                x0 + x.max(),
                y0 + y.min(),
                y0 + y.max(),
                k0 + k.min(),
                k0 + k.max(),
                int((labels[sl][near] > 0).sum()),
                int((noisy[sl][near] > 0).sum()),
                look,
            ]
        )
    return rows


def write_covid_medseg_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 128,
    missing_rate: float = 0.1,
    erode_rate: float = 0.15,
    dilate_rate: float = 0.15,
    noise_radius: int = 2,
    noise_hu: float = 15.0,
    wrong_class_rate: float = 0.0,
    tiny_rate: float = 0.0,
    low_contrast_rate: float = 0.0,
    n_slices: int | None = None,
    n_volumes: int | None = None,
) -> dict[str, Any]:
    """Write a demo of the MedSeg "COVID-19 CT segmentation dataset" (medicalsegmentation.com/covid19).

    Layout (real names; ``demo_*`` entries are the demo's ground truth)::

        root/tr_im.nii.gz                  image_size^2 x N HU (float32), N = 100 * size independent slices
        root/tr_mask.nii.gz                0 background, 1 GGO, 2 consolidation, 3 pleural effusion (noisy)
        root/tr_lungmasks_updated.nii.gz   1 left lung, 2 right lung
        root/val_im.nii.gz                 10 * size unlabelled slices
        root/rp_im/<k>.nii.gz              k = 1..K Radiopaedia-like volumes (HU, int16), K = 3 * size
        root/rp_msk/<k>.nii.gz             labels as tr_mask (noisy)
        root/rp_lung_msk/<k>.nii.gz        1 left lung, 2 right lung
        root/demo_clean/tr_mask.nii.gz, root/demo_clean/rp_msk/<k>.nii.gz   clean masks
        root/demo_mask_noise.csv           one row per lesion, header MASK_NOISE_HEADER

    About 15 % of the training slices hold no lesion. ``voxels_clean``/``voxels_noisy`` in the noise record count
    labelled voxels within 4 pixels (in-plane) of the clean lesion.

    Args:
        root: dataset folder (created), e.g. ``demo_data/covid_medseg``.
        size: scale of the number of slices and volumes. Default 1.0.
        seed: seed of ``numpy.random.default_rng``. Default 0.
        image_size: slice side in pixels (real 512; Radiopaedia volumes use 3/4 of it). Default 128.
        missing_rate, erode_rate, dilate_rate: per-lesion probabilities of each corruption. Defaults 0.1, 0.15,
            0.15; all 0 writes clean masks.
        noise_radius: erosion / dilation radius in pixels (2D disk per slice), 1-4. Default 2.
        noise_hu: CT noise standard deviation in HU. Default 15.
        wrong_class_rate: per-lesion probability that GGO and consolidation are swapped within the lesion (a
            wrong-class annotation; effusions keep their label). Default 0.
        tiny_rate, low_contrast_rate: shares of the Dataset 1 slices whose lesions are all tiny / all low-contrast
            (:data:`APPEARANCES`; the under-represented cases). Default 0 (all typical).
        n_slices: number of Dataset 1 slices, overriding ``size`` (at least 8). Default ``None``.
        n_volumes: number of Dataset 2 volumes, overriding ``size``; 0 writes empty ``rp_im/`` and ``rp_msk/``
            folders (a Dataset 1-only study set). Default ``None``.

    Returns:
        summary dict: ``root``, ``train_slices``, ``val_slices``, ``volumes``, ``lesions``, ``corruptions``
        (lesions per :data:`CORRUPTIONS` kind) and ``appearances`` (lesions per :data:`APPEARANCES` value).

    Raises:
        ValueError: negative rates, rates summing to more than 1, ``noise_radius`` outside [1, 4],
            ``tiny_rate + low_contrast_rate`` outside [0, 1], ``n_slices`` < 8 or ``n_volumes`` < 0.
    """
    rates = _rates(missing_rate, erode_rate, dilate_rate, noise_radius, wrong_class_rate)
    if min(tiny_rate, low_contrast_rate) < 0 or tiny_rate + low_contrast_rate > 1:
        raise ValueError(
            f"tiny_rate and low_contrast_rate must be >= 0 and sum to at most 1, got {tiny_rate}, {low_contrast_rate}."
        )
    if (n_slices is not None and n_slices < 8) or (n_volumes is not None and n_volumes < 0):
        raise ValueError(f"n_slices must be >= 8 and n_volumes >= 0, got {n_slices}, {n_volumes}.")
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    px = 0.75 * 512 / image_size
    n_tr, n_val, n_rp = max(8, int(round(100 * size))), max(2, int(round(10 * size))), max(1, int(round(3 * size)))
    n_tr = n_tr if n_slices is None else int(n_slices)
    n_rp = n_rp if n_volumes is None else int(n_volumes)
    rows = []

    tr = _ct_case(rng, image_size, n_tr, (0.12, 0.4), 0, True, px, 5.0, noise_hu, True, (tiny_rate, low_contrast_rate))
    noisy, rec = _corrupt(rng, tr["labels"], tr["lesions"], rates, noise_radius, tr["lungs"] > 0)
    _save(root / "tr_im.nii.gz", tr["hu"], (px, px, 1.0), np.float32)
    _save(root / "tr_mask.nii.gz", noisy, (px, px, 1.0), np.uint8)
    _save(root / "demo_clean" / "tr_mask.nii.gz", tr["labels"], (px, px, 1.0), np.uint8)
    _save(root / "tr_lungmasks_updated.nii.gz", tr["lungs"], (px, px, 1.0), np.uint8)
    rows += _noise_rows("tr_mask.nii.gz", tr["labels"], noisy, rec)
    val = _ct_case(rng, image_size, n_val, (0.12, 0.4), 0, True, px, 5.0, noise_hu, True)
    _save(root / "val_im.nii.gz", val["hu"], (px, px, 1.0), np.float32)

    rp_size = int(round(image_size * 0.75))
    for folder in ("rp_im", "rp_msk", "rp_lung_msk", "demo_clean/rp_msk"):
        (root / folder).mkdir(parents=True, exist_ok=True)  # present (maybe empty) as in the real layout
    for k in range(1, n_rp + 1):
        rp_px, z_mm = 0.7 * 630 / rp_size, 7.5
        case = _ct_case(
            rng,
            rp_size,
            int(rng.integers(26, 36)),
            (0.06, 0.42),
            int(rng.integers(2, 6)),
            bool(rng.random() < 0.4),
            rp_px,
            z_mm,
            noise_hu,
            False,
        )
        cavity = (case["lungs"] > 0) | (case["labels"] > 0)
        noisy, rec = _corrupt(rng, case["labels"], case["lesions"], rates, noise_radius, cavity)
        spacing = (rp_px, rp_px, z_mm)
        _save(root / "rp_im" / f"{k}.nii.gz", np.clip(np.rint(case["hu"]), -1024, 3071), spacing, np.int16)
        _save(root / "rp_msk" / f"{k}.nii.gz", noisy, spacing, np.uint8)
        _save(root / "demo_clean" / "rp_msk" / f"{k}.nii.gz", case["labels"], spacing, np.uint8)
        _save(root / "rp_lung_msk" / f"{k}.nii.gz", case["lungs"], spacing, np.uint8)
        rows += _noise_rows(f"rp_msk/{k}.nii.gz", case["labels"], noisy, rec)
    _write_rows(root / "demo_mask_noise.csv", rows)
    return {
        "root": str(root),
        "train_slices": n_tr,
        "val_slices": n_val,
        "volumes": n_rp,
        "lesions": len(rows),
        "corruptions": {c: sum(r[3] == c for r in rows) for c in CORRUPTIONS},
        "appearances": {a: sum(r[-1] == a for r in rows) for a in APPEARANCES},
    }


def _write_rows(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MASK_NOISE_HEADER)
        writer.writerows(rows)


def write_covid_ma_demo(
    root: str | os.PathLike,
    size: float = 1.0,
    seed: int = 0,
    image_size: int = 128,
    missing_rate: float = 0.1,
    erode_rate: float = 0.15,
    dilate_rate: float = 0.15,
    noise_radius: int = 2,
    noise_hu: float = 15.0,
) -> dict[str, Any]:
    """Write a demo of Ma et al.'s "COVID-19 CT Lung and Infection Segmentation Dataset" (Zenodo 3757476).

    Layout (real folder and case names, :data:`MA_CORONACASES` then :data:`MA_RADIOPAEDIA`)::

        root/COVID-19-CT-Seg_20cases/<case>.nii.gz    Coronacases: HU (int16); Radiopaedia: [0, 255] (uint8,
                                                      HU windowed to [-1250, 250] and rescaled, as released)
        root/Infection_Mask/<case>.nii.gz             0/1 (noisy)
        root/Lung_Mask/<case>.nii.gz                  1 left lung, 2 right lung
        root/Lung_and_Infection_Mask/<case>.nii.gz    1 left lung, 2 right lung, 3 infection (noisy)
        root/demo_clean/Infection_Mask/, root/demo_clean/Lung_and_Infection_Mask/   clean masks
        root/demo_mask_noise.csv                      one row per lesion (``mask`` = the Infection_Mask path)

    Args:
        root: dataset folder (created), e.g. ``demo_data/covid_ma``.
        size: scale of the number of cases: ``round(3 * size)`` of each source, at most 10 each (the release
            has 10 + 10). Default 1.0 (3 + 3 cases).
        seed: seed of ``numpy.random.default_rng``. Default 0.
        image_size: Coronacases slice side in pixels (real 512; Radiopaedia cases use 3/4 of it). Default 128.
        missing_rate, erode_rate, dilate_rate: per-lesion corruption probabilities. Defaults 0.1, 0.15, 0.15.
        noise_radius: erosion / dilation radius in pixels, 1-4. Default 2.
        noise_hu: CT noise standard deviation in HU. Default 15.

    Returns:
        summary dict: ``root``, ``cases`` (names), ``lesions`` and ``corruptions`` (count per type).

    Raises:
        ValueError: negative rates, rates summing to more than 1, or ``noise_radius`` outside [1, 4].
    """
    rates = _rates(missing_rate, erode_rate, dilate_rate, noise_radius)
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n_each = min(10, max(1, int(round(3 * size))))
    rows, cases = [], []
    for name in MA_CORONACASES[:n_each] + MA_RADIOPAEDIA[:n_each]:
        radiopaedia = name.startswith("radiopaedia")
        n = int(round(image_size * 0.75)) if radiopaedia else image_size
        px, z_mm = (0.7 * 630 / n, 6.0) if radiopaedia else (0.75 * 512 / n, 5.0)
        case = _ct_case(
            rng, n, int(rng.integers(32, 44)), (0.05, 0.43), int(rng.integers(2, 7)), False, px, z_mm, noise_hu, False
        )
        clean = (case["labels"] > 0).astype(np.uint8)
        noisy, rec = _corrupt(
            rng, clean, [(sl, m, 1, look) for sl, m, _, look in case["lesions"]], rates, noise_radius, case["lungs"] > 0
        )
        spacing = (px, px, z_mm)
        image = window_to_uint8(case["hu"]) if radiopaedia else np.clip(np.rint(case["hu"]), -1024, 3071)
        _save(
            root / "COVID-19-CT-Seg_20cases" / f"{name}.nii.gz", image, spacing, np.uint8 if radiopaedia else np.int16
        )
        _save(root / "Lung_Mask" / f"{name}.nii.gz", case["lungs"], spacing, np.uint8)
        for folder, mask in (("", noisy), ("demo_clean", clean)):
            base = root / folder if folder else root
            _save(base / "Infection_Mask" / f"{name}.nii.gz", mask, spacing, np.uint8)
            _save(
                base / "Lung_and_Infection_Mask" / f"{name}.nii.gz",
                np.where(mask > 0, 3, case["lungs"]),
                spacing,
                np.uint8,
            )
        rows += _noise_rows(f"Infection_Mask/{name}.nii.gz", clean, noisy, rec)
        cases.append(name)
    _write_rows(root / "demo_mask_noise.csv", rows)
    return {
        "root": str(root),
        "cases": cases,
        "lesions": len(rows),
        "corruptions": {c: sum(r[3] == c for r in rows) for c in CORRUPTIONS[:-1]},
    }
