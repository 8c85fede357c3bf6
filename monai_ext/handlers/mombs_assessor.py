# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""MoMBS's assessor: the uncertainty of every training sample, from disturbed key features, inside the training step.

Li, Han, Zhou, "MoMBS: Mixed-order minibatch sampling enhances model training from diverse-quality images",
arXiv:2505.18741, 2025. MoMBS judges every training image by its task loss *and* its uncertainty (Sec. 1 and
Sec. 3.2(ii)): high loss + low uncertainty = poorly labelled, high loss + high uncertainty = under represented,
low loss + low uncertainty = well represented, low loss + high uncertainty = overfitted; it plans mixed-order
minibatches from both ranks. The loss per image is :class:`monai_ext.engines.PerSampleTrainer`'s
``loss_per_sample``; this module adds the uncertainty of Sec. 3.2(i): Eq. 1, the information entropy of the model's
average prediction under ``K`` disturbances, with Eq. 2's disturbance, the key feature map multiplied element-wise
by a map of i.i.d. uniform multipliers:

    ``U(x) = mean_v H( (1/K) sum_k P(decode(f(x) * n_k))_v )``,  ``n_k ~ U(1 - r, 1 + r)`` i.i.d. per element,

where ``f(x)`` is the key feature map of the training forward (for segmentation the bottleneck, Sec. 4.2 "introduce
disturbances into the feature map of the bottleneck"; for a classifier the backbone features before the head; see
:mod:`monai_ext.networks.split`), ``K`` the number of disturbances (default 8, the paper's "8 disturbances" of
Sec. 4.7), ``r`` the disturbance ratio (default 0.3, this project's choice), ``P`` the activation
(:class:`EntropyActivation`), ``H`` the entropy in nats (natural logarithm) and ``mean_v`` the mean over the output's
elements (voxels of a dense output, the per-voxel entropy of a segmentation reduced to one score per image; classes
too for sigmoid outputs), so the values of a ``C``-class softmax output lie in ``[0, ln C]`` and those of a sigmoid
output in ``[0, ln 2]``.

The ``K`` disturbed predictions re-run only ``decode`` on the cached key features of the step's own forward (no
extra pass over the data or the encoder) under ``torch.inference_mode()``, with noise from the handler's own
``torch.Generator``. The skip-connection part of a U-Net's up path is computed once for the ``K`` passes
(:func:`monai_ext.networks.split.bound_decoder`), and the decoder reads plain (not ``MetaTensor``), channels-last
tensors (:func:`decoder_inputs`): a layout, not a value, changes.

BatchNorm and the time of assessment, a choice. Our re-runs are in eval mode (dropout off, BatchNorm normalising
with its running statistics, which stay untouched; train/eval flags restored) on the *train-mode* encoder features of
the step's own forward, after the backward pass and before the optimizer step, so with the very weights that gave the
step's loss (gradients untouched). The official code (lhlm1994/MoMBS at 9357872, ``main.py``
``compute_uncertainty``) instead runs the whole network again in eval mode on the batch after
``optimizer.step()``. Ours costs no second encoder pass and scores every sample with the same weights as its loss
(the two ranks of Eq. 3 then describe one model); the difference is that the encoder part of our features was
normalised with the batch's own statistics (train mode) while the decoder uses running statistics, and that the
official scores see the weights one optimizer step later. ``norm_statistics="batch"`` (:class:`NormStatistics`)
normalises the decoder with the statistics of the disturbed batch instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from monai.data import MetaTensor
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys, IgniteInfo, look_up_option, min_version, optional_import
from monai.utils.enums import StrEnum

from monai_ext.engines.per_sample import PerSampleKeys
from monai_ext.networks.split import SplitFeatures, bound_decoder, is_split_network
from monai_ext.samplers.mombs import MoMBSSampler

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = [
    "EntropyActivation",
    "UncertaintyMeasure",
    "NormStatistics",
    "uniform_multipliers",
    "disturb_features",
    "decoder_inputs",
    "activate",
    "predictive_entropy",
    "frozen_statistics",
    "disturbed_uncertainty",
    "MoMBSAssessor",
]


class EntropyActivation(StrEnum):
    """How the network output (logits) becomes probabilities, and so which entropy is taken.

    - ``softmax``: softmax over the class dimension 1 of ``B C ...``; categorical entropy ``-sum_c p_c ln p_c``
      per element, averaged over the spatial elements (default; multi-class segmentation, single-label
      classification).
    - ``sigmoid``: sigmoid per element; binary entropy ``-p ln p - (1 - p) ln(1 - p)``, averaged over classes and
      spatial elements (binary segmentation with one output channel, multi-label classification).
    """

    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"


