# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Evaluator handler writing a single-label (multi-class) classification report: accuracy, per-class precision /
recall / F1, macro F1 and the confusion matrix (``classification_report.json``), the confusion matrix as a figure
(``confusion_matrix.png``), the per-case predictions (``predictions.csv``) and per-class precision / recall / F1
(``per_class.csv``, last row ``macro``: the macro F1).

It collects the class probabilities and true labels over the evaluation pass, all-gathers them across ranks (MONAI's
:func:`monai.utils.evenly_divisible_all_gather`) and scores them with scikit-learn's ``confusion_matrix`` and
``precision_recall_fscore_support`` (the predicted class is the argmax of the probabilities).

For the evaluator's key metric (top-1 accuracy) use MONAI's ``ConfusionMatrix(metric_name="sensitivity")`` on one-hot
``pred`` and ``label`` (postprocessing ``Activationsd(softmax)``, a copy of the probabilities for this report, then
``AsDiscreted(argmax, to_onehot)``): its default reduction sums TP and FN over samples and classes (micro average),
and for single-label one-hot data TP / (TP + FN) is the fraction of correct cases. ``metric_name="accuracy"`` is
not: it is (TP + TN) / all over the ``C`` one-vs-rest problems, ``1 - 2 * errors / (C * N)`` (0.733 for 60 %
correct of 3 classes; measured in the tests).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from monai.data import MetaTensor
from monai.utils import IgniteInfo, evenly_divisible_all_gather, look_up_option, min_version, optional_import
from monai.utils.enums import StrEnum
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from monai_ext.handlers.prediction_writer import _image_paths, publish_file

idist, _ = optional_import("ignite", IgniteInfo.OPT_IMPORT_VERSION, min_version, "distributed")
Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = [
    "REPORT_JSON",
    "CONFUSION_PNG",
    "EVAL_PREDICTIONS_CSV",
    "PER_CLASS_CSV",
    "ProbabilityActivation",
    "ClassificationReport",
    "classification_metrics",
    "save_confusion_matrix_png",
]

REPORT_JSON = "classification_report.json"
CONFUSION_PNG = "confusion_matrix.png"
EVAL_PREDICTIONS_CSV = "predictions.csv"
PER_CLASS_CSV = "per_class.csv"
_RESULT_KEYS = ("accuracy", "macro_f1")
_SUM_TOLERANCE = 1e-3


class ProbabilityActivation(StrEnum):
    """What the report's ``pred`` holds: ``"none"`` (softmax probabilities) or ``"softmax"`` (logits)."""

    NONE = "none"
    SOFTMAX = "softmax"


def _plain(value: Any) -> torch.Tensor:
    value = value.as_tensor() if isinstance(value, MetaTensor) else torch.as_tensor(value)
    return value.detach().to("cpu", torch.float64)


def _samples(data: Any, key: str) -> list[torch.Tensor]:
    """The per-sample values of ``key`` (flattened float64 CPU tensors) from a decollated list or a batch dict."""
    hint = "the report needs predictions and labels (an evaluator over a labelled datalist)"
    if isinstance(data, Mapping):
        if key not in data:
            raise KeyError(f"engine.state.output has no '{key}'; {hint} (found keys: {sorted(map(str, data))}).")
        value = _plain(data[key])
        return [row.reshape(-1) for row in value] if value.ndim else [value.reshape(1)]
    if isinstance(data, Sequence) and all(isinstance(d, Mapping) for d in data):
        missing = [k for k, d in enumerate(data) if key not in d]
        if missing:
            raise KeyError(f"item(s) {missing[:5]} of engine.state.output have no '{key}'; {hint}.")
        return [_plain(d[key]).reshape(-1) for d in data]
    raise TypeError(f"engine.state.output must be a dict or a list of dicts, got {type(data).__name__}.")


def _label_index(label: torch.Tensor, num_classes: int, k: int) -> int:
    """Class index of one label: a single integer value, or a one-hot row of ``num_classes`` values."""
    if label.numel() == 1:
        value = float(label.reshape(()))
        if value != int(value) or not 0 <= int(value) < num_classes:
            raise ValueError(f"sample {k}: label {value:g} is not a class index in [0, {num_classes}).")
        return int(value)
    if label.numel() == num_classes and bool(((label == 0) | (label == 1)).all()) and int(label.sum()) == 1:
        return int(label.argmax())
    raise ValueError(
        f"sample {k}: label {label.tolist()} is neither a class index nor a one-hot row of {num_classes} values "
        "(single-label classification)."
    )


