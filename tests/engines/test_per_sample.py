# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Events
from monai.data import DataLoader, Dataset, MetaTensor
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents

from monai_ext.data.datalist import assign_indices
from monai_ext.engines.per_sample import (
    PerSampleKeys,
    PerSampleTrainer,
    batch_filenames,
    batch_index,
    loss_accepts_index,
    loss_extra_inputs,
    loss_keyword_parameters,
    per_sample_loss,
)

NUM_ITEMS, NUM_FEATURES, NUM_CLASSES = 6, 4, 3


def _datalist(nan_at: int | None = None) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(NUM_ITEMS, NUM_FEATURES, generator=g)
    labels = (torch.rand(NUM_ITEMS, NUM_CLASSES, generator=g) > 0.5).float()
    if nan_at is not None:
        images[nan_at, 0] = float("nan")
    items = [
        {
            "image": MetaTensor(images[i], meta={"filename_or_obj": f"/data/case_{i:03d}.png"}),
            "label": labels[i],
        }
        for i in range(NUM_ITEMS)
    ]
    return assign_indices(items)


def _network() -> torch.nn.Module:
    """The same initial weights at every call, drawn from an explicit generator."""
    g = torch.Generator().manual_seed(1)
    net = torch.nn.Linear(NUM_FEATURES, NUM_CLASSES)
    with torch.no_grad():
        net.weight.copy_(torch.randn(NUM_CLASSES, NUM_FEATURES, generator=g))
        net.bias.copy_(torch.randn(NUM_CLASSES, generator=g))
    return net


def _trainer(cls, datalist, net, loss, lr=0.1, batch_size=3, shuffle=False, generator=None, **kwargs):
    loader = DataLoader(Dataset(datalist), batch_size=batch_size, shuffle=shuffle, generator=generator)
    return cls(
        device="cpu",
        max_epochs=1,
        train_data_loader=loader,
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=lr),
        loss_function=loss,
        **kwargs,
    )


def _capture_outputs(trainer) -> list[dict]:
    outputs = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(dict(e.state.output)))
    return outputs


class IndexLoss(torch.nn.Module):
    """BCE with logits per element, recording the indices it receives."""

    def __init__(self):
        super().__init__()
        self.seen: list[list[int]] = []

    def forward(self, input, target, index):
        self.seen.append(index.tolist())
        return F.binary_cross_entropy_with_logits(input, target, reduction="none")


class KwargsLoss(torch.nn.Module):
    def forward(self, input, target, **kwargs):
        return input - target


class KeywordOnlyLoss(torch.nn.Module):
    def forward(self, input, target, *, index=None):
        return input - target


def _fn_with_index(pred, target, index=None):
    return pred


def _fn_without_index(pred, target):
    return pred


@pytest.mark.parametrize(
    "loss, expected",
    [
        (torch.nn.BCEWithLogitsLoss(reduction="none"), False),
        (IndexLoss(), True),
        (KwargsLoss(), False),
        (KeywordOnlyLoss(), True),
        (_fn_with_index, True),
        (_fn_without_index, False),
        (functools.partial(_fn_with_index), True),
    ],
)
def test_loss_accepts_index(loss, expected):
    assert loss_accepts_index(loss) is expected


@pytest.mark.parametrize(
    "loss_value, expected",
    [
        # B: used as is
        ([2.0, 4.0], [2.0, 4.0]),
        # B C: mean over C
        ([[1.0, 3.0], [0.0, 5.0]], [2.0, 2.5]),
        # B C H W (1 x 2 x 2): mean over 4 values
        ([[[[1.0, 2.0], [3.0, 6.0]]], [[[0.0, 0.0], [0.0, 4.0]]]], [3.0, 1.0]),
    ],
)
def test_per_sample_loss_reduces_non_batch_dims(loss_value, expected):
    pred = torch.tensor(loss_value)
    out = per_sample_loss(lambda p, t: p, pred, None, index=torch.tensor([5, 9]))
    assert out.tolist() == expected


