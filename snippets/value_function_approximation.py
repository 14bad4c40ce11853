r"""Linear value-function approximation on Sutton & Barto's 1000-state random walk: the exact
on-policy distribution $\mu$, the TD fixed point $w_{TD} = A^{-1} b$ with
$A = \mathbb{E}_\mu[x (x - \gamma x')^\top]$, $b = \mathbb{E}_\mu[R x]$, the Monte Carlo
(least-squares) solution, and sampled semi-gradient TD(0) and gradient Monte Carlo with
one-hot, aggregated and polynomial features.
"""

# --8<-- [start:imports]
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch  # noqa: F401  (td_step_torch takes torch tensors)

# --8<-- [end:imports]


# --8<-- [start:walk]
@dataclass
class RandomWalk:
    """States 0..n-1; each step jumps to one of the `jump` neighbours on either side, uniformly.

    A jump past the left end terminates with reward -1, past the right end with +1; all other
    rewards are 0. `P` holds transitions between non-terminal states only (rows sum to < 1 near
    the ends: the missing mass is termination).
    """

    P: np.ndarray  # (n, n)
    p_left: np.ndarray  # (n,) probability of terminating on the left
    p_right: np.ndarray  # (n,)
    start: int
    jump: int

    @property
    def n(self) -> int:
        return len(self.p_left)

    @property
    def r_bar(self) -> np.ndarray:
        """Expected one-step reward from each state: -1·P(left) + 1·P(right)."""
        return self.p_right - self.p_left


