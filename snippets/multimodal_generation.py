r"""Discrete vs continuous image tokens, seen through rate-distortion theory.

A memoryless Gaussian source N(0, σ²) has the distortion-rate function D(R) = σ²·2^{-2R}
(mean squared error per dimension at R bits per dimension). This module measures how close the
tokenizers behind multimodal generators come to it: the Lloyd-Max scalar quantizer (exact, from
Gaussian integrals); a uniform grid as in FSQ, at a fixed rate or with an ideal categorical prior
that pays the index entropy; Lloyd (k-means) vector quantizers on d-dimensional vectors; an online
VQ whose unused codes die; and a continuous latent (a linear Gaussian VAE) whose rate is its KL.
"""

# --8<-- [start:imports]
import math

import matplotlib.pyplot as plt
import torch

# --8<-- [end:imports]


# --8<-- [start:bound]
def shannon_distortion(rate, var: float = 1.0) -> torch.Tensor:
    r"""D(R) = σ²·2^{-2R}: the least MSE per dimension of N(0, σ²) at R bits per dimension."""
    return var * 2.0 ** (-2 * torch.as_tensor(rate, dtype=torch.float64))


def gap_db(mse, rate, var: float = 1.0) -> torch.Tensor:
    """Distance above the bound in dB: 10·log10(D / D(R)); 6.02 dB is one bit per dimension."""
    return 10 * torch.log10(
        torch.as_tensor(mse, dtype=torch.float64) / shannon_distortion(rate, var)
    )


# --8<-- [end:bound]


# --8<-- [start:scalar]
def _phi(t: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * t**2) / math.sqrt(2 * math.pi)  # standard normal density φ(t)


def cell_moments(thresholds: torch.Tensor):
    r"""For X ~ N(0,1) and the cells (t_{k-1}, t_k] cut by sorted thresholds (±∞ added):
    P_k = ∫φ, M1_k = ∫xφ = φ(a)−φ(b), M2_k = ∫x²φ = P_k + aφ(a) − bφ(b)."""
    inf = torch.tensor([math.inf], dtype=torch.float64)
    edges = torch.cat([-inf, thresholds.to(torch.float64), inf])
    a, b = edges[:-1], edges[1:]
    P = torch.special.ndtr(b) - torch.special.ndtr(a)
    t_phi = torch.where(edges.isinf(), 0.0, edges * _phi(edges))  # t·φ(t) → 0 at ±∞
    M1 = _phi(a) - _phi(b)
    M2 = P + t_phi[:-1] - t_phi[1:]
    return P, M1, M2


def scalar_mse(thresholds: torch.Tensor, codewords: torch.Tensor) -> torch.Tensor:
    r"""Exact E[(X − Q(X))²] = Σ_k ∫_{cell k} (x − c_k)² φ(x) dx = Σ M2 − 2c·M1 + c²·P."""
    P, M1, M2 = cell_moments(thresholds)
    return (M2 - 2 * codewords * M1 + codewords**2 * P).sum()


def index_entropy(thresholds: torch.Tensor) -> torch.Tensor:
    """H(index) in bits: what an ideal categorical prior pays per symbol (≤ log2 K)."""
    P = cell_moments(thresholds)[0].clamp_min(1e-300)
    return -(P * torch.log2(P)).sum()


def lloyd_max(levels: int, iters: int = 400):
    """Lloyd's two conditions iterated on N(0,1) itself (no samples): thresholds, codewords."""
    u = (torch.arange(levels, dtype=torch.float64) + 0.5) / levels
    c = math.sqrt(3) * torch.special.ndtri(u)  # start: point density ∝ φ^{1/3}, i.e. N(0, 3)
    for _ in range(iters):
        t = (c[:-1] + c[1:]) / 2  # nearest neighbour: thresholds halfway between codewords
        P, M1, _ = cell_moments(t)
        c = M1 / P  # centroid: c_k = E[X | X in cell k]
    return (c[:-1] + c[1:]) / 2, c


def uniform_grid(levels: int, step: float):
    """FSQ-style: L equally spaced values, symmetric about 0; thresholds halfway."""
    c = step * (torch.arange(levels, dtype=torch.float64) - (levels - 1) / 2)
    return (c[:-1] + c[1:]) / 2, c


