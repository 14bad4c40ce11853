r"""Robbins–Monro stochastic approximation from scratch: find the root $\theta^*$ of an increasing
$M$ seen only through noisy observations $Y_n$ with $\mathbb{E}[Y_n \mid \theta_n] = M(\theta_n)$,
by $\theta_{n+1} = \theta_n - a_n Y_n$. Four step-size schedules on a linear $M$ whose error
moments have an exact recursion, the incremental mean as $a_n = 1/n$, and a quantile (a
nonlinear $M$ observed through 0/1 outcomes) where the gain $a \cdot M'(\theta^*)$ decides the rate.
"""

# --8<-- [start:imports]
import math
from statistics import NormalDist

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

# --8<-- [end:imports]


# --8<-- [start:robbins_monro]
def robbins_monro(observe, theta1, step_sizes, *, runs, seed=0):
    r"""Run ``runs`` independent chains of θ_{n+1} = θ_n − a_n·Y_n, Y_n = observe(θ_n, rng).

    ``step_sizes[k]`` is a_{k+1}. Returns θ_1 … θ_{N+1} as an array of shape (N + 1, runs).
    """
    rng = np.random.default_rng(seed)
    theta = np.full(runs, float(theta1))  # (R,)
    path = np.empty((len(step_sizes) + 1, runs))
    path[0] = theta
    for k, a in enumerate(step_sizes):
        theta = theta - a * observe(theta, rng)  # θ_{n+1} = θ_n − a_n·Y_n
        path[k + 1] = theta
    return path


def schedule(kind, n_steps):
    """a_1 … a_N for the four regimes of the article (n counts from 1)."""
    n = np.arange(1, n_steps + 1, dtype=float)
    table = {
        "1/n": 1.0 / n,  # Σa = ∞, Σa² < ∞
        "n^-0.6": n**-0.6,  # Σa = ∞, Σa² < ∞ (0.6 > 1/2)
        "0.1": np.full(n_steps, 0.1),  # Σa² = ∞: never stops moving
        "1/n²": 1.0 / n**2,  # Σa < ∞: runs out of steps
    }
    return table[kind]


# --8<-- [end:robbins_monro]


# --8<-- [start:linear]
SLOPE, ROOT, SIGMA, THETA1 = 2.0, 2.0, 1.0, -8.0  # M(θ) = m·(θ − θ*), noise std σ, start θ_1


def linear_observe(theta, rng, slope=SLOPE, root=ROOT, sigma=SIGMA):
    """Y = m·(θ − θ*) + σ·ε, ε ~ N(0, 1): a noisy reading of the linear M."""
    return slope * (theta - root) + sigma * rng.standard_normal(theta.shape)


def exact_moments(step_sizes, *, slope=SLOPE, sigma=SIGMA, e1=THETA1 - ROOT):
    r"""Mean and variance of e_n = θ_n − θ* for the linear M, n = 1 … N+1, without sampling.

    e_{n+1} = (1 − a_n m)·e_n − a_n σ ε_n, so
    E e_{n+1} = (1 − a_n m)·E e_n and Var e_{n+1} = (1 − a_n m)²·Var e_n + a_n² σ².
    """
    mean, var = [float(e1)], [0.0]
    for a in step_sizes:
        mean.append((1 - a * slope) * mean[-1])
        var.append((1 - a * slope) ** 2 * var[-1] + (a * sigma) ** 2)
    return np.array(mean), np.array(var)


def expected_abs(mean, var):
    r"""E|e| for e ~ N(μ, s²) (folded normal): s·√(2/π)·exp(−μ²/2s²) + μ·erf(μ/(s√2))."""
    mean, s = np.asarray(mean, float), np.sqrt(np.asarray(var, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        folded = s * math.sqrt(2 / math.pi) * np.exp(-(mean**2) / (2 * s**2)) + mean * np.vectorize(
            math.erf
        )(mean / (s * math.sqrt(2)))
    return np.where(s > 0, folded, np.abs(mean))  # s = 0: e is the constant μ


def constant_step_plateau(a, *, slope=SLOPE, sigma=SIGMA):
    r"""Stationary Var e for a constant step: v = (1 − am)²·v + a²σ²  ⇒  v = aσ²/(m(2 − am))."""
    return a * sigma**2 / (slope * (2 - a * slope))


# --8<-- [end:linear]


# --8<-- [start:mean]
def incremental_mean(x):
    r"""θ_{n+1} = θ_n + (x_n − θ_n)/n: Robbins–Monro with Y_n = θ_n − x_n and a_n = 1/n."""
    theta = 0.0  # θ_1 is irrelevant: a_1 = 1 overwrites it with x_1
    for n, xn in enumerate(x, start=1):
        theta += (xn - theta) / n
    return theta


# --8<-- [end:mean]


# --8<-- [start:quantile]
LEVEL = 0.9  # find θ* with P(X ≤ θ*) = 0.9 for X ~ N(0, 1)


def quantile_observe(theta, rng, level=LEVEL):
    """Y = 1{X ≤ θ} − p with a fresh X ~ N(0, 1): E[Y] = Φ(θ) − p, a nonlinear increasing M."""
    return (rng.standard_normal(theta.shape) <= theta).astype(float) - level


def quantile_root_and_slope(level=LEVEL):
    """θ* = Φ⁻¹(p) and M'(θ*) = φ(θ*), from the standard library's NormalDist."""
    root = NormalDist().inv_cdf(level)
    return root, NormalDist().pdf(root)


# --8<-- [end:quantile]


# --8<-- [start:plot]
def loglog_panel(ax, n, curves, title):
    """One log-log panel. Each curve is (label, y, fmt, color); label None keeps it out of the legend."""
    line_at = np.unique(np.geomspace(1, len(n), 300).round().astype(int)) - 1  # log-spaced: enough
    for label, y, fmt, color in curves:
        at = line_at if fmt != "o" else np.flatnonzero(np.isfinite(y))  # markers: where y is given
        ax.loglog(n[at], y[at], fmt, label=label or "_nolegend_", color=color, lw=1.6, ms=4)
    ax.set(xlabel="迭代次数 n", ylabel="平均 |θₙ − θ*|", title=title)
    ax.grid(alpha=0.3, which="major")
    ax.xaxis.set_minor_formatter(NullFormatter())  # no minor labels (and no time spent on them)
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)


def plot_regimes(regime_curves, quantile_curves, n):
    """Top: four schedules on the linear M; bottom: two gains on the 0.9 quantile (both log-log)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.0, 8.6))
    fig.subplots_adjust(hspace=0.62)  # room for the top legend (a fixed layout draws faster)
    loglog_panel(top, n, regime_curves, "线性 M：只有 1/n 和 n^-0.6 一直逼近根")
    loglog_panel(bottom, n, quantile_curves, "0.9 分位数：a·M'(θ*) < 1/2 时很慢")
    return fig


# --8<-- [end:plot]


if __name__ == "__main__":
    steps = schedule("1/n", 1000)
    path = robbins_monro(linear_observe, THETA1, steps, runs=500)
    mean, var = exact_moments(steps)
    print(
        f"1/n, n=1001: simulated E|e| {np.abs(path[-1] - ROOT).mean():.4f}, "
        f"exact {expected_abs(mean[-1], var[-1]):.4f}"
    )
    x = np.random.default_rng(0).normal(3.0, 1.0, 10_000)
    print(f"incremental mean - np.mean = {incremental_mean(x) - np.mean(x):.1e}")
