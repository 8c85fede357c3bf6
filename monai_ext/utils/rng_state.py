# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The random states of a training run as one checkpoint entry, so that a resumed run draws what an uninterrupted
run would have drawn: torch's CPU generator (and the current CUDA device's), numpy's and Python's global generators,
and the ``R`` of every MONAI ``Randomizable`` in the given transform pipelines.

With ``num_workers=0`` MONAI's transforms draw from their own ``R`` in the main process (seeded once, when the
``DataLoader`` is built), and the loader draws its shuffle seed and base seed from torch's generator each time an
epoch's iterator is created; both must be restored. With ``num_workers > 0`` each epoch's workers re-seed the
transforms from that base seed, so torch's generator alone decides the augmentations.

Bundle wiring (``configs/train.json``)::

    "rng_state": {"_target_": "monai_ext.utils.RNGState", "pipelines": ["@train#preprocessing"]},
    "checkpoint": {..., "rng": "@rng_state"}

The state is read when ``CheckpointSaver`` calls :meth:`RNGState.state_dict` (end of an epoch, after validation) and
restored when ``CheckpointLoader`` calls :meth:`RNGState.load_state_dict` (``Events.STARTED``), before the resumed
run's first loader iterator is created, which is where the uninterrupted run would draw next.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import Randomizable, Transform

__all__ = ["RNGState", "randomizable_transforms"]

_KEYS = ("torch", "cuda", "numpy", "python", "transforms")
_HOW_TO_FIX = (
    "Resume with the config the checkpoint was trained with, or set rng_state#strict=false to keep this config's "
    "transform seeds (the resumed run then differs from an uninterrupted one)."
)


def randomizable_transforms(pipelines: Sequence[Any]) -> Iterator[tuple[str, Randomizable]]:
    """Every ``Randomizable`` reachable from ``pipelines``, with a stable position path, in a fixed order.

    The walk follows sequences, mappings and the attributes of MONAI transforms, so it finds the transforms inside a
    ``Compose`` (``0.transforms.3``), nested ``Compose``/``OneOf``/``RandomOrder`` pipelines and the random
    transforms a dictionary transform wraps (``RandScaleCropd``'s ``0.transforms.3.cropper``). An object reached
    twice is listed once, at its first path.

    Args:
        pipelines: transforms, usually the training ``Compose``; a single transform is taken as a one-item list.

    Returns:
        ``(path, transform)`` pairs, the ``Compose`` objects themselves included (they are ``Randomizable``).
    """
    seen: set[int] = set()

    def walk(obj: Any, path: str) -> Iterator[tuple[str, Randomizable]]:
        if isinstance(obj, (list, tuple)):
            for i, item in enumerate(obj):
                yield from walk(item, f"{path}.{i}" if path else str(i))
            return
        if isinstance(obj, Mapping):
            for key, item in obj.items():
                yield from walk(item, f"{path}.{key}")
            return
        if not isinstance(obj, (Transform, Randomizable)) or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, Randomizable):
            yield path, obj
        for name, attr in vars(obj).items():
            if name != "R":
                yield from walk(attr, f"{path}.{name}")

    items = [pipelines] if isinstance(pipelines, (Transform, Randomizable)) else list(pipelines)
    yield from walk(items, "")


def _class_name(obj: Any) -> str:
    return type(obj).__qualname__