def classification_metrics(
    y_pred: np.ndarray | Sequence[int], y_true: np.ndarray | Sequence[int], class_names: Sequence[str]
) -> dict[str, Any]:
    """Single-label scores of predicted against true class indices.

    Args:
        y_pred: ``N`` predicted class indices.
        y_true: ``N`` true class indices in ``[0, C)``.
        class_names: the ``C`` class names.

    Returns:
        ``{"num_cases", "accuracy", "macro_f1", "class_names", "per_class": [{"class", "precision", "recall",
        "f1", "support"}, ...], "confusion_matrix": C x C list (rows true, columns predicted)}``. A class never
        predicted has precision 0 and a class without cases recall 0 (scikit-learn's ``zero_division=0``); macro F1
        is the unweighted mean over all ``C`` classes.

    Raises:
        ValueError: lengths differ, no case, or an index outside ``[0, C)``.
    """
    y_pred, y_true = np.asarray(y_pred, dtype=np.int64), np.asarray(y_true, dtype=np.int64)
    c = len(class_names)
    if y_pred.shape != y_true.shape or y_pred.ndim != 1 or y_pred.size == 0:
        raise ValueError(f"y_pred {y_pred.shape} and y_true {y_true.shape} must be the same non-empty 1-D shape.")
    for name, values in (("y_pred", y_pred), ("y_true", y_true)):
        if values.min() < 0 or values.max() >= c:
            raise ValueError(f"{name} holds class indices outside [0, {c}) ({c} class names).")
    labels = list(range(c))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    per_class = [
        {
            "class": str(name),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    ]
    return {
        "num_cases": int(y_true.size),
        "accuracy": float(np.trace(cm) / y_true.size),
        "macro_f1": float(np.mean(f1)),
        "class_names": [str(n) for n in class_names],
        "per_class": per_class,
        "confusion_matrix": cm.astype(int).tolist(),
    }


def save_confusion_matrix_png(
    cm: np.ndarray | Sequence[Sequence[int]],
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Draw the ``C x C`` confusion matrix (rows true, columns predicted) with each cell's count and its row
    percentage (the share of the true class's cases), shaded by the row fraction; Agg canvas, no pyplot state.

    Returns:
        The path of the PNG (its folder is created).
    """
    cm = np.asarray(cm, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
    c = len(class_names)
    fig = Figure(figsize=(1.6 + 1.3 * c, 1.2 + 1.1 * c))
    ax = fig.add_subplot()
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    for i in range(c):
        for j in range(c):
            ax.text(
                j,
                i,
                f"{cm[i, j]}\n{100 * frac[i, j]:.1f}%",
                ha="center",
                va="center",
                color="white" if frac[i, j] > 0.5 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(c), labels=[str(n) for n in class_names], rotation=30, ha="right")
    ax.set_yticks(range(c), labels=[str(n) for n in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"confusion matrix ({int(cm.sum())} cases)")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out, dpi=dpi, format="png", bbox_inches="tight")
    return out


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    publish_file(tmp, path, overwrite=True)


class ClassificationReport:
    """Single-label classification report of an evaluation pass, written to files and ``engine.state.metrics``.

    Collects, at every ``ITERATION_COMPLETED``, ``engine.state.output[i][pred_key]`` (``C`` probabilities, or logits
    with ``activation="softmax"``), ``[label_key]`` (a class index, or a one-hot row of ``C``) and the source image
    (``engine.state.batch[image_key]``: the datalist path, or ``filename_or_obj`` of the loaded image; empty when
    absent); at ``EPOCH_COMPLETED`` (the end of the evaluator's single pass) gathers them from every rank and

    - computes :func:`classification_metrics` (kept as :attr:`result`);
    - on the first rank writes ``<output_dir>/classification_report.json`` (the result),
      ``confusion_matrix.png`` (:func:`save_confusion_matrix_png`) and ``predictions.csv`` (columns ``image,
      true_label, predicted_label, prob_<class>...``, class names as labels, probabilities with Python's
      round-trip ``repr``), each replaced atomically (an evaluation folder holds the latest evaluation);
    - logs accuracy and macro F1 and puts those named in ``metric_names`` into ``engine.state.metrics``.

    It runs at ``EPOCH_COMPLETED`` so that handlers reading ``engine.state.metrics`` then (``StatsHandler``) see the
    values: list it before them. Under ``torchrun`` attach it on every rank (the gather is collective) with a
    ``DistributedSampler(even_divisible=False)``.

    Args:
        output_dir: folder of the report files (created when written).
        class_names: the ``C`` class names in output order (``C >= 2``).
        pred_key: key of the probabilities in the output. Defaults to ``"pred"``; when the postprocessing turns
            ``pred`` one-hot for a MONAI metric, copy the probabilities first (``CopyItemsd``) and name the copy.
        label_key: key of the labels in the output. Defaults to ``"label"``.
        image_key: key of the image in the batch. Defaults to ``"image"``.
        activation: {``"none"``, ``"softmax"``}, see :class:`ProbabilityActivation`. Defaults to ``"none"``.
        metric_names: ``{result key: engine.state.metrics name}`` for keys in {``"accuracy"``, ``"macro_f1"``}.
            Defaults to None (nothing put into the metrics).
        name: logger name; None uses ``engine.logger``.

    Raises:
        ValueError: fewer than two class names or a repeated one, an unknown ``activation``, or ``metric_names``
            with another key.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        pred_key: str = "pred",
        label_key: str = "label",
        image_key: str = "image",
        activation: ProbabilityActivation | str = ProbabilityActivation.NONE,
        metric_names: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        names = [str(c) for c in class_names]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"class_names must name at least two classes, each once, got {names}.")
        metric_names = {} if metric_names is None else dict(metric_names)
        unknown = [k for k in metric_names if k not in _RESULT_KEYS]
        if unknown:
            raise ValueError(f"metric_names keys must be among {list(_RESULT_KEYS)}, got {unknown}.")
        self.output_dir = Path(output_dir)
        self.class_names = names
        self.pred_key, self.label_key, self.image_key = pred_key, label_key, image_key
        self.activation = look_up_option(activation, ProbabilityActivation)
        self.metric_names = metric_names
        self.logger = logging.getLogger(name)
        self._name = name
        self._probs: list[torch.Tensor] = []
        self._labels: list[int] = []
        self._images: list[str] = []
        self.result: dict[str, Any] | None = None

    def attach(self, engine: Engine) -> None:
        """Reset at ``EPOCH_STARTED``, collect at ``ITERATION_COMPLETED``, report at ``EPOCH_COMPLETED``."""
        if self._name is None:
            self.logger = engine.logger
        for event, handler in (
            (Events.EPOCH_STARTED, self.reset),
            (Events.ITERATION_COMPLETED, self.collect),
            (Events.EPOCH_COMPLETED, self),
        ):
            if not engine.has_event_handler(handler, event):
                engine.add_event_handler(event, handler)

    def reset(self, engine: Engine | None = None) -> None:
        """Forget what was collected."""
        self._probs, self._labels, self._images = [], [], []

    def _probabilities(self, pred: torch.Tensor, k: int) -> torch.Tensor:
        c = len(self.class_names)
        if pred.numel() != c:
            raise ValueError(f"sample {k}: '{self.pred_key}' has {pred.numel()} values but {c} class names.")
        if self.activation == ProbabilityActivation.SOFTMAX:
            return torch.softmax(pred, dim=0)
        finite = bool(torch.isfinite(pred).all())
        if not finite or float(pred.min()) < 0.0 or abs(float(pred.sum()) - 1.0) > _SUM_TOLERANCE:
            raise ValueError(
                f"sample {k}: '{self.pred_key}' = {pred.tolist()} are not probabilities summing to 1; add "
                "Activationsd(keys='pred', softmax=True) before copying them, or pass activation='softmax' (logits)."
            )
        return pred

    def collect(self, engine: Engine) -> None:
        """Append this iteration's probabilities, label indices and image paths.

        Raises:
            KeyError: the output misses ``pred_key`` or ``label_key``.
            ValueError: a prediction has not ``C`` values (or not probabilities with ``activation="none"``), a label
                is neither a class index nor one-hot, or the counts of predictions and labels differ.
        """
        preds = _samples(engine.state.output, self.pred_key)
        labels = _samples(engine.state.output, self.label_key)
        if len(preds) != len(labels):
            raise ValueError(f"{len(preds)} predictions but {len(labels)} labels in this iteration.")
        c = len(self.class_names)
        base = len(self._labels)
        for k, (pred, label) in enumerate(zip(preds, labels)):
            self._probs.append(self._probabilities(pred, base + k))
            self._labels.append(_label_index(label, c, base + k))
        try:
            images = _image_paths(engine.state.batch, self.image_key)
        except (KeyError, TypeError):
            images = []
        self._images.extend(images if len(images) == len(preds) else [""] * len(preds))

    def __call__(self, engine: Engine) -> None:
        """Gather, score, write the report files and set ``engine.state.metrics``."""
        c = len(self.class_names)
        probs = torch.stack(self._probs) if self._probs else torch.zeros(0, c, dtype=torch.float64)
        labels = torch.tensor(self._labels, dtype=torch.float64).reshape(-1, 1)
        images = list(self._images)
        if idist.get_world_size() > 1:
            probs = evenly_divisible_all_gather(probs, concat=True)
            labels = evenly_divisible_all_gather(labels, concat=True)
            images = [p for part in idist.all_gather(images) for p in (part if isinstance(part, list) else [part])]
        if probs.shape[0] == 0:
            self.logger.warning("ClassificationReport: no prediction was collected; no report written.")
            self.result = None
            return
        y_true = labels.reshape(-1).long().numpy()
        y_pred = probs.argmax(dim=1).numpy()
        self.result = classification_metrics(y_pred, y_true, self.class_names)
        for key, metric in self.metric_names.items():
            engine.state.metrics[metric] = self.result[key]
        if idist.get_rank() == 0:
            self.write(probs.numpy(), y_true, images)
        self.logger.info(
            f"ClassificationReport on {self.result['num_cases']} cases: accuracy {self.result['accuracy']:.4f}, "
            f"macro F1 {self.result['macro_f1']:.4f}; written to '{self.output_dir}'."
        )

    def write(self, probs: np.ndarray, y_true: np.ndarray, images: Sequence[str] | None = None) -> dict[str, Any]:
        """Score ``N x C`` probabilities against ``N`` true class indices and write the three report files.

        Returns:
            The result of :func:`classification_metrics`.
        """
        probs, y_true = np.asarray(probs, dtype=np.float64), np.asarray(y_true, dtype=np.int64)
        y_pred = probs.argmax(axis=1)
        result = classification_metrics(y_pred, y_true, self.class_names)
        images = list(images) if images is not None and len(images) == len(y_true) else [""] * len(y_true)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        _atomic_text(self.output_dir / REPORT_JSON, json.dumps(result, indent=2) + "\n")
        png_tmp = self.output_dir / f".{CONFUSION_PNG}.{os.getpid()}.tmp.png"
        save_confusion_matrix_png(result["confusion_matrix"], self.class_names, png_tmp)
        publish_file(png_tmp, self.output_dir / CONFUSION_PNG, overwrite=True)
        csv_tmp = self.output_dir / f".{EVAL_PREDICTIONS_CSV}.{os.getpid()}.tmp"
        with open(csv_tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["image", "true_label", "predicted_label", *(f"prob_{n}" for n in self.class_names)])
            for image, t, p, row in zip(images, y_true, y_pred, probs):
                writer.writerow([image, self.class_names[t], self.class_names[p], *(repr(float(v)) for v in row)])
        publish_file(csv_tmp, self.output_dir / EVAL_PREDICTIONS_CSV, overwrite=True)
        csv_tmp = self.output_dir / f".{PER_CLASS_CSV}.{os.getpid()}.tmp"
        with open(csv_tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["class", "precision", "recall", "f1", "support"])
            for row in result["per_class"]:
                writer.writerow([row["class"], row["precision"], row["recall"], row["f1"], row["support"]])
            writer.writerow(["macro", "", "", result["macro_f1"], result["num_cases"]])
        publish_file(csv_tmp, self.output_dir / PER_CLASS_CSV, overwrite=True)
        self.result = result
        return result
