"""Tests for snippets/efficientnet.py against FlopCounterMode, sum(numel) and published numbers."""

import math

import matplotlib.pyplot as plt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.efficientnet import (
    ALPHA,
    B0_STAGES,
    BETA,
    GAMMA,
    OFFICIAL,
    TOY,
    EfficientNet,
    MBConv,
    analytic_cost,
    build_meta,
    compound,
    implied_phi,
    measured_flops,
    plot_scaling,
    round_filters,
    round_repeats,
)

SETTINGS = settings(max_examples=15, deadline=None)


@SETTINGS
@given(width=st.floats(0.5, 2.5), depth=st.floats(0.5, 3.5), res=st.integers(8, 97))
def test_closed_form_flops_equal_flop_counter(width, depth, res):
    """The layer-by-layer formula equals FlopCounterMode's total for any toy width/depth/resolution."""
    model = build_meta(width=width, depth=depth, **TOY)
    assert analytic_cost(width=width, depth=depth, resolution=res, **TOY)[0] == measured_flops(
        model, res
    )


@SETTINGS
@given(width=st.floats(0.5, 2.5), depth=st.floats(0.5, 3.5))
def test_closed_form_params_equal_numel(width, depth):
    """The formula's parameter count equals sum(p.numel()) of the built module."""
    model = build_meta(width=width, depth=depth, **TOY)
    assert analytic_cost(width=width, depth=depth, **TOY)[1] == sum(
        p.numel() for p in model.parameters()
    )


@pytest.mark.parametrize("name", ["B0", "B3", "B7"])
def test_released_models_counted_both_ways(name):
    """B0, B3, B7 at their resolutions: formula == FlopCounterMode, formula == numel."""
    width, depth, res = OFFICIAL[name]
    model = build_meta(B0_STAGES, width, depth)
    flops, params = analytic_cost(B0_STAGES, width, depth, res)
    assert flops == measured_flops(model, res)
    assert params == sum(p.numel() for p in model.parameters())


def test_matches_published_sizes():
    """torchvision's published sizes: B0 5,288,548 and B7 66,347,960 params; B7 37.75 GFLOPS (MACs)."""
    assert analytic_cost()[1] == 5_288_548
    flops, params = analytic_cost(B0_STAGES, *OFFICIAL["B7"])
    assert params == 66_347_960
    assert flops / 2 / 1e9 == pytest.approx(37.75, abs=0.01)  # torchvision counts multiply-adds


@pytest.mark.parametrize(
    ("width", "head", "stem"),
    [(1.0, 1280, 32), (1.1, 1408, 32), (1.2, 1536, 40), (1.4, 1792, 48), (1.6, 2048, 48),
     (1.8, 2304, 56), (2.0, 2560, 64)],
)  # fmt: skip
def test_round_filters_official_channels(width, head, stem):
    """Head and stem widths of the released B0/B2–B7 (torchvision's layer shapes)."""
    assert round_filters(1280, width) == head
    assert round_filters(32, width) == stem


def test_round_filters_ten_percent_rule():
    """10·1.1 = 11: nearest multiple of 8 is 8, which is < 90 % of 11, so 16."""
    assert round_filters(10, 1.1) == 16
    assert round_filters(19, 0.5) == 16  # 9.5 -> 8 would keep 84 %: still below 90 %
    assert round_filters(44, 1.0) == 48  # half rounds up
    assert round_filters(2, 1.0) == 8  # never below the divisor


@SETTINGS
@given(filters=st.integers(1, 2000), width=st.floats(0.25, 4.0))
def test_round_filters_properties(filters, width):
    """A multiple of 8, ≥ 8, ≥ 90 % of the exact width, and within one step of it."""
    exact = filters * width
    out = round_filters(filters, width)
    assert out % 8 == 0 and out >= 8
    assert out >= 0.9 * exact
    assert out <= max(8, exact + 8)


@pytest.mark.parametrize(("name", "n_blocks"), [("B0", 16), ("B4", 32), ("B7", 55)])
def test_round_repeats_block_counts(name, n_blocks):
    """Depth rounds up per stage: 16, 32 and 55 MBConv blocks in B0, B4, B7."""
    model = build_meta(B0_STAGES, *OFFICIAL[name][:2])
    assert sum(isinstance(m, MBConv) for m in model) == n_blocks
    assert sum(round_repeats(s.repeats, OFFICIAL[name][1]) for s in B0_STAGES) == n_blocks


def test_compound_and_constraint():
    """α^φ, β^φ, γ^φ by logs; α·β²·γ² = 1.92; one φ step multiplies d·w²·r² by it."""
    for phi in (0.0, 1.0, 2.5, 7.0):
        d, w, r = compound(phi)
        assert d == pytest.approx(math.exp(phi * math.log(1.2)))
        assert w == pytest.approx(math.exp(phi * math.log(1.1)))
        assert r == pytest.approx(math.exp(phi * math.log(1.15)))
    product = ALPHA * BETA**2 * GAMMA**2
    assert abs(product - 1.9203) < 1e-4


def test_released_flops_exceed_dw2r2_law():
    """Ceil on repeats outweighs the depthwise convs: every B1–B7 costs more than d·w²·r² × B0."""
    b0 = analytic_cost()[0]
    for name in ["B1", "B2", "B3", "B4", "B5", "B6", "B7"]:
        width, depth, res = OFFICIAL[name]
        law = depth * width**2 * (res / 224) ** 2
        assert analytic_cost(B0_STAGES, width, depth, res)[0] / b0 > law


def test_width_alone_grows_slower_than_square():
    """Depthwise convs, the 3-channel stem and the 1000-way classifier are linear in width."""
    base = analytic_cost()[0]
    assert 3.7 < analytic_cost(width=2.0)[0] / base < 3.8  # the page prints 3.76, not 4
    assert 3.98 < analytic_cost(resolution=448)[0] / base < 4.0  # SE and classifier only


def test_implied_phi_b7():
    """B7's depth 3.1, width 2.0, resolution 600 imply φ ≈ 6.2, 7.3, 7.0."""
    d, w, r = implied_phi(*OFFICIAL["B7"])
    assert (round(d, 1), round(w, 1), round(r, 1)) == (6.2, 7.3, 7.0)


def test_toy_runs_and_skip_connections():
    """The toy runs on real tensors; a block with stride 1 and c_in == c_out adds its input."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    assert EfficientNet(**TOY).eval()(x).shape == (2, 10)
    block = MBConv(8, 8, 3, 1, 4).eval()
    with torch.no_grad():
        block.project[1].weight.zero_()  # the residual branch now outputs BN's β = 0
        h = torch.randn(1, 8, 5, 5)
        assert torch.equal(block(h), h)
    assert not MBConv(8, 8, 3, 2, 4).skip and not MBConv(8, 16, 3, 1, 4).skip


def test_plot_has_two_panels():
    """The figure is two stacked panels (phone width)."""
    fig = plot_scaling([0, 1, 2], [1.0, 2.0, 4.0])
    assert len(fig.axes) == 2 and fig.get_figwidth() <= 5.5
    plt.close(fig)
