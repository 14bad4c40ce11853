r"""Diffusion as an SDE on 1-D Gaussian-mixture data, where every score is exact.

Forward SDE $dx = f(x, t)\,dt + g(t)\,dw$ (VP or VE). Both are linear in $x$, so the data
$p_0 = \sum_k w_k \mathcal N(\mu_k, s_k^2)$ stays a mixture at every $t$:
$p_t = \sum_k w_k \mathcal N(a(t)\mu_k,\ a(t)^2 s_k^2 + v(t))$, and $\nabla_x \log p_t$ is known.
With it we run the reverse SDE $dx = [f - g^2 \nabla \log p_t]\,dt + g\,d\bar w$ (Euler–Maruyama)
and the probability-flow ODE $dx = [f - \tfrac12 g^2 \nabla \log p_t]\,dt$ (Euler or Heun),
both with $dt < 0$, from $t = 1$ down to $t_\varepsilon$.
"""

# --8<-- [start:imports]
import math

import matplotlib.pyplot as plt
import torch

DTYPE = torch.float64  # every tensor below: 1-D data, so double precision is free
# --8<-- [end:imports]


# --8<-- [start:mixture]
class Mixture:
    r"""$\sum_k w_k\, \mathcal N(m_k, \mathrm{var}_k)$ in one dimension (tensors of shape (K,))."""

    def __init__(self, w, m, var):
        self.w, self.m, self.var = (torch.as_tensor(a, dtype=DTYPE) for a in (w, m, var))

    def log_prob(self, x):  # (N,) -> (N,)
        z = x[:, None] - self.m  # (N, K)
        log_n = -0.5 * z**2 / self.var - 0.5 * torch.log(2 * math.pi * self.var)
        return torch.logsumexp(torch.log(self.w) + log_n, dim=1)

    def score(self, x):
        r"""$\nabla_x \log p(x) = \sum_k r_k(x)\,(m_k - x)/\mathrm{var}_k$, $r_k$ = responsibilities."""
        z = x[:, None] - self.m
        log_n = -0.5 * z**2 / self.var - 0.5 * torch.log(self.var)
        r = torch.softmax(torch.log(self.w) + log_n, dim=1)  # (N, K)
        return (r * (-z / self.var)).sum(dim=1)

    def cdf(self, x):  # \sum_k w_k Φ((x - m_k)/sd_k)
        return (self.w * torch.special.ndtr((x[:, None] - self.m) / self.var.sqrt())).sum(dim=1)

    def sample(self, n, gen):
        k = torch.multinomial(self.w, n, replacement=True, generator=gen)
        return self.m[k] + self.var[k].sqrt() * torch.randn(n, generator=gen, dtype=DTYPE)

    def mean_std(self):  # closed-form moments of the mixture
        mean = (self.w * self.m).sum()
        second = (self.w * (self.var + self.m**2)).sum()
        return mean.item(), (second - mean**2).sqrt().item()


# --8<-- [end:mixture]


# --8<-- [start:sdes]
class VPSDE:
    r"""$dx = -\tfrac12\beta(t)x\,dt + \sqrt{\beta(t)}\,dw$, $\beta(t) = \beta_0 + t(\beta_1 - \beta_0)$."""

    def __init__(self, beta_0=0.1, beta_1=20.0):
        self.beta_0, self.beta_1 = beta_0, beta_1

    def beta(self, t):
        return self.beta_0 + t * (self.beta_1 - self.beta_0)

    def f(self, x, t):
        return -0.5 * self.beta(t) * x

    def g(self, t):
        return math.sqrt(self.beta(t))

    def a_v(self, t):  # x_t = a x_0 + sqrt(v) z,  a = exp(-1/2 ∫_0^t β),  v = 1 - a²
        a = math.exp(-0.25 * t**2 * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0)
        return a, 1.0 - a**2

    prior_std = 1.0  # p_1 ≈ N(0, 1)


class VESDE:
    r"""$dx = \sqrt{d\sigma^2/dt}\,dw$, $\sigma(t) = \sigma_{\min}(\sigma_{\max}/\sigma_{\min})^t$."""

    def __init__(self, sigma_min=0.01, sigma_max=10.0):
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def sigma(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def f(self, x, t):
        return torch.zeros_like(x)

    def g(self, t):  # dσ²/dt = 2σ² log(σ_max/σ_min)
        return self.sigma(t) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))

    def a_v(self, t):  # x_t = x_0 + sqrt(σ(t)² - σ(0)²) z
        return 1.0, self.sigma(t) ** 2 - self.sigma_min**2

    @property
    def prior_std(self):  # p_1 ≈ N(0, σ_max²), not N(0, 1)
        return self.sigma_max


