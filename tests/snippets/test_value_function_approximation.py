"""Tests for snippets/value_function_approximation.py against brute-force sums, least squares,
power series and sampled statistics."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.value_function_approximation import (
    aggregation,
    expected_td,
    gradient_mc,
    mc_solution,
    on_policy_distribution,
    one_hot,
    p_norm,
    polynomial,
    random_walk,
    residual_gradient_solution,
    sample_episodes,
    semi_gradient_td,
    tabular_td,
    td_step_torch,
    td_system,
    true_values,
    value_error,
)

SMALL = random_walk(n=40, jump=6)


def _loop_walk(n, jump):
    """The walk's transition table built transition by transition."""
    P, left, right = np.zeros((n, n)), np.zeros(n), np.zeros(n)
    for s in range(n):
        for d in range(1, jump + 1):
            for s2 in (s - d, s + d):
                if s2 < 0:
                    left[s] += 1 / (2 * jump)
                elif s2 >= n:
                    right[s] += 1 / (2 * jump)
                else:
                    P[s, s2] += 1 / (2 * jump)
    return P, left, right


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 30), jump=st.integers(1, 12))
def test_walk_matches_loop(n, jump):
    """The vectorised transition table equals the transition-by-transition one."""
    walk = random_walk(n, jump)
    P, left, right = _loop_walk(n, jump)
    np.testing.assert_allclose(walk.P, P, atol=1e-15)
    np.testing.assert_allclose(walk.p_left, left, atol=1e-15)
    np.testing.assert_allclose(walk.p_right, right, atol=1e-15)
    np.testing.assert_allclose(walk.P.sum(1) + left + right, 1.0, atol=1e-12)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_true_values_by_iteration(gamma):
    """(I - γP)^{-1} r̄ equals iterative policy evaluation v ← r̄ + γ P v run to convergence."""
    v = np.zeros(SMALL.n)
    for _ in range(20000):
        v = SMALL.r_bar + gamma * SMALL.P @ v
    np.testing.assert_allclose(true_values(SMALL, gamma), v, atol=1e-10)


def test_on_policy_distribution_power_series():
    """η = Σ_t h Pᵗ (expected visits), normalised, equals the linear-solve μ."""
    h = np.zeros(SMALL.n)
    h[SMALL.start] = 1.0
    eta, term = np.zeros(SMALL.n), h.copy()
    for _ in range(20000):
        eta, term = eta + term, term @ SMALL.P
    np.testing.assert_allclose(on_policy_distribution(SMALL), eta / eta.sum(), atol=1e-12)


def test_sampled_episodes_statistics():
    """Mean episode length ≈ Σ η and P(exit right) ≈ Σ η·p_right, within 4 standard errors."""
    h = np.zeros(SMALL.n)
    h[SMALL.start] = 1.0
    eta = np.linalg.solve((np.eye(SMALL.n) - SMALL.P).T, h)
    eps = sample_episodes(SMALL, 4000, np.random.default_rng(0))
    lengths = np.array([len(s) for s, _ in eps])
    right = np.array([r > 0 for _, r in eps])
    assert abs(lengths.mean() - eta.sum()) < 4 * lengths.std() / np.sqrt(len(eps))
    p = eta @ SMALL.p_right
    assert abs(right.mean() - p) < 4 * np.sqrt(p * (1 - p) / len(eps))


def _loop_system(walk, X, mu, gamma):
    """A and b summed state by state, next state by next state."""
    k = X.shape[1]
    A, b = np.zeros((k, k)), np.zeros(k)
    for s in range(walk.n):
        x_next = sum(walk.P[s, s2] * X[s2] for s2 in range(walk.n))
        A += mu[s] * np.outer(X[s], X[s] - gamma * x_next)
        b += mu[s] * (walk.p_right[s] - walk.p_left[s]) * X[s]
    return A, b


