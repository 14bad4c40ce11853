import matplotlib.colors
import matplotlib.pyplot as plt  # Agg backend set in conftest
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.gau_flash import (
    chunk_masks,
    draw_masks,
    flash,
    flops,
    full_attention,
    gau,
    init_params,
    mixed_chunk_attention,
    mixed_chunk_naive,
    scale_offset,
)


def _silu(a):
    return a / (1.0 + np.exp(-a))


def _loop_mixed(qq, kq, ql, kl, v, chunk, causal):
    """Element by element: out_i = Σ_j [local] relu(qq_i·kq_j/C)² v_j + Σ_j [global] (ql_i·kl_j)/N v_j."""
    n = v.shape[0]
    out = np.zeros_like(v)
    for i in range(n):
        for j in range(n):
            same = i // chunk == j // chunk
            if same and (j <= i or not causal):
                out[i] += max(float(qq[i] @ kq[j]) / chunk, 0.0) ** 2 * v[j]
            if (j // chunk < i // chunk) or not causal:
                out[i] += float(ql[i] @ kl[j]) / n * v[j]
    return out


def _loop_gau(x, p, causal):
    """GAU in numpy with explicit loops over (i, j): U ⊙ Σ_j relu(q_i·k_j/n)² v_j, then W_o."""
    p = {k: t.numpy() for k, t in p.items()}
    n = x.shape[0]
    u, v, z = _silu(x @ p["W_u"]), _silu(x @ p["W_v"]), _silu(x @ p["W_z"])
    q = z * p["gamma"][0] + p["beta"][0]
    k = z * p["gamma"][1] + p["beta"][1]
    av = np.zeros_like(v)
    for i in range(n):
        for j in range(i + 1 if causal else n):
            av[i] += max(float(q[i] @ k[j]) / n, 0.0) ** 2 * v[j]
    return (u * av) @ p["W_o"]


def _inputs(n, s, e, seed):
    g = torch.Generator().manual_seed(seed)
    qq, kq, ql, kl = (torch.randn(n, s, generator=g, dtype=torch.float64) for _ in range(4))
    v = torch.randn(n, e, generator=g, dtype=torch.float64)
    return qq, kq, ql, kl, v


sizes = dict(
    n=st.integers(1, 24),
    chunk=st.integers(1, 12),
    s=st.integers(1, 5),
    e=st.integers(1, 5),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)


@settings(max_examples=60, deadline=None)
@given(**sizes)
def test_mixed_chunk_equals_elementwise_loop(n, chunk, s, e, causal, seed):
    """Chunked mixed attention equals an element-by-element loop of the same sum, N % C ≠ 0 too."""
    args = _inputs(n, s, e, seed)
    ref = _loop_mixed(*(t.numpy() for t in args), chunk, causal)
    out = mixed_chunk_attention(*args, chunk=chunk, causal=causal)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(**sizes)
def test_naive_masks_equal_elementwise_loop(n, chunk, s, e, causal, seed):
    """The O(N²) masked-matrix form shown on the page equals the element-by-element loop."""
    args = _inputs(n, s, e, seed)
    ref = _loop_mixed(*(t.numpy() for t in args), chunk, causal)
    out = mixed_chunk_naive(*args, chunk=chunk, causal=causal)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 30), chunk=st.integers(1, 12))
def test_causal_masks_partition_the_lower_triangle(n, chunk):
    """Causal: local and global masks are disjoint and together are exactly j ≤ i; else all pairs."""
    loc, glob = chunk_masks(n, chunk, causal=True)
    assert not (loc & glob).any()
    assert torch.equal(loc | glob, torch.ones(n, n, dtype=torch.bool).tril())
    loc, glob = chunk_masks(n, chunk, causal=False)
    assert torch.equal(loc | glob, torch.ones(n, n, dtype=torch.bool))
    assert int(loc.sum()) == sum(min(chunk, n - b) ** 2 for b in range(0, n, chunk))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 16), causal=st.booleans(), seed=st.integers(0, 2**16))
