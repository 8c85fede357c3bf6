# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Feature Pyramid Sum Model (FPSM): one pooled classifier head per backbone pyramid stage.

Kim C, Kim G, Yang S, Kim H, Lee S, Cho H. "Chest X-Ray Feature Pyramid Sum Model with Diseased Area Data
Augmentation Method", ICCV 2023 workshops (CXR-LT challenge), Sec. 3.1, Fig. 1 and Table 1: a TResNet backbone whose
stages 1-4 (strides 4, 8, 16, 32; widths 76, 152, 1216, 2432 for TResNet-L) each go through global average pooling,
an optional one-hot *dataset embedding* ("use_binary_enc", concatenated to the pooled feature) and a fully connected
layer to the class logits. Every selected stage's logits get their own multi-label soft-margin loss and the losses
are summed (:class:`monai_ext.losses.PyramidSumLoss`). The appendix variant "use_concatenate" concatenates the pooled
features of the selected stages into one head instead.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import timm
import torch
from monai.utils import ensure_tuple
from torch import nn

__all__ = ["FeaturePyramidSumNet", "stage_reduction", "checkpoint_head_options", "fpsm_checkpoint_hint"]


def stage_reduction(stage: int) -> int:
    """Stride of pyramid stage ``stage`` (paper numbering, Table 1): stage 1 -> 4, 2 -> 8, 3 -> 16, 4 -> 32."""
    return 2 ** (int(stage) + 1)


