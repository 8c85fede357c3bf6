# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Meta soft-label learning as a MONAI trainer (Algan et al., "Learning from Small Amount of Medical Data with Noisy
Labels: A Meta-Learning Approach", Sec. III; Meta Soft Label Generation, Algan & Ulusoy, ICPR 2020).

Warm-up (Sec. III-C): the first ``warmup_epochs`` epochs train with cross-entropy on the noisy labels. Then every
iteration of the meta stage does (Sec. III-B, Fig. 3):

1. the real forward ``f_theta(x)`` of the training batch;
2. Eq. 1, the virtual step ``theta_hat = theta - alpha * grad_theta L_KL(f_theta(x), softmax(y_hat))`` with
   ``create_graph=True`` (:func:`~monai_ext.engines.virtual_step.virtual_sgd_parameters`);
3. the meta loss ``L_cce(f_theta_hat(x_m), y_m)`` on a batch of the clean meta set
   (:func:`~monai_ext.engines.virtual_step.functional_forward`: BatchNorm on batch statistics, real buffers untouched);
4. Eq. 2, the label update ``y_hat <- y_hat - beta * grad_y_hat L_cce`` of the batch's rows
   (:class:`~monai_ext.engines.soft_labels.SoftLabelStore`), or, with ``label_source="network"``, an Adam step of the
   label network on ``L_cce + compatibility_weight * CE(label logits, noisy label)`` (official ROP ``meta_train``);
5. Eq. 3-4, the real step on ``L_KL(f_theta(x), softmax(y_hat_new)) + entropy_weight * L_e(f_theta(x))``.

Step 2-4's label gradient needs second order: ``label_gradient="double_backward"`` (default) differentiates through
the virtual step, ``"jvp"`` evaluates the closed form below with one forward-mode Jacobian-vector product after a
first-order virtual step (same value; cheaper where the double backward is expensive, see the bundle README).

Steps 2-5 reuse the forward of step 1 (as the official code), so one meta iteration costs one training forward, a
double backward, one meta-batch forward and one ordinary backward. The official code's choices followed here (MSLG
``main.py`` at HEAD 7b6e5f76c2d4aac4eace4210c7a6ac9df8eb8341, ROP ``main.py`` at HEAD
f02f69a64d0d2cf83bbcc1aa354ede175ad61313): KL direction ``KL(f || y)``, both terms averaged over ``B x C``,
``K = 10``, ``alpha = 0.5``, ``beta = 4000`` (Sec. IV-C), the meta loader cycled independently of the training loader.
One departure: every epoch starts a fresh (reshuffled) pass over the meta loader, discarding the rest of an unfinished
pass, so that a run resumed from an epoch checkpoint draws exactly the meta batches of the uninterrupted run (an
iterator in the middle of a pass, with the permutation it drew from the global random state, is not part of any
checkpoint); with a shuffled meta loader this changes which meta batches an epoch sees, not their distribution.

The label gradient has a closed form that the tests check: with the ``B x C`` mean KL,
``d L_meta / d y_hat_ik = alpha / (B C) * < grad_theta f_k(x_i; theta), grad_theta L_meta(theta_hat) >``
(``f_k`` the softmax probability), because ``sum_k f_k = 1`` removes the softmax Jacobian of the label.

Baselines of the same trainer (``method``): ``"cross_entropy"`` (every epoch is warm-up: CE on the noisy labels) and
``"annotator_average"`` (cross-entropy to the average of the annotators' one-hot readings, the official ROP code's
``"soft"`` labeller).

Distributed training: every rank runs the meta step on its own training and meta batches (give the meta loader a
``DistributedSampler``: ranks then draw disjoint meta batches); :meth:`SoftLabelStore.write` gathers the new rows so
every rank holds the same ``y_hat``, the label network's gradients are averaged over ranks, and the real step's
gradients are averaged by ``DistributedDataParallel`` as usual. The meta stage runs in float32 even with ``amp=True``
(second-order gradients through autocast are not stable); warm-up and the baselines use AMP when asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from ignite.engine import Events
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils import look_up_option
from monai.utils.enums import CommonKeys as Keys
from monai.utils.enums import StrEnum
from torch import nn

