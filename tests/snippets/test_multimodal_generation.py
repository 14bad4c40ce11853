"""Tests for snippets/multimodal_generation.py against closed forms, quadrature, brute force
and the Shannon bound."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.multimodal_generation import (
    best_uniform_step,
    cell_moments,
    entropy_coded_uniform,
    gap_db,
    gaussian_vae_rd,
    index_entropy,
    kmeans,
    lloyd_max,
    online_vq,
    perplexity,
    plot_rd,
    quantize,
    scalar_mse,
    shannon_distortion,
    token_budget,
    train_gaussian_vae,
    uniform_grid,
)

SETTINGS = settings(max_examples=25, deadline=None)
X = torch.linspace(-12, 12, 240_001, dtype=torch.float64)  # quadrature grid for N(0, 1)
PDF = torch.exp(-(X**2) / 2) / math.sqrt(2 * math.pi)


def _quadrature(thresholds, codewords):
    """Brute force: quantize every grid point by searchsorted, integrate with the trapezoid rule."""
    q = codewords[torch.searchsorted(thresholds, X)]
    mse = torch.trapezoid((X - q) ** 2 * PDF, X)
    cell = torch.searchsorted(thresholds, X)
    probs = torch.stack([torch.trapezoid(PDF * (cell == k), X) for k in range(len(codewords))])
    return mse.item(), probs


def test_shannon_bound_values():
    """D(R) = 2^(-2R): 1 at 0 bits, 1/4 at 1 bit; one bit is 10·log10(4) dB."""
    assert shannon_distortion(0).item() == 1.0
    assert shannon_distortion(1).item() == 0.25
    assert shannon_distortion(3, var=4.0).item() == pytest.approx(4 / 64)
    assert gap_db(0.25, 1).item() == pytest.approx(0.0, abs=1e-12)
    assert gap_db(1.0, 1).item() == pytest.approx(10 * math.log10(4))


def test_cell_moments_against_quadrature():
    """P, ∫xφ, ∫x²φ of each cell equal trapezoid integrals; they sum to 1, 0, 1."""
    t = torch.tensor([-1.3, -0.2, 0.4, 2.0], dtype=torch.float64)
    P, M1, M2 = cell_moments(t)
    cell = torch.searchsorted(t, X)
    for k in range(5):
        m = cell == k
        assert P[k].item() == pytest.approx(torch.trapezoid(PDF * m, X).item(), abs=1e-4)
        assert M1[k].item() == pytest.approx(torch.trapezoid(X * PDF * m, X).item(), abs=1e-4)
        assert M2[k].item() == pytest.approx(torch.trapezoid(X**2 * PDF * m, X).item(), abs=1e-4)
    assert (P.sum().item(), M1.sum().item(), M2.sum().item()) == pytest.approx((1, 0, 1), abs=1e-12)


@SETTINGS
@given(st.lists(st.floats(-4, 4), min_size=2, max_size=9, unique=True))
def test_scalar_mse_and_entropy_match_quadrature(points):
    """Exact MSE and index entropy of any codebook equal brute-force quadrature."""
    c = torch.tensor(sorted(points), dtype=torch.float64)
    if (c.diff() < 1e-3).any():
        return
    t = (c[:-1] + c[1:]) / 2
    mse, _ = _quadrature(t, c)
    assert scalar_mse(t, c).item() == pytest.approx(mse, rel=1e-5, abs=1e-8)
    # cell probabilities from Python's math.erf, not torch: Φ(x) = (1 + erf(x/√2)) / 2
    cdf = [0.0] + [(1 + math.erf(v / math.sqrt(2))) / 2 for v in t.tolist()] + [1.0]
    probs = [hi - lo for lo, hi in zip(cdf, cdf[1:], strict=False) if hi > lo]
    assert index_entropy(t).item() == pytest.approx(-sum(p * math.log2(p) for p in probs), abs=1e-9)


def test_lloyd_max_two_levels_closed_form():
    """K=2: codewords ±sqrt(2/π), threshold 0, MSE 1 − 2/π, entropy 1 bit."""
    t, c = lloyd_max(2)
    assert c.tolist() == pytest.approx([-math.sqrt(2 / math.pi), math.sqrt(2 / math.pi)], abs=1e-12)
    assert t.item() == pytest.approx(0.0, abs=1e-12)
    assert scalar_mse(t, c).item() == pytest.approx(1 - 2 / math.pi, abs=1e-12)
    assert index_entropy(t).item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("k", "mse"), [(3, 0.1902), (4, 0.1175), (8, 0.03454)])
def test_lloyd_max_matches_max_table(k, mse):
    """Lloyd-Max MSE for N(0,1) agrees with Max's (1960) table to its 4 significant digits."""
    assert scalar_mse(*lloyd_max(k)).item() == pytest.approx(mse, abs=1.5e-4)


