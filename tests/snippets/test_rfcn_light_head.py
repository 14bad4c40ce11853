"""Tests for snippets/rfcn_light_head.py: adaptive pooling, explicit Caffe-style loops, FlopCounterMode."""

import math
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from snippets.rfcn_light_head import (
    c_round,
    head_costs,
    part_maps,
    plot_costs,
    plot_part_maps,
    ps_roi_pool,
    rfcn_vote,
    roi_max_pool,
    shift_scores,
)

SETTINGS = settings(max_examples=30, deadline=None)
S = Fraction(1, 16)


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _c_round(x: Fraction) -> int:
    """C's round(): half away from zero."""
    return math.floor(x + Fraction(1, 2)) if x >= 0 else -math.floor(-x + Fraction(1, 2))


def roi_pool_loop(feat, boxes, k):
    """Fast R-CNN's roi_pooling_layer, one output at a time, in exact rational arithmetic."""
    C, H, W = feat.shape
    out = torch.zeros(len(boxes), C, k, k, dtype=feat.dtype)
    for r, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        xs, ys = _c_round(Fraction(x1) * S), _c_round(Fraction(y1) * S)
        xe, ye = _c_round(Fraction(x2) * S), _c_round(Fraction(y2) * S)
        bw, bh = Fraction(max(xe - xs + 1, 1), k), Fraction(max(ye - ys + 1, 1), k)
        for i in range(k):
            for j in range(k):
                h0 = min(max(math.floor(i * bh) + ys, 0), H)
                h1 = min(max(math.ceil((i + 1) * bh) + ys, 0), H)
                w0 = min(max(math.floor(j * bw) + xs, 0), W)
                w1 = min(max(math.ceil((j + 1) * bw) + xs, 0), W)
                if h1 > h0 and w1 > w0:
                    out[r, :, i, j] = feat[:, h0:h1, w0:w1].amax(dim=(1, 2))
    return out


def psroi_pool_loop(feat, boxes, k):
    """R-FCN's psroi_pooling kernel, one output at a time, in exact rational arithmetic."""
    Ck, H, W = feat.shape
    D = Ck // (k * k)
    out = torch.zeros(len(boxes), D, k, k, dtype=feat.dtype)
    for r, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        xs, ys = _c_round(Fraction(x1)) * S, _c_round(Fraction(y1)) * S
        xe, ye = (_c_round(Fraction(x2)) + 1) * S, (_c_round(Fraction(y2)) + 1) * S
        bw = max(xe - xs, Fraction(1, 10)) / k
        bh = max(ye - ys, Fraction(1, 10)) / k
        for d in range(D):
            for i in range(k):
                for j in range(k):
                    h0 = min(max(math.floor(i * bh + ys), 0), H)
                    h1 = min(max(math.ceil((i + 1) * bh + ys), 0), H)
                    w0 = min(max(math.floor(j * bw + xs), 0), W)
                    w1 = min(max(math.ceil((j + 1) * bw + xs), 0), W)
                    if h1 > h0 and w1 > w0:
                        out[r, d, i, j] = feat[(d * k + i) * k + j, h0:h1, w0:w1].mean()
    return out


@st.composite
def aligned(draw, plus_one):
    """A feature map and boxes on whole cells inside it; returns (H, W, k, cell boxes, pixel boxes)."""
    H, W, k = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 5))
    cells, px = [], []
    for _ in range(draw(st.integers(1, 3))):
        y0, y1 = sorted(draw(st.lists(st.integers(0, H - 1), min_size=2, max_size=2)))
        x0, x1 = sorted(draw(st.lists(st.integers(0, W - 1), min_size=2, max_size=2)))
        cells.append((x0, y0, x1, y1))
        # RoI pool: round(x2/16) = x1 cell; PS-RoI: (x2 + 1)/16 = x1 + 1 exactly
        end = (lambda c: 16 * c) if plus_one else (lambda c: 16 * (c + 1) - 1)
        px.append((16 * x0, 16 * y0, end(x1), end(y1)))
    return H, W, k, cells, torch.tensor(px, dtype=torch.float64)