def best_uniform_step(levels: int, lo: float = 1e-3, hi: float = 4.0, iters: int = 80) -> float:
    """Golden-section search of the step that minimises the grid's MSE (unimodal in log step)."""
    f = lambda s: scalar_mse(*uniform_grid(levels, s)).item()  # noqa: E731
    g = (math.sqrt(5) - 1) / 2
    a, b = math.log(lo), math.log(hi)
    for _ in range(iters):
        m1, m2 = b - g * (b - a), a + g * (b - a)
        if f(math.exp(m1)) < f(math.exp(m2)):
            b = m2
        else:
            a = m1
    return math.exp((a + b) / 2)


def entropy_coded_uniform(step: float, span: float = 10.0):
    """A grid with no overload (covers ±span·σ): (H(index) bits, MSE) for one step size."""
    levels = 2 * math.ceil(span / step) + 1  # odd: 0 is a codeword
    t, c = uniform_grid(levels, step)
    return index_entropy(t).item(), scalar_mse(t, c).item()


# --8<-- [end:scalar]


# --8<-- [start:vq]
def quantize(x: torch.Tensor, codebook: torch.Tensor):
    """Nearest codeword by ‖x − c‖² = ‖x‖² − 2x·c + ‖c‖² (‖x‖² does not change the argmin):
    (indices (N,), per-dimension MSE)."""
    idx = torch.addmm((codebook**2).sum(1), x, codebook.T, alpha=-2).argmin(1)  # (N, K) -> (N,)
    return idx, ((x - codebook[idx]) ** 2).mean()


def kmeans(x: torch.Tensor, k: int, iters: int = 30, seed: int = 0) -> torch.Tensor:
    """Lloyd's algorithm on samples (the LBG / k-means VQ): codebook (k, d)."""
    g = torch.Generator().manual_seed(seed)
    codebook = x[torch.randperm(len(x), generator=g)[:k]].clone()  # k distinct samples
    for _ in range(iters):
        idx, _ = quantize(x, codebook)
        counts = torch.bincount(idx, minlength=k).unsqueeze(1)
        sums = torch.zeros_like(codebook).index_add_(0, idx, x)
        codebook = torch.where(counts > 0, sums / counts.clamp_min(1), codebook)  # centroids
    return codebook


def perplexity(idx: torch.Tensor, k: int) -> float:
    """2^{H(usage)}: the number of codes effectively in use."""
    p = torch.bincount(idx, minlength=k).double() / len(idx)
    p = p[p > 0]
    return 2 ** -(p * torch.log2(p)).sum().item()


def online_vq(
    data,
    k: int,
    steps: int,
    batch: int,
    decay: float = 0.9,
    reseed: bool = False,
    init_scale: float = 0.01,
    seed: int = 0,
) -> torch.Tensor:
    """Minibatch VQ as trained inside a VQ-VAE: only the codes that win move (EMA of their
    assigned means). With reseed, codes that won nothing in a batch jump to a batch sample."""
    g = torch.Generator().manual_seed(seed)
    d = data.shape[1]
    codebook = init_scale * torch.randn(k, d, generator=g, dtype=data.dtype)
    for _ in range(steps):
        x = data[torch.randint(len(data), (batch,), generator=g)]
        idx, _ = quantize(x, codebook)
        counts = torch.bincount(idx, minlength=k).unsqueeze(1)
        means = torch.zeros_like(codebook).index_add_(0, idx, x) / counts.clamp_min(1)
        won = counts > 0
        codebook = torch.where(won, decay * codebook + (1 - decay) * means, codebook)
        if reseed:  # dead codes restart on data (what FSQ's abstract calls codebook reseeding)
            pick = x[torch.randint(batch, (k,), generator=g)]
            codebook = torch.where(won, codebook, pick)
    return codebook


# --8<-- [end:vq]