def prior(sde) -> Mixture:
    """The Gaussian that sampling starts from: N(0, prior_std²)."""
    return Mixture([1.0], [0.0], [sde.prior_std**2])


def marginal(sde, data: Mixture, t) -> Mixture:
    r"""$p_t = \sum_k w_k \mathcal N(a\mu_k, a^2 s_k^2 + v)$: the data pushed through the forward SDE."""
    a, v = sde.a_v(t)
    return Mixture(data.w, a * data.m, a**2 * data.var + v)


# --8<-- [end:sdes]


# --8<-- [start:forward]
def forward_em(sde, x, *, t_start=0.0, t_end, n_steps, gen):
    """Euler–Maruyama for the forward SDE from t_start to t_end: x += f dt + g sqrt(dt) z."""
    dt = (t_end - t_start) / n_steps
    for i in range(n_steps):
        t = t_start + i * dt
        x = (
            x
            + sde.f(x, t) * dt
            + sde.g(t) * math.sqrt(dt) * torch.randn(x.shape, generator=gen, dtype=DTYPE)
        )
    return x


# --8<-- [end:forward]


# --8<-- [start:reverse]
def reverse_sde(sde, data, x, *, n_steps, t_eps=1e-3, gen, keep_path=False):
    r"""Euler–Maruyama for $dx = [f - g^2 \nabla\log p_t]\,dt + g\,d\bar w$ from t = 1 to t_eps.

    Time runs backwards: dt = -(1 - t_eps)/n_steps < 0, and the noise scale is sqrt(|dt|).
    """
    dt = -(1.0 - t_eps) / n_steps
    path = [x]
    for i in range(n_steps):
        t = 1.0 + i * dt
        score = marginal(sde, data, t).score(x)  # exact ∇ log p_t: a trained model would go here
        drift = sde.f(x, t) - sde.g(t) ** 2 * score
        x = (
            x
            + drift * dt
            + sde.g(t) * math.sqrt(-dt) * torch.randn(x.shape, generator=gen, dtype=DTYPE)
        )
        path.append(x)
    return torch.stack(path) if keep_path else x


def ode_drift(sde, data, x, t):  # f - ½ g² ∇ log p_t: half the reverse-SDE correction, no noise
    return sde.f(x, t) - 0.5 * sde.g(t) ** 2 * marginal(sde, data, t).score(x)


def pf_ode(sde, data, x, *, t_from, t_to, n_steps, method="heun", keep_path=False):
    """Probability-flow ODE from t_from to t_to (either direction: encode 0→1, decode 1→0).

    Euler: x += h F(x, t). Heun (2nd order): average F at x and at the Euler guess.
    """
    h = (t_to - t_from) / n_steps
    path = [x]
    for i in range(n_steps):
        t = t_from + i * h
        k1 = ode_drift(sde, data, x, t)
        if method == "euler":
            x = x + h * k1
        else:
            k2 = ode_drift(sde, data, x + h * k1, t + h)
            x = x + 0.5 * h * (k1 + k2)
        path.append(x)
    return torch.stack(path) if keep_path else x


# --8<-- [end:reverse]


# --8<-- [start:likelihood]
def ode_log_likelihood(sde, data, x, *, t_eps=1e-3, n_steps=500, log_p1=None):
    r"""$\log p_{t_\varepsilon}(x) = \log p_1(x_1) + \int_{t_\varepsilon}^1 \partial_x F(x_t, t)\,dt$.

    Heun on the pair (x, log-det); in 1-D the divergence is the derivative dF/dx (autograd).
    `log_p1` defaults to the prior's log-density (what a real model has to use).
    """

    def f_and_div(x, t):
        x = x.detach().requires_grad_(True)
        drift = ode_drift(sde, data, x, t)
        (div,) = torch.autograd.grad(drift.sum(), x)  # each x_i only moves its own drift
        return drift.detach(), div

    h = (1.0 - t_eps) / n_steps
    logdet = torch.zeros_like(x)
    for i in range(n_steps):
        t = t_eps + i * h
        k1, d1 = f_and_div(x, t)
        k2, d2 = f_and_div(x + h * k1, t + h)
        x, logdet = x + 0.5 * h * (k1 + k2), logdet + 0.5 * h * (d1 + d2)
    log_p1 = log_p1 or prior(sde).log_prob
    return log_p1(x) + logdet


# --8<-- [end:likelihood]