@SETTINGS
@given(aligned(plus_one=True))
def test_roi_pool_equals_adaptive_max_pool_on_the_crop(case):
    """Integer-aligned RoI: RoI max pooling is adaptive_max_pool2d of the inclusive crop."""
    H, W, k, cells, px = case
    feat = _rand(3, H, W)
    got = roi_max_pool(feat, px, k=k)
    for r, (x0, y0, x1, y1) in enumerate(cells):
        ref = F.adaptive_max_pool2d(feat[:, y0 : y1 + 1, x0 : x1 + 1], k)
        torch.testing.assert_close(got[r], ref, rtol=0, atol=0)


@SETTINGS
@given(aligned(plus_one=False))
def test_psroi_pool_equals_adaptive_avg_pool_per_group(case):
    """Integer-aligned RoI: bin (i, j) is adaptive_avg_pool2d of group (i, j)'s crop, at (i, j)."""
    H, W, k, cells, px = case
    feat = _rand(2 * k * k, H, W, seed=1)
    got = ps_roi_pool(feat, px, k=k)
    for r, (x0, y0, x1, y1) in enumerate(cells):
        pooled = F.adaptive_avg_pool2d(feat[:, y0 : y1 + 1, x0 : x1 + 1], k).reshape(2, k, k, k, k)
        for i in range(k):
            for j in range(k):
                torch.testing.assert_close(got[r, :, i, j], pooled[:, i, j, i, j])


boxes_any = st.lists(
    st.tuples(*[st.integers(-40, 260)] * 4).map(
        lambda b: (b[0], b[1], b[0] + abs(b[2]) % 200, b[1] + abs(b[3]) % 200)
    ),
    min_size=1,
    max_size=4,
)


@SETTINGS
@given(boxes_any, st.integers(1, 7), st.integers(1, 12), st.integers(1, 12))
def test_roi_pool_equals_the_caffe_loop(boxes, k, H, W):
    """Any box (partly outside, tiny, half-pixel rounding): vectorized RoI pool = explicit loop."""
    feat = _rand(2, H, W, seed=2)
    b = torch.tensor(boxes, dtype=torch.float64)
    torch.testing.assert_close(
        roi_max_pool(feat, b, k=k), roi_pool_loop(feat, b, k), rtol=0, atol=0
    )


@SETTINGS
@given(boxes_any, st.integers(1, 5), st.integers(1, 12), st.integers(1, 12))
def test_psroi_pool_equals_the_caffe_loop(boxes, k, H, W):
    """Any box: vectorized PS-RoI pool = R-FCN's kernel written as loops."""
    feat = _rand(2 * k * k, H, W, seed=3)
    b = torch.tensor(boxes, dtype=torch.float64)
    torch.testing.assert_close(ps_roi_pool(feat, b, k=k), psroi_pool_loop(feat, b, k))


@SETTINGS
@given(aligned(plus_one=False), st.integers(1, 3))
def test_constant_groups_give_their_constant(case, d):
    """If group (i, j) of output d is the constant c_dij, bin (i, j) returns c_dij."""
    H, W, k, cells, px = case
    c = _rand(d, k, k, seed=4)
    feat = c[..., None, None].expand(d, k, k, H, W).reshape(d * k * k, H, W)
    got = ps_roi_pool(feat, px, k=k)
    torch.testing.assert_close(got, c.expand(len(cells), d, k, k))
    torch.testing.assert_close(rfcn_vote(got), c.mean(dim=(1, 2)).expand(len(cells), d))


def test_bin_edges_are_exact_and_tiny_boxes_are_widened():
    """Fixed boxes hypothesis rarely draws: a 29-cell RoI with k = 7, where j·(L/k) overshoots
    29 in float64 and would take one extra column; and a one-pixel box at x = 16·2 + 15, where
    only the 0.1-cell minimum width (not 1/16) reaches into the next cell."""
    k = 7
    feat = _rand(2 * k * k, 9, 40, seed=6)
    roi = torch.tensor([[0.0, 0.0, 16 * 28, 16 * 6]], dtype=torch.float64)  # cells 0..28, 0..6
    torch.testing.assert_close(
        roi_max_pool(feat, roi, k=k), roi_pool_loop(feat, roi, k), rtol=0, atol=0
    )
    ref = F.adaptive_max_pool2d(feat[:, 0:7, 0:29], k)
    torch.testing.assert_close(roi_max_pool(feat, roi, k=k)[0], ref, rtol=0, atol=0)
    boxes = torch.tensor(
        [[0.0, 0.0, 16 * 29 - 1, 16 * 7 - 1], [47.0, 47.0, 47.0, 47.0]], dtype=torch.float64
    )
    torch.testing.assert_close(ps_roi_pool(feat, boxes, k=k), psroi_pool_loop(feat, boxes, k))


