# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The one shared per-sample training path: which samples are in a batch, and what each of them cost.

Every training datalist item carries an integer ``"index"`` (its position in the training list, set once by
:func:`monai_ext.data.datalist.assign_indices`). :class:`PerSampleTrainer` hands ``batch["index"]`` to a loss that
asks for it (NVUM's per-sample memory, meta soft labels) and puts the per-sample losses and indices into
``engine.state.output`` so that handlers (:class:`monai_ext.handlers.per_sample.PerSampleRecorder`, MoMBS) can
record them. Besides ``index``, a loss receives every entry that a handler put into ``engine.state.output`` during
``FORWARD_COMPLETED`` under the name of one of its ``forward`` parameters (e.g. ``memory_logits``, the EMA teacher's
logits that :class:`monai_ext.handlers.ema.EMATeacher` supplies to :class:`monai_ext.losses.NVUMLoss`), so that extra
per-sample inputs reach the loss without a second per-sample path. The pieces are plain functions
(:func:`batch_index`, :func:`batch_filenames`, :func:`per_sample_loss`) so that trainers with a different step (the
meta soft-label virtual SGD step) reuse them.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.data import MetaTensor
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils.enums import CommonKeys as Keys
from monai.utils.enums import StrEnum

__all__ = [
    "PerSampleKeys",
    "loss_keyword_parameters",
    "loss_accepts_index",
    "loss_extra_inputs",
    "batch_index",
    "batch_filenames",
    "per_sample_loss",
    "weighted_mean",
    "weighted_losses",
    "PerSampleTrainer",
]

_MAX_NAMED = 10  # how many offending samples an error message lists


class PerSampleKeys(StrEnum):
    """Keys of the per-sample entries in a batch and in ``engine.state.output``.

    - ``INDEX``: ``"index"``, dataset index of every sample in the batch, ``B`` int64.
    - ``LOSS_PER_SAMPLE``: ``"loss_per_sample"``, the loss of every sample, ``B`` float, detached.
    - ``MEMORY_LOGITS``: ``"memory_logits"``, logits that feed a per-sample memory instead of the network's own
      (the EMA teacher's, ``B C``, detached), written by :class:`monai_ext.handlers.ema.EMATeacher`.
    - ``UNCERTAINTY``: ``"uncertainty"``, MoMBS's uncertainty of every sample, ``B`` float (nats), detached, written
      by :class:`monai_ext.handlers.mombs_assessor.MoMBSAssessor` after the backward pass.
    - ``LOSS_WEIGHT``: ``"loss_weight"``, a weight of every sample's loss, ``B`` float, written at
      ``FORWARD_COMPLETED`` (self-paced learning: :class:`monai_ext.handlers.self_paced.SelfPacedLossWeights`); the
      trainer then back-propagates ``mean(loss_weight * loss_per_sample)``.
    """

    INDEX = "index"
    LOSS_PER_SAMPLE = "loss_per_sample"
    MEMORY_LOGITS = "memory_logits"
    UNCERTAINTY = "uncertainty"
    LOSS_WEIGHT = "loss_weight"


# output entries the trainer itself fills or passes explicitly; never forwarded as extra loss inputs
_RESERVED_KEYS = frozenset(
    {Keys.IMAGE.value, Keys.LABEL.value, Keys.PRED.value, Keys.LOSS.value} | {"index", "loss_per_sample", "loss_weight"}
)
_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@functools.lru_cache(maxsize=256)
def _keyword_names(fn: Callable) -> frozenset[str]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins and C extensions without a signature
        return frozenset()
    return frozenset(name for name, p in params.items() if p.kind in _KEYWORD_KINDS)


def _signature_target(loss_function: Callable) -> Callable:
    if isinstance(loss_function, torch.nn.Module):
        if "forward" in vars(loss_function):  # forward replaced on the instance
            return loss_function.forward
        return type(loss_function).forward
    if (
        inspect.isfunction(loss_function)
        or inspect.ismethod(loss_function)
        or isinstance(loss_function, functools.partial)
    ):
        return loss_function
    return type(loss_function).__call__


def loss_keyword_parameters(loss_function: Callable) -> frozenset[str]:
    """Names of the parameters that ``loss_function`` takes by keyword.

    Decided by signature inspection of ``forward`` for a ``torch.nn.Module`` (of the class, so every instance of
    one loss class is inspected once) and of the callable itself otherwise; the answer is cached. Only explicit
    parameters count (positional-or-keyword and keyword-only): a ``**kwargs`` catch-all does not.

    Args:
        loss_function: a loss module or function.

    Returns:
        the parameter names (for a module class's ``forward`` this includes ``self``); empty when the callable has
        no inspectable signature.
    """
    return _keyword_names(_signature_target(loss_function))


def loss_accepts_index(loss_function: Callable) -> bool:
    """Whether ``loss_function`` takes the batch's dataset indices as a keyword argument ``index``.

    See :func:`loss_keyword_parameters`: only an explicit parameter named ``index`` counts, not ``**kwargs``.

    Args:
        loss_function: a loss module or function called as ``loss_function(pred, target[, index=index])``.
    """
    return PerSampleKeys.INDEX.value in loss_keyword_parameters(loss_function)


def loss_extra_inputs(loss_function: Callable, output: Any) -> dict[str, Any]:
    """The entries of an engine output that ``loss_function`` asks for by name, besides ``pred``/``target``/``index``.

    An entry is passed when its key is an explicit keyword parameter of the loss (:func:`loss_keyword_parameters`)
    and not one of the keys the trainer fills or uses itself (``image``, ``label``, ``pred``, ``loss``, ``index``,
    ``loss_per_sample``, ``loss_weight``). This is how a handler attached to ``IterationEvents.FORWARD_COMPLETED``
    hands extra per-sample inputs to the loss: e.g. :class:`monai_ext.handlers.ema.EMATeacher` writes
    ``"memory_logits"`` and :class:`monai_ext.losses.NVUMLoss.forward` takes ``memory_logits``.

    Args:
        loss_function: the loss.
        output: ``engine.state.output`` at ``FORWARD_COMPLETED`` (a dictionary; anything else gives no entries).

    Returns:
        ``{key: output[key]}`` for every matching key, in the output's order.
    """
    if not isinstance(output, Mapping):
        return {}
    names = loss_keyword_parameters(loss_function)
    return {str(k): v for k, v in output.items() if str(k) in names and str(k) not in _RESERVED_KEYS}


def batch_index(batchdata: Any, device: str | torch.device | None = None, non_blocking: bool = False) -> torch.Tensor:
    """Dataset indices of a collated batch as a ``B`` int64 tensor on ``device``.

    Args:
        batchdata: a collated dictionary batch holding ``"index"`` (ints collated by the DataLoader).
        device: where to put the indices; ``None`` keeps them where they are.
        non_blocking: forwarded to ``Tensor.to``.

    Raises:
        TypeError: ``batchdata`` is not a dictionary, or the indices are not integers.
        KeyError: ``batchdata`` has no ``"index"``.
        ValueError: the indices are not one per sample (shape ``B``).
    """
    key = PerSampleKeys.INDEX.value
    if not isinstance(batchdata, Mapping):
        raise TypeError(
            f"per-sample training needs dictionary batches holding '{key}', got {type(batchdata).__name__}."
        )
    if key not in batchdata:
        raise KeyError(
            f"the batch has no '{key}' entry (keys: {sorted(map(str, batchdata))}); per-sample training needs the "
            f"dataset index of every item: call monai_ext.data.datalist.assign_indices(datalist) on the final "
            f"training datalist and keep '{key}' through the transforms (do not drop it with SelectItemsd / "
            f"DeleteItemsd)."
        )
    index = batchdata[key]
    index = index.as_tensor() if isinstance(index, MetaTensor) else torch.as_tensor(index)
    if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
        raise TypeError(f"'{key}' must hold integers, got dtype {index.dtype}.")
    if index.ndim != 1:
        index = index.reshape(-1) if index.ndim == 2 and index.shape[1] == 1 else index
    if index.ndim != 1:
        raise ValueError(f"'{key}' must have one entry per sample (shape B), got shape {tuple(index.shape)}.")
    return index.to(device=device, dtype=torch.long, non_blocking=non_blocking)


def batch_filenames(batchdata: Any, key: str = Keys.IMAGE) -> list[str] | None:
    """File names of the samples of a collated batch, from the MetaTensor ``batchdata[key].meta``.

    Args:
        batchdata: a collated dictionary batch.
        key: the entry whose metadata names the file, default ``"image"``.

    Returns:
        one name per sample (``meta["filename_or_obj"]``), or ``None`` when the batch carries no such metadata.
    """
    if not isinstance(batchdata, Mapping):
        return None
    item = batchdata.get(key)
    if not isinstance(item, MetaTensor):
        return None
    names = item.meta.get("filename_or_obj")
    if names is None:
        return None
    if isinstance(names, (str, bytes)):
        return [str(names)]
    return [str(n) for n in names]


def _loss_name(loss_function: Callable) -> str:
    if isinstance(loss_function, torch.nn.Module):
        return type(loss_function).__name__
    return getattr(loss_function, "__name__", type(loss_function).__name__)


def _non_finite_message(
    loss_function: Callable, values: torch.Tensor, index: torch.Tensor | None, filenames: Sequence[str] | None
) -> str:
    bad = torch.nonzero(~torch.isfinite(values)).reshape(-1).tolist()
    lines = []
    for row in bad[:_MAX_NAMED]:
        what = f"batch row {row}"
        if index is not None:
            what += f", dataset index {int(index[row])}"
        if filenames is not None and row < len(filenames):
            what += f", file '{filenames[row]}'"
        lines.append(f"  {what}: loss {float(values[row])}")
    more = f"\n  ... and {len(bad) - _MAX_NAMED} more" if len(bad) > _MAX_NAMED else ""
    return (
        f"{_loss_name(loss_function)} gave a non-finite loss for {len(bad)} of {values.shape[0]} samples:\n"
        + "\n".join(lines)
        + more
        + "\nWhat to do: lower the learning rate (or enable gradient clipping); check those images for corrupt, "
        "constant or extreme intensities and their labels for NaN (unknown labels need a loss that masks them); "
        "with amp, try amp=False; run with torch.autograd.set_detect_anomaly(True) to find the operation that "
        "first produced it."
    )


def per_sample_loss(
    loss_function: Callable,
    pred: Any,
    target: Any,
    index: torch.Tensor | None = None,
    filenames: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """Loss of every sample of a batch, shape ``B``.

    Calls ``loss_function(pred, target, index=index, **extra)``: ``index`` only when the loss takes it (see
    :func:`loss_accepts_index`) and it is given, and each ``extra`` entry only when the loss has an explicit
    parameter of that name (see :func:`loss_extra_inputs`; others are left out silently, as the trainer offers
    every output entry). The loss must keep
    the batch dimension (``reduction="none"``): a ``B`` result is used as is, a ``B ...`` result (e.g. ``B C`` or
    ``B C H W``) is averaged over its non-batch dimensions.

    Args:
        loss_function: loss configured with ``reduction="none"``.
        pred: network output, e.g. ``B C`` logits or ``B C H W`` probabilities, as the loss expects.
        target: labels as the loss expects.
        index: ``B`` int64 dataset indices of the samples (see :func:`batch_index`); used for messages and passed
            to losses that take it.
        filenames: one file name per sample (see :func:`batch_filenames`), only used in error messages.
        extra: further keyword inputs offered to the loss, e.g. ``{"memory_logits": teacher_logits}``; default none.

    Returns:
        ``B`` tensor with the autograd graph kept; its mean is the usual mean-reduced loss.

    Raises:
        ValueError: the loss returned a scalar (it reduces over the batch) or a first dimension other than ``B``.
        FloatingPointError: some per-sample losses are NaN or infinite; the message names their dataset indices
            and file names and what to try.
    """
    kwargs = loss_extra_inputs(loss_function, extra) if extra else {}
    if index is not None and loss_accepts_index(loss_function):
        kwargs[PerSampleKeys.INDEX.value] = index
    loss = loss_function(pred, target, **kwargs)
    name = _loss_name(loss_function)
    if not isinstance(loss, torch.Tensor) or loss.ndim == 0:
        raise ValueError(
            f"{name} returned a single value for the whole batch; per-sample training needs one loss per sample: "
            f'configure the loss with reduction="none" (e.g. {name}(..., reduction="none")).'
        )
    batch_size = index.shape[0] if index is not None else (pred.shape[0] if isinstance(pred, torch.Tensor) else None)
    if batch_size is not None and loss.shape[0] != batch_size:
        raise ValueError(
            f"{name} returned shape {tuple(loss.shape)} but the batch holds {batch_size} samples; with "
            f'reduction="none" the loss must keep the batch dimension first (B or B ...).'
        )
    if loss.ndim > 1:
        loss = loss.reshape(loss.shape[0], -1).mean(dim=1)
    if not bool(torch.isfinite(loss.detach()).all()):
        raise FloatingPointError(_non_finite_message(loss_function, loss.detach(), index, filenames))
    return loss


def _unpack_batch(batch: Sequence) -> tuple[Any, Any, tuple, dict]:
    """``(inputs, targets, args, kwargs)`` of a ``prepare_batch`` result of 2 or 4 entries."""
    if len(batch) == 2:
        inputs, targets = batch
        args: tuple = ()
        kwargs: dict = {}
    else:
        inputs, targets, args, kwargs = batch
    return inputs, targets, args, kwargs


def _strip_meta(inputs: Any, targets: Any) -> tuple[Any, Any, tuple | None, tuple | None]:
    """As MONAI with ``compile``: torch.compile works on plain tensors, so MetaTensors are unwrapped.

    Returns:
        ``(inputs, targets, inputs_meta, targets_meta)``; each ``*_meta`` is ``(meta, applied_operations)`` of a
        MetaTensor, to put back after the step (:func:`_restore_meta`), or ``None``.
    """
    inputs_meta, targets_meta = None, None
    if isinstance(inputs, MetaTensor):
        warnings.warn(
            "Will convert to PyTorch Tensor if using compile, and casting back to MetaTensor after the forward pass."
        )
        inputs, inputs_meta = inputs.as_tensor(), (inputs.meta, inputs.applied_operations)
    if isinstance(targets, MetaTensor):
        targets, targets_meta = targets.as_tensor(), (targets.meta, targets.applied_operations)
    return inputs, targets, inputs_meta, targets_meta


def _restore_meta(
    engine: SupervisedTrainer, inputs: Any, targets: Any, inputs_meta: tuple | None, targets_meta: tuple | None
) -> None:
    """Put the metadata taken by :func:`_strip_meta` back on ``image`` and ``pred`` (the inputs') and ``label``."""
    if inputs_meta is not None:
        meta, ops = inputs_meta
        engine.state.output[Keys.IMAGE] = MetaTensor(inputs, meta=meta, applied_operations=ops)
        engine.state.output[Keys.PRED] = MetaTensor(engine.state.output[Keys.PRED], meta=meta, applied_operations=ops)
    if targets_meta is not None:
        meta, ops = targets_meta
        engine.state.output[Keys.LABEL] = MetaTensor(targets, meta=meta, applied_operations=ops)


def _accumulation_flags(engine: SupervisedTrainer) -> tuple[bool, bool]:
    """``(zero the gradients before this iteration, step the optimizer after it)`` with ``accumulation_steps``."""
    acc = engine.accumulation_steps
    should_zero_grad, should_step = True, True
    if acc > 1:
        epoch_length = engine.state.epoch_length
        if epoch_length is not None:
            local_iter = (engine.state.iteration - 1) % epoch_length
            should_step = (local_iter + 1) % acc == 0 or (local_iter + 1) == epoch_length
        else:
            local_iter = engine.state.iteration - 1
            should_step = (local_iter + 1) % acc == 0
        should_zero_grad = local_iter % acc == 0
    return should_zero_grad, should_step


def weighted_mean(losses: torch.Tensor, weights: Any | None) -> torch.Tensor:
    """``mean(weights * losses)`` over the batch (not renormalised by the weights' sum, as the self-paced objective
    ``sum_i v_i l_i``), or ``mean(losses)`` when ``weights`` is ``None``.

    Args:
        losses: ``B`` per-sample losses.
        weights: ``B`` weights (tensor or sequence), or ``None``.

    Raises:
        ValueError: ``weights`` is not one finite value per sample.
    """
    return weighted_losses(losses, weights).mean()


def weighted_losses(losses: torch.Tensor, weights: Any | None) -> torch.Tensor:
    """``weights * losses`` per sample (``losses`` itself when ``weights`` is ``None``); the check of
    :func:`weighted_mean`, shared by trainers that reduce otherwise (detection sums per-image contributions).

    Raises:
        ValueError: ``weights`` is not one finite value per sample.
    """
    if weights is None:
        return losses
    w = torch.as_tensor(weights).to(device=losses.device, dtype=losses.dtype).reshape(-1)
    if w.numel() != losses.shape[0] or not bool(torch.isfinite(w).all()):
        raise ValueError(
            f"'{PerSampleKeys.LOSS_WEIGHT.value}' in engine.state.output must hold one finite weight per sample "
            f"({losses.shape[0]}), got shape {tuple(torch.as_tensor(weights).shape)}; the FORWARD_COMPLETED handler "
            "that writes it (e.g. SelfPacedLossWeights) must index its weights with the batch's 'index'."
        )
    return w * losses


def _forward_and_loss(
    engine: SupervisedTrainer,
    inputs: Any,
    targets: Any,
    args: tuple,
    kwargs: dict,
    index: torch.Tensor,
    filenames: Sequence[str] | None,
) -> None:
    """Forward pass (``FORWARD_COMPLETED``), then the per-sample losses and their (weighted) mean
    (``LOSS_COMPLETED``): with a ``"loss_weight"`` entry that a ``FORWARD_COMPLETED`` handler put into the output,
    ``loss = mean(loss_weight * loss_per_sample)`` (:func:`weighted_mean`); ``loss_per_sample`` stays unweighted."""
    engine.state.output[Keys.PRED] = engine.inferer(inputs, engine.network, *args, **kwargs)
    engine.fire_event(IterationEvents.FORWARD_COMPLETED)
    losses = per_sample_loss(
        engine.loss_function,
        engine.state.output[Keys.PRED],
        targets,
        index,
        filenames,
        extra=engine.state.output,
    )
    weights = engine.state.output.get(PerSampleKeys.LOSS_WEIGHT.value)
    engine.state.output[Keys.LOSS] = weighted_mean(losses, weights)
    engine.state.output[PerSampleKeys.LOSS_PER_SAMPLE] = losses.detach()
    engine.fire_event(IterationEvents.LOSS_COMPLETED)


def _backward_and_step(engine: SupervisedTrainer, forward_and_loss: Callable[[], None], should_step: bool) -> None:
    """Run ``forward_and_loss`` (under amp autocast with a GradScaler), back-propagate the mean loss (divided by
    ``accumulation_steps``), fire ``BACKWARD_COMPLETED`` and step the optimizer when ``should_step``."""
    acc = engine.accumulation_steps
    if engine.amp and engine.scaler is not None:
        with torch.autocast("cuda", **engine.amp_kwargs):
            forward_and_loss()
        loss = engine.state.output[Keys.LOSS]
        engine.scaler.scale(loss / acc if acc > 1 else loss).backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        if should_step:
            engine.scaler.step(engine.optimizer)
            engine.scaler.update()
    else:
        forward_and_loss()
        loss = engine.state.output[Keys.LOSS]
        (loss / acc if acc > 1 else loss).backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        if should_step:
            engine.optimizer.step()


class PerSampleTrainer(SupervisedTrainer):
    """``monai.engines.SupervisedTrainer`` that knows which samples are in each batch and what each one cost.

    Same arguments as ``SupervisedTrainer`` (a bundle swaps ``"_target_": "SupervisedTrainer"`` for
    ``"_target_": "monai_ext.engines.PerSampleTrainer"`` and changes nothing else), but:

    - every batch must hold ``"index"`` (ints from :func:`monai_ext.data.datalist.assign_indices`);
    - ``loss_function`` must be configured with ``reduction="none"``; it receives ``index=`` (``B`` int64 on the
      engine device) when its ``forward`` takes an ``index`` argument (e.g. NVUM's memory update), and every
      entry that a ``FORWARD_COMPLETED`` handler added to ``engine.state.output`` under the name of one of its
      ``forward`` parameters (see :func:`loss_extra_inputs`; e.g. ``memory_logits`` from
      :class:`monai_ext.handlers.ema.EMATeacher`);
    - ``engine.state.output`` holds, besides ``image``/``label``/``pred``/``loss`` (``loss`` = mean of the
      per-sample losses, the value that is back-propagated; ``mean(loss_weight * loss_per_sample)`` when a
      ``FORWARD_COMPLETED`` handler wrote ``"loss_weight"``, see :func:`weighted_mean`), ``"index"`` (``B`` int64)
      and ``"loss_per_sample"`` (``B``, detached, never weighted) for handlers such as
      :class:`monai_ext.handlers.per_sample.PerSampleRecorder`.
      With ``decollate=True`` (the default) the output is then decollated into one dictionary per sample;
      per-sample handlers read both forms.

    Everything else follows ``SupervisedTrainer._iteration`` of MONAI 1.6.1: ``prepare_batch``, amp autocast with
    ``GradScaler``, ``optim_set_to_none``, gradient accumulation (``accumulation_steps``), ``compile`` and the
    events ``FORWARD_COMPLETED``, ``LOSS_COMPLETED``, ``BACKWARD_COMPLETED``, ``MODEL_COMPLETED``.
    Non-finite per-sample losses stop training with a ``FloatingPointError`` naming the samples (see
    :func:`per_sample_loss`).
    """

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict[str, torch.Tensor]) -> dict:
        """One training step with per-sample losses.

        Args:
            engine: the trainer running this iteration.
            batchdata: collated dictionary batch with ``image``, ``label`` and ``index``.

        Returns:
            ``engine.state.output``: ``image``, ``label``, ``pred``, ``loss`` (scalar), ``index`` (``B`` int64),
            ``loss_per_sample`` (``B``, detached).

        Raises:
            ValueError: ``batchdata`` is None, or the loss is not per-sample (see :func:`per_sample_loss`).
            KeyError: the batch holds no ``"index"``.
            FloatingPointError: non-finite per-sample losses.
        """
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        index = batch_index(batchdata, engine.state.device, engine.non_blocking)
        filenames = batch_filenames(batchdata)
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        inputs, targets, args, kwargs = _unpack_batch(batch)
        inputs_meta, targets_meta = None, None
        if engine.compile:
            inputs, targets, inputs_meta, targets_meta = _strip_meta(inputs, targets)

        engine.state.output = {Keys.IMAGE: inputs, Keys.LABEL: targets, PerSampleKeys.INDEX: index}
        should_zero_grad, should_step = _accumulation_flags(engine)
        engine.network.train()
        if should_zero_grad:
            engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        forward_and_loss = functools.partial(_forward_and_loss, engine, inputs, targets, args, kwargs, index, filenames)
        _backward_and_step(engine, forward_and_loss, should_step)
        if engine.compile:
            _restore_meta(engine, inputs, targets, inputs_meta, targets_meta)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
