"""Tests for snippets/stochastic_approximation.py against closed forms, np.mean and NormalDist."""

import math
from statistics import NormalDist

import matplotlib.pyplot as plt
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.stochastic_approximation import (
    LEVEL,
    ROOT,
    SIGMA,
    SLOPE,
    THETA1,
    constant_step_plateau,
    exact_moments,
    expected_abs,
    incremental_mean,
    linear_observe,
    loglog_panel,
    plot_regimes,
    quantile_observe,
    quantile_root_and_slope,
    robbins_monro,
    schedule,
)

SETTINGS = settings(max_examples=20, deadline=None)


@SETTINGS
@given(
    x=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
    shift=st.floats(-1e3, 1e3),
)
def test_incremental_mean_equals_np_mean(x, shift):
    """θ ← θ + (x − θ)/n ends at np.mean(x), to 1e-12 relative to the data's scale."""
    x = np.asarray(x) + shift
    scale = max(1.0, float(np.abs(x).max()))
    assert abs(incremental_mean(x) - np.mean(x)) <= 1e-12 * scale


def test_incremental_mean_is_robbins_monro_with_one_over_n():
    """Y_n = θ_n − x_n with a_n = 1/n run through robbins_monro gives the running means."""
    x = np.random.default_rng(3).normal(5.0, 2.0, 500)
    it = iter(x)
    path = robbins_monro(lambda th, rng: th - next(it), 123.0, schedule("1/n", 500), runs=1)
    np.testing.assert_allclose(path[1:, 0], np.cumsum(x) / np.arange(1, 501), rtol=1e-12)


def test_schedules():
    """The four schedules are 1/n, n^-0.6, 0.1 and 1/n² for n = 1, 2, ..."""
    n = np.arange(1, 6)
    np.testing.assert_allclose(schedule("1/n", 5), 1 / n)
    np.testing.assert_allclose(schedule("n^-0.6", 5), n**-0.6)
    np.testing.assert_allclose(schedule("0.1", 5), [0.1] * 5)
    np.testing.assert_allclose(schedule("1/n²", 5), 1 / n**2)


@SETTINGS
@given(c=st.floats(0.05, 0.95), n=st.integers(2, 3000))
def test_exact_mean_matches_gamma_closed_form(c, n):
    """E e_n for a/n equals e_1·Γ(n − c)/(Γ(1 − c)Γ(n)), c = a·m."""
    mean, _ = exact_moments((c / SLOPE) * schedule("1/n", n - 1))
    closed = (THETA1 - ROOT) * math.exp(math.lgamma(n - c) - math.lgamma(1 - c) - math.lgamma(n))
    assert math.isclose(mean[-1], closed, rel_tol=1e-9)


def test_exact_variance_matches_direct_sum():
    """Var e_{N+1} = Σ_k a_k²σ² Π_{j>k}(1 − a_j m)², summed directly (no recursion)."""
    a = schedule("n^-0.6", 300)
    _, var = exact_moments(a)
    direct = sum(
        a[k] ** 2 * SIGMA**2 * np.prod((1 - a[k + 1 :] * SLOPE) ** 2) for k in range(len(a))
    )
    assert math.isclose(var[-1], direct, rel_tol=1e-10)


def test_constant_step_plateau_and_one_over_n_squared_limit():
    """Constant step: Var → aσ²/(m(2 − am)); 1/n²: E e → e_1·sin(π√m)/(π√m) (Euler product)."""
    _, var = exact_moments(schedule("0.1", 2000))
    assert math.isclose(var[-1], constant_step_plateau(0.1), rel_tol=1e-12)
    mean, _ = exact_moments(schedule("1/n²", 200_000))
    euler = (THETA1 - ROOT) * math.sin(math.pi * math.sqrt(SLOPE)) / (math.pi * math.sqrt(SLOPE))
    assert math.isclose(mean[-1], euler, rel_tol=1e-4)
    assert abs(mean[-1]) > 1.0  # stalls far from the root


