# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The virtual SGD step of meta-learning: ``theta_hat = theta - alpha * grad_theta L(theta)`` kept differentiable, and a
forward pass of the network with ``theta_hat`` that leaves the real network untouched.

Eq. 1 of Algan et al. (Meta Soft Label Generation): the gradient is taken with ``create_graph=True`` so that the meta
loss of ``f_theta_hat`` can be differentiated back to whatever ``L`` depended on (the soft labels): a first-order
approximation would make that gradient vanish, because ``theta_hat`` would no longer depend on the labels.
The forward with ``theta_hat`` uses ``torch.func.functional_call``; BatchNorm runs on batch statistics (train mode,
as the official functional ResNet forward with ``F.batch_norm(..., training=True)``) and updates *copies* of the
running statistics, so the virtual pass never changes the real network's buffers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.autograd.forward_ad as fwAD
from torch import nn
from torch.func import functional_call

from monai_ext.networks.unwrap import unwrap_network

__all__ = ["unwrap_network", "virtual_sgd_parameters", "functional_forward", "functional_jvp"]


def virtual_sgd_parameters(
    network: nn.Module, loss: torch.Tensor, alpha: float, create_graph: bool = True
) -> dict[str, torch.Tensor]:
    """``theta_hat = theta - alpha * grad_theta loss`` for every trainable parameter (Eq. 1), differentiable.

    Plain SGD (no momentum, no weight decay), as both official codes. Only parameters with ``requires_grad`` take
    part; the others keep their values in :func:`functional_forward`. Nothing is accumulated into ``.grad`` and the
    graph of ``loss`` is retained for the real step that follows.

    Args:
        network: the trained network (a DDP wrapper is unwrapped).
        loss: scalar loss computed from ``network``'s real forward.
        alpha: the virtual step's learning rate (> 0).
        create_graph: keep ``theta_hat`` differentiable (default); ``False`` returns detached leaves that require
            grad (the label gradient then comes from :func:`functional_jvp`).

    Returns:
        ``{parameter name: theta_hat}``, with graphs back to ``loss``'s inputs when ``create_graph``.

    Raises:
        ValueError: ``alpha <= 0`` or ``loss`` is not a scalar.
    """
    if not alpha > 0:
        raise ValueError(f"alpha (the virtual step size of Eq. 1) must be > 0, got {alpha}.")
    if loss.ndim != 0:
        raise ValueError(f"the virtual step needs a scalar loss, got shape {tuple(loss.shape)}.")
    named = [(n, p) for n, p in unwrap_network(network).named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(
        loss, [p for _, p in named], create_graph=create_graph, retain_graph=True, allow_unused=True
    )
    fast = {n: p if g is None else p - alpha * g for (n, p), g in zip(named, grads)}
    if not create_graph:
        fast = {n: p.detach().requires_grad_(True) for n, p in fast.items()}
    return fast


def functional_forward(
    network: nn.Module, parameters: Mapping[str, torch.Tensor], *args: torch.Tensor, **kwargs
) -> torch.Tensor:
    """``network(*args)`` with ``parameters`` in place of its own, in train mode, without touching its buffers.

    Buffers (BatchNorm running statistics, ``num_batches_tracked``) are passed as clones, so the pass updates the
    clones; the network's own train/eval mode is restored afterwards.

    Args:
        network: the network (a DDP wrapper is unwrapped: the virtual pass needs no gradient synchronisation).
        parameters: ``{name: tensor}`` replacing some or all parameters (e.g. :func:`virtual_sgd_parameters`).
        args, kwargs: the forward's inputs.
    """
    module = unwrap_network(network)
    buffers = {n: b.clone() for n, b in module.named_buffers()}
    was_training = module.training
    module.train()
    try:
        return functional_call(module, {**buffers, **parameters}, args, kwargs, strict=False)
    finally:
        module.train(was_training)


def functional_jvp(
    network: nn.Module,
    parameters: Mapping[str, torch.Tensor],
    tangents: Mapping[str, torch.Tensor],
    *args: torch.Tensor,
    activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward-mode derivative of ``activation(network(*args))`` at ``parameters`` in the direction ``tangents``.

    ``torch.autograd.forward_ad`` dual tensors, one forward pass (no graph is kept); train mode and cloned buffers as
    :func:`functional_forward`. Used for the label gradient of meta soft-label learning without a double backward:
    ``J_theta f(x) . g`` for ``g = grad_theta L_meta(theta_hat)``.

    Args:
        network: the network (a DDP wrapper is unwrapped).
        parameters: ``{name: value}`` of the parameters to differentiate (detached); the others keep their values.
        tangents: ``{name: direction}`` for every entry of ``parameters``, same shapes.
        args: the forward's inputs.
        activation: applied to the output inside the dual level (e.g. softmax); default none.

    Returns:
        ``(output, tangent)``, both detached, ``tangent`` = the directional derivative of the output.
    """
    module = unwrap_network(network)
    buffers = {n: b.clone() for n, b in module.named_buffers()}
    was_training = module.training
    module.train()
    try:
        with fwAD.dual_level():
            dual = {n: fwAD.make_dual(p.detach(), tangents[n].detach()) for n, p in parameters.items()}
            out = functional_call(module, {**buffers, **dual}, args, strict=False)
            if activation is not None:
                out = activation(out)
            primal, tangent = fwAD.unpack_dual(out)
            return primal.detach(), tangent.detach()
    finally:
        module.train(was_training)