def _numpy_state(state: tuple) -> dict[str, Any]:
    name, keys, pos, has_gauss, cached_gaussian = state
    if name != "MT19937":
        raise ValueError(f"only MT19937 numpy RandomState can be checkpointed, got {name!r}.")
    keys = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    return {"keys": keys, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def _numpy_tuple(state: Mapping[str, Any]) -> tuple:
    keys = torch.as_tensor(state["keys"]).cpu().numpy().astype(np.uint32)
    return "MT19937", keys, int(state["pos"]), int(state["has_gauss"]), float(state["cached_gaussian"])


def _python_state(state: tuple) -> dict[str, Any]:
    version, internal, gauss_next = state
    return {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next}


def _python_tuple(state: Mapping[str, Any]) -> tuple:
    internal = tuple(int(v) for v in torch.as_tensor(state["state"]).tolist())
    gauss_next = state["gauss_next"]
    return int(state["version"]), internal, None if gauss_next is None else float(gauss_next)


def _generator_state(state: Any) -> torch.Tensor:
    return torch.as_tensor(state).to(torch.uint8).cpu()


class RNGState:
    """Checkpoint entry holding a run's random states (see the module docstring); ``weights_only``-safe.

    ``state_dict()`` returns ``{"torch": uint8 tensor, "cuda": [uint8 tensor] (the current CUDA device's, empty when
    CUDA was never initialised), "numpy": {...}, "python": {...}, "transforms": {path: {"class": name, "keys": ...,
    "pos": ..., "has_gauss": ..., "cached_gaussian": ...}}}``, numpy-style states as tensors and plain numbers.

    Under ``torchrun`` only rank 0 saves (the bundles' ``CheckpointSaver`` is disabled on the other ranks) and every
    rank restores rank 0's states. The bundles seed every rank alike and draw alike on every rank (same number of
    batches, data-independent draws), so rank 0's states are every rank's; saving one state per rank would need a
    collective inside the saver, which runs on rank 0 only, and would tie a checkpoint to its world size.

    Args:
        pipelines: the transform pipelines whose ``Randomizable`` states are saved (the training preprocessing);
            see :func:`randomizable_transforms` for what is found and how it is named.
        strict: when the checkpoint's random transforms (paths and classes) differ from ``pipelines``: ``True``
            (default) raises; ``False`` logs a warning, restores the global generators and leaves the transforms'
            states as they are.
        name: logger name, default this module's.
    """

    def __init__(self, pipelines: Sequence[Any] = (), strict: bool = True, name: str | None = None) -> None:
        self.pipelines = pipelines
        self.strict = bool(strict)
        self.logger = logging.getLogger(name or __name__)

    def transforms(self) -> dict[str, Randomizable]:
        """``{path: transform}`` of every ``Randomizable`` in :attr:`pipelines`."""
        return dict(randomizable_transforms(self.pipelines))

    def state_dict(self) -> dict[str, Any]:
        """The current random states (see the class docstring)."""
        cuda = [torch.cuda.get_rng_state()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
        transforms = {
            path: {"class": _class_name(t), **_numpy_state(t.R.get_state())} for path, t in self.transforms().items()
        }
        return {
            "torch": torch.get_rng_state(),
            "cuda": cuda,
            "numpy": _numpy_state(np.random.get_state()),
            "python": _python_state(random.getstate()),
            "transforms": transforms,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the states saved by :meth:`state_dict`; nothing changes when the check fails.

        Raises:
            KeyError: an entry is missing (not a checkpoint of :class:`RNGState`).
            ValueError: with ``strict``, the checkpoint's random transforms differ from this config's pipelines (the
                message lists the differing paths).
        """
        missing = [k for k in _KEYS if k not in state_dict]
        if missing:
            raise KeyError(f"RNGState checkpoint entry misses {missing}; found {sorted(state_dict)}.")
        transforms = self.transforms()
        problems = self._mismatches(state_dict["transforms"], transforms)
        if problems and self.strict:
            raise ValueError(
                "RNGState: the checkpoint's random transforms differ from this config's training preprocessing:\n  "
                + "\n  ".join(problems)
                + f"\n{_HOW_TO_FIX}"
            )
        if problems:
            self.logger.warning(
                "RNGState: transform random states not restored (pipeline differs: %s); the resumed run differs from "
                "an uninterrupted one.",
                "; ".join(problems),
            )
        torch.set_rng_state(_generator_state(state_dict["torch"]))
        self._load_cuda(state_dict["cuda"])
        np.random.set_state(_numpy_tuple(state_dict["numpy"]))
        random.setstate(_python_tuple(state_dict["python"]))
        if not problems:
            for path, transform in transforms.items():
                transform.R.set_state(_numpy_tuple(state_dict["transforms"][path]))

    @staticmethod
    def _mismatches(saved: Mapping[str, Any], transforms: Mapping[str, Randomizable]) -> list[str]:
        problems = [f"'{p}' ({s['class']}) is in the checkpoint, not in the config" for p, s in saved.items()
                    if p not in transforms]  # fmt: skip
        for path, transform in transforms.items():
            here = _class_name(transform)
            if path not in saved:
                problems.append(f"'{path}' ({here}) is in the config, not in the checkpoint")
            elif saved[path]["class"] != here:
                problems.append(f"'{path}' is {saved[path]['class']} in the checkpoint, {here} in the config")
        return problems

    def _load_cuda(self, states: Sequence[Any]) -> None:
        if not states:
            return
        if not torch.cuda.is_available():
            self.logger.warning(
                "RNGState: the checkpoint holds a CUDA generator state but CUDA is not available; it is not restored "
                "and GPU random draws (e.g. dropout on the GPU) differ from the saved run."
            )
            return
        torch.cuda.set_rng_state(_generator_state(states[0]))
