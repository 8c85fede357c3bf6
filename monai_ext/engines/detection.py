# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Detection engines on MONAI's ``RetinaNetDetector``, with MoMBS's per-image losses on the shared per-sample path.

MONAI's detector takes a list of images and a list of target dicts and returns a dict of losses, not a prediction
for a ``loss_function``, so :class:`monai_ext.engines.PerSampleTrainer`'s step (``loss_function(pred, target)``)
does not fit it. :class:`DetectionTrainer` keeps everything else of that trainer (events, amp, gradient accumulation,
``"loss_weight"`` from a ``FORWARD_COMPLETED`` handler) and fills the same ``engine.state.output`` entries
(``"index"``, ``"loss_per_sample"``), so :class:`monai_ext.handlers.PerSampleRecorder`,
:class:`monai_ext.handlers.MoMBSAssessor`, :class:`monai_ext.handlers.MoMBSHandler` and
:class:`monai_ext.handlers.SelfPacedLossWeights` serve detection unchanged.

The loss that is back-propagated is the detector's own batch loss ``L = L_cls + w_box L_box``, written as the sum of
the per-image contributions of :class:`monai_ext.networks.PerImageRetinaNetDetector` (the same value and
gradients). With self-paced weights ``v_i`` it is ``sum_i v_i (c_i + w_box b_i)``. The per-image value MoMBS ranks
(``"loss_per_sample"``) is the anchor *classification* loss chosen by ``ranking_loss`` (the paper ranks by the RPN's
anchor classification loss, Sec. 4.1-4.2), see :class:`monai_ext.networks.retinanet_detector.RankingLoss`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.data import MetaTensor, decollate_batch
from monai.engines import SupervisedEvaluator
from monai.engines.utils import IterationEvents
from monai.utils import look_up_option
from monai.utils.enums import CommonKeys as Keys

from monai_ext.engines.per_sample import (
    PerSampleKeys,
    PerSampleTrainer,
    _accumulation_flags,
    _backward_and_step,
    _non_finite_message,
    batch_index,
    weighted_losses,
)
from monai_ext.networks.retinanet_detector import PerImageLossKeys, RankingLoss, ranking_key

__all__ = ["DetectionTrainer", "DetectionEvaluator", "detection_inputs", "detection_froc_input"]

_MAX_NAMED = 10


def _items(batchdata: Any) -> list[Mapping]:
    """The batch as a list of item dicts (``no_collation`` lists pass through; collated dicts are decollated)."""
    if batchdata is None:
        raise ValueError("Must provide batch data for current iteration.")
    if isinstance(batchdata, Mapping):
        return list(decollate_batch(batchdata))
    return list(batchdata)


def _plain(x: Any, device: torch.device | str | None, dtype: torch.dtype | None = None) -> torch.Tensor:
    x = x.as_tensor() if isinstance(x, MetaTensor) else torch.as_tensor(x)
    return x.to(device=device, dtype=dtype)


