# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``LoadImaged`` whose errors name the file.

MONAI's readers report a corrupt file with the decoder's own words (e.g. PIL's ``OSError: image file is truncated``)
and no path, so a failure deep in a training epoch does not say which of 100k images to fix. :class:`LoadImageCheckedd`
loads exactly as ``monai.transforms.LoadImaged`` and, on failure, re-raises naming every file of the item.

Some failures are silent: ``ITKReader`` (MONAI's automatic choice for ``.dcm``) pads a DICOM whose pixel data is
shorter than its header promises with whatever was in memory. Before loading, each DICOM file of the item (suffix
``.dcm``/``.dicom`` or the ``DICM`` preamble) is checked from its header
(:func:`~monai_ext.data.inference.dicom_pixels.dicom_pixel_data_error`, no pixel read) and such a file fails the
same way.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

from monai.transforms import LoadImaged

__all__ = ["LoadImageCheckedd"]


def _check_dicom_files(paths: Any) -> None:
    """Raise when a DICOM file among ``paths`` (strings or paths; others are skipped) holds less pixel data than
    its header promises.

    Raises:
        ValueError: the check's message (file, header numbers, fix).
    """
    from monai_ext.data.inference.dicom_pixels import dicom_pixel_data_error  # lazy: monai_ext.data is heavy
    from monai_ext.data.inference.filetypes import is_dicom_file

    for path in paths:
        if isinstance(path, (str, os.PathLike)) and Path(path).is_file() and is_dicom_file(Path(path)):
            error = dicom_pixel_data_error(path)
            if error is not None:
                raise ValueError(error)


class LoadImageCheckedd(LoadImaged):
    """``monai.transforms.LoadImaged`` (same arguments) that names the file when loading fails.

    Raises:
        RuntimeError: the reader failed; the message holds the path(s) of the item, the reader's error and what to
            do; the reader's exception is chained as ``__cause__``.
    """

    def __call__(self, data: Mapping[Hashable, Any], reader: Any = None) -> dict[Hashable, Any]:
        try:
            _check_dicom_files(data[k] for k in self.key_iterator(dict(data)))
            return super().__call__(data, reader)
        except Exception as e:
            files = [str(data[k]) for k in self.key_iterator(dict(data))]
            index = f" (dataset index {data['index']})" if isinstance(data, Mapping) and "index" in data else ""
            raise RuntimeError(
                f"could not load {files}{index}: {type(e).__name__}: {e}. Check the file (re-export it or remove it "
                f"from the dataset); batch inference lists such files in skipped.csv instead of stopping."
            ) from e