@pytest.mark.parametrize("gamma", [1.0, 0.8])
@pytest.mark.parametrize("features", ["agg", "poly"])
def test_td_system_and_fixed_point(gamma, features):
    """A, b equal the explicit sums; w_TD = A⁻¹b solves the projected Bellman equation Π T v = v."""
    X = aggregation(SMALL.n, 5) if features == "agg" else polynomial(SMALL.n, 3)
    mu = on_policy_distribution(SMALL)
    A, b = td_system(SMALL, X, mu, gamma)
    A_loop, b_loop = _loop_system(SMALL, X, mu, gamma)
    np.testing.assert_allclose(A, A_loop, atol=1e-12)
    np.testing.assert_allclose(b, b_loop, atol=1e-12)
    w_td = np.linalg.solve(A, b)
    T_v = SMALL.r_bar + gamma * SMALL.P @ (X @ w_td)  # one Bellman backup of x(s)ᵀ w_TD
    np.testing.assert_allclose(mc_solution(X, mu, T_v), w_td, atol=1e-8)  # projection of it


def test_expected_update_converges_exactly():
    """Iterating w ← w + α(b - Aw) reaches A⁻¹b to float precision."""
    walk = random_walk()
    mu = on_policy_distribution(walk)
    A, b = td_system(walk, aggregation(walk.n, 10), mu, 1.0)
    alpha = 1 / np.linalg.eigvals(A).real.max()
    w = expected_td(A, b, alpha, 5000)
    np.testing.assert_allclose(w, np.linalg.solve(A, b), atol=1e-12)


def test_mc_solution_is_weighted_lstsq():
    """(XᵀDX)⁻¹XᵀDv equals lstsq on rows scaled by √μ, and minimises VE over perturbations."""
    mu = on_policy_distribution(SMALL)
    v = true_values(SMALL, 1.0)
    X = polynomial(SMALL.n, 3)
    w = mc_solution(X, mu, v)
    r = np.sqrt(mu)
    w_ls = np.linalg.lstsq(X * r[:, None], v * r, rcond=None)[0]
    np.testing.assert_allclose(w, w_ls, atol=1e-8)
    rng = np.random.default_rng(1)
    for _ in range(20):
        assert value_error(X, w, v, mu) <= value_error(X, w + 1e-3 * rng.standard_normal(4), v, mu)
    assert value_error(X, w, v, mu) == pytest.approx(float(mu @ (v - X @ w_ls) ** 2))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), alpha=st.floats(0.01, 0.5), gamma=st.floats(0.5, 1.0))
def test_one_hot_equals_tabular(seed, alpha, gamma):
    """Linear semi-gradient TD with one-hot features is tabular TD(0), bit for bit."""
    eps = sample_episodes(SMALL, 30, np.random.default_rng(seed))
    w = semi_gradient_td(one_hot(SMALL.n), eps, alpha, gamma)
    assert np.array_equal(w, tabular_td(SMALL.n, eps, alpha, gamma))


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_one_hot_fixed_points_are_true_values(gamma):
    """With one-hot features both w_TD and the MC solution are v_π."""
    mu = on_policy_distribution(SMALL)
    v = true_values(SMALL, gamma)
    A, b = td_system(SMALL, one_hot(SMALL.n), mu, gamma)
    np.testing.assert_allclose(np.linalg.solve(A, b), v, atol=1e-10)
    np.testing.assert_allclose(mc_solution(one_hot(SMALL.n), mu, v), v, atol=1e-10)


