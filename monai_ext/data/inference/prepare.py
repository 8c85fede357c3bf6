# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The datalist of a resumable inference run: the cases found, less those that already have a result, less the
unreadable ones (written to ``skipped.csv``), decided by the first rank under ``torch.distributed``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from monai.data import ImageReader

from monai_ext.bundle.folders import check_output_outside_inputs, check_writable_folder
from monai_ext.bundle.parameters import as_flag
from monai_ext.data.inference.discovery import inference_datalist
from monai_ext.data.inference.kinds import InputKind, case_kind
from monai_ext.data.inference.readability import ReadCheck, check_readable, write_skipped
from monai_ext.utils.distributed import first_rank_decides

__all__ = ["pending_cases", "prepare_inference_datalist"]

logger = logging.getLogger(__name__)

_MAX_NAMED = 5


def pending_cases(
    datalist: Sequence[dict],
    output_dir: str | os.PathLike,
    kind: InputKind | str,
    overwrite: bool = False,
    case_key: str = "case_id",
) -> list[dict]:
    """The items of ``datalist`` that have no result in ``output_dir`` yet (all of them when ``overwrite``), in
    datalist order. How many already have one is logged, so nothing is recomputed or left out silently.

    Args:
        datalist: items with ``case_key`` (e.g. from :func:`~monai_ext.data.inference.discovery.inference_datalist`).
        output_dir: the folder of per-case results.
        kind: {``"radiograph"``, ``"volume"``}: whose result marks a case done (``<case_id>.json``,
            ``<case_id>_seg.nii.gz``; see :meth:`~monai_ext.data.inference.base.CaseKind.result_path`); another
            kind's result does not count.
        overwrite: keep every item, so that existing results are recomputed and replaced. Defaults to False.
        case_key: key of the case id. Defaults to ``"case_id"``.

    Raises:
        KeyError: an item has no ``case_key``.
        ValueError: ``kind`` is unknown, or a case id is not a safe file name.
    """
    spec = case_kind(kind)
    overwrite = as_flag(overwrite, "overwrite")
    missing = [k for k, item in enumerate(datalist) if case_key not in item]
    if missing:
        raise KeyError(f"datalist item(s) {missing[:_MAX_NAMED]} have no '{case_key}'; use inference_datalist.")
    done = {item[case_key] for item in datalist if spec.result_path(output_dir, item[case_key]).is_file()}
    if done:
        action = "recomputed and replaced (overwrite=True)" if overwrite else "left out (overwrite=False)"
        logger.info(f"{len(done)} of {len(datalist)} cases already have a result in '{output_dir}': {action}.")
    return list(datalist) if overwrite else [item for item in datalist if item[case_key] not in done]


def prepare_inference_datalist(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    kind: InputKind | str,
    overwrite: bool = False,
    reader: str | type | ImageReader | None = None,
    level: ReadCheck | str = ReadCheck.DECODE,
    num_workers: int = 0,
    image_key: str = "image",
    case_key: str = "case_id",
    distributed: bool = True,
) -> list[dict[str, Any]]:
    """One call for an ``inference.json``: :func:`~monai_ext.data.inference.discovery.inference_datalist`, then
    :func:`pending_cases`, then :func:`~monai_ext.data.inference.readability.check_readable`; writes
    ``<output_dir>/skipped.csv`` (:func:`~monai_ext.data.inference.readability.write_skipped`: the unreadable cases of
    this call, left untouched when it already holds exactly those rows) and returns the readable pending items
    (possibly none: everything done, or nothing readable).

    Args:
        inputs: folder, ``.txt`` list, one file or a sequence of paths (see ``inference_datalist``).
        output_dir: the folder of per-case results and of ``skipped.csv``.
        kind: {``"radiograph"``, ``"volume"``}, see :class:`~monai_ext.data.inference.kinds.InputKind`; a bundle
            names it in its ``inference.json``.
        overwrite: also return the cases that already have a result. Defaults to False.
        reader: the pipeline's image reader, see ``check_readable``. Defaults to None (MONAI's automatic choice).
        level: {``"header"``, ``"decode"``}, see :class:`~monai_ext.data.inference.readability.ReadCheck`. Defaults
            to ``"decode"``.
        num_workers: threads of the read check. Defaults to 0.
        image_key: key of the path. Defaults to ``"image"``.
        case_key: key of the case id. Defaults to ``"case_id"``.
        distributed: under an initialised ``torch.distributed`` process group with several ranks, let the first rank
            build the list (and write ``skipped.csv``) and broadcast it
            (:func:`monai_ext.utils.distributed.first_rank_decides`), so that every rank sees the same cases even
            when another rank already writes results. A collective call then: every rank must make it. Defaults to
            True (no effect without a process group).

    Raises:
        FileNotFoundError, ValueError: as ``inference_datalist`` and ``check_readable`` (on every rank); ValueError
            also when ``output_dir`` is an input folder or inside one, or ``overwrite`` is not a boolean
            (:func:`monai_ext.bundle.as_flag`).
        PermissionError: ``output_dir`` cannot be created or written (checked before any case runs).

    Example:
        ``{"_target_": "monai_ext.data.inference.prepare_inference_datalist", "inputs": "@dataset_dir",
        "output_dir": "@output_dir", "kind": "volume", "overwrite": "@overwrite", "level": "@read_check",
        "image_key": "@image_key"}`` in a bundle's ``inference.json``.
    """
    if distributed:  # one rank decides, so that every rank's sampler splits the same list while results are written
        return first_rank_decides(
            lambda: prepare_inference_datalist(
                inputs, output_dir, kind, overwrite, reader, level, num_workers, image_key, case_key, distributed=False
            )
        )
    spec = case_kind(kind)
    overwrite = as_flag(overwrite, "overwrite")
    check_output_outside_inputs(output_dir, inputs)
    check_writable_folder(output_dir, "output_dir")
    datalist = inference_datalist(inputs, spec.name, image_key=image_key, case_key=case_key)
    todo = pending_cases(datalist, output_dir, spec.name, overwrite=overwrite, case_key=case_key)
    readable, unreadable = check_readable(
        todo, spec.name, reader=reader, level=level, image_key=image_key, num_workers=num_workers
    )
    write_skipped(unreadable, output_dir, image_key=image_key, case_key=case_key)
    logger.info(
        f"{spec.name} inference: {len(datalist)} case(s) found, {len(datalist) - len(todo)} already done, "
        f"{len(unreadable)} unreadable, {len(readable)} to run."
    )
    return readable
