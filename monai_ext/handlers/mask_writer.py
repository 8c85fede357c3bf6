# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ignite handler writing each case's predicted label map as NIfTI (``<case_id>_seg.nii.gz``) plus a per-case JSON
of class volumes, and rebuilding ``predictions.csv`` from them; never overwriting a result unless asked.

Resumable design (as :mod:`monai_ext.handlers.prediction_writer`): the mask ``<case_id>_seg.nii.gz`` is the result
that marks a case done (the volume kind's result, :meth:`monai_ext.data.inference.CaseKind.result_path`;
:func:`monai_ext.data.inference.pending_cases` with ``kind="volume"`` leaves such cases out of the next run); it is
written to a hidden temporary file and linked into place, so a crash never leaves a half-written mask. Then
``<case_id>_seg.json`` (``case_id``, ``image``, ``seg``, ``model_version``, voxel counts and millilitres per class)
is written the same way. ``predictions.csv`` is rebuilt at the end of every run from every sidecar in the folder, so
rows of earlier runs are kept; a mask without its sidecar (a crash between the two writes) is counted from the mask
itself.

Conventions: the mask is ``X Y Z`` uint8 (0 = background, ``k`` = ``class_names[k - 1]``) on the grid of the input
as MONAI loaded it (``NibabelReader`` for NIfTI: the stored voxel order; ``ITKReader`` for a DICOM series: column,
row, slice sorted along the normal), with the RAS affine of the prediction's metadata (LPS is converted), written by
nibabel with ``qform`` and ``sform`` both set (code 1, scanner). For a NIfTI input the mask therefore has the
input's shape and affine, voxel for voxel; for a DICOM series it matches the series as MONAI (or ``dcm2niix``-style
converters keeping the LPS-derived RAS affine) loads it.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import orientation_ras_lps
from monai.utils import IgniteInfo, min_version, optional_import
from monai.utils.enums import MetaKeys, SpaceKeys

from monai_ext.data.inference import InputKind, case_kind
from monai_ext.handlers.prediction_writer import (
    PREDICTIONS_CSV,
    PredictionWriter,
    _image_paths,
    _per_sample,
    publish_file,
)

if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = ["SIDECAR_SUFFIX", "SegmentationMaskWriter", "write_mask", "mask_volumes", "write_volume_predictions_csv"]

SIDECAR_SUFFIX = "_seg.json"
"""Suffix of the per-case JSON next to each mask: ``<case_id>_seg.json``."""


def mask_volumes(labels: np.ndarray, affine: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Voxel count and volume of each foreground class of a label map.

    Args:
        labels: ``X Y Z`` integer label map (0 = background, ``k`` = ``class_names[k - 1]``).
        affine: its 4x4 affine in mm; one voxel is ``|det(affine[:3, :3])|`` mm^3.
        class_names: the foreground classes.

    Returns:
        ``{"voxels": {class: int}, "ml": {class: float}}`` (1 ml = 1000 mm^3).
    """
    voxel_mm3 = abs(float(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3])))
    counts = np.bincount(np.asarray(labels).reshape(-1).astype(np.int64), minlength=len(class_names) + 1)
    voxels = {c: int(counts[k + 1]) for k, c in enumerate(class_names)}
    return {"voxels": voxels, "ml": {c: n * voxel_mm3 / 1000.0 for c, n in voxels.items()}}


def write_mask(labels: np.ndarray, affine: np.ndarray, path: str | os.PathLike, overwrite: bool = False) -> bool:
    """Write an ``X Y Z`` label map as uint8 NIfTI with the RAS ``affine``, atomically; returns False (nothing
    written) when ``path`` exists and ``overwrite`` is False.

    Raises:
        ValueError: ``labels`` is not 3D or holds values outside [0, 255].
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"a mask must be X Y Z, got shape {labels.shape}.")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"mask values span [{labels.min()}, {labels.max()}], outside uint8.")
    path = Path(path)
    if path.exists() and not overwrite:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(labels.astype(np.uint8), np.asarray(affine, dtype=np.float64))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    img.set_data_dtype(np.uint8)
    tmp = path.with_name(f".{path.name[: -len('.nii.gz')]}.{os.getpid()}.tmp.nii.gz")
    nib.save(img, str(tmp))
    return publish_file(tmp, path, overwrite)


