# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DADAM, the Diseased Area Data Augmentation Method: disease patches from boxed public radiographs pasted on
normal images (CutMix) or blended into images of a tail class (Mixup), guided by the label correlation.

Kim et al., "Feature Pyramid Sum Method and Diseased Area Data Augmentation Method for long-tailed chest X-ray
classification", CXR-LT 2023 (ICCV CVAMD workshop), Sec. 3.2 and 4.1. There is no official code; where the paper is
vague this module's reading is written next to the option it sets:

- *tail classes* (not defined in the paper): :func:`tail_class_indices`, positive count below the median class
  count by default, ``"No Finding"`` never;
- *correlation*: Pearson over the training labels (the paper's Fig. 3), :func:`label_correlation`;
- *CutMix on a normal image*: a tail class with boxes is drawn uniformly, then one of its patches; every other class
  with boxes whose correlation with it is at least ``min_correlation`` is tried in order of decreasing correlation
  and added with probability equal to the correlation ("preferably those strongly correlated"), up to
  ``max_patches`` patches. Each patch keeps its *relative* box position (scaled to the background), pasted with
  alpha 1; a patch that would overlap an earlier one is redrawn among its class's patches (their positions differ),
  up to ``max_placement_tries`` times, then skipped (the paper: "appended patches do not overlap");
- *Mixup on a diseased image*: a tail class positive in the background is drawn uniformly; the patch is of the class
  most correlated with it among classes with boxes that are *not* positive in the background ("we exclude the
  other diseases present in the background image"), blended as ``alpha * patch + (1 - alpha) * background`` with
  ``alpha = 0.6`` ("a transparency value of 0.6", read as the patch's weight);
- labels of the result are the union of the background's and the patches' classes, ``"No Finding"`` cleared.

Images are channel-first ``C W H`` (MONAI's radiograph loaders: axis 1 is x, the width), values in [0, 1]; a box
``(x1, y1, x2, y2)`` is ``img[:, x1:x2, y1:y2]``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import Compose, MapTransform, RandomizableTransform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor, look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.cxr.labels import MIMIC_CXR_LT_CLASSES, NO_FINDING
from monai_ext.data.cxr.lesion_boxes import LesionBox

__all__ = [
    "DadamMode",
    "tail_class_indices",
    "label_correlation",
    "correlation_distance",
    "radiograph_loader",
    "PatchBank",
    "DiseasedAreaAugmenter",
    "RandDiseasedAreaAugmentd",
    "dadam_transform",
]

RandomState = np.random.Generator | np.random.RandomState


class DadamMode(StrEnum):
    """The two DADAM strategies: ``cutmix_normal`` (patches pasted on a "No Finding" image) and ``mixup_diseased``
    (a patch blended into an image of a tail class)."""

    CUTMIX_NORMAL = "cutmix_normal"
    MIXUP_DISEASED = "mixup_diseased"


def _labels_2d(labels: Any) -> np.ndarray:
    arr = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"labels must be N x C (images x classes), got shape {arr.shape}")
    return arr


def _label_vector(labels: Any) -> np.ndarray:
    """A fresh float32 numpy copy of one item's label vector (list, array, tensor)."""
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return np.array(arr, dtype=np.float32).reshape(-1)


def tail_class_indices(
    labels: Any, threshold: float | None = None, classes: Sequence[str] = MIMIC_CXR_LT_CLASSES
) -> list[int]:
    """Indices of the tail classes of a multi-label training set.

    Args:
        labels: ``N x C`` 0/1 labels of the training images (array, tensor or nested lists).
        threshold: a class is tail when its prevalence (positives / N) is below this fraction. Defaults to None:
            tail = positive count below the median positive count of the disease classes.
        classes: the ``C`` class names; ``"No Finding"`` (when present) is never a tail class and does not enter
            the median. Defaults to :data:`MIMIC_CXR_LT_CLASSES`.

    Returns:
        Sorted class indices.

    Raises:
        ValueError: ``labels`` is not ``N x len(classes)`` or is empty, ``threshold`` outside (0, 1].

    Example:
        >>> tail_class_indices([[1, 0, 1], [1, 1, 1], [1, 0, 0]], classes=("a", "b", "c"))  # counts 3, 1, 2: median 2
        [1]
    """
    arr = _labels_2d(labels)
    if arr.shape[1] != len(classes) or arr.shape[0] == 0:
        raise ValueError(f"labels shape {arr.shape} does not match N x {len(classes)} classes (N > 0)")
    counts = arr.sum(axis=0)
    disease = [i for i, c in enumerate(classes) if c != NO_FINDING]
    if threshold is None:
        cut = float(np.median(counts[disease]))
        return [i for i in disease if counts[i] < cut]
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold is a prevalence fraction in (0, 1], got {threshold}")
    return [i for i in disease if counts[i] / arr.shape[0] < threshold]


def label_correlation(labels: Any) -> np.ndarray:
    """Pearson correlation between the label columns, ``C x C`` float64.

    A constant column (never or always positive) has no defined correlation: it gets 0 off the diagonal and 1 on
    it, so the matrix stays finite and comparable (:func:`correlation_distance`).

    Raises:
        ValueError: ``labels`` is not ``N x C`` with N >= 2.
    """
    arr = _labels_2d(labels)
    if arr.shape[0] < 2:
        raise ValueError(f"label_correlation needs at least 2 images, got labels of shape {arr.shape}")
    centred = arr - arr.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    ok = norms > 0
    safe = np.where(ok, norms, 1.0)
    corr = (centred.T @ centred) / np.outer(safe, safe)
    corr[~ok, :] = 0.0
    corr[:, ~ok] = 0.0
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def correlation_distance(a: Any, b: Any) -> float:
    """Frobenius norm ``||A - B||_F`` of two ``C x C`` correlation matrices (the paper's Fig. 3 comparison).

    Raises:
        ValueError: the shapes differ.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"correlation matrices of shapes {a.shape} and {b.shape} cannot be compared")
    return float(np.linalg.norm(a - b, ord="fro"))


def radiograph_loader(key: str = "image") -> Compose:
    """The project's radiograph chain ``LoadImageCheckedd -> ToGrayscaled -> NormalizeRadiographd``: a file path
    under ``key`` becomes a ``1 W H`` float MetaTensor in [0, 1]."""
    from monai_ext.transforms.channels import ToGrayscaled
    from monai_ext.transforms.dicom import NormalizeRadiographd
    from monai_ext.transforms.io import LoadImageCheckedd

    return Compose(
        [
            LoadImageCheckedd(keys=key, image_only=True, ensure_channel_first=True),
            ToGrayscaled(keys=key),
            NormalizeRadiographd(keys=key),
        ]
    )


class PatchBank:
    """Lesion patches cut once from their source images, ``float16`` in [0, 1], with their relative boxes.

    Args:
        patches: ``P`` arrays ``w_p x h_p`` (x along the width first, as in ``img[0, x1:x2, y1:y2]``).
        relative_boxes: ``P x 4`` boxes as fractions of the source width/height ``(x1, y1, x2, y2)``.
        class_indices: ``P`` indices into ``classes``.
        classes: the label space. Defaults to :data:`MIMIC_CXR_LT_CLASSES`.
        boxes: the ``P`` :class:`LesionBox` records (provenance), or None.

    Raises:
        ValueError: lengths differ, an empty patch, a relative box outside [0, 1] or a class index out of range.
    """

    def __init__(
        self,
        patches: Sequence[Any],
        relative_boxes: Sequence[Sequence[float]],
        class_indices: Sequence[int],
        classes: Sequence[str] = MIMIC_CXR_LT_CLASSES,
        boxes: Sequence[LesionBox] | None = None,
    ) -> None:
        n = len(patches)
        if len(relative_boxes) != n or len(class_indices) != n or (boxes is not None and len(boxes) != n):
            raise ValueError(
                f"PatchBank needs one relative box, class index (and LesionBox) per patch; got {n} patches, "
                f"{len(relative_boxes)} boxes, {len(class_indices)} class indices"
                + ("" if boxes is None else f", {len(boxes)} LesionBoxes")
            )
        self.classes = tuple(classes)
        self.patches = [np.asarray(p, dtype=np.float16) for p in patches]
        self.relative_boxes = np.asarray(relative_boxes, dtype=np.float64).reshape(n, 4)
        self.class_indices = np.asarray(class_indices, dtype=np.int64).reshape(n)
        self.boxes = list(boxes) if boxes is not None else None
        for i, p in enumerate(self.patches):
            if p.ndim != 2 or p.size == 0:
                raise ValueError(f"patch {i} must be a non-empty w x h array, got shape {p.shape}")
            r = self.relative_boxes[i]
            if not (0 <= r[0] < r[2] <= 1 and 0 <= r[1] < r[3] <= 1):
                raise ValueError(f"relative box {i} {r.tolist()} must satisfy 0 <= x1 < x2 <= 1, 0 <= y1 < y2 <= 1")
            if not 0 <= self.class_indices[i] < len(self.classes):
                raise ValueError(f"class index {self.class_indices[i]} of patch {i} is outside 0..{len(classes) - 1}")

    @classmethod
    def from_library(
        cls,
        library: Sequence[LesionBox],
        classes: Sequence[str] = MIMIC_CXR_LT_CLASSES,
        loader: Any = None,
        max_patch_side: int | None = None,
    ) -> PatchBank:
        """Crop every box of ``library``, loading each source image once.

        Args:
            library: boxes from :func:`~monai_ext.data.cxr.lesion_boxes.lesion_box_library`.
            classes: label space; each box's ``class_name`` must be in it.
            loader: ``{"image": path} -> {"image": 1 W H in [0, 1]}``. Defaults to :func:`radiograph_loader`.
            max_patch_side: patches whose longer side exceeds this many pixels are shrunk (area interpolation,
                aspect kept) to bound memory (VinDr DICOMs are about 2,500-3,000 px, a cardiomegaly box about a
                third of that); patches are rescaled to each background anyway. Defaults to None (full size).

        Raises:
            ValueError: a box class not in ``classes``, or a loaded image whose ``W x H`` differs from the box's
                ``image_size`` (file named).
        """
        classes = tuple(classes)
        loader = loader or radiograph_loader()
        by_image: dict[str, list[int]] = {}
        for i, b in enumerate(library):
            if b.class_name not in classes:
                raise ValueError(f"box class '{b.class_name}' ({b.source} '{b.image}') is not one of {list(classes)}")
            by_image.setdefault(b.image, []).append(i)
        patches: list[Any] = [None] * len(library)
        for image, idx in by_image.items():
            arr = convert_to_tensor(loader({"image": image})["image"], track_meta=False).float()
            size = tuple(arr.shape[1:])
            for i in idx:
                b = library[i]
                if size != tuple(b.image_size):
                    raise ValueError(
                        f"'{image}' loads as {size[0]}x{size[1]} (width x height) but its box "
                        f"{list(b.box)} was checked against {b.image_size[0]}x{b.image_size[1]}"
                    )
                x1, y1, x2, y2 = _pixel_box(b.box, size)
                patch = arr[0, x1:x2, y1:y2]
                if max_patch_side is not None and max(patch.shape) > max_patch_side:
                    scale = max_patch_side / max(patch.shape)
                    shape = [max(1, round(n * scale)) for n in patch.shape]
                    patch = F.interpolate(patch[None, None], size=shape, mode="area")[0, 0]
                patches[i] = patch.numpy()
        return cls(
            patches, [b.relative_box for b in library], [classes.index(b.class_name) for b in library], classes, library
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the bank to one ``.npz`` file (patches, boxes, classes and the :class:`LesionBox` records), so a
        training run can skip re-reading the source images (:meth:`load`)."""
        shapes = np.asarray([p.shape for p in self.patches], dtype=np.int64).reshape(-1, 2)
        flat = np.concatenate([p.ravel() for p in self.patches]) if self.patches else np.zeros(0, np.float16)
        records = [dataclasses.asdict(b) for b in self.boxes] if self.boxes is not None else None
        np.savez(
            path,
            flat=flat,
            shapes=shapes,
            relative_boxes=self.relative_boxes,
            class_indices=self.class_indices,
            meta=np.asarray(json.dumps({"classes": list(self.classes), "boxes": records})),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> PatchBank:
        """Read a bank written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not a saved bank (the missing entry is named).
        """
        with np.load(path, allow_pickle=False) as z:
            missing = {"flat", "shapes", "relative_boxes", "class_indices", "meta"} - set(z.files)
            if missing:
                raise ValueError(f"'{path}' is not a PatchBank file (missing {sorted(missing)}); write it with save()")
            meta = json.loads(str(z["meta"]))
            ends = np.cumsum(z["shapes"].prod(axis=1))
            starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
            patches = [z["flat"][a:b].reshape(shape) for a, b, shape in zip(starts, ends, z["shapes"])]
            boxes = None
            if meta["boxes"] is not None:
                boxes = [
                    LesionBox(**{**r, "box": tuple(r["box"]), "image_size": tuple(r["image_size"])})
                    for r in meta["boxes"]
                ]
            return cls(patches, z["relative_boxes"], z["class_indices"], meta["classes"], boxes)

    def __len__(self) -> int:
        return len(self.patches)

    def indices_of(self, class_index: int) -> np.ndarray:
        """Patch indices of class ``class_index``."""
        return np.flatnonzero(self.class_indices == class_index)

    @property
    def classes_with_patches(self) -> list[int]:
        """Sorted class indices with at least one patch."""
        return sorted(set(self.class_indices.tolist()))


def _pixel_box(box: Sequence[float], size: Sequence[int]) -> tuple[int, int, int, int]:
    """Integer pixel box covering ``box`` (floor/ceil), clipped to ``size = (W, H)``, at least 1 px each way."""
    w, h = int(size[0]), int(size[1])
    x1 = min(max(int(math.floor(box[0])), 0), w - 1)
    y1 = min(max(int(math.floor(box[1])), 0), h - 1)
    x2 = min(max(int(math.ceil(box[2])), x1 + 1), w)
    y2 = min(max(int(math.ceil(box[3])), y1 + 1), h)
    return x1, y1, x2, y2


def _target_box(relative: Sequence[float], size: Sequence[int]) -> tuple[int, int, int, int]:
    """The relative box scaled to ``size = (W, H)``, rounded to pixels, at least 1 px each way."""
    w, h = size
    return _pixel_box(
        (round(relative[0] * w), round(relative[1] * h), round(relative[2] * w), round(relative[3] * h)), size
    )


def _overlaps(a: Sequence[int], b: Sequence[int]) -> bool:
    """Whether two pixel boxes share area (touching edges do not)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class DiseasedAreaAugmenter:
    """DADAM's two strategies on single images (see the module docstring for the paper and our readings).

    Args:
        bank: the lesion patches.
        correlation: ``C x C`` Pearson label correlation of the training set (:func:`label_correlation`).
        tail_classes: tail class indices (:func:`tail_class_indices`).
        alpha: Mixup patch weight, ``alpha * patch + (1 - alpha) * background``. Defaults to 0.6 (paper Sec. 3.2).
        min_correlation: CutMix adds a class ``j`` beside tail class ``t`` only when ``corr(t, j) >=`` this, then
            with probability ``corr(t, j)``. Defaults to 0.1.
        max_patches: at most this many patches per CutMix image (the tail patch included). Defaults to 3.
        max_placement_tries: patches of a class drawn before giving up on a non-overlapping one. Defaults to 10.
        resize_mode: ``torch.nn.functional.interpolate`` mode scaling a patch to its target box,
            ``{"bilinear", "nearest", "area", "bicubic"}``. Defaults to ``"bilinear"``.

    Raises:
        ValueError: shapes that do not match ``bank.classes``, a tail class out of range or ``"No Finding"``, an
            empty bank, or option values out of range.

    Warns:
        UserWarning: no tail class has a patch (the tail classes are named): only Mixup can run (the paper's case
            of tail classes without boxes); :class:`RandDiseasedAreaAugmentd` then leaves normal images unchanged.
    """

    def __init__(
        self,
        bank: PatchBank,
        correlation: Any,
        tail_classes: Sequence[int],
        alpha: float = 0.6,
        min_correlation: float = 0.1,
        max_patches: int = 3,
        max_placement_tries: int = 10,
        resize_mode: str = "bilinear",
    ) -> None:
        self.bank = bank
        self.classes = bank.classes
        c = len(self.classes)
        self.correlation = np.asarray(correlation, dtype=np.float64)
        if self.correlation.shape != (c, c):
            raise ValueError(f"correlation shape {self.correlation.shape} does not match {c} x {c} classes")
        self.no_finding = self.classes.index(NO_FINDING) if NO_FINDING in self.classes else None
        self.tail_classes = sorted(int(t) for t in tail_classes)
        for t in self.tail_classes:
            if not 0 <= t < c or t == self.no_finding:
                raise ValueError(f"tail class index {t} is out of 0..{c - 1} or is '{NO_FINDING}'")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if max_patches < 1 or max_placement_tries < 1:
            raise ValueError(
                f"max_patches and max_placement_tries must be >= 1, got {max_patches}, {max_placement_tries}"
            )
        self.alpha, self.min_correlation = float(alpha), float(min_correlation)
        self.max_patches, self.max_placement_tries = int(max_patches), int(max_placement_tries)
        self.resize_mode = look_up_option(resize_mode, ("bilinear", "nearest", "area", "bicubic"))
        self.boxed = [k for k in bank.classes_with_patches if k != self.no_finding]
        self.cutmix_tails = [t for t in self.tail_classes if t in self.boxed]
        if not self.boxed:
            raise ValueError("the patch bank holds no disease patch; DADAM has nothing to paste")
        if not self.cutmix_tails:
            warnings.warn(f"{self.missing_tail_patch_message()}; CutMix on normal images is off, only Mixup can run")

    def mode_for(self, label: Any) -> DadamMode | None:
        """The strategy an item with ``label`` (``C`` 0/1 values over :attr:`classes`) gets when drawn: CutMix for a
        "No Finding" image (when a tail class has a patch), Mixup for an image with a tail class, else None."""
        lab = _label_vector(label)
        if self.no_finding is not None and lab[self.no_finding] >= 0.5 and self.cutmix_tails:
            return DadamMode.CUTMIX_NORMAL
        if any(lab[t] >= 0.5 for t in self.tail_classes):
            return DadamMode.MIXUP_DISEASED
        return None

    def missing_tail_patch_message(self) -> str:
        """What to do when no tail class has a patch (names the tail classes and the classes with patches)."""
        return (
            f"no tail class has a lesion patch: tail classes {[self.classes[t] for t in self.tail_classes]}, "
            f"classes with patches {[self.classes[k] for k in self.boxed]}; add box sources or class_maps entries "
            "for the tail classes"
        )

    @classmethod
    def from_labels(
        cls, bank: PatchBank, labels: Any, tail_threshold: float | None = None, **kwargs: Any
    ) -> DiseasedAreaAugmenter:
        """Build from the training labels ``N x C`` (correlation and tail classes computed here); ``kwargs`` go
        to the constructor."""
        tails = tail_class_indices(labels, tail_threshold, bank.classes)
        return cls(bank, label_correlation(labels), tails, **kwargs)

    @classmethod
    def from_datalist(
        cls,
        datalist: Sequence[Mapping[str, Any]],
        box_sources: Mapping[str, Any],
        classes: Sequence[str] = MIMIC_CXR_LT_CLASSES,
        label_key: str = "label",
        tail_threshold: float | None = None,
        class_maps: Mapping[str, Mapping[str, str | None]] | None = None,
        vindr_min_readers: int = 2,
        max_patch_side: int | None = None,
        bank_file: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> DiseasedAreaAugmenter:
        """Build in one call (for a bundle config): boxes of ``box_sources``
        (:func:`~monai_ext.data.cxr.lesion_box_library`), their patches, and the correlation and tail classes of
        the *training* ``datalist`` labels (``item[label_key]`` over ``classes``); ``kwargs`` go to the constructor.
        With ``bank_file``, the patches are read from it when it exists (``box_sources``, ``class_maps``,
        ``vindr_min_readers`` and ``max_patch_side`` are then not used) and written to it otherwise
        (:meth:`PatchBank.save`); delete the file after changing those options.

        Example::

            "$monai_ext.transforms.DiseasedAreaAugmenter.from_datalist(@train#datalist, @box_sources)"
        """
        from monai_ext.data.cxr.lesion_boxes import lesion_box_library

        labels = np.asarray([item[label_key] for item in datalist], dtype=np.float64).reshape(-1, len(classes))
        if bank_file is not None and Path(bank_file).is_file():
            bank = PatchBank.load(bank_file)
            if bank.classes != tuple(classes):
                raise ValueError(f"patch bank '{bank_file}' has classes {list(bank.classes)}, not {list(classes)}")
        else:
            library = lesion_box_library(box_sources, class_maps, classes, vindr_min_readers=vindr_min_readers)
            bank = PatchBank.from_library(library, classes, max_patch_side=max_patch_side)
            if bank_file is not None:
                Path(bank_file).parent.mkdir(parents=True, exist_ok=True)
                bank.save(bank_file)
        return cls.from_labels(bank, labels, tail_threshold, **kwargs)

    # --- helpers -----------------------------------------------------------------------------------------------

    def _scaled_patch(self, index: int, target: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        patch = torch.as_tensor(self.bank.patches[index].astype(np.float32), device=like.device)
        size = (target[2] - target[0], target[3] - target[1])
        if tuple(patch.shape) != size:
            kw = {"align_corners": False} if self.resize_mode in ("bilinear", "bicubic") else {}
            patch = F.interpolate(patch[None, None], size=size, mode=self.resize_mode, **kw)[0, 0]
        return patch.clamp(0.0, 1.0).to(like.dtype)

    def _record(self, index: int, target: Sequence[int], alpha: float) -> dict[str, Any]:
        b = self.bank.boxes[index] if self.bank.boxes is not None else None
        return {
            "class": self.classes[int(self.bank.class_indices[index])],
            "patch_index": int(index),
            "source": b.source if b else None,
            "source_image": b.image if b else None,
            "source_box": list(b.box) if b else self.bank.relative_boxes[index].tolist(),
            "target_box": [int(v) for v in target],
            "alpha": float(alpha),
        }

    @staticmethod
    def _as_tensor(background: Any) -> torch.Tensor:
        img = convert_to_tensor(background, track_meta=False)
        if img.ndim != 3:
            raise ValueError(f"background must be channel-first C x W x H, got shape {tuple(img.shape)}")
        return img if img.is_floating_point() else img.float()

    def _finish(self, img: torch.Tensor, background: Any, labels: np.ndarray) -> tuple[Any, np.ndarray]:
        if self.no_finding is not None:
            labels[self.no_finding] = 0.0
        return convert_to_dst_type(img, background, dtype=img.dtype)[0], labels

    # --- the two strategies ------------------------------------------------------------------------------------

    def cutmix_on_normal(
        self, background: NdarrayOrTensor, rng: RandomState, tail_class: int | None = None
    ) -> tuple[NdarrayOrTensor, np.ndarray, dict[str, Any]]:
        """Paste a tail-class patch and correlated patches (alpha 1) on a normal image.

        Args:
            background: ``C W H`` image in [0, 1] (a "No Finding" image; its labels are not used).
            rng: numpy ``Generator`` or ``RandomState`` (MONAI's ``self.R``).
            tail_class: the tail class index, or None to draw one among the tail classes with patches.

        Returns:
            ``(image, labels, provenance)``: the image as ``background``'s type (a MetaTensor keeps its meta), ``C``
            float labels (1 for each pasted class), ``{"mode", "tail_class", "patches": [...]}``.

        Raises:
            ValueError: ``tail_class`` has no patch, or no tail class has one (the tail classes are named).
        """
        if not self.cutmix_tails:
            raise ValueError(self.missing_tail_patch_message())
        img = self._as_tensor(background).clone()
        size = tuple(img.shape[1:])
        t = self.cutmix_tails[rng.choice(len(self.cutmix_tails))] if tail_class is None else int(tail_class)
        if t not in self.boxed:
            raise ValueError(f"class '{self.classes[t]}' has no lesion patch to paste")
        placed: list[tuple[int, tuple[int, int, int, int]]] = []

        def place(k: int) -> bool:
            pool = self.bank.indices_of(k)
            for _ in range(self.max_placement_tries):
                p = int(pool[rng.choice(len(pool))])
                target = _target_box(self.bank.relative_boxes[p], size)
                if not any(_overlaps(target, other) for _, other in placed):
                    img[:, target[0] : target[2], target[1] : target[3]] = self._scaled_patch(p, target, img)
                    placed.append((p, target))
                    return True
            return False

        place(t)
        others = [j for j in self.boxed if j != t and self.correlation[t, j] >= self.min_correlation]
        others.sort(key=lambda j: (-self.correlation[t, j], j))
        for j in others:
            if len(placed) >= self.max_patches:
                break
            if rng.random() < self.correlation[t, j]:
                place(j)
        labels = np.zeros(len(self.classes), dtype=np.float32)
        for p, _ in placed:
            labels[self.bank.class_indices[p]] = 1.0
        out, labels = self._finish(img, background, labels)
        prov = {
            "mode": DadamMode.CUTMIX_NORMAL.value,
            "tail_class": self.classes[t],
            "patches": [self._record(p, target, 1.0) for p, target in placed],
        }
        return out, labels, prov

    def mixup_candidates(self, background_labels: Any, tail_class: int) -> list[int]:
        """Classes with patches, not positive in the background, sorted by decreasing correlation with
        ``tail_class`` (ties by index)."""
        lab = _label_vector(background_labels)
        cands = [j for j in self.boxed if j != tail_class and lab[j] < 0.5]
        return sorted(cands, key=lambda j: (-self.correlation[tail_class, j], j))

    def mixup_on_diseased(
        self, background: NdarrayOrTensor, background_labels: Any, rng: RandomState, tail_class: int | None = None
    ) -> tuple[NdarrayOrTensor, np.ndarray, dict[str, Any]]:
        """Blend a patch of the class most correlated with a tail class into an image positive for it.

        Args:
            background: ``C W H`` image in [0, 1].
            background_labels: its ``C`` 0/1 labels.
            rng: numpy ``Generator`` or ``RandomState``.
            tail_class: a tail class positive in the background, or None to draw one.

        Returns:
            ``(image, labels, provenance)`` as :meth:`cutmix_on_normal`; when every class with patches is already
            positive in the background the image is returned unchanged and ``provenance["patches"]`` is empty.

        Raises:
            ValueError: wrong label length, the background has no tail class positive, or ``tail_class`` is not
                positive in it.
        """
        img = self._as_tensor(background).clone()
        lab = _label_vector(background_labels)
        if lab.shape[0] != len(self.classes):
            raise ValueError(f"background_labels has {lab.shape[0]} values, expected {len(self.classes)} classes")
        positive = [t for t in self.tail_classes if lab[t] >= 0.5]
        if tail_class is None:
            if not positive:
                raise ValueError("mixup_on_diseased needs a background positive for a tail class; it has none")
            t = positive[rng.choice(len(positive))]
        else:
            t = int(tail_class)
            if lab[t] < 0.5:
                raise ValueError(f"tail class '{self.classes[t]}' is not positive in the background labels")
        cands = self.mixup_candidates(lab, t)
        patches = []
        if cands:
            j = cands[0]
            pool = self.bank.indices_of(j)
            p = int(pool[rng.choice(len(pool))])
            target = _target_box(self.bank.relative_boxes[p], tuple(img.shape[1:]))
            region = img[:, target[0] : target[2], target[1] : target[3]]
            patch = self._scaled_patch(p, target, img)
            img[:, target[0] : target[2], target[1] : target[3]] = self.alpha * patch + (1.0 - self.alpha) * region
            lab[j] = 1.0
            patches.append(self._record(p, target, self.alpha))
        out, lab = self._finish(img, background, lab)
        return out, lab, {"mode": DadamMode.MIXUP_DISEASED.value, "tail_class": self.classes[t], "patches": patches}


class RandDiseasedAreaAugmentd(RandomizableTransform, MapTransform):
    """DADAM on the fly: with probability ``prob`` a "No Finding" item gets :meth:`~DiseasedAreaAugmenter.
    cutmix_on_normal`, an item positive for a tail class :meth:`~DiseasedAreaAugmenter.mixup_on_diseased`; other
    items pass unchanged.

    Args:
        keys: ``(image key, label key)``; the image ``C W H`` in [0, 1] (after ``NormalizeRadiographd``), the label
            ``C`` 0/1 values over the augmenter's classes.
        augmenter: the :class:`DiseasedAreaAugmenter`.
        prob: probability of augmenting an eligible item. Defaults to 0.5.
        provenance_key: item key receiving the provenance dict (``{}`` when not augmented), or None. Defaults to None.
        allow_missing_keys: pass items lacking a key unchanged. Defaults to False.

    Raises:
        ValueError: ``keys`` is not two keys.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        keys: KeysCollection,
        augmenter: DiseasedAreaAugmenter,
        prob: float = 0.5,
        provenance_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (image key, label key), got {self.keys}")
        self.augmenter = augmenter
        self.provenance_key = provenance_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(None)
        image_key, label_key = self.keys
        prov: dict[str, Any] = {}
        if image_key not in d or label_key not in d:
            if not self.allow_missing_keys:
                raise KeyError(f"RandDiseasedAreaAugmentd: item lacks key '{image_key}' or '{label_key}'")
        elif self._do_transform:
            aug = self.augmenter
            label = d[label_key]
            lab = _label_vector(label)
            if lab.shape[0] != len(aug.classes):
                raise ValueError(f"'{label_key}' has {lab.shape[0]} values, expected {len(aug.classes)} classes")
            out, mode = None, aug.mode_for(lab)
            if mode == DadamMode.CUTMIX_NORMAL:
                out = aug.cutmix_on_normal(d[image_key], self.R)
            elif mode == DadamMode.MIXUP_DISEASED:
                out = aug.mixup_on_diseased(d[image_key], lab, self.R)
            if out is not None:
                d[image_key] = out[0]
                is_list = isinstance(label, (list, tuple))
                d[label_key] = out[1].tolist() if is_list else convert_to_dst_type(out[1], label)[0]
                prov = out[2]
        if self.provenance_key is not None:
            d[self.provenance_key] = prov
        return d


def dadam_transform(
    datalist: Sequence[Mapping[str, Any]],
    box_sources: Mapping[str, Any],
    prob: float,
    keys: KeysCollection = ("image", "label"),
    original_key: str = "dataset_id",
    **kwargs: Any,
) -> MapTransform:
    """The on-the-fly DADAM step of a bundle's training chain: :class:`RandDiseasedAreaAugmentd` with probability
    ``prob`` over an augmenter built from the *original* training images of ``datalist`` (items whose
    ``original_key`` is 0 or absent: offline DADAM rows, ``dataset_id`` 1, would shift the label correlation and the
    tail classes), or MONAI's ``Identityd`` when ``prob`` is 0 (then no box source is read).

    Args:
        datalist: the training datalist.
        box_sources: ``{"nih": folder, "vindr": folder}`` (:func:`monai_ext.data.cxr.lesion_box_library`).
        prob: probability of augmenting an eligible item, in [0, 1].
        keys: ``(image key, label key)``. Defaults to ``("image", "label")``.
        original_key: the item key marking augmented rows (non-zero). Defaults to ``"dataset_id"``.
        kwargs: :meth:`DiseasedAreaAugmenter.from_datalist` options (``tail_threshold``, ``bank_file``, ``alpha``,
            ...).

    Raises:
        ValueError: ``prob`` outside [0, 1], or (with ``prob`` > 0) no box source.
    """
    from monai.transforms import Identityd

    prob = float(prob)
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"dadam_prob must be in [0, 1], got {prob}")
    if prob == 0.0:
        return Identityd(keys=keys, allow_missing_keys=True)
    if not box_sources:
        raise ValueError(
            "dadam_prob > 0 needs box sources: set box_sources to {'nih': <NIH folder with BBox_List_2017.csv>, "
            "'vindr': <VinDr-CXR folder with train.csv>} (either may be left out)."
        )
    originals = [item for item in datalist if not item.get(original_key)]
    augmenter = DiseasedAreaAugmenter.from_datalist(originals, box_sources, label_key=list(keys)[1], **kwargs)
    return RandDiseasedAreaAugmentd(keys=keys, augmenter=augmenter, prob=prob)
