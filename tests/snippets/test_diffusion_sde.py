"""Tests for snippets/diffusion_sde.py against closed forms written independently here.

Oracles: the Gaussian-mixture density and CDF from `math.erf`; the VP mean coefficient from a
numerical integral of beta; the VE variance from sigma(t); a single Gaussian's probability-flow
map, which is affine; the 1-D flow map as a quantile map found by plain bisection; Monte Carlo
moments with standard-error bounds.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.diffusion_sde import (
    DTYPE,
    VESDE,
    VPSDE,
    Mixture,
    forward_em,
    ks_distance,
    marginal,
    ode_log_likelihood,
    pf_ode,
    plot_convergence,
    plot_paths,
    prior,
    reverse_sde,
    transport_map,
    wasserstein1,
)

SETTINGS = settings(max_examples=25, deadline=None)
DATA = Mixture([0.3, 0.7], [-2.0, 1.5], [0.3**2, 0.5**2])
SDES = [VPSDE(), VESDE(sigma_min=0.01, sigma_max=10.0)]


# ---- independent closed forms ------------------------------------------------------------
def mix_logpdf(x, w, m, sd):
    """log Σ w_k N(x; m_k, sd_k²) with the max subtracted first (no underflow in the tails)."""
    logs = [
        math.log(wk) - 0.5 * ((x - mk) / sk) ** 2 - math.log(sk * math.sqrt(2 * math.pi))
        for wk, mk, sk in zip(w, m, sd, strict=True)
    ]
    top = max(logs)
    return top + math.log(sum(math.exp(v - top) for v in logs))


def mix_cdf(x, w, m, sd):
    return sum(
        wk * 0.5 * (1 + math.erf((x - mk) / (sk * math.sqrt(2))))
        for wk, mk, sk in zip(w, m, sd, strict=True)
    )


def quantile(u, w, m, sd):
    """Inverse mixture CDF by bisection in plain Python."""
    lo, hi = min(m) - 60 * max(sd), max(m) + 60 * max(sd)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mix_cdf(mid, w, m, sd) < u else (lo, mid)
    return 0.5 * (lo + hi)


def params_at(sde, t, w, m, sd):
    """Mixture parameters of p_t, derived here: VP by integrating beta, VE from sigma(t)."""
    if isinstance(sde, VPSDE):
        s = np.linspace(0.0, t, 2001)
        beta = sde.beta_0 + s * (sde.beta_1 - sde.beta_0)
        a = math.exp(-0.5 * np.trapezoid(beta, s))
        return w, [a * mk for mk in m], [math.sqrt(a**2 * sk**2 + 1 - a**2) for sk in sd]
    var_add = (sde.sigma_min * (sde.sigma_max / sde.sigma_min) ** t) ** 2 - sde.sigma_min**2
    return w, m, [math.sqrt(sk**2 + var_add) for sk in sd]


mixtures = st.builds(
    lambda k, ws, ms, sds: (
        [v / sum(ws[:k]) for v in ws[:k]],
        ms[:k],
        sds[:k],
    ),
    st.integers(1, 3),
    st.lists(st.floats(0.1, 1.0), min_size=3, max_size=3),
    st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3),
    st.lists(st.floats(0.2, 1.5), min_size=3, max_size=3),
)


def as_mixture(w, m, sd):
    return Mixture(w, m, [s**2 for s in sd])


# ---- mixture ----------------------------------------------------------------------------
@SETTINGS
@given(mix=mixtures, x=st.floats(-6.0, 6.0))
def test_log_prob_cdf_and_score_match_closed_forms(mix, x):
    """log_prob and cdf equal the erf-based formulas; score equals a central difference of log pdf."""
    w, m, sd = mix
    mixture = as_mixture(w, m, sd)
    xt = torch.tensor([x], dtype=DTYPE)
    assert mixture.log_prob(xt).item() == pytest.approx(
        mix_logpdf(x, w, m, sd), rel=1e-12, abs=1e-10
    )
    assert mixture.cdf(xt).item() == pytest.approx(mix_cdf(x, w, m, sd), abs=1e-12)
    h = 1e-5
    fd = (mix_logpdf(x + h, w, m, sd) - mix_logpdf(x - h, w, m, sd)) / (2 * h)
    assert mixture.score(xt).item() == pytest.approx(fd, rel=1e-6, abs=1e-6)


def test_score_is_finite_far_in_the_tails():
    """Responsibilities via softmax: no 0/0 where every component density underflows."""
    x = torch.tensor([-200.0, 200.0], dtype=DTYPE)
    s = DATA.score(x)
    assert torch.isfinite(s).all()
    assert s[0] > 0 > s[1]


def test_sample_and_mean_std():
    """Sample moments agree with mean_std, and mean_std with numerical integration."""
    grid = np.linspace(-12, 12, 200001)
    pdf = np.exp([mix_logpdf(v, [0.3, 0.7], [-2.0, 1.5], [0.3, 0.5]) for v in grid[::100]])
    g = grid[::100]
    mean = np.trapezoid(g * pdf, g)
    std = math.sqrt(np.trapezoid((g - mean) ** 2 * pdf, g))
    m, s = DATA.mean_std()
    assert m == pytest.approx(mean, abs=1e-6) and s == pytest.approx(std, abs=1e-6)
    n = 40000
    x = DATA.sample(n, torch.Generator().manual_seed(0))
    assert abs(x.mean().item() - m) < 4 * s / math.sqrt(n)
    assert abs(x.std().item() - s) < 4 * s / math.sqrt(2 * n) * 2  # mixtures: heavier 4th moment


# ---- SDEs and marginals -----------------------------------------------------------------
@SETTINGS
@given(t=st.floats(0.0, 1.0), mix=mixtures)
def test_marginal_matches_integrated_coefficients(t, mix):
    """marginal() equals p_t derived here from ∫β (VP) and σ(t)² - σ(0)² (VE)."""
    w, m, sd = mix
    for sde in SDES:
        got = marginal(sde, as_mixture(w, m, sd), t)
        _, m_t, sd_t = params_at(sde, t, w, m, sd)
        np.testing.assert_allclose(got.m.numpy(), m_t, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(got.var.sqrt().numpy(), sd_t, rtol=1e-7)


@SETTINGS
@given(t=st.floats(0.0, 1.0))
def test_g_squared_is_the_variance_growth(t):
    """VE: g² = dσ²/dt (central difference); VP: g² = β(t) and f = -β x / 2."""
    ve, vp = SDES[1], SDES[0]
    h = 1e-6
    dsig2 = (ve.sigma(t + h) ** 2 - ve.sigma(t - h) ** 2) / (2 * h)
    assert ve.g(t) ** 2 == pytest.approx(dsig2, rel=1e-6)
    beta = 0.1 + t * (20.0 - 0.1)
    assert vp.g(t) ** 2 == pytest.approx(beta, rel=1e-12)
    x = torch.tensor([1.5], dtype=DTYPE)
    assert vp.f(x, t).item() == pytest.approx(-0.5 * beta * 1.5, rel=1e-12)
    assert ve.f(x, t).item() == 0.0


@pytest.mark.parametrize("sde", SDES, ids=["VP", "VE"])
def test_forward_em_moments(sde):
    """Forward Euler–Maruyama samples have the closed-form mean and std at t = 0.5 and 1."""
    gen = torch.Generator().manual_seed(1)
    n = 20000
    x = DATA.sample(n, gen)
    t_prev = 0.0
    for t in (0.5, 1.0):
        x = forward_em(sde, x, t_start=t_prev, t_end=t, n_steps=1000, gen=gen)
        t_prev = t
        w, m, sd = params_at(sde, t, [0.3, 0.7], [-2.0, 1.5], [0.3, 0.5])
        mean = sum(wk * mk for wk, mk in zip(w, m, strict=True))
        var = sum(wk * (sk**2 + mk**2) for wk, mk, sk in zip(w, m, sd, strict=True)) - mean**2
        se = math.sqrt(var / n)
        assert abs(x.mean().item() - mean) < 4 * se
        assert abs(x.std().item() / math.sqrt(var) - 1) < 0.02


def test_prior_is_the_standard_prior():
    """VP starts from N(0, 1), VE from N(0, σ_max²)."""
    assert prior(SDES[0]).var.item() == 1.0
    assert prior(SDES[1]).var.item() == pytest.approx(100.0)


# ---- reverse SDE and probability-flow ODE -----------------------------------------------
@pytest.mark.parametrize("sde", SDES, ids=["VP", "VE"])
def test_reverse_sde_recovers_the_data(sde):
    """From the prior, 400 Euler–Maruyama steps give the data's mean, std and mode weights."""
    gen = torch.Generator().manual_seed(2)
    n = 20000
    x = reverse_sde(sde, DATA, prior(sde).sample(n, gen), n_steps=400, gen=gen)
    mean, std = 0.45, math.sqrt(0.3 * (0.09 + 4) + 0.7 * (0.25 + 2.25) - 0.45**2)
    assert abs(x.mean().item() - mean) < 4 * std / math.sqrt(n)
    assert abs(x.std().item() / std - 1) < 0.02
    left = mix_cdf(0.0, [0.3, 0.7], [-2.0, 1.5], [0.3, 0.5])
    assert abs((x < 0).double().mean().item() - left) < 4 * math.sqrt(left * (1 - left) / n)
    assert ks_distance(x, DATA.cdf) < 1.63 / math.sqrt(n)  # 99% Kolmogorov quantile


