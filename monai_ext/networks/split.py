# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MONAI networks split at a key feature map: ``encode`` (input -> key features) and ``decode`` (the rest).

MoMBS's assessor (:class:`monai_ext.handlers.mombs_assessor.MoMBSAssessor`) disturbs the key feature map of the
training forward and re-runs only the part of the network after it. A *split network* therefore exposes

- ``encode(x) -> SplitFeatures``: the key feature map (``key``) plus whatever else the rest of the network reads
  (``context``, e.g. a U-Net's skip connections, shallowest first);
- ``decode(features) -> Tensor``: the network output (logits) from those features;
- ``tap``: a parameter-free :class:`FeatureTap` that ``forward`` passes the features through, so that a forward hook
  on ``tap`` sees the features of the very forward that trains the network;
- ``forward(x) = decode(tap(encode(x)))``, identical (same operations in the same order) to the parent network's;
- optionally ``bind_context(context) -> Callable[[key], Tensor]``: ``decode`` with the context fixed, with the work
  that depends on the context alone done once (see :func:`bound_decoder`; :class:`SplitUNet` has one).

The MONAI subclasses keep their parent's constructor arguments and ``state_dict`` keys, so a bundle swaps
``"_target_": "UNet"`` for ``"_target_": "monai_ext.networks.SplitUNet"`` and its checkpoints, ``ckpt_export`` and
``verify_net_in_out`` stay as they were.

Key feature maps:

- :class:`SplitUNet` (MONAI ``UNet``, built recursively from ``SkipConnection`` blocks): the output of the bottom
  (bottleneck) layer, ``channels[-1]`` channels at ``1 / prod(strides)`` of the input size; context: the outputs of
  the ``len(channels) - 1`` down layers.
- :class:`SplitBasicUNet` (MONAI ``BasicUNet``): ``down_4``'s output (``features[4]`` channels, 1/16 size); context:
  ``conv_0``, ``down_1``, ``down_2``, ``down_3`` outputs.
- :class:`SplitDenseNet121` (MONAI ``DenseNet121``): ``features``' output (after ``norm5``, 1024 channels, 1/32
  size), before ``class_layers`` (ReLU, global pooling, linear); no context.
- :class:`SplitModel`: any ``encoder``/``decoder`` pair of modules (``key = encoder(x)``, no context).

Detection (extension point): a split RetinaNet returns its FPN levels as ``key`` (a tuple of maps, each disturbed
independently) and ``decode`` runs the classification head and returns the per-anchor class logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.simplelayers import SkipConnection
from monai.networks.nets import BasicUNet, DenseNet121, UNet
from torch import nn

__all__ = [
    "SplitFeatures",
    "FeatureTap",
    "SplitNetwork",
    "is_split_network",
    "bound_decoder",
    "SplitModel",
    "SplitUNet",
    "SplitBasicUNet",
    "SplitDenseNet121",
]


class SplitFeatures(NamedTuple):
    """What ``encode`` hands to ``decode``.

    Attributes:
        key: the key feature map, ``B C' H' W'[ D']`` (or a tuple of maps for multi-scale features such as FPN
            levels); the assessor disturbs it.
        context: further tensors that ``decode`` reads unchanged (a U-Net's skip connections, shallowest first);
            default none.
    """

    key: torch.Tensor | tuple[torch.Tensor, ...]
    context: tuple[torch.Tensor, ...] = ()


class FeatureTap(nn.Identity):
    """Parameter-free pass-through for :class:`SplitFeatures`; a forward hook on it sees the training features."""


@runtime_checkable
class SplitNetwork(Protocol):
    """A module with ``encode``, ``decode`` and a ``tap`` (see the module docstring)."""

    tap: FeatureTap

    def encode(self, x: torch.Tensor) -> SplitFeatures: ...

    def decode(self, features: SplitFeatures) -> torch.Tensor: ...


