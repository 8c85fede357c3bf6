# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MONAI Label infer tasks running this collection's bundles (their own preprocessing, network, inferer and
postprocessing from ``configs/inference.json``).

Built on monailabel 0.8.5's ``BundleInferTask`` (``monailabel/tasks/infer/bundle.py``, Project-MONAI/MONAILabel
``058ddfc4``), which reads the bundle, swaps ``LoadImaged`` for its cached loader and drops ``SaveImaged``. What
differs, and why:

- classification: the stock task appends a ``Restored`` post-transform (fails on a class vector:
  ``operands could not be broadcast together``) and lower-cases the class names; its ``ClassificationWriter``
  needs a ``MetaTensor``. :class:`BundleClassificationTask` turns the restore off and answers one score per class
  of the bundle under the bundle's own names (:func:`lib.results.classification_result`).
- detection: the stock task calls ``detector(volume, use_inferer=True)``; the DeepLesion bundle's 2D detector runs
  slice by slice through ``monai_ext.inferers.SliceDetectionInferer`` (its ``inferer``), and its boxes come in the
  resampled grid. :class:`BundleSliceDetectionTask` runs that inferer and maps the boxes back with the bundle's own
  ``monai_ext.handlers.DetectionWriter.record`` (boxes in the input's voxel grid, slice index, world corners).
- ``image_path``: held out of the bundle's preprocessing (:meth:`OverlayBundleInferTask.run_pre_transforms`).
- all: ``--conf overlay demo.json`` merges an overlay config (e.g. the demo's small network), see
  :func:`lib.bundles.read_bundle_config`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import torch
from lib.bundles import bundle_class_names, read_bundle_config
from lib.results import classification_result
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.bundle import BundleInferTask

__all__ = ["OverlayBundleInferTask", "BundleClassificationTask", "BundleSegmentationTask", "BundleSliceDetectionTask"]


def _case_id(path: str) -> str:
    """The file name without its image extension (``ct_1.nii.gz`` -> ``ct_1``), as the bundles name their cases."""
    name = os.path.basename(os.path.normpath(path))
    for suffix in (".nii.gz", ".nii", ".dcm", ".png", ".jpg", ".jpeg", ".nrrd"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


class OverlayBundleInferTask(BundleInferTask):
    """``BundleInferTask`` reading ``configs/inference.json`` merged with an optional overlay config.

    Args:
        path: the bundle folder.
        conf: the app's ``--conf`` options (``preload`` is read by monailabel).
        overlay: config name under ``configs/`` merged over ``inference.json`` (e.g. ``"demo.json"``). Defaults
            to None.
        kwargs: passed to ``BundleInferTask`` (``type``, ``add_post_restore``, ...).
    """

    def __init__(self, path: str, conf: dict[str, str], overlay: str | None = None, **kwargs: Any) -> None:
        self.overlay = overlay
        super().__init__(path, conf, **kwargs)
        if not self.is_valid():
            raise ValueError(f"monailabel could not load the bundle '{path}' (see its log lines above).")

    def _load_bundle_config(self, path, config):
        return read_bundle_config(path, config, self.overlay)

    def run_pre_transforms(self, data: dict[str, Any], transforms):
        """Run the bundle's preprocessing with monailabel's ``image_*`` request values (``image_path``) held out.

        monailabel puts the image's path under ``image_path``; the bundles copy the image key to ``image_path``
        themselves (``CopyItemsd``, which refuses an existing key), and MONAI's ``Spacingd`` updates every
        ``image_*`` entry as a meta dict (a string fails). The held-out values are put back afterwards.
        """
        prefix = f"{self.input_key}_"
        held = {k: data.pop(k) for k in list(data) if str(k).startswith(prefix) and not isinstance(data[k], Mapping)}
        data = super().run_pre_transforms(data, transforms)
        data.update(held)
        return data


class BundleClassificationTask(OverlayBundleInferTask):
    """A classification bundle as a MONAI Label CLASSIFICATION task: one score in [0, 1] per class.

    The result JSON is :func:`lib.results.classification_result` of the bundle's post-processed output (sigmoid,
    softmax, or the FPSM stage combination, as the bundle defines); no label file.
    """

    def __init__(self, path: str, conf: dict[str, str], overlay: str | None = None) -> None:
        super().__init__(path, conf, overlay, type=InferType.CLASSIFICATION, add_post_restore=False)
        self.class_names = bundle_class_names(path)
        self.labels = {name: k for k, name in enumerate(self.class_names)}

    def writer(self, data: dict[str, Any], extension=None, dtype=None) -> tuple[None, dict[str, Any]]:
        """Raises ValueError (see :func:`lib.results.classification_result`)."""
        return None, classification_result(data[self.output_label_key], self.class_names)


class BundleSegmentationTask(OverlayBundleInferTask):
    """A segmentation bundle as a MONAI Label SEGMENTATION task: a label volume on the input's grid.

    The bundle's post-processing already inverts its resize onto the input grid (``Invertd``) and takes the
    argmax; monailabel's ``Restored`` and writer then save the label file (NIfTI). The stock writer is kept.
    """

    def __init__(self, path: str, conf: dict[str, str], overlay: str | None = None) -> None:
        super().__init__(path, conf, overlay, type=InferType.SEGMENTATION)
        # metadata's spatial_shape is the 2D slice the network sees; the task takes and returns volumes
        self.dimension = 3


class BundleSliceDetectionTask(OverlayBundleInferTask):
    """A slice-wise 2D detection bundle as a MONAI Label DETECTION task on a CT volume.

    Runs the bundle's ``inferer`` (``SliceDetectionInferer`` with the bundle's ``detector`` and ``detector_ops``)
    on the preprocessed volume with monailabel's cached network, and answers the bundle's per-case record
    (``monai_ext.handlers.DetectionWriter.record``): ``box`` (``[x1, y1, x2, y2]`` in the input's voxel grid),
    ``slice``, ``label``, ``label_name``, ``label_scores``, ``world_corners``, ``box_world`` and the rest; no file.
    """

    def __init__(self, path: str, conf: dict[str, str], overlay: str | None = None) -> None:
        super().__init__(path, conf, overlay, type=InferType.DETECTION)
        self.dimension = 3

    def run_detector(self, data: dict[str, Any], convert_to_batch: bool = True, device: str = "cuda"):
        """Put the inferer's dict of the volume under ``pred``.

        Raises:
            ValueError: the bundle has no ``detector`` or its ``inferer`` does not take one.
        """
        detector = self.detector(data)
        if detector is None:
            raise ValueError(f"bundle '{self.bundle_path}' defines no 'detector' in inference.json.")
        inferer = self.inferer(data)
        if not hasattr(inferer, "detector"):
            raise ValueError(
                f"bundle '{self.bundle_path}': inferer {type(inferer).__name__} takes no detector; expected "
                "monai_ext.inferers.SliceDetectionInferer."
            )
        inferer.detector = detector  # the one the detector_ops configured
        network = self._get_network(device, data)
        image = data[self.input_key]
        inputs = torch.as_tensor(image).to(torch.device(device))
        with torch.no_grad():
            outputs = inferer(inputs[None] if convert_to_batch else inputs, network)
        data[self.output_label_key] = outputs[0]
        return data

    def writer(self, data: dict[str, Any], extension=None, dtype=None) -> tuple[None, dict[str, Any]]:
        """Raises KeyError, ValueError (``monai_ext.handlers.DetectionWriter.record``)."""
        from monai.data import MetaTensor
        from monai.utils import MetaKeys, SpaceKeys

        from monai_ext.handlers import DetectionWriter

        image = data[self.input_key]
        if not isinstance(image, MetaTensor):
            raise TypeError(
                f"the preprocessed image must be a MetaTensor (its affine maps the boxes), got {type(image)}"
            )
        meta = self.bundle_config.get("_meta_", {})
        with tempfile.TemporaryDirectory() as unused:  # record() writes nothing; the handler wants an output folder
            writer = DetectionWriter(
                output_dir=unused,
                class_names=list(self.bundle_config.get_parsed_content("class_names")),
                model_name=os.path.basename(os.path.normpath(self.bundle_path)),  # as the bundle's own writer
                model_version=meta.get("version"),
            )
            path = str(data.get("image_path", ""))
            record = writer.record(
                _case_id(path),
                path,
                data[self.output_label_key],
                image.affine,
                image.meta.get(MetaKeys.ORIGINAL_AFFINE),
                affine_space=image.meta.get(MetaKeys.SPACE, SpaceKeys.RAS),
            )
        record["label_names"] = self.labels
        return None, record