def em_moments(sde, n_steps, mu, s, t_eps=1e-3):
    """Exact mean and std after reverse Euler–Maruyama on Gaussian data N(mu, s²).

    With one Gaussian the score -(x - m_t)/sd_t² is affine, so each step
    x' = x + [f - g² score] dt + g sqrt(-dt) z maps (mean, var) to (A mean + B, A² var - g² dt),
    the drift evaluated at the left end t_i = 1 + i dt of every step (dt < 0).
    """
    dt = -(1.0 - t_eps) / n_steps
    mean, var = 0.0, prior(sde).var.item()
    for i in range(n_steps):
        t = 1.0 + i * dt
        _, (m_t,), (sd_t,) = params_at(sde, t, [1.0], [mu], [s])
        if isinstance(sde, VPSDE):
            g2, f_coef = sde.beta_0 + t * (sde.beta_1 - sde.beta_0), -0.5
        else:
            g2, f_coef = 2 * sde.sigma(t) ** 2 * math.log(sde.sigma_max / sde.sigma_min), 0.0
        a = 1.0 + (f_coef * g2 + g2 / sd_t**2) * dt
        mean, var = a * mean - g2 * m_t / sd_t**2 * dt, a * a * var - g2 * dt
    return mean, math.sqrt(var)


@pytest.mark.parametrize("sde", SDES, ids=["VP", "VE"])
@pytest.mark.parametrize("n_steps", [5, 10])
def test_reverse_sde_few_steps_matches_the_em_recursion(sde, n_steps):
    """Few steps, Gaussian data: the sample mean and std equal the exact Euler–Maruyama moments.

    This pins the time grid (t_i = 1 + i dt, ending at t_eps), which the many-step tests cannot see.
    """
    mu, s, n = 1.0, 0.5, 40000
    data = Mixture([1.0], [mu], [s**2])
    gen = torch.Generator().manual_seed(3)
    x = reverse_sde(sde, data, prior(sde).sample(n, gen), n_steps=n_steps, gen=gen)
    mean, std = em_moments(sde, n_steps, mu, s)
    assert abs(x.mean().item() - mean) < 4 * std / math.sqrt(n)
    assert abs(x.std().item() - std) < 4 * std / math.sqrt(2 * n)


