# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import copy
import math

import pytest
import torch
from ignite.engine import Engine, Events
from monai.data import DataLoader, Dataset
from monai.engines.utils import IterationEvents
from monai.handlers import CheckpointLoader, CheckpointSaver

from monai_ext.data.datalist import assign_indices
from monai_ext.engines.per_sample import PerSampleTrainer
from monai_ext.handlers.ema import EMATeacher
from monai_ext.losses import NVUMLoss

NUM_ITEMS, NUM_FEATURES, NUM_CLASSES = 6, 4, 3
PRIOR = [0.5, 0.25, 0.125]


def _datalist() -> list[dict]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(NUM_ITEMS, NUM_FEATURES, generator=g)
    labels = (torch.rand(NUM_ITEMS, NUM_CLASSES, generator=g) > 0.5).float()
    return assign_indices([{"image": images[i], "label": labels[i]} for i in range(NUM_ITEMS)])


def _network() -> torch.nn.Module:
    """Linear -> BatchNorm: parameters and running-statistics buffers, same initial weights at every call."""
    g = torch.Generator().manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(NUM_FEATURES, NUM_CLASSES), torch.nn.BatchNorm1d(NUM_CLASSES))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net


def _trainer(net, loss, handlers, lr=0.5, batch_size=3, **kwargs):
    return PerSampleTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=DataLoader(Dataset(_datalist()), batch_size=batch_size, shuffle=False),
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=lr),
        loss_function=loss,
        train_handlers=handlers,
        decollate=False,
        **kwargs,
    )


def _snapshots(trainer) -> list[dict]:
    """Parameters of the trained network at the start of every iteration and at the end."""
    snaps = []

    def _snap(engine):
        snaps.append({k: v.detach().clone() for k, v in engine.network.named_parameters()})

    trainer.add_event_handler(Events.ITERATION_STARTED, _snap)
    trainer.add_event_handler(Events.COMPLETED, _snap)
    return snaps


class RecordingBCE(torch.nn.Module):
    """Per-sample BCE that records the memory_logits it receives."""

    def __init__(self):
        super().__init__()
        self.received: list[torch.Tensor | None] = []

    def forward(self, input, target, memory_logits=None):
        self.received.append(None if memory_logits is None else memory_logits.clone())
        return torch.nn.functional.binary_cross_entropy_with_logits(input, target, reduction="none")


@pytest.mark.parametrize("decay", [0.99, 0.5])
def test_parameters_equal_hand_computed_ema_after_two_steps(decay):
    net = _network()
    ema = EMATeacher(net, decay=decay, output_key=None)
    trainer = _trainer(net, torch.nn.BCEWithLogitsLoss(reduction="none"), [ema])
    snaps = _snapshots(trainer)
    trainer.run()
    assert len(snaps) == 3 and ema.num_updates == 2
    assert not torch.allclose(snaps[1]["0.weight"], snaps[0]["0.weight"])  # the network did move
    for name, ema_p in ema.ema_network.named_parameters():
        theta0, theta1, theta2 = (s[name] for s in snaps)
        expected = decay * (decay * theta0 + (1 - decay) * theta1) + (1 - decay) * theta2
        assert torch.allclose(ema_p, expected, atol=1e-6)
        assert not ema_p.requires_grad
    # BN buffers are copied from the trained network (buffer_mode="copy")
    assert torch.equal(ema.ema_network[1].running_mean, net[1].running_mean)
    assert torch.equal(ema.ema_network[1].running_var, net[1].running_var)
    assert int(ema.ema_network[1].num_batches_tracked) == 2


def test_buffer_mode_ema_averages_running_statistics():
    net = _network()
    ema = EMATeacher(net, decay=0.5, output_key=None, buffer_mode="ema")
    means = []
    trainer = _trainer(net, torch.nn.BCEWithLogitsLoss(reduction="none"), [ema])
    for event in (Events.ITERATION_STARTED, IterationEvents.MODEL_COMPLETED):
        trainer.add_event_handler(event, lambda e: means.append(e.network[1].running_mean.clone()))
    trainer.run()
    start, after1, after2 = means[0], means[1], means[3]
    assert torch.allclose(ema.ema_network[1].running_mean, 0.5 * (0.5 * start + 0.5 * after1) + 0.5 * after2, atol=1e-6)


def test_teacher_logits_reach_the_loss():
    net = _network()
    ema = EMATeacher(net, decay=0.9)
    loss = RecordingBCE()
    trainer = _trainer(net, loss, [ema], lr=0.1)
    expected = []

    def _independent_teacher(engine):  # eval-mode forward of a copy of the EMA network as it is at this forward
        with torch.no_grad():
            expected.append(copy.deepcopy(ema.ema_network).eval()(engine.state.output["image"]))

    trainer.add_event_handler(IterationEvents.FORWARD_COMPLETED, _independent_teacher)
    trainer.run()
    assert len(loss.received) == 2 and all(r is not None for r in loss.received)
    for got, want in zip(loss.received, expected):
        assert not got.requires_grad
        assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(loss.received[1], expected[0][:3], atol=1e-3)  # second batch, updated EMA
    # the first teacher forward uses the initial weights: eval-mode output of the untrained network
    with torch.no_grad():
        first = _network().eval()(torch.stack([_datalist()[i]["image"] for i in range(3)]))
    assert torch.allclose(loss.received[0], first, atol=1e-6)


