# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""2.5D lesion detection on every axial slice of a CT volume with a 2D MONAI ``RetinaNetDetector``.

The detector of ``deeplesion_mombs_detection`` is trained on 2.5D images: a key axial slice and its neighbours as
channels, in slice order with the key in the middle (DeepLesion's 3 or 9 slices; Yan et al., "3D context enhanced
region-based convolutional neural network for end-to-end lesion detection", MICCAI 2018). :class:`SliceDetectionInferer`
builds that input for each slice ``z`` of a volume from slices ``z - k*step .. z + k*step`` (``k = num_slices // 2``);
a neighbour beyond the volume's first or last slice is replaced by that edge slice, the nearest existing slice towards
the key slice, as DeepLesion's official loader does for a missing neighbour (``rsummers11/CADLab``,
``MULAN_universal_lesion_analysis/maskrcnn/data/datasets/load_ct_img.py``, ``get_slice_name``). The slices are run
through the detector in mini-batches, and the 2D boxes come back with the slice they were found on.

Conventions: the volume is ``C x A0 x A1 x D`` (the first channel is used), already windowed to the detector's input
range and resampled in-plane as in training; axis 2 (``D``) is the axial slice axis. Boxes are MONAI StandardMode
``xyxy`` in the slice's axis order (axis 0 first), in voxel units of that volume, exactly as the detector returns them
(:func:`slice_boxes_to_world` maps them to world and original voxel coordinates).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from monai.apps.detection.transforms.box_ops import apply_affine_to_boxes
from monai.data.utils import orientation_ras_lps
from monai.inferers import Inferer
from monai.transforms.utils import apply_affine_to_points
from monai.utils import look_up_option, optional_import
from monai.utils.enums import SpaceKeys

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

__all__ = ["SliceDetectionInferer", "context_slice_indices", "slice_boxes_to_world"]

_AXIS_TOLERANCE = 1e-6


def context_slice_indices(
    slices: torch.Tensor | Sequence[int], depth: int, num_slices: int = 3, step: int = 1
) -> torch.Tensor:
    """The slice index of each context channel of each key slice: ``clamp(z + (j - k) * step, 0, depth - 1)`` for
    ``j = 0 .. num_slices - 1``, ``k = num_slices // 2`` (a neighbour beyond the volume repeats the edge slice).

    Args:
        slices: ``N`` key slice indices in ``[0, depth)``.
        depth: number of slices ``D`` of the volume.
        num_slices: channels per image, odd. Defaults to 3.
        step: slices between two channels. Defaults to 1.

    Returns:
        ``N x num_slices`` int64 indices.

    Example:
        >>> context_slice_indices([0, 2], depth=3, num_slices=5).tolist()
        [[0, 0, 0, 1, 2], [0, 1, 2, 2, 2]]
    """
    z = torch.as_tensor(slices, dtype=torch.long).reshape(-1, 1)
    offsets = (torch.arange(num_slices, dtype=torch.long) - num_slices // 2) * step
    return (z + offsets.to(z.device)).clamp_(0, depth - 1)


class SliceDetectionInferer(Inferer):
    """Run a 2D detector on every axial slice of a volume (2.5D input: the slice and its neighbours as channels) and
    gather the boxes per volume, with their slice.

    Called as ``inferer(inputs, network)`` (``SupervisedEvaluator``'s ``inferer``): ``inputs`` is a ``B x C x A0 x A1
    x D`` tensor, a ``C x A0 x A1 x D`` tensor (one volume) or a list of such tensors (``no_collation`` loaders; the
    volumes may differ in size); ``network`` is the detector (a ``RetinaNetDetector`` in eval mode, or anything called
    as ``network(images, use_inferer=False)`` with ``images`` a ``b x num_slices x A0 x A1`` tensor, returning ``b``
    dicts keyed by its ``target_box_key``, ``target_label_key`` and ``pred_score_key``). When the evaluator's network
    is the bare RetinaNet, give the detector as ``detector``: its ``network`` is then set to ``network`` on each call
    and its mode follows the network's (as the model zoo's ``RetinaNetInferer`` does,
    ``Project-MONAI/model-zoo@dfae206d``, ``models/lung_nodule_ct_detection/scripts/detection_inferer.py``).

    Returns a list with one dict per volume: ``box_key`` ``N x 4`` float32 (``xyxy`` in the slice, voxel units of the
    input volume), ``label_key`` ``N`` int64, ``score_key`` ``N`` float32 and ``slice_key`` ``N`` int64 (the axial
    index ``z`` in the input volume), ordered by slice, then by decreasing score; on the CPU, so that a long volume's
    detections do not accumulate on the GPU. The detector already suppresses overlapping boxes within a slice (its
    NMS); boxes of neighbouring slices are kept as they are (a lesion seen on several slices gives several boxes).
    With MONAI's ``SupervisedEvaluator`` set ``decollate=False``: ``decollate_batch`` would split each volume's dict
    row by row.

    Args:
        num_slices: channels of the detector's input, odd (3 for DeepLesion's default, 9 as an option). Defaults to 3.
        batch_size: slices per detector call. Defaults to 8.
        slices: the key slices to run on (indices into ``D``, negative counting from the end; run once each, in
            slice order), the same for every volume. Defaults to None (every slice).
        slice_step: slices between two context channels (e.g. 2 when the volume's slices are half as thick as the
            training context's). Defaults to 1.
        score_threshold: drop boxes scoring below it (the detector's own ``score_thresh`` applies first). Defaults to
            None (keep all).
        max_per_slice: keep at most this many boxes per slice, the highest scoring. Defaults to None (all).
        detector: the ``RetinaNetDetector`` wrapping ``network``, when ``network`` is the bare RetinaNet. Defaults to
            None (``network`` is the detector).
        progress: show a tqdm bar over the slice batches of each volume. Defaults to None: shown when stderr is a
            terminal and the volume has at least ``progress_min_slices`` slices to run.
        progress_min_slices: see ``progress``. Defaults to 64.
        box_key: output key of the boxes. Defaults to ``"box"``.
        label_key: output key of the labels. Defaults to ``"label"``.
        score_key: output key of the scores. Defaults to ``"label_scores"`` (the model zoo's detection output).
        slice_key: output key of the slice indices. Defaults to ``"slice"``.

    Raises:
        ValueError: ``num_slices`` is not a positive odd number, or ``batch_size``, ``slice_step`` or
            ``max_per_slice`` is not positive.
    """

    def __init__(
        self,
        num_slices: int = 3,
        batch_size: int = 8,
        slices: Sequence[int] | None = None,
        slice_step: int = 1,
        score_threshold: float | None = None,
        max_per_slice: int | None = None,
        detector: torch.nn.Module | None = None,
        progress: bool | None = None,
        progress_min_slices: int = 64,
        box_key: str = "box",
        label_key: str = "label",
        score_key: str = "label_scores",
        slice_key: str = "slice",
    ) -> None:
        super().__init__()
        if int(num_slices) < 1 or int(num_slices) % 2 == 0:
            raise ValueError(f"num_slices must be a positive odd number (key slice in the middle), got {num_slices}.")
        for name, value in (("batch_size", batch_size), ("slice_step", slice_step), ("max_per_slice", max_per_slice)):
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}.")
        self.num_slices = int(num_slices)
        self.batch_size = int(batch_size)
        self.slices = None if slices is None else [int(z) for z in slices]
        self.slice_step = int(slice_step)
        self.score_threshold = None if score_threshold is None else float(score_threshold)
        self.max_per_slice = None if max_per_slice is None else int(max_per_slice)
        self.detector = detector
        self.progress = progress
        self.progress_min_slices = int(progress_min_slices)
        self.box_key, self.label_key, self.score_key, self.slice_key = box_key, label_key, score_key, slice_key

    def __call__(
        self, inputs: torch.Tensor | Sequence[torch.Tensor], network: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> list[dict[str, torch.Tensor]]:
        """Detect on every slice (or ``slices``) of each volume of ``inputs``; see the class docstring.

        Args:
            inputs: ``B x C x A0 x A1 x D``, ``C x A0 x A1 x D``, or a list of ``C x A0 x A1 x D`` tensors.
            network: the detector, or the RetinaNet of ``detector``.
            args, kwargs: passed on to the detector call.

        Raises:
            ValueError: a volume is not ``C x A0 x A1 x D``, a requested slice is outside ``[-D, D)``, or the detector
                is in training mode (call ``.eval()``; in training mode it wants targets and returns losses).
        """
        detector = self._detector(network)
        volumes = [inputs] if isinstance(inputs, torch.Tensor) and inputs.ndim == 4 else list(inputs)
        return [self.detect_volume(v, detector, *args, **kwargs) for v in volumes]

    def _detector(self, network: Callable[..., Any]) -> Callable[..., Any]:
        detector = network
        if self.detector is not None:
            if network is not self.detector:
                self.detector.network = network
            self.detector.training = bool(getattr(network, "training", False))
            detector = self.detector
        if getattr(detector, "training", False):
            raise ValueError(
                f"the detector ({type(detector).__name__}) is in training mode, where it needs targets and returns "
                "losses; call .eval() on it (SupervisedEvaluator does) before inference."
            )
        return detector

    def _key_slices(self, depth: int) -> list[int]:
        if self.slices is None:
            return list(range(depth))
        bad = [z for z in self.slices if not -depth <= z < depth]
        if bad:
            raise ValueError(
                f"slices {bad[:5]} are outside the volume's {depth} slices (valid: {-depth}..{depth - 1})."
            )
        return sorted({z % depth for z in self.slices})

    def detect_volume(self, volume: torch.Tensor, detector: Callable[..., Any], *args: Any, **kwargs: Any) -> dict:
        """The detections of one ``C x A0 x A1 x D`` volume (first channel used) with an eval-mode detector.

        Raises:
            ValueError: as :meth:`__call__`.
        """
        if not isinstance(volume, torch.Tensor) or volume.ndim != 4 or min(volume.shape) < 1:
            shape = tuple(volume.shape) if hasattr(volume, "shape") else type(volume).__name__
            raise ValueError(f"each volume must be a C x A0 x A1 x D tensor (channel first), got {shape}.")
        plane = volume.as_tensor() if hasattr(volume, "as_tensor") else volume
        plane = plane[0]
        depth = plane.shape[-1]
        keys = self._key_slices(depth)
        found: list[tuple[torch.Tensor, ...]] = []
        starts = range(0, len(keys), self.batch_size)
        show = self.progress
        if show is None:
            show = sys.stderr.isatty() and len(keys) >= self.progress_min_slices
        if has_tqdm and show:
            starts = tqdm(starts, total=len(starts), desc="slices", unit="batch", leave=False)
        with torch.no_grad():
            for start in starts:
                key = torch.tensor(keys[start : start + self.batch_size], dtype=torch.long)
                index = context_slice_indices(key, depth, self.num_slices, self.slice_step).to(plane.device)
                images = plane[:, :, index].permute(2, 3, 0, 1).contiguous()  # b x num_slices x A0 x A1
                outputs = detector(images, *args, use_inferer=False, **kwargs)
                if len(outputs) != len(key):
                    raise ValueError(f"the detector returned {len(outputs)} results for {len(key)} images.")
                for z, out in zip(key.tolist(), outputs):
                    found.append(self._one_slice(detector, out, z))
        return self._gather(found)

    def _one_slice(self, detector: Any, out: dict, z: int) -> tuple[torch.Tensor, ...]:
        boxes = torch.as_tensor(out[detector.target_box_key]).detach().to("cpu", torch.float32).reshape(-1, 4)
        labels = torch.as_tensor(out[detector.target_label_key]).detach().to("cpu", torch.long).reshape(-1)
        scores = torch.as_tensor(out[detector.pred_score_key]).detach().to("cpu", torch.float32).reshape(-1)
        order = torch.argsort(scores, descending=True, stable=True)
        if self.score_threshold is not None:
            order = order[scores[order] >= self.score_threshold]
        if self.max_per_slice is not None:
            order = order[: self.max_per_slice]
        return boxes[order], labels[order], scores[order], torch.full((len(order),), z, dtype=torch.long)

    def _gather(self, found: list[tuple[torch.Tensor, ...]]) -> dict[str, torch.Tensor]:
        empty = (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), torch.zeros(0), torch.zeros(0, dtype=torch.long))
        found = found or [empty]
        boxes, labels, scores, slices = (torch.cat(parts) for parts in zip(*found))
        return {self.box_key: boxes, self.label_key: labels, self.score_key: scores, self.slice_key: slices}


def _matrix(affine: Any, name: str) -> np.ndarray:
    matrix = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise ValueError(f"{name} must be a finite 4 x 4 matrix (voxel -> world of a 3D volume), got {matrix.shape}.")
    return matrix


def slice_boxes_to_world(
    boxes: torch.Tensor | np.ndarray,
    slices: torch.Tensor | np.ndarray | Sequence[int],
    affine: torch.Tensor | np.ndarray,
    original_affine: torch.Tensor | np.ndarray | None = None,
    affine_space: SpaceKeys | str = SpaceKeys.RAS,
    output_space: SpaceKeys | str = SpaceKeys.RAS,
) -> dict[str, np.ndarray]:
    """World and original-voxel coordinates of 2D slice boxes (:class:`SliceDetectionInferer`'s output).

    Each box ``(x1, y1, x2, y2)`` on slice ``z`` is the 3D StandardMode box ``(x1, y1, z, x2, y2, z)`` in the voxel
    grid of the volume the detector saw (a flat box at the slice centre). Its coordinates are mapped as points by the
    affine, as MONAI's ``AffineBoxToWorldCoordinate`` does (so a box edge at ``0`` is the centre of voxel 0, MONAI's
    voxel convention; no half-voxel shift is added).

    World space: MONAI's readers give RAS affines (``NibabelReader``; ``ITKReader`` and ``PydicomReader`` with their
    default ``affine_lps_to_ras=True``; the ``space`` of a ``MetaTensor``'s metadata says which). DICOM and ITK-SNAP
    coordinates are LPS: ``output_space="LPS"`` negates x and y (``monai.data.utils.orientation_ras_lps``). For
    DeepLesion PNG slices the "world" is the array-aligned millimetre frame of
    :class:`monai_ext.data.inference.DeepLesionSliceReader`, not patient coordinates.

    Args:
        boxes: ``N x 4`` ``xyxy`` in voxel units of the (resampled) volume.
        slices: ``N`` slice indices (axis 2) of that volume.
        affine: ``4 x 4`` voxel -> world of that volume (the ``MetaTensor``'s ``affine`` after resampling).
        original_affine: ``4 x 4`` voxel -> world of the volume as loaded, before the in-plane resampling (its
            metadata's ``original_affine``). Defaults to None (no original voxel boxes).
        affine_space: {``"RAS"``, ``"LPS"``}, the world space of ``affine`` and ``original_affine``. Defaults to RAS.
        output_space: {``"RAS"``, ``"LPS"``}, the world space of the results. Defaults to RAS.

    Returns:
        ``"world_corners"``: ``N x 2 x 3`` world ``(x, y, z)`` mm of ``(x1, y1, z)`` and ``(x2, y2, z)``;
        ``"box_world"``: ``N x 6`` the axis-aligned world box of the two corners (StandardMode ``xyzxyz``, MONAI's
        ``apply_affine_to_boxes``, which is what ``AffineBoxToWorldCoordinate`` gives);
        with ``original_affine`` also ``"box_original"``: ``N x 4`` ``xyxy`` and ``"slice_original"``: ``N`` slice
        coordinates in the original voxel grid (``inv(original_affine) @ affine`` applied to the 3D box; float: a slice
        index when only the in-plane spacing changed). All float64.

    Raises:
        ValueError: shapes do not match, an affine is not a finite 4 x 4 matrix, a space is unknown, or the original
            grid's slice axis is not the resampled grid's axis 2 (the pipeline reoriented or resampled across
            slices, so an axial box is no box of the original grid).

    Example:
        >>> out = slice_boxes_to_world([[1.0, 2.0, 3.0, 4.0]], [5], np.diag([2.0, 2.0, 3.0, 1.0]))
        >>> out["world_corners"].tolist()
        [[[2.0, 4.0, 15.0], [6.0, 8.0, 15.0]]]
    """
    box = np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes, dtype=np.float64)
    box = box.reshape(-1, 4) if box.size == 0 else box
    z = np.asarray(slices.detach().cpu() if isinstance(slices, torch.Tensor) else slices, dtype=np.float64).reshape(-1)
    if box.ndim != 2 or box.shape[1] != 4 or len(box) != len(z):
        raise ValueError(f"boxes must be N x 4 with one slice each, got boxes {box.shape} and {len(z)} slices.")
    matrix = _matrix(affine, "affine")
    if look_up_option(affine_space, SpaceKeys) != look_up_option(output_space, SpaceKeys):
        matrix = orientation_ras_lps(matrix)
    flat = np.stack([box[:, 0], box[:, 1], z, box[:, 2], box[:, 3], z], axis=1)
    corners = apply_affine_to_points(torch.as_tensor(flat.reshape(1, -1, 3)), torch.as_tensor(matrix))
    out = {
        "world_corners": np.asarray(corners, dtype=np.float64).reshape(-1, 2, 3),
        "box_world": np.asarray(apply_affine_to_boxes(torch.as_tensor(flat), torch.as_tensor(matrix)), np.float64),
    }
    if original_affine is not None:
        to_original = np.linalg.inv(_matrix(original_affine, "original_affine")) @ _matrix(affine, "affine")
        if np.abs(to_original[2, :2]).max() > _AXIS_TOLERANCE or np.abs(to_original[:2, 2]).max() > _AXIS_TOLERANCE:
            raise ValueError(
                "the original volume's slice axis is not axis 2 of the resampled one (voxel mapping "
                f"{np.round(to_original[:3, :3], 6).tolist()}); resample in-plane only, keeping the loaded "
                "orientation, to get original voxel boxes."
            )
        original = np.asarray(apply_affine_to_boxes(torch.as_tensor(flat), torch.as_tensor(to_original)), np.float64)
        out["box_original"] = original[:, [0, 1, 3, 4]]
        out["slice_original"] = original[:, 2]
    return out