def is_split_network(network: Any) -> bool:
    """Whether ``network`` is a ``torch.nn.Module`` with ``encode``, ``decode`` and a :class:`FeatureTap` ``tap``."""
    return (
        isinstance(network, nn.Module)
        and callable(getattr(network, "encode", None))
        and callable(getattr(network, "decode", None))
        and isinstance(getattr(network, "tap", None), FeatureTap)
    )


def bound_decoder(network: nn.Module, features: SplitFeatures) -> Callable[[Any], torch.Tensor]:
    """``key -> network.decode(SplitFeatures(key, features.context))``, for many keys with the same context.

    Uses the network's ``bind_context`` when it has one (work that reads only the context done once, e.g.
    :meth:`SplitUNet.bind_context`); otherwise calls ``decode`` every time.

    Args:
        network: a split network.
        features: the features whose ``context`` is fixed (their ``key`` is not used).
    """
    bind = getattr(network, "bind_context", None)
    if callable(bind):
        return bind(tuple(features.context))
    context = tuple(features.context)
    return lambda key: network.decode(SplitFeatures(key, context))


_CONV_TRANSPOSE = {nn.ConvTranspose1d: F.conv_transpose1d, nn.ConvTranspose2d: F.conv_transpose2d,
                   nn.ConvTranspose3d: F.conv_transpose3d}  # fmt: skip


def _conv_transpose(conv: nn.Module, x: torch.Tensor, in_channels: slice, bias: bool) -> torch.Tensor:
    """``conv`` applied to ``x`` with only the input channels ``in_channels`` of its weight (and its bias or not)."""
    function = _CONV_TRANSPOSE[type(conv)]
    return function(x, conv.weight[in_channels], conv.bias if bias else None, conv.stride, conv.padding,
                    conv.output_padding, conv.groups, conv.dilation)  # fmt: skip


def _split_up_layer(up: nn.Module) -> tuple[nn.Module, list[nn.Module]] | None:
    """``(transposed conv, the modules after it)`` of a MONAI UNet up layer (``Convolution`` or
    ``Sequential(Convolution, ResidualUnit)``), or ``None`` when the layer is built otherwise."""
    first, rest = (up[0], list(up)[1:]) if type(up) is nn.Sequential and len(up) > 0 else (up, [])
    if not isinstance(first, Convolution):
        return None
    children = list(first.named_children())
    conv = children[0][1] if children and children[0][0] == "conv" else None
    if type(conv) not in _CONV_TRANSPOSE or conv.groups != 1 or conv.padding_mode != "zeros":
        return None
    return conv, [m for _, m in children[1:]] + rest


class SplitModel(nn.Module):
    """A network made of an ``encoder`` (input -> key features) and a ``decoder`` (key features -> output).

    ``state_dict`` keys are ``encoder.*`` and ``decoder.*``.

    Example::

        net = SplitModel(nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU()), nn.Conv2d(8, 2, 1))
        feats = net.encode(torch.zeros(2, 1, 16, 16))  # feats.key: 2 8 14 14, feats.context: ()
        logits = net.decode(feats)                     # 2 2 14 14, equal to net(x)

    Args:
        encoder: maps the input ``B C H W[ D]`` to the key feature map.
        decoder: maps the key feature map to the output.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.tap = FeatureTap()

    def encode(self, x: torch.Tensor) -> SplitFeatures:
        """``SplitFeatures(key=encoder(x))``."""
        return SplitFeatures(self.encoder(x))

    def decode(self, features: SplitFeatures) -> torch.Tensor:
        """``decoder(features.key)``."""
        return self.decoder(features.key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(tap(encode(x)))``."""
        return self.decode(self.tap(self.encode(x)))