from monai_ext.engines.per_sample import (
    PerSampleKeys,
    _backward_and_step,
    _non_finite_message,
    _unpack_batch,
    batch_filenames,
    batch_index,
    per_sample_loss,
)
from monai_ext.engines.soft_labels import SoftLabelStore
from monai_ext.engines.virtual_step import functional_forward, functional_jvp, virtual_sgd_parameters
from monai_ext.losses.soft_label import (
    LOG_EPS,
    SoftLabelReduction,
    prediction_entropy,
    soft_label_kl,
    soft_target_cross_entropy,
)
from monai_ext.networks.label_network import LabelNetwork
from monai_ext.networks.unwrap import unwrap_network

__all__ = ["SoftLabelMethod", "LabelSource", "LabelGradient", "MetaKeys", "MetaSoftLabelTrainer", "class_targets"]

logger = logging.getLogger(__name__)


class SoftLabelMethod(StrEnum):
    """What the trainer trains on after warm-up.

    - ``"meta"``: meta soft labels (Eq. 1-4), the method.
    - ``"cross_entropy"``: cross-entropy on the noisy labels in every epoch (the paper's baseline, Table I).
    - ``"annotator_average"``: cross-entropy to the average of the annotators' readings in every epoch.
    """

    META = "meta"
    CROSS_ENTROPY = "cross_entropy"
    ANNOTATOR_AVERAGE = "annotator_average"


class LabelSource(StrEnum):
    """Where the meta stage's soft labels come from.

    - ``"per_sample"``: per-sample label logits ``y_hat`` updated by Eq. 2 (default).
    - ``"network"``: a label network over frozen warm-up features (:class:`~monai_ext.networks.LabelNetwork`), the
      official ROP code's ``meta_train``.
    """

    PER_SAMPLE = "per_sample"
    NETWORK = "network"


class LabelGradient(StrEnum):
    """How the meta step computes ``d L_meta / d y_hat`` (the same value up to rounding, tested).

    - ``"double_backward"``: autograd through the differentiable virtual step (``create_graph=True``), as the
      official code (default).
    - ``"jvp"``: the closed form ``alpha / (B C) * <grad_theta f_k(x_i), grad_theta L_meta(theta_hat)>`` (exact for
      the official reductions, with the KL's ``1e-10`` guard included) from one forward-mode Jacobian-vector product,
      after a first-order virtual step: no second-order graph.
    """

    DOUBLE_BACKWARD = "double_backward"
    JVP = "jvp"


class MetaKeys(StrEnum):
    """Entries the meta stage adds to ``engine.state.output``: ``soft_label`` (``B C`` soft labels the real step
    trained on), ``meta_loss`` (scalar ``L_cce`` of the virtual network on the meta batch)."""

    SOFT_LABEL = "soft_label"
    META_LOSS = "meta_loss"


def class_targets(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Integer class labels ``B`` (int64) from a ``B`` or ``B 1`` label tensor.

    Raises:
        ValueError: another shape, non-integer values, or a class outside ``[0, num_classes)``.
    """
    t = torch.as_tensor(targets)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1:
        raise ValueError(f"labels must be class indices of shape (B,) or (B, 1), got {tuple(t.shape)}.")
    if t.is_floating_point() and not bool((t == t.round()).all()):
        raise ValueError(f"labels must be integer class indices, got {t.tolist()[:10]}.")
    t = t.long()
    if bool(((t < 0) | (t >= num_classes)).any()):
        raise ValueError(f"labels {t.tolist()[:10]} must lie in [0, {num_classes}).")
    return t


def _listed_paths(batchdata: Any, key: str) -> list[str] | None:
    """The batch's file names from a plain ``key`` entry (a list of strings after collation), if any."""
    paths = batchdata.get(key) if isinstance(batchdata, dict) else None
    return [str(p) for p in paths] if isinstance(paths, (list, tuple)) else None


def _average_gradients(params: Sequence[nn.Parameter]) -> None:
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    world = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world)


