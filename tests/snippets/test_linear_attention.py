import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from snippets.linear_attention import (
    causal_linear_attention,
    chunked_causal_linear_attention,
    elu_plus_one,
    kernel_attention_matrix,
    linear_attention,
    linear_macs,
    plot_attention_maps,
    plot_costs,
    positive_random_features,
    quadratic_kernel_macs,
    quadratic_linear_attention,
    recurrent_linear_attention,
    relu_features,
    softmax_attention,
    softmax_macs,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _inputs(seed, n, d, m):
    g = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(2))
    v = torch.randn(n, m, generator=g, dtype=torch.float64)
    return q, k, v


def _loop_oracle(q, k, v, phi, causal):
    """Eq. 4 / eq. 8 written out: V'_i = Σ_j sim(i, j) V_j / Σ_j sim(i, j), plain loops."""
    fq, fk = phi(q).tolist(), phi(k).tolist()
    out = []
    for i in range(len(fq)):
        keys = range(i + 1) if causal else range(len(fk))
        sims = [sum(a * b for a, b in zip(fq[i], fk[j], strict=True)) for j in keys]
        total = sum(sims)
        row = [
            sum(s * v[j, c].item() for s, j in zip(sims, keys, strict=True)) / total
            for c in range(v.shape[1])
        ]
        out.append(row)
    return torch.tensor(out, dtype=torch.float64)


def _prf(d, m, seed):
    omega = torch.randn(d, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return lambda x: positive_random_features(x, omega)


dims = st.integers(min_value=1, max_value=6)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 12),
    d=dims,
    m=dims,
    fmap=st.sampled_from(["elu", "prf"]),
)
def test_all_forms_equal_the_loop_oracle(seed, n, d, m, fmap):
    """Parallel, quadratic, cumsum, recurrent and chunked forms equal eq. 4 / eq. 8 in loops to 1e-12."""
    q, k, v = _inputs(seed, n, d, m)
    phi = elu_plus_one if fmap == "elu" else _prf(d, 5, seed)
    full, causal = _loop_oracle(q, k, v, phi, False), _loop_oracle(q, k, v, phi, True)
    tol = dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(linear_attention(q, k, v, phi=phi, eps=0.0), full, **tol)
    torch.testing.assert_close(quadratic_linear_attention(q, k, v, phi=phi, eps=0.0), full, **tol)
    for f in (causal_linear_attention, recurrent_linear_attention, quadratic_linear_attention):
        extra = {"causal": True} if f is quadratic_linear_attention else {}
        torch.testing.assert_close(f(q, k, v, phi=phi, eps=0.0, **extra), causal, **tol)
    for chunk in (1, 2, 3, n):
        torch.testing.assert_close(
            chunked_causal_linear_attention(q, k, v, phi=phi, chunk=chunk, eps=0.0), causal, **tol
        )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 16), d=dims, m=dims, causal=st.booleans())
def test_softmax_attention_equals_sdpa(seed, n, d, m, causal):
    """softmax_attention equals F.scaled_dot_product_attention (causal or not) to 1e-12."""
    q, k, v = _inputs(seed, n, d, m)
    ref = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=causal)[0]
    torch.testing.assert_close(
        softmax_attention(q, k, v, causal=causal), ref, rtol=1e-12, atol=1e-12
    )


def test_eps_is_added_to_the_denominator():
    """With eps, every form returns numerator / (denominator + eps), as the loop formula says."""
    q, k, v = _inputs(3, 5, 3, 2)
    eps = 0.5
    fq, fk = elu_plus_one(q), elu_plus_one(k)
    sim = fq @ fk.T
    full = sim @ v / (sim.sum(-1, keepdim=True) + eps)
    causal = sim.tril() @ v / (sim.tril().sum(-1, keepdim=True) + eps)
    torch.testing.assert_close(linear_attention(q, k, v, phi=elu_plus_one, eps=eps), full)
    torch.testing.assert_close(quadratic_linear_attention(q, k, v, phi=elu_plus_one, eps=eps), full)
    for causal_flag, ref in ((False, full), (True, causal)):
        w = kernel_attention_matrix(q, k, phi=elu_plus_one, causal=causal_flag, eps=eps)
        torch.testing.assert_close(w @ v, ref)
    for f in (causal_linear_attention, recurrent_linear_attention):
        torch.testing.assert_close(f(q, k, v, phi=elu_plus_one, eps=eps), causal)
    torch.testing.assert_close(
        chunked_causal_linear_attention(q, k, v, phi=elu_plus_one, chunk=2, eps=eps), causal
    )