def test_expected_abs_matches_sampling():
    """Folded-normal E|e| agrees with a large normal sample (and |μ| when s = 0)."""
    rng = np.random.default_rng(7)
    for mu, var in [(0.0, 1.0), (0.7, 0.25), (-2.0, 4.0), (3.0, 0.01)]:
        sample = np.abs(rng.normal(mu, math.sqrt(var), 400_000)).mean()
        assert abs(expected_abs(mu, var) - sample) < 5e-3 * max(1.0, abs(mu))
    assert expected_abs(-1.5, 0.0) == 1.5


def test_simulation_matches_exact_moments():
    """Monte Carlo mean and variance of e_n for each schedule sit within 4 standard errors."""
    runs = 4000
    for kind in ["1/n", "n^-0.6", "0.1", "1/n²"]:
        a = schedule(kind, 200)
        e = robbins_monro(linear_observe, THETA1, a, runs=runs, seed=11)[[10, 50, 200]] - ROOT
        mean, var = exact_moments(a)
        mean, var = mean[[10, 50, 200]], var[[10, 50, 200]]
        assert np.all(np.abs(e.mean(axis=1) - mean) < 4 * np.sqrt(var / runs)), kind
        assert np.all(np.abs(e.var(axis=1) / var - 1) < 4 * math.sqrt(2 / runs)), kind


def test_root_found_with_one_over_n():
    """a/n with a·m = 1 ends near θ* = 2: mean error within 4 exact standard errors."""
    runs = 2000
    a = schedule("1/n", 2000) / SLOPE
    theta = robbins_monro(linear_observe, THETA1, a, runs=runs, seed=5)[-1]
    _, var = exact_moments(a)
    assert abs(theta.mean() - ROOT) < 4 * math.sqrt(var[-1] / runs)
    assert math.isclose(var[-1], SIGMA**2 / SLOPE**2 / 2000, rel_tol=1e-9)  # a²σ²/((2c−1)n)


def test_quantile_root_and_convergence():
    """θ* = Φ⁻¹(0.9); a = 1/M'(θ*) gets within 0.1 after 5000 steps while a = 1 is still ≥ 0.1 off."""
    root, slope = quantile_root_and_slope()
    assert math.isclose(root, 1.2815515655446004, rel_tol=1e-12)
    assert math.isclose(slope, math.exp(-(root**2) / 2) / math.sqrt(2 * math.pi), rel_tol=1e-12)
    y = quantile_observe(np.full(200_000, root), np.random.default_rng(0))
    assert abs(y.mean()) < 4 * math.sqrt(LEVEL * (1 - LEVEL) / y.size)  # E[Y | θ*] = 0
    good = robbins_monro(quantile_observe, 0.0, schedule("1/n", 5000) / slope, runs=300, seed=2)
    slow = robbins_monro(quantile_observe, 0.0, schedule("1/n", 5000), runs=300, seed=2)
    assert np.abs(good[-1] - root).mean() < 0.1 <= np.abs(slow[-1] - root).mean()
    assert math.isclose(NormalDist().cdf(root), LEVEL, rel_tol=1e-12)


def test_plot_has_two_log_panels():
    """The figure has two log-log panels with Chinese titles and labelled curves."""
    n = np.arange(1, 11)
    curve = [("a", 1 / n, "-", "C0"), (None, 2 / n, "o", "C1")]
    fig = plot_regimes(curve, curve, n)
    axes = fig.axes
    assert len(axes) == 2 and all(ax.get_xscale() == "log" for ax in axes)
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["a"]
    fig2, ax = plt.subplots()
    loglog_panel(ax, n, curve, "标题")
    assert ax.get_title() == "标题"
    big = np.arange(1, 10_002)
    dots = np.where(big % 1000 == 0, 1.0, np.nan)
    fig3, ax = plt.subplots()
    loglog_panel(ax, big, [("x", 1 / big, "-", "C0"), (None, dots, "o", "C1")], "t")
    line, markers = ax.get_lines()
    assert line.get_xdata()[0] == 1 and line.get_xdata()[-1] == 10_001  # thinned, ends kept
    assert len(line.get_xdata()) <= 300
    assert list(markers.get_xdata()) == list(range(1000, 10_001, 1000))  # every given point
    plt.close("all")