def test_half_cells_round_up_like_c():
    """x·(1/16) = 2.5 is cell 3 in Caffe, while torch.round gives 2."""
    x = torch.tensor([40.0, 24.0, 8.0, -8.0], dtype=torch.float64) / 16
    assert c_round(x).tolist() == [3.0, 2.0, 1.0, -1.0]
    assert torch.round(x).tolist() == [2.0, 2.0, 0.0, -0.0]


def _count(module, x):
    with FlopCounterMode(display=False) as fc:
        module(x)
    return fc.get_total_flops() // 2  # FlopCounterMode counts a multiply-add as 2


def _bottleneck(ci, co):
    return [nn.Conv2d(ci, 512, 1), nn.Conv2d(512, 512, 3, padding=1), nn.Conv2d(512, co, 1)]


def test_head_costs_match_flop_counter():
    """The analytic MAC counts equal FlopCounterMode on the actual layers (meta tensors)."""
    h, w, n, p = 5, 6, 81, 7
    costs = head_costs(h=h, w=w, n_cls=n)
    out = n + 4 * n
    with torch.device("meta"):
        x5 = torch.empty(1, 2048, h, w)
        roi4, roi5 = torch.empty(1, 1024, p, p), torch.empty(1, 2048, p, p)
        c4 = nn.Sequential(
            *_bottleneck(1024, 2048), *_bottleneck(2048, 2048), *_bottleneck(2048, 2048)
        )
        c4_macs = (
            _count(c4, roi4)
            + _count(nn.Conv2d(1024, 2048, 1), roi4)
            + _count(nn.Linear(2048, out), torch.empty(1, 2048))
        )
        fc2 = nn.Sequential(
            nn.Flatten(), nn.Linear(p * p * 2048, 1024), nn.Linear(1024, 1024), nn.Linear(1024, out)
        )
        rfcn = nn.Sequential(nn.Conv2d(2048, 1024, 1), nn.Conv2d(1024, p * p * (n + 4), 1))
        sep = [
            nn.Conv2d(2048, 256, (15, 1), padding=(7, 0)),
            nn.Conv2d(256, 490, (1, 15), padding=(0, 7)),
        ]
        light = 2 * (_count(nn.Sequential(*sep), x5))
        light_roi = _count(
            nn.Sequential(nn.Linear(490, 2048), nn.Linear(2048, out)), torch.empty(1, 490)
        )
        assert costs["Faster R-CNN (C4)"] == (0, c4_macs)
        assert costs["Faster R-CNN (2fc)"] == (0, _count(fc2, roi5))
        assert costs["R-FCN"] == (_count(rfcn, x5), 0)
        assert costs["Light-Head R-CNN"] == (light, light_roi)


def test_shifted_box_loses_its_score():
    """On part maps the aligned box scores near 1 and a box one bin to the right near 0."""
    maps = part_maps(size=24, box=(6, 6, 18, 18), k=3, noise=0.0)
    ps, plain = shift_scores(maps, (96, 96, 287, 287), [0, 64], k=3)
    np.testing.assert_allclose(ps, [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(plain[0], 1 / 9)
    assert plain[1] > 0.5 * plain[0]


def test_figures_draw():
    """Both figures build without error and are phone-width."""
    maps = part_maps(size=24, box=(6, 6, 18, 18), k=3)
    for fig in (
        plot_part_maps(maps, (6, 6, 18, 18), k=3),
        plot_costs(head_costs(h=50, w=84), np.array([1, 10, 100])),
    ):
        assert fig.get_figwidth() <= 5.0
        plt.close(fig)