class UncertaintyMeasure(StrEnum):
    """What is computed from the ``K`` disturbed predictions ``p_k``.

    - ``entropy``: entropy of the mean prediction, ``H(mean_k p_k)`` (default; the paper's Eq. 1). With
      ``r = 0`` it is the undisturbed prediction's entropy (near 0 only for a confident prediction).
    - ``mutual_information``: ``H(mean_k p_k) - mean_k H(p_k)`` (the part of the entropy that the disturbances
      cause; 0 when ``r = 0``, never negative).
    """

    ENTROPY = "entropy"
    MUTUAL_INFORMATION = "mutual_information"


class NormStatistics(StrEnum):
    """Which statistics the normalisation layers use during the disturbed re-runs; running statistics never change.

    - ``running``: the whole network in eval mode, BatchNorm normalising with its running statistics (default).
    - ``batch``: dropout still off, but normalisation layers that track running statistics normalise with the
      statistics of the disturbed batch (their tracking is switched off for the re-runs, so neither the running
      statistics nor ``num_batches_tracked`` change). Each sample's uncertainty then depends on its batch.
    """

    RUNNING = "running"
    BATCH = "batch"


def _check_options(num_disturbances: Any, ratio: Any) -> tuple[int, float]:
    if isinstance(num_disturbances, bool) or not isinstance(num_disturbances, int) or num_disturbances < 1:
        raise ValueError(f"num_disturbances (K) must be an integer >= 1, got {num_disturbances!r}.")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"ratio (r) must be a number in [0, 1] (multipliers from U(1 - r, 1 + r)), got {ratio!r}.")
    return int(num_disturbances), float(ratio)