def test_lloyd_max_is_a_fixed_point_and_beats_perturbations():
    """Both Lloyd conditions hold at the result, and nudging any codeword raises the MSE."""
    t, c = lloyd_max(8)
    P, M1, _ = cell_moments(t)
    assert torch.allclose(c, M1 / P, atol=1e-10)
    assert torch.allclose(t, (c[:-1] + c[1:]) / 2, atol=1e-12)
    best = scalar_mse(t, c).item()
    for k in range(8):
        for eps in (-1e-3, 1e-3):
            c2 = c.clone()
            c2[k] += eps
            assert scalar_mse((c2[:-1] + c2[1:]) / 2, c2).item() > best


def test_lloyd_max_monotone_above_bound_and_panter_dite():
    """MSE falls as K grows, stays above D(log2 K), and D·4^R approaches (1/12)(∫φ^(1/3))³."""
    ks = [2, 3, 4, 6, 8, 16, 32, 64, 128, 256]
    mses = [scalar_mse(*lloyd_max(k)).item() for k in ks]
    assert all(a > b for a, b in zip(mses, mses[1:], strict=False))
    assert all(m > shannon_distortion(math.log2(k)).item() for k, m in zip(ks, mses, strict=True))
    panter_dite = torch.trapezoid(PDF ** (1 / 3), X).item() ** 3 / 12
    assert panter_dite == pytest.approx(math.sqrt(3) * math.pi / 2, rel=1e-6)
    assert mses[-1] * 256**2 == pytest.approx(panter_dite, rel=0.015)


@pytest.mark.parametrize("levels", [2, 4, 8, 16])
def test_best_uniform_step_against_grid_search(levels):
    """The golden-section step matches a brute-force scan; L=2 equals Lloyd-Max's ±sqrt(2/π)."""
    steps = torch.linspace(0.05, 2.5, 4901, dtype=torch.float64).tolist()
    brute = min(steps, key=lambda s: scalar_mse(*uniform_grid(levels, s)).item())
    assert best_uniform_step(levels) == pytest.approx(brute, abs=1e-3)
    if levels == 2:
        assert best_uniform_step(2) == pytest.approx(2 * math.sqrt(2 / math.pi), abs=1e-6)


def test_entropy_coded_uniform_high_rate_limits():
    """Small steps: MSE → Δ²/12 and the gap → 10·log10(πe/6) dB (Gish-Pierce)."""
    h, d = entropy_coded_uniform(0.02)
    assert d == pytest.approx(0.02**2 / 12, rel=1e-4)
    assert gap_db(d, h).item() == pytest.approx(10 * math.log10(math.pi * math.e / 6), abs=0.01)
    h_coarse, d_coarse = entropy_coded_uniform(1.0)
    assert h_coarse < h and d_coarse > d


def test_entropy_coded_uniform_coarse_grid_is_mid_tread():
    """Step 2: codewords 0, ±2, …, ±10 with cells (−1, 1], (1, 3], …; H from math.erf, MSE by
    quadrature on that hand-built grid (a grid without 0 as a codeword gives other numbers)."""
    h, d = entropy_coded_uniform(2.0)
    edges = [-math.inf] + [float(v) for v in range(-9, 10, 2)] + [math.inf]
    cdf = [(1 + math.erf(v / math.sqrt(2))) / 2 for v in edges]
    probs = [hi - lo for lo, hi in zip(cdf, cdf[1:], strict=False) if hi > lo]
    assert h == pytest.approx(-sum(p * math.log2(p) for p in probs), abs=1e-9)
    t = torch.arange(-9, 10, 2, dtype=torch.float64)
    c = torch.arange(-10, 11, 2, dtype=torch.float64)
    assert d == pytest.approx(_quadrature(t, c)[0], rel=1e-5)


def _brute_nearest(x, codebook):
    return torch.stack([((codebook - row) ** 2).sum(1).argmin() for row in x])


@SETTINGS
@given(n=st.integers(1, 40), k=st.integers(1, 12), d=st.integers(1, 5), seed=st.integers(0, 99))
def test_quantize_matches_brute_force(n, k, d, seed):
    """Nearest codeword and MSE equal a per-sample loop over the codebook."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    codebook = torch.randn(k, d, generator=g, dtype=torch.float64)
    idx, mse = quantize(x, codebook)
    ref = _brute_nearest(x, codebook)
    dist = ((x[:, None] - codebook[None]) ** 2).sum(-1)
    # ties aside, the indices agree; the distances always do
    assert torch.allclose(dist.gather(1, idx[:, None]), dist.gather(1, ref[:, None]))
    assert mse.item() == pytest.approx(dist.min(1).values.sum().item() / (n * d))


def test_kmeans_one_dim_two_codes_and_monotone_iterations():
    """On N(0,1) samples, 2-means finds ≈ ±sqrt(2/π); more Lloyd iterations never raise the MSE."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 1, generator=g, dtype=torch.float64)
    cb = kmeans(x, 2, iters=30).sort(0).values.flatten()
    assert cb.tolist() == pytest.approx([-math.sqrt(2 / math.pi), math.sqrt(2 / math.pi)], abs=0.03)
    x4 = torch.randn(4000, 4, generator=g, dtype=torch.float64)
    mses = [quantize(x4, kmeans(x4, 16, iters=i))[1].item() for i in range(0, 12)]
    assert all(a >= b - 1e-12 for a, b in zip(mses, mses[1:], strict=False))