def test_sampled_td_and_mc_reach_their_fixed_points():
    """Averaged constant-α TD is near w_TD, gradient MC near the least-squares solution."""
    walk = random_walk()
    mu, v, X = on_policy_distribution(walk), true_values(walk, 1.0), aggregation(walk.n, 10)
    A, b = td_system(walk, X, mu, 1.0)
    w_td, w_mc = np.linalg.solve(A, b), mc_solution(X, mu, v)
    eps = sample_episodes(walk, 4000, np.random.default_rng(0))
    w = semi_gradient_td(X, eps, 0.005, 1.0, average_from=1000)
    m = gradient_mc(X, eps, 0.005, 1.0, average_from=1000)
    assert np.abs(w - w_td).max() < 0.03 < np.abs(w - w_mc).max()
    assert np.abs(m - w_mc).max() < 0.06 < np.abs(m - w_td).max()


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("features", ["agg", "poly"])
def test_bound(gamma, features):
    """VE_min ≤ VE(w_TD) ≤ VE_min/(1-γ²) ≤ VE_min/(1-γ) in the discounted case."""
    walk = random_walk()
    mu, v = on_policy_distribution(walk), true_values(walk, gamma)
    X = aggregation(walk.n, 10) if features == "agg" else polynomial(walk.n, 3)
    A, b = td_system(walk, X, mu, gamma)
    ve_td = value_error(X, np.linalg.solve(A, b), v, mu)
    ve_min = value_error(X, mc_solution(X, mu, v), v, mu)
    assert ve_min <= ve_td <= ve_min / (1 - gamma**2) <= ve_min / (1 - gamma)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), gamma=st.floats(0, 1), r=st.floats(-1, 1))
def test_torch_step(seed, gamma, r):
    """detach=True gives w + αδx; detach=False gives w + αδ(x - γx')."""
    rng = np.random.default_rng(seed)
    w, x, x2 = (rng.standard_normal(4) for _ in range(3))
    alpha = 0.1
    delta = r + gamma * x2 @ w - x @ w
    tw, tx, tx2 = (torch.tensor(a) for a in (w, x, x2))
    semi = td_step_torch(tw, tx, r, tx2, gamma=gamma, alpha=alpha).numpy()
    resid = td_step_torch(tw, tx, r, tx2, gamma=gamma, alpha=alpha, detach=False).numpy()
    np.testing.assert_allclose(semi, w + alpha * delta * x, atol=1e-12)
    np.testing.assert_allclose(resid, w + alpha * delta * (x - gamma * x2), atol=1e-12)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_residual_gradient_minimises_mean_squared_td_error(gamma):
    """The closed form equals lstsq over all transitions (s, s'), terminals included."""
    mu = on_policy_distribution(SMALL)
    X = aggregation(SMALL.n, 5)
    rows, targets = [], []
    for s in range(SMALL.n):
        for s2 in range(SMALL.n):  # R = 0 between non-terminal states
            rows.append(np.sqrt(mu[s] * SMALL.P[s, s2]) * (X[s] - gamma * X[s2]))
            targets.append(0.0)
        for p, reward in ((SMALL.p_left[s], -1.0), (SMALL.p_right[s], 1.0)):
            rows.append(np.sqrt(mu[s] * p) * X[s])  # terminal: x' = 0
            targets.append(np.sqrt(mu[s] * p) * reward)
    w_ls = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)[0]
    np.testing.assert_allclose(residual_gradient_solution(SMALL, X, mu, gamma), w_ls, atol=1e-9)


def test_features():
    """Aggregation: one 1 per row, equal group sizes; polynomial: powers of s/(n-1)."""
    X = aggregation(1000, 10)
    assert np.array_equal(X.sum(1), np.ones(1000))
    assert np.array_equal(X.sum(0), np.full(10, 100.0))
    assert X[99, 0] == X[100, 1] == 1
    P = polynomial(5, 2)
    np.testing.assert_allclose(P[:, 2], (np.arange(5) / 4) ** 2)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10**6), gamma=st.floats(0.3, 1.0))
def test_gradient_mc_returns(seed, gamma):
    """One-hot gradient MC with α = 1 stores, per state, the return G_t = R + γ G_{t+1} of its
    last visit (returns computed backwards from the reward list)."""
    eps = sample_episodes(SMALL, 20, np.random.default_rng(seed))
    expected = np.zeros(SMALL.n)
    for states, final_reward in eps:
        rewards = [0.0] * (len(states) - 1) + [final_reward]  # R_{t+1} for t = 0..T-1
        G, returns = 0.0, []
        for r in reversed(rewards):
            G = r + gamma * G
            returns.append(G)
        for s, G in zip(states, reversed(returns), strict=True):
            expected[s] = G
    w = gradient_mc(one_hot(SMALL.n), eps, 1.0, gamma)
    np.testing.assert_allclose(w, expected, atol=1e-12)


