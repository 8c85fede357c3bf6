# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import copy
import logging
import math
import time
import types

import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader, Dataset
from monai.engines.utils import IterationEvents
from monai.inferers import SlidingWindowInferer
from monai.losses import DiceLoss
from monai.networks.nets import UNet
from torch import nn

from monai_ext.data.datalist import assign_indices
from monai_ext.engines.per_sample import PerSampleTrainer
from monai_ext.handlers.mombs_assessor import (
    MoMBSAssessor,
    activate,
    disturb_features,
    disturbed_uncertainty,
    frozen_statistics,
    predictive_entropy,
    uniform_multipliers,
)
from monai_ext.handlers.per_sample import PerSampleRecorder
from monai_ext.networks import SplitDenseNet121, SplitFeatures, SplitModel, SplitUNet

LOG = logging.getLogger(__name__)


def _h(*p: float) -> float:
    """Entropy in nats, by hand."""
    return -sum(x * math.log(x) for x in p if x > 0)


H73, H82, H64 = _h(0.7, 0.3), _h(0.8, 0.2), _h(0.6, 0.4)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread avoids thread contention on a busy CPU (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _unet(**overrides) -> SplitUNet:
    kwargs = dict(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)
    kwargs.update(overrides)
    net = SplitUNet(**kwargs)
    g = _gen(11)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return net


def _bn_dropout_model() -> SplitModel:
    """Conv-BN encoder, BN-dropout decoder: running statistics and dropout on both sides of the split."""
    encoder = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    decoder = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Conv2d(4, 3, 1))
    net = SplitModel(encoder, decoder)
    g = _gen(12)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net


class _Scripted(nn.Module):
    """Stub split network: ``decode`` returns the scripted logits in turn and records the keys it was given."""

    def __init__(self, logits: list[torch.Tensor]):
        super().__init__()
        self.logits = list(logits)
        self.keys: list[torch.Tensor] = []

    def decode(self, features: SplitFeatures) -> torch.Tensor:
        self.keys.append(features.key.clone())
        return self.logits[len(self.keys) - 1]


# ---- entropy, worked by hand ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "probabilities,activation,expected",
    [
        ([[0.7, 0.3]], "softmax", [H73]),  # -(0.7 ln 0.7 + 0.3 ln 0.3) = 0.6109
        ([[1.0, 0.0]], "softmax", [0.0]),  # 0 ln 0 = 0
        ([[0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]], "softmax", [math.log(4), math.log(2)]),
        ([[[[0.7, 1.0]], [[0.3, 0.0]]]], "softmax", [H73 / 2]),  # B C H W = 1 2 1 2: voxel entropies H73 and 0
        ([[0.7]], "sigmoid", [H73]),  # binary entropy of 0.7
        ([[0.5, 1.0]], "sigmoid", [math.log(2) / 2]),  # multi-label: mean over classes of ln 2 and 0
        ([[[[0.5, 0.7], [0.0, 0.3]]]], "sigmoid", [(math.log(2) + 2 * H73) / 4]),  # B C H W = 1 1 2 2
    ],
)
def test_predictive_entropy_hand_worked(probabilities, activation, expected):
    result = predictive_entropy(torch.tensor(probabilities), activation)
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, torch.tensor(expected), rtol=1e-6, atol=1e-7)


def test_entropy_of_mean_of_two_disturbances_hand_worked():
    # disturbance 1 gives [0.8, 0.2], disturbance 2 gives [0.6, 0.4]: mean [0.7, 0.3], H = -(0.7 ln 0.7 + 0.3 ln 0.3)
    logits = [torch.log(torch.tensor([[0.8, 0.2]])), torch.log(torch.tensor([[0.6, 0.4]]))]
    feats = SplitFeatures(torch.ones(1, 5))
    result = disturbed_uncertainty(_Scripted(logits), feats, _gen(), num_disturbances=2, ratio=0.3)
    torch.testing.assert_close(result, torch.tensor([H73]), rtol=1e-6, atol=1e-7)
    mutual = disturbed_uncertainty(_Scripted(logits), feats, _gen(), 2, 0.3, measure="mutual_information")
    torch.testing.assert_close(mutual, torch.tensor([H73 - (H82 + H64) / 2]), rtol=1e-5, atol=1e-7)  # 0.0242


