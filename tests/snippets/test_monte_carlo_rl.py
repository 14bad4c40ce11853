"""Tests for snippets/monte_carlo_rl.py against closed forms, linear solves, BFS and batch means."""

from collections import deque

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.monte_carlo_rl import (
    N_WALK,
    TRUE_V,
    Maze,
    discounted_returns,
    mc_control,
    mc_prediction,
    random_walk_episode,
    rms_curves,
    value_iteration,
)

SETTINGS = settings(max_examples=25, deadline=None)


def _walk_values_by_solve():
    """v = P v + r over the 5 non-terminal states, solved as a linear system."""
    P = np.zeros((N_WALK, N_WALK))
    r = np.zeros(N_WALK)
    for i in range(N_WALK):
        for j in (i - 1, i + 1):
            if 0 <= j < N_WALK:
                P[i, j] = 0.5
            elif j == N_WALK:
                r[i] += 0.5  # exits right with reward 1
    return np.linalg.solve(np.eye(N_WALK) - P, r)


def test_true_values_solve_the_bellman_equation():
    """1/6 ... 5/6 equals the solution of (I - P) v = r for the random walk."""
    np.testing.assert_allclose(TRUE_V, _walk_values_by_solve(), atol=1e-12)


def test_random_walk_episode_is_a_walk():
    """Steps of ±1 from C, reward 1 only at the end and only when the walk leaves on the right."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        states, rewards = random_walk_episode(rng)
        assert states[0] == 3 and len(states) == len(rewards)
        assert all(abs(a - b) == 1 for a, b in zip(states, states[1:], strict=False))
        assert sum(rewards[:-1]) == 0.0
        assert rewards[-1] == (1.0 if states[-1] == N_WALK else 0.0)
        assert states[-1] in (1, N_WALK)


@SETTINGS
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=20), st.floats(0, 1))
def test_returns_equal_the_direct_sum(rewards, gamma):
    """G_t from the backward recursion equals Σ_k γ^k R_{t+k+1} summed directly."""
    G = discounted_returns(rewards, gamma)
    for t in range(len(rewards)):
        direct = sum(gamma**k * r for k, r in enumerate(rewards[t:]))
        assert abs(G[t] - direct) < 1e-9


def _batch_mc(episodes, *, first_visit, gamma):
    """The book's version: append every counted return to a list, then take np.mean."""
    lists = {s: [] for s in range(1, N_WALK + 1)}
    for states, rewards in episodes:
        for t, s in enumerate(states):
            if first_visit and s in states[:t]:
                continue
            lists[s].append(sum(gamma**k * r for k, r in enumerate(rewards[t:])))
    return np.array([np.mean(lists[s]) if lists[s] else 0.5 for s in range(1, N_WALK + 1)])


@SETTINGS
@given(st.integers(0, 10_000), st.integers(1, 40), st.booleans(), st.sampled_from([1.0, 0.9]))
def test_incremental_mean_equals_batch_mean(seed, n_episodes, first_visit, gamma):
    """V after the last episode equals np.mean of the stored returns, for both visit rules."""
    rng = np.random.default_rng(seed)
    episodes = [random_walk_episode(rng) for _ in range(n_episodes)]
    V = mc_prediction(episodes, n_states=N_WALK, first_visit=first_visit, gamma=gamma)[-1]
    np.testing.assert_allclose(
        V, _batch_mc(episodes, first_visit=first_visit, gamma=gamma), atol=1e-12
    )


def test_both_methods_converge_to_true_values():
    """After 4000 seeded episodes both estimates are within 0.03 of 1/6 ... 5/6."""
    rng = np.random.default_rng(0)
    episodes = [random_walk_episode(rng) for _ in range(4000)]
    for first_visit in (True, False):
        V = mc_prediction(episodes, n_states=N_WALK, first_visit=first_visit)[-1]
        assert np.abs(V - TRUE_V).max() < 0.03