@SETTINGS
@given(mu=st.floats(-3, 3), s=st.floats(0.2, 2.0), ve=st.booleans())
def test_pf_ode_is_the_affine_map_for_gaussian_data(mu, s, ve):
    """One Gaussian: the flow from 1 to t is x_t = a_t μ + sd_t (x_1 - a_1 μ) / sd_1."""
    sde = SDES[int(ve)]
    data = Mixture([1.0], [mu], [s**2])
    t_eps = 1e-3
    x1 = torch.linspace(-2.5, 2.5, 11, dtype=DTYPE) * prior(sde).var.sqrt()
    got = pf_ode(sde, data, x1, t_from=1.0, t_to=t_eps, n_steps=400)
    _, (m1,), (sd1,) = params_at(sde, 1.0, [1.0], [mu], [s])
    _, (me,), (sde_,) = params_at(sde, t_eps, [1.0], [mu], [s])
    expect = me + sde_ * (x1 - m1) / sd1
    assert (got - expect).abs().max().item() < 3e-4 * expect.abs().max().item() + 1e-6


@pytest.mark.parametrize("sde", SDES, ids=["VP", "VE"])
def test_pf_ode_encode_is_the_quantile_map(sde):
    """Encoding data points with Heun equals F_1^{-1}(F_eps(x)) found by bisection here."""
    t_eps = 1e-3
    x0 = torch.tensor([-2.6, -2.0, -1.2, 0.0, 0.7, 1.5, 2.4], dtype=DTYPE)
    z = pf_ode(sde, DATA, x0, t_from=t_eps, t_to=1.0, n_steps=400)
    p_eps = params_at(sde, t_eps, [0.3, 0.7], [-2.0, 1.5], [0.3, 0.5])
    p_1 = params_at(sde, 1.0, [0.3, 0.7], [-2.0, 1.5], [0.3, 0.5])
    expect = [quantile(mix_cdf(v, *p_eps), *p_1) for v in x0.tolist()]
    scale = math.sqrt(prior(sde).var.item())
    np.testing.assert_allclose(z.numpy(), expect, atol=2e-3 * scale)
    np.testing.assert_allclose(
        transport_map(marginal(sde, DATA, t_eps), marginal(sde, DATA, 1.0), x0).numpy(),
        expect,
        atol=1e-9 * scale,
    )
    back = pf_ode(sde, DATA, z, t_from=1.0, t_to=t_eps, n_steps=400)
    assert (back - x0).abs().max().item() < 1e-3


