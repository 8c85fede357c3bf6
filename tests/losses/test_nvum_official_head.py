# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``NVUMLoss(mode="official")`` against the official NVUM code at its HEAD (github FBLADL/NVUM, commit ``86d431d``).

:class:`_HeadNVUMREG` and :func:`_head_step` re-state, from the official code and without any part of
:class:`~monai_ext.losses.NVUMLoss`, one training iteration of ``train.py`` ``train()`` (l. 236-254) with
``models/loss.py`` class ``NVUMREG`` (l. 9-59):

- ``lam ~ Beta(1, 1)``, ``lam = max(lam, 1 - lam)``, ``mix_index = randperm(B)`` (``train.py`` l. 236-238);
- the EMA teacher's logits go into the memory first, prior-adjusted with ``log(prior + 1e-12)`` (``update_hist``,
  l. 45-55, ``logits_adjust`` l. 21-26), float32 like ``pred_hist``;
- ``q = lam * pred_hist[index] + (1 - lam) * pred_hist[index][mix_index]`` (l. 56-59);
- ``y_pred = clamp(sigmoid(output), 1e-4, 1 - 1e-4)``, ``reg = log(1 - sigmoid(q * y_pred))``, not detached
  (l. 33-41);
- ``final = mean(bce + reg_weight * reg)`` over ``B x C`` (``train.py`` l. 253-254).

Shared randomness: the official code draws ``lam`` from numpy and ``mix_index`` from torch's global generator;
``NVUMLoss`` draws from its ``generator``, per call first ``u = torch.rand(())`` then ``torch.randperm(B)`` (the
order its docstring documents). The test gives the loss a generator seeded with ``MIX_SEED`` and makes the same two
draws from a second generator with the same seed, then hands ``lam = max(u, 1 - u)`` and the permutation to the
re-statement. ``u`` is uniform, i.e. ``Beta(1, 1)`` as in the official code.

Two copies of a small float64 MLP start from the same weights; one is trained with ``NVUMLoss``, the other with the
re-statement, each with its own EMA teacher (``WeightEMA``, ``train.py`` l. 343-371, decay 0.99) and plain SGD, on
the same random batches of dataset indices. At every one of 20 iterations the loss, the gradient with respect to the
logits and to every parameter, and the memory must agree to 1e-6.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from monai_ext.losses import NVUMLoss, nvum_prior

NUM_SAMPLES, BATCH, NUM_CLASSES, FEATURES, HIDDEN = 12, 5, 4, 6, 8
ITERATIONS, BETA, REG_WEIGHT, EMA_DECAY, LR = 20, 0.9, 1.0, 0.99, 0.5
DATA_SEED, MIX_SEED = 3, 11
TOL = 1e-6


def _official_prior(labels: torch.Tensor) -> list[float]:
    """``ChestDataset.calc_prior`` (``data/cx14_dataloader_cut.py`` l. 118-132): the last column is No Finding."""
    gt = labels.numpy()
    no_finding = np.nonzero(gt[:, -1] == 1)[0].shape[0] / gt.shape[0]
    prior = [(1 - no_finding) * np.nonzero(gt[:, c] == 1)[0].shape[0] / gt.shape[0] for c in range(gt.shape[1] - 1)]
    return prior + [no_finding]


