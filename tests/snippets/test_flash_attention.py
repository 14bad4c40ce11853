import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.flash_attention import (
    HBM,
    counted_io,
    flash_backward,
    flash_forward,
    paper_block_sizes,
    plot_io,
    plot_schedule,
    standard_attention,
)

SETTINGS = settings(max_examples=25, deadline=None)
shapes = dict(
    n=st.integers(1, 40),
    d=st.integers(1, 8),
    block_r=st.integers(1, 12),
    block_c=st.integers(1, 12),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)


def _qkv(n, d, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=dtype) for _ in range(3)]


def _reference(q, k, v, causal):
    """Attention written out with autograd-friendly ops: the oracle for values and gradients."""
    s = q @ k.T / math.sqrt(q.shape[1])
    if causal:
        n = q.shape[0]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -math.inf)
    return torch.softmax(s, dim=-1) @ v, torch.logsumexp(s, dim=-1)


@SETTINGS
@given(**shapes)
def test_forward_equals_sdpa_for_any_blocks(n, d, block_r, block_c, causal, seed):
    """Tiled O equals F.scaled_dot_product_attention (float64, 1e-12) and L the row logsumexp."""
    q, k, v = _qkv(n, d, seed)
    o, lse = flash_forward(q, k, v, block_r=block_r, block_c=block_c, causal=causal)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert torch.allclose(o, ref, rtol=0, atol=1e-12)
    assert torch.allclose(lse, _reference(q, k, v, causal)[1], rtol=0, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(**shapes, gain=st.floats(20, 60))
def test_forward_with_scores_that_overflow_exp(n, d, block_r, block_c, causal, seed, gain):
    """Scores far above log(float64 max) ≈ 709: the tile max m̃ keeps every exponent ≤ 0."""
    q, k, v = _qkv(n, d, seed)
    q, k = q * gain, k * gain
    o, lse = flash_forward(q, k, v, block_r=block_r, block_c=block_c, causal=causal)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert torch.allclose(o, ref, rtol=0, atol=1e-9)
    assert torch.allclose(lse, _reference(q, k, v, causal)[1], rtol=1e-12, atol=0)


def test_large_scores_do_overflow_a_plain_exp():
    """The inputs of the test above do reach scores whose plain exp is inf in float64."""
    q, k, _ = _qkv(40, 8, 0)
    s = (q * 30) @ (k * 30).T / math.sqrt(8)
    assert torch.isinf(torch.exp(s)).any()


@settings(max_examples=15, deadline=None)
@given(**shapes)
def test_forward_float32_within_1e5(n, d, block_r, block_c, causal, seed):
    """In float32 the tiled O stays within 1e-5 of SDPA."""
    q, k, v = _qkv(n, d, seed, torch.float32)
    o, _ = flash_forward(q, k, v, block_r=block_r, block_c=block_c, causal=causal)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert (o - ref).abs().max().item() < 1e-5


def test_logsumexp_equals_pytorch_saved_one():
    """L equals the logsumexp PyTorch's CPU SDPA kernel saves for its own backward."""
    q, k, v = _qkv(23, 8, 1, torch.float32)
    q4, k4, v4 = (t[None, None].requires_grad_() for t in (q, k, v))
    out = F.scaled_dot_product_attention(q4, k4, v4, is_causal=True)
    saved = getattr(out.grad_fn, "_saved_logsumexp", None)
    if saved is None:
        pytest.skip(f"{type(out.grad_fn).__name__} saves no logsumexp")
    _, lse = flash_forward(q, k, v, block_r=4, block_c=6, causal=True)
    assert torch.allclose(lse, saved[0, 0], atol=1e-5)


@SETTINGS
@given(**shapes)
def test_backward_equals_autograd(n, d, block_r, block_c, causal, seed):
    """Recomputed dQ, dK, dV equal autograd through the explicit softmax (float64, 1e-10)."""
    q, k, v = _qkv(n, d, seed)
    d_o = _qkv(n, d, seed + 1)[0]
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    ref = torch.autograd.grad(_reference(*leaves, causal)[0], leaves, d_o)
    o, lse = flash_forward(q, k, v, block_r=block_r, block_c=block_c, causal=causal)
    ours = flash_backward(q, k, v, o, lse, d_o, block_r=block_r, block_c=block_c, causal=causal)
    for g, r in zip(ours, ref, strict=True):
        assert torch.allclose(g, r, rtol=0, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 30), d=st.integers(1, 6), causal=st.booleans(), seed=st.integers(0, 99))