def test_predict_in_eval_mode_leaves_running_statistics_and_mode_alone():
    net = _network()
    ema = EMATeacher(net)
    ema.reset()
    before = ema.ema_network[1].running_mean.clone()
    ema.ema_network.train()
    ema.predict(torch.randn(4, NUM_FEATURES, generator=torch.Generator().manual_seed(2)))
    assert torch.equal(ema.ema_network[1].running_mean, before)
    assert ema.ema_network.training  # mode restored
    official = EMATeacher(net, teacher_mode="train")
    official.reset()
    official.predict(torch.randn(4, NUM_FEATURES, generator=torch.Generator().manual_seed(2)))
    assert not torch.equal(official.ema_network[1].running_mean, before)  # batch statistics, as the official code


def test_gradient_accumulation_updates_once_per_optimizer_step():
    net = _network()
    ema = EMATeacher(net, decay=0.5, output_key=None)
    trainer = _trainer(net, torch.nn.BCEWithLogitsLoss(reduction="none"), [ema], accumulation_steps=2)
    snaps = _snapshots(trainer)
    trainer.run()
    assert ema.num_updates == 1
    for name, ema_p in ema.ema_network.named_parameters():
        assert torch.allclose(snaps[1][name], snaps[0][name])  # no step after the first half-batch
        assert torch.allclose(ema_p, 0.5 * snaps[0][name] + 0.5 * snaps[2][name], atol=1e-6)


def test_nvum_official_mode_memory_fed_by_teacher_through_trainer():
    net = _network()
    ema = EMATeacher(net, decay=0.99)
    loss = NVUMLoss(NUM_ITEMS, NUM_CLASSES, PRIOR, mode="official", mix_memory=False, reduction="none")
    teacher_logits = []
    trainer = _trainer(net, loss, [ema], lr=0.1)
    trainer.add_event_handler(
        IterationEvents.LOSS_COMPLETED, lambda e: teacher_logits.append(e.state.output["memory_logits"])
    )
    trainer.run()
    log_pi = torch.log(torch.tensor(PRIOR) + 1e-12)
    expected = 0.1 * (torch.cat(teacher_logits) - log_pi)  # every sample visited once, from a zero memory
    assert torch.allclose(loss.memory, expected, atol=1e-6)
    assert loss.num_updates.tolist() == [1] * NUM_ITEMS


def test_state_dict_round_trip_and_no_reset_after_loading(tmp_path):
    net = _network()
    ema = EMATeacher(net, decay=0.5, output_key=None)
    _trainer(net, torch.nn.BCEWithLogitsLoss(reduction="none"), [ema]).run()
    torch.save({"ema": ema.state_dict()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)["ema"]
    assert int(state["num_updates"]) == 2

    other_net = _network()
    restored = EMATeacher(other_net, decay=0.5, output_key=None)
    restored.load_state_dict(state)
    for (k, a), b in zip(restored.ema_network.state_dict().items(), ema.ema_network.state_dict().values()):
        assert torch.equal(a, b), k
    # the first ITERATION_STARTED must not overwrite the loaded EMA with the network's weights
    restored._on_iteration_started(None)
    assert torch.equal(restored.ema_network[0].weight, ema.ema_network[0].weight)
    assert not torch.equal(restored.ema_network[0].weight, other_net[0].weight)
    with pytest.raises(KeyError, match=r"misses \['num_updates'\]"):
        restored.load_state_dict({"ema_network": state["ema_network"]})


def test_checkpoint_saver_and_loader(tmp_path):
    net = _network()
    ema = EMATeacher(net, output_key=None)
    ema.reset()
    with torch.no_grad():
        ema.ema_network[0].weight.fill_(0.25)
    saver = Engine(lambda engine, batch: None)
    CheckpointSaver(str(tmp_path), save_dict={"ema": ema}, save_final=True).attach(saver)
    saver.run([0], max_epochs=1)
    (path,) = tmp_path.glob("*.pt")
    restored = EMATeacher(_network(), output_key=None)
    loader = Engine(lambda engine, batch: None)
    CheckpointLoader(str(path), load_dict={"ema": restored}).attach(loader)
    loader.run([0], max_epochs=1)
    assert restored.initialised and bool((restored.ema_network[0].weight == 0.25).all())


def test_unwraps_data_parallel_and_checks_structure():
    net = _network()
    ema = EMATeacher(torch.nn.DataParallel(net), output_key=None)
    assert ema.network is net and isinstance(ema.ema_network, torch.nn.Sequential)
    with pytest.raises(ValueError, match="network and ema_network parameters differ"):
        EMATeacher(net, ema_network=torch.nn.Linear(NUM_FEATURES, NUM_CLASSES))
    with pytest.raises(ValueError, match=r"decay must lie in \[0, 1\)"):
        EMATeacher(net, decay=1.0)
    bare = Engine(lambda engine, batch: None)
    EMATeacher(net, output_key=None).attach(bare)
    with pytest.raises(ValueError, match="pass optimizer= or attach it to a MONAI trainer"):
        bare.run([0], max_epochs=1)
    with pytest.raises(ValueError, match="teacher_mode|val"):
        EMATeacher(net, teacher_mode="val")
    assert math.isclose(EMATeacher(net).decay, 0.99)


def test_evaluation_network_is_the_ema_or_the_unwrapped_trained_network():
    net = _network()
    ema = EMATeacher(torch.nn.DataParallel(net), output_key=None)
    assert ema.evaluation_network() is ema.ema_network and ema.evaluation_network(True) is ema.ema_network
    assert ema.evaluation_network(False) is net  # the module, not the DataParallel wrapper