def uniform_multipliers(
    shape: Sequence[int],
    ratio: float,
    generator: torch.Generator,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Multiplicative noise ``n ~ U(1 - r, 1 + r)``, i.i.d. per element.

    Drawn in float32 on the generator's device (so a CPU generator serves a GPU network), then moved to ``device``
    and cast to ``dtype``. With ``r = 0`` every multiplier is exactly 1.

    Args:
        shape: shape of the noise, e.g. the key feature map's ``B C' H' W'``.
        ratio: ``r`` in [0, 1].
        generator: the source of randomness.
        device: where the noise goes; default the generator's device.
        dtype: dtype of the noise; default float32.

    Raises:
        ValueError: ``ratio`` outside [0, 1].
    """
    _, ratio = _check_options(1, ratio)
    noise = torch.rand(tuple(shape), generator=generator, device=generator.device, dtype=torch.float32)
    noise = noise.mul_(2.0 * ratio).add_(1.0 - ratio)
    return noise.to(device=device if device is not None else generator.device, dtype=dtype or torch.float32)


def disturb_features(features: SplitFeatures, ratio: float, generator: torch.Generator) -> SplitFeatures:
    """``features`` with the key map(s) multiplied by fresh :func:`uniform_multipliers`; the context is kept.

    Args:
        features: from a split network's ``encode``; a tuple ``key`` (multi-scale maps) is disturbed map by map.
        ratio: ``r`` in [0, 1].
        generator: the source of randomness.

    Raises:
        ValueError: ``ratio`` outside [0, 1].
    """

    def _one(f: torch.Tensor) -> torch.Tensor:
        return f * uniform_multipliers(f.shape, ratio, generator, f.device, f.dtype)

    key = features.key
    key = tuple(_one(f) for f in key) if isinstance(key, (tuple, list)) else _one(key)
    return SplitFeatures(key, tuple(features.context))


def activate(output: torch.Tensor, activation: EntropyActivation | str = EntropyActivation.SOFTMAX) -> torch.Tensor:
    """Probabilities (float32) from network logits ``B C ...``: softmax over dimension 1, or sigmoid per element.

    Raises:
        ValueError: unknown ``activation``, or a softmax output without a class dimension.
    """
    activation = look_up_option(activation, EntropyActivation)
    output = output.as_tensor() if isinstance(output, MetaTensor) else output
    output = output.float()
    if activation == EntropyActivation.SOFTMAX:
        if output.ndim < 2:
            raise ValueError(f"softmax needs a class dimension (B C ...), got output shape {tuple(output.shape)}.")
        return torch.softmax(output, dim=1)
    return torch.sigmoid(output)


def _pointwise_entropy(probabilities: torch.Tensor, activation: EntropyActivation) -> torch.Tensor:
    if activation == EntropyActivation.SOFTMAX:
        return torch.special.entr(probabilities).sum(dim=1)
    return torch.special.entr(probabilities) + torch.special.entr(1.0 - probabilities)


def _sample_mean(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(values.shape[0], -1).mean(dim=1)


def _check_top_k(top_k: Any, activation: EntropyActivation) -> int | None:
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1 or None (all elements), got {top_k!r}.")
    if activation != EntropyActivation.SIGMOID:
        raise ValueError(
            f"top_k ranks the elements of a sigmoid output (e.g. a detector's anchor x class logits); got activation "
            f"{activation.value!r}. Use activation='sigmoid' or top_k=None."
        )
    return int(top_k)


def predictive_entropy(
    probabilities: torch.Tensor,
    activation: EntropyActivation | str = EntropyActivation.SOFTMAX,
    top_k: int | None = None,
) -> torch.Tensor:
    """Entropy in nats of every sample's prediction, averaged over its elements (or its ``top_k`` most probable).

    Args:
        probabilities: ``B C [H W [D]]`` probabilities (softmax: summing to 1 over ``C``; sigmoid: each in [0, 1]);
            with ``top_k``, any ``B ...`` shape of sigmoid probabilities (a detector's ``B x anchors x classes``).
        activation: ``{"softmax", "sigmoid"}``, which produced them (see :class:`EntropyActivation`); default
            ``"softmax"``.
        top_k: sigmoid only: average the binary entropy over each sample's ``top_k`` elements of highest
            probability (all of them when it has fewer); ``None`` (default) averages over every element. A detector
            scores tens of thousands of anchors, nearly all confident background; the mean over all of them says
            little about the image, the mean over its top-100 anchors (the candidates it would report) does.

    Returns:
        ``B`` float32: softmax, ``mean over H W D of -sum_c p_c ln p_c``; sigmoid, ``mean over C H W D (or the top_k
        elements) of -p ln p - (1 - p) ln(1 - p)`` (``0 ln 0 = 0``).

    Raises:
        ValueError: unknown ``activation``, fewer than 2 dimensions, or a ``top_k`` that is not a positive integer
            or comes with softmax.

    Example::

        >>> round(float(predictive_entropy(torch.tensor([[0.7, 0.3]]))[0]), 4)  # -(0.7 ln 0.7 + 0.3 ln 0.3)
        0.6109
    """
    activation = look_up_option(activation, EntropyActivation)
    top_k = _check_top_k(top_k, activation)
    if probabilities.ndim < 2:
        raise ValueError(f"probabilities must have shape B C [spatial], got {tuple(probabilities.shape)}.")
    if top_k is None:
        return _sample_mean(_pointwise_entropy(probabilities.float(), activation))
    flat = probabilities.float().reshape(probabilities.shape[0], -1)
    top = flat.topk(min(top_k, flat.shape[1]), dim=1).values
    return _pointwise_entropy(top, activation).mean(dim=1)


def _tracks_running_stats(module: torch.nn.Module) -> bool:
    return bool(getattr(module, "track_running_stats", False)) and getattr(module, "running_mean", None) is not None


@contextlib.contextmanager
def frozen_statistics(
    module: torch.nn.Module, norm_statistics: NormStatistics | str = NormStatistics.RUNNING
) -> Iterator[torch.nn.Module]:
    """Context in which ``module`` runs without changing any buffer (see :class:`NormStatistics`).

    Every submodule goes to eval mode; with ``"batch"``, layers tracking running statistics go to train mode with
    ``track_running_stats`` off. On exit every submodule gets back its own ``training`` flag and its tracking.

    Args:
        module: the network.
        norm_statistics: ``{"running", "batch"}``, see :class:`NormStatistics`; default ``"running"``.

    Raises:
        ValueError: unknown ``norm_statistics``.
    """
    norm_statistics = look_up_option(norm_statistics, NormStatistics)
    flags = [(m, m.training) for m in module.modules()]
    untracked: list[torch.nn.Module] = []
    try:
        module.eval()
        if norm_statistics == NormStatistics.BATCH:
            for m in module.modules():
                if _tracks_running_stats(m):
                    m.track_running_stats = False
                    untracked.append(m)
                    m.training = True
        yield module
    finally:
        for m in untracked:
            m.track_running_stats = True
        for m, flag in flags:
            m.training = flag


def _plain(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a plain ``torch.Tensor`` (a ``MetaTensor``'s data without its metadata; every op on a ``MetaTensor``
    pays for metadata handling)."""
    return t.as_tensor() if isinstance(t, MetaTensor) else t


def _decoder_layout(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    t = _plain(t)
    if channels_last and t.ndim == 4 and t.device.type == "cpu":
        return t.contiguous(memory_format=torch.channels_last)
    return t


def decoder_inputs(features: SplitFeatures, channels_last: bool = True) -> SplitFeatures:
    """``features`` as the ``K`` decoder re-runs read them: plain tensors, 2-D maps in channels-last layout on CPU.

    Only the layout changes, never a value: a ``MetaTensor`` becomes its plain tensor (the decoder's cat, conv and
    norm ops then skip the metadata bookkeeping), and with ``channels_last`` every ``B C H W`` map on the CPU is
    stored channels-last, so that oneDNN runs the decoder's (transposed) convolutions in its fast NHWC kernels
    (measured on the bundle's U-Net: the ``K`` re-runs take about 2/3 of the time). ``B C H W D`` maps and maps on
    other devices keep their layout.

    Args:
        features: from a split network's ``encode`` (or the assessor's cache of the training forward).
        channels_last: store 2-D maps on the CPU channels-last; default ``True``.

    Returns:
        ``SplitFeatures`` with the same values (views where nothing changes).
    """
    key = features.key
    if isinstance(key, (tuple, list)):
        key = tuple(_decoder_layout(k, channels_last) for k in key)
    else:
        key = _decoder_layout(key, channels_last)
    return SplitFeatures(key, tuple(_decoder_layout(c, channels_last) for c in features.context))


def disturbed_uncertainty(
    network: torch.nn.Module,
    features: SplitFeatures,
    generator: torch.Generator,
    num_disturbances: int = 8,
    ratio: float = 0.3,
    activation: EntropyActivation | str = EntropyActivation.SOFTMAX,
    measure: UncertaintyMeasure | str = UncertaintyMeasure.ENTROPY,
    norm_statistics: NormStatistics | str = NormStatistics.RUNNING,
    channels_last: bool = True,
    top_k: int | None = None,
) -> torch.Tensor:
    """Uncertainty of every sample from ``K`` disturbed re-runs of ``network.decode`` (see the module docstring).

    Runs under ``torch.inference_mode()`` inside :func:`frozen_statistics` on :func:`decoder_inputs` (plain tensors,
    channels-last 2-D maps on the CPU); the ``K`` re-runs are sequential (memory of one decode at a time; one
    ``K B`` batch was measured slower on the CPU) and their probabilities are summed in float32. Pass ``k`` draws its
    multipliers from ``generator`` before pass ``k + 1`` (same draws, same order as one pass after the other).

    Args:
        network: a split network (:mod:`monai_ext.networks.split`) whose ``decode`` gives ``B C ...`` logits.
        features: the key features (and context) of the samples, e.g. cached from the training forward; they are
            not modified.
        generator: the source of the multipliers (:func:`uniform_multipliers`).
        num_disturbances: ``K`` >= 1, default 8.
        ratio: ``r`` in [0, 1], default 0.3.
        activation: ``{"softmax", "sigmoid"}``, see :class:`EntropyActivation`; default ``"softmax"``.
        measure: ``{"entropy", "mutual_information"}``, see :class:`UncertaintyMeasure`; default ``"entropy"``.
        norm_statistics: ``{"running", "batch"}``, see :class:`NormStatistics`; default ``"running"``.
        channels_last: see :func:`decoder_inputs`; default ``True`` (a layout, not a value, changes).
        top_k: sigmoid only, see :func:`predictive_entropy`: the entropy of the mean prediction averaged over each
            sample's ``top_k`` most probable elements (by the mean probability); default ``None`` (all elements).

    Returns:
        ``B`` float32 uncertainties in nats, detached, on the device of the output.

    Raises:
        ValueError: ``K`` < 1 or not an integer, ``r`` outside [0, 1], an unknown option, or ``top_k`` with softmax
            or with ``"mutual_information"``.
    """
    num_disturbances, ratio = _check_options(num_disturbances, ratio)
    activation = look_up_option(activation, EntropyActivation)
    measure = look_up_option(measure, UncertaintyMeasure)
    top_k = _check_top_k(top_k, activation)
    if top_k is not None and measure == UncertaintyMeasure.MUTUAL_INFORMATION:
        raise ValueError("top_k is implemented for measure='entropy' only (the paper's Eq. 1).")
    prob_sum: torch.Tensor | None = None
    entropy_sum: torch.Tensor | None = None
    with torch.inference_mode(), frozen_statistics(network, norm_statistics):
        features = decoder_inputs(features, channels_last)
        decode_key = bound_decoder(network, features)  # skip-connection work done once for the K passes
        for _ in range(num_disturbances):
            probs = activate(decode_key(disturb_features(features, ratio, generator).key), activation)
            prob_sum = probs if prob_sum is None else prob_sum.add_(probs)
            if measure == UncertaintyMeasure.MUTUAL_INFORMATION:
                entropy = _sample_mean(_pointwise_entropy(probs, activation))
                entropy_sum = entropy if entropy_sum is None else entropy_sum.add_(entropy)
        uncertainty = predictive_entropy(prob_sum.div_(num_disturbances), activation, top_k)
        if entropy_sum is not None:
            uncertainty = (uncertainty - entropy_sum / num_disturbances).clamp_(min=0.0)
    return uncertainty.clone()  # a normal tensor (not an inference tensor) for the handlers downstream


def _unwrap(network: torch.nn.Module) -> torch.nn.Module:
    if isinstance(network, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
        return network.module
    return network


def _detached(features: Any) -> SplitFeatures:
    if not (isinstance(features, tuple) and len(features) == 2):
        raise TypeError(f"the network's tap must carry SplitFeatures(key, context), got {type(features).__name__}.")
    key, context = features

    def _copy(t: torch.Tensor) -> torch.Tensor:
        return _plain(t).detach().clone()  # decode may work in place on the key (e.g. DenseNet's ReLU(inplace=True))

    key = tuple(_copy(k) for k in key) if isinstance(key, (tuple, list)) else _copy(key)
    return SplitFeatures(key, tuple(_plain(c).detach() for c in context))


class MoMBSAssessor:
    """Ignite handler writing MoMBS's per-sample uncertainty into ``engine.state.output["uncertainty"]``.

    - At ``ITERATION_STARTED`` a forward hook on the split network's ``tap`` starts caching the forward's features.
    - At ``IterationEvents.BACKWARD_COMPLETED`` (after the backward pass, before the optimizer step) the hook is
      removed and :func:`disturbed_uncertainty` re-runs ``decode`` ``K`` times on the disturbed key features, under
      amp's autocast when the trainer uses amp. The ``B`` uncertainties (float32, nats, detached) go into
      ``engine.state.output[output_key]``, beside :class:`monai_ext.engines.PerSampleTrainer`'s ``index`` and
      ``loss_per_sample``, where :class:`monai_ext.handlers.per_sample.PerSampleRecorder` records both.

    Cost per step: ``K`` inference-mode decoder passes (a U-Net's up path only, its skip parts once; see
    :func:`disturbed_uncertainty`); memory: a copy of the key features. ``assess_every`` (default 1, off) trades
    the paper's every-epoch assessment for a cheaper epoch.

    The network must be a split network (:mod:`monai_ext.networks.split`, e.g. ``SplitUNet``, ``SplitDenseNet121``)
    run once per step (``SimpleInferer``; a ``SlidingWindowInferer`` runs it once per window and is refused).
    Under ``torchrun`` attach it on every rank (each rank assesses its own samples; the recorder gathers).

    Bundle wiring (see ``bundles/covid_ct_mombs_segmentation/configs/train.json``)::

        "network_def": {"_target_": "monai_ext.networks.SplitUNet", "spatial_dims": 2, ...as for UNet...},
        "mombs_assessor": {"_target_": "monai_ext.handlers.MoMBSAssessor", "ratio": 0.3,
                           "sampler": "@train#sampler"},
        "mombs_recorder": {"_target_": "monai_ext.handlers.PerSampleRecorder",
                           "num_samples": "$len(@train#datalist)", "keys": ["loss_per_sample", "uncertainty"]},
        "train": {"handlers": [..., {"_target_": "@mombs_recorder", "_mode_": "callable"},
                               {"_target_": "@mombs_assessor", "_mode_": "callable"}],
                  "inferer": {"_target_": "SimpleInferer"},
                  "trainer": {"_target_": "monai_ext.engines.PerSampleTrainer", "inferer": "@train#inferer", ...}},
        checkpoint "save_dict": {..., "mombs_scores": "@mombs_recorder", "mombs_assessor": "@mombs_assessor"}

    Args:
        num_disturbances: ``K`` >= 1, default 8.
        ratio: ``r`` in [0, 1], default 0.3; multipliers ``n ~ U(1 - r, 1 + r)`` per element.
        activation: ``{"softmax", "sigmoid"}``, see :class:`EntropyActivation`; default ``"softmax"``.
        measure: ``{"entropy", "mutual_information"}``, see :class:`UncertaintyMeasure`; default ``"entropy"``.
        norm_statistics: ``{"running", "batch"}``, see :class:`NormStatistics`; default ``"running"``.
        network: the split network; ``None`` (default) takes ``engine.network`` at every iteration
            (``DataParallel``/``DistributedDataParallel`` are unwrapped).
        output_key: where the uncertainties go in ``engine.state.output``, default ``"uncertainty"``.
        seed: seed of the handler's own CPU ``torch.Generator``, default 0 (ignored when ``generator`` is given).
        generator: the generator to draw the multipliers from (e.g. ``torch.Generator(device="cuda")`` to draw them
            on the GPU); ``None`` (default) makes a CPU generator seeded with ``seed``.
        name: logger name; ``None`` uses ``engine.logger``.
        start_epoch: first (1-based) epoch assessed, default 1; earlier epochs skip the ``K`` re-runs (their cost)
            and write ``NaN`` (no score) instead.
        sampler: the :class:`monai_ext.samplers.MoMBSSampler` that plans from these scores; when given, only the
            epochs whose uncertainty it uses are assessed (:meth:`~monai_ext.samplers.MoMBSSampler.needs_uncertainty`:
            a strategy that ranks by uncertainty, from epoch ``pivot_epoch - 1`` on, since epoch ``e``'s scores plan
            epoch ``e + 1``); every other epoch writes ``NaN`` without the ``K`` re-runs. So a bundle builds and
            checkpoints the assessor whatever its ``sampling_strategy``, and the random/SCL/OHEM baselines pay nothing
            for it. Default none (assess every epoch from ``start_epoch``).
        channels_last: run the re-runs on channels-last 2-D maps on the CPU (:func:`decoder_inputs`: the layout, not
            the values, changes; the decoder's convolutions run in oneDNN's faster kernels); default ``True``.
        assess_every: a DEVIATION from the paper for a cheaper epoch, default 1 (off: every used epoch assessed, as
            the paper). With ``n > 1`` only every ``n``-th epoch whose uncertainty is used is assessed (counted from
            the first such epoch: ``pivot_epoch - 1`` with a ``sampler``, else ``start_epoch``); in the epochs
            between, each sample gets the uncertainty of its last assessment (kept per dataset index, from
            ``engine.state.output["index"]``; ``NaN`` if never assessed), so the planner ranks by an uncertainty up
            to ``n - 1`` epochs old. The ``K`` re-runs then cost ``1 / n`` of their per-epoch time on average.
        top_k: with ``activation="sigmoid"``, the mean entropy of each sample's ``top_k`` most probable output
            elements instead of all of them (see :func:`predictive_entropy`); a detector
            (:class:`monai_ext.networks.SplitRetinaNet`, whose ``decode`` gives ``B x anchors x classes``) uses 100.
            Default ``None`` (all elements). The undisturbed entropy of the step's own prediction is
            ``num_disturbances=1, ratio=0`` (one ``decode`` pass, multipliers exactly 1).

    Raises:
        ValueError: ``K`` < 1 or not an integer, ``r`` outside [0, 1], ``start_epoch`` < 1, ``assess_every`` < 1,
            or an unknown option.
        TypeError: ``network`` is not a split network.
    """

    def __init__(
        self,
        num_disturbances: int = 8,
        ratio: float = 0.3,
        activation: EntropyActivation | str = EntropyActivation.SOFTMAX,
        measure: UncertaintyMeasure | str = UncertaintyMeasure.ENTROPY,
        norm_statistics: NormStatistics | str = NormStatistics.RUNNING,
        network: torch.nn.Module | None = None,
        output_key: str = PerSampleKeys.UNCERTAINTY,
        seed: int = 0,
        generator: torch.Generator | None = None,
        name: str | None = None,
        start_epoch: int = 1,
        sampler: MoMBSSampler | None = None,
        channels_last: bool = True,
        assess_every: int = 1,
        top_k: int | None = None,
    ) -> None:
        self.num_disturbances, self.ratio = _check_options(num_disturbances, ratio)
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 1:
            raise ValueError(f"start_epoch must be an integer >= 1 (ignite epochs start at 1), got {start_epoch!r}.")
        self.start_epoch = start_epoch
        if isinstance(assess_every, bool) or not isinstance(assess_every, int) or assess_every < 1:
            raise ValueError(f"assess_every must be an integer >= 1 (1: every epoch, the paper), got {assess_every!r}.")
        self.assess_every = assess_every
        self.last_uncertainty = torch.full((0,), float("nan"), dtype=torch.float32)  # per dataset index
        self.sampler = sampler
        self.channels_last = bool(channels_last)
        self.activation = look_up_option(activation, EntropyActivation)
        self.measure = look_up_option(measure, UncertaintyMeasure)
        self.top_k = _check_top_k(top_k, self.activation)
        self.norm_statistics = look_up_option(norm_statistics, NormStatistics)
        self.network = None if network is None else self._check_network(network)
        self.output_key = str(output_key)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(int(seed))
        self.logger = logging.getLogger(name)
        self._name = name
        self._handle: torch.utils.hooks.RemovableHandle | None = None
        self._captured: list[SplitFeatures] = []
        self._active: torch.nn.Module | None = None
        self._logged = False

    @staticmethod
    def _check_network(network: torch.nn.Module) -> torch.nn.Module:
        network = _unwrap(network)
        if not is_split_network(network):
            raise TypeError(
                f"MoMBSAssessor needs a split network with encode/decode and a FeatureTap 'tap' (e.g. "
                f"monai_ext.networks.SplitUNet, SplitBasicUNet, SplitDenseNet121 or SplitModel), got "
                f"{type(network).__name__}; swap the network_def _target_ for its split version (same arguments)."
            )
        return network

    # ---- ignite --------------------------------------------------------------------------------------------------

    def attach(self, engine: Engine) -> None:
        """Hook the tap at ``ITERATION_STARTED``, assess at ``BACKWARD_COMPLETED``, unhook at the iteration's end.

        (After an exception inside a step the hook stays on the tap until the next ``ITERATION_STARTED``; no
        ``EXCEPTION_RAISED`` handler is added because ignite then stops re-raising the exception.)

        Args:
            engine: a MONAI trainer (``PerSampleTrainer``, ``SupervisedTrainer``).
        """
        if self._name is None:
            self.logger = engine.logger
        for event, handler in (
            (Events.ITERATION_STARTED, self._arm),
            (IterationEvents.BACKWARD_COMPLETED, self),
            (Events.ITERATION_COMPLETED, self._disarm),
        ):
            if not engine.has_event_handler(handler, event):
                engine.add_event_handler(event, handler)

    def _skipped(self, engine: Engine) -> bool:
        epoch = int(engine.state.epoch)
        return epoch < self.start_epoch or (self.sampler is not None and not self.sampler.needs_uncertainty(epoch))

    def _first_used_epoch(self) -> int:
        pivot = getattr(self.sampler, "pivot_epoch", None)
        return self.start_epoch if pivot is None else max(self.start_epoch, int(pivot) - 1)

    def _carried_over(self, engine: Engine) -> bool:
        """Whether this used epoch is one between two assessments (``assess_every`` > 1)."""
        return (int(engine.state.epoch) - self._first_used_epoch()) % self.assess_every != 0

    def _remember(self, index: Any, uncertainty: torch.Tensor) -> None:
        index = torch.as_tensor(index).reshape(-1).long().cpu()
        if index.numel() == 0:
            return
        size = int(index.max()) + 1
        if size > self.last_uncertainty.numel():
            grown = torch.full((size,), float("nan"), dtype=torch.float32)
            grown[: self.last_uncertainty.numel()] = self.last_uncertainty
            self.last_uncertainty = grown
        self.last_uncertainty[index] = uncertainty.detach().float().cpu()

    def _recalled(self, index: Any, device: torch.device | None) -> torch.Tensor:
        index = torch.as_tensor(index).reshape(-1).long().cpu()
        known = index < self.last_uncertainty.numel()
        values = torch.full((index.numel(),), float("nan"), dtype=torch.float32)
        values[known] = self.last_uncertainty[index[known]]
        return values.to(device)

    def _arm(self, engine: Engine) -> None:
        self._disarm(engine)
        if self._skipped(engine) or self._carried_over(engine):
            return
        network = self.network if self.network is not None else self._check_network(engine.network)
        self._active = network
        self._handle = network.tap.register_forward_hook(self._capture)

    def _disarm(self, engine: Engine | None = None) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._captured = []

    def _capture(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        self._captured.append(_detached(output))

    def __call__(self, engine: Engine) -> None:
        """Assess the step's samples and write ``engine.state.output[output_key]`` (``B`` float32, nats).

        Raises:
            RuntimeError: the network's tap did not run exactly once during the step's forward.
            TypeError: ``engine.state.output`` is not a dictionary.
        """
        captured, network = self._captured, self._active
        self._disarm(engine)
        output = engine.state.output
        if self._skipped(engine) and isinstance(output, Mapping):  # a score nobody uses: NaN, no cost
            pred = output.get(CommonKeys.PRED)
            batch = len(output[PerSampleKeys.INDEX]) if PerSampleKeys.INDEX in output else pred.shape[0]
            device = pred.device if isinstance(pred, torch.Tensor) else None
            output[self.output_key] = torch.full((batch,), float("nan"), dtype=torch.float32, device=device)
            return
        if self._carried_over(engine) and isinstance(output, Mapping):  # assess_every > 1: the last assessment
            if PerSampleKeys.INDEX not in output:
                raise KeyError(
                    f"MoMBSAssessor(assess_every={self.assess_every}) needs engine.state.output['index'] "
                    "(monai_ext.engines.PerSampleTrainer) to carry each sample's last uncertainty over."
                )
            pred = output.get(CommonKeys.PRED)
            device = pred.device if isinstance(pred, torch.Tensor) else None
            output[self.output_key] = self._recalled(output[PerSampleKeys.INDEX], device)
            return
        if len(captured) != 1 or network is None:
            raise RuntimeError(
                f"MoMBSAssessor caught the key features {len(captured)} times in this iteration; it needs exactly one "
                "forward of the split network per step (engine.network with a SimpleInferer, not a sliding window)."
            )
        if not isinstance(output, Mapping):
            raise TypeError(f"engine.state.output must be a dict at BACKWARD_COMPLETED, got {type(output).__name__}.")
        amp = bool(getattr(engine, "amp", False)) and getattr(engine, "scaler", None) is not None
        autocast = torch.autocast("cuda", **engine.amp_kwargs) if amp else contextlib.nullcontext()
        with autocast:
            output[self.output_key] = self.assess(captured[0], network)
        if self.assess_every > 1 and PerSampleKeys.INDEX in output:
            self._remember(output[PerSampleKeys.INDEX], output[self.output_key])
        if not self._logged:
            key = captured[0].key
            shapes = [tuple(k.shape) for k in key] if isinstance(key, tuple) else tuple(key.shape)
            self.logger.info(f"MoMBSAssessor: key features {shapes}, K={self.num_disturbances}, r={self.ratio}.")
            self._logged = True

    def assess(self, features: SplitFeatures, network: torch.nn.Module | None = None) -> torch.Tensor:
        """:func:`disturbed_uncertainty` with this handler's options and generator.

        Args:
            features: key features (and context) from ``network.encode``.
            network: the split network; default the one given at construction.

        Raises:
            TypeError: no split network.
        """
        network = self._check_network(network if network is not None else self.network)
        options = (self.num_disturbances, self.ratio, self.activation, self.measure, self.norm_statistics)
        return disturbed_uncertainty(
            network, features, self.generator, *options, channels_last=self.channels_last, top_k=self.top_k
        )

    # ---- checkpoints -----------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``{"generator_state": uint8 tensor}`` so that a resumed run draws the same noise, plus, with
        ``assess_every`` > 1, ``"last_uncertainty"`` (float32 per dataset index); ``weights_only``-safe."""
        state = {"generator_state": self.generator.get_state()}
        if self.assess_every > 1:
            state["last_uncertainty"] = self.last_uncertainty.clone()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the generator state (and ``last_uncertainty`` when saved) from :meth:`state_dict`.

        Raises:
            KeyError: ``generator_state`` is missing.
        """
        if "generator_state" not in state_dict:
            raise KeyError(f"MoMBSAssessor state_dict misses 'generator_state'; found {sorted(state_dict)}.")
        self.generator.set_state(torch.as_tensor(state_dict["generator_state"]).to(torch.uint8).cpu())
        if "last_uncertainty" in state_dict:
            self.last_uncertainty = torch.as_tensor(state_dict["last_uncertainty"]).float().cpu().clone()