def test_feature_maps_closed_forms():
    """elu+1 is exp(x) for x <= 0 and x + 1 above; relu is max(x, 0); both match on a grid."""
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    torch.testing.assert_close(elu_plus_one(x), torch.where(x > 0, x + 1, torch.exp(x)))
    assert (elu_plus_one(x) > 0).all()
    torch.testing.assert_close(relu_features(x), x.clamp(min=0))


def test_positive_random_features_estimate_exp_kernel():
    """Mean of φ(q)ᵀφ(k) over 400k features is exp(qᵀk) within 2%; features are positive."""
    q, k, _ = _inputs(7, 4, 3, 1)
    q, k = q * 0.4, k * 0.4
    phi = _prf(3, 400_000, 0)
    fq, fk = phi(q), phi(k)
    assert (fq > 0).all()
    torch.testing.assert_close(fq @ fk.T, torch.exp(q @ k.T), rtol=0.02, atol=0.0)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 10), d=dims, causal=st.booleans())
def test_kernel_matrix_times_v_equals_the_loop_oracle(seed, n, d, causal):
    """kernel_attention_matrix(...) @ V is eq. 4 / eq. 8 in loops; causal weights above the diagonal are 0."""
    q, k, v = _inputs(seed, n, d, 3)
    w = kernel_attention_matrix(q, k, phi=elu_plus_one, causal=causal, eps=0.0)
    oracle = _loop_oracle(q, k, v, elu_plus_one, causal)
    torch.testing.assert_close(w @ v, oracle, rtol=1e-12, atol=1e-12)
    if causal:
        assert (w.triu(1) == 0).all()


def test_kernel_matrix_rows_sum_to_one_and_rank_is_at_most_c():
    """Rows of the kernel attention matrix sum to 1; its rank is <= C while softmax's is N."""
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(24, 4, generator=g, dtype=torch.float64), dim=-1) * 8
    w = kernel_attention_matrix(x, x, phi=elu_plus_one, eps=0.0)
    torch.testing.assert_close(w.sum(-1), torch.ones(24, dtype=torch.float64))
    assert torch.linalg.matrix_rank(w).item() <= 4
    s = torch.softmax(x @ x.T / 2, dim=-1)
    assert torch.linalg.matrix_rank(s).item() == 24


@pytest.mark.parametrize(("n", "d", "m"), [(8, 4, 3), (33, 5, 7), (64, 16, 16)])
def test_mac_formulas_equal_flop_counter(n, d, m):
    """Each MAC formula is half of FlopCounterMode's count for the function it describes."""
    q, k, v = _inputs(0, n, d, m)
    cases = [
        (lambda: softmax_attention(q, k, v), softmax_macs(n, d, m)),
        (
            lambda: quadratic_linear_attention(q, k, v, phi=elu_plus_one),
            quadratic_kernel_macs(n, d, m),
        ),
        (lambda: linear_attention(q, k, v, phi=elu_plus_one), linear_macs(n, d, m)),
    ]
    for run, macs in cases:
        with FlopCounterMode(display=False) as counter:
            run()
        assert counter.get_total_flops() == 2 * macs


def test_figures_have_chinese_titles():
    """plot_costs draws two log-log lines; plot_attention_maps one panel per map plus a colorbar."""
    fig = plot_costs([64, 128, 256], 8, 8)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and ax.get_xscale() == "log" and "乘加" in ax.get_title()
    ys = [line.get_ydata() for line in ax.lines]
    assert list(ys[0]) == [softmax_macs(n, 8, 8) for n in (64, 128, 256)]
    maps = {"a": torch.eye(4), "b": torch.full((4, 4), 0.25)}
    fig2 = plot_attention_maps(maps, "两张图")
    assert len(fig2.axes) == 3 and fig2.axes[0].get_ylabel() == "查询 i"
    assert fig2.get_suptitle() == "两张图"
    plt.close("all")


def test_chunked_equals_cumsum_on_a_long_sequence():
    """The chunked form gives the cumsum form's output for a long sequence (N = 257)."""
    q, k, v = _inputs(11, 257, 4, 3)
    ref = causal_linear_attention(q, k, v, phi=elu_plus_one)
    out = chunked_causal_linear_attention(q, k, v, phi=elu_plus_one, chunk=32)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    assert math.isfinite(out.abs().max().item())