class MetaSoftLabelTrainer(SupervisedTrainer):
    """``monai.engines.SupervisedTrainer`` that trains with meta soft labels after a cross-entropy warm-up.

    Arguments of ``SupervisedTrainer`` (``device``, ``max_epochs``, ``train_data_loader``, ``network``, ``optimizer``,
    ``loss_function``, ``prepare_batch``, ``inferer``, ``amp``, ``train_handlers``, ...) plus:

    Args:
        loss_function: the warm-up loss, per sample: ``torch.nn.CrossEntropyLoss(reduction="none")``.
        soft_labels: the :class:`SoftLabelStore` built from the training datalist (all methods keep one, so the
            checkpoint layout does not depend on the method).
        meta_data_loader: loader of the clean meta set (``image``, ``label``; required for ``method="meta"``).
        method: see :class:`SoftLabelMethod`. Default ``"meta"``.
        label_source: see :class:`LabelSource`. Default ``"per_sample"``.
        warmup_epochs: epochs ``1..warmup_epochs`` train with cross-entropy (Sec. III-C; 10 of 30 in Sec. IV-C).
        alpha: virtual step size of Eq. 1. Default 0.5.
        beta: label learning rate of Eq. 2. Default 4000.
        entropy_weight: weight of ``L_e`` in Eq. 4. Default 1.
        reduction: class reduction of ``L_KL`` and ``L_e`` (:class:`~monai_ext.losses.soft_label.SoftLabelReduction`);
            ``alpha`` and ``beta`` belong to the default ``"elements"``.
        label_network: the :class:`~monai_ext.networks.LabelNetwork` (required for ``label_source="network"``).
        label_optimizer: optimiser of ``label_network.linear`` (official: Adam, lr 1e-3, weight decay 1e-4).
        compatibility_weight: weight of ``CE(label logits, noisy label)`` in the label network's meta loss
            (official ``gamma`` = 0.1).
        label_gradient: how ``d L_meta / d y_hat`` is computed, see :class:`LabelGradient`. Default
            ``"double_backward"``.
        num_classes: ``C``; default the store's.

    ``engine.state.output`` holds ``image``, ``label``, ``pred``, ``loss``, ``index``, ``loss_per_sample`` (as
    :class:`~monai_ext.engines.PerSampleTrainer`) and, in the meta stage, :class:`MetaKeys` entries.

    Raises:
        ValueError: an unknown method or label source, a meta method without a meta loader, a network label source
            without label network/optimiser, gradient accumulation or ``compile`` with the meta method,
            ``warmup_epochs`` outside ``[0, max_epochs]``, or a store whose classes differ from ``num_classes``.
        FloatingPointError: during training, a non-finite loss, meta loss or label gradient (names the samples).
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable | torch.utils.data.DataLoader,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_function: Callable,
        soft_labels: SoftLabelStore,
        meta_data_loader: Iterable | None = None,
        method: SoftLabelMethod | str = SoftLabelMethod.META,
        label_source: LabelSource | str = LabelSource.PER_SAMPLE,
        warmup_epochs: int = 10,
        alpha: float = 0.5,
        beta: float = 4000.0,
        entropy_weight: float = 1.0,
        reduction: SoftLabelReduction | str = SoftLabelReduction.ELEMENTS,
        label_network: LabelNetwork | None = None,
        label_optimizer: torch.optim.Optimizer | None = None,
        compatibility_weight: float = 0.1,
        label_gradient: LabelGradient | str = LabelGradient.DOUBLE_BACKWARD,
        num_classes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=loss_function,
            **kwargs,
        )
        self.method = look_up_option(method, SoftLabelMethod)
        self.label_source = look_up_option(label_source, LabelSource)
        self.reduction = look_up_option(reduction, SoftLabelReduction)
        self.label_gradient = look_up_option(label_gradient, LabelGradient)
        self.soft_labels = soft_labels
        self.num_classes = int(num_classes or soft_labels.num_classes)
        if soft_labels.num_classes != self.num_classes:
            raise ValueError(f"soft_labels has {soft_labels.num_classes} classes, num_classes is {self.num_classes}.")
        if not 0 <= warmup_epochs <= max_epochs:
            raise ValueError(f"warmup_epochs must lie in [0, max_epochs={max_epochs}], got {warmup_epochs}.")
        if entropy_weight < 0 or compatibility_weight < 0 or not beta > 0:
            raise ValueError(
                f"entropy_weight ({entropy_weight}) and compatibility_weight ({compatibility_weight}) must be >= 0 "
                f"and beta ({beta}) > 0."
            )
        self.warmup_epochs = int(warmup_epochs)
        self.alpha, self.beta = float(alpha), float(beta)
        self.entropy_weight, self.compatibility_weight = float(entropy_weight), float(compatibility_weight)
        self.meta_data_loader = meta_data_loader
        self.label_network, self.label_optimizer = label_network, label_optimizer
        if self.method == SoftLabelMethod.META:
            self._check_meta_setup()
        if self.method == SoftLabelMethod.ANNOTATOR_AVERAGE and not soft_labels.has_annotator_average:
            raise ValueError(
                "method='annotator_average' needs at least one annotator reading ('annotator_labels') for every "
                "training image; the training datalist has images without readings."
            )
        self._meta_iterator: Any = None
        self._meta_passes = 0
        self.add_event_handler(Events.EPOCH_STARTED, self._log_stage)
        self.add_event_handler(Events.EPOCH_STARTED, self._restart_meta_passes)

    def _check_meta_setup(self) -> None:
        if self.meta_data_loader is None:
            raise ValueError("method='meta' needs meta_data_loader, the loader of the clean meta set.")
        if hasattr(self.meta_data_loader, "__len__") and len(self.meta_data_loader) == 0:
            raise ValueError(
                "the meta data loader is empty: the meta set holds no image, or fewer images than its batch size with "
                "drop_last=True; add clean images to the meta set or lower meta_batch_size."
            )
        if self.accumulation_steps != 1 or self.compile:
            raise ValueError("method='meta' supports neither accumulation_steps > 1 nor compile=True.")
        if self.label_source == LabelSource.NETWORK and (self.label_network is None or self.label_optimizer is None):
            raise ValueError("label_source='network' needs label_network and label_optimizer.")

    # ---- stages ------------------------------------------------------------------------------------------------

    def in_meta_stage(self, epoch: int) -> bool:
        """Whether 1-based ``epoch`` runs the meta step (``method="meta"`` and past warm-up)."""
        return self.method == SoftLabelMethod.META and epoch > self.warmup_epochs

    def _log_stage(self, engine: MetaSoftLabelTrainer) -> None:
        epoch = engine.state.epoch
        if self.method != SoftLabelMethod.META:
            what = f"{self.method.value} (baseline)"
        elif self.in_meta_stage(epoch):
            what = f"meta stage (label source {self.label_source.value})"
        else:
            what = f"warm-up {epoch}/{self.warmup_epochs} (cross-entropy on the noisy labels)"
        logger.info("epoch %d: %s", epoch, what)

    def _restart_meta_passes(self, engine: MetaSoftLabelTrainer) -> None:
        """Start every epoch with a fresh pass over the meta loader (see the module docstring: exact resume)."""
        self._meta_iterator, self._meta_passes = None, 0

    def _new_meta_pass(self, engine: MetaSoftLabelTrainer) -> Any:
        """An iterator over the meta loader; a ``DistributedSampler`` is first told the pass's number, unique per
        (epoch, pass) because an epoch has at most ``epoch_length`` passes (each gives at least one batch)."""
        sampler = getattr(self.meta_data_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch((engine.state.epoch - 1) * int(engine.state.epoch_length or 1) + self._meta_passes)
        return iter(self.meta_data_loader)

    def _next_meta_batch(self, engine: MetaSoftLabelTrainer) -> tuple[torch.Tensor, torch.Tensor]:
        """The next clean meta batch, cycling the meta loader (reshuffled on every pass, a new pass every epoch)."""
        if self._meta_iterator is None:
            self._meta_iterator = self._new_meta_pass(engine)
        try:
            batch = next(self._meta_iterator)
        except StopIteration:
            self._meta_passes += 1
            self._meta_iterator = self._new_meta_pass(engine)
            batch = next(self._meta_iterator)
        inputs, targets, _, _ = _unpack_batch(
            engine.prepare_batch(batch, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        )
        return torch.as_tensor(inputs), class_targets(targets, self.num_classes).to(engine.state.device)

    # ---- iteration ---------------------------------------------------------------------------------------------

    def _iteration(self, engine: MetaSoftLabelTrainer, batchdata: dict[str, torch.Tensor]) -> dict:
        """One training step: cross-entropy (warm-up, baselines) or the meta step (Eq. 1-4).

        Returns:
            ``engine.state.output`` (see the class docstring).
        """
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        index = batch_index(batchdata, engine.state.device, engine.non_blocking)
        filenames = batch_filenames(batchdata) or _listed_paths(batchdata, "image_path")
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        inputs, targets, args, kwargs = _unpack_batch(batch)
        targets = class_targets(targets, self.num_classes).to(engine.state.device)
        engine.state.output = {Keys.IMAGE: inputs, Keys.LABEL: targets, PerSampleKeys.INDEX: index}
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        if self.in_meta_stage(engine.state.epoch):
            self._meta_step(engine, inputs, targets, index, filenames)
        else:
            if self.method == SoftLabelMethod.ANNOTATOR_AVERAGE:
                loss_fn: Callable = soft_target_cross_entropy
                loss_targets = self.soft_labels.annotator_rows(index, engine.state.device)
            else:
                loss_fn, loss_targets = engine.loss_function, targets

            def forward_and_loss() -> None:
                engine.state.output[Keys.PRED] = engine.inferer(inputs, engine.network, *args, **kwargs)
                engine.fire_event(IterationEvents.FORWARD_COMPLETED)
                losses = per_sample_loss(loss_fn, engine.state.output[Keys.PRED], loss_targets, index, filenames)
                engine.state.output[Keys.LOSS] = losses.mean()
                engine.state.output[PerSampleKeys.LOSS_PER_SAMPLE] = losses.detach()
                engine.fire_event(IterationEvents.LOSS_COMPLETED)

            _backward_and_step(engine, forward_and_loss, should_step=True)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output

    def _meta_step(
        self,
        engine: MetaSoftLabelTrainer,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        index: torch.Tensor,
        filenames: Sequence[str] | None,
    ) -> None:
        """Eq. 1-4 on one batch (float32, no autocast)."""
        if self.label_source == LabelSource.NETWORK and not bool(self.label_network.encoder_ready):
            self.label_network.snapshot(engine.network)  # the frozen copy of the warm-up network
            logger.info("meta stage: label network encoder = the network after %d warm-up epochs", self.warmup_epochs)
        meta_inputs, meta_targets = self._next_meta_batch(engine)
        with torch.autocast(device_type=torch.device(engine.state.device).type, enabled=False):
            pred = engine.inferer(inputs, engine.network)
            engine.state.output[Keys.PRED] = pred
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            bad = ~torch.isfinite(pred.detach()).all(dim=1)
            if bool(bad.any()):
                raise FloatingPointError(
                    _non_finite_message(engine.network, pred.detach().sum(dim=1), index, filenames)
                )
            if self.label_source == LabelSource.PER_SAMPLE:
                label_logits = self.soft_labels.rows(index, pred.device).requires_grad_(True)
            else:
                features = self.label_network.features(inputs)
                label_logits = self.label_network(features)
            meta_loss, label_grad = self._label_gradient(engine, pred, label_logits, inputs, meta_inputs, meta_targets)
            bad = ~torch.isfinite(label_grad).all(dim=1)
            if bool(bad.any()):
                names = [filenames[i] for i in bad.nonzero().flatten().tolist()] if filenames else []
                raise FloatingPointError(
                    f"non-finite label gradient (Eq. 2) for training samples {index[bad].tolist()[:10]} {names[:3]}; "
                    "lower alpha or beta, or check these images and the meta images."
                )
            if self.label_source == LabelSource.PER_SAMPLE:
                new_logits = (label_logits - self.beta * label_grad).detach()
            else:
                new_logits = self._update_label_network(features, label_logits, label_grad, targets, filenames)
            self.soft_labels.write(index, new_logits)
            soft = torch.softmax(new_logits, dim=1)
            losses = soft_label_kl(pred, soft, self.reduction)
            if self.entropy_weight:
                losses = losses + self.entropy_weight * prediction_entropy(pred, self.reduction)
            if not bool(torch.isfinite(losses).all()):
                raise FloatingPointError(_non_finite_message(soft_label_kl, losses.detach(), index, filenames))
            loss = losses.mean()
            engine.state.output.update(
                {
                    Keys.LOSS: loss,
                    PerSampleKeys.LOSS_PER_SAMPLE: losses.detach(),
                    MetaKeys.SOFT_LABEL: soft.detach(),
                    MetaKeys.META_LOSS: meta_loss.detach(),
                }
            )
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
            loss.backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            engine.optimizer.step()

    def _label_gradient(
        self,
        engine: MetaSoftLabelTrainer,
        pred: torch.Tensor,
        label_logits: torch.Tensor,
        inputs: torch.Tensor,
        meta_inputs: torch.Tensor,
        meta_targets: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The meta loss of the virtual network (Eq. 1) and its gradient with respect to the label logits (Eq. 2).

        ``"double_backward"``: differentiate through ``theta_hat`` (``create_graph=True``). ``"jvp"``: the same value
        from the closed form ``alpha * c * (t r - s sum_j t_j r_j)`` with ``t = J_theta softmax(f(x)) . grad_theta
        L_meta(theta_hat)`` (one forward-mode pass), ``s`` the soft label, ``r = s / (s + 1e-10)`` (the KL's log
        guard) and ``c = 1 / (B C)`` (``"elements"``) or ``1 / B`` (``"samples"``); no double backward.

        Returns:
            ``(meta_loss, d meta_loss / d label_logits)``, the second ``B C`` and detached.

        Raises:
            FloatingPointError: the meta loss is not finite.
        """
        soft = torch.softmax(label_logits, dim=1)
        virtual_loss = soft_label_kl(pred, soft, self.reduction).mean()
        jvp = self.label_gradient == LabelGradient.JVP
        fast = virtual_sgd_parameters(engine.network, virtual_loss, self.alpha, create_graph=not jvp)
        meta_loss = F.cross_entropy(functional_forward(engine.network, fast, meta_inputs), meta_targets)
        if not bool(torch.isfinite(meta_loss)):
            raise FloatingPointError(
                f"non-finite meta loss {float(meta_loss.detach())} of the virtual network on the meta batch; lower "
                "alpha (the virtual step) or check the meta images."
            )
        if not jvp:
            (grad,) = torch.autograd.grad(meta_loss, label_logits, retain_graph=True)
            return meta_loss.detach(), grad.detach()
        meta_grads = torch.autograd.grad(meta_loss, list(fast.values()))
        params = {n: p.detach() for n, p in unwrap_network(engine.network).named_parameters() if n in fast}
        tangents = dict(zip(fast, meta_grads))
        _, t = functional_jvp(engine.network, params, tangents, inputs, activation=lambda z: torch.softmax(z, dim=1))
        s = soft.detach()
        r = s / (s + LOG_EPS)
        scale = self.alpha / (s.numel() if self.reduction == SoftLabelReduction.ELEMENTS else s.shape[0])
        tr = t * r
        return meta_loss.detach(), (scale * (tr - s * tr.sum(dim=1, keepdim=True))).to(label_logits.dtype)

    def _update_label_network(
        self,
        features: torch.Tensor,
        label_logits: torch.Tensor,
        label_grad: torch.Tensor,
        targets: torch.Tensor,
        filenames: Sequence[str] | None,
    ) -> torch.Tensor:
        """One optimiser step of the label network on ``L_meta + compatibility_weight * CE(label logits, noisy)``
        (``L_meta``'s part through ``label_grad``, its gradient with respect to the label logits); returns the updated
        network's label logits as log-probabilities (so ``softmax`` gives its soft labels)."""
        surrogate = (label_logits * label_grad).sum()
        surrogate = surrogate + self.compatibility_weight * F.cross_entropy(label_logits, targets)
        params = [p for p in self.label_network.linear.parameters() if p.requires_grad]
        grads = torch.autograd.grad(surrogate, params)
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            raise FloatingPointError(
                f"non-finite label-network gradient in the meta step (batch {list(filenames or [])[:3]}); lower the "
                "label network's learning rate or alpha."
            )
        self.label_optimizer.zero_grad(set_to_none=True)
        for p, g in zip(params, grads):
            p.grad = g.detach()
        _average_gradients(params)
        self.label_optimizer.step()
        with torch.no_grad():
            return torch.log_softmax(self.label_network(features), dim=1)
