# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Check that a bundle checkpoint fits the network a config builds, before MONAI's ``CheckpointLoader`` runs, and load
the matching tensors of a pre-training checkpoint (transfer learning).

PyTorch's own message for a checkpoint of another class count is ``size mismatch for class_layers.out.weight``; this
check names the file, every mismatched tensor and what to change in the config.

:func:`load_pretrained_weights` replaces MONAI's ``CheckpointLoader(strict_shape=False)``, which in the installed MONAI
matches the network's tensor names against the checkpoint's top-level entries (``"model"``, ``"optimizer"``, ...)
rather than against ``checkpoint["model"]`` and so silently loads nothing ("'dst' model updated: 0 of N variables";
MONAI pull request 8948).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from monai.networks.utils import copy_model_state

__all__ = ["check_checkpoint_fits", "load_pretrained_weights"]

logger = logging.getLogger(__name__)


def check_checkpoint_fits(
    ckpt_path: str | os.PathLike,
    network: torch.nn.Module,
    key: str = "model",
    hint: str | Callable[[Mapping[str, torch.Tensor], torch.nn.Module], str] = "",
) -> Path:
    """Raise a clear error when the ``key`` entry of ``ckpt_path`` does not fit ``network``.

    Args:
        ckpt_path: checkpoint written by the bundle's ``CheckpointSaver`` (a dict of state dicts), loaded with
            ``weights_only=True`` on the CPU.
        network: the network the config builds (``network_def``), possibly wrapped in DDP.
        key: entry holding the weights to load. Defaults to ``"model"``.
        hint: what to change, appended to the message (e.g. "set --setting to the one used for training"), or a
            function ``(checkpoint state dict, network) -> str`` called only when the checkpoint does not fit (e.g.
            :func:`monai_ext.networks.fpsm_checkpoint_hint`, which reads the options off the checkpoint).

    Returns:
        ``ckpt_path`` as a ``Path`` when everything fits.

    Raises:
        FileNotFoundError: the file does not exist (train first, or pass ``--ckpt_path``).
        KeyError: the checkpoint has no ``key`` entry; the message lists the entries it has.
        ValueError: parameter shapes differ, or parameters are missing/unexpected; the message lists them.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: '{path}'. Train the bundle first or point ckpt_path at one.")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if key not in ckpt:
        raise KeyError(f"checkpoint '{path}' has no '{key}' entry; it holds {sorted(ckpt)}.")
    saved = ckpt[key]
    model = network.module if isinstance(network, torch.nn.parallel.DistributedDataParallel) else network
    expected = model.state_dict()
    problems = [
        f"'{name}': checkpoint {tuple(saved[name].shape)} vs network {tuple(t.shape)}"
        for name, t in expected.items()
        if name in saved and tuple(saved[name].shape) != tuple(t.shape)
    ]
    missing = [n for n in expected if n not in saved]
    unexpected = [n for n in saved if n not in expected]
    if problems or missing or unexpected:
        lines = [f"checkpoint '{path}' (entry '{key}') does not fit the network of this config:"]
        lines += [f"  shape {p}" for p in problems[:10]]
        if missing:
            lines.append(f"  missing in the checkpoint: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            lines.append(f"  not in the network: {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        text = hint(saved, model) if callable(hint) else hint
        lines.append(text or "Use the config (and class setting) the checkpoint was trained with.")
        raise ValueError("\n".join(lines))
    return path


def load_pretrained_weights(
    ckpt_path: str | os.PathLike | None, network: torch.nn.Module, key: str = "model"
) -> dict[str, list[str]]:
    """Copy into ``network`` every tensor of the ``key`` entry of ``ckpt_path`` whose name and shape match (e.g. the
    backbone of a 2-class pre-training run into a 3-class network; its classifier is skipped), in place.

    Args:
        ckpt_path: checkpoint written by a bundle's ``CheckpointSaver`` (a dict of state dicts), loaded with
            ``weights_only=True`` on the CPU; ``None`` loads nothing (a config's ``pretrained_ckpt`` default).
        network: the network to initialise, possibly wrapped in ``DistributedDataParallel``.
        key: entry holding the weights. Defaults to ``"model"``.

    Returns:
        ``{"loaded": [...], "skipped": [...]}``: the network's tensor names copied from the checkpoint, and those kept
        (absent from the checkpoint or of another shape); both are logged. Both empty when ``ckpt_path`` is None.

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: the checkpoint has no ``key`` entry; the message lists the entries it has.
        ValueError: no tensor matches (another architecture); the message names a few of each side.
    """
    if ckpt_path is None:
        return {"loaded": [], "skipped": []}
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"pre-trained checkpoint not found: '{path}'; check pretrained_ckpt.")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or key not in ckpt:
        held = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise KeyError(f"pre-trained checkpoint '{path}' has no '{key}' entry; it holds {held}.")
    model = network.module if isinstance(network, torch.nn.parallel.DistributedDataParallel) else network
    _, loaded, skipped = copy_model_state(model, ckpt[key], inplace=True)
    if not loaded:
        raise ValueError(
            f"no tensor of pre-trained checkpoint '{path}' (entry '{key}') matches the network by name and shape "
            f"(checkpoint: {sorted(ckpt[key])[:3]}, network: {sorted(model.state_dict())[:3]}); pre-train with the "
            "same network_def."
        )
    logger.info(
        "pre-trained weights from '%s': %d tensors loaded, %d kept (%s)", path, len(loaded), len(skipped), skipped[:5]
    )
    return {"loaded": list(loaded), "skipped": list(skipped)}
