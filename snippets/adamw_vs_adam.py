r"""Adam with L2 regularization vs AdamW (decoupled weight decay), written from scratch.

Both optimizers share Adam's bias-corrected moment estimates and differ only in where the
decay term $\lambda\theta$ enters: Adam+L2 adds it to the gradient (so it is divided by
$\sqrt{\hat v}$ like everything else), AdamW shrinks the weights directly. The step functions
are pure: they return new tensors ``(theta, m, v)`` and never modify their arguments, and
``lr`` / ``weight_decay`` may be floats or tensors that broadcast against ``theta`` (one row per
hyperparameter setting), which is how :func:`final_risk_grid` runs a whole (lr, lambda) grid at
once. The rest of the module checks them against ``torch.optim.Adam`` / ``torch.optim.AdamW``.
"""

# --8<-- [start:imports]
import math

import torch
from torch import Tensor

# --8<-- [end:imports]


# --8<-- [start:adam_direction]
def adam_direction(
    *, grad: Tensor, m: Tensor, v: Tensor, t: int, betas=(0.9, 0.999), eps: float = 1e-8
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Adam's normalized direction $u_t = \hat m_t / (\sqrt{\hat v_t} + \epsilon)$.

    ``t`` is the 1-based index of this step (1 on the first call, with m = v = 0).
    Returns ``(u, m_new, v_new)``.
    """
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * grad  # m_t = β1·m_{t-1} + (1-β1)·g_t
    v = beta2 * v + (1 - beta2) * grad * grad  # v_t = β2·v_{t-1} + (1-β2)·g_t²
    m_hat = m / (1 - beta1**t)  # bias correction: m starts at 0, so E[m_t] = (1-β1^t)·E[g]
    v_hat = v / (1 - beta2**t)
    return m_hat / (v_hat.sqrt() + eps), m, v


# --8<-- [end:adam_direction]


# --8<-- [start:steps]
def adam_l2_step(
    *, theta, grad, m, v, t, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8
) -> tuple[Tensor, Tensor, Tensor]:
    """Adam on the L2-regularized loss f(θ) + λ/2·|θ|² (torch.optim.Adam's weight_decay).

    Pure: returns the new ``(theta, m, v)``; ``t`` is the 1-based index of this step.
    """
    g = grad + weight_decay * theta  # g ← ∇f + λθ: the decay term enters m and v
    u, m, v = adam_direction(grad=g, m=m, v=v, t=t, betas=betas, eps=eps)
    return theta - lr * u, m, v  # ... and is divided by √v̂ along with ∇f


def adamw_step(
    *, theta, grad, m, v, t, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8
) -> tuple[Tensor, Tensor, Tensor]:
    """AdamW as in torch.optim.AdamW: shrink θ by (1 - γλ), then Adam on the raw gradient.

    Pure: returns the new ``(theta, m, v)``; ``t`` is the 1-based index of this step.
    """
    theta = theta * (1 - lr * weight_decay)  # θ ← θ - γλθ, outside the preconditioner
    u, m, v = adam_direction(grad=grad, m=m, v=v, t=t, betas=betas, eps=eps)
    return theta - lr * u, m, v


# --8<-- [end:steps]


# --8<-- [start:quadratic]
def random_quadratic(dim: int, *, seed: int, cond: float = 100.0) -> tuple[Tensor, Tensor]:
    r"""$f(\theta) = \frac12\theta^\top A\theta - b^\top\theta$, A SPD with eigenvalues in [1/cond, 1]."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    eig = torch.logspace(-math.log10(cond), 0.0, dim, dtype=torch.float64)
    a = q @ torch.diag(eig) @ q.T  # (dim, dim), random orthogonal eigenbasis
    b = torch.randn(dim, generator=gen, dtype=torch.float64)
    return a, b


def quadratic_grad(a: Tensor, b: Tensor, theta: Tensor) -> Tensor:
    """∇f = Aθ - b; θ may have any shape with θ.numel() == dim (it is flattened)."""
    return (a @ theta.reshape(-1) - b).reshape(theta.shape)


def run_hand(step_fn, *, a, b, theta0, steps, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
    """Run `steps` hand-written steps on the quadratic; returns the trajectory (steps+1, *shape)."""
    theta, m, v = theta0.clone(), torch.zeros_like(theta0), torch.zeros_like(theta0)
    path = [theta]
    for t in range(1, steps + 1):
        theta, m, v = step_fn(
            theta=theta,
            grad=quadratic_grad(a, b, theta),
            m=m,
            v=v,
            t=t,
            lr=lr,
            weight_decay=weight_decay,
            betas=betas,
            eps=eps,
        )
        path.append(theta)
    return torch.stack(path)


def run_torch(opt_cls, *, a, b, theta0, steps, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
    """Same problem with a torch.optim class (single-tensor path), gradients from autograd."""
    p = theta0.clone().requires_grad_(True)
    opt = opt_cls([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
    path = [p.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        x = p.reshape(-1)
        (0.5 * x @ a @ x - b @ x).backward()  # f(θ) = ½θᵀAθ - bᵀθ
        opt.step()
        path.append(p.detach().clone())
    return torch.stack(path)


def max_abs_diff(x: Tensor, y: Tensor) -> float:
    """max |x - y| over all entries, as a Python float."""
    return (x - y).abs().max().item()


# --8<-- [end:quadratic]


# --8<-- [start:param_groups]
def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: matrices/kernels decay; biases and norm scales/shifts (ndim < 2) don't."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


# --8<-- [end:param_groups]


# --8<-- [start:grid]
def make_regression(*, n: int, dim: int, noise: float, seed: int) -> dict[str, Tensor]:
    """Over-parameterized linear regression (n < dim), x ~ N(0, I), random N(0, I) init θ0."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)  # (n, dim)
    w_star = torch.randn(dim, generator=gen, dtype=torch.float64) / math.sqrt(dim)
    y = x @ w_star + noise * torch.randn(n, generator=gen, dtype=torch.float64)  # (n,)
    theta0 = torch.randn(dim, generator=gen, dtype=torch.float64)
    return {"x": x, "y": y, "w_star": w_star, "theta0": theta0, "noise": torch.tensor(noise)}


def heldout_risk(theta: Tensor, data: dict[str, Tensor]) -> Tensor:
    r"""Exact held-out loss $E(x^\top\theta - y)^2 = \|\theta - w^*\|^2 + \sigma^2$ (last dim)."""
    return ((theta - data["w_star"]) ** 2).sum(-1) + data["noise"] ** 2


def final_risk_grid(step_fn, *, lrs, lams, steps, data, per_step_decay=False) -> Tensor:
    r"""Test risk after `steps` full-batch steps, for every (lr, λ) pair at once: (len(lrs), len(lams)).

    With ``per_step_decay=True`` the λ axis is the decay per step $\gamma\lambda$ (the paper's
    λ), i.e. each cell runs with ``weight_decay = lam / lr``.
    """
    lr = lrs.reshape(-1, 1, 1).expand(-1, len(lams), 1).reshape(-1, 1)  # (G, 1), G = cells
    lam = lams.reshape(1, -1, 1).expand(len(lrs), -1, 1).reshape(-1, 1)  # (G, 1)
    wd = lam / lr if per_step_decay else lam
    x, y = data["x"], data["y"]
    theta = data["theta0"].expand(lr.shape[0], -1).clone()  # (G, dim): one model per cell
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    for t in range(1, steps + 1):
        grad = (theta @ x.T - y) @ x / len(y)  # ∇ of (1/2n)·|Xθ - y|², (G, dim)
        theta, m, v = step_fn(theta=theta, grad=grad, m=m, v=v, t=t, lr=lr, weight_decay=wd)
    return heldout_risk(theta, data).reshape(len(lrs), len(lams))


# --8<-- [end:grid]


if __name__ == "__main__":
    a, b = random_quadratic(10, seed=0)
    theta0 = torch.randn(10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    kw = dict(a=a, b=b, theta0=theta0, steps=50, lr=0.05, weight_decay=0.1)
    hand_l2, hand_w = run_hand(adam_l2_step, **kw), run_hand(adamw_step, **kw)
    print(
        f"Adam+L2 vs torch.optim.Adam : {max_abs_diff(hand_l2, run_torch(torch.optim.Adam, **kw)):.1e}"
    )
    print(
        f"AdamW   vs torch.optim.AdamW: {max_abs_diff(hand_w, run_torch(torch.optim.AdamW, **kw)):.1e}"
    )
    print(f"Adam+L2 vs AdamW            : {max_abs_diff(hand_l2, hand_w):.1e}")
