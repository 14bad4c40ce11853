r"""Denoising score matching and annealed Langevin dynamics (SMLD / NCSN) on a 2-D mixture.

The data is a two-component Gaussian mixture, so the score of the noised distribution
$p_\sigma = p_{\text{data}} * \mathcal N(0, \sigma^2 I)$ is known in closed form
(`noised_score`). `ScoreNet` is a small MLP $s_\theta(x, \sigma)$ trained with denoising
score matching over ten noise levels (`dsm_loss`, `train_score_net`); `annealed_langevin`
is Algorithm 1 of Song & Ermon (2019), and with a single level it is plain Langevin dynamics.
"""

# --8<-- [start:mixture]
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

WEIGHTS = torch.tensor([0.8, 0.2])  # π_k: the mixture weights Langevin has to get right
MEANS = torch.tensor([[5.0, 5.0], [-5.0, -5.0]])  # μ_k, 10√2 ≈ 14.1 apart
STDS = torch.tensor([1.0, 1.0])  # s_k: each component is N(μ_k, s_k² I)


def sample_mixture(n: int, *, generator: torch.Generator) -> torch.Tensor:
    """n points from p_data = Σ_k π_k N(μ_k, s_k² I), shape (n, 2)."""
    k = torch.multinomial(WEIGHTS, n, replacement=True, generator=generator)
    return MEANS[k] + STDS[k, None] * torch.randn(n, 2, generator=generator)


def log_components(x, sigma, *, means=MEANS, stds=STDS):
    r"""log N(x; μ_k, (s_k² + σ²) I) for every k, shape (N, K): N(μ_k, s_k² I) ∗ N(0, σ² I)."""
    var = stds.to(x.dtype) ** 2 + sigma**2  # (K,)
    sq = ((x[:, None, :] - means.to(x.dtype)) ** 2).sum(-1)  # (N, K): ‖x − μ_k‖²
    return -sq / (2 * var) - x.shape[-1] / 2 * torch.log(2 * math.pi * var)


def noised_log_prob(x, sigma, *, weights=WEIGHTS, means=MEANS, stds=STDS):
    r"""log p_σ(x) = log Σ_k π_k N(x; μ_k, (s_k² + σ²) I), shape (N,)."""
    log_joint = torch.log(weights.to(x.dtype)) + log_components(x, sigma, means=means, stds=stds)
    return torch.logsumexp(log_joint, dim=-1)


def responsibilities(x, sigma, *, weights=WEIGHTS, means=MEANS, stds=STDS):
    r"""r_k(x) = π_k N_k(x) / Σ_j π_j N_j(x), shape (N, K), in the log domain (no underflow)."""
    log_joint = torch.log(weights.to(x.dtype)) + log_components(x, sigma, means=means, stds=stds)
    return torch.softmax(log_joint, dim=-1)


def noised_score(x, sigma, *, weights=WEIGHTS, means=MEANS, stds=STDS):
    r"""∇_x log p_σ(x) = Σ_k r_k(x) (μ_k − x) / (s_k² + σ²), shape (N, 2)."""
    var = stds.to(x.dtype) ** 2 + sigma**2  # (K,)
    r = responsibilities(x, sigma, weights=weights, means=means, stds=stds)  # (N, K)
    diff = means.to(x.dtype) - x[:, None, :]  # (N, K, 2): μ_k − x
    return (r[..., None] * diff / var[:, None]).sum(1)


# --8<-- [end:mixture]


# --8<-- [start:model]
def geometric_sigmas(sigma_max: float, sigma_min: float, levels: int) -> list[float]:
    """σ_1 > σ_2 > … > σ_L with a constant ratio σ_{i+1}/σ_i."""
    return np.geomspace(sigma_max, sigma_min, levels).tolist()


SIGMAS = geometric_sigmas(20.0, 0.1, 10)  # σ_1 = 20 > the 14.1 between the means
DATA_MEAN = WEIGHTS @ MEANS  # (2,): E[x]
# per-coordinate variance of the data: Σ_k π_k (s_k² + μ_k²) − m², averaged over the two axes
DATA_VAR = (WEIGHTS @ (STDS[:, None] ** 2 + MEANS**2) - DATA_MEAN**2).mean().item()


class ScoreNet(torch.nn.Module):
    r"""s_θ(x, σ) = −(x − m)/(v + σ²) + F_θ(x, log σ)/σ.

    The first term is the exact score of p_σ if the data were one Gaussian N(m, v I); the
    MLP adds the rest. Dividing by σ keeps F_θ of order one at every noise level.
    """

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(3, hidden),  # input: (x − m)/√(v + σ²) and log σ
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1).expand(x.shape[0], 1)
        var = DATA_VAR + sigma**2  # (N, 1)
        h = torch.cat([(x - DATA_MEAN) / var.sqrt(), sigma.log()], dim=1)  # (N, 3)
        return -(x - DATA_MEAN) / var + self.mlp(h) / sigma


# --8<-- [end:model]


# --8<-- [start:dsm]
def dsm_loss(net, x: torch.Tensor, *, sigmas: list[float], generator: torch.Generator):
    r"""½ E_i E_z ‖σ_i s_θ(x + σ_i z, σ_i) + z‖²: DSM with λ(σ) = σ², one σ_i per point."""
    i = torch.randint(len(sigmas), (x.shape[0],), generator=generator)
    sigma = torch.tensor(sigmas, dtype=x.dtype)[i][:, None]  # (B, 1)
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    x_noisy = x + sigma * z  # x̃ = x + σ z, so ∇ log q(x̃ | x) = −z/σ
    # σ² · ½‖s_θ − (−z/σ)‖² = ½‖σ s_θ + z‖²
    return 0.5 * ((sigma * net(x_noisy, sigma) + z) ** 2).sum(dim=1).mean()