def _labels_and_affine(pred: Any, num_classes: int, case_id: str) -> tuple[np.ndarray, np.ndarray]:
    """``X Y Z`` int label map and RAS affine of one decollated prediction (``1 X Y Z`` labels or ``C X Y Z``)."""
    if not isinstance(pred, MetaTensor):
        raise TypeError(
            f"case '{case_id}': the prediction is a {type(pred).__name__}, not a MetaTensor; keep the metadata "
            "(LoadImaged with image_only=False or a MetaTensor, EnsureTyped with track_meta=True, Invertd)."
        )
    affine = np.asarray(pred.affine.detach().cpu().numpy(), dtype=np.float64)
    if pred.meta.get(MetaKeys.SPACE) == SpaceKeys.LPS:
        affine = orientation_ras_lps(affine)
    values = pred.as_tensor().detach().cpu()
    if values.ndim != 4:
        raise ValueError(f"case '{case_id}': prediction shape {tuple(values.shape)}, expected 1 X Y Z or C X Y Z.")
    if values.shape[0] == num_classes:
        values = values.argmax(dim=0)
    elif values.shape[0] == 1:
        values = values[0]
        if values.is_floating_point() and not bool(torch.equal(values, values.round())):
            raise ValueError(f"case '{case_id}': a 1-channel prediction must hold class indices; add AsDiscreted.")
    else:
        raise ValueError(
            f"case '{case_id}': prediction has {values.shape[0]} channels; expected 1 (argmax) or {num_classes}."
        )
    labels = values.to(torch.int64).numpy()
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"case '{case_id}': labels span [{labels.min()}, {labels.max()}], not 0..{num_classes - 1}.")
    return labels, affine


def write_volume_predictions_csv(
    output_dir: str | os.PathLike,
    class_names: Sequence[str],
    filename: str = PREDICTIONS_CSV,
    skip_missing_dir: bool = False,
) -> Path | None:
    """Rebuild ``<output_dir>/predictions.csv`` from every ``<case_id>_seg.nii.gz`` in ``output_dir``.

    Columns ``case_id,image,seg,<class>_voxels,<class>_ml,...,model_version`` (classes in ``class_names`` order),
    one row per mask, sorted by case id. Values come from the case's ``<case_id>_seg.json``; a mask without a
    readable sidecar is counted from the mask itself (``image`` and ``model_version`` empty), with a warning.
    Millilitres are written with Python's shortest round-trip ``repr``. The CSV is replaced atomically, and only when
    its content changes.

    Args:
        output_dir: the folder of the masks and their sidecars.
        class_names: the classes, in column order.
        filename: name of the table. Defaults to ``"predictions.csv"``.
        skip_missing_dir: when ``True`` and ``output_dir`` does not exist (no case was written, e.g. an inference
            run over no readable input), write nothing and return ``None``; the bundles' ``finalize`` step sets it.
            Defaults to ``False`` (the folder is created).

    Returns:
        The path of the CSV, or ``None`` (``skip_missing_dir`` and no folder).
    """
    out = Path(output_dir)
    if skip_missing_dir and not out.is_dir():
        return None
    out.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger(__name__)
    names = [str(c) for c in class_names]
    rows = []
    seg_suffix = case_kind(InputKind.VOLUME).result_suffix
    for seg in sorted(out.glob(f"*{seg_suffix}")):
        if seg.name.startswith("."):
            continue
        case_id = seg.name[: -len(seg_suffix)]
        record: dict[str, Any] = {}
        sidecar = out / f"{case_id}{SIDECAR_SUFFIX}"
        try:
            record = json.loads(sidecar.read_text(encoding="utf-8"))
            if not all(c in record.get("voxels", {}) and c in record.get("ml", {}) for c in names):
                raise ValueError(f"it lacks classes of {names}")
        except (OSError, ValueError) as e:
            log.warning(f"'{seg}': no usable sidecar '{sidecar.name}' ({e}); counting the mask itself.")
            img = nib.load(str(seg))
            record = {"case_id": case_id, "image": "", **mask_volumes(np.asarray(img.dataobj), img.affine, names)}
        rows.append(
            [case_id, record.get("image", ""), seg.name]
            + [v for c in names for v in (record["voxels"][c], repr(float(record["ml"][c])))]
            + [record.get("model_version") or ""]
        )
    target, tmp = out / filename, out / f".{filename}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        class_columns = [f"{c}_{unit}" for c in names for unit in ("voxels", "ml")]
        writer.writerow(["case_id", "image", "seg", *class_columns, "model_version"])
        writer.writerows(rows)
    if target.is_file() and target.read_bytes() == tmp.read_bytes():
        tmp.unlink()  # unchanged: keep the file (and its mtime)
    else:
        os.replace(tmp, target)
    return target