class FeaturePyramidSumNet(nn.Module):
    """FPSM classifier on any timm CNN with ``feature_info`` (paper: TResNet-L).

    ``forward(x, dataset_id=None)`` returns the stage logits ``B x C x S``: class channels first (as MONAI's
    ``verify_net_in_out`` expects), one column per selected stage, **deepest stage first** (``stages=(4, 3, 2)`` ->
    columns for stages 4, 3, 2); with ``concatenate=True`` there is one head and ``S = 1``. Combine the columns into
    probabilities with :func:`monai_ext.transforms.combine_stage_logits`; train with
    :class:`monai_ext.losses.PyramidSumLoss` (the sum of the per-stage losses).

    Stage ``s`` is the backbone level whose stride is ``2 ** (s + 1)`` (:func:`stage_reduction`), the paper's Table 1
    numbering, so ``stages=(4, 3, 2)`` means strides 32, 16 and 8 on TResNet, ResNet or EfficientNet alike. timm's
    TResNet expects inputs in [0, 1] without ImageNet normalisation.

    Args:
        backbone: timm model name, created with ``features_only=True`` (``"tresnet_l"``: widths 76, 152, 1216, 2432).
        num_classes: number of logits per head ``C``. Defaults to 26 (MIMIC-CXR-LT).
        stages: the pyramid stages with a head, e.g. ``(4,)`` (single-stage baseline), ``(4, 3, 2)`` (the paper's best
            mAP), ``(4, 3, 2, 1)`` (best F1). Defaults to ``(4, 3, 2)``.
        num_datasets: length of the one-hot dataset embedding concatenated to each pooled feature; 0 disables it
            (paper: 2, "use_binary_enc"). Defaults to 0.
        concatenate: one head on the concatenated pooled features of all selected stages (paper appendix
            "use_concatenate") instead of one head per stage. Defaults to False.
        in_channels: image channels. Defaults to 3.
        pretrained_backbone: local path of the timm backbone's pretrained weights (the classification model's state
            dict, ``.pth``/``.safetensors``), loaded through timm's ``pretrained_cfg_overlay={"file": ...}``; None
            starts from random weights (nothing is downloaded). Defaults to None.

    Raises:
        ValueError: an unknown backbone, an empty or repeated stage set, a stage the backbone does not have (the
            message lists the stages it has), ``num_classes < 1``, ``num_datasets < 0``, or pretrained weights that do
            not fit the backbone (the message names the file and the expected stage widths).
        FileNotFoundError: ``pretrained_backbone`` does not exist.
    """

    def __init__(
        self,
        backbone: str = "tresnet_l",
        num_classes: int = 26,
        stages: Sequence[int] = (4, 3, 2),
        num_datasets: int = 0,
        concatenate: bool = False,
        in_channels: int = 3,
        pretrained_backbone: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if int(num_datasets) < 0:
            raise ValueError(f"num_datasets must be >= 0 (0 disables the dataset embedding), got {num_datasets}")
        stages = [int(s) for s in ensure_tuple(stages)]
        if not stages or len(set(stages)) != len(stages):
            raise ValueError(f"stages must be a non-empty set of pyramid stages without repeats, got {stages}")
        self.backbone_name = backbone
        self.features = _create_backbone(backbone, in_channels, pretrained_backbone)
        info = self.features.feature_info
        reductions = [int(r) for r in info.reduction()]
        available = {s: reductions.index(stage_reduction(s)) for s in range(1, 7) if stage_reduction(s) in reductions}
        missing = [s for s in stages if s not in available]
        if missing:
            raise ValueError(
                f"stage(s) {missing} not available in backbone '{backbone}': its levels have strides {reductions}, "
                f"i.e. stages {sorted(available)} (stage s has stride 2**(s+1))."
            )
        self.stages = tuple(sorted(stages, reverse=True))
        self.num_classes = int(num_classes)
        self.num_datasets = int(num_datasets)
        self.concatenate = bool(concatenate)
        self._levels = [available[s] for s in self.stages]
        widths = [int(info.channels()[i]) for i in self._levels]
        self.stage_widths = tuple(widths)
        self.pool = nn.AdaptiveAvgPool2d(1)
        extra = self.num_datasets
        if self.concatenate:
            self.heads = nn.ModuleList([nn.Linear(sum(widths) + extra, self.num_classes)])
        else:
            self.heads = nn.ModuleList([nn.Linear(w + extra, self.num_classes) for w in widths])

    @property
    def num_outputs(self) -> int:
        """Columns ``S`` of the output: the number of heads (1 with ``concatenate``)."""
        return len(self.heads)

    def dataset_embedding(self, dataset_id: torch.Tensor | None, batch: int, ref: torch.Tensor) -> torch.Tensor | None:
        """One-hot ``B x num_datasets`` of ``dataset_id`` (``B`` ints; None = all 0), or None without embedding.

        Raises:
            ValueError: an id outside ``[0, num_datasets)`` (the message names the first bad position and value).
        """
        if self.num_datasets == 0:
            return None
        if dataset_id is None:
            ids = torch.zeros(batch, dtype=torch.long, device=ref.device)
        else:
            ids = torch.as_tensor(dataset_id, device=ref.device).reshape(-1).long()
            if ids.numel() != batch:
                raise ValueError(f"dataset_id has {ids.numel()} entries for a batch of {batch} images")
            bad = torch.nonzero((ids < 0) | (ids >= self.num_datasets)).flatten()
            if bad.numel():
                i = int(bad[0])
                raise ValueError(
                    f"dataset_id {int(ids[i])} at batch position {i} is out of range for num_datasets="
                    f"{self.num_datasets} (ids 0..{self.num_datasets - 1}); check the datalist's 'dataset_id' key or "
                    "the network's num_datasets."
                )
        return nn.functional.one_hot(ids, self.num_datasets).to(ref.dtype)

    def pooled_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Pooled features of the selected stages, deepest first: ``[B x width_s]``."""
        levels = self.features(x)
        return [self.pool(levels[i]).flatten(1) for i in self._levels]

    def forward(self, x: torch.Tensor, dataset_id: torch.Tensor | None = None) -> torch.Tensor:
        """Stage logits ``B x C x S`` of images ``x`` (``B x in_channels x H x W``) and optional ``dataset_id``
        (``B`` ints in ``[0, num_datasets)``, default all 0)."""
        pooled = self.pooled_features(x)
        if self.concatenate:
            pooled = [torch.cat(pooled, dim=1)]
        emb = self.dataset_embedding(dataset_id, x.shape[0], pooled[0])
        if emb is not None:
            pooled = [torch.cat([p, emb], dim=1) for p in pooled]
        logits = []
        for i, head in enumerate(self.heads):  # indexable loop: TorchScript cannot zip a ModuleList with a list
            logits.append(head(pooled[i]))
        return torch.stack(logits, dim=2)


def _create_backbone(backbone: str, in_channels: int, pretrained: str | os.PathLike | None) -> nn.Module:
    """timm ``features_only`` model of ``backbone``, from local weights when ``pretrained`` is given."""
    if not timm.is_model(backbone):
        raise ValueError(f"unknown timm backbone '{backbone}'; see timm.list_models(), e.g. 'tresnet_l', 'resnet18'.")
    if pretrained is None:
        return timm.create_model(backbone, pretrained=False, features_only=True, in_chans=in_channels)
    path = Path(pretrained)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained backbone weights not found: '{path}'; give the local file of timm '{backbone}' weights "
            "(nothing is downloaded) or None for random initialisation."
        )
    try:
        return timm.create_model(
            backbone,
            pretrained=True,
            features_only=True,
            in_chans=in_channels,
            pretrained_cfg_overlay={"file": str(path)},
        )
    except (RuntimeError, KeyError) as err:
        widths = timm.create_model(backbone, pretrained=False, features_only=True).feature_info.channels()
        raise ValueError(
            f"pretrained backbone weights '{path}' do not fit timm '{backbone}' (stage widths {widths}): "
            f"{str(err).splitlines()[0]} ... Use the weights of the same timm model name."
        ) from err


def _backbone_stage_widths(features: nn.Module) -> dict[int, int]:
    """``{stage: channels}`` of every pyramid stage a timm ``features_only`` backbone has."""
    info = features.feature_info
    return {
        s: int(c) for r, c in zip(info.reduction(), info.channels()) for s in range(1, 7) if stage_reduction(s) == r
    }


def checkpoint_head_options(
    state_dict: Mapping[str, torch.Tensor], network: FeaturePyramidSumNet
) -> list[dict[str, object]]:
    """The head options of ``network``'s backbone that fit the head weights ``heads.<i>.weight`` of ``state_dict``.

    A head of stage ``s`` takes ``width_s + num_datasets`` features (one head per stage, deepest first), a
    concatenated head ``sum_s width_s + num_datasets``; the dataset embedding is taken to be narrower than every stage
    (the paper's is 2 wide), so a stage set is found unambiguously unless two stages have equal widths.

    Returns:
        ``[{"fpsm_stages": [...], "num_datasets": d, "use_concatenate": bool}, ...]``, smallest ``num_datasets`` first;
        empty when the heads fit no stage set of this backbone (another backbone) or there are no heads.
    """
    heads = []
    while f"heads.{len(heads)}.weight" in state_dict:
        heads.append(int(state_dict[f"heads.{len(heads)}.weight"].shape[-1]))
    widths = _backbone_stage_widths(network.features)
    if not heads or not widths:
        return []
    limit, order = min(widths.values()), sorted(widths, reverse=True)
    found: list[dict[str, object]] = []
    for combo in itertools.combinations(order, len(heads)):  # deepest first, as the heads are
        d = heads[0] - widths[combo[0]]
        if 0 <= d < limit and all(h - widths[s] == d for h, s in zip(heads, combo)):
            found.append({"fpsm_stages": list(combo), "num_datasets": d, "use_concatenate": False})
    if len(heads) == 1:
        for k in range(2, len(order) + 1):
            for combo in itertools.combinations(order, k):
                d = heads[0] - sum(widths[s] for s in combo)
                if 0 <= d < limit:
                    found.append({"fpsm_stages": list(combo), "num_datasets": d, "use_concatenate": True})
    return sorted(found, key=lambda o: o["num_datasets"])


def fpsm_checkpoint_hint(state_dict: Mapping[str, torch.Tensor], network: nn.Module) -> str:
    """What to pass for a checkpoint that does not fit ``network``: the ``fpsm_stages``, ``num_datasets`` and
    ``use_concatenate`` its heads fit (:func:`checkpoint_head_options`), as the ``hint`` of
    :func:`monai_ext.bundle.check_checkpoint_fits`."""
    model = getattr(network, "module", network)
    if not isinstance(model, FeaturePyramidSumNet):
        return "Pass the backbone, fpsm_stages, num_datasets and use_concatenate the checkpoint was trained with."
    options = checkpoint_head_options(state_dict, model)
    if not options:
        widths = _backbone_stage_widths(model.features)
        return (
            f"Its heads fit no stage set of backbone '{model.backbone_name}' (stage widths {widths}): pass the "
            "--backbone it was trained with, and its fpsm_stages, num_datasets and use_concatenate."
        )
    shown = " or ".join(
        f"--fpsm_stages \"{o['fpsm_stages']}\" --num_datasets {o['num_datasets']} "
        f"--use_concatenate {str(o['use_concatenate']).lower()}"
        for o in options[:3]
    )
    return f"Its heads fit backbone '{model.backbone_name}' with {shown}: pass these (as the checkpoint was trained)."