def test_kmeans_codewords_are_centroids_of_their_cells():
    """After convergence each codeword is the plain mean of the samples nearest to it."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(120, 2, generator=g, dtype=torch.float64)
    cb = kmeans(x, 6, iters=60)
    ref = _brute_nearest(x, cb)
    for k in range(6):
        members = x[ref == k]
        if len(members):
            assert torch.allclose(cb[k], members.mean(0), atol=1e-12)


def test_online_vq_moves_winning_codes_to_the_data():
    """One code on data centred at 3: the EMA of batch means forgets its start near 0."""
    g = torch.Generator().manual_seed(0)
    data = torch.randn(4096, 2, generator=g, dtype=torch.float64) + 3.0
    cb = online_vq(data, 1, steps=200, batch=256)
    assert torch.allclose(cb[0], data.mean(0), atol=0.05)


def test_kmeans_rate_distortion_above_bound_and_dimension_helps():
    """Test MSE at 1 bit/dim is above D(1) = 0.25 and falls from d=1 to d=4."""
    g = torch.Generator().manual_seed(1)
    res = {}
    for d in (1, 4):
        train, test = torch.randn(8192, d, generator=g), torch.randn(8192, d, generator=g)
        res[d] = quantize(test, kmeans(train, 2**d, iters=25))[1].item()
    assert all(m > 0.25 for m in res.values())
    assert res[4] < res[1] - 0.005


def test_perplexity_and_dead_codes():
    """Perplexity is exact for uniform / one-hot use; without reseeding the online VQ kills codes."""
    assert perplexity(torch.arange(8).repeat(5), 16) == pytest.approx(8.0)
    assert perplexity(torch.zeros(10, dtype=torch.long), 4) == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    data = torch.randn(8192, 8, generator=g)
    test = torch.randn(8192, 8, generator=g)
    used = {}
    for reseed in (False, True):
        idx, _ = quantize(test, online_vq(data, 128, steps=150, batch=256, reseed=reseed))
        used[reseed] = (torch.bincount(idx, minlength=128) > 0).sum().item()
    assert used[False] < 110 and used[True] > 120


@SETTINGS
@given(a=st.floats(-3, 3), s=st.floats(0.01, 3), b=st.floats(-3, 3))
def test_vae_closed_form_never_beats_shannon(a, s, b):
    """Any linear Gaussian VAE: D ≥ 2^(−2·KL bits) (data processing + Gaussian R(D))."""
    R, D = gaussian_vae_rd(
        torch.tensor(a, dtype=torch.float64),
        torch.tensor(s, dtype=torch.float64),
        torch.tensor(b, dtype=torch.float64),
    )
    assert D.item() >= shannon_distortion(R).item() * (1 - 1e-9)


def test_vae_closed_form_against_monte_carlo():
    """The closed-form D and KL equal sample averages of (x − b z)² and KL(N(ax,s²)‖N(0,1))."""
    g = torch.Generator().manual_seed(0)
    a, s, b = (torch.tensor(v, dtype=torch.float64) for v in (0.8, 0.4, 1.1))
    x = torch.randn(400_000, generator=g, dtype=torch.float64)
    z = a * x + s * torch.randn(400_000, generator=g, dtype=torch.float64)
    R, D = gaussian_vae_rd(a, s, b)
    assert D.item() == pytest.approx(((x - b * z) ** 2).mean().item(), rel=0.01)
    kl = 0.5 * ((a * x) ** 2 + s**2 - 1 - torch.log(s**2)).mean() / math.log(2)
    assert R.item() == pytest.approx(kl.item(), rel=0.01)


def test_trained_vae_reaches_the_lagrangian_optimum():
    """Minimising D + λ·KL lands at D ≈ λ/2 and R ≈ ½·log2(2/λ), on the Shannon bound."""
    lams = [1.0, 0.5, 0.125]
    R, D = gaussian_vae_rd(*train_gaussian_vae(lams, steps=600))
    for lam, r, d in zip(lams, R, D, strict=True):
        assert d.item() == pytest.approx(lam / 2, rel=0.05)
        assert r.item() == pytest.approx(0.5 * math.log2(2 / lam), abs=0.05)
        assert 0 <= gap_db(d, r).item() < 0.05


def test_token_budget():
    """Chameleon: 1024 tokens × log2 8192 = 13312 bits for a 512×512 image."""
    b = token_budget(512, 512, 1024, 8192)
    assert b["bits/token"] == 13 and b["bits/image"] == 13312
    assert b["bits/pixel"] == pytest.approx(13312 / 512**2)
    assert b["bits/value"] == pytest.approx(13312 / (3 * 512**2))


def test_plot_rd_draws_every_series():
    """One line per series plus the bound in each panel, and Chinese titles."""
    import matplotlib.pyplot as plt

    fig = plot_rd({"a": ([1, 2], [0.4, 0.1]), "b": ([1], [0.3])}, torch.linspace(0, 2, 5))
    ax1, ax2 = fig.axes
    assert len(ax1.lines) == 3 and len(ax2.lines) == 3
    assert "香农界" in ax1.get_title()
    plt.close(fig)