def _name(item: Mapping, image_key: str, position: int) -> str:
    meta = getattr(item.get(image_key), "meta", None) or {}
    name = meta.get("filename_or_obj") or item.get("file_name")
    if isinstance(name, (list, tuple)):
        name = name[len(name) // 2] if name else None
    return str(name) if name else f"batch item {position}"


def detection_inputs(
    batchdata: Any,
    device: torch.device | str | None = None,
    image_key: str = "image",
    box_key: str = "box",
    label_key: str = "label",
    require_targets: bool = True,
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]] | None, list[str]]:
    """``(images, targets, names)`` for ``RetinaNetDetector`` from a batch of item dicts.

    Args:
        batchdata: a list of dicts (a ``DataLoader`` with ``collate_fn=monai.data.utils.no_collation``, as the
            model-zoo detection bundles) or a collated dict.
        device: where the tensors go.
        image_key: each item's image, ``C x H x W``.
        box_key: each item's boxes, ``N x 4`` (the detector's box mode, ``xyxy`` in array axis order).
        label_key: each item's labels, ``N`` class indices from 0.
        require_targets: raise when an item has no boxes/labels entry (training); otherwise ``targets`` is ``None``
            when the first item has none.

    Returns:
        images (plain tensors), targets (``[{box_key: float32 N x 4, label_key: int64 N}]`` or ``None``), names (the
        image file of each item, for messages).

    Raises:
        KeyError: an item misses the image, or (``require_targets``) its boxes or labels; the message names it.
        ValueError: boxes not ``N x 4`` or a label count that differs from the box count, naming the item.
    """
    items = _items(batchdata)
    names = [_name(item, image_key, i) for i, item in enumerate(items)]
    images, targets = [], []
    has_targets = bool(items) and box_key in items[0]
    for item, name in zip(items, names):
        if image_key not in item:
            raise KeyError(f"{name}: no '{image_key}' entry (keys {sorted(map(str, item))}).")
        images.append(_plain(item[image_key], device))
        if not (require_targets or has_targets):
            continue
        missing = [k for k in (box_key, label_key) if k not in item]
        if missing:
            raise KeyError(f"{name}: no {missing} entry; detection training needs boxes and labels per item.")
        boxes = _plain(item[box_key], device, torch.float32)
        if boxes.numel() % 4 or (boxes.ndim != 2 and boxes.numel()):
            raise ValueError(f"{name}: boxes must be N x 4, got shape {tuple(boxes.shape)}.")
        boxes = boxes.reshape(-1, 4)
        labels = _plain(item[label_key], device, torch.long).reshape(-1)
        if labels.numel() != boxes.shape[0]:
            raise ValueError(f"{name}: {boxes.shape[0]} boxes but {labels.numel()} labels.")
        targets.append({box_key: boxes, label_key: labels})
    return images, (targets if (require_targets or has_targets) else None), names


def _check_finite(
    detector: torch.nn.Module, per_image: torch.Tensor, index: torch.Tensor, names: Sequence[str]
) -> None:
    """The shared per-sample non-finite message (:mod:`monai_ext.engines.per_sample`) for the images' losses."""
    if not bool(torch.isfinite(per_image.detach()).all()):
        raise FloatingPointError(_non_finite_message(detector, per_image.detach(), index, names))


def _detection_forward_and_loss(
    engine: DetectionTrainer,
    images: list[torch.Tensor],
    targets: list[dict[str, torch.Tensor]],
    index: torch.Tensor,
    names: Sequence[str],
) -> None:
    losses = engine.network(images, targets)
    engine.state.output[Keys.PRED] = {k: v.detach() for k, v in losses.items()}
    engine.fire_event(IterationEvents.FORWARD_COMPLETED)
    missing = [k.value for k in (PerImageLossKeys.CLS, PerImageLossKeys.BOX) if k.value not in losses]
    if missing:
        raise KeyError(
            f"the detector returned {sorted(losses)} without the per-image losses {missing}; DetectionTrainer needs "
            "monai_ext.networks.PerImageRetinaNetDetector (same arguments as RetinaNetDetector)."
        )
    per_image = losses[PerImageLossKeys.CLS.value] + engine.box_loss_weight * losses[PerImageLossKeys.BOX.value]
    _check_finite(engine.network, per_image, index, names)
    weights = engine.state.output.get(PerSampleKeys.LOSS_WEIGHT.value)
    engine.state.output[Keys.LOSS] = weighted_losses(per_image, weights).sum()
    engine.state.output["cls_loss"] = losses[engine.network.cls_key].detach()
    engine.state.output["box_loss"] = losses[engine.network.box_reg_key].detach()
    engine.state.output[PerSampleKeys.LOSS_PER_SAMPLE.value] = losses[ranking_key(engine.ranking_loss)].detach()
    engine.fire_event(IterationEvents.LOSS_COMPLETED)


