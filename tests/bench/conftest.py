# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Fixtures of the NVUM benchmark tests: a stand-in bundle whose ``train.json`` holds a literal 4-image training
datalist, and finished runs (``<method>_seed<seed>/models/last.pt``) with a hand-picked memory.

Worked case (classes ``A``, ``No Finding``; labels ``[[0, 0], [0, 1], [0, 1], [1, 0]]``; recorded flip: image 0,
class ``A``; memory ``MEMORY``): the paper prior is ``[0.25, 0.5]``, the official one ``[0.125, 0.5]``
(``(1 - P(No Finding)) * 0.25``). With ``score="prior"`` the flip (0, A) scores ``sigmoid(2.5 + log 0.25) = 0.753``
and the correct (3, No Finding) ``sigmoid(1.2 + log 0.5) = 0.624``, so the flip ranks first in paper mode (P@1 = 1);
with the official prior it scores ``sigmoid(2.5 + log 0.125) = 0.604`` and ranks second (P@1 = 0). With
``score="unbiased"`` it scores ``sigmoid(2.5) = 0.924``, first in both modes. Base rate 1 / 8.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

CLASSES = ["A", "No Finding"]
LABELS = [[0.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
MEMORY = [[2.5, -3.0], [-3.0, 2.0], [-3.0, 2.0], [3.0, 1.2]]
NOISE_CSV = (
    "image,class,clean,noisy\n"
    "00000000_000.png,A,1,0\n"  # the flip: (index 0, class 0)
    "00000000_000.png,Nodule,1,0\n"  # class outside the label space
    "00000099_000.png,A,0,1\n"  # image outside the training set
)


def write_bundle(bundle_dir: Path) -> Path:
    """A ``configs/train.json`` with the ids the benchmark reads, the bundle's ``prior_convention`` expression and a
    literal datalist; returns ``bundle_dir``."""
    datalist = [{"image": f"$@dataset_dir + '/images/0000000{i}_000.png'", "label": label, "index": i}
                for i, label in enumerate(LABELS)]  # fmt: skip
    config = {
        "imports": ["$import monai_ext"],
        "seed": 0,
        "dataset_dir": "/nowhere",
        "ckpt_dir": "/nowhere/models",
        "output_dir": "/nowhere/eval",
        "class_names": CLASSES,
        "nvum_mode": "paper",
        "nvum_prior_eps": None,
        "prior_convention": "$monai_ext.losses.NVUMMode(@nvum_mode).prior_convention",
        # ids the benchmark's runs override (overrides must be ids of the configs)
        "image_size": 64,
        "epochs": 1,
        "batch_size": 2,
        "loss_def": {},
        "train": {"datalist": datalist, "dataset": {}},
        "validate": {"dataset": {}},
    }
    (bundle_dir / "configs").mkdir(parents=True, exist_ok=True)
    (bundle_dir / "configs" / "train.json").write_text(json.dumps(config), encoding="utf-8")
    return bundle_dir


def write_run(work_dir: Path, method: str, seed: int) -> Path:
    """``work_dir/<method>_seed<seed>/models/last.pt`` as the bundle saves it (the BCE loss has no state)."""
    nvum = {} if method == "bce" else {"memory": torch.tensor(MEMORY), "num_updates": torch.tensor([3, 3, 3, 3])}
    models = work_dir / f"{method}_seed{seed}" / "models"
    models.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "nvum": nvum}, models / "last.pt")
    return models / "last.pt"


@pytest.fixture
def bench_dirs(tmp_path: Path) -> dict[str, Path]:
    """``{"bundle", "work", "nih", "noise"}``: a stand-in bundle and a work folder with ``data/nih`` (noise CSV) and
    finished runs ``bce``, ``paper``, ``official`` for seed 0."""
    work = tmp_path / "work"
    nih = work / "data" / "nih"
    nih.mkdir(parents=True)
    (nih / "demo_label_noise.csv").write_text(NOISE_CSV, encoding="utf-8")
    for method in ("bce", "paper", "official"):
        write_run(work, method, 0)
    return {"bundle": write_bundle(tmp_path / "bundle"), "work": work, "nih": nih,
            "noise": nih / "demo_label_noise.csv"}  # fmt: skip
