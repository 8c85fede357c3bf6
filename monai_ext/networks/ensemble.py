# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Ensemble members for MONAI's ``EnsembleEvaluator``: one network copy per checkpoint.

FPSM paper Sec. 4.3 (Kim et al., ICCV 2023 workshops): the final model averages the output probabilities of three
checkpoints. A bundle runs ``monai.engines.EnsembleEvaluator`` over the members returned here, combines each member's
stage heads (:class:`monai_ext.transforms.CombineStageLogitsd`) and averages them with MONAI's ``MeanEnsembled``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import torch
from torch import nn

from monai_ext.bundle.checkpoint import check_checkpoint_fits
from monai_ext.networks.fpsm import FeaturePyramidSumNet, fpsm_checkpoint_hint

__all__ = ["load_ensemble_members", "ensemble_pred_keys"]


def ensemble_pred_keys(checkpoints: Sequence[str | os.PathLike]) -> list[str]:
    """Output keys of the members of ``checkpoints`` in an ``EnsembleEvaluator``: ``pred_0``, ``pred_1``, ..."""
    return [f"pred_{i}" for i in range(len(checkpoints))]


def load_ensemble_members(
    network: nn.Module,
    checkpoints: Sequence[str | os.PathLike],
    device: torch.device | str = "cpu",
    key: str = "model",
) -> list[nn.Module]:
    """One evaluation copy of ``network`` per checkpoint, its weights loaded from the checkpoint's ``key`` entry.

    The members share ``network``'s architecture (same config, e.g. the same FPSM stage set); each checkpoint is
    checked with :func:`monai_ext.bundle.check_checkpoint_fits` first and loaded with ``weights_only=True``.

    Args:
        network: the config's network (not modified; copied per member).
        checkpoints: paths of bundle checkpoints (``CheckpointSaver`` dicts), at least one.
        device: device of the members. Defaults to ``"cpu"``.
        key: entry holding the weights. Defaults to ``"model"``.

    Returns:
        the members in ``checkpoints`` order, in eval mode.

    Raises:
        ValueError: no checkpoint, a checkpoint listed twice, or one that does not fit ``network`` (the message names
            the file).
        FileNotFoundError: a checkpoint is missing.
    """
    paths = [os.fspath(p) for p in checkpoints]
    if not paths:
        raise ValueError("ensemble_checkpoints is empty; list at least one checkpoint (e.g. ['models/model.pt']).")
    seen = set()
    for p in paths:
        real = os.path.realpath(p)
        if real in seen:
            raise ValueError(f"checkpoint '{p}' is listed twice in ensemble_checkpoints; each member must differ.")
        seen.add(real)
    members = []
    for p in paths:
        check_checkpoint_fits(p, network, key=key, hint=_member_hint)
        member = copy.deepcopy(network).to(device)
        state = torch.load(p, map_location=device, weights_only=True)[key]
        member.load_state_dict(state)
        members.append(member.eval())
    return members


def _member_hint(state_dict, network: nn.Module) -> str:
    """The hint of a member that does not fit: for an FPSM, the head options its checkpoint was trained with."""
    text = "Every ensemble member must be trained with this config."
    if isinstance(getattr(network, "module", network), FeaturePyramidSumNet):
        text += " " + fpsm_checkpoint_hint(state_dict, network)
    return text