def test_book_example_9_1_numbers():
    """Sutton & Barto Example 9.1: state 1 terminates left w.p. 0.5, state 950 right w.p. 0.25;
    μ ≈ 1.37% at the start state 500, ≈ 0.17% one step away, ≈ 0.0147% at states 1 and 1000."""
    walk = random_walk()
    mu = on_policy_distribution(walk)
    assert walk.p_left[0] == 0.5 and walk.p_right[949] == 0.25
    assert np.argmax(mu) == 499  # state 500 of 1..1000
    assert round(mu[499] * 100, 2) == 1.37 and round(mu[498] * 100, 2) == 0.17
    assert round(mu[0] * 100, 4) == round(mu[999] * 100, 4) == 0.0147
    assert mu[99] / mu[0] > 3


@pytest.mark.parametrize("n, jump", [(40, 6), (200, 20)])
def test_p_norm_is_the_weighted_operator_norm(n, jump):
    """Power iteration equals the 2-norm of D^{1/2} P D^{-1/2} (SVD), and no u beats it."""
    walk = random_walk(n, jump)
    mu = on_policy_distribution(walk)
    d = np.sqrt(mu)
    assert p_norm(walk, mu) == pytest.approx(np.linalg.norm(d[:, None] * walk.P / d, 2), abs=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(50):
        u = rng.standard_normal(n)
        assert np.sqrt(mu @ (walk.P @ u) ** 2) <= p_norm(walk, mu) * np.sqrt(mu @ u**2) + 1e-12


@pytest.mark.parametrize("features", ["agg", "poly"])
def test_bound_at_gamma_one(features):
    """At γ = 1 the bound with ‖P‖_μ < 1 in place of γ holds: VE(w_TD) ≤ VE_min / (1 - ‖P‖²_μ)."""
    walk = random_walk()
    mu, v = on_policy_distribution(walk), true_values(walk, 1.0)
    X = aggregation(walk.n, 10) if features == "agg" else polynomial(walk.n, 3)
    A, b = td_system(walk, X, mu, 1.0)
    beta = p_norm(walk, mu)
    ve_td = value_error(X, np.linalg.solve(A, b), v, mu)
    assert beta < 1
    assert ve_td <= value_error(X, mc_solution(X, mu, v), v, mu) / (1 - beta**2)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10**6), gamma=st.floats(0.5, 1.0), k=st.integers(0, 9))
def test_aggregated_td_and_averaging_against_a_loop(seed, gamma, k):
    """State-aggregation TD written group by group, with the mean of end-of-episode weights
    from episode k on; gradient MC's average equals the mean over prefixes of its episodes."""
    eps = sample_episodes(SMALL, 10, np.random.default_rng(seed))
    group = np.arange(SMALL.n) * 5 // SMALL.n
    w, ends = np.zeros(5), []
    for states, final_reward in eps:
        for t, s in enumerate(states):
            target = gamma * w[group[states[t + 1]]] if t + 1 < len(states) else final_reward
            w[group[s]] += 0.1 * (target - w[group[s]])
        ends.append(w.copy())
    X = aggregation(SMALL.n, 5)
    np.testing.assert_allclose(semi_gradient_td(X, eps, 0.1, gamma), ends[-1], atol=1e-12)
    avg = semi_gradient_td(X, eps, 0.1, gamma, average_from=k)
    np.testing.assert_allclose(avg, np.mean(ends[k:], axis=0), atol=1e-12)
    mc_ends = [gradient_mc(X, eps[: i + 1], 0.1, gamma) for i in range(len(eps))]
    mc_avg = gradient_mc(X, eps, 0.1, gamma, average_from=k)
    np.testing.assert_allclose(mc_avg, np.mean(mc_ends[k:], axis=0), atol=1e-12)
