# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Whether the slices of a DICOM series lie on the uniform grid that MONAI's readers put them on.

``ITKReader`` (GDCM) sorts the slices along the slice normal and gives the volume one slice spacing; a series with a
missing slice, two slices at one position or unevenly spaced slices is still read, every slice after the irregular
step misplaced by up to a slice thickness, with only an ITK warning on stderr. :func:`slice_positions_error` finds
such a series from the headers, so that it is reported in ``skipped.csv`` instead of segmented on a wrong grid.

The rule: each slice's position is its ``ImagePositionPatient`` projected on the slice normal (the cross product of
the two ``ImageOrientationPatient`` direction cosines); the positions are sorted and the steps between neighbours
compared with the median step ``m``. With the tolerance ``t = max(SPACING_RTOL * m, SPACING_ATOL)``:

- a step ``<= t`` is a duplicate position (two slices in one place, e.g. two acquisitions in one series);
- a step ``> m + t`` is a gap (about ``round(step / m) - 1`` slices missing);
- a step in ``(t, m - t)`` is uneven spacing.

``SPACING_RTOL`` is 1 %: a step off by less misplaces a slice by less than 1 % of the slice thickness, far below
what a segmentation can see, while DICOM positions (decimal strings of up to 16 characters) and scanners' rounding
stay well within it. The slices must also share one orientation (cosines equal within ``ORIENTATION_ATOL``), and every
slice must have both tags. A series of multi-frame files (``NumberOfFrames`` > 1) keeps its geometry per frame in
functional groups; it is not checked here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

__all__ = ["SPACING_RTOL", "SPACING_ATOL", "ORIENTATION_ATOL", "slice_positions_error"]

SPACING_RTOL: float = 0.01
"""Relative tolerance of a step between neighbouring slices, as a fraction of the median step."""

SPACING_ATOL: float = 1e-3
"""Absolute floor of the step tolerance (mm), for series with very thin slices."""

ORIENTATION_ATOL: float = 1e-3
"""Largest difference between two slices' ``ImageOrientationPatient`` direction cosines for them to be parallel."""

_MAX_NAMED = 5


def _floats(ds: Dataset, keyword: str, size: int) -> np.ndarray | None:
    value = ds.get(keyword)
    try:
        values = np.asarray([float(v) for v in value], dtype=np.float64) if value is not None else None
    except (TypeError, ValueError):
        return None
    return values if values is not None and values.size == size and np.isfinite(values).all() else None


def slice_positions_error(folder: str | os.PathLike, slices: Sequence[tuple[str, Dataset]]) -> str | None:
    """Why the slices of the DICOM series in ``folder`` are not evenly spaced along one normal (see the module
    docstring for the rule), or None when they are (or when the series is multi-frame, not checked).

    Args:
        folder: the series folder, for the message.
        slices: ``(file name, header)`` of each slice of the series, in any order.

    Returns:
        The error text, naming the folder, the files and their positions along the normal (mm), and what to do.
    """
    if any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for _, ds in slices) or len(slices) < 2:
        return None
    lacking = [name for name, ds in slices if _floats(ds, "ImagePositionPatient", 3) is None]
    lacking += [name for name, ds in slices if _floats(ds, "ImageOrientationPatient", 6) is None]
    if lacking:
        names = sorted(set(lacking))
        return (
            f"DICOM series '{folder}': {len(names)} slice(s) lack a valid ImagePositionPatient (0020,0032) or "
            f"ImageOrientationPatient (0020,0037), e.g. {names[:_MAX_NAMED]}; the slices cannot be placed in space. "
            "Re-export the series with its geometry."
        )
    orientations = np.stack([_floats(ds, "ImageOrientationPatient", 6) for _, ds in slices])
    tilted = [
        name for (name, _), o in zip(slices, orientations) if np.abs(o - orientations[0]).max() > ORIENTATION_ATOL
    ]
    if tilted:
        return (
            f"DICOM series '{folder}': the slices are not parallel: {tilted[:_MAX_NAMED]} have another "
            f"ImageOrientationPatient than '{slices[0][0]}' {orientations[0].round(4).tolist()}; put each stack in "
            "its own folder."
        )
    normal = np.cross(orientations[0][:3], orientations[0][3:])
    positions = np.array([_floats(ds, "ImagePositionPatient", 3) @ normal for _, ds in slices])
    order = np.argsort(positions, kind="stable")
    names, z = [slices[k][0] for k in order], positions[order]
    steps = np.diff(z)
    median = float(np.median(steps))
    tol = max(SPACING_RTOL * median, SPACING_ATOL)
    problems = []
    for k, step in enumerate(steps):
        where = f"'{names[k]}' at {z[k]:.3f} mm and '{names[k + 1]}' at {z[k + 1]:.3f} mm"
        if step <= tol:
            problems.append(f"duplicate position: {where}")
        elif step > median + tol:
            missing = max(int(round(step / median)) - 1, 0) if median > tol else 0
            problems.append(f"gap of {step:.3f} mm (about {missing} slice(s) missing) between {where}")
        elif step < median - tol:
            problems.append(f"uneven step of {step:.3f} mm between {where}")
    if not problems:
        return None
    more = f"; and {len(problems) - _MAX_NAMED} more" if len(problems) > _MAX_NAMED else ""
    return (
        f"DICOM series '{folder}': the {len(slices)} slices are not evenly spaced along the slice normal (median step "
        f"{median:.3f} mm, tolerance {tol:.3f} mm): {'; '.join(problems[:_MAX_NAMED])}{more}. MONAI's readers would "
        "put the slices on a uniform grid and misplace those after the irregular step; add the missing slices, "
        "remove duplicates, or resample the series to even spacing."
    )