class SegmentationMaskWriter(PredictionWriter):
    """Write each case's predicted label map to ``<output_dir>/<case_id>_seg.nii.gz`` (uint8, on the input grid)
    with a ``<case_id>_seg.json`` of class volumes, and rebuild ``<output_dir>/predictions.csv`` at the end.

    Attach it to the inference ``SupervisedEvaluator`` (``decollate=True``, the default) whose ``postprocessing``
    ends with ``Activationsd(softmax=True)``, ``Invertd`` (back to the loaded grid) and ``AsDiscreted(argmax=True)``.
    At every ``ITERATION_COMPLETED`` it reads, per sample, ``engine.state.output[i][pred_key]`` (a ``1 X Y Z``
    class-index ``MetaTensor``; ``C X Y Z`` probabilities are argmaxed) and, from ``engine.state.batch``, the case id
    (``case_key``) and the source (``image_key``: the datalist path, or ``filename_or_obj`` of the loaded image).
    The prediction's affine must be the input's: the handler checks that the mask has the loaded input's spatial
    shape (``spatial_shape`` of the image metadata), which fails when ``Invertd`` is missing.

    With ``overwrite=False`` (default) an existing mask is left alone, counted and logged; ``overwrite=True`` replaces
    it. At ``COMPLETED`` the first rank rebuilds the CSV (:func:`write_volume_predictions_csv`) after a barrier; under
    ``torchrun`` attach it on every rank. It is a :class:`monai_ext.handlers.prediction_writer.PredictionWriter`
    (same arguments, events and never-overwrite rule) whose per-case result is a mask instead of a JSON.

    Args:
        output_dir: folder of the results (created at the start of the run).
        class_names: the foreground classes; channel/label ``k`` is ``class_names[k - 1]``, 0 is background.
        pred_key: key of the prediction in the output. Defaults to ``"pred"``.
        case_key: key of the case id in the batch. Defaults to ``"case_id"``.
        image_key: key of the image in the batch. Defaults to ``"image"``.
        overwrite: replace existing results. Defaults to False.
        model_version: written into every sidecar and the CSV. Defaults to None.
        csv_name: name of the combined table. Defaults to ``"predictions.csv"``.
        name: logger name; None uses ``engine.logger``.

    Raises:
        ValueError: ``class_names`` is empty or repeats a name.
    """

    input_kind = InputKind.VOLUME
    """Its result is the volume kind's mask ``<case_id>_seg.nii.gz``."""

    def __call__(self, engine: Engine) -> None:
        """Write one mask (and sidecar) per sample of this iteration.

        Raises:
            KeyError: the output has no ``pred_key`` or the batch no ``case_key``/``image_key``.
            TypeError: a prediction is not a ``MetaTensor``.
            ValueError: a prediction is not ``1 X Y Z`` labels in ``0..C-1`` or ``C X Y Z``, its shape differs from
                the loaded input's, or the numbers of predictions and cases differ.
        """
        preds = _per_sample(engine.state.output, self.pred_key, "output")
        case_ids = [str(c) for c in _per_sample(engine.state.batch, self.case_key, "batch")]
        images = _image_paths(engine.state.batch, self.image_key)
        shapes = self._input_shapes(engine.state.batch, len(preds))
        if not len(preds) == len(case_ids) == len(images):
            raise ValueError(f"{len(preds)} predictions but {len(case_ids)} case ids and {len(images)} images.")
        for pred, case_id, image, shape in zip(preds, case_ids, images, shapes):
            labels, affine = _labels_and_affine(pred, len(self.class_names) + 1, case_id)
            if shape is not None and tuple(labels.shape) != shape:
                raise ValueError(
                    f"case '{case_id}': mask shape {tuple(labels.shape)} differs from the loaded input's {shape}; "
                    "add Invertd to the postprocessing to map the prediction back to the input grid."
                )
            self.write(case_id, image, labels, affine)

    def _input_shapes(self, batch: Any, n: int) -> list[tuple[int, ...] | None]:
        """Loaded spatial shape of each sample (``spatial_shape`` metadata of the batch image), None if unknown."""
        image = batch.get(self.image_key) if isinstance(batch, Mapping) else None
        if isinstance(image, MetaTensor) and MetaKeys.SPATIAL_SHAPE in image.meta:
            shape = torch.as_tensor(image.meta[MetaKeys.SPATIAL_SHAPE]).reshape(n, -1)
            return [tuple(int(v) for v in row) for row in shape.tolist()]
        if isinstance(batch, Sequence) and len(batch) == n:
            return [
                (
                    tuple(int(v) for v in d[self.image_key].meta[MetaKeys.SPATIAL_SHAPE])
                    if isinstance(d.get(self.image_key), MetaTensor)
                    and MetaKeys.SPATIAL_SHAPE in d[self.image_key].meta
                    else None
                )
                for d in batch
            ]
        return [None] * n

    def write(self, case_id: str, image: str, labels: np.ndarray, affine: np.ndarray) -> bool:
        """Write one case's mask and sidecar; returns False (both kept) when the mask exists and ``overwrite`` is
        False.

        Args:
            case_id: a safe file name (see :meth:`result_path`).
            image: the source path, stored as given.
            labels: ``X Y Z`` class indices in ``0..C-1``.
            affine: 4x4 RAS affine (mm).
        """
        path = self.result_path(case_id)
        if not write_mask(labels, affine, path, self.overwrite):
            self.kept.append(case_id)
            return False
        record: dict[str, Any] = {"case_id": case_id, "image": image, "seg": path.name}
        record["model_version"] = self.model_version
        record.update(mask_volumes(labels, affine, self.class_names))
        sidecar = path.with_name(f"{case_id}{SIDECAR_SUFFIX}")
        tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        publish_file(tmp, sidecar, overwrite=True)  # belongs to the mask just written
        self.written.append(case_id)
        return True

    def rebuild_csv(self) -> Path:
        """Rebuild ``predictions.csv`` from every mask and sidecar in ``output_dir``.

        See :func:`write_volume_predictions_csv`.
        """
        return write_volume_predictions_csv(self.output_dir, self.class_names, self.csv_name)
