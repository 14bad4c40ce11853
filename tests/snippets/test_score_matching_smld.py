"""Tests for snippets/score_matching_smld.py against torch.distributions, closed forms and Monte Carlo."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.score_matching_smld import (
    DATA_MEAN,
    DATA_VAR,
    MEANS,
    SIGMAS,
    STDS,
    WEIGHTS,
    ScoreNet,
    annealed_langevin,
    dsm_loss,
    geometric_sigmas,
    major_fraction,
    noised_log_prob,
    noised_score,
    plot_fields,
    plot_samples,
    responsibilities,
    sample_mixture,
    train_score_net,
)

D = torch.distributions
SETTINGS = settings(max_examples=25, deadline=None)


def _reference(sigma, weights, means, stds):
    """The noised mixture built from torch.distributions: components N(μ_k, (s_k² + σ²) I)."""
    scale = (stds**2 + sigma**2).sqrt()[:, None].expand_as(means)
    comp = D.Independent(D.Normal(means, scale), 1)
    return D.MixtureSameFamily(D.Categorical(weights), comp)


@SETTINGS
@given(
    k=st.integers(1, 4),
    sigma=st.floats(0.01, 30.0),
    seed=st.integers(0, 10_000),
)
def test_score_and_log_prob_match_autograd_of_torch_distributions(k, sigma, seed):
    """noised_score = ∇ log of a MixtureSameFamily (autograd), noised_log_prob = its log_prob."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.rand(k, generator=g, dtype=torch.float64) + 0.05
    weights = weights / weights.sum()
    means = torch.randn(k, 2, generator=g, dtype=torch.float64) * 4
    stds = torch.rand(k, generator=g, dtype=torch.float64) + 0.2
    x = (torch.randn(64, 2, generator=g, dtype=torch.float64) * 6).requires_grad_()
    ref = _reference(sigma, weights, means, stds)
    logp = ref.log_prob(x)
    grad = torch.autograd.grad(logp.sum(), x)[0]
    kw = dict(weights=weights, means=means, stds=stds)
    torch.testing.assert_close(noised_score(x.detach(), sigma, **kw), grad, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(
        noised_log_prob(x.detach(), sigma, **kw), logp.detach(), rtol=1e-9, atol=1e-9
    )


def test_responsibilities_are_bayes_posteriors():
    """r_k = π_k N_k / p_σ, computed here from torch.distributions component densities."""
    x = torch.tensor([[0.3, -0.2], [4.0, 5.5], [-6.0, -4.0]], dtype=torch.float64)
    sigma = 2.5
    scale = (STDS.double() ** 2 + sigma**2).sqrt()
    dens = torch.stack(
        [
            D.Independent(D.Normal(MEANS.double()[k], scale[k].expand(2)), 1).log_prob(x).exp()
            for k in range(2)
        ],
        dim=1,
    )
    post = WEIGHTS.double() * dens
    torch.testing.assert_close(responsibilities(x, sigma), post / post.sum(1, keepdim=True))


def test_noised_samples_have_the_noised_moments():
    """x + σz with x from sample_mixture: mean π@μ and per-coordinate variance DATA_VAR + σ²."""
    g = torch.Generator().manual_seed(0)
    n, sigma = 200_000, 3.0
    x = sample_mixture(n, generator=g) + sigma * torch.randn(n, 2, generator=g)
    var = DATA_VAR + sigma**2
    assert pytest.approx(1 + 0.8 * 0.2 * 10**2) == DATA_VAR  # s² + π₁π₂‖Δμ‖²/2 per coordinate
    torch.testing.assert_close(DATA_MEAN, torch.tensor([3.0, 3.0]))
    assert (x.mean(0) - DATA_MEAN).abs().max() < 4 * math.sqrt(var / n)
    assert (x.var(0) - var).abs().max() < 4 * var * math.sqrt(2 / n) * 1.5  # 1.5: mixture kurtosis
    assert major_fraction(sample_mixture(n, generator=g)) == pytest.approx(
        0.8, abs=4 * math.sqrt(0.16 / n)
    )


def test_dsm_loss_identity_of_vincent():
    """DSM(s) − DSM(s*) = ½ E_i σ_i² E‖s − s*‖² (common random numbers), s* the analytic score."""
    g = torch.Generator().manual_seed(1)
    x = sample_mixture(100_000, generator=g).double()

    def other(xt, sigma):  # a wrong score: the analytic one with a bias and a scale error
        return 0.9 * noised_score(xt, sigma) + 0.05 / sigma

    loss_true = dsm_loss(noised_score, x, sigmas=SIGMAS, generator=torch.Generator().manual_seed(7))
    loss_other = dsm_loss(other, x, sigmas=SIGMAS, generator=torch.Generator().manual_seed(7))
    # rebuild the same noisy points to compute the right-hand side
    gg = torch.Generator().manual_seed(7)
    i = torch.randint(len(SIGMAS), (x.shape[0],), generator=gg)
    sigma = torch.tensor(SIGMAS, dtype=x.dtype)[i][:, None]
    xt = x + sigma * torch.randn(x.shape, generator=gg, dtype=x.dtype)
    s_star = _score_rowwise(xt, sigma)
    gap = 0.5 * (sigma**2 * ((0.9 * s_star + 0.05 / sigma - s_star) ** 2)).sum(1).mean()
    assert (loss_other - loss_true).item() == pytest.approx(gap.item(), rel=0.05)
    assert loss_true.item() < loss_other.item()


def _score_rowwise(xt, sigma):
    """Analytic score with a different σ on every row (one call per level)."""
    out = torch.empty_like(xt)
    for s in sigma.unique():
        m = sigma[:, 0] == s
        out[m] = noised_score(xt[m], s.item())
    return out


def test_geometric_sigmas():
    """Endpoints, length and a constant ratio."""
    s = np.array(geometric_sigmas(20.0, 0.1, 10))
    assert len(s) == 10 and s[0] == pytest.approx(20) and s[-1] == pytest.approx(0.1)
    np.testing.assert_allclose(s[1:] / s[:-1], (0.1 / 20) ** (1 / 9))
    assert pytest.approx(s.tolist()) == SIGMAS


def test_scorenet_without_mlp_is_the_gaussian_score():
    """With the last layer zeroed, s_θ is ∇ log N(m, (v + σ²) I), checked by autograd."""
    net = ScoreNet().double()
    torch.nn.init.zeros_(net.mlp[-1].weight)
    torch.nn.init.zeros_(net.mlp[-1].bias)
    x = torch.randn(
        50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    ).requires_grad_()
    for sigma in (0.1, 2.0, 20.0):
        cov = (DATA_VAR + sigma**2) * torch.eye(2, dtype=torch.float64)
        logp = D.MultivariateNormal(DATA_MEAN.double(), cov).log_prob(x)
        grad = torch.autograd.grad(logp.sum(), x)[0]
        torch.testing.assert_close(net(x.detach(), sigma), grad)
        # a per-row σ tensor gives the same as a scalar
        torch.testing.assert_close(
            net(x.detach(), torch.full((50, 1), sigma, dtype=torch.float64)), grad
        )


def test_scorenet_divides_the_mlp_by_sigma():
    """s_θ(x, σ) + (x − m)/(v + σ²) = F/σ: doubling σ at fixed F-input changes nothing but 1/σ."""
    torch.manual_seed(0)
    net = ScoreNet()
    x = torch.zeros(4, 2) + DATA_MEAN  # Gaussian term 0, MLP input (0, 0, log σ)
    for sigma in (0.5, 3.0):
        f = net.mlp(torch.tensor([[0.0, 0.0, math.log(sigma)]]))
        torch.testing.assert_close(net(x, sigma), (f / sigma).expand(4, 2))


@SETTINGS
@given(
    eps=st.floats(1e-3, 0.5),
    steps=st.integers(1, 5),
    levels=st.integers(1, 4),
    seed=st.integers(0, 100),
)
def test_langevin_steps_follow_the_step_size_rule(eps, steps, levels, seed):
    """Score ≡ c: x_final − x_noise_only = Σ_i T α_i c/2 exactly, α_i = ε σ_i²/σ_L² (same noise)."""
    sigmas = geometric_sigmas(5.0, 0.5, levels) if levels > 1 else [0.7]
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    c = torch.tensor([1.0, -2.0], dtype=torch.float64)
    drift, _ = annealed_langevin(
        lambda x, s: c.expand_as(x),
        x0,
        sigmas,
        eps=eps,
        steps=steps,
        generator=torch.Generator().manual_seed(seed),
    )
    noise, path = annealed_langevin(
        lambda x, s: torch.zeros_like(x),
        x0,
        sigmas,
        eps=eps,
        steps=steps,
        generator=torch.Generator().manual_seed(seed),
        keep=2,
    )
    alphas = [eps * s**2 / sigmas[-1] ** 2 for s in sigmas]
    torch.testing.assert_close(drift - noise, (steps * sum(alphas) / 2 * c).expand(3, 2))
    assert path.shape == (levels * steps + 1, 2, 2)
    torch.testing.assert_close(path[-1], noise[:2])


def test_langevin_noise_variance():
    """Score ≡ 0: after the run each coordinate has variance Σ_i T α_i (random walk)."""
    sigmas = geometric_sigmas(2.0, 0.5, 3)
    x, _ = annealed_langevin(
        lambda x, s: torch.zeros_like(x),
        torch.zeros(40_000, 2),
        sigmas,
        eps=0.01,
        steps=20,
        generator=torch.Generator().manual_seed(0),
    )
    var = 20 * sum(0.01 * s**2 / sigmas[-1] ** 2 for s in sigmas)
    assert (x.var(0) / var - 1).abs().max() < 4 * math.sqrt(2 / 40_000)


def test_langevin_samples_a_gaussian():
    """Exact score of N(μ, s²I): sample mean and std within 3 standard errors after 1000 steps."""
    mu, s, n = torch.tensor([1.5, -2.0], dtype=torch.float64), 0.7, 4000
    x, _ = annealed_langevin(
        lambda x, sig: -(x - mu) / s**2,
        torch.zeros(n, 2, dtype=torch.float64),
        [1.0],
        eps=0.01,
        steps=1000,
        generator=torch.Generator().manual_seed(11),
    )
    assert ((x.mean(0) - mu).abs() / (s / n**0.5)).max() < 3
    assert ((x.std(0) - s).abs() / (s / (2 * n) ** 0.5)).max() < 3


def test_single_sigma_keeps_the_initial_split_and_annealing_recovers_the_weights():
    """Exact score: one small σ ends near the initial 0.5 split; 10 annealed levels end near 0.8."""
    g = torch.Generator().manual_seed(4)
    x0 = torch.rand(2000, 2, generator=g) * 16 - 8
    single, _ = annealed_langevin(noised_score, x0, SIGMAS[-1:], eps=0.05, steps=300, generator=g)
    annealed, _ = annealed_langevin(noised_score, x0, SIGMAS, eps=0.003, steps=100, generator=g)
    se = math.sqrt(0.16 / 2000)
    assert abs(major_fraction(single) - major_fraction(x0)) < 0.03
    assert abs(major_fraction(annealed) - 0.8) < 5 * se
    assert (single.sum(1) > 0).eq(x0.sum(1) > 0).float().mean() > 0.97  # chains stay on their side


@pytest.fixture(scope="module")
def trained():
    return train_score_net(steps=1500, batch=512)


def test_trained_net_matches_the_analytic_score(trained):
    """Density-weighted relative error < 0.15 at σ ≥ 0.3, and DSM loss within 0.005 of the floor."""
    net, losses = trained
    g = torch.Generator().manual_seed(9)
    for sigma in SIGMAS[:-2]:
        x = sample_mixture(5000, generator=g) + sigma * torch.randn(5000, 2, generator=g)
        true = noised_score(x, sigma)
        rel = ((net(x, sigma) - true).pow(2).sum(1).mean() / true.pow(2).sum(1).mean()).sqrt()
        assert rel < 0.15, (sigma, rel)
    xb = sample_mixture(100_000, generator=g)
    floor = dsm_loss(noised_score, xb, sigmas=SIGMAS, generator=torch.Generator().manual_seed(5))
    final = dsm_loss(net, xb, sigmas=SIGMAS, generator=torch.Generator().manual_seed(5))
    assert 0 < (final - floor).item() < 0.005
    assert np.mean(losses[-100:]) < losses[0]


def test_figures_draw(trained):
    """One stacked panel per level / per sampler, no wider than a phone column allows."""
    net, _ = trained
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(100, 2, generator=g) * 16 - 8
    x, paths = annealed_langevin(net, x0, SIGMAS, eps=0.003, steps=5, generator=g, keep=3)
    for fig, panels in (
        (plot_fields(net, paths, [2, 4, 9], steps=5), 3),
        (plot_samples({"a": x, "b": x0, "c": x, "d": x0}), 4),
    ):
        assert len(fig.axes) == panels
        assert fig.get_figwidth() <= 5.5  # a 390 px phone shows it at ≥ 9 px per 10 pt
        plt.close(fig)