def test_heun_is_second_order_and_euler_first_order():
    """Halving the step divides the Heun error by ~4 and the Euler error by ~2 (Gaussian data)."""
    data = Mixture([1.0], [1.0], [0.5**2])
    x1 = torch.linspace(-2, 2, 9, dtype=DTYPE)
    _, (m1,), (sd1,) = params_at(SDES[0], 1.0, [1.0], [1.0], [0.5])
    _, (me,), (sde_,) = params_at(SDES[0], 1e-3, [1.0], [1.0], [0.5])
    expect = me + sde_ * (x1 - m1) / sd1
    for method, ratio in (("euler", 2.0), ("heun", 4.0)):
        e = [
            (pf_ode(SDES[0], data, x1, t_from=1.0, t_to=1e-3, n_steps=N, method=method) - expect)
            .abs()
            .max()
            .item()
            for N in (200, 400)
        ]
        assert e[0] / e[1] == pytest.approx(ratio, rel=0.15)


@pytest.mark.parametrize("sde", SDES, ids=["VP", "VE"])
def test_reverse_paths_run_from_one_to_t_eps(sde):
    """keep_path returns n_steps + 1 states; the ODE path is monotone in its start points."""
    x1 = torch.linspace(-1, 1, 5, dtype=DTYPE) * prior(sde).var.sqrt()
    path = pf_ode(sde, DATA, x1, t_from=1.0, t_to=1e-3, n_steps=50, keep_path=True)
    assert path.shape == (51, 5) and torch.equal(path[0], x1)
    assert (path.diff(dim=1) > 0).all()  # order is kept at every step
    sde_path = reverse_sde(
        sde, DATA, x1, n_steps=50, gen=torch.Generator().manual_seed(0), keep_path=True
    )
    assert sde_path.shape == (51, 5)