@SETTINGS
@given(st.lists(st.integers(1, 30), min_size=1, max_size=6))
def test_loop_chain_closed_forms(lengths):
    """One state that loops N times, reward 1 per step: every-visit gives mean of N(N+1)/2 / ΣN,
    first-visit gives mean N."""
    episodes = [([1] * n, [1.0] * n) for n in lengths]
    N = np.array(lengths, dtype=float)
    every = mc_prediction(episodes, n_states=1, first_visit=False)[-1, 0]
    first = mc_prediction(episodes, n_states=1, first_visit=True)[-1, 0]
    assert abs(every - (N * (N + 1) / 2).sum() / N.sum()) < 1e-9
    assert abs(first - N.mean()) < 1e-9


def test_rms_curves_match_batch_means():
    """rms_curves equals, per episode count, the run-average of sqrt(mean_s (V - v)^2), where V is
    recomputed from stored returns (the same rng stream: run after run, episode after episode)."""
    n_runs, n_episodes, seed = 3, 12, 5
    rng = np.random.default_rng(seed)
    expected = {True: np.zeros(n_episodes), False: np.zeros(n_episodes)}
    for _ in range(n_runs):
        episodes = [random_walk_episode(rng) for _ in range(n_episodes)]
        for fv, curve in expected.items():
            for k in range(n_episodes):
                V = _batch_mc(episodes[: k + 1], first_visit=fv, gamma=1.0)
                curve[k] += np.sqrt(np.mean((V - np.arange(1, 6) / 6) ** 2)) / n_runs
    err = rms_curves(n_runs=n_runs, n_episodes=n_episodes, seed=seed)
    np.testing.assert_allclose(err["first"], expected[True], atol=1e-12)
    np.testing.assert_allclose(err["every"], expected[False], atol=1e-12)


def test_rms_curves_fall():
    """Averaged RMS error falls by more than 5x from episode 1 to episode 200."""
    err = rms_curves(n_runs=20, n_episodes=200, seed=1)
    for e in err.values():
        assert e[-1] < e[0] / 5


def _bfs_distance(maze):
    dist = {maze.goal: 0}
    queue = deque([maze.goal])
    while queue:
        s = queue.popleft()
        for p in range(maze.n_states):
            if p not in dist and any(maze.step(p, a)[0] == s for a in range(maze.n_actions)):
                dist[p] = dist[s] + 1
                queue.append(p)
    return np.array([dist[s] for s in range(maze.n_states)], dtype=float)


def test_value_iteration_is_minus_shortest_path():
    """v*(s) = -(BFS distance to the goal), and every non-goal state has one optimal action."""
    maze = Maze()
    q = value_iteration(maze)
    v = q.max(axis=1)
    v[maze.goal] = 0.0
    np.testing.assert_allclose(v, -_bfs_distance(maze), atol=1e-9)
    top2 = np.sort(q, axis=1)[:, -2:]
    gap = np.delete(top2[:, 1] - top2[:, 0], maze.goal)
    assert gap.min() >= 1.0 - 1e-9


def _eps_greedy_values_by_solve(maze, policy, epsilon):
    """v of the ε-greedy version of a deterministic policy, from a linear solve."""
    S, A = maze.n_states, maze.n_actions
    P = np.zeros((S, S))
    for s in range(S):
        if s == maze.goal:
            continue
        for a in range(A):
            prob = epsilon / A + (1 - epsilon) * (a == policy[s])
            P[s, maze.step(s, a)[0]] += prob
    r = np.full(S, -1.0)
    r[maze.goal] = 0.0
    P[:, maze.goal] = 0.0  # the goal is absorbing with value 0
    return np.linalg.solve(np.eye(S) - P, r)


def test_eps_soft_value_iteration_matches_linear_solve():
    """The best ε-soft q from DP gives, for its own greedy policy, the values of a linear solve;
    no ε-greedy policy does better, and all are below v*."""
    maze, eps = Maze(), 0.1
    q = value_iteration(maze, epsilon=eps)
    policy = q.argmax(axis=1)
    v = (1 - eps) * q.max(axis=1) + eps * q.mean(axis=1)
    v[maze.goal] = 0.0
    np.testing.assert_allclose(v, _eps_greedy_values_by_solve(maze, policy, eps), atol=1e-9)
    rng = np.random.default_rng(0)
    for _ in range(20):
        other = rng.integers(maze.n_actions, size=maze.n_states)
        assert (_eps_greedy_values_by_solve(maze, other, eps) <= v + 1e-9).all()
    v_star = value_iteration(maze).max(axis=1)
    v_star[maze.goal] = 0.0
    assert (v <= v_star + 1e-9).all()
    qp = value_iteration(maze, epsilon=eps, policy=policy)
    np.testing.assert_allclose(qp, q, atol=1e-9)


