# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import pytest
import torch
from monai.networks.layers.simplelayers import SkipConnection
from monai.networks.nets import BasicUNet, DenseNet121, UNet
from torch import nn

from monai_ext.networks import (
    FeatureTap,
    SplitBasicUNet,
    SplitDenseNet121,
    SplitFeatures,
    SplitModel,
    SplitNetwork,
    SplitUNet,
    is_split_network,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread avoids thread contention on a busy CPU (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random_init(net: nn.Module, seed: int) -> nn.Module:
    """Random weights (not MONAI's zero-bias init) so that skipped or reordered operations would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return net


def _twins(split_cls, parent_cls, **kwargs):
    split = _random_init(split_cls(**kwargs), 0)
    parent = parent_cls(**kwargs)
    parent.load_state_dict(split.state_dict())  # strict: same keys and shapes
    return split, parent


# (UNet kwargs, input shape, key shape, context shapes) worked by hand: the key is the bottom layer's output with
# channels[-1] channels at 1/prod(strides); the context holds the down layers' outputs, shallowest first.
UNET_CASES = [
    (
        dict(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,), num_res_units=0),
        (2, 1, 16, 16),
        (2, 8, 8, 8),
        [(2, 4, 8, 8)],
    ),
    (
        dict(spatial_dims=2, in_channels=3, out_channels=2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1),
        (2, 3, 32, 32),
        (2, 16, 8, 8),
        [(2, 4, 16, 16), (2, 8, 8, 8)],
    ),
    (
        dict(
            spatial_dims=2,
            in_channels=1,
            out_channels=3,
            channels=(4, 8, 16, 32),
            strides=(2, 2, 1),
            num_res_units=2,
            norm="batch",
        ),
        (3, 1, 32, 32),
        (3, 32, 8, 8),
        [(3, 4, 16, 16), (3, 8, 8, 8), (3, 16, 8, 8)],
    ),
    (
        dict(spatial_dims=3, in_channels=1, out_channels=2, channels=(2, 4, 8), strides=(2, 2), num_res_units=1),
        (1, 1, 16, 16, 16),
        (1, 8, 4, 4, 4),
        [(1, 2, 8, 8, 8), (1, 4, 4, 4, 4)],
    ),
]


@pytest.mark.parametrize("kwargs,in_shape,key_shape,context_shapes", UNET_CASES)
def test_split_unet_matches_monai_unet(kwargs, in_shape, key_shape, context_shapes):
    split, parent = _twins(SplitUNet, UNet, **kwargs)
    assert list(split.state_dict()) == list(parent.state_dict())
    x = torch.randn(in_shape, generator=torch.Generator().manual_seed(1))
    split.eval(), parent.eval()
    with torch.no_grad():
        feats = split.encode(x)
        assert tuple(feats.key.shape) == key_shape
        assert [tuple(c.shape) for c in feats.context] == context_shapes
        expected = parent(x)
        assert torch.equal(split(x), expected)
        assert torch.equal(split.decode(feats), expected)
    split.train(), parent.train()  # batch statistics and running-statistic updates follow the same operations
    with torch.no_grad():
        assert torch.equal(split(x), parent(x))
    for (name, a), (_, b) in zip(split.named_buffers(), parent.named_buffers()):
        assert torch.equal(a, b), name


def test_split_unet_gradients_match_monai_unet():
    kwargs = UNET_CASES[1][0]
    split, parent = _twins(SplitUNet, UNet, **kwargs)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    split(x).square().mean().backward()
    parent(x).square().mean().backward()
    for (name, a), (_, b) in zip(split.named_parameters(), parent.named_parameters()):
        assert torch.equal(a.grad, b.grad), name


def test_split_basic_unet_matches_monai_basic_unet():
    kwargs = dict(spatial_dims=2, in_channels=1, out_channels=2, features=(4, 4, 8, 8, 16, 4))
    split, parent = _twins(SplitBasicUNet, BasicUNet, **kwargs)
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    split.eval(), parent.eval()
    with torch.no_grad():
        feats = split.encode(x)
        assert tuple(feats.key.shape) == (2, 16, 2, 2)  # down_4: features[4] channels at 1/16
        assert [tuple(c.shape) for c in feats.context] == [(2, 4, 32, 32), (2, 4, 16, 16), (2, 8, 8, 8), (2, 8, 4, 4)]
        assert torch.equal(split(x), parent(x))
        assert torch.equal(split.decode(feats), parent(x))


def test_split_densenet121_matches_monai_densenet121():
    # init 8, growth 4, one layer per block: 8+4=12 -> 6 -> 6+4=10 -> 5 -> 5+4=9 -> 4 -> 4+4=8 channels at norm5;
    # 64 px: conv0 /2, pool /2, three transitions /2 each -> 2 px
    kwargs = dict(
        spatial_dims=2, in_channels=1, out_channels=3, init_features=8, growth_rate=4, block_config=(1, 1, 1, 1)
    )
    split, parent = _twins(SplitDenseNet121, DenseNet121, **kwargs)
    x = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(4))
    split.eval(), parent.eval()
    with torch.no_grad():
        feats = split.encode(x)
        assert tuple(feats.key.shape) == (2, 8, 2, 2)
        assert feats.context == ()
        assert torch.equal(split(x), parent(x))
        assert tuple(split(x).shape) == (2, 3)


def test_split_densenet121_default_key_has_1024_channels():
    net = SplitDenseNet121(spatial_dims=2, in_channels=1, out_channels=3).eval()
    with torch.no_grad():
        assert tuple(net.encode(torch.zeros(1, 1, 32, 32)).key.shape) == (1, 1024, 1, 1)


def test_split_model():
    encoder = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    decoder = nn.Conv2d(4, 2, 1)
    net = _random_init(SplitModel(encoder, decoder), 5).eval()
    assert sorted({k.split(".")[0] for k in net.state_dict()}) == ["decoder", "encoder"]
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        feats = net.encode(x)
        assert tuple(feats.key.shape) == (2, 4, 6, 6) and feats.context == ()
        assert torch.equal(net(x), decoder(encoder(x)))


@pytest.mark.parametrize(
    "net,expected",
    [
        (SplitUNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,)), True),
        (SplitBasicUNet(spatial_dims=2, features=(2, 2, 2, 2, 2, 2)), True),
        (SplitModel(nn.Identity(), nn.Identity()), True),
        (UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,)), False),
        (nn.Identity(), False),
        ("SplitUNet", False),
    ],
)
def test_is_split_network(net, expected):
    assert is_split_network(net) is expected
    assert isinstance(net, SplitNetwork) is expected


def test_tap_hook_sees_the_forward_features():
    net = _random_init(SplitUNet(**UNET_CASES[1][0]), 7).eval()
    seen = []
    handle = net.tap.register_forward_hook(lambda module, args, out: seen.append(out))
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        net(x)
        handle.remove()
        feats = net.encode(x)
    assert len(seen) == 1 and isinstance(seen[0], SplitFeatures)
    assert torch.equal(seen[0].key, feats.key)
    assert all(torch.equal(a, b) for a, b in zip(seen[0].context, feats.context))
    assert isinstance(net.tap, FeatureTap) and not list(net.tap.parameters())


class _AddSkipUNet(SplitUNet):
    def _get_connection_block(self, down_path, up_path, subblock):
        return nn.Sequential(down_path, SkipConnection(subblock, mode="add"), up_path)


class _FlatUNet(SplitUNet):
    def _get_connection_block(self, down_path, up_path, subblock):
        return nn.ModuleList([down_path, subblock, up_path])


@pytest.mark.parametrize(
    "cls,match", [(_AddSkipUNet, "concatenation skips, got mode='add'"), (_FlatUNet, "got ModuleList")]
)
def test_split_unet_rejects_other_block_structures(cls, match):
    with pytest.raises(TypeError, match=match):
        cls(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,))


@pytest.mark.parametrize(
    "net",
    [
        lambda: SplitUNet(spatial_dims=2, in_channels=3, out_channels=2, channels=(4, 8, 16), strides=(2, 2)),
        lambda: SplitBasicUNet(spatial_dims=2, in_channels=3, out_channels=2, features=(4, 4, 8, 8, 16, 4)),
        lambda: SplitDenseNet121(spatial_dims=2, in_channels=3, out_channels=3),
    ],
)
def test_torchscript_export_matches_the_eager_split_forward(net):
    """ckpt_export scripts the network: the scripted forward (parent's path) equals the eager split forward."""
    network = net().eval()
    x = torch.rand(2, 3, 32, 32)
    scripted = torch.jit.script(network)
    torch.testing.assert_close(scripted(x), network(x), rtol=0, atol=0)


# ---- bind_context: the skip parts of the up path computed once ---------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,in_shape",
    [
        (dict(spatial_dims=2, channels=(4, 8, 16), strides=(2, 2), num_res_units=0), (2, 1, 16, 16)),
        (dict(spatial_dims=2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1), (2, 1, 16, 16)),
        (dict(spatial_dims=2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2, norm="batch"),
         (2, 1, 32, 32)),
        (dict(spatial_dims=3, channels=(4, 8, 16), strides=(2, 1), num_res_units=1, norm="instance"), (1, 1, 8, 8, 8)),
    ],
)  # fmt: skip
def test_split_unet_bind_context_equals_decode(kwargs, in_shape):
    """Each up layer's transposed convolution of cat([skip, y]) = the skip part (once) + the key part (each call)."""
    net = _random_init(SplitUNet(in_channels=1, out_channels=3, **kwargs), 5).eval()
    x = torch.randn(in_shape, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        feats = net.encode(x)
        decode_key = net.bind_context(feats.context)
        for scale in (1.0, 0.7, 1.3):  # one binding serves many keys
            expected = net.decode(SplitFeatures(feats.key * scale, feats.context))
            atol = 1e-6 * float(expected.abs().max())  # float32 rounding of sums taken in another order
            torch.testing.assert_close(decode_key(feats.key * scale), expected, rtol=1e-5, atol=atol)
        torch.testing.assert_close(decode_key(feats.key), net(x), rtol=1e-5, atol=1e-6 * float(net(x).abs().max()))


def test_bound_decoder_uses_bind_context_or_falls_back_to_decode():
    from monai_ext.networks import bound_decoder

    unet = _random_init(SplitUNet(2, 1, 2, channels=(4, 8), strides=(2,), num_res_units=1), 7).eval()
    model = _random_init(SplitModel(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 2, 1)), 8).eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        for net in (unet, model):
            feats = net.encode(x)
            torch.testing.assert_close(bound_decoder(net, feats)(feats.key), net(x), rtol=1e-5, atol=1e-5)
