"""Tests for snippets/lightweight_cnn.py against PyTorch built-ins, loops and closed forms."""

from fractions import Fraction

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from snippets.lightweight_cnn import (
    DepthwiseSeparable,
    Inception,
    InvertedResidual,
    channel_shuffle,
    conv_macs,
    conv_params,
    counted_macs,
    depthwise_loop,
    group_reach,
    inception_macs,
    inverted_residual_macs,
    memory_access_bound,
    naive_inception_macs,
    plot_ratio,
    pointwise_einsum,
    pointwise_memory_access,
    separable_costs,
    shuffle_source,
)

SETTINGS = settings(max_examples=15, deadline=None)


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _torch_flops(module, x):
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


@SETTINGS
@given(
    g=st.integers(1, 4),
    a=st.integers(1, 4),
    b=st.integers(1, 4),
    k=st.sampled_from([1, 3, 5]),
    stride=st.integers(1, 2),
    size=st.integers(3, 9),
)
def test_conv_counts_match_numel_and_flop_counter(g, a, b, k, stride, size):
    """Analytic weights equal numel of nn.Conv2d(bias=False); MACs equal FlopCounterMode / 2."""
    c_in, c_out = g * a, g * b
    conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=g, bias=False)
    assert conv_params(c_in, c_out, k, g) == sum(p.numel() for p in conv.parameters())
    x = torch.randn(2, c_in, size, size)
    h_out = conv(x).shape[-1]
    assert 2 * 2 * conv_macs(c_in, c_out, k, h_out, h_out, g) == _torch_flops(conv, x)  # batch 2


def test_groups_must_divide_channels():
    """Channels not divisible by groups: ValueError here, as nn.Conv2d refuses them."""
    with pytest.raises(ValueError):
        conv_params(6, 4, 3, groups=4)
    with pytest.raises(ValueError):
        nn.Conv2d(6, 4, 3, groups=4)