@pytest.mark.parametrize("sde", SDES, ids=["VP", "VE"])
def test_ode_log_likelihood(sde):
    """With the exact p_1 at t = 1 the ODE log-likelihood equals the closed-form log p_eps."""
    t_eps = 1e-3
    x0 = torch.tensor([-2.3, -1.0, 0.2, 1.5, 2.2], dtype=DTYPE)
    ll = ode_log_likelihood(
        sde, DATA, x0, t_eps=t_eps, n_steps=400, log_p1=marginal(sde, DATA, 1.0).log_prob
    )
    p_eps = params_at(sde, t_eps, [0.3, 0.7], [-2.0, 1.5], [0.3, 0.5])
    expect = [mix_logpdf(v, *p_eps) for v in x0.tolist()]
    np.testing.assert_allclose(ll.numpy(), expect, atol=2e-3)
    with_prior = ode_log_likelihood(sde, DATA, x0, t_eps=t_eps, n_steps=100)
    assert torch.isfinite(with_prior).all()


# ---- metrics ----------------------------------------------------------------------------
@SETTINGS
@given(xs=st.lists(st.floats(-4, 4), min_size=1, max_size=30))
def test_ks_distance_is_the_sup_over_a_fine_grid(xs):
    """KS equals sup_x |F_n(x) - Φ(x)| evaluated at each jump's both sides (brute force)."""
    x = torch.tensor(xs, dtype=DTYPE)
    n = len(xs)
    phi = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2)))  # noqa: E731
    brute = 0.0
    for v in xs:
        right = sum(u <= v for u in xs) / n
        left = sum(u < v for u in xs) / n
        brute = max(brute, abs(right - phi(v)), abs(left - phi(v)))
    assert ks_distance(x, lambda v: torch.special.ndtr(v)) == pytest.approx(brute, abs=1e-12)


def test_wasserstein1_matches_the_quantile_formula():
    """W1 = ∫_0^1 |F_n^{-1}(u) - Φ^{-1}(u)| du, on a fine midpoint grid in u."""
    x = torch.tensor([-1.3, -0.2, 0.1, 0.9, 2.5], dtype=DTYPE)
    u = (np.arange(400000) + 0.5) / 400000
    xs = np.sort(x.numpy())
    emp_q = xs[np.minimum((u * len(xs)).astype(int), len(xs) - 1)]
    norm_q = torch.special.ndtri(torch.from_numpy(u)).numpy()
    expect = np.abs(emp_q - norm_q).mean()
    assert wasserstein1(x, torch.special.ndtr, n_grid=400001) == pytest.approx(expect, abs=2e-4)


def test_plots_draw():
    """Both figures draw with the page's arguments."""
    vp = SDES[0]
    x1 = torch.linspace(-1, 1, 3, dtype=DTYPE)
    path = pf_ode(vp, DATA, x1, t_from=1.0, t_to=1e-3, n_steps=10, keep_path=True)
    fig = plot_paths(vp, DATA, path, path)
    assert len(fig.axes) == 2
    top, bottom = (ax.get_position() for ax in fig.axes)
    assert bottom.y1 <= top.y0  # panels stacked vertically, not side by side
    fig2 = plot_convergence({"a": ([5, 10], [0.1, 0.05])}, (0.01, 0.02), 0.005)
    assert fig2.axes[0].get_xscale() == "log"
    assert fig2.axes[0].get_legend() is None and len(fig2.legends) == 1  # legend off the axes
    for f in (fig, fig2):  # a 390 px phone: at most ~5.5 in wide
        assert f.get_size_inches()[0] <= 5.5
    plt.close("all")