class SplitUNet(UNet):
    """MONAI ``UNet`` with ``encode`` (down path and bottleneck) and ``decode`` (up path).

    Same constructor arguments, ``state_dict`` keys and output as ``monai.networks.nets.UNet``. MONAI builds the
    U-Net recursively as ``Sequential(down, SkipConnection(subblock), up)`` with the bottom layer innermost;
    ``encode`` walks that structure: ``d_i = down_i(d_{i-1})`` for the ``len(channels) - 1`` levels, then
    ``key = bottom(d_last)``; ``decode`` climbs back: ``y = up_i(cat([d_i, y], dim=1))`` from the deepest level.

    Example::

        net = SplitUNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2))
        feats = net.encode(torch.zeros(4, 1, 32, 32))  # key: 4 32 8 8 (bottleneck), context: (4 8 16 16, 4 16 8 8)
        logits = net.decode(feats)                     # 4 2 32 32

    Args:
        args: positional arguments of ``monai.networks.nets.UNet``.
        kwargs: keyword arguments of ``monai.networks.nets.UNet``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tap = FeatureTap()
        self._levels()  # fail at construction if MONAI's block structure is not the expected one

    def _levels(self) -> tuple[list[nn.Module], list[nn.Module], nn.Module]:
        downs, ups = [], []
        block = self.model
        for level in range(len(self.channels) - 1):
            if not (isinstance(block, nn.Sequential) and len(block) == 3 and isinstance(block[1], SkipConnection)):
                raise TypeError(
                    f"SplitUNet expects MONAI UNet's Sequential(down, SkipConnection(subblock), up) at level {level}, "
                    f"got {type(block).__name__}; subclasses that change _get_connection_block are not supported."
                )
            skip = block[1]
            if skip.mode != "cat" or skip.dim != 1:
                raise TypeError(
                    f"SplitUNet expects channel concatenation skips, got mode={skip.mode!r} dim={skip.dim}."
                )
            downs.append(block[0])
            ups.append(block[2])
            block = skip.submodule
        return downs, ups, block

    def encode(self, x: torch.Tensor) -> SplitFeatures:
        """Down path and bottom layer.

        Args:
            x: input ``B in_channels H W[ D]``.

        Returns:
            ``key``: bottleneck output ``B channels[-1] H/s W/s[ D/s]`` with ``s = prod(strides)``; ``context``: the
            down layers' outputs, shallowest first.
        """
        downs, _, bottom = self._levels()
        skips = []
        for down in downs:
            x = down(x)
            skips.append(x)
        return SplitFeatures(bottom(x), tuple(skips))

    def decode(self, features: SplitFeatures) -> torch.Tensor:
        """Up path from the bottleneck: ``B out_channels H W[ D]`` (logits, as ``UNet.forward``)."""
        _, ups, _ = self._levels()
        y = features.key
        for skip, up in zip(reversed(features.context), reversed(ups)):
            y = up(torch.cat([skip, y], dim=1))
        return y

    def bind_context(self, context: tuple[torch.Tensor, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
        """``decode`` for many keys with the same skip connections ``context``.

        Each up layer starts with a transposed convolution of ``cat([skip, y])``, which is linear: it equals the
        convolution of ``skip`` with the weight's first ``C_skip`` input channels (plus the bias) plus that of ``y``
        with the remaining ones. The skip parts are computed here once; each call then convolves only ``y`` and adds
        them (no concatenation). Same values as ``decode`` up to float rounding (the sum is taken in another order).
        Up layers of another make fall back to ``up(cat([skip, y]))``.

        Args:
            context: the down layers' outputs from :meth:`encode`, shallowest first.

        Returns:
            ``key -> B out_channels H W[ D]`` logits.
        """
        _, ups, _ = self._levels()
        steps = []
        for skip, up in zip(reversed(context), reversed(ups)):
            split = _split_up_layer(up)
            if split is None:
                steps.append((up, skip, None, []))
                continue
            conv, after = split
            skip_part = _conv_transpose(conv, skip, slice(0, skip.shape[1]), bias=True)
            steps.append((conv, skip_part, slice(skip.shape[1], None), after))

        def decode_key(key: torch.Tensor) -> torch.Tensor:
            y = key
            for module, fixed, key_channels, after in steps:
                if key_channels is None:  # not a split layer: module is the whole up layer, fixed the skip
                    y = module(torch.cat([fixed, y], dim=1))
                    continue
                y = _conv_transpose(module, y, key_channels, bias=False).add_(fixed)
                for m in after:
                    y = m(y)
            return y

        return decode_key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(tap(encode(x)))``, the same operations as ``UNet.forward`` (which TorchScript compiles)."""
        if torch.jit.is_scripting():  # ckpt_export scripts the network; the split path is for eager training only
            return self.model(x)
        return self.decode(self.tap(self.encode(x)))