def train_score_net(steps: int = 1500, batch: int = 512, lr: float = 1e-2, seed: int = 0):
    """Adam on fresh mixture samples every step; cosine decay of the learning rate."""
    torch.manual_seed(seed)  # the MLP's initial weights
    g = torch.Generator().manual_seed(seed + 1)  # data, σ_i and z
    net = ScoreNet()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    losses = []
    for _ in range(steps):
        loss = dsm_loss(net, sample_mixture(batch, generator=g), sigmas=SIGMAS, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return net.requires_grad_(False), losses


# --8<-- [end:dsm]


# --8<-- [start:langevin]
def annealed_langevin(score_fn, x, sigmas, *, eps, steps, generator, keep=0):
    r"""Algorithm 1 of Song & Ermon (2019); with one level it is plain Langevin dynamics.

    For each σ_i: α_i = ε σ_i²/σ_L², then `steps` times x ← x + (α_i/2) s(x, σ_i) + √α_i z.
    Returns the final x and the paths of the first `keep` chains, shape (L·steps + 1, keep, 2).
    """
    path = [x[:keep]]
    for sigma in sigmas:
        alpha = eps * sigma**2 / sigmas[-1] ** 2  # α_i = ε σ_i² / σ_L²
        for _ in range(steps):
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = x + alpha / 2 * score_fn(x, sigma) + math.sqrt(alpha) * z
            path.append(x[:keep])
    return x, torch.stack(path)


def major_fraction(x: torch.Tensor) -> float:
    """Share of points on the side of the 0.8 component (the line x + y = 0 splits the two)."""
    return (x.sum(dim=1) > 0).double().mean().item()


# --8<-- [end:langevin]


# --8<-- [start:figures]
def _density_image(ax, sigma, lim):
    """p_σ on a 120×120 grid as a background image."""
    t = torch.linspace(-lim, lim, 120, dtype=torch.float64)
    xx, yy = torch.meshgrid(t, t, indexing="xy")
    logp = noised_log_prob(torch.stack([xx.ravel(), yy.ravel()], 1), sigma).view(120, 120)
    ax.imshow(logp.exp().numpy(), extent=(-lim, lim, -lim, lim), origin="lower", cmap="Blues")


def plot_fields(net, paths, levels, *, steps, lim=10.0):
    """Learned score s_θ(·, σ_i) as arrows over p_σ, with the chains' paths; one panel per level."""
    size = (4.0, 3.9 * len(levels) + 0.4)  # ≤ 5.5 in wide: 10 pt text stays ≥ 9 px on a phone
    fig, axes = plt.subplots(len(levels), 1, figsize=size, layout="constrained")
    t = torch.linspace(-lim + 1, lim - 1, 15)
    xx, yy = torch.meshgrid(t, t, indexing="xy")
    grid = torch.stack([xx.ravel(), yy.ravel()], 1)
    for ax, i in zip(axes, levels, strict=True):
        sigma = SIGMAS[i]
        _density_image(ax, sigma, lim)
        s = net(grid, sigma)
        s = s / s.norm(dim=1, keepdim=True).clamp_min(1e-12) ** 0.5  # √‖s‖: short ones stay visible
        ax.quiver(grid[:, 0], grid[:, 1], s[:, 0], s[:, 1], color="0.35", width=0.006)
        seg = paths[i * steps : (i + 1) * steps + 1].numpy()  # (steps + 1, keep, 2)
        ax.plot(seg[:, :, 0], seg[:, :, 1], color="tab:orange", lw=0.8)
        ax.plot(seg[-1, :, 0], seg[-1, :, 1], "o", color="tab:red", ms=4)
        ax.set_title(f"第 {i + 1} 级  σ = {sigma:.2f}", fontsize=10)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
        ax.set(xticks=[-5, 0, 5], yticks=[-5, 0, 5])
    legend = "箭头：学到的 score；底色：p_σ\n橙线：链在这一级的路径；红点：这一级的终点"
    fig.suptitle(legend, fontsize=10)
    return fig


def plot_samples(panels: dict[str, torch.Tensor], lim=9.0, shown=800):
    """One scatter per sampler (its first `shown` points), stacked; the title: share of all points."""
    size = (3.4, 3.35 * len(panels) + 0.3)  # panels stacked, not side by side
    fig, axes = plt.subplots(len(panels), 1, figsize=size, layout="constrained")
    for ax, (name, x) in zip(axes, panels.items(), strict=True):
        ax.plot(x[:shown, 0], x[:shown, 1], ".", ms=2, alpha=0.6, color="tab:blue")
        ax.axline((0, 0), slope=-1, color="0.5", lw=0.8, ls="--")
        ax.set_title(f"{name}：右上占比 {major_fraction(x):.3f}", fontsize=10)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
        ax.set(xticks=[-5, 0, 5], yticks=[-5, 0, 5])
    fig.suptitle("右上分量的真实权重是 0.8", fontsize=10)
    return fig


# --8<-- [end:figures]


if __name__ == "__main__":
    torch.set_num_threads(1)
    net, losses = train_score_net()
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(2000, 2, generator=g) * 16 - 8
    x, _ = annealed_langevin(net, x0, SIGMAS, eps=0.003, steps=100, generator=g)
    print(f"final DSM loss {np.mean(losses[-100:]):.3f}")
    print(f"share of the 0.8 component after annealed Langevin {major_fraction(x):.3f}")