def test_sigmoid_entropy_of_mean_hand_worked():
    # sigmoid outputs 0.9 and 0.5 -> mean 0.7 -> binary entropy H(0.7, 0.3)
    logits = [torch.logit(torch.tensor([[0.9]])), torch.logit(torch.tensor([[0.5]]))]
    result = disturbed_uncertainty(_Scripted(logits), SplitFeatures(torch.ones(1, 3)), _gen(), 2, 0.3, "sigmoid")
    torch.testing.assert_close(result, torch.tensor([H73]), rtol=1e-6, atol=1e-7)


def test_each_rerun_gets_fresh_multipliers_within_bounds():
    stub = _Scripted([torch.zeros(2, 2)] * 3)
    key = torch.full((2, 4, 3, 3), 2.0)
    disturbed_uncertainty(stub, SplitFeatures(key), _gen(), num_disturbances=3, ratio=0.25)
    assert len(stub.keys) == 3
    for k in stub.keys:
        assert k.min() >= 2.0 * 0.75 and k.max() <= 2.0 * 1.25
    assert not torch.equal(stub.keys[0], stub.keys[1]) and not torch.equal(stub.keys[1], stub.keys[2])
    assert torch.equal(key, torch.full((2, 4, 3, 3), 2.0))  # the cached features are not modified


# ---- noise -------------------------------------------------------------------------------------------------------


def test_uniform_multipliers_bounds_and_spread():
    n = uniform_multipliers((20000,), 0.3, _gen())
    assert n.dtype == torch.float32
    assert float(n.min()) >= 0.7 and float(n.max()) <= 1.3
    assert float(n.min()) < 0.71 and float(n.max()) > 1.29  # the whole interval is used
    assert abs(float(n.mean()) - 1.0) < 0.01  # mean of U(0.7, 1.3) is 1
    assert abs(float(n.var()) - 0.6**2 / 12) < 0.002  # variance (2r)^2 / 12 = 0.03


def test_uniform_multipliers_r0_are_exactly_one():
    assert torch.equal(uniform_multipliers((4, 5), 0.0, _gen()), torch.ones(4, 5))


def test_disturb_features_keeps_context_and_disturbs_each_scale():
    context = (torch.randn(1, 2, 4, 4),)
    feats = SplitFeatures((torch.ones(1, 3, 4, 4), torch.ones(1, 3, 2, 2)), context)
    out = disturb_features(feats, 0.5, _gen())
    assert out.context[0] is context[0]
    for k in out.key:
        assert k.min() >= 0.5 and k.max() <= 1.5 and k.unique().numel() > 1


# ---- r = 0, confident outputs --------------------------------------------------------------------------------------


def test_r0_gives_the_undisturbed_prediction_entropy():
    net = _unet(norm="batch", dropout=0.2)
    x = torch.randn(2, 1, 16, 16, generator=_gen(1))
    with torch.no_grad():
        feats = net.encode(x)
        net.eval()
        expected = predictive_entropy(activate(net.decode(feats)))  # independent: one plain eval-mode decode
        net.train()
    result = disturbed_uncertainty(net, feats, _gen(), num_disturbances=8, ratio=0.0)
    torch.testing.assert_close(result, expected, rtol=1e-6, atol=1e-7)
    assert float(expected.min()) > 0.01  # a non-trivial prediction, so the check means something
    mutual = disturbed_uncertainty(net, feats, _gen(), num_disturbances=8, ratio=0.0, measure="mutual_information")
    torch.testing.assert_close(mutual, torch.zeros(2), rtol=0, atol=1e-6)


def test_confident_output_has_near_zero_uncertainty():
    decoder = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        decoder.weight.copy_(torch.tensor([100.0, -100.0]).reshape(2, 1, 1, 1))
        decoder.bias.zero_()
    net = SplitModel(nn.Identity(), decoder)
    feats = SplitFeatures(torch.ones(2, 1, 4, 4))  # logits +100 / -100 at every pixel, 70..130 when disturbed
    for ratio in (0.0, 0.3):
        assert float(disturbed_uncertainty(net, feats, _gen(), 8, ratio).max()) < 1e-20


