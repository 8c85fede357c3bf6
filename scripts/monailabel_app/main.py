# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MONAI Label app serving this collection's bundles.

Start it from the MONAI Label environment (``make monailabel-env``)::

    .venv-monailabel/bin/monailabel start_server --app scripts/monailabel_app --studies <images folder> \\
        [--conf bundles <folder>] [--conf models <name,...>] [--conf overlay demo.json] [--conf skip_trainers true]

Options (``--conf``):
    bundles: folder holding the bundles. Default: the repository's ``bundles/``.
    models: comma-separated bundle names, or ``all`` (default: every bundle found; each needs ``models/model.pt``).
    overlay: a config under each bundle's ``configs/`` merged over ``inference.json`` / ``train.json``, e.g.
        ``demo.json`` (its ``small_network_def`` replaces the network, to serve demo-sized checkpoints).
    skip_trainers: ``true`` offers no training. Default ``false``.

Studies: a local folder; monailabel lists ``*.nii.gz``, ``*.png``, ``*.jpg``, ... but not ``*.dcm`` files unless
``MONAI_LABEL_DATASTORE_FILE_EXT='["*.nii.gz", "*.png", "*.dcm"]'`` is set (single DICOM radiographs then work).

Tasks: each classification bundle an infer task (CLASSIFICATION: a score per class); the segmentation bundle an
infer task (SEGMENTATION: a label volume) and a train task (from the datastore's final labels); the detection
bundle an infer task (DETECTION: boxes per slice). See ``lib/``. The stock ``monaibundle`` sample app
(Project-MONAI/MONAILabel ``058ddfc4``, ``sample-apps/monaibundle/main.py``) is the model for this class.
"""

from __future__ import annotations

import logging
from pathlib import Path

import monailabel
from lib.bundles import BUNDLE_KINDS, discover_bundles
from lib.infer_tasks import BundleClassificationTask, BundleSegmentationTask, BundleSliceDetectionTask
from lib.train_tasks import SliceSegmentationTrainTask
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.utils.others.generic import strtobool

logger = logging.getLogger(__name__)

DEFAULT_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
"""The repository's bundle folder (this file is ``<repo>/scripts/monailabel_app/main.py``)."""

INFER_TASKS = {
    "classification": BundleClassificationTask,
    "segmentation": BundleSegmentationTask,
    "detection": BundleSliceDetectionTask,
}
TRAIN_TASKS = {"segmentation": SliceSegmentationTrainTask}


class MyApp(MONAILabelApp):
    """The app: one infer task per bundle, a train task where the bundle trains from label volumes.

    Raises:
        FileNotFoundError, ValueError: see :func:`lib.bundles.discover_bundles`.
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.bundles = discover_bundles(conf.get("bundles", str(DEFAULT_BUNDLES)), conf.get("models"))
        self.overlay = conf.get("overlay") or None
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name=f"robust-medical-bundles (MONAI Label {monailabel.__version__})",
            description="The bundles of robust-medical-bundles: CXR / ROP classification, COVID CT segmentation, "
            "DeepLesion detection",
            version=monailabel.__version__,
        )

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {}
        for name, path in self.bundles.items():
            infers[name] = INFER_TASKS[BUNDLE_KINDS[name]](str(path), self.conf, self.overlay)
            logger.info(f"+++ infer task {name}: {BUNDLE_KINDS[name]} from {path}")
        return infers

    def init_trainers(self) -> dict[str, TrainTask]:
        trainers: dict[str, TrainTask] = {}
        if strtobool(self.conf.get("skip_trainers", "false")):
            return trainers
        for name, path in self.bundles.items():
            task = TRAIN_TASKS.get(BUNDLE_KINDS[name])
            if task is not None:
                trainers[name] = task(str(path), self.conf, self.overlay)
                logger.info(f"+++ train task {name} from {path}")
        return trainers

    def init_strategies(self) -> dict[str, Strategy]:
        return {"random": Random(), "first": First()}