def test_mc_es_policy_equals_value_iteration_policy():
    """Monte Carlo ES (2000 episodes, three seeds) finds the value-iteration policy in every state."""
    maze = Maze()
    optimal = value_iteration(maze).argmax(axis=1)
    keep = np.arange(maze.n_states) != maze.goal
    for seed in range(3):
        _, policy, capped = mc_control(
            maze, np.random.default_rng(seed), n_episodes=2000, exploring_starts=True
        )
        np.testing.assert_array_equal(policy[keep], optimal[keep])
        assert capped > 0  # the first greedy policies walk into walls


class _LoggedMaze(Maze):
    """The same maze, recording every (s, a, s', r) that mc_control asks for."""

    def __init__(self):
        super().__init__()
        self.log = []

    def step(self, s, a):
        s2, r = super().step(s, a)
        self.log.append((s, a, s2, r))
        return s2, r


@SETTINGS
@given(st.integers(0, 10_000), st.integers(1, 30), st.booleans())
def test_control_q_is_the_mean_of_first_visit_returns(seed, n_episodes, exploring_starts):
    """Q(s, a) equals np.mean of the first-visit returns of (s, a), recomputed from the logged
    transitions (an episode ends at the goal or after max_steps); the policy is greedy in Q."""
    maze, max_steps = _LoggedMaze(), 15
    Q, policy, capped = mc_control(
        maze,
        np.random.default_rng(seed),
        n_episodes=n_episodes,
        exploring_starts=exploring_starts,
        epsilon=0.0 if exploring_starts else 0.3,
        max_steps=max_steps,
    )
    episodes, current, cut = [], [], 0
    for s, a, s2, r in maze.log:
        current.append((s, a, r))
        if s2 == maze.goal or len(current) == max_steps:
            cut += s2 != maze.goal
            episodes.append(current)
            current = []
    assert not current and len(episodes) == n_episodes and capped == cut
    returns = {}
    for episode in episodes:
        for t, (s, a, _) in enumerate(episode):
            if (s, a) not in [(x, y) for x, y, _ in episode[:t]]:
                returns.setdefault((s, a), []).append(sum(r for _, _, r in episode[t:]))
    expected = np.zeros_like(Q)
    for (s, a), g in returns.items():
        expected[s, a] = np.mean(g)
    np.testing.assert_allclose(Q, expected, atol=1e-9)
    for s in {s for s, _ in returns}:
        assert policy[s] == np.argmax(Q[s])


def test_mc_es_q_never_exceeds_q_star():
    """Each first-visit return is a deterministic policy's return (at most q*) or a cut-off one:
    the 13 non-goal states make the walk cycle within 14 steps, so every first visit comes before
    step 14 and a cut-off return is at most -(100 - 13), below every q* (>= -11). Hence Q <= q*."""
    maze = Maze()
    q_star = value_iteration(maze)
    Q, _, _ = mc_control(maze, np.random.default_rng(0), n_episodes=2000, exploring_starts=True)
    keep = np.arange(maze.n_states) != maze.goal
    assert (Q[keep] <= q_star[keep] + 1e-9).all()


def test_eps_greedy_control_follows_the_optimal_path():
    """On-policy ε-greedy MC control picks the optimal action along the path from S to G."""
    maze = Maze()
    optimal = value_iteration(maze).argmax(axis=1)
    _, policy, _ = mc_control(
        maze, np.random.default_rng(0), n_episodes=5000, exploring_starts=False, epsilon=0.1
    )
    s = maze.start
    while s != maze.goal:
        assert policy[s] == optimal[s]
        s = maze.step(s, optimal[s])[0]