# ---- BatchNorm, dropout, modes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_statistics", ["running", "batch"])
def test_running_statistics_and_modes_untouched(norm_statistics):
    net = _bn_dropout_model().train()
    net.decoder[3].eval()  # a submodule deliberately left in eval mode must stay so
    with torch.no_grad():
        feats = net.encode(torch.randn(4, 1, 8, 8, generator=_gen(2)))  # train-mode encode updates the encoder's BN
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    modes = {k: m.training for k, m in net.named_modules()}
    result = disturbed_uncertainty(net, feats, _gen(), 4, 0.3, norm_statistics=norm_statistics)
    assert result.shape == (4,) and bool(torch.isfinite(result).all())
    assert set(buffers) >= {"decoder.1.running_mean", "decoder.1.running_var", "decoder.1.num_batches_tracked"}
    for name, value in net.named_buffers():
        assert torch.equal(value, buffers[name]), name
    assert {k: m.training for k, m in net.named_modules()} == modes
    assert net.decoder[1].track_running_stats and net.encoder[1].track_running_stats


def test_batch_statistics_differ_from_running_statistics():
    net = _bn_dropout_model()
    with torch.no_grad():
        feats = net.encode(torch.randn(4, 1, 8, 8, generator=_gen(2)))
    running = disturbed_uncertainty(net, feats, _gen(), 4, 0.3, norm_statistics="running")
    batch = disturbed_uncertainty(net, feats, _gen(), 4, 0.3, norm_statistics="batch")
    assert not torch.allclose(running, batch)


def test_frozen_statistics_restores_flags_after_an_error():
    net = _bn_dropout_model().train()
    with pytest.raises(ZeroDivisionError):
        with frozen_statistics(net, "batch"):
            assert not net.decoder[3].training and net.decoder[1].training and not net.decoder[1].track_running_stats
            raise ZeroDivisionError
    assert all(m.training for m in net.modules()) and net.decoder[1].track_running_stats


def test_dropout_off_and_deterministic_with_seeded_generator():
    net = _bn_dropout_model()
    with torch.no_grad():
        feats = net.encode(torch.randn(4, 1, 8, 8, generator=_gen(3)))
    a = disturbed_uncertainty(net, feats, _gen(5), 4, 0.3)
    b = disturbed_uncertainty(net, feats, _gen(5), 4, 0.3)  # dropout (p=0.5) would make these differ
    c = disturbed_uncertainty(net, feats, _gen(6), 4, 0.3)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# ---- options ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "8"])
def test_bad_num_disturbances(k):
    with pytest.raises(ValueError, match=r"num_disturbances \(K\) must be an integer >= 1"):
        MoMBSAssessor(num_disturbances=k)


@pytest.mark.parametrize("r", [-0.1, 1.5, True, "0.3"])
def test_bad_ratio(r):
    with pytest.raises(ValueError, match=r"ratio \(r\) must be a number in \[0, 1\]"):
        MoMBSAssessor(ratio=r)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(activation="softmx"), "softmax"),
        (dict(measure="variance"), "entropy"),
        (dict(norm_statistics="train"), "running"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MoMBSAssessor(**kwargs)


def test_not_a_split_network():
    plain = UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,))
    with pytest.raises(TypeError, match="needs a split network .* got UNet"):
        MoMBSAssessor(network=plain)


def test_state_dict_round_trip_continues_the_noise():
    net = _unet()
    with torch.no_grad():
        feats = net.encode(torch.randn(2, 1, 16, 16, generator=_gen(4)))
    first = MoMBSAssessor(network=net, seed=3)
    first.assess(feats)
    saved = first.state_dict()
    expected = first.assess(feats)
    resumed = MoMBSAssessor(network=net, seed=99)
    resumed.load_state_dict(saved)
    assert torch.equal(resumed.assess(feats), expected)
    with pytest.raises(KeyError, match="generator_state"):
        resumed.load_state_dict({})


def test_densenet_inplace_relu_does_not_alter_cached_features():
    """DenseNet's class_layers start with ReLU(inplace=True) on the key features; the cache keeps them as they were."""
    net = SplitDenseNet121(
        spatial_dims=2, in_channels=1, out_channels=3, init_features=8, growth_rate=4, block_config=(1, 1, 1, 1)
    ).eval()
    assessor = MoMBSAssessor(num_disturbances=2)
    assessor._arm(types.SimpleNamespace(network=net, state=types.SimpleNamespace(epoch=1)))
    x = torch.randn(2, 1, 64, 64, generator=_gen(5))
    with torch.no_grad():
        net(x)
        expected = net.encode(x).key
    cached = assessor._captured[0].key
    assessor._disarm()
    assert float(expected.min()) < 0  # norm5 output before the ReLU
    assert torch.equal(cached, expected)
    u = assessor.assess(SplitFeatures(cached), net)  # decode's in-place ReLU works on the disturbed copy only
    assert u.shape == (2,) and float(u.min()) >= 0 and float(u.max()) <= math.log(3) + 1e-6
    assert torch.equal(cached, expected)