class DetectionTrainer(PerSampleTrainer):
    """Trains a :class:`monai_ext.networks.PerImageRetinaNetDetector` and exposes per-image losses (module docstring).

    Bundle wiring (``bundles/deeplesion_mombs_detection/configs/train.json``)::

        "trainer": {"_target_": "monai_ext.engines.DetectionTrainer", "detector": "@detector",
                    "train_data_loader": "@train#dataloader", "optimizer": "@optimizer", "max_epochs": "@epochs",
                    "device": "@device", "ranking_loss": "sampled_mean", "train_handlers": "@train#handlers"}

    with a ``DataLoader`` using ``"collate_fn": "$monai.data.utils.no_collation"`` and items holding ``image``
    (``C x H x W``), ``box`` (``N x 4``), ``label`` (``N``, from 0) and ``index``.

    Args:
        device, max_epochs, train_data_loader, optimizer: as for ``SupervisedTrainer``.
        detector: a ``PerImageRetinaNetDetector`` (the engine's ``network``; checkpoint ``detector.network``).
        box_loss_weight: ``w_box`` of ``L_cls + w_box L_box``, default 1 (as the model-zoo detection bundle).
        ranking_loss: the per-image classification loss written to ``"loss_per_sample"``, see
            :class:`~monai_ext.networks.retinanet_detector.RankingLoss`; default ``"sampled_mean"``.
        image_key, box_key, label_key: item keys, default ``"image"``, ``"box"``, ``"label"``.
        kwargs: further ``SupervisedTrainer`` arguments (``train_handlers``, ``amp``, ``epoch_length`` ...);
            ``decollate`` is always ``False`` (the output holds lists of per-image dicts).

    ``engine.state.output``: ``image`` (list), ``label`` (target dicts), ``pred`` (the detector's detached losses),
    ``loss`` (back-propagated), ``cls_loss``, ``box_loss``, ``index`` (``B``), ``loss_per_sample`` (``B``,
    detached, unweighted).

    Raises:
        ValueError: unknown ``ranking_loss`` or a negative ``box_loss_weight``.
    """

    def __init__(
        self,
        device: torch.device | str,
        max_epochs: int,
        train_data_loader: Any,
        detector: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        box_loss_weight: float = 1.0,
        ranking_loss: RankingLoss | str = RankingLoss.SAMPLED_MEAN,
        image_key: str = "image",
        box_key: str = "box",
        label_key: str = "label",
        **kwargs: Any,
    ) -> None:
        kwargs["decollate"] = False
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=detector,
            optimizer=optimizer,
            loss_function=None,
            **kwargs,
        )
        if not float(box_loss_weight) >= 0:
            raise ValueError(f"box_loss_weight must be >= 0, got {box_loss_weight!r}.")
        self.box_loss_weight = float(box_loss_weight)
        self.ranking_loss = look_up_option(ranking_loss, RankingLoss)
        self.image_key, self.box_key, self.label_key = image_key, box_key, label_key

    def _iteration(self, engine: DetectionTrainer, batchdata: Any) -> dict:
        """One training step: the detector's batch loss back-propagated, per-image losses in the output.

        Raises:
            KeyError: an item misses ``index``, its image, boxes or labels.
            FloatingPointError: a non-finite per-image loss (the message names the images).
        """
        items = _items(batchdata)
        missing = [i for i, item in enumerate(items) if PerSampleKeys.INDEX.value not in item]
        if missing:
            raise KeyError(
                f"batch items {missing[:_MAX_NAMED]} have no 'index'; per-image training needs the dataset index "
                "of every item (monai_ext.data.datalist.assign_indices, kept through the transforms)."
            )
        index = batch_index({"index": [int(_plain(item["index"], None)) for item in items]}, engine.state.device)
        images, targets, names = detection_inputs(
            items, engine.state.device, engine.image_key, engine.box_key, engine.label_key, require_targets=True
        )
        engine.state.output = {Keys.IMAGE: images, Keys.LABEL: targets, PerSampleKeys.INDEX.value: index}
        should_zero_grad, should_step = _accumulation_flags(engine)
        engine.network.train()
        if should_zero_grad:
            engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        step = functools.partial(_detection_forward_and_loss, engine, images, targets, index, names)
        _backward_and_step(engine, step, should_step)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