def test_per_sample_loss_passes_index_only_to_losses_that_take_it():
    loss = IndexLoss()
    pred, target = torch.zeros(2, 3), torch.ones(2, 3)
    per_sample_loss(loss, pred, target, index=torch.tensor([7, 3]))
    assert loss.seen == [[7, 3]]
    # log(1 + e^0) = log 2 per element
    out = per_sample_loss(torch.nn.BCEWithLogitsLoss(reduction="none"), pred, target, index=torch.tensor([7, 3]))
    assert torch.allclose(out, torch.full((2,), math.log(2.0)))


def test_per_sample_loss_rejects_scalar_and_wrong_batch():
    pred, target = torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match=r'BCEWithLogitsLoss.*reduction="none"'):
        per_sample_loss(torch.nn.BCEWithLogitsLoss(), pred, target, index=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(6,\) but the batch holds 2 samples"):
        per_sample_loss(lambda p, t: (p - t).reshape(-1), pred, target, index=torch.tensor([0, 1]))


def test_per_sample_loss_non_finite_names_index_and_file():
    pred = torch.tensor([[0.0], [float("inf")], [float("nan")]])
    with pytest.raises(FloatingPointError, match="2 of 3 samples") as err:
        per_sample_loss(
            lambda p, t: p, pred, None, index=torch.tensor([10, 11, 12]), filenames=["/a.png", "/b.png", "/c.png"]
        )
    msg = str(err.value)
    assert "dataset index 11, file '/b.png'" in msg and "dataset index 12, file '/c.png'" in msg
    assert "dataset index 10" not in msg
    assert "learning rate" in msg and "set_detect_anomaly" in msg


def test_batch_index_and_filenames():
    batch = {"image": MetaTensor(torch.zeros(2, 1), meta={"filename_or_obj": ["/x.png", "/y.png"]}), "index": [3, 1]}
    index = batch_index(batch)
    assert index.dtype == torch.long and index.tolist() == [3, 1]
    assert batch_filenames(batch) == ["/x.png", "/y.png"]
    assert batch_filenames({"image": torch.zeros(2, 1)}) is None
    with pytest.raises(TypeError, match="integers"):
        batch_index({"index": torch.tensor([0.0, 1.0])})
    with pytest.raises(TypeError, match="dictionary batches"):
        batch_index((torch.zeros(2), torch.zeros(2)))


def test_trainer_per_sample_losses_match_independent_computation():
    datalist = _datalist()
    net = _network()
    net0 = copy.deepcopy(net)
    trainer = _trainer(
        PerSampleTrainer, datalist, net, torch.nn.BCEWithLogitsLoss(reduction="none"), lr=0.0, decollate=False
    )
    outputs = _capture_outputs(trainer)
    trainer.run()
    assert len(outputs) == 2
    for out, rows in zip(outputs, ([0, 1, 2], [3, 4, 5])):
        expected = torch.stack(
            [
                F.binary_cross_entropy_with_logits(net0(datalist[i]["image"].as_tensor()), datalist[i]["label"]).mean()
                for i in rows
            ]
        )
        assert out[PerSampleKeys.INDEX].dtype == torch.long
        assert out[PerSampleKeys.INDEX].tolist() == rows
        assert not out[PerSampleKeys.LOSS_PER_SAMPLE].requires_grad
        assert torch.allclose(out[PerSampleKeys.LOSS_PER_SAMPLE], expected, atol=1e-6)
        assert torch.allclose(out["loss"], expected.mean(), atol=1e-6)
        assert set(out) >= {"image", "label", "pred", "loss", "index", "loss_per_sample"}


def test_trainer_gradients_match_supervised_trainer_with_mean_loss():
    datalist = _datalist()
    net_a, net_b = _network(), _network()
    grads = {}
    trainers = {
        "per_sample": _trainer(
            PerSampleTrainer, datalist, net_a, torch.nn.BCEWithLogitsLoss(reduction="none"), batch_size=NUM_ITEMS
        ),
        "supervised": _trainer(SupervisedTrainer, datalist, net_b, torch.nn.BCEWithLogitsLoss(), batch_size=NUM_ITEMS),
    }
    for name, trainer in trainers.items():
        trainer.add_event_handler(
            IterationEvents.BACKWARD_COMPLETED,
            lambda e, name=name: grads.__setitem__(name, [p.grad.clone() for p in e.network.parameters()]),
        )
        trainer.run()
    assert any(g.abs().sum() > 0 for g in grads["supervised"])
    for ga, gb in zip(grads["per_sample"], grads["supervised"]):
        assert torch.allclose(ga, gb, atol=1e-7)
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-7)