# ---- inside PerSampleTrainer ----------------------------------------------------------------------------------------


def _datalist(n: int = 4) -> list[dict]:
    """n 32x32 images with a bright square 'lesion' (label 1) on noise (label 0)."""
    g = _gen(7)
    items = []
    for i in range(n):
        image = torch.rand(1, 32, 32, generator=g)
        label = torch.zeros(1, 32, 32)
        r, c = 4 + 4 * i, 6 + 3 * i
        image[:, r : r + 10, c : c + 10] += 1.0
        label[:, r : r + 10, c : c + 10] = 1.0
        items.append({"image": image, "label": label})
    return assign_indices(items)


def _trainer(net, handlers, epochs=1, **kwargs):
    return PerSampleTrainer(
        device="cpu",
        max_epochs=epochs,
        train_data_loader=DataLoader(Dataset(_datalist()), batch_size=2, shuffle=False),
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.5),
        loss_function=DiceLoss(softmax=True, to_onehot_y=True, reduction="none"),
        train_handlers=handlers,
        **kwargs,
    )


def test_trainer_fills_loss_and_uncertainty_columns_with_the_step_features():
    net = _unet()  # instance norm, no dropout: re-encoding the batch reproduces the training forward's features
    assessor = MoMBSAssessor(num_disturbances=8, ratio=0.3, seed=5)
    recorder = PerSampleRecorder(num_samples=4, keys=["loss_per_sample", "uncertainty"])
    trainer = _trainer(net, [assessor, recorder], epochs=2)
    twin = _gen(5)
    checked = []

    def _independent(engine):  # runs after the assessor at BACKWARD_COMPLETED, before the optimizer step
        with torch.no_grad():
            feats = net.encode(engine.state.output["image"])
        expected = disturbed_uncertainty(net, feats, twin, 8, 0.3)
        torch.testing.assert_close(engine.state.output["uncertainty"], expected, rtol=1e-5, atol=1e-6)
        checked.append(engine.state.output["uncertainty"].shape)

    trainer.add_event_handler(IterationEvents.BACKWARD_COMPLETED, _independent)
    trainer.run()
    assert checked == [torch.Size([2])] * 4
    assert bool(recorder.visited.all()) and recorder.last_epoch.tolist() == [2, 2, 2, 2]
    u, loss = recorder["uncertainty"], recorder["loss_per_sample"]
    assert bool(((u > 0) & (u <= math.log(2))).all())
    assert bool(((loss >= 0) & (loss <= 1)).all())
    assert len(net.tap._forward_hooks) == 0  # unhooked after every step


def test_training_identical_with_and_without_assessor():
    """Same losses, gradients, weights and BatchNorm buffers; dropout in the net checks no global random draws."""
    base = _unet(norm="batch", dropout=0.2)
    runs = []
    for with_assessor in (False, True):
        net = copy.deepcopy(base)
        recorder = PerSampleRecorder(num_samples=4, keys=["loss_per_sample"])
        handlers = [MoMBSAssessor(num_disturbances=4), recorder] if with_assessor else [recorder]
        trainer = _trainer(net, handlers, decollate=False)
        outputs = []
        trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(sorted(e.state.output)))
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the training dropout masks; restored on leaving the block
            trainer.run()
        runs.append((net, recorder["loss_per_sample"].clone(), outputs))
    (plain, loss_plain, out_plain), (assessed, loss_assessed, out_assessed) = runs
    assert "uncertainty" in out_assessed[0] and "uncertainty" not in out_plain[0]
    assert torch.equal(loss_plain, loss_assessed)
    for (name, a), (_, b) in zip(plain.named_parameters(), assessed.named_parameters()):
        assert torch.equal(a, b), name
        assert torch.equal(a.grad, b.grad), name
    for (name, a), (_, b) in zip(plain.named_buffers(), assessed.named_buffers()):
        assert torch.equal(a, b), name
    assert not torch.equal(base.model[0].conv.unit0.conv.weight, plain.model[0].conv.unit0.conv.weight)  # it trained