def test_gau_equals_numpy_loop(n, causal, seed):
    """gau() equals a numpy GAU with explicit (i, j) loops: relu(q·k/n)², gating, W_o."""
    g = torch.Generator().manual_seed(seed)
    p = init_params(d=5, e=6, s=3, generator=g)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(
        gau(x, p, causal=causal).numpy(), _loop_gau(x.numpy(), p, causal), rtol=1e-10, atol=1e-12
    )


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 20), chunk=st.integers(1, 8), causal=st.booleans(), seed=st.integers(0, 2**16)
)
def test_flash_layer_equals_numpy_loop(n, chunk, causal, seed):
    """flash() equals numpy projections + the element loop + gating + W_o."""
    g = torch.Generator().manual_seed(seed)
    p = init_params(d=4, e=5, s=3, n_qk=4, generator=g)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    pn = {k: t.numpy() for k, t in p.items()}
    xn = x.numpy()
    u, v, z = _silu(xn @ pn["W_u"]), _silu(xn @ pn["W_v"]), _silu(xn @ pn["W_z"])
    qs = [z * pn["gamma"][h] + pn["beta"][h] for h in range(4)]
    ref = (u * _loop_mixed(*qs, v, chunk, causal)) @ pn["W_o"]
    np.testing.assert_allclose(
        flash(x, p, chunk=chunk, causal=causal).numpy(), ref, rtol=1e-10, atol=1e-12
    )


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 20), chunk=st.integers(1, 8), seed=st.integers(0, 2**16), data=st.data())
def test_causal_flash_ignores_later_tokens(n, chunk, seed, data):
    """Causal flash: changing token j leaves outputs before j unchanged (no leak inside a chunk)."""
    j = data.draw(st.integers(1, n - 1))
    g = torch.Generator().manual_seed(seed)
    p = init_params(d=4, e=5, s=3, n_qk=4, generator=g)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = x.clone()
    y[j:] += torch.randn(n - j, 4, generator=g, dtype=torch.float64)
    a, b = flash(x, p, chunk=chunk, causal=True), flash(y, p, chunk=chunk, causal=True)
    assert torch.equal(a[:j], b[:j])
    assert not torch.allclose(a[j:], b[j:])


def test_scale_offset_is_per_dimension_affine():
    """scale_offset gives z·γ_h + β_h for each copy h."""
    z = torch.arange(6.0).reshape(2, 3)
    gamma, beta = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]), torch.ones(2, 3)
    out = scale_offset(z, gamma, beta)
    assert torch.equal(out[0], z * torch.tensor([1.0, 2.0, 3.0]) + 1)
    assert torch.equal(out[1], z * torch.tensor([0.0, 1.0, -1.0]) + 1)


@pytest.mark.parametrize("n,chunk,s,e", [(256, 64, 16, 32), (1000, 64, 8, 24), (4096, 128, 16, 32)])
def test_counted_flops_equal_closed_form(n, chunk, s, e):
    """FlopCounterMode counts 2N²(s+e) for full attention and 2GC²(s+e) + 4GCse for mixed chunk."""
    q, v = torch.empty(n, s, device="meta"), torch.empty(n, e, device="meta")
    g = -(-n // chunk)
    assert flops(full_attention, q, q, v, causal=True) == 2 * n * n * (s + e)
    mixed = flops(mixed_chunk_attention, q, q, q, q, v, chunk=chunk, causal=True)
    assert mixed == 2 * g * chunk * chunk * (s + e) + 4 * g * chunk * s * e


def test_full_attention_matches_gau_core():
    """full_attention is relu(QKᵀ/N)² V (causal: lower triangle), checked on a 3-token example."""
    q = torch.tensor([[1.0], [2.0], [-1.0]], dtype=torch.float64)
    v = torch.tensor([[1.0], [10.0], [100.0]], dtype=torch.float64)
    a = torch.clamp(q @ q.T / 3, min=0) ** 2
    assert torch.allclose(full_attention(q, q, v, causal=False), a @ v)
    assert torch.allclose(full_attention(q, q, v, causal=True), a.tril() @ v)


def test_draw_masks_covers_each_connected_pair_once():
    """draw_masks' rectangles cover exactly the connected cells, each once, in the part's colour."""
    colors = ("tab:orange", "tab:blue", "tab:purple")
    for causal in (True, False):
        n, chunk = 11, 4
        fig, ax = plt.subplots()
        handles = draw_masks(ax, n, chunk, causal=causal, colors=colors)
        loc, glob = chunk_masks(n, chunk, causal=causal)
        painted = np.zeros((n, n), dtype=int)
        for r in ax.patches:
            (j, i), w = r.get_xy(), r.get_width()
            painted[int(i), int(j) : int(j + w)] += 1
            part = _name(r.get_facecolor(), colors)
            assert all(
                1 + part == loc[int(i), c].item() + 2 * glob[int(i), c].item()
                for c in range(int(j), int(j + w))
            )
        np.testing.assert_array_equal(painted, (loc | glob).int().numpy())
        assert [h.get_label() for h in handles] == ["块内二次", "跨块线性", "两者相加"]
        plt.close(fig)


def _name(rgba, colors):
    """Index of the named colour that equals rgba."""
    return [matplotlib.colors.to_rgba(c) for c in colors].index(tuple(rgba))