def test_trainer_fires_the_four_iteration_events_in_order():
    trainer = _trainer(PerSampleTrainer, _datalist(), _network(), torch.nn.BCEWithLogitsLoss(reduction="none"))
    fired = []
    for event in (
        IterationEvents.FORWARD_COMPLETED,
        IterationEvents.LOSS_COMPLETED,
        IterationEvents.BACKWARD_COMPLETED,
        IterationEvents.MODEL_COMPLETED,
    ):
        trainer.add_event_handler(event, lambda e, ev=event: fired.append(ev.name))
    trainer.run()
    assert fired == ["FORWARD_COMPLETED", "LOSS_COMPLETED", "BACKWARD_COMPLETED", "MODEL_COMPLETED"] * 2


def test_loss_with_index_receives_exactly_the_batch_indices():
    loss = IndexLoss()
    trainer = _trainer(
        PerSampleTrainer,
        _datalist(),
        _network(),
        loss,
        batch_size=4,
        shuffle=True,
        generator=torch.Generator().manual_seed(3),
    )
    batch_indices = []
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda e: batch_indices.append(e.state.batch["index"].tolist()))
    trainer.run()
    assert loss.seen == batch_indices
    assert [len(b) for b in loss.seen] == [4, 2]
    assert sorted(sum(loss.seen, [])) == list(range(NUM_ITEMS))


def test_trainer_scalar_loss_raises():
    trainer = _trainer(PerSampleTrainer, _datalist(), _network(), torch.nn.BCEWithLogitsLoss())
    with pytest.raises(ValueError, match=r'reduction="none"'):
        trainer.run()


def test_trainer_nan_raises_with_index_and_file_name():
    trainer = _trainer(PerSampleTrainer, _datalist(nan_at=4), _network(), torch.nn.BCEWithLogitsLoss(reduction="none"))
    with pytest.raises(FloatingPointError, match=r"dataset index 4, file '/data/case_004\.png'"):
        trainer.run()


def test_trainer_missing_index_raises_key_error():
    datalist = [{k: v for k, v in item.items() if k != "index"} for item in _datalist()]
    trainer = _trainer(PerSampleTrainer, datalist, _network(), torch.nn.BCEWithLogitsLoss(reduction="none"))
    with pytest.raises(KeyError, match="assign_indices"):
        trainer.run()


def test_trainer_gradient_accumulation_steps_like_supervised_trainer():
    datalist = _datalist()
    net_a, net_b = _network(), _network()
    _trainer(
        PerSampleTrainer,
        datalist,
        net_a,
        torch.nn.BCEWithLogitsLoss(reduction="none"),
        batch_size=3,
        accumulation_steps=2,
    ).run()
    # one step on the mean of the two half-batch means == one full-batch step of a mean loss
    _trainer(SupervisedTrainer, datalist, net_b, torch.nn.BCEWithLogitsLoss(), batch_size=NUM_ITEMS).run()
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6)


# ---- extra loss inputs from engine.state.output ----------------------------------------------------------------


