# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DeepLesion-style PNG slice folders as inference cases, and the reader that stacks one into a CT volume.

Layout (DeepLesion's ``Images_png/<patient>_<study>_<series>/<NNN>.png``, Yan et al., J. Med. Imaging 5(3), 2018):
one folder is one series; its slices are 16-bit greyscale PNG files named by their slice number (``045.png``,
``046.png``, ...; any number of digits), storing ``HU + 32768`` (:data:`monai_ext.data.deeplesion.HU_OFFSET`). Other
files of the folder are ignored.

What is a case (:class:`DeepLesionSlicesKind`, kind ``"deeplesion_slices"``): every folder that directly holds
``NNN.png`` files. It is reported as unreadable (``skipped.csv``, with the reason) when its slice numbers have gaps
or repeats (``7.png`` next to ``007.png``), when a slice is not a 16-bit greyscale PNG (PIL mode ``I;16``, or ``I``,
which PIL gives for 16-bit greyscale PNGs in older versions: PNG has no 32-bit greyscale) or cannot be opened, or
when the slices differ in size. These headers are read when the folder is found (PIL opens a PNG lazily: the header
only). :class:`CTDetectionKind` (kind ``"ct_detection"``) takes NIfTI files, DICOM series folders (as
:class:`~monai_ext.data.inference.volume.VolumeKind`) and PNG slice folders in one run. Both kinds' result is the
detection JSON ``<output_dir>/<case_id>/<case_id>_boxes.json`` of :class:`monai_ext.handlers.DetectionWriter`.

Reading (:class:`DeepLesionSliceReader`, a MONAI ``ImageReader``): the PNGs are decoded by MONAI's ``PILReader``
(``reverse_indexing=True``: ``(W, H)``, i.e. axis 0 = image column x, axis 1 = image row y) and stacked along a last
axis in slice-number order, so that with ``ensure_channel_first`` the image is ``1 x W x H x D`` float32 HU. That is
the axis order of a CT loaded by MONAI from NIfTI (``NibabelReader``: ``i, j, k``) or from DICOM (``ITKReader``:
column, row, slice), and DeepLesion's boxes ``x1, y1, x2, y2`` (x = column) are StandardMode boxes in it as they
are. The affine is ``diag(sx, sy, sz, 1)`` with the spacing of the series: an array-aligned millimetre frame whose
origin is the centre of the first pixel of the first file, **not** patient coordinates (the PNGs hold no position
or orientation). The spacing is the ``Spacing_mm_px_`` of the series' rows in a ``DL_info.csv`` when one is given
and lists the series, else the ``spacing`` argument; neither is an error naming the folder. The first file's slice
number is kept as ``meta["first_slice_number"]``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import ImageReader, PILReader
from monai.transforms import LoadImage
from monai.utils import ensure_tuple
from monai.utils.enums import MetaKeys, SpaceKeys
from PIL import Image

from monai_ext.data.datalist import read_csv_checked, row_error
from monai_ext.data.deeplesion import HU_OFFSET
from monai_ext.data.inference.base import Case, CaseKind
from monai_ext.data.inference.volume import VolumeKind

__all__ = [
    "SLICE_FILE_PATTERN",
    "BOXES_SUFFIX",
    "slice_files",
    "slice_folder_error",
    "dl_info_spacings",
    "DeepLesionSliceReader",
    "DeepLesionSlicesKind",
    "CTDetectionKind",
]

SLICE_FILE_PATTERN = re.compile(r"^(\d+)\.png$", re.IGNORECASE)
"""A slice file of a DeepLesion series folder: its slice number and ``.png`` (``045.png``)."""

BOXES_SUFFIX = "_boxes.json"
"""Suffix of a detection result: ``<output_dir>/<case_id>/<case_id>_boxes.json``."""

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
_MAX_NAMED = 5


def slice_files(files: Sequence[Path]) -> dict[int, list[Path]]:
    """The slice files among ``files``, by slice number (several files per number when a number is repeated, e.g.
    ``7.png`` and ``007.png``), sorted by number."""
    found: dict[int, list[Path]] = {}
    for f in files:
        m = SLICE_FILE_PATTERN.match(f.name)
        if m:
            found.setdefault(int(m.group(1)), []).append(f)
    return dict(sorted(found.items()))


def _named(values: Sequence[Any]) -> str:
    return ", ".join(map(str, values[:_MAX_NAMED])) + (" ..." if len(values) > _MAX_NAMED else "")


def slice_folder_error(folder: Path, slices: dict[int, list[Path]]) -> str | None:
    """Why the slice files of ``folder`` (:func:`slice_files`) are not one readable series, or None.

    Checked: repeated numbers, gaps between the first and last number, and each file's PNG header (opens with PIL,
    16-bit greyscale, the size of the first slice).
    """
    repeated = [f"{', '.join(p.name for p in paths)}" for paths in slices.values() if len(paths) > 1]
    if repeated:
        return f"'{folder}': slice numbers repeated by {_named(repeated)}; keep one file per slice number."
    numbers = list(slices)
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing:
        return (
            f"'{folder}': slices {numbers[0]}..{numbers[-1]} have gaps, missing {len(missing)} slice(s) "
            f"({_named(missing)}); a volume needs consecutive slices: put each run of consecutive slices in its own "
            "folder."
        )
    size = None
    for (path,) in slices.values():
        try:
            with Image.open(path) as img:
                mode, this_size, fmt = img.mode, img.size, img.format
        except Exception as e:  # noqa: BLE001 -- any PIL failure marks the series unreadable
            return f"cannot open '{path}' as a PNG: {type(e).__name__}: {e}"
        if fmt != "PNG" or mode not in _SIXTEEN_BIT_MODES:
            return (
                f"'{path}' is not a 16-bit greyscale PNG (format {fmt}, PIL mode '{mode}'); DeepLesion slices store "
                f"HU + {HU_OFFSET} in 16 bits. Export the slices as 16-bit PNGs."
            )
        if size is None:
            size = this_size
        elif this_size != size:
            return (
                f"'{path}' is {this_size[0]} x {this_size[1]} pixels but the folder's first slice is "
                f"{size[0]} x {size[1]}."
            )
    return None


def dl_info_spacings(path: str | os.PathLike) -> dict[str, tuple[float, float, float]]:
    """The voxel spacing of each series of a DeepLesion ``DL_info.csv``: ``{series folder name: (x, y, z) mm}``.

    The series is ``File_name`` without its ``_<slice>.png`` (``000001_01_01_109.png`` -> ``000001_01_01``);
    ``Spacing_mm_px_`` holds the in-plane pixel spacing (x, y) and the slice interval (z) in mm.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DatasetLayoutError: a column is missing, a ``File_name`` is not ``<series>_<slice>.png``, a spacing is not three
            positive numbers, or two rows of one series disagree (the message names the line).
    """
    table = read_csv_checked(path, ["File_name", "Spacing_mm_px_"], "DeepLesion DL_info.csv", dtype=str)
    spacings: dict[str, tuple[float, float, float]] = {}
    first_row: dict[str, int] = {}
    for row, (name, text) in enumerate(zip(table["File_name"], table["Spacing_mm_px_"])):
        m = re.fullmatch(r"(.+)_\d+\.png", str(name).strip(), re.IGNORECASE)
        if m is None:
            raise row_error(path, row, "File_name", f"expected '<series>_<slice>.png', found {name!r}")
        parts = [p.strip() for p in str(text).split(",")]
        try:
            spacing = tuple(float(p) for p in parts)
        except ValueError:
            spacing = ()
        if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
            raise row_error(path, row, "Spacing_mm_px_", f"expected three positive numbers 'x, y, z', found {text!r}")
        series = m.group(1)
        if series in spacings and not np.allclose(spacings[series], spacing):
            raise row_error(
                path,
                row,
                "Spacing_mm_px_",
                f"series {series!r} has spacing {spacing} here but {spacings[series]} on line {first_row[series] + 2}",
            )
        if series not in spacings:
            spacings[series], first_row[series] = spacing, row  # type: ignore[assignment]
    return spacings


class DeepLesionSliceReader(ImageReader):
    """Read a DeepLesion-style folder of 16-bit PNG slices (``NNN.png``) as one CT volume in HU (see the module
    docstring for the axis order, affine and spacing rules).

    ``get_data`` gives a ``W x H x D`` float32 array (axis 0 = image column x, axis 1 = row y, axis 2 = slices in
    number order) of ``value - hu_offset`` and metadata with ``affine`` = ``original_affine`` = ``diag(sx, sy, sz, 1)``,
    ``spatial_shape``, ``original_channel_dim`` = NaN (no channel), ``space`` = RAS (MONAI's default; the frame is
    array-aligned, not patient), ``first_slice_number`` and ``spacing_source`` (``"DL_info.csv"`` or
    ``"argument"``). Use it as ``LoadImaged(keys="image", reader=DeepLesionSliceReader(...),
    ensure_channel_first=True)``: ``LoadImage`` tries it first (:meth:`verify_suffix` accepts only a folder holding
    ``NNN.png`` files) and falls back to its default readers for NIfTI files and DICOM series folders.

    Args:
        spacing: ``(x, y, z)`` mm, used for series that ``dl_info`` does not list. Defaults to None (none).
        dl_info: a ``DL_info.csv`` whose ``Spacing_mm_px_`` gives each series' spacing, looked up by folder name.
            Defaults to None.
        hu_offset: subtracted from the stored values. Defaults to :data:`monai_ext.data.deeplesion.HU_OFFSET`.

    Raises:
        ValueError: ``spacing`` is not three positive numbers.
        FileNotFoundError, DatasetLayoutError: as :func:`dl_info_spacings`.
    """

    def __init__(
        self,
        spacing: Sequence[float] | None = None,
        dl_info: str | os.PathLike | None = None,
        hu_offset: float = HU_OFFSET,
    ) -> None:
        super().__init__()
        if spacing is not None:
            spacing = tuple(float(s) for s in ensure_tuple(spacing))
            if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
                raise ValueError(f"spacing must be three positive numbers (x, y, z) in mm, got {spacing}.")
        self.spacing = spacing
        self.dl_info = None if dl_info is None else Path(dl_info)
        self.series_spacing = {} if dl_info is None else dl_info_spacings(dl_info)
        self.hu_offset = float(hu_offset)
        self._png = PILReader(reverse_indexing=True)

    def verify_suffix(self, filename: Sequence[os.PathLike | str] | os.PathLike | str) -> bool:
        """True for exactly one path that is a folder directly holding ``NNN.png`` files."""
        names = ensure_tuple(filename)
        if len(names) != 1 or not Path(names[0]).is_dir():
            return False
        return any(SLICE_FILE_PATTERN.match(e.name) for e in os.scandir(names[0]) if e.is_file())

    def read(self, data: Sequence[os.PathLike | str] | os.PathLike | str, **kwargs: Any) -> Path | list[Path]:
        """The folder(s) as paths (decoding happens in :meth:`get_data`).

        Raises:
            ValueError: a path is not a folder of slice files, or they are not one readable series (gaps, repeated
                numbers, not 16-bit PNGs, sizes differ; :func:`slice_folder_error`).
        """
        folders = [Path(d) for d in ensure_tuple(data)]
        for folder in folders:
            files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
            slices = slice_files(files)
            if not slices:
                raise ValueError(f"'{folder}' is not a folder holding NNN.png slice files.")
            error = slice_folder_error(folder, slices)
            if error is not None:
                raise ValueError(error)
        return folders if len(folders) > 1 else folders[0]

    def spacing_of(self, folder: Path) -> tuple[tuple[float, float, float], str]:
        """``((x, y, z) mm, source)`` of the series in ``folder``.

        Raises:
            ValueError: neither ``dl_info`` lists the folder's name nor ``spacing`` was given.
        """
        if folder.name in self.series_spacing:
            return self.series_spacing[folder.name], "DL_info.csv"
        if self.spacing is not None:
            return self.spacing, "argument"  # type: ignore[return-value]
        listed = f"'{self.dl_info}' does not list series '{folder.name}'" if self.dl_info else "no DL_info.csv given"
        raise ValueError(
            f"no voxel spacing for the slice folder '{folder}' ({listed}); give "
            "DeepLesionSliceReader(spacing=[x, y, z]) in mm or a DL_info.csv listing the series."
        )

    def get_data(self, img: Path | list[Path]) -> tuple[np.ndarray, dict]:
        """``(W x H x D float32 HU, metadata)`` of one folder; several folders are stacked as a first channel axis.

        Raises:
            ValueError: as :meth:`spacing_of`; folders of different shapes.
        """
        volumes, metas = [], []
        for folder in ensure_tuple(img):
            slices = slice_files(sorted(p for p in Path(folder).iterdir() if p.is_file()))
            stack, _ = self._png.get_data(self._png.read([paths[0] for paths in slices.values()]))
            stack = stack if len(slices) > 1 else stack[None]  # PILReader stacks several files as axis 0
            volume = np.moveaxis(stack.astype(np.float32) - np.float32(self.hu_offset), 0, -1)
            spacing, source = self.spacing_of(Path(folder))
            affine = np.diag([*spacing, 1.0])
            volumes.append(volume)
            metas.append(
                {
                    MetaKeys.AFFINE: affine,
                    MetaKeys.ORIGINAL_AFFINE: affine.copy(),
                    MetaKeys.SPATIAL_SHAPE: np.asarray(volume.shape),
                    MetaKeys.SPACE: SpaceKeys.RAS,
                    MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan"),
                    "first_slice_number": next(iter(slices)),
                    "spacing_source": source,
                }
            )
        if len(volumes) == 1:
            return volumes[0], metas[0]
        shapes = {v.shape for v in volumes}
        if len(shapes) > 1:
            raise ValueError(f"cannot stack slice folders of different shapes {sorted(shapes)} as channels.")
        meta = dict(metas[0])
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
        return np.stack(volumes), meta


def _png_folder_case(folder: Path, files: Sequence[Path]) -> Case | None:
    slices = slice_files(files)
    return Case(folder, slice_folder_error(folder, slices)) if slices else None


class DeepLesionSlicesKind(CaseKind):
    """DeepLesion-style PNG slice folders for lesion detection: each folder directly holding ``NNN.png`` files is a
    case (see the module docstring); the result is ``<output_dir>/<case_id>/<case_id>_boxes.json``."""

    name = "deeplesion_slices"
    noun = "slice folder"
    result_suffix = BOXES_SUFFIX
    wanted = "folder of NNN.png slices"
    accepted = "accepted: folders directly holding 16-bit PNG slices named by slice number (045.png)"
    inputs_hint = (
        "Give a folder (searched recursively for folders of NNN.png slices), a .txt list, or a list of slice folders."
    )
    files_hint = "slice folders"

    def cases_in_folder(self, folder: Path, files: Sequence[Path]) -> list[Case]:
        """``folder`` is a case when it holds ``NNN.png`` files (with the reason it cannot be read, if any)."""
        case = _png_folder_case(folder, files)
        return [] if case is None else [case]

    def listed_cases(self, paths: Sequence[Path], source: str) -> list[Case]:
        """Each listed path must be a folder directly holding ``NNN.png`` files.

        Raises:
            FileNotFoundError: a listed path does not exist.
            ValueError: a listed path is not a folder of ``NNN.png`` files.
        """
        cases = []
        for path in paths:
            if not path.exists():
                raise FileNotFoundError(f"input '{path}' listed in {source} does not exist. List slice folders.")
            case = _png_folder_case(path, sorted(p for p in path.iterdir() if p.is_file())) if path.is_dir() else None
            if case is None:
                raise ValueError(
                    f"'{path}' listed in {source} is not a folder holding NNN.png slice files; list the series folders."
                )
            cases.append(case)
        return cases

    def result_path(self, output_dir: str | os.PathLike, case_id: str) -> Path:
        """``<output_dir>/<case_id>/<case_id>_boxes.json``.

        Raises:
            ValueError: ``case_id`` is not a safe file name.
        """
        flat = super().result_path(output_dir, case_id)
        return flat.parent / case_id / flat.name

    def header_error(self, path: str) -> str | None:
        """None: a folder's PNG headers were read when it was found."""
        return None

    def loader(self, reader: str | type | ImageReader | None) -> LoadImage:
        """``LoadImage(reader, image_only=True, ensure_channel_first=True)``; with ``reader=None`` a
        :class:`DeepLesionSliceReader` with spacing ``(1, 1, 1)`` (the check decodes; pass the pipeline's reader to
        check the spacing look-up as well)."""
        reader = DeepLesionSliceReader(spacing=(1.0, 1.0, 1.0)) if reader is None else reader
        return LoadImage(reader=reader, image_only=True, ensure_channel_first=True)

    def loaded_error(self, image: Any) -> str | None:
        """As :meth:`monai_ext.data.inference.volume.VolumeKind.loaded_error`: a ``1 X Y Z`` volume of finite
        values."""
        return VolumeKind().loaded_error(image)


class CTDetectionKind(DeepLesionSlicesKind):
    """Every CT input of lesion detection: NIfTI files and DICOM series folders (as
    :class:`~monai_ext.data.inference.volume.VolumeKind`) and PNG slice folders (as :class:`DeepLesionSlicesKind`);
    the result is ``<output_dir>/<case_id>/<case_id>_boxes.json``. A folder holding both DICOM files and slice PNGs
    is reported unreadable."""

    name = "ct_detection"
    noun = "CT volume"
    wanted = "NIfTI file, DICOM series folder or folder of NNN.png slices"
    accepted = "accepted: NIfTI files, folders directly holding DICOM files, folders of 16-bit NNN.png slices"
    inputs_hint = (
        "Give a folder (searched recursively for NIfTI files, DICOM series folders and PNG slice folders), a .txt "
        "list, a NIfTI file, or a list of NIfTI files and series folders."
    )
    files_hint = "NIfTI files or series folders"

    _volume = VolumeKind()

    def cases_in_folder(self, folder: Path, files: Sequence[Path]) -> list[Case]:
        """The volume kind's cases of ``folder`` and ``folder`` itself when it is a PNG slice folder."""
        volumes = self._volume.cases_in_folder(folder, files)
        png = _png_folder_case(folder, files)
        if png is None:
            return volumes
        if any(c.path == folder for c in volumes):
            error = f"'{folder}' holds both DICOM files and NNN.png slices; keep one series per folder."
            return [c for c in volumes if c.path != folder] + [Case(folder, error)]
        return volumes + [png]

    def listed_cases(self, paths: Sequence[Path], source: str) -> list[Case]:
        """Each listed path: a slice folder (:class:`DeepLesionSlicesKind`), else as the volume kind.

        Raises:
            FileNotFoundError, ValueError: as :meth:`VolumeKind.listed_cases`.
        """
        cases = []
        for path in paths:
            files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else []
            png = _png_folder_case(path, files) if files else None
            cases.append(png if png is not None else self._volume.listed_cases([path], source)[0])
        return cases

    def id_path(self, relative: str) -> str:
        """``relative`` without a NIfTI suffix."""
        return self._volume.id_path(relative)

    def header_error(self, path: str) -> str | None:
        """The volume kind's NIfTI header check; None for folders (checked when found)."""
        return self._volume.header_error(path)
