# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ignite handler writing multi-label (sigmoid) or single-label (softmax) predictions per case (``<case_id>.json``)
and a combined ``predictions.csv``, never overwriting an existing result unless asked.

Per-case files make an inference run resumable and safe to repeat: a case whose result exists is left alone (and
reported), :func:`monai_ext.data.inference.pending_cases` leaves such cases out of the next run's datalist, and
``predictions.csv`` is rebuilt at the end of each run from every per-case JSON in the folder, so results of earlier
runs are never lost. Each JSON is written to a hidden temporary file and then linked into place, so a crash never
leaves a half-written result that would later count as done.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import IgniteInfo, ImageMetaKey, look_up_option, min_version, optional_import

from monai_ext.bundle.parameters import as_flag
from monai_ext.data.inference import InputKind, case_kind
from monai_ext.data.inference.discovery import mark_output_folder

idist, _ = optional_import("ignite", IgniteInfo.OPT_IMPORT_VERSION, min_version, "distributed")
Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = ["PREDICTIONS_CSV", "PREDICTED_CLASS", "PredictionWriter", "write_predictions_csv", "publish_file"]

PREDICTIONS_CSV = "predictions.csv"
"""Name of the combined table in the output folder (columns ``case_id,image,<class 1>,...,<class C>``, with
``predicted_class`` after ``image`` when the results are single-label)."""

PREDICTED_CLASS = "predicted_class"
"""Key (JSON) and column (CSV) of a single-label result's predicted class name (the argmax)."""

_SUM_TOLERANCE = 1e-3

_MAX_NAMED = 5


def _per_sample(data: Any, key: str, what: str) -> list[Any]:
    """The ``B`` values of ``key`` from a decollated list of dicts or from a batch dict (tensor rows or a list)."""
    if isinstance(data, Mapping):
        if key not in data:
            raise KeyError(f"engine.state.{what} has no '{key}' (found keys: {sorted(map(str, data))}).")
        value = data[key]
        return list(value) if isinstance(value, (torch.Tensor, np.ndarray, list, tuple)) else [value]
    if isinstance(data, Sequence) and all(isinstance(d, Mapping) for d in data):
        missing = [k for k, d in enumerate(data) if key not in d]
        if missing:
            raise KeyError(
                f"item(s) {missing[:_MAX_NAMED]} of engine.state.{what} have no '{key}' "
                f"(found keys: {sorted(map(str, data[missing[0]]))})."
            )
        return [d[key] for d in data]
    raise TypeError(f"engine.state.{what} must be a dict or a list of dicts (decollated), got {type(data).__name__}.")


def _image_paths(batch: Any, image_key: str) -> list[str]:
    """Source path of each sample: the datalist string, or ``filename_or_obj`` of the loaded image's metadata."""
    if isinstance(batch, Mapping) and isinstance(batch.get(image_key), MetaTensor):
        names = batch[image_key].meta.get(ImageMetaKey.FILENAME_OR_OBJ)
        if names is not None:
            return [str(n) for n in (names if isinstance(names, (list, tuple)) else [names])]
    paths = []
    for value in _per_sample(batch, image_key, "batch"):
        if isinstance(value, (str, os.PathLike)):
            paths.append(str(value))
        elif isinstance(value, MetaTensor):
            paths.append(str(value.meta.get(ImageMetaKey.FILENAME_OR_OBJ, "")))
        else:
            paths.append("")
    return paths