class DetectionEvaluator(SupervisedEvaluator):
    """Runs a ``RetinaNetDetector`` in eval mode on batches of item dicts; output for FROC metrics and writers.

    ``engine.state.output``: ``image`` (list), ``pred`` (the detector's list of per-image dicts: boxes,
    labels, ``label_scores``), ``label`` (target dicts, or ``None`` without boxes in the items), ``names`` and, when
    the items hold it, ``index``.

    Args:
        device, val_data_loader: as for ``SupervisedEvaluator``.
        detector: the detector (its ``network`` is what checkpoints hold).
        use_inferer: call the detector with its sliding-window inferer (``set_sliding_window_inferer``), default
            ``False`` (whole images).
        image_key, box_key, label_key: item keys.
        kwargs: further ``SupervisedEvaluator`` arguments (``key_val_metric``, ``val_handlers``, ``amp`` ...);
            ``decollate`` is always ``False``.
    """

    def __init__(
        self,
        device: torch.device | str,
        val_data_loader: Any,
        detector: torch.nn.Module,
        use_inferer: bool = False,
        image_key: str = "image",
        box_key: str = "box",
        label_key: str = "label",
        **kwargs: Any,
    ) -> None:
        kwargs["decollate"] = False
        super().__init__(device=device, val_data_loader=val_data_loader, network=detector, **kwargs)
        self.use_inferer = bool(use_inferer)
        self.image_key, self.box_key, self.label_key = image_key, box_key, label_key

    def _iteration(self, engine: DetectionEvaluator, batchdata: Any) -> dict:
        items = _items(batchdata)
        images, targets, names = detection_inputs(
            items, engine.state.device, engine.image_key, engine.box_key, engine.label_key, require_targets=False
        )
        engine.state.output = {Keys.IMAGE: images, Keys.LABEL: targets, "names": names, "items": items}
        if items and all(PerSampleKeys.INDEX.value in item for item in items):
            engine.state.output[PerSampleKeys.INDEX.value] = torch.as_tensor([int(item["index"]) for item in items])
        with engine.mode(engine.network):
            if engine.amp:
                with torch.autocast("cuda", **engine.amp_kwargs):
                    preds = engine.network(images, use_inferer=engine.use_inferer)
            else:
                preds = engine.network(images, use_inferer=engine.use_inferer)
        engine.state.output[Keys.PRED] = preds
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


def detection_froc_input(
    output: Mapping, box_key: str = "box", score_key: str = "label_scores"
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """``(pred_boxes, pred_scores, gt_boxes)`` of a :class:`DetectionEvaluator` output, the input of
    :class:`monai_ext.metrics.FROCSensitivity` (``"output_transform": "$monai_ext.engines.detection_froc_input"``).

    Raises:
        KeyError: the output holds no targets (items without boxes).
    """
    if output.get(Keys.LABEL) is None:
        raise KeyError("FROC needs ground-truth boxes: the evaluated items hold no boxes.")
    preds = output[Keys.PRED]
    return (
        [p[box_key].detach().cpu() for p in preds],
        [p[score_key].detach().cpu() for p in preds],
        [t[box_key].detach().cpu() for t in output[Keys.LABEL]],
    )


def froc_input_for(box_key: str = "box", score_key: str = "label_scores") -> Callable[[Mapping], tuple]:
    """:func:`detection_froc_input` with other keys."""
    return functools.partial(detection_froc_input, box_key=box_key, score_key=score_key)
