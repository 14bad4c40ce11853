r"""From HiPPO to S4 to Mamba at toy scale, in float64 torch.

HiPPO-LegS keeps, in $N$ numbers $c(t)$, the coefficients of the best degree-$(N-1)$ Legendre
approximation of the whole history $f(s), 0 \le s \le t$; the coefficients obey the time-varying
linear ODE $\dot c = \frac{1}{t}(A c + B f)$ (signs as in S4: $A$ has negative entries).
S4 uses the same $A$ in a time-invariant SSM $x' = Ax + Bu,\ y = Cx$, discretised with the
bilinear rule; then the recurrence $x_k = \bar A x_{k-1} + \bar B u_k$ equals a causal
convolution with the kernel $K_l = C \bar A^l \bar B$, which an FFT computes in $O(L \log L)$.
Mamba makes $\Delta, B, C$ depend on the input: the recurrence stays, the fixed kernel goes.
"""

# --8<-- [start:imports]

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import FuncFormatter, NullLocator

# --8<-- [end:imports]


# --8<-- [start:legs]
def legs_matrices(n_state: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""HiPPO-LegS $(A, B)$ with S4's signs: $\dot c = \frac{1}{t}(A c + B f)$.

    $A_{nk} = -\sqrt{2n+1}\sqrt{2k+1}$ for $n > k$, $A_{nn} = -(n+1)$, $0$ above the diagonal;
    $B_n = \sqrt{2n+1}$. (The HiPPO paper writes $-\frac{1}{t}A$ with the positive matrix.)
    """
    n = torch.arange(n_state, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)  # √(2n+1)
    A = -torch.tril(r[:, None] * r[None, :], diagonal=-1) - torch.diag(n + 1)
    return A, r.clone()


def legendre_basis(n_state: int, x: torch.Tensor) -> torch.Tensor:
    r"""$g_n(x) = \sqrt{2n+1}\,P_n(2x-1)$ on $[0, 1]$, orthonormal; shape (len(x), n_state)."""
    y = 2 * x - 1  # shifted Legendre: [0, 1] → [-1, 1]
    P = [torch.ones_like(y), y][:n_state]
    for n in range(1, n_state - 1):  # (n+1) P_{n+1} = (2n+1) y P_n - n P_{n-1}
        P.append(((2 * n + 1) * y * P[n] - n * P[n - 1]) / (n + 1))
    scale = torch.sqrt(2 * torch.arange(n_state, dtype=torch.float64) + 1)
    return torch.stack(P, dim=-1) * scale


# --8<-- [end:legs]


# --8<-- [start:memory]
def legs_memory(f: torch.Tensor, n_state: int) -> torch.Tensor:
    r"""Run the LegS memory over samples $f_1..f_L$ (step $k$ ↔ time $t = k$); return $c_L$.

    Bilinear step of $\dot c = \frac{1}{t}(Ac + Bf)$ with $\Delta t = 1$ at $t = k$, as in the
    reference code's `HiPPOScale`: $(I - \frac{A}{2k}) c_k = (I + \frac{A}{2k}) c_{k-1} + \frac{B}{k} f_k$.
    """
    A, B = legs_matrices(n_state)
    eye = torch.eye(n_state, dtype=torch.float64)
    c = torch.zeros(n_state, dtype=torch.float64)
    for k, fk in enumerate(f.tolist(), start=1):
        rhs = (eye + A / (2 * k)) @ c + B / k * fk
        c = torch.linalg.solve_triangular(eye - A / (2 * k), rhs[:, None], upper=False)[:, 0]
    return c


def reconstruct(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""History at fractions $x \in [0, 1]$ of the elapsed time: $f(xt) \approx \sum_n c_n g_n(x)$."""
    return legendre_basis(c.shape[-1], x) @ c


# --8<-- [end:memory]


# --8<-- [start:discretize]
def discretize_bilinear(A: torch.Tensor, B: torch.Tensor, dt: float):
    r"""$\bar A = (I - \frac{\Delta}{2}A)^{-1}(I + \frac{\Delta}{2}A)$, $\bar B = (I - \frac{\Delta}{2}A)^{-1}\Delta B$."""
    eye = torch.eye(A.shape[0], dtype=A.dtype)
    inv = torch.linalg.inv(eye - dt / 2 * A)
    return inv @ (eye + dt / 2 * A), inv @ (dt * B)


def discretize_zoh(A: torch.Tensor, B: torch.Tensor, dt: float):
    r"""$\bar A = e^{\Delta A}$, $\bar B = A^{-1}(e^{\Delta A} - I) B$ (input held constant over a step)."""
    Ab = torch.linalg.matrix_exp(dt * A)
    eye = torch.eye(A.shape[0], dtype=A.dtype)
    return Ab, torch.linalg.solve(A, (Ab - eye) @ B)


# --8<-- [end:discretize]


# --8<-- [start:ssm]
def ssm_scan(Ab: torch.Tensor, Bb: torch.Tensor, C: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""Recurrent form: $x_k = \bar A x_{k-1} + \bar B u_k$, $y_k = C x_k$, $x_{-1} = 0$."""
    x = torch.zeros(Ab.shape[0], dtype=Ab.dtype)
    ys = []
    for uk in u:
        x = Ab @ x + Bb * uk
        ys.append(C @ x)
    return torch.stack(ys)


def ssm_kernel(Ab: torch.Tensor, Bb: torch.Tensor, C: torch.Tensor, length: int) -> torch.Tensor:
    r"""$K = (C\bar B, C\bar A\bar B, \dots, C\bar A^{L-1}\bar B)$: the impulse response."""
    K, v = [], Bb
    for _ in range(length):
        K.append(C @ v)
        v = Ab @ v  # \bar A^{l+1} \bar B
    return torch.stack(K)


def causal_conv_fft(u: torch.Tensor, K: torch.Tensor, pad: bool = True) -> torch.Tensor:
    r"""$y_k = \sum_{j \le k} K_j u_{k-j}$ via FFT; zero-padding to $2L$ keeps it from wrapping around."""
    L = u.shape[-1]
    n = 2 * L if pad else L  # without padding: circular convolution
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)
    return y[..., :L]


# --8<-- [end:ssm]


# --8<-- [start:selective]
def selective_scan(u, delta, A, B, C):
    r"""Mamba-style selective SSM, one channel, diagonal $A$ (N,); delta (L,), B and C (L, N).

    $x_k = e^{\Delta_k A} \odot x_{k-1} + \Delta_k B_k u_k$, $y_k = C_k \cdot x_k$ (as in the
    reference `selective_scan_ref`): $\bar A_k, \bar B_k$ change with $k$, so no single kernel $K$.
    """
    x = torch.zeros(A.shape[0], dtype=A.dtype)
    ys = []
    for k in range(u.shape[0]):
        x = torch.exp(delta[k] * A) * x + delta[k] * B[k] * u[k]
        ys.append(C[k] @ x)
    return torch.stack(ys)


# --8<-- [end:selective]


# --8<-- [start:plots]
def plot_reconstruction(x, f_true, recons: dict, *, ax=None):
    """Signal against its reconstructions from LegS memories of several sizes N."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.8), layout="constrained")
    ax.plot(x, f_true, color="0.2", lw=2.2, label="原信号 f")
    for (N, y), style in zip(recons.items(), ["--", "-", ":"], strict=False):
        ax.plot(x, y, style, lw=1.6, label=f"N = {N} 重建")
    lo, hi = float(min(f_true.min(), *(y.min() for y in recons.values()))), float(f_true.max())
    ax.set_ylim(
        lo - 0.45 * (hi - lo), hi + 0.05 * (hi - lo)
    )  # room for the legend below the curves
    ax.set_xlabel("历史中的位置 s / t")
    ax.set_ylabel("f(s)")
    ax.legend(loc="lower center", ncol=len(recons) + 1, fontsize=10)
    return ax


def plot_kernels(kernels: dict, *, ax=None):
    """Envelope max_{j≥l} |K_j| / max |K| of S4 kernels for several step sizes Δ, log scale."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.6), layout="constrained")
    for dt, K in kernels.items():
        env = (
            K.abs().flip(0).cummax(0).values.flip(0) / K.abs().max()
        )  # how much of K is still ahead
        ax.semilogy(env, lw=1.8, label=f"Δ = {dt:g}")
    # plain "1e-04" labels: the default 10^k labels go through mathtext, several times slower
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("延迟 l（步）")
    ax.set_ylabel("剩余核幅度（相对最大值）")
    ax.legend(fontsize=10)
    return ax


# --8<-- [end:plots]
