"""Tests for snippets/cpc_infonce.py against F.cross_entropy, torch.distributions and closed forms."""

import math

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.cpc_infonce import (
    estimate_grid,
    info_nce,
    leave_one_out,
    mi_lower_bound,
    optimal_critic,
    plot_estimates,
    sample_pairs,
    true_mi,
)

D = torch.distributions
SETTINGS = settings(max_examples=25, deadline=None)


@SETTINGS
@given(n=st.integers(2, 12), seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 30.0))
def test_info_nce_is_cross_entropy_with_the_diagonal_as_target(n, seed, scale):
    """L_N equals F.cross_entropy(S, arange(N)) and so does its gradient, for any score matrix."""
    g = torch.Generator().manual_seed(seed)
    s1 = (scale * torch.randn(n, n, generator=g, dtype=torch.float64)).requires_grad_()
    s2 = s1.detach().clone().requires_grad_()
    ours, ref = info_nce(s1), F.cross_entropy(s2, torch.arange(n))
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(s1.grad, s2.grad)


@SETTINGS
@given(n=st.integers(2, 12), seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 20.0))
def test_bounds_against_brute_force_loops(n, seed, scale):
    """log N − L_N ≤ log N always; both estimators match a plain loop over rows with math.log."""
    g = torch.Generator().manual_seed(seed)
    s = scale * torch.randn(n, n, generator=g, dtype=torch.float64)
    nce = loo = 0.0
    for i in range(n):
        row = [math.exp(v) for v in s[i].tolist()]
        pos, neg = row[i], sum(v for j, v in enumerate(row) if j != i)
        nce += math.log(pos / ((pos + neg) / n)) / n
        loo += math.log(pos / (neg / (n - 1))) / n
    assert mi_lower_bound(s).item() == pytest.approx(nce, rel=1e-9, abs=1e-9)
    assert leave_one_out(s).item() == pytest.approx(loo, rel=1e-9, abs=1e-9)
    assert mi_lower_bound(s).item() <= math.log(n) + 1e-12


@SETTINGS
@given(dim=st.integers(1, 5), rho=st.floats(-0.95, 0.95), seed=st.integers(0, 2**31 - 1))
def test_optimal_critic_is_the_log_density_ratio(dim, rho, seed):
    """S_ij = log p(x_i, y_j) − log p(x_i) − log p(y_j) with a 2d-dim MultivariateNormal joint."""
    g = torch.Generator().manual_seed(seed)
    x, y = sample_pairs(6, dim, rho, generator=g)
    x, y = x[0], y[0]
    eye = torch.eye(dim, dtype=torch.float64)
    cov = torch.cat([torch.cat([eye, rho * eye], 1), torch.cat([rho * eye, eye], 1)], 0)
    joint = D.MultivariateNormal(torch.zeros(2 * dim, dtype=torch.float64), cov)
    marginal = D.MultivariateNormal(torch.zeros(dim, dtype=torch.float64), eye)
    xy = torch.cat([x[:, None, :].expand(6, 6, dim), y[None, :, :].expand(6, 6, dim)], -1)
    ref = joint.log_prob(xy) - marginal.log_prob(x)[:, None] - marginal.log_prob(y)[None, :]
    torch.testing.assert_close(optimal_critic(x, y, rho), ref)


@SETTINGS
@given(dim=st.integers(1, 6), rho=st.floats(-0.99, 0.99))
def test_true_mi_from_gaussian_entropies(dim, rho):
    """I = ½ log(det Σ_x det Σ_y / det Σ_xy), from the joint covariance's log-determinant."""
    eye = torch.eye(dim, dtype=torch.float64)
    cov = torch.cat([torch.cat([eye, rho * eye], 1), torch.cat([rho * eye, eye], 1)], 0)
    assert true_mi(dim, rho) == pytest.approx(-0.5 * torch.linalg.slogdet(cov)[1].item(), abs=1e-9)


def test_samples_have_the_requested_correlation():
    """Each coordinate pair has unit variances and correlation ρ (within Monte Carlo error)."""
    x, y = sample_pairs(20_000, 3, 0.7, generator=torch.Generator().manual_seed(1))
    x, y = x[0], y[0]
    torch.testing.assert_close(y.var(0), torch.ones(3, dtype=torch.float64), atol=0.04, rtol=0)
    torch.testing.assert_close(
        (x * y).mean(0), torch.full((3,), 0.7, dtype=torch.float64), atol=0.03, rtol=0
    )
    assert (x[:, 0] * y[:, 1]).mean().abs() < 0.03  # different coordinates independent


def test_estimate_near_mi_when_small_and_near_log_n_when_large():
    """Small MI, large N: estimate ≈ MI; MI ≫ log N: estimate just below log N; LOO above the MI."""
    g = torch.Generator().manual_seed(2)
    grid = estimate_grid([512, 8], [1, 12], 0.9, pairs=8192, generator=g)
    assert grid[0, 0].item() == pytest.approx(true_mi(1, 0.9), abs=0.05)
    assert math.log(8) - 0.15 < grid[1, 1].item() < math.log(8)
    x, y = sample_pairs(32, 6, 0.9, batches=64, generator=g)
    assert leave_one_out(optimal_critic(x, y, 0.9)).mean().item() > true_mi(6, 0.9) + 1.0


def test_estimate_grid_matches_a_loop_over_batches():
    """estimate_grid is the batch mean of mi_lower_bound, drawn in the same order."""
    out = estimate_grid([4, 8], [2], 0.5, pairs=32, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    for a, n in enumerate([4, 8]):
        b = 32 // n
        x, y = sample_pairs(n, 2, 0.5, batches=b, generator=g)
        ref = sum(mi_lower_bound(optimal_critic(x[k], y[k], 0.5)) for k in range(b)) / b
        assert out[a, 0].item() == pytest.approx(ref.item(), rel=1e-12)


def test_plot_has_one_line_and_one_ceiling_per_n():
    """The figure draws the diagonal, one curve per N and its log N line."""
    fig = plot_estimates([4, 16], [1.0, 2.0], torch.tensor([[0.9, 1.2], [1.0, 1.9]]))
    lines = fig.axes[0].get_lines()
    assert len(lines) == 1 + 2 * 2
    assert lines[2].get_ydata()[0] == pytest.approx(math.log(4))
    plt.close(fig)