def test_standard_attention_and_its_count(n, d, causal, seed):
    """Algorithm 0 equals SDPA and moves exactly 4Nd + 4N² elements (Q, K, V, O, S twice, P twice)."""
    q, k, v = _qkv(n, d, seed)
    hbm = HBM()
    o = standard_attention(q, k, v, causal=causal, hbm=hbm)
    assert torch.allclose(o, F.scaled_dot_product_attention(q, k, v, is_causal=causal), atol=1e-12)
    assert hbm.total == 4 * n * d + 4 * n * n


@SETTINGS
@given(**shapes)
def test_tiled_count_equals_brute_force_tally(n, d, block_r, block_c, causal, seed):
    """The counter equals a tally over the tiles that hold an unmasked score (from the full mask)."""
    q, k, v = _qkv(n, d, seed)
    hbm = HBM()
    flash_forward(q, k, v, block_r=block_r, block_c=block_c, causal=causal, hbm=hbm)
    allowed = torch.ones(n, n, dtype=torch.bool)
    if causal:
        allowed = allowed.tril()
    reads = 2 * n * d  # every K_j, V_j once
    writes = n * d + 2 * n  # O, ℓ, m initialised
    for r0 in range(0, n, block_r):
        for c0 in range(0, n, block_c):
            if allowed[r0 : r0 + block_r, c0 : c0 + block_c].any():
                rows = min(block_r, n - r0)
                reads += 2 * rows * d + 2 * rows  # Q_i, O_i, ℓ_i, m_i
                writes += rows * d + 2 * rows  # O_i, ℓ_i, m_i
    assert (hbm.reads, hbm.writes) == (reads, writes)


def test_tiled_count_scales_as_theorem_2():
    """Counted / (N²d²/M) stays within [12, 17] over N and M with M ≤ Nd, as Θ(N²d²/M) says."""
    d = 8
    for n, m_sram in [(64, 128), (128, 512), (256, 1024), (512, 2048)]:
        standard, tiled = counted_io(n, d, m_sram)
        assert standard == 4 * n * d + 4 * n * n
        assert 12 <= tiled / (n * n * d * d / m_sram) <= 17


def test_paper_block_sizes():
    """B_c = ⌈M/4d⌉ and B_r = min(B_c, d), as in Algorithm 1 line 1."""
    assert paper_block_sizes(1024, 16) == (16, 16)
    assert paper_block_sizes(4096, 16) == (16, 64)
    assert paper_block_sizes(100, 16) == (2, 2)


def test_causal_tiles_skip_and_count_drops():
    """Causal tiling skips tiles above the diagonal, so it moves fewer elements than non-causal."""
    q, k, v = _qkv(64, 8, 0)
    full, causal = HBM(), HBM()
    flash_forward(q, k, v, block_r=8, block_c=8, hbm=full)
    flash_forward(q, k, v, block_r=8, block_c=8, causal=True, hbm=causal)
    assert causal.total < 0.65 * full.total


def test_figures_have_chinese_titles():
    """Both figure helpers draw and title their axes in Chinese."""
    import matplotlib.pyplot as plt

    counts = {m: [counted_io(n, 8, m) for n in (32, 64)] for m in (128, 256)}
    fig = plot_io([32, 64], 8, counts, 64, {m: counted_io(64, 8, m) for m in (128, 256)})
    assert all("（" in ax.get_title() for ax in fig.axes)
    fig2 = plot_schedule(12, 4, 3)
    assert "因果" in fig2.axes[0].get_title()
    plt.close("all")


@pytest.mark.parametrize("n, block_r, block_c", [(24, 4, 6), (12, 3, 4), (10, 4, 2)])
def test_schedule_colours_match_the_mask(n, block_r, block_c):
    """Grey = no unmasked score, blue = none masked, orange = both, read off the full causal mask."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    fig = plot_schedule(n, block_r, block_c)
    drawn = [to_hex(patch.get_facecolor()) for patch in fig.axes[0].patches]
    allowed = torch.ones(n, n, dtype=torch.bool).tril()
    expected = []
    for c0 in range(0, n, block_c):  # the figure's order: K/V tiles outside, Q tiles inside
        for r0 in range(0, n, block_r):
            tile = allowed[r0 : r0 + block_r, c0 : c0 + block_c]
            expected.append("#ebebeb" if not tile.any() else "#c6dbef" if tile.all() else "#fdd0a2")
    assert drawn == expected
    plt.close(fig)