class SplitBasicUNet(BasicUNet):
    """MONAI ``BasicUNet`` with ``encode`` (``conv_0``, ``down_1`` ... ``down_4``) and ``decode`` (the ``upcat``s).

    Same constructor arguments, ``state_dict`` keys and output as ``monai.networks.nets.BasicUNet``; the key feature
    map is ``down_4``'s output (``features[4]`` channels at 1/16 of the input size).

    Args:
        args: positional arguments of ``monai.networks.nets.BasicUNet``.
        kwargs: keyword arguments of ``monai.networks.nets.BasicUNet``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tap = FeatureTap()

    def encode(self, x: torch.Tensor) -> SplitFeatures:
        """``key``: ``down_4`` output ``B features[4] H/16 W/16[ D/16]``; ``context``: ``(x0, x1, x2, x3)``."""
        x0 = self.conv_0(x)
        x1 = self.down_1(x0)
        x2 = self.down_2(x1)
        x3 = self.down_3(x2)
        return SplitFeatures(self.down_4(x3), (x0, x1, x2, x3))

    def decode(self, features: SplitFeatures) -> torch.Tensor:
        """``B out_channels H W[ D]`` logits, as ``BasicUNet.forward``."""
        x0, x1, x2, x3 = features.context
        u4 = self.upcat_4(features.key, x3)
        u3 = self.upcat_3(u4, x2)
        u2 = self.upcat_2(u3, x1)
        u1 = self.upcat_1(u2, x0)
        return self.final_conv(u1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(tap(encode(x)))``, the same operations as ``BasicUNet.forward`` (which TorchScript compiles)."""
        if torch.jit.is_scripting():  # ckpt_export scripts the network; the split path is for eager training only
            x0 = self.conv_0(x)
            x1 = self.down_1(x0)
            x2 = self.down_2(x1)
            x3 = self.down_3(x2)
            x4 = self.down_4(x3)
            return self.final_conv(self.upcat_1(self.upcat_2(self.upcat_3(self.upcat_4(x4, x3), x2), x1), x0))
        return self.decode(self.tap(self.encode(x)))


class SplitDenseNet121(DenseNet121):
    """MONAI ``DenseNet121`` with ``encode`` (``features``) and ``decode`` (``class_layers``).

    Same constructor arguments (``pretrained`` included), ``state_dict`` keys and output as
    ``monai.networks.nets.DenseNet121``; the key feature map is ``features``' output (after ``norm5``: 1024 channels
    at 1/32 of the input size), before the ReLU, global pooling and linear layer of ``class_layers``.

    Args:
        args: positional arguments of ``monai.networks.nets.DenseNet121``.
        kwargs: keyword arguments of ``monai.networks.nets.DenseNet121``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tap = FeatureTap()

    def encode(self, x: torch.Tensor) -> SplitFeatures:
        """``key``: ``features(x)``, ``B 1024 H/32 W/32``; no context."""
        return SplitFeatures(self.features(x))

    def decode(self, features: SplitFeatures) -> torch.Tensor:
        """``class_layers(key)``: ``B out_channels`` logits."""
        return self.class_layers(features.key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(tap(encode(x)))``, the same operations as ``DenseNet.forward`` (which TorchScript compiles)."""
        if torch.jit.is_scripting():  # ckpt_export scripts the network; the split path is for eager training only
            return self.class_layers(self.features(x))
        return self.decode(self.tap(self.encode(x)))