class _HeadNVUMREG:
    """``models/loss.py`` ``NVUMREG`` at ``86d431d``, with ``tau = 1``."""

    def __init__(self, num_samples: int, num_classes: int, prior: list[float], beta: float) -> None:
        self.pred_hist = torch.zeros(num_samples, num_classes)  # float32 (l. 15)
        self.beta = beta
        self.prior = torch.from_numpy(np.asarray(prior))  # float64 (l. 18)
        self.q = torch.zeros(0)

    def update_hist(self, out: torch.Tensor, index: list[int], mix_index: torch.Tensor, mixup_l: float) -> None:
        adjust_logits = (out - (self.prior.unsqueeze(0) + 1e-12).log()).float()  # l. 22, 26, 47
        self.pred_hist[index] = self.beta * self.pred_hist[index] + (1 - self.beta) * adjust_logits  # l. 53-55
        self.q = mixup_l * self.pred_hist[index] + (1 - mixup_l) * self.pred_hist[index][mix_index]  # l. 56-59

    def __call__(self, output: torch.Tensor, y_labeled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y_pred = torch.clamp(torch.sigmoid(output), 1e-4, 1.0 - 1e-4)  # l. 33-35
        bce_loss = F.binary_cross_entropy_with_logits(output, y_labeled, reduction="none")  # l. 37
        reg = (1 - torch.sigmoid(self.q * y_pred)).log()  # l. 41: y_pred not detached
        return bce_loss, reg


def _head_step(criterion, outputs, outputs_ema, labels, index, mix_index, lam):
    """``train.py`` l. 244-254: memory from the teacher first, then ``mean(bce + reg_weight * reg)``."""
    criterion.update_hist(outputs_ema.detach(), index, mix_index, lam)
    bce_loss, reg = criterion(outputs, labels)
    return torch.mean(bce_loss + REG_WEIGHT * reg)


def _weight_ema_step(model: torch.nn.Module, ema_model: torch.nn.Module) -> None:
    """``WeightEMA.step`` (``train.py`` l. 359-371): every ``state_dict`` entry, ``alpha = 0.99``."""
    params, ema_params = model.state_dict(), ema_model.state_dict()
    for key, ema_param in ema_params.items():
        ema_param.mul_(EMA_DECAY).add_(params[key] * (1.0 - EMA_DECAY))


def _mlp() -> torch.nn.Module:
    gen = torch.Generator().manual_seed(DATA_SEED)
    net = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, NUM_CLASSES)
    ).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return net


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(DATA_SEED + 1)
    images = torch.randn(NUM_SAMPLES, FEATURES, generator=gen, dtype=torch.float64)
    labels = (torch.rand(NUM_SAMPLES, NUM_CLASSES, generator=gen) < 0.4).double()
    labels[0, :] = 1.0  # every class, No Finding included, has a positive: the prior is > 0
    return images, labels


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def test_official_mode_equals_head_code_over_20_sgd_iterations():
    images, labels = _data()
    net_ours, net_head = _mlp(), _mlp()
    ema_ours, ema_head = copy.deepcopy(net_ours).requires_grad_(False), copy.deepcopy(net_head).requires_grad_(False)
    opt_ours = torch.optim.SGD(net_ours.parameters(), lr=LR)
    opt_head = torch.optim.SGD(net_head.parameters(), lr=LR)
    loss_ours = NVUMLoss(
        NUM_SAMPLES,
        NUM_CLASSES,
        nvum_prior(labels, "official"),
        beta=BETA,
        reg_weight=REG_WEIGHT,
        mode="official",
        generator=torch.Generator().manual_seed(MIX_SEED),
    )
    criterion_head = _HeadNVUMREG(NUM_SAMPLES, NUM_CLASSES, _official_prior(labels), BETA)
    mix_draws = torch.Generator().manual_seed(MIX_SEED)  # the loss's draws, replayed (see the module docstring)
    batches = torch.Generator().manual_seed(DATA_SEED + 2)
    reg_effect, mixed = 0.0, 0

    for it in range(ITERATIONS):
        index = torch.randperm(NUM_SAMPLES, generator=batches)[:BATCH]
        x, y = images[index], labels[index]
        u = float(torch.rand((), generator=mix_draws))
        lam = max(u, 1.0 - u)
        mix_index = torch.randperm(BATCH, generator=mix_draws)
        mixed += int(not torch.equal(mix_index, torch.arange(BATCH)))

        opt_head.zero_grad()
        out_head = net_head(x)
        out_head.retain_grad()
        final_head = _head_step(criterion_head, out_head, ema_head(x), y, index.tolist(), mix_index, lam)
        final_head.backward()

        opt_ours.zero_grad()
        out_ours = net_ours(x)
        out_ours.retain_grad()
        final_ours = loss_ours(out_ours, y, index=index, memory_logits=ema_ours(x))
        final_ours.backward()

        where = f"iteration {it}"
        assert abs(float(final_ours.detach()) - float(final_head.detach())) <= TOL, where
        grad_diff = _max_abs(out_ours.grad, out_head.grad)
        assert grad_diff <= TOL, f"{where}: logits gradient differs by {grad_diff:.3e}"
        for (name, p_ours), p_head in zip(net_ours.named_parameters(), net_head.parameters()):
            assert _max_abs(p_ours.grad, p_head.grad) <= TOL, f"{where}: gradient of {name}"
        assert _max_abs(loss_ours.memory, criterion_head.pred_hist) <= TOL, f"{where}: memory"
        logits = out_head.detach().requires_grad_(True)
        bce_only = torch.autograd.grad(F.binary_cross_entropy_with_logits(logits, y), logits)[0]
        reg_effect = max(reg_effect, _max_abs(out_head.grad, bce_only))

        opt_head.step()
        opt_ours.step()
        with torch.no_grad():
            _weight_ema_step(net_head, ema_head)
            _weight_ema_step(net_ours, ema_ours)

    for p_ours, p_head in zip(net_ours.parameters(), net_head.parameters()):
        assert _max_abs(p_ours, p_head) <= TOL
    assert mixed >= ITERATIONS // 2  # the memory mixing is exercised
    assert reg_effect > 1e-3  # the regulariser's gradient matters here, so a detached one would be caught


def test_detach_reg_prob_leaves_only_the_bce_gradient():
    """``detach_reg_prob=True`` (the official code before commit e8b4479): same loss value, gradient = BCE's."""
    gen = torch.Generator().manual_seed(DATA_SEED)
    z0 = torch.randn(BATCH, NUM_CLASSES, generator=gen, dtype=torch.float64)
    teacher = 3.0 * torch.randn(BATCH, NUM_CLASSES, generator=gen, dtype=torch.float64)
    y = (torch.rand(BATCH, NUM_CLASSES, generator=gen) < 0.4).double()
    index = torch.arange(BATCH)
    prior = [0.1, 0.2, 0.3, 0.4]

    def value_and_grad(**options):
        loss = NVUMLoss(NUM_SAMPLES, NUM_CLASSES, prior, mode="official", **options)
        z = z0.clone().requires_grad_(True)
        out = loss(z, y, index=index, memory_logits=teacher)
        out.backward()
        return float(out.detach()), z.grad

    value_head, grad_head = value_and_grad()
    value_detached, grad_detached = value_and_grad(detach_reg_prob=True)
    z = z0.clone().requires_grad_(True)
    F.binary_cross_entropy_with_logits(z, y).backward()

    assert abs(value_head - value_detached) <= 1e-12
    assert _max_abs(grad_detached, z.grad) <= 1e-12
    assert _max_abs(grad_head, z.grad) > 1e-3
    assert NVUMLoss(NUM_SAMPLES, NUM_CLASSES, prior, mode="official").detach_reg_prob is False
