# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Combine the stage heads of a Feature Pyramid Sum Model into one probability per class.

The FPSM paper (Kim et al., ICCV 2023 workshops) trains one head per pyramid stage with the sum of their losses but
does not say how the heads are combined at inference. Three readings are offered and measured by the bundle's study:
the mean of the stage probabilities (default), the sigmoid of the summed logits (the logit of the "sum model"), and
the deepest stage alone (the single-stage baseline's head).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

__all__ = ["StageCombination", "combine_stage_logits", "CombineStageLogitsd"]


class StageCombination(StrEnum):
    """How stage logits ``z_s`` (deepest first) become class probabilities.

    - ``"mean_prob"``: ``1/S sum_s sigmoid(z_s)``;
    - ``"sum_logits"``: ``sigmoid(sum_s z_s)``;
    - ``"deepest"``: ``sigmoid(z_0)``, the deepest stage's head only.
    """

    MEAN_PROB = "mean_prob"
    SUM_LOGITS = "sum_logits"
    DEEPEST = "deepest"


def combine_stage_logits(
    logits: torch.Tensor, mode: StageCombination | str = StageCombination.MEAN_PROB
) -> torch.Tensor:
    """Probabilities from stage logits.

    Args:
        logits: ``[B x] C x S`` stage logits, one column per stage, deepest stage first (the output of
            :class:`monai_ext.networks.FeaturePyramidSumNet`); a plain ``C`` vector is one stage.
        mode: see :class:`StageCombination`. Defaults to ``"mean_prob"``.

    Returns:
        ``[B x] C`` probabilities in [0, 1].

    Raises:
        ValueError: ``mode`` is unknown (the message lists the choices).
    """
    mode = look_up_option(mode, StageCombination)
    z = torch.as_tensor(logits)
    if z.ndim == 1:
        return torch.sigmoid(z)
    if mode == StageCombination.MEAN_PROB:
        return torch.sigmoid(z).mean(dim=-1)
    if mode == StageCombination.SUM_LOGITS:
        return torch.sigmoid(z.sum(dim=-1))
    return torch.sigmoid(z.select(-1, 0))


class CombineStageLogitsd(MapTransform):
    """Dictionary transform of :func:`combine_stage_logits`: replaces each key's ``C x S`` (or ``B x C x S``) stage
    logits by ``C`` (``B x C``) probabilities. Use it in a bundle's post-processing after decollation, where MONAI's
    ``Activationsd(sigmoid=True)`` would be used for a one-head classifier.

    Args:
        keys: keys of the stage logits. Defaults to ``"pred"``.
        mode: see :class:`StageCombination`. Defaults to ``"mean_prob"``.
        allow_missing_keys: don't raise for a missing key.
    """

    def __init__(
        self,
        keys: KeysCollection = "pred",
        mode: StageCombination | str = StageCombination.MEAN_PROB,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mode = look_up_option(mode, StageCombination)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = combine_stage_logits(d[key], self.mode)
        return d