def publish_file(tmp: Path, path: Path, overwrite: bool) -> bool:
    """Move the finished file ``tmp`` to ``path`` atomically; ``tmp`` is gone afterwards either way.

    Without ``overwrite`` an existing ``path`` is never replaced (returns False): a hard link is atomic and fails when
    the result exists, also between ranks; on a filesystem without hard links it checks, then renames (a small race
    between ranks). With ``overwrite`` it is ``os.replace``.
    """
    try:
        if overwrite:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _write_new(path: Path, text: str, overwrite: bool) -> bool:
    """Write ``text`` to ``path`` atomically; without ``overwrite`` never replace an existing file (returns False)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    return publish_file(tmp, path, overwrite)


def write_predictions_csv(
    output_dir: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    filename: str = PREDICTIONS_CSV,
    skip_missing_dir: bool = False,
) -> Path | None:
    """Rebuild ``<output_dir>/predictions.csv`` from every per-case JSON in ``output_dir`` (not recursive).

    One row per case, sorted by case id; columns ``case_id``, ``image``, ``predicted_class`` (only when some result
    holds one: single-label results; empty for a result without), then ``class_names`` in order, then any other
    class found in the JSONs (with a warning, e.g. results of another model version; empty cells where a case has
    no such class). A ``.json`` that is not a prediction (no ``case_id``/``probabilities``) or cannot be parsed is left
    out with a warning naming it. The CSV is replaced atomically; probabilities are written with Python's shortest
    round-trip ``repr``, so the CSV holds exactly the JSON values.

    Args:
        output_dir: the folder of per-case results.
        class_names: column order of the classes. Defaults to None (order of first appearance in the JSONs).
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
    rows, columns, single = [], list(class_names or []), False
    for path in sorted(out.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            logging.getLogger(__name__).warning(f"'{path}' left out of {filename}: not readable JSON ({e}).")
            continue
        if not (isinstance(record, dict) and "case_id" in record and isinstance(record.get("probabilities"), dict)):
            logging.getLogger(__name__).warning(f"'{path}' left out of {filename}: not a prediction file.")
            continue
        rows.append(record)
        single = single or PREDICTED_CLASS in record
        columns.extend(c for c in record["probabilities"] if c not in columns)
    extra = columns[len(class_names or []) :]
    if class_names is not None and extra:
        logging.getLogger(__name__).warning(f"{filename}: per-case results hold other classes {extra[:_MAX_NAMED]}.")
    rows.sort(key=lambda r: str(r["case_id"]))
    target, tmp = out / filename, out / f".{filename}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["case_id", "image", *([PREDICTED_CLASS] if single else []), *columns])
        for r in rows:
            probs = r["probabilities"]
            cells = [repr(probs[c]) if c in probs else "" for c in columns]
            predicted = [str(r.get(PREDICTED_CLASS, ""))] if single else []
            writer.writerow([r["case_id"], r.get("image", ""), *predicted, *cells])
    os.replace(tmp, target)
    return target


class PredictionWriter:
    """Write each case's class probabilities to ``<output_dir>/<case_id>.json`` and, at the end of the run, rebuild
    ``<output_dir>/predictions.csv`` from all per-case JSONs in the folder.

    Attach it to the inference evaluator (``SupervisedEvaluator`` with ``decollate=True``, the default, and
    ``postprocessing`` holding ``Activationsd(keys="pred", sigmoid=True)``, or ``softmax=True`` with
    ``single_label=True``). At every ``ITERATION_COMPLETED`` it reads,
    per sample, ``engine.state.output[i][pred_key]`` (``C`` probabilities in [0, 1]) and, from ``engine.state.batch``,
    the case id (``case_key``, carried through the transforms from the datalist of
    :func:`monai_ext.data.inference.inference_datalist`) and the source image (the datalist path, or
    ``filename_or_obj`` of the loaded image). A batch-first ``dict`` output (``decollate=False``) works too.

    A JSON looks like ``{"case_id": "p1__view1", "image": "/data/p1/view1.dcm", "model_version": "0.1.0",
    "probabilities": {"Atelectasis": 0.0312, ...}}`` (``model_version`` only when given). With ``single_label=True``
    (softmax outputs, one class per case) the probabilities must sum to 1 and the JSON also holds
    ``"predicted_class"``, the name of the most probable class, after ``image`` (and ``predictions.csv`` a
    ``predicted_class`` column).

    With ``overwrite=False`` (default) an existing result is never replaced: the case is left alone, counted and
    logged (a warning names the first few; filter them out beforehand with
    :func:`monai_ext.data.inference.pending_cases` with ``kind="radiograph"``). ``overwrite=True`` replaces it.

    At ``COMPLETED`` the handler logs how many results were written and kept, and the first rank rebuilds the CSV
    (:func:`write_predictions_csv`) after a barrier: under ``torchrun`` attach it on every rank (each rank writes its
    own cases) and keep ``DistributedSampler``'s default ``even_divisible=True``, so that no rank has an empty share
    (MONAI skips an empty run, and the other ranks would wait at the barrier); a case repeated as padding is written
    once and then counted as kept.

    Args:
        output_dir: folder of the results (created at the start of the run).
        class_names: the ``C`` class names, in the network's output order.
        pred_key: key of the probabilities in the output. Defaults to ``"pred"``.
        case_key: key of the case id in the batch. Defaults to ``"case_id"``.
        image_key: key of the image in the batch. Defaults to ``"image"``.
        overwrite: replace existing results. Defaults to False.
        model_version: written into every JSON (e.g. the bundle's ``metadata.json`` version). Defaults to None.
        csv_name: name of the combined table. Defaults to ``"predictions.csv"``.
        name: logger name; None uses ``engine.logger``.
        single_label: softmax outputs of a single-label classifier (see above). Defaults to False (multi-label).
        input_kind: the :class:`~monai_ext.data.inference.InputKind` whose result a case gets; both image kinds
            (``"radiograph"``, ``"photograph"``) give ``<case_id>.json``. Defaults to None (:attr:`input_kind`).

    Raises:
        ValueError: ``class_names`` is empty or repeats a name (or, with ``single_label``, names fewer than two),
            or ``input_kind`` is unknown.
    """

    input_kind: ClassVar[InputKind] = InputKind.RADIOGRAPH
    """The input kind whose result a case gets (:meth:`monai_ext.data.inference.CaseKind.result_path`)."""

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        pred_key: str = "pred",
        case_key: str = "case_id",
        image_key: str = "image",
        overwrite: bool = False,
        model_version: str | None = None,
        csv_name: str = PREDICTIONS_CSV,
        name: str | None = None,
        single_label: bool = False,
        input_kind: InputKind | str | None = None,
    ) -> None:
        names = [str(c) for c in class_names]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"class_names must name each class once, got {names}.")
        self.single_label = as_flag(single_label, "single_label")
        if self.single_label and len(names) < 2:
            raise ValueError(f"a single-label classifier needs at least two class names, got {names}.")
        if input_kind is not None:
            self.input_kind = look_up_option(input_kind, InputKind)
        self.output_dir = Path(output_dir)
        self.class_names = names
        self.pred_key, self.case_key, self.image_key = pred_key, case_key, image_key
        self.overwrite = as_flag(overwrite, "overwrite")
        self.model_version = model_version
        self.csv_name = csv_name
        self.logger = logging.getLogger(name)
        self._name = name
        self.written: list[str] = []
        self.kept: list[str] = []

    def attach(self, engine: Engine) -> None:
        """Reset the counts at ``STARTED``, write per-case results at ``ITERATION_COMPLETED``, rebuild the CSV at
        ``COMPLETED``."""
        if self._name is None:
            self.logger = engine.logger
        for event, handler in (
            (Events.STARTED, self._start),
            (Events.ITERATION_COMPLETED, self),
            (Events.COMPLETED, self._complete),
        ):
            if not engine.has_event_handler(handler, event):
                engine.add_event_handler(event, handler)

    def _start(self, engine: Engine) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        mark_output_folder(self.output_dir)  # never read back as inputs
        self.written, self.kept = [], []

    def __call__(self, engine: Engine) -> None:
        """Write one JSON per sample of this iteration.

        Raises:
            KeyError: the output has no ``pred_key`` or the batch no ``case_key`` / ``image_key``.
            TypeError: the output or batch is neither a dict nor a list of dicts.
            ValueError: a prediction does not hold ``C`` values in [0, 1] (logits: add
                ``Activationsd(keys="pred", sigmoid=True)``, or ``softmax=True`` for ``single_label``, to the
                postprocessing), with ``single_label`` values that do not sum to 1, a case id is not a safe file
                name, or the numbers of predictions and cases differ.
        """
        preds = _per_sample(engine.state.output, self.pred_key, "output")
        case_ids = [str(c) for c in _per_sample(engine.state.batch, self.case_key, "batch")]
        images = _image_paths(engine.state.batch, self.image_key)
        if not len(preds) == len(case_ids) == len(images):
            raise ValueError(
                f"{len(preds)} predictions but {len(case_ids)} case ids and {len(images)} images in this iteration."
            )
        for pred, case_id, image in zip(preds, case_ids, images):
            self.write(case_id, image, pred)

    def result_path(self, case_id: str) -> Path:
        """Where the result of ``case_id`` goes: the :attr:`input_kind`'s result in ``output_dir``.

        Raises:
            ValueError: ``case_id`` is not a safe file name (allowed: ``A-Z a-z 0-9 . _ -``, not starting with ``.``
                or ``-``; :func:`monai_ext.data.inference.case_ids.check_case_id`).
        """
        return case_kind(self.input_kind).result_path(self.output_dir, case_id)

    def write(self, case_id: str, image: str, pred: Any) -> bool:
        """Write one case's result; returns False when it exists and ``overwrite`` is False (the case is kept).

        Args:
            case_id: a safe file name (see :meth:`result_path`).
            image: the source image path, stored as given.
            pred: ``C`` probabilities in [0, 1] (tensor, array or list; a ``C 1 ...`` shape is flattened).

        Raises:
            ValueError: as :meth:`__call__`.
        """
        path = self.result_path(case_id)
        values = torch.as_tensor(pred.as_tensor() if isinstance(pred, MetaTensor) else pred).detach()
        values = values.to(device="cpu", dtype=torch.float64).reshape(-1)
        if values.numel() != len(self.class_names):
            raise ValueError(
                f"case '{case_id}': prediction has {values.numel()} values but {len(self.class_names)} class names "
                f"were given ({self.class_names[:_MAX_NAMED]}...)."
            )
        activation = "softmax" if self.single_label else "sigmoid"
        if not bool(torch.isfinite(values).all()) or float(values.min()) < 0.0 or float(values.max()) > 1.0:
            raise ValueError(
                f"case '{case_id}': prediction values span [{float(values.min()):.4g}, {float(values.max()):.4g}], "
                f"not probabilities in [0, 1]; add Activationsd(keys='pred', {activation}=True) to the postprocessing."
            )
        if self.single_label and abs(float(values.sum()) - 1.0) > _SUM_TOLERANCE:
            raise ValueError(
                f"case '{case_id}': single-label probabilities sum to {float(values.sum()):.4g}, not 1; add "
                "Activationsd(keys='pred', softmax=True) to the postprocessing (sigmoid outputs: single_label=False)."
            )
        record: dict[str, Any] = {"case_id": case_id, "image": image}
        if self.single_label:
            record[PREDICTED_CLASS] = self.class_names[int(values.argmax())]
        if self.model_version is not None:
            record["model_version"] = self.model_version
        record["probabilities"] = {c: float(v) for c, v in zip(self.class_names, values.tolist())}
        if _write_new(path, json.dumps(record, indent=2) + "\n", self.overwrite):
            self.written.append(case_id)
            return True
        self.kept.append(case_id)
        return False

    def _complete(self, engine: Engine) -> None:
        label = type(self).__name__
        if self.kept:
            self.logger.warning(
                f"{label}: {len(self.kept)} case(s) already had a result in '{self.output_dir}' and were kept "
                f"(overwrite=False): {self.kept[:_MAX_NAMED]}{' ...' if len(self.kept) > _MAX_NAMED else ''}."
            )
        self.logger.info(f"{label}: wrote {len(self.written)} result(s) to '{self.output_dir}'.")
        if idist.get_world_size() > 1:
            idist.barrier()
        if idist.get_rank() == 0:
            path = self.rebuild_csv()
            self.logger.info(f"{label}: rebuilt '{path}' from the per-case results.")

    def rebuild_csv(self) -> Path:
        """Rebuild the combined table from every per-case result in ``output_dir`` (:func:`write_predictions_csv`)."""
        return write_predictions_csv(self.output_dir, self.class_names, self.csv_name)
