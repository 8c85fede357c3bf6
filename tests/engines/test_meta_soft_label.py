# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Meta soft-label learning: the virtual step, the label gradient identity, one trainer iteration against an
independent ``torch.func`` computation, warm-up, the label network mode, baselines and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad
from torch.utils.data import DataLoader

from monai_ext.engines import MetaSoftLabelTrainer, SoftLabelStore
from monai_ext.engines.virtual_step import functional_forward, virtual_sgd_parameters
from monai_ext.losses.soft_label import prediction_entropy, soft_label_kl
from monai_ext.networks import LabelNetwork

D, H, C = 5, 7, 3


class MLP(nn.Module):
    def __init__(self, batch_norm: bool = False) -> None:
        super().__init__()
        self.hidden = nn.Linear(D, H)
        self.norm = nn.BatchNorm1d(H) if batch_norm else nn.Identity()
        self.fc = nn.Linear(H, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.norm(self.hidden(x))))


def _official_kl(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MSLG ``criterion_meta``: mean over B x C of f (log f - log y)."""
    return torch.mean(torch.softmax(logits, 1) * (torch.log_softmax(logits, 1) - torch.log(y + 1e-10)))


def test_label_gradient_identity_float64():
    """d L_meta / d y_ik = alpha / (B C) < grad_theta f_k(x_i), grad_theta L_meta(theta_hat) > to 1e-8."""
    torch.manual_seed(0)
    net = MLP().double()
    b, alpha = 4, 0.5
    x, xm, ym = torch.randn(b, D).double(), torch.randn(6, D).double(), torch.tensor([0, 1, 2, 0, 1, 2])
    y_hat = torch.randn(b, C).double().requires_grad_(True)  # moderate logits: soft labels >> 1e-10
    virtual = soft_label_kl(net(x), torch.softmax(y_hat, 1)).mean()
    fast = virtual_sgd_parameters(net, virtual, alpha)
    meta = F.cross_entropy(functional_forward(net, fast, xm), ym)
    (autograd_dy,) = torch.autograd.grad(meta, y_hat)

    params = dict(net.named_parameters())
    theta_hat = {k: v.detach() for k, v in fast.items()}
    g_meta = grad(lambda p: F.cross_entropy(functional_call(net, p, (xm,)), ym))(theta_hat)
    expected = torch.zeros(b, C, dtype=torch.float64)
    for i in range(b):
        for k in range(C):
            g_f = grad(lambda p, i=i, k=k: torch.softmax(functional_call(net, p, (x,)), 1)[i, k])(
                {n: v.detach() for n, v in params.items()}
            )
            expected[i, k] = alpha / (b * C) * sum((g_f[n] * g_meta[n]).sum() for n in params)
    assert torch.allclose(autograd_dy, expected, rtol=1e-8, atol=1e-14)
    assert autograd_dy.abs().max() > 1e-6  # second order: not vanishing


def test_first_order_approximation_would_give_no_label_gradient():
    torch.manual_seed(1)
    net = MLP().double()
    x, xm, ym = torch.randn(3, D).double(), torch.randn(3, D).double(), torch.tensor([0, 1, 2])
    y_hat = torch.randn(3, C).double().requires_grad_(True)
    virtual = soft_label_kl(net(x), torch.softmax(y_hat, 1)).mean()
    grads = torch.autograd.grad(virtual, list(net.parameters()), create_graph=False)
    fast = {n: p - 0.5 * g for (n, p), g in zip(net.named_parameters(), grads)}
    meta = F.cross_entropy(functional_call(net, fast, (xm,)), ym)
    assert not meta.requires_grad or torch.autograd.grad(meta, y_hat, allow_unused=True)[0] is None


def test_virtual_forward_uses_batch_statistics_and_leaves_running_stats_alone():
    torch.manual_seed(2)
    net = MLP(batch_norm=True)
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(8, D) * 3 + 1
    params = {n: p.detach() for n, p in net.named_parameters()}
    out = functional_forward(net, params, x)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not net.training  # mode restored
    net.train()
    reference = net(x)  # train mode: batch statistics (this call updates the stats, which is fine here)
    assert torch.allclose(out, reference, atol=1e-6)


# ---- trainer --------------------------------------------------------------------------------------------------


def _datalist(n: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=g)
    labels = torch.randint(0, C, (n,), generator=g)
    return [
        {"image": x[i], "label": int(labels[i]), "index": i, "annotator_labels": [int(labels[i]), (i % C), -1]}
        for i in range(n)
    ]


def _loader(items: list[dict], batch_size: int) -> DataLoader:
    return DataLoader(items, batch_size=batch_size, shuffle=False)


def _trainer(net, items, meta_items, epochs=1, warmup=0, lr=0.1, **kwargs) -> MetaSoftLabelTrainer:
    store = kwargs.pop("soft_labels", None) or SoftLabelStore(items, C)
    return MetaSoftLabelTrainer(
        device="cpu",
        max_epochs=epochs,
        train_data_loader=_loader(items, kwargs.pop("batch_size", len(items))),
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=lr),
        loss_function=nn.CrossEntropyLoss(reduction="none"),
        soft_labels=store,
        meta_data_loader=_loader(meta_items, kwargs.pop("meta_batch_size", len(meta_items))),
        warmup_epochs=warmup,
        **kwargs,
    )


def test_one_meta_iteration_equals_independent_computation():
    torch.manual_seed(3)
    net = MLP()
    theta0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    items, meta_items = _datalist(6), _datalist(4, seed=9)
    alpha, beta, lr, k = 0.5, 40.0, 0.1, 10.0
    trainer = _trainer(net, items, meta_items, alpha=alpha, beta=beta, lr=lr, decollate=False)
    trainer.run()

    x = torch.stack([it["image"] for it in items])
    xm = torch.stack([it["image"] for it in meta_items])
    ym = torch.tensor([it["label"] for it in meta_items])
    y0 = k * F.one_hot(torch.tensor([it["label"] for it in items]), C).float()

    def meta_of_y(y):
        g = grad(lambda p: _official_kl(functional_call(net, p, (x,)), torch.softmax(y, 1)))(theta0)
        return F.cross_entropy(functional_call(net, {n: theta0[n] - alpha * g[n] for n in theta0}, (xm,)), ym)

    y1 = y0 - beta * grad(meta_of_y)(y0)
    assert torch.allclose(trainer.soft_labels.label_logits, y1, atol=1e-5)
    assert trainer.soft_labels.num_updates.tolist() == [1] * 6
    assert not torch.allclose(y1, y0)  # the labels moved

    def conventional(p):
        logits = functional_call(net, p, (x,))
        return _official_kl(logits, torch.softmax(y1, 1)) + torch.mean(
            -torch.softmax(logits, 1) * torch.log_softmax(logits, 1)
        )

    g = grad(conventional)(theta0)
    for n, p in net.named_parameters():
        assert torch.allclose(p.detach(), theta0[n] - lr * g[n], atol=1e-6), n
    out = trainer.state.output
    assert out["loss_per_sample"].shape == (6,) and out["soft_label"].shape == (6, C)
    assert float(out["meta_loss"]) > 0


def test_warmup_trains_cross_entropy_and_keeps_initial_labels():
    torch.manual_seed(4)
    net = MLP()
    items, meta_items = _datalist(8), _datalist(3, seed=5)
    theta0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    trainer = _trainer(net, items, meta_items, epochs=1, warmup=1, lr=0.1)
    trainer.run()
    x, y = torch.stack([it["image"] for it in items]), torch.tensor([it["label"] for it in items])
    g = grad(lambda p: F.cross_entropy(functional_call(net, p, (x,)), y))(theta0)
    for n, p in net.named_parameters():
        assert torch.allclose(p.detach(), theta0[n] - 0.1 * g[n], atol=1e-6)
    store = trainer.soft_labels
    assert torch.equal(store.label_logits, 10.0 * F.one_hot(y, C).float())
    assert int(store.num_updates.sum()) == 0
    assert not trainer.in_meta_stage(1) and trainer.in_meta_stage(2)


def test_annotator_average_baseline_trains_on_the_readings_average():
    torch.manual_seed(5)
    net = MLP()
    items = _datalist(6)
    theta0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    trainer = _trainer(net, items, items[:2], method="annotator_average", lr=0.1)
    trainer.run()
    x = torch.stack([it["image"] for it in items])
    q = torch.zeros(6, C)
    for i, it in enumerate(items):
        read = [v for v in it["annotator_labels"] if v >= 0]
        for v in read:
            q[i, v] += 1 / len(read)
    g = grad(lambda p: torch.mean(-(q * torch.log_softmax(functional_call(net, p, (x,)), 1)).sum(1)))(theta0)
    for n, p in net.named_parameters():
        assert torch.allclose(p.detach(), theta0[n] - 0.1 * g[n], atol=1e-6)
    assert torch.allclose(trainer.soft_labels.annotator_average, q)


def test_label_network_mode_snapshots_warmup_network_and_updates_only_the_linear_layer():
    torch.manual_seed(6)
    net = MLP()
    items, meta_items = _datalist(8), _datalist(4, seed=2)
    label_net = LabelNetwork(net, C, feature_layer="fc")
    label_opt = torch.optim.Adam(label_net.linear.parameters(), lr=1e-2)
    trainer = _trainer(
        net, items, meta_items, epochs=2, warmup=1, label_source="network", label_network=label_net,
        label_optimizer=label_opt, batch_size=4,
    )  # fmt: skip
    snapshots = {}

    @trainer.on(__import__("ignite").engine.Events.EPOCH_COMPLETED(once=1))
    def _keep(engine):
        snapshots["net"] = {k: v.clone() for k, v in net.state_dict().items()}
        snapshots["linear"] = {k: v.clone() for k, v in label_net.linear.state_dict().items()}

    trainer.run()
    assert bool(label_net.encoder_ready)
    for k, v in label_net.encoder.state_dict().items():
        assert torch.equal(v, snapshots["net"][k]), k  # the frozen copy = the network after warm-up
    assert not any(p.requires_grad for p in label_net.encoder.parameters())
    assert not torch.equal(label_net.linear.weight, snapshots["linear"]["weight"])
    # the stored rows are the label network's log-probabilities of the last visit
    x = torch.stack([it["image"] for it in items])
    with torch.no_grad():
        expected = torch.softmax(label_net(label_net.features(x)), 1)
    assert torch.allclose(trainer.soft_labels.soft_labels()[4:], expected[4:], atol=1e-6)
    assert trainer.soft_labels.num_updates.tolist() == [1] * 8


def test_features_are_the_classifier_input():
    net = MLP()
    label_net = LabelNetwork(net, C)
    label_net.snapshot(net)
    x = torch.randn(3, D)
    assert torch.allclose(label_net.features(x), torch.tanh(net.hidden(x)))
    with pytest.raises(ValueError, match="not a layer"):
        LabelNetwork(net, C, feature_layer="classifier")


def test_nan_in_the_batch_is_reported_with_its_dataset_index():
    net = MLP()
    items, meta_items = _datalist(4), _datalist(3, seed=1)
    items[2]["image"] = torch.full((D,), float("nan"))
    trainer = _trainer(net, items, meta_items)
    with pytest.raises(FloatingPointError, match=r"dataset index 2\b"):
        trainer.run()
    assert int(trainer.soft_labels.num_updates.sum()) == 0  # nothing written


def test_bad_setups_are_refused():
    net, items = MLP(), _datalist(4)
    with pytest.raises(ValueError, match="meta_data_loader"):
        MetaSoftLabelTrainer(
            device="cpu", max_epochs=1, train_data_loader=_loader(items, 2), network=net,
            optimizer=torch.optim.SGD(net.parameters(), lr=0.1), loss_function=nn.CrossEntropyLoss(reduction="none"),
            soft_labels=SoftLabelStore(items, C), warmup_epochs=0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="label_network"):
        _trainer(net, items, items, label_source="network")
    with pytest.raises(ValueError, match="warmup_epochs"):
        _trainer(net, items, items, warmup=3, epochs=2)
    with pytest.raises(ValueError):
        _trainer(net, items, items, method="mixup")


def test_store_checks_and_checkpoint_round_trip(tmp_path):
    items = _datalist(5)
    store = SoftLabelStore(items, C, init_scale=10)
    store.write(torch.tensor([1, 3]), torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    torch.save(store.state_dict(), tmp_path / "s.pt")
    fresh = SoftLabelStore(items, C)
    fresh.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert torch.equal(fresh.label_logits, store.label_logits) and fresh.num_updates.tolist() == [0, 1, 0, 1, 0]
    assert torch.allclose(fresh.soft_labels()[3], torch.full((C,), 1 / 3))
    with pytest.raises(ValueError, match="same training datalist"):
        SoftLabelStore(_datalist(6), C).load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    with pytest.raises(IndexError, match="out of range"):
        store.rows(torch.tensor([5]))
    with pytest.raises(FloatingPointError, match=r"\[4\]"):
        store.write(torch.tensor([4]), torch.tensor([[float("nan"), 0.0, 0.0]]))
    bad = [dict(it) for it in items]
    bad[2]["label"] = 7
    with pytest.raises(ValueError, match=r"training item 2 .*outside \[0, 3\)"):
        SoftLabelStore(bad, C)
    bad[2]["label"], bad[3]["index"] = 1, 9
    with pytest.raises(ValueError, match="assign_indices"):
        SoftLabelStore(bad, C)


def test_loss_terms_used_by_the_trainer_match_eq4():
    logits, y = torch.randn(4, C), torch.softmax(torch.randn(4, C), 1)
    eq4 = _official_kl(logits, y) + torch.mean(-torch.softmax(logits, 1) * torch.log_softmax(logits, 1))
    ours = (soft_label_kl(logits, y) + prediction_entropy(logits)).mean()
    assert torch.allclose(ours, eq4, atol=1e-7)


def test_every_epoch_starts_a_fresh_meta_pass():
    """3 meta batches per pass, 2 iterations per epoch: epoch 2 starts again at meta batch 0 (so a run resumed from
    the epoch-1 checkpoint draws the same meta batches), instead of continuing with batch 2."""
    torch.manual_seed(6)
    items, meta_items = _datalist(4), _datalist(3, seed=7)
    trainer = _trainer(MLP(), items, meta_items, epochs=2, batch_size=2, meta_batch_size=1)
    drawn = []
    original = trainer._next_meta_batch

    def record(engine):
        inputs, targets = original(engine)
        drawn.append(next(i for i, it in enumerate(meta_items) if torch.equal(it["image"], inputs[0])))
        return inputs, targets

    trainer._next_meta_batch = record
    trainer.run()
    assert drawn == [0, 1, 0, 1]


def test_store_for_500k_samples_reads_writes_and_checkpoints_rows():
    n = 500_000
    items = [{"index": i, "label": i % C, "annotator_labels": [i % C, (i + 1) % C, -1]} for i in range(n)]
    store = SoftLabelStore(items, C)
    assert store.label_logits.shape == (n, C) and store.label_logits.dtype == torch.float32
    assert torch.allclose(
        store.annotator_average[n - 1], torch.tensor([0.0, 0.5, 0.5])
    )  # readings (n-1) % 3 = 1, n % 3 = 2
    index = torch.tensor([0, n - 1, 12345])
    store.write(index, torch.ones(3, C))
    assert int(store.num_updates.sum()) == 3 and torch.equal(store.rows(index), torch.ones(3, C))
    nbytes = sum(b.numel() * b.element_size() for b in store.buffers())
    assert nbytes <= 90 * n  # about 88 bytes per sample with C = 3


@pytest.mark.parametrize("label_source", ["per_sample", "network"])
@pytest.mark.parametrize("reduction", ["elements", "samples"])
def test_jvp_label_gradient_equals_double_backward(label_source, reduction):
    """The forward-mode closed form gives the double backward's labels and weights (float64, BatchNorm network)."""
    results = []
    for mode in ("double_backward", "jvp"):
        torch.manual_seed(7)
        net = MLP(batch_norm=True).double()
        items = _datalist(8)
        for it in items:
            it["image"] = it["image"].double()
        meta_items = [dict(it, image=it["image"].double()) for it in _datalist(4, seed=3)]
        label_net = LabelNetwork(net, C).double()
        trainer = _trainer(
            net, items, meta_items, epochs=2, warmup=0, batch_size=4, beta=300.0, label_source=label_source,
            label_network=label_net, label_optimizer=torch.optim.SGD(label_net.linear.parameters(), lr=0.5),
            label_gradient=mode, reduction=reduction,
        )  # fmt: skip
        trainer.run()
        results.append((trainer.soft_labels.label_logits.clone(), [p.detach().clone() for p in net.parameters()]))
    (labels_a, params_a), (labels_b, params_b) = results
    assert not torch.allclose(labels_a, 10.0 * F.one_hot(trainer.soft_labels.noisy_labels, C).float())
    assert torch.allclose(labels_a, labels_b, rtol=1e-5, atol=1e-6)  # float32 store
    for a, b in zip(params_a, params_b):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)  # the float32 soft labels feed the real step
