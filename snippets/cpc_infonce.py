r"""InfoNCE (van den Oord et al., CPC, 2018) as a cross-entropy, and its log N ceiling.

`info_nce` is the loss on a score matrix $S_{ij} = \log f(x_j, c_i)$ whose positives sit on the
diagonal; `mi_lower_bound` is $\log N - \mathcal L_N$. On correlated Gaussians the mutual
information is known in closed form (`true_mi`) and the optimal critic
$\log p(y \mid x) / p(y)$ too (`optimal_critic`), so the bound can be compared with the
truth for any batch size N (`estimate_grid`, `plot_estimates`). `leave_one_out` drops the
positive from the denominator: that is no longer a lower bound.
"""

# --8<-- [start:loss]
import math

import matplotlib.pyplot as plt
import torch


def info_nce(scores: torch.Tensor) -> torch.Tensor:
    r"""L_N = −(1/N) Σ_i log( exp S_ii / Σ_j exp S_ij ); row i: context c_i, column j: candidate x_j."""
    log_denominator = torch.logsumexp(scores, dim=-1)  # log Σ_j exp S_ij, (..., N)
    return (log_denominator - scores.diagonal(dim1=-2, dim2=-1)).mean(-1)


def mi_lower_bound(scores: torch.Tensor) -> torch.Tensor:
    r"""I_NCE = log N − L_N: every term S_ii − log Σ_j exp S_ij is ≤ 0, so I_NCE ≤ log N."""
    return math.log(scores.shape[-1]) - info_nce(scores)


# --8<-- [end:loss]


# --8<-- [start:gaussian]
def sample_pairs(n: int, dim: int, rho: float, *, batches: int = 1, generator: torch.Generator):
    r"""(x, y), each (batches, n, dim): every coordinate pair is N(0, [[1, ρ], [ρ, 1]]), pairs independent."""
    x = torch.randn(batches, n, dim, generator=generator, dtype=torch.float64)
    noise = torch.randn(batches, n, dim, generator=generator, dtype=torch.float64)
    return x, rho * x + math.sqrt(1 - rho**2) * noise  # y = ρx + √(1 − ρ²)·ε


def true_mi(dim: int, rho: float) -> float:
    r"""I(x; y) = −(d/2)·log(1 − ρ²) nats."""
    return -0.5 * dim * math.log1p(-(rho**2))


def optimal_critic(x: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
    r"""S_ij = log p(y_j | x_i) − log p(y_j), shape (..., N, N); p(y | x) = N(ρx, (1 − ρ²) I), p(y) = N(0, I)."""
    var = 1 - rho**2
    y_sq = (y**2).sum(-1)  # ‖y_j‖², (..., N)
    x_sq = (x**2).sum(-1)  # ‖x_i‖², (..., N)
    cross = x @ y.transpose(-1, -2)  # x_i · y_j, (..., N, N)
    dist = y_sq[..., None, :] - 2 * rho * cross + rho**2 * x_sq[..., :, None]  # ‖y_j − ρx_i‖²
    return -0.5 * x.shape[-1] * math.log(var) - dist / (2 * var) + y_sq[..., None, :] / 2


def leave_one_out(scores: torch.Tensor) -> torch.Tensor:
    r"""log(N − 1) − (1/N) Σ_i [log Σ_{j≠i} exp S_ij − S_ii]: the positive left out of each row's denominator."""
    n = scores.shape[-1]
    eye = torch.eye(n, dtype=torch.bool)
    log_negatives = torch.logsumexp(scores.masked_fill(eye, -math.inf), dim=-1)  # Σ over j ≠ i
    return math.log(n - 1) - (log_negatives - scores.diagonal(dim1=-2, dim2=-1)).mean(-1)


# --8<-- [end:gaussian]


# --8<-- [start:grid]
def estimate_grid(ns, dims, rho: float, *, pairs: int, generator: torch.Generator) -> torch.Tensor:
    r"""Mean I_NCE with the optimal critic, shape (len(ns), len(dims)); `pairs` // N batches of N each."""
    out = torch.empty(len(ns), len(dims), dtype=torch.float64)
    for a, n in enumerate(ns):
        for b, dim in enumerate(dims):
            x, y = sample_pairs(n, dim, rho, batches=pairs // n, generator=generator)
            out[a, b] = mi_lower_bound(optimal_critic(x, y, rho)).mean()
    return out


def plot_estimates(ns, mis, estimates: torch.Tensor):
    """InfoNCE estimate against the true MI, one line per N, each with its log N ceiling dashed."""
    fig, ax = plt.subplots(figsize=(5.0, 4.6), layout="constrained")
    ax.plot(mis, mis, color="0.5", lw=1.0, label="估计 = 真值")
    # mid-tone colours: readable on the light page and, unchanged, on the dark one
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for n, row, color in zip(ns, estimates, colors[: len(ns)], strict=True):
        ax.plot(mis, row, "o-", ms=3.5, color=color, label=f"N = {n}")
        ax.axhline(math.log(n), color=color, ls="--", lw=0.9)
    ax.set(xlabel="真实互信息 I(x; y)（nat）", ylabel="InfoNCE 估计 log N − L（nat）")
    ax.set(xlim=(0, max(mis) * 1.02), ylim=(0, max(mis) * 1.02))
    ax.set_title("最优打分函数下，估计被 log N（虚线）封顶", fontsize=10)
    fig.legend(loc="outside lower center", ncol=3, fontsize=10, frameon=False)
    return fig


# --8<-- [end:grid]

if __name__ == "__main__":
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(8, 8, generator=g)
    print(
        info_nce(scores).item(), torch.nn.functional.cross_entropy(scores, torch.arange(8)).item()
    )
    ns, dims = [16, 256], [1, 4, 12]
    print(estimate_grid(ns, dims, 0.9, pairs=4096, generator=g))
