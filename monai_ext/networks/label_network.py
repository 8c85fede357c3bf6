# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The label network of meta soft-label learning's second mode: soft labels from a small network over frozen features.

Sec. III-B of Algan et al. says "a small MLP network is trained on meta objective to find optimal soft labels". The
official ROP code (gorkemalgan/rop_noisylabel_meta ``main.py`` at HEAD f02f69a64d0d2cf83bbcc1aa354ede175ad61313,
``meta_train``) implements it as ``MetaNet``: one linear layer from the 2048 pooled features of a *frozen copy of the
network after warm-up* (``feature_encoder``) to the classes, followed by softmax, trained with Adam. This module is
that network: :meth:`LabelNetwork.snapshot` copies the warm-up network into the frozen encoder at the start of the
meta stage, :meth:`LabelNetwork.features` reads the classifier layer's input of that copy (a forward pre-hook, so any
network whose classifier is one named layer works: ``fc`` of MONAI's and torchvision's ResNet), and ``forward``
gives the label logits. Features are computed per batch (the official code extracts them for the whole training set
once, ``N x 2048`` floats, 4 GB at 500k samples; per batch the memory does not grow with ``N``).
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
from torch import nn

from monai_ext.networks.unwrap import unwrap_network

__all__ = ["LabelNetwork"]


class LabelNetwork(nn.Module):
    """Soft labels ``softmax(W phi(x) + b)`` with ``phi`` the pooled features of the frozen warm-up network.

    Args:
        network: the classifier being trained (a DDP wrapper is unwrapped); a frozen copy becomes the encoder.
        num_classes: ``C``.
        feature_layer: name of the classifier layer whose *input* are the features (``"fc"`` for ResNets), found
            with ``get_submodule``; it must have ``in_features``.

    Buffers: ``encoder_ready`` (bool): whether :meth:`snapshot` has copied the warm-up network (saved, so a resumed
    meta stage keeps its encoder).

    Raises:
        ValueError: ``feature_layer`` is not a layer of ``network`` or has no ``in_features``.
    """

    def __init__(self, network: nn.Module, num_classes: int, feature_layer: str = "fc") -> None:
        super().__init__()
        module = unwrap_network(network)
        try:
            layer = module.get_submodule(feature_layer)
        except AttributeError as e:
            names = [n for n, m in module.named_modules() if hasattr(m, "in_features")]
            raise ValueError(
                f"feature_layer {feature_layer!r} is not a layer of {type(module).__name__}; layers with in_features: "
                f"{names[:10]}."
            ) from e
        if not hasattr(layer, "in_features"):
            raise ValueError(f"feature_layer {feature_layer!r} ({type(layer).__name__}) has no in_features.")
        self.feature_layer = feature_layer
        self.in_features = int(layer.in_features)
        self.encoder = copy.deepcopy(module)
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        self.linear = nn.Linear(self.in_features, num_classes)
        self.register_buffer("encoder_ready", torch.tensor(False))
        self._captured: list[torch.Tensor] = []
        self.encoder.get_submodule(feature_layer).register_forward_pre_hook(self._capture)

    def _capture(self, _module: nn.Module, args: tuple) -> None:
        self._captured.append(args[0])

    def train(self, mode: bool = True) -> LabelNetwork:
        super().train(mode)
        self.encoder.eval()  # the encoder stays frozen: BatchNorm in eval mode
        return self

    @torch.no_grad()
    def snapshot(self, network: nn.Module) -> None:
        """Copy ``network``'s current weights and buffers into the frozen encoder (the end of warm-up).

        Under ``torch.distributed`` rank 0's copy is broadcast: ``DistributedDataParallel`` keeps the parameters equal
        but each rank's BatchNorm running statistics come from its own last batch."""
        self.encoder.load_state_dict(unwrap_network(network).state_dict())
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            for tensor in self.encoder.state_dict().values():
                dist.broadcast(tensor, src=0)
        self.encoder_ready.fill_(True)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``B F`` features of ``images``: the classifier layer's input in the frozen encoder (eval mode)."""
        self._captured.clear()
        self.encoder(images)
        if not self._captured:
            raise RuntimeError(f"the encoder's forward never reached {self.feature_layer!r}.")
        return self._captured.pop().flatten(1).detach()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``B C`` label logits (the soft label is their softmax) of ``B F`` features."""
        return self.linear(features)