def test_sliding_window_is_refused():
    trainer = _trainer(_unet(), [MoMBSAssessor()], inferer=SlidingWindowInferer(roi_size=(16, 16), sw_batch_size=1))
    with pytest.raises(RuntimeError, match="exactly one"):
        trainer.run()


def test_overhead_timing_k8_small_unet():
    """Loose timing of a K=8 assessment against one training step (forward + backward + step); printed, not asserted."""
    net = SplitUNet(
        spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.randn(4, 1, 64, 64, generator=_gen(8))
    assessor = MoMBSAssessor(network=net, num_disturbances=8)
    step_s, assess_s = [], []
    for _ in range(3):
        start = time.perf_counter()
        optimizer.zero_grad()
        pred = net(x)
        pred.square().mean().backward()
        optimizer.step()
        step_s.append(time.perf_counter() - start)
        with torch.no_grad():
            feats = net.encode(x)
        start = time.perf_counter()
        assessor.assess(feats)
        assess_s.append(time.perf_counter() - start)
    ratio = min(assess_s) / min(step_s)
    LOG.warning(
        f"MoMBS assessor K=8 on SplitUNet(16-32-64-128), 4x1x64x64, CPU 1 thread: training step "
        f"{min(step_s) * 1e3:.1f} ms, assessment {min(assess_s) * 1e3:.1f} ms, overhead ratio {ratio:.2f}"
    )
    assert ratio > 0


def test_start_epoch_skips_earlier_epochs_with_nan_and_no_hook():
    net = _unet()
    assessor = MoMBSAssessor(num_disturbances=2, seed=1, start_epoch=2)
    recorder = PerSampleRecorder(num_samples=4, keys=["loss_per_sample", "uncertainty"])
    trainer = _trainer(net, [assessor, recorder], epochs=2)
    seen = {}

    def _epoch_end(engine):
        seen[engine.state.epoch] = recorder["uncertainty"].clone()

    def _no_hook_in_epoch_1(engine):
        if engine.state.epoch == 1:
            assert len(net.tap._forward_hooks) == 0  # no features cached: nothing to assess
            assert torch.isnan(engine.state.output["uncertainty"]).all()

    trainer.add_event_handler(IterationEvents.BACKWARD_COMPLETED, _no_hook_in_epoch_1)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, _epoch_end)
    state_before = assessor.generator.get_state().clone()
    trainer.run()
    assert bool(torch.isnan(seen[1]).all())  # epoch 1: no score (the sampler ranks it as missing)
    assert bool(torch.isfinite(seen[2]).all())  # epoch 2 (= pivot - 1 for pivot 3): every sample assessed
    assert not torch.equal(state_before, assessor.generator.get_state())  # noise drawn only from epoch 2


@pytest.mark.parametrize("start", [0, -1, 1.5, True])
def test_bad_start_epoch(start):
    with pytest.raises(ValueError, match="start_epoch"):
        MoMBSAssessor(start_epoch=start)


@pytest.mark.parametrize("strategy", ["mombs", "random", "scl_hard"])
def test_assessor_runs_only_the_epochs_whose_uncertainty_the_sampler_uses(strategy):
    """pivot 3: epoch 2's scores plan epoch 3, so mombs assesses epochs 2 and 3; random and SCL never do."""
    from monai_ext.samplers import MoMBSSampler

    net = _unet()
    sampler = MoMBSSampler(range(4), batch_size=2, strategy=strategy, pivot_epoch=3)
    assessor = MoMBSAssessor(num_disturbances=2, seed=3, sampler=sampler)
    initial = assessor.generator.get_state()
    recorded = {}
    trainer = _trainer(net, [assessor], epochs=3)
    trainer.add_event_handler(  # after the assessor's own BACKWARD_COMPLETED handler (attached first)
        IterationEvents.BACKWARD_COMPLETED,
        lambda e: recorded.setdefault(e.state.epoch, []).append(e.state.output["uncertainty"].clone()),
    )
    trainer.run()
    assert sorted(recorded) == [1, 2, 3]
    for epoch, values in recorded.items():
        assessed = strategy == "mombs" and epoch >= 2
        assert all(bool(torch.isfinite(v).all()) is assessed and bool(torch.isnan(v).all()) is not assessed
                   for v in values), (epoch, values)  # fmt: skip
    assert torch.equal(assessor.generator.get_state(), initial) is (strategy != "mombs")  # no noise drawn
    assert len(net.tap._forward_hooks) == 0