# --8<-- [start:metrics]
def ks_distance(samples, cdf):
    """Kolmogorov–Smirnov: sup_x |F_n(x) - F(x)| of the samples against an exact CDF."""
    x, _ = torch.sort(samples)
    n = x.numel()
    f = cdf(x)
    i = torch.arange(1, n + 1, dtype=f.dtype)
    return torch.maximum(i / n - f, f - (i - 1) / n).max().item()


def wasserstein1(samples, cdf, *, n_grid=100001):
    r"""$W_1 = \int |F_n(x) - F(x)|\,dx$, trapezoid rule on a grid that also covers F's tails."""
    x, _ = torch.sort(samples)
    pad = 10 * x.std().item() if x.numel() > 1 else 10.0
    lo, hi = x[0].item() - pad, x[-1].item() + pad
    grid = torch.linspace(lo, hi, n_grid, dtype=DTYPE)
    f_n = torch.searchsorted(x, grid, right=True) / x.numel()
    return torch.trapezoid((f_n - cdf(grid)).abs(), grid).item()


def transport_map(p_from: Mixture, p_to: Mixture, x, *, iters=100):
    r"""The 1-D flow map in closed form: $F_{\mathrm{to}}^{-1}(F_{\mathrm{from}}(x))$ (bisection).

    A deterministic flow in 1-D keeps the order of points, so it must be the monotone map.
    """
    u = p_from.cdf(x)
    lo = torch.full_like(x, (p_to.m - 40 * p_to.var.sqrt()).min().item())
    hi = torch.full_like(x, (p_to.m + 40 * p_to.var.sqrt()).max().item())
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        below = p_to.cdf(mid) < u
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


# --8<-- [end:metrics]


# --8<-- [start:plots]
def plot_paths(sde, data, sde_path, ode_path, *, t_eps=1e-3, x_lim=(-4.0, 4.0)):
    """p_t(x) as a heatmap, reverse-SDE paths above and PF-ODE paths below (t from 1 to t_eps)."""
    ts = torch.linspace(t_eps, 1.0, 120, dtype=DTYPE)
    xs = torch.linspace(*x_lim, 160, dtype=DTYPE)
    dens = torch.stack([marginal(sde, data, t.item()).log_prob(xs).exp() for t in ts])  # (T, X)
    t_path = torch.linspace(1.0, t_eps, sde_path.shape[0], dtype=DTYPE)
    fig, axes = plt.subplots(2, 1, figsize=(5.2, 6.4), sharex=True, layout="constrained")
    for ax, path, name in zip(axes, (sde_path, ode_path), ("反向 SDE", "概率流 ODE"), strict=True):
        ax.pcolormesh(
            ts.numpy(), xs.numpy(), dens.T.numpy(), cmap="viridis", shading="auto", rasterized=True
        )
        ax.plot(t_path.numpy(), path.numpy(), color="white", lw=0.8, alpha=0.9)
        ax.set(xlim=(1.0, 0.0), ylim=x_lim, ylabel="x")
        ax.set_title(f"{name}：同样的 12 个起点", fontsize=11)
    axes[1].set_xlabel("t（生成方向：从 1 到 0）")
    fig.suptitle("VP：路径不同，终点都落进数据的两个分量", fontsize=12)
    return fig


def plot_convergence(errors: dict, floor: tuple, exact_ode: float):
    """W1 to the data against the number of steps, log-log; errors: name -> (steps, W1)."""
    fig, ax = plt.subplots(figsize=(5.2, 5.4), layout="constrained")
    ax.axhspan(*floor, color="gray", alpha=0.3, lw=0, label="SDE 的抽样误差范围（精确样本）")
    ax.axhline(exact_ode, color="gray", ls=":", lw=1.5, label="ODE 的下限（精确映射分位点）")
    for (name, (steps, err)), marker in zip(errors.items(), "osD", strict=False):
        ax.loglog(steps, err, marker=marker, label=name)
    ax.set(xlabel="步数 N", ylabel="W₁（到数据分布）")
    fig.legend(loc="outside lower center", ncols=1, fontsize=10)  # below the axes, off the data
    ax.set_title("离散化误差随步数下降，Heun 最快", fontsize=11)
    return fig


# --8<-- [end:plots]


if __name__ == "__main__":
    gen = torch.Generator().manual_seed(0)
    data = Mixture([0.3, 0.7], [-2.0, 1.5], [0.3**2, 0.5**2])
    for sde in (VPSDE(), VESDE()):
        x = reverse_sde(sde, data, prior(sde).sample(20000, gen), n_steps=1000, gen=gen)
        print(type(sde).__name__, "KS", round(ks_distance(x, data.cdf), 4))