@SETTINGS
@given(
    widths=st.lists(st.integers(1, 5), min_size=7, max_size=7),
    size=st.integers(1, 6),
    seed=st.integers(0, 99),
)
def test_inception_counts_and_branches(widths, size, seed):
    """Inception: MACs = FlopCounterMode/2 = numel·h·w; output = the four branches in F.* order."""
    c_in, c1, r3, c3, r5, c5, pp = widths
    block = Inception(c_in, c1, r3, c3, r5, c5, pp).double()
    x = _rand(2, c_in, size, size, seed=seed)
    macs = inception_macs(c_in, c1, r3, c3, r5, c5, pp, size, size)
    assert 2 * 2 * macs == _torch_flops(block, x)  # batch 2, 2 FLOPs per MAC
    assert macs == sum(p.numel() for p in block.parameters()) * size * size
    w = [m.weight for m in block.modules() if isinstance(m, nn.Conv2d)]  # b1, b3 (2), b5 (2), bp
    ref = torch.cat(
        [
            F.conv2d(x, w[0]),
            F.conv2d(F.relu(F.conv2d(x, w[1])), w[2], padding=1),
            F.conv2d(F.relu(F.conv2d(x, w[3])), w[4], padding=2),
            F.conv2d(F.max_pool2d(x, 3, 1, 1), w[5]),
        ],
        dim=1,
    ).relu()
    torch.testing.assert_close(block(x), ref)
    naive = [
        nn.Conv2d(c_in, c, k, padding=k // 2, bias=False).double()
        for c, k in ((c1, 1), (c3, 3), (c5, 5))
    ]
    flops = sum(_torch_flops(conv, x[:1]) for conv in naive)  # batch 1
    assert flops == 2 * naive_inception_macs(c_in, c1, c3, c5, size, size)


@SETTINGS
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 40),
    k=st.sampled_from([1, 3, 5, 7]),
    size=st.integers(1, 8),
)
def test_separable_ratio_is_one_over_n_plus_one_over_k2(m, n, k, size):
    """(depthwise + pointwise) / standard = 1/N + 1/k² exactly, counted and measured (bias=False)."""
    costs = separable_costs(m, n, k, size, size)
    exact = Fraction(1, n) + Fraction(1, k * k)
    assert Fraction(costs["depthwise"] + costs["pointwise"], costs["standard"]) == exact
    x = torch.randn(1, m, size, size)
    sep = counted_macs(DepthwiseSeparable(m, n, k), x)
    std = _torch_flops(nn.Conv2d(m, n, k, padding=k // 2, bias=False), x) // 2
    assert Fraction(sep, std) == exact
    params = sum(p.numel() for p in DepthwiseSeparable(m, n, k).parameters())
    assert Fraction(params, k * k * m * n) == exact


def test_bias_changes_params_not_counted_flops():
    """With bias the parameter ratio moves off 1/N + 1/k²; FlopCounterMode ignores bias adds."""
    m = n = 8
    with_bias = sum(p.numel() for p in DepthwiseSeparable(m, n, 3, bias=True).parameters())
    assert with_bias == 9 * m + m + m * n + n
    x = torch.randn(1, m, 5, 5)
    assert counted_macs(DepthwiseSeparable(m, n, 3, bias=True), x) == counted_macs(
        DepthwiseSeparable(m, n, 3), x
    )


@SETTINGS
@given(
    c=st.integers(1, 6),
    k=st.sampled_from([1, 3, 5]),
    size=st.integers(1, 7),
    seed=st.integers(0, 99),
)
def test_depthwise_equals_per_channel_python_loop(c, k, size, seed):
    """depthwise_loop and groups=C conv equal a pure-Python per-channel correlation."""
    x, w = _rand(1, c, size, size, seed=seed), _rand(c, 1, k, k, seed=seed + 1)
    p = k // 2
    xp = F.pad(x, (p, p, p, p))
    ref = torch.zeros(1, c, size, size, dtype=torch.float64)
    for ch in range(c):
        for i in range(size):
            for j in range(size):
                ref[0, ch, i, j] = (xp[0, ch, i : i + k, j : j + k] * w[ch, 0]).sum()
    torch.testing.assert_close(depthwise_loop(x, w, p), ref)
    torch.testing.assert_close(F.conv2d(x, w, padding=p, groups=c), ref)


@SETTINGS
@given(
    c_in=st.integers(1, 6), c_out=st.integers(1, 6), size=st.integers(1, 6), seed=st.integers(0, 99)
)
def test_pointwise_einsum_and_separable_module(c_in, c_out, size, seed):
    """pointwise_einsum equals a 1×1 conv; DepthwiseSeparable equals loop then matmul."""
    x, w = _rand(2, c_in, size, size, seed=seed), _rand(c_out, c_in, 1, 1, seed=seed + 1)
    torch.testing.assert_close(pointwise_einsum(x, w), F.conv2d(x, w))
    block = DepthwiseSeparable(c_in, c_out).double()
    mid = depthwise_loop(x, block.depthwise.weight, 1)
    ref = (block.pointwise.weight[:, :, 0, 0] @ mid.flatten(2)).view(2, c_out, size, size)
    torch.testing.assert_close(block(x), ref)


@SETTINGS
@given(g=st.integers(1, 6), n=st.integers(1, 6), seed=st.integers(0, 99))
def test_channel_shuffle_matches_torch_and_index_formula(g, n, seed):
    """reshape/transpose shuffle = nn.ChannelShuffle = gather by src(j); shuffling by n undoes g."""
    x = _rand(2, g * n, 3, 2, seed=seed)
    ref = nn.ChannelShuffle(g)(x)
    torch.testing.assert_close(channel_shuffle(x, g), ref, rtol=0, atol=0)
    torch.testing.assert_close(x[:, shuffle_source(g * n, g)], ref, rtol=0, atol=0)
    torch.testing.assert_close(channel_shuffle(channel_shuffle(x, g), n), x, rtol=0, atol=0)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(("channels", "groups"), [(6, 2), (6, 3), (12, 3), (8, 4)])
def test_group_reach_matches_autograd_dependency(channels, groups, shuffle):
    """group_reach equals which inputs actually move each output of two stacked 1×1 group convs."""
    torch.manual_seed(0)
    first, second = (
        nn.Conv2d(channels, channels, 1, groups=groups, bias=False).double() for _ in range(2)
    )

    def net(x):
        y = first(x)
        return second(nn.ChannelShuffle(groups)(y) if shuffle else y)

    jac = torch.autograd.functional.jacobian(net, _rand(1, channels, 1, 1))
    dependency = (jac.reshape(channels, channels).abs() > 0).int()
    assert torch.equal(group_reach(channels, groups, shuffle), dependency)
    assert bool(dependency.all()) == (shuffle and groups * groups <= channels)


@pytest.mark.parametrize(
    ("c_in", "c_out", "stride", "t", "size"),
    [(8, 8, 1, 6, 7), (8, 12, 2, 6, 8), (8, 8, 2, 6, 7), (4, 4, 1, 1, 5)],
)
def test_inverted_residual_shapes_costs_and_residual(c_in, c_out, stride, t, size):
    """Counted MACs = formula (= h·w·d'·t·(d'+k²+d'') at stride 1); residual only when shapes match."""
    block = InvertedResidual(c_in, c_out, stride, t).double().eval()
    x = _rand(1, c_in, size, size)
    out = (size - 1) // stride + 1
    assert block(x).shape == (1, c_out, out, out)
    assert counted_macs(block, x) == inverted_residual_macs(
        c_in, c_out, size, size, t, stride=stride
    )
    if stride == 1:
        assert inverted_residual_macs(c_in, c_out, size, size, t) == size * size * c_in * t * (
            c_in + 9 + c_out
        )
    assert block.use_residual == (stride == 1 and c_in == c_out)
    nn.init.zeros_(block.project[1].weight)  # branch output = BN bias = 0
    expected = x if block.use_residual else torch.zeros(1, c_out, out, out, dtype=torch.float64)
    torch.testing.assert_close(block(x), expected)


def test_projection_is_linear():
    """No ReLU after the projection: the block's branch output has negative values."""
    torch.manual_seed(0)
    block = InvertedResidual(4, 8, stride=1).eval()
    assert (block(torch.randn(1, 4, 6, 6)) < 0).any()


@SETTINGS
@given(h=st.integers(1, 8), c=st.integers(1, 12), seed=st.integers(0, 5))
def test_memory_access_minimum_at_equal_widths(h, c, seed):
    """Brute force over all c1·c2 = c² splits: minimum MAC is at c1 = c2 and equals the bound."""
    flops = h * h * c * c
    splits = [(d, c * c // d) for d in range(1, c * c + 1) if c * c % d == 0]
    costs = {pair: pointwise_memory_access(h, h, *pair) for pair in splits}
    assert min(costs.values()) == costs[(c, c)]
    assert abs(memory_access_bound(h, h, flops) - costs[(c, c)]) < 1e-9 * costs[(c, c)]
    assert all(v >= memory_access_bound(h, h, flops) - 1e-9 for v in costs.values())


def test_plot_ratio_draws_three_curves():
    """The figure has one marker series and one formula line per k."""
    fig = plot_ratio([8, 64], {3: [0.24, 0.13], 5: [0.17, 0.06], 7: [0.15, 0.04]})
    assert len(fig.axes[0].get_lines()) == 9  # markers, formula, 1/k² per k
    plt.close(fig)