class MemoryLogitsLoss(torch.nn.Module):
    """BCE per element that records the index and memory_logits it receives."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple] = []

    def forward(self, input, target, index=None, memory_logits=None):
        self.seen.append((None if index is None else index.tolist(), memory_logits))
        return F.binary_cross_entropy_with_logits(input, target, reduction="none")


@pytest.mark.parametrize(
    "loss, expected",
    [
        (MemoryLogitsLoss(), {"self", "input", "target", "index", "memory_logits"}),
        (KwargsLoss(), {"self", "input", "target"}),
        (KeywordOnlyLoss(), {"self", "input", "target", "index"}),
        (_fn_with_index, {"pred", "target", "index"}),
    ],
)
def test_loss_keyword_parameters(loss, expected):
    assert loss_keyword_parameters(loss) == expected


def test_loss_extra_inputs_passes_only_named_non_reserved_entries():
    output = {"image": 1, "label": 2, "pred": 3, "loss": 4, "index": 5, "memory_logits": 6, "other": 7}
    assert loss_extra_inputs(MemoryLogitsLoss(), output) == {"memory_logits": 6}
    assert loss_extra_inputs(KwargsLoss(), output) == {}  # **kwargs does not ask for anything
    assert loss_extra_inputs(MemoryLogitsLoss(), [output]) == {}


def test_per_sample_loss_passes_extra_only_when_the_loss_takes_it():
    pred, target = torch.zeros(2, 3), torch.ones(2, 3)
    loss = MemoryLogitsLoss()
    teacher = torch.full((2, 3), 0.5)
    per_sample_loss(loss, pred, target, index=torch.tensor([4, 2]), extra={"memory_logits": teacher, "x": 1})
    assert loss.seen[0][0] == [4, 2] and loss.seen[0][1] is teacher
    out = per_sample_loss(torch.nn.BCEWithLogitsLoss(reduction="none"), pred, target, extra={"memory_logits": teacher})
    assert torch.allclose(out, torch.full((2,), math.log(2.0)))


def test_trainer_forwards_a_handler_output_entry_to_the_loss():
    loss = MemoryLogitsLoss()
    trainer = _trainer(PerSampleTrainer, _datalist(), _network(), loss, decollate=False)
    written = []

    def _teacher(engine):  # what monai_ext.handlers.ema.EMATeacher does at FORWARD_COMPLETED
        logits = engine.state.output["pred"].detach() * 2
        engine.state.output["memory_logits"] = logits
        written.append(logits)

    trainer.add_event_handler(IterationEvents.FORWARD_COMPLETED, _teacher)
    trainer.run()
    assert [s[0] for s in loss.seen] == [[0, 1, 2], [3, 4, 5]]
    assert all(s[1] is w for s, w in zip(loss.seen, written))
    # without the handler the loss gets its default
    plain = MemoryLogitsLoss()
    _trainer(PerSampleTrainer, _datalist(), _network(), plain).run()
    assert [s[1] for s in plain.seen] == [None, None]


def test_trainer_backpropagates_the_weighted_mean_and_records_raw_losses():
    """A FORWARD_COMPLETED handler's ``loss_weight`` makes the trainer back-propagate mean(w * l); the recorded
    per-sample losses stay unweighted."""
    datalist = _datalist()
    net = _network()
    net0 = copy.deepcopy(net)
    weights_by_index = torch.tensor([1.0, 0.0, 0.5, 0.25, 1.0, 0.0])
    trainer = _trainer(PerSampleTrainer, datalist, net, torch.nn.BCEWithLogitsLoss(reduction="none"),
                       batch_size=NUM_ITEMS, lr=0.0, decollate=False)  # fmt: skip

    def _weights(engine):  # what monai_ext.handlers.SelfPacedLossWeights does
        engine.state.output[PerSampleKeys.LOSS_WEIGHT] = weights_by_index[engine.state.output["index"]]

    grads = []
    trainer.add_event_handler(IterationEvents.FORWARD_COMPLETED, _weights)
    trainer.add_event_handler(
        IterationEvents.BACKWARD_COMPLETED, lambda e: grads.append([p.grad.clone() for p in e.network.parameters()])
    )
    outputs = _capture_outputs(trainer)
    trainer.run()
    images = torch.stack([item["image"].as_tensor() for item in datalist])
    labels = torch.stack([item["label"] for item in datalist])
    raw = F.binary_cross_entropy_with_logits(net0(images), labels, reduction="none").mean(dim=1)
    hand = (weights_by_index * raw).mean()
    hand.backward()
    for got, want in zip(grads[0], [p.grad for p in net0.parameters()]):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(outputs[0]["loss"].detach(), hand.detach())
    torch.testing.assert_close(outputs[0][PerSampleKeys.LOSS_PER_SAMPLE], raw.detach())  # unweighted


def test_trainer_refuses_loss_weights_of_the_wrong_shape():
    trainer = _trainer(PerSampleTrainer, _datalist(), _network(), torch.nn.BCEWithLogitsLoss(reduction="none"))
    trainer.add_event_handler(
        IterationEvents.FORWARD_COMPLETED, lambda e: e.state.output.update(loss_weight=torch.ones(2))
    )
    with pytest.raises(ValueError, match=r"'loss_weight' in engine.state.output must hold one finite weight per "
                                         r"sample \(3\), got shape \(2,\)"):  # fmt: skip
        trainer.run()
