# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MONAI Label train task for the slice-wise segmentation bundle, trained from the datastore's final labels.

Built on monailabel 0.8.5's ``BundleTrainTask`` (``monailabel/tasks/train/bundle.py``, Project-MONAI/MONAILabel
``058ddfc4``), which runs ``monai.bundle.run`` on ``configs/train.json`` with overrides (``train#dataset#data``,
``validate#dataset#data``, ``train#trainer#max_epochs``, ``train#handlers`` with a ``CheckpointLoader`` of
``models/model.pt``, ``device``). What differs, and why:

- data: the bundle trains on 2D slices (``train#datalist``, ``validate#datalist``), so the volume pairs become the
  bundle's slice datalist (:func:`lib.slice_datalist.volume_slice_datalist`) instead of ``#dataset#data``.
- outputs: every run writes into its own new folder ``<bundle>/models/monailabel_runs/<UTC time>/`` (checkpoints,
  logs, slice cache), never into an earlier run's; the bundle's ``check_checkpoint_dir`` then passes without
  ``overwrite``. At the end the run's best checkpoint (``model.pt`` by validation Dice, else ``last.pt``) is
  published as ``models/model.pt`` (the network weights, ``{"model": state_dict}``), the file the infer task
  reloads; the model it replaces is kept as ``previous_model.pt`` in the run folder.
- config: ``--conf overlay`` merges the same overlay as inference (e.g. the demo's small network).
- single process: multi-GPU (``torchrun`` with ``multi_gpu_train.json``) is not offered.
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import monai.bundle
import torch
from lib.bundles import SMALL_NETWORK_ID, read_bundle_config
from lib.slice_datalist import volume_slice_datalist
from monailabel.tasks.train.bundle import BundleTrainTask

__all__ = ["SliceSegmentationTrainTask", "publish_weights"]

logger = logging.getLogger(__name__)

RUNS = "monailabel_runs"


def publish_weights(checkpoint: str | os.PathLike, target: str | os.PathLike, keep_previous: str | os.PathLike) -> None:
    """Publish the network weights of a training checkpoint as ``target`` (``{"model": state_dict}``), atomically.

    Args:
        checkpoint: a ``CheckpointSaver`` file whose ``"model"`` entry holds the weights.
        target: the served model file (e.g. ``models/model.pt``).
        keep_previous: where the replaced ``target`` is copied first (must not exist).

    Raises:
        KeyError: the checkpoint has no ``"model"`` entry.
        FileExistsError: ``keep_previous`` exists.
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)  # this run's own file
    if "model" not in state:
        raise KeyError(f"checkpoint '{checkpoint}' has no 'model' entry (found {sorted(state)}).")
    target, keep_previous = Path(target), Path(keep_previous)
    if target.exists():
        if keep_previous.exists():
            raise FileExistsError(f"'{keep_previous}' exists; not replacing it.")
        shutil.copy2(target, keep_previous)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    torch.save({"model": state["model"]}, tmp)
    os.replace(tmp, target)


class SliceSegmentationTrainTask(BundleTrainTask):
    """Train ``covid_ct_mombs_segmentation`` from the datastore's image/label volumes (see the module docstring).

    Args:
        path: the bundle folder.
        conf: the app's ``--conf`` options.
        overlay: config name under ``configs/`` merged over ``train.json`` (e.g. ``"demo.json"``). Defaults to None.
    """

    def __init__(self, path: str, conf: dict[str, str], overlay: str | None = None) -> None:
        self.overlay = overlay
        self.run_dir: Path | None = None
        super().__init__(path, conf)
        if not self.is_valid():
            raise ValueError(f"monailabel could not load the train config of '{path}'.")

    def _load_bundle_config(self, path, config):
        return read_bundle_config(path, config, self.overlay)

    def __call__(self, request: dict[str, Any], datastore) -> dict[str, Any]:
        """Train one run; returns ``{"run_dir", "published"}``.

        Raises:
            ValueError: no validation volume (raise ``val_split`` or label more images), or as
                :func:`lib.slice_datalist.volume_slice_datalist`.
        """
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d_%H%M%S_%f")
        self.run_dir = Path(self.bundle_path) / "models" / RUNS / stamp
        self.run_dir.mkdir(parents=True, exist_ok=False)
        request = {**request, "multi_gpu": False, "force_multi_gpu": False}
        super().__call__(request, datastore)
        ckpt_dir = self.run_dir / "checkpoints"
        best = next((p for p in (ckpt_dir / "model.pt", ckpt_dir / "last.pt") if p.is_file()), None)
        if best is None:
            raise FileNotFoundError(f"training wrote no checkpoint into '{ckpt_dir}'.")
        publish_weights(best, Path(self.bundle_path) / "models" / "model.pt", self.run_dir / "previous_model.pt")
        logger.info(f"published {best} as {Path(self.bundle_path) / 'models' / 'model.pt'}")
        return {"run_dir": str(self.run_dir), "published": str(best)}

    def _update_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        train = overrides.pop(self.const.key_train_dataset_data())
        val = overrides.pop(self.const.key_validate_dataset_data(), None)
        if not val:
            raise ValueError(
                f"no validation volume among the {len(train)} labelled ones; raise val_split (e.g. 0.5) or label "
                "more images (the bundle selects its checkpoint by validation Dice)."
            )
        label_map = self.bundle_config.get_parsed_content("label_map")
        overrides["train#datalist"] = volume_slice_datalist(train, self.run_dir / "train", label_map)
        overrides["validate#datalist"] = volume_slice_datalist(val, self.run_dir / "validate", label_map)
        overrides["dataset_dir"] = str(self.run_dir / "train" / "volumes")  # the bundle checks its dataset folder
        overrides["ckpt_dir"] = str(self.run_dir / "checkpoints")
        overrides["output_dir"] = str(self.run_dir / "eval")
        return overrides

    def run_single_gpu(self, request: dict[str, Any], overrides: dict[str, Any]) -> None:
        configs = [self.bundle_config_path]
        if self.overlay:
            configs.append(os.path.join(self.bundle_path, "configs", self.overlay))
            if SMALL_NETWORK_ID in self.bundle_config.config:
                overrides = {**overrides, "network_def": f"%{SMALL_NETWORK_ID}"}
        monai.bundle.run(
            run_id=request.get("run_id", "run"),
            init_id=None,
            final_id=None,
            meta_file=self.bundle_metadata_path,
            config_file=configs,
            **overrides,
        )