def random_walk(n: int = 1000, jump: int = 100) -> RandomWalk:
    s = np.arange(n)
    gap = np.abs(s[:, None] - s[None, :])
    P = ((gap >= 1) & (gap <= jump)) / (2 * jump)  # each of the 2·jump targets: 1/(2·jump)
    p_left = np.maximum(jump - s, 0) / (2 * jump)  # targets s-d < 0 for d = s+1..jump
    p_right = np.maximum(s + jump - (n - 1), 0) / (2 * jump)  # targets s+d > n-1
    return RandomWalk(P, p_left, p_right, start=n // 2 - 1, jump=jump)  # state 500 of 1..1000


# --8<-- [end:walk]


# --8<-- [start:exact]
def true_values(walk: RandomWalk, gamma: float) -> np.ndarray:
    """v = r̄ + γ P v, i.e. v = (I - γP)^{-1} r̄ (terminal value 0)."""
    return np.linalg.solve(np.eye(walk.n) - gamma * walk.P, walk.r_bar)


def on_policy_distribution(walk: RandomWalk) -> np.ndarray:
    """μ = η / Σ η, where η(s) = h(s) + Σ_s̄ η(s̄) P(s̄, s) counts expected visits per episode."""
    h = np.zeros(walk.n)
    h[walk.start] = 1.0
    eta = np.linalg.solve((np.eye(walk.n) - walk.P).T, h)  # η = h + Pᵀη
    return eta / eta.sum()


def td_system(walk: RandomWalk, X: np.ndarray, mu: np.ndarray, gamma: float):
    """A = Xᵀ D (X - γ P X), b = Xᵀ D r̄ with D = diag(μ); the terminal feature vector is 0."""
    XD = X.T * mu  # (k, n)
    A = XD @ (X - gamma * walk.P @ X)
    b = XD @ walk.r_bar
    return A, b


def mc_solution(X: np.ndarray, mu: np.ndarray, v: np.ndarray) -> np.ndarray:
    """argmin_w VE(w): weighted least squares (Xᵀ D X) w = Xᵀ D v."""
    XD = X.T * mu
    return np.linalg.solve(XD @ X, XD @ v)


def value_error(X: np.ndarray, w: np.ndarray, v: np.ndarray, mu: np.ndarray) -> float:
    """VE(w) = Σ_s μ(s) (v(s) - x(s)ᵀw)²."""
    return float(mu @ (v - X @ w) ** 2)


def p_norm(walk: RandomWalk, mu: np.ndarray, iters: int = 200) -> float:
    """‖P‖_μ = max_u ‖Pu‖_μ / ‖u‖_μ: the largest singular value of M = D^{1/2} P D^{-1/2},
    by power iteration on MᵀM (‖Pu‖_μ = ‖M D^{1/2} u‖₂)."""
    d = np.sqrt(mu)
    M = d[:, None] * walk.P / d  # row s scaled by √μ(s), column s' by 1/√μ(s')
    u = np.ones(walk.n)
    for _ in range(iters):
        u = M.T @ (M @ u)
        u /= np.linalg.norm(u)
    return float(np.linalg.norm(M @ u))


def expected_td(A: np.ndarray, b: np.ndarray, alpha: float, steps: int) -> np.ndarray:
    """The expected semi-gradient TD(0) update, iterated from w = 0: w ← w + α (b - A w)."""
    w = np.zeros(len(b))
    for _ in range(steps):
        w = w + alpha * (b - A @ w)
    return w


# --8<-- [end:exact]


# --8<-- [start:features]
def one_hot(n: int) -> np.ndarray:
    return np.eye(n)


def aggregation(n: int, groups: int) -> np.ndarray:
    """State s belongs to group s // (n / groups): one feature per group, equal to 1."""
    X = np.zeros((n, groups))
    X[np.arange(n), np.arange(n) * groups // n] = 1.0
    return X


def polynomial(n: int, order: int) -> np.ndarray:
    """x_i(s) = u^i, i = 0..order, with u = s / (n - 1) ∈ [0, 1]."""
    u = np.arange(n) / (n - 1)
    return u[:, None] ** np.arange(order + 1)


# --8<-- [end:features]


# --8<-- [start:sample]
def sample_episodes(walk: RandomWalk, count: int, rng: np.random.Generator):
    """Each episode: (states visited, final reward); the last state jumps out of the walk."""
    episodes = []
    for _ in range(count):
        s, states = walk.start, []
        while 0 <= s < walk.n:
            states.append(s)
            s += int(rng.integers(1, walk.jump + 1)) * (1 if rng.random() < 0.5 else -1)
        episodes.append((np.array(states), -1.0 if s < 0 else 1.0))
    return episodes


def semi_gradient_td(X, episodes, alpha: float, gamma: float, average_from=None) -> np.ndarray:
    """w ← w + α [R + γ x'ᵀw - xᵀw] x: the target's dependence on w is not differentiated.

    With `average_from=k`, return the mean of the end-of-episode weights from episode k on
    (Polyak-Ruppert averaging: same fixed point, less constant-α noise); else the last w.
    """
    w, w_sum, count = np.zeros(X.shape[1]), np.zeros(X.shape[1]), 0
    for i, (states, final_reward) in enumerate(episodes):
        for t, s in enumerate(states):
            last = t + 1 == len(states)  # jumps out: R = ±1, terminal value 0
            target = final_reward if last else gamma * (X[states[t + 1]] @ w)  # else R = 0
            w += alpha * (target - X[s] @ w) * X[s]
        if average_from is not None and i >= average_from:
            w_sum, count = w_sum + w, count + 1
    return w_sum / count if count else w


def tabular_td(n: int, episodes, alpha: float, gamma: float) -> np.ndarray:
    """Tabular TD(0): V(s) ← V(s) + α [R + γ V(s') - V(s)]."""
    V = np.zeros(n)
    for states, final_reward in episodes:
        for t, s in enumerate(states):
            target = gamma * V[states[t + 1]] if t + 1 < len(states) else final_reward
            V[s] += alpha * (target - V[s])
    return V


def gradient_mc(X, episodes, alpha: float, gamma: float, average_from=None) -> np.ndarray:
    """w ← w + α [G_t - xᵀw] x with the return G_t = γ^{T-1-t}·R_T (only the last reward ≠ 0)."""
    w, w_sum, count = np.zeros(X.shape[1]), np.zeros(X.shape[1]), 0
    for i, (states, final_reward) in enumerate(episodes):
        T = len(states)
        for t, s in enumerate(states):
            G = gamma ** (T - 1 - t) * final_reward
            w += alpha * (G - X[s] @ w) * X[s]
        if average_from is not None and i >= average_from:
            w_sum, count = w_sum + w, count + 1
    return w_sum / count if count else w


# --8<-- [end:sample]


# --8<-- [start:torch_step]
def td_step_torch(w, x, r: float, x_next, *, gamma: float, alpha: float, detach: bool = True):
    """One TD(0) step written as a loss for autograd: ½ (target - xᵀw)².

    detach=True  → gradient -δ x: semi-gradient TD.
    detach=False → gradient -δ (x - γ x'): the "residual gradient", a different algorithm.
    """
    w = w.detach().requires_grad_(True)
    target = r + gamma * (x_next @ w)
    if detach:
        target = target.detach()  # the bootstrap target is a label, not a function of w
    loss = 0.5 * (target - x @ w) ** 2
    loss.backward()
    return (w - alpha * w.grad).detach()


def residual_gradient_solution(walk: RandomWalk, X, mu, gamma: float) -> np.ndarray:
    """Fixed point of the expected detach=False update: E[(x - γx')(x - γx')ᵀ] w = E[R (x - γx')].

    Expectations over s ~ μ and s' ~ P(s, ·); terminal s' has x' = 0 and R = ±1.
    """
    XD = X.T * mu  # (k, n)
    Xn = walk.P @ X  # E[x' | s]; the terminal contributes x' = 0
    M = XD @ X - gamma * (XD @ Xn + Xn.T @ XD.T)  # E[x xᵀ] - γ E[x x'ᵀ] - γ E[x' xᵀ]
    M += gamma**2 * (X.T * (walk.P.T @ mu)) @ X  # + γ² E[x' x'ᵀ], x'x'ᵀ weighted by Σ_s μ(s)P(s,s')
    rhs = XD @ walk.r_bar  # E[R x]; E[R x'] = 0 since R ≠ 0 only on jumps into the terminal
    return np.linalg.solve(M, rhs)


# --8<-- [end:torch_step]


# --8<-- [start:plot]
def plot_staircases(v, w_mc_x, w_td_x, mu, sampled_mc=None, sampled_td=None):
    """Top: true values and the two step functions; bottom: the on-policy distribution μ."""
    s = np.arange(1, len(v) + 1)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(5.0, 5.4), height_ratios=(2.2, 1), sharex=True,
                                  layout="constrained")  # fmt: skip
    ax.plot(s, v, color="0.5", lw=2.5, label="真实价值 vπ")
    ax.step(s, w_mc_x, where="mid", color="C0", lw=1.8, label="MC 解（最小 VE）")
    ax.step(s, w_td_x, where="mid", color="C3", lw=1.8, label="TD 不动点")
    if sampled_mc is not None:
        ax.plot(s[::20], sampled_mc[::20], "o", color="C0", ms=3.5, label="梯度 MC（采样）")
    if sampled_td is not None:
        ax.plot(s[::20], sampled_td[::20], "x", color="C3", ms=4, label="半梯度 TD（采样）")
    ax.set_ylabel("价值", fontsize=11)
    ax.set_title("状态聚合：TD 台阶比 MC 更平", fontsize=12)
    ax.legend(loc="upper left", fontsize=10, frameon=False)
    ax2.plot(s, mu * 100, color="C2", lw=1.5)  # the start state is a one-state spike
    ax2.set_ylabel("μ（%）", fontsize=11)
    ax2.set_xlabel("状态", fontsize=11)
    for a in (ax, ax2):
        a.tick_params(labelsize=10)
    return fig


# --8<-- [end:plot]


if __name__ == "__main__":
    walk = random_walk()
    v, mu = true_values(walk, 1.0), on_policy_distribution(walk)
    X = aggregation(walk.n, 10)
    A, b = td_system(walk, X, mu, 1.0)
    print("w_TD:", np.linalg.solve(A, b).round(3))
    print("w_MC:", mc_solution(X, mu, v).round(3))