# --8<-- [start:vae]
def gaussian_vae_rd(a, s, b):
    r"""Linear Gaussian VAE on X ~ N(0,1): q(z|x) = N(a·x, s²), prior N(0,1), x̂ = b·z.
    D = E(x − b z)² = (1−ab)² + b²s²;  R = E KL(q‖p) = ½(a² + s² − 1 − ln s²) nats → bits."""
    D = (1 - a * b) ** 2 + b**2 * s**2
    R = 0.5 * (a**2 + s**2 - 1 - torch.log(s**2)) / math.log(2)
    return R, D


def train_gaussian_vae(lams, steps: int = 600, batch: int = 512, lr: float = 0.05, seed: int = 0):
    """Minimise D + λ·KL (nats) by SGD with the reparameterisation z = a·x + s·ε, one VAE per λ
    (all trained side by side: parameters of shape (len(lams),), losses summed)."""
    g = torch.Generator().manual_seed(seed)
    lam = torch.as_tensor(lams, dtype=torch.float64)
    a, log_s, b = (torch.full_like(lam, v, requires_grad=True) for v in (1.0, -1.0, 1.0))
    opt = torch.optim.Adam([a, log_s, b], lr=lr)
    sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.01, total_iters=steps)  # anneal the noise
    for _ in range(steps):
        x = torch.randn(batch, 1, generator=g, dtype=torch.float64)  # (B, 1) against (n,)
        eps = torch.randn(batch, len(lam), generator=g, dtype=torch.float64)
        s = log_s.exp()
        z = a * x + s * eps  # z ~ q(z|x), differentiable in (a, s)
        distortion = ((x - b * z) ** 2).mean(0)
        kl = 0.5 * (a**2 * x**2 + s**2 - 1 - 2 * log_s).mean(0)  # KL(N(ax, s²) ‖ N(0, 1))
        opt.zero_grad()
        (distortion + lam * kl).sum().backward()
        opt.step()
        sched.step()
    return a.detach(), log_s.detach().exp(), b.detach()


# --8<-- [end:vae]


# --8<-- [start:tokens]
def token_budget(height: int, width: int, tokens: int, codebook: int) -> dict:
    """The most a grid of discrete tokens can carry: tokens·log2 K bits per image."""
    bits = tokens * math.log2(codebook)
    return {
        "bits/token": math.log2(codebook),
        "bits/image": bits,
        "bits/pixel": bits / (height * width),
        "bits/value": bits / (height * width * 3),
    }


# --8<-- [end:tokens]


# --8<-- [start:plot]
def plot_rd(series: dict, rates: torch.Tensor):
    """Top: MSE vs bits per dimension (log scale) with D(R). Bottom: the gap in dB."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(5.3, 8.6), sharex=True, layout="constrained")
    ax1.semilogy(rates, shannon_distortion(rates), "k-", lw=2, label="香农界 D(R)=σ²·2^(−2R)")
    ax2.axhline(0, color="k", lw=2)
    for (name, (r, d)), m in zip(series.items(), "osD^vPX", strict=False):
        r, d = torch.as_tensor(r), torch.as_tensor(d)
        ax1.semilogy(r, d, marker=m, ms=5, lw=1, zorder=3, label=name)  # above the bound's line
        ax2.plot(r, gap_db(d, r), marker=m, ms=5, lw=1, zorder=3)
    ax1.set(ylabel="均方误差 D（每维）", ylim=(1e-5, 1.2))
    fig.legend(fontsize=10, loc="outside lower center", ncols=1)  # below the panels, off the data
    ax1.set_title("N(0,1) 信源：各种量化器的率失真点与香农界", fontsize=11)
    ax2.set(xlabel="码率 R（比特/维）", ylabel="高出香农界（dB）", xlim=(0, 8.2))
    ax2.set_title("距离香农界还差多少：每 6.02 dB 相当于 1 比特/维", fontsize=10)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    return fig


# --8<-- [end:plot]

if __name__ == "__main__":
    t, c = lloyd_max(2)
    print(f"Lloyd-Max K=2: codewords {c.tolist()}, MSE {scalar_mse(t, c).item():.6f} (1 - 2/pi)")
    for K in (2, 16, 256):
        d = scalar_mse(*lloyd_max(K)).item()
        print(f"K={K}: MSE {d:.4g}, {gap_db(d, math.log2(K)):.2f} dB above D(R)")