# ---- speed work: same Eq. 1-2 value, plain channels-last decoder inputs, skip parts once -------------------------


def _eq1_restated(net, key, context, generator, k, r):
    """Paper Sec. 3.2 Eq. 1-2 written out independently: eval-mode decoder on key * n_k, n_k ~ U(1 - r, 1 + r) per
    element drawn pass after pass, softmax, mean over the K passes, entropy per voxel, mean over voxels."""
    net.eval()
    probs = []
    with torch.no_grad():
        for _ in range(k):
            noise = torch.rand(key.shape, generator=generator) * (2 * r) + (1 - r)
            y = key * noise
            for skip, up in zip(reversed(context), reversed(net._levels()[1])):  # MONAI UNet's up path, by hand
                y = up(torch.cat([skip, y], dim=1))
            probs.append(torch.softmax(y, dim=1))
    mean = torch.stack(probs).mean(0)
    return -(mean * torch.log(mean)).sum(1).flatten(1).mean(1)


@pytest.mark.parametrize("channels_last", [True, False])
def test_uncertainty_equals_an_independent_restatement_of_eq1_eq2(channels_last):
    """Bundle-like U-Net (2 residual units, BatchNorm with trained running statistics), batch 4, MetaTensor features
    as a MONAI pipeline gives them: the optimised path gives Eq. 1's value for the same generator draws."""
    from monai.data import MetaTensor

    net = SplitUNet(spatial_dims=2, in_channels=3, out_channels=2, channels=(8, 16, 32, 64), strides=(2, 2, 2),
                    num_res_units=2, norm="batch")  # fmt: skip
    x = torch.randn(4, 3, 32, 32, generator=_gen(21))
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(x)  # running statistics away from their initial values
        feats = net.encode(MetaTensor(x))
    assert isinstance(feats.context[0], MetaTensor)
    expected = _eq1_restated(net, feats.key.as_tensor(), [c.as_tensor() for c in feats.context], _gen(3), 8, 0.3)
    net.train()
    result = disturbed_uncertainty(net, feats, _gen(3), 8, 0.3, channels_last=channels_last)
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-6)
    assert net.training  # flags restored
    assert type(result) is torch.Tensor and not result.is_inference() and not result.requires_grad
    result.add_(1.0)  # a normal tensor: usable in place outside inference mode


def test_decoder_reads_plain_channels_last_tensors():
    """A MetaTensor key (every op on it pays for metadata) reaches decode as a plain, channels-last tensor."""
    from monai.data import MetaTensor

    seen = []

    class _Recording(nn.Module):
        def forward(self, key):
            seen.append((type(key), key.is_contiguous(memory_format=torch.channels_last)))
            return key[:, :2]

    net = SplitModel(nn.Identity(), _Recording())
    key = MetaTensor(torch.rand(2, 4, 3, 3, generator=_gen(2)))
    disturbed_uncertainty(net, SplitFeatures(key), _gen(), num_disturbances=2)
    assert seen == [(torch.Tensor, True)] * 2
    seen.clear()
    disturbed_uncertainty(net, SplitFeatures(key), _gen(), num_disturbances=1, channels_last=False)
    assert seen == [(torch.Tensor, False)]


def test_decoder_inputs_keep_values_and_3d_layout():
    from monai.data import MetaTensor

    from monai_ext.handlers.mombs_assessor import decoder_inputs

    key2d, key3d = torch.rand(2, 4, 3, 3), MetaTensor(torch.rand(1, 2, 3, 3, 3))
    out = decoder_inputs(SplitFeatures((key2d, key3d), (MetaTensor(torch.rand(2, 3, 4, 4)),)))
    assert [type(t) for t in (*out.key, *out.context)] == [torch.Tensor] * 3
    assert out.key[0].is_contiguous(memory_format=torch.channels_last) and out.key[1].is_contiguous()
    assert torch.equal(out.key[0], key2d) and torch.equal(out.key[1], key3d.as_tensor())


def test_assessor_caches_plain_tensors_from_a_metatensor_forward():
    from monai.data import MetaTensor

    net = _unet()
    assessor = MoMBSAssessor(num_disturbances=2)
    assessor._arm(types.SimpleNamespace(network=net, state=types.SimpleNamespace(epoch=1)))
    net(MetaTensor(torch.randn(2, 1, 16, 16, generator=_gen(4))))
    cached = assessor._captured[0]
    assessor._disarm()
    assert [type(t) for t in (cached.key, *cached.context)] == [torch.Tensor] * 3


# ---- assess_every (documented deviation, default off) --------------------------------------------------------------


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_bad_assess_every(every):
    with pytest.raises(ValueError, match="assess_every"):
        MoMBSAssessor(assess_every=every)


def test_assess_every_2_carries_each_samples_last_uncertainty_over():
    """pivot 2: epochs 1, 2, 3, 4 are used; with assess_every=2 epochs 1 and 3 are assessed, 2 and 4 repeat them."""
    from monai_ext.samplers import MoMBSSampler

    net = _unet()
    sampler = MoMBSSampler(range(4), batch_size=2, strategy="mombs", pivot_epoch=2)
    assessor = MoMBSAssessor(num_disturbances=2, seed=3, sampler=sampler, assess_every=2)
    recorder = PerSampleRecorder(num_samples=4, keys=["loss_per_sample", "uncertainty"])
    trainer = _trainer(net, [assessor, recorder], epochs=4)
    per_epoch, hooked = {}, {}
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: per_epoch.setdefault(e.state.epoch,
                              recorder["uncertainty"].clone()))  # fmt: skip
    trainer.add_event_handler(IterationEvents.FORWARD_COMPLETED, lambda e: hooked.setdefault(e.state.epoch,
                              len(net.tap._forward_hooks)))  # fmt: skip
    trainer.run()
    assert hooked == {1: 1, 2: 0, 3: 1, 4: 0}  # no features cached (no K re-runs) in the carried-over epochs
    assert bool(torch.isfinite(per_epoch[1]).all())
    assert torch.equal(per_epoch[2], per_epoch[1]) and torch.equal(per_epoch[4], per_epoch[3])
    assert not torch.equal(per_epoch[3], per_epoch[1])  # epoch 3 assessed anew (trained weights, new noise)
    torch.testing.assert_close(assessor.last_uncertainty, per_epoch[4])
    fresh = MoMBSAssessor(assess_every=2)
    fresh.load_state_dict(assessor.state_dict())
    assert torch.equal(fresh.last_uncertainty, assessor.last_uncertainty)
    assert "last_uncertainty" not in MoMBSAssessor().state_dict()  # default: checkpoints as before


def test_top_k_entropy_by_hand():
    from monai_ext.handlers.mombs_assessor import predictive_entropy

    # B=1, 4 anchors x 1 class; top 2 by probability: 0.9 and 0.5
    # H(0.9) = -(0.9 ln 0.9 + 0.1 ln 0.1) = 0.325083, H(0.5) = ln 2 = 0.693147 -> mean 0.509115
    probs = torch.tensor([[[0.1], [0.9], [0.01], [0.5]]])
    assert float(predictive_entropy(probs, "sigmoid", top_k=2)[0]) == pytest.approx(0.509115, abs=1e-6)
    # top_k larger than the number of elements: all of them (H(0.1) = 0.325083, H(0.01) = 0.056002)
    expected = (0.325083 * 2 + 0.693147 + 0.056002) / 4
    assert float(predictive_entropy(probs, "sigmoid", top_k=10)[0]) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="sigmoid"):
        predictive_entropy(probs, "softmax", top_k=2)
    with pytest.raises(ValueError, match="top_k"):
        predictive_entropy(probs, "sigmoid", top_k=0)


def test_top_k_ranks_by_the_mean_disturbed_probability():
    from monai_ext.handlers.mombs_assessor import disturbed_uncertainty
    from monai_ext.networks import SplitFeatures, SplitModel

    # decode = identity on logits: with r = 0 every pass gives the undisturbed sigmoid
    net = SplitModel(torch.nn.Identity(), torch.nn.Identity())
    logits = torch.logit(torch.tensor([[[0.1], [0.9], [0.01], [0.5]]]))
    u = disturbed_uncertainty(net, SplitFeatures(logits), torch.Generator().manual_seed(0), 3, 0.0, "sigmoid", top_k=2)
    assert float(u[0]) == pytest.approx(0.509115, abs=1e-5)
    with pytest.raises(ValueError, match="entropy"):
        disturbed_uncertainty(
            net, SplitFeatures(logits), torch.Generator(), 3, 0.0, "sigmoid", "mutual_information", top_k=2
        )
