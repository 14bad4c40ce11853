r"""The gated attention unit (GAU) and mixed-chunk attention of FLASH (Hua et al., ICML 2022).

GAU: from one input $X$ it computes a gate $U = \phi(XW_u)$, values $V = \phi(XW_v)$ and a small
shared representation $Z = \phi(XW_z)$; queries and keys are per-dimension scale-and-offset copies
of $Z$; the single-head attention weights are $\mathrm{relu}^2$ of the scaled scores, with no
softmax; the output is $O = (U \odot AV)W_o$.

Mixed-chunk attention splits the sequence into chunks of length $C$: exact (quadratic) attention
inside each chunk, plus linear attention across chunks, whose causal form is an exclusive
cumulative sum of per-chunk key-value states. `mixed_chunk_naive` writes the same quantity as two
masked $N \times N$ matrices; `flops` counts both forms with `torch.utils.flop_counter`.

Normalization (our choice, stated on the page): the quadratic part uses $\mathrm{relu}(qk/C)^2$
inside chunks (and $\mathrm{relu}(qk/N)^2$ for the full GAU), the linear part is divided by $N$.
"""

# --8<-- [start:imports]
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.patches import Patch, Rectangle
from torch.utils.flop_counter import FlopCounterMode

# --8<-- [end:imports]


# --8<-- [start:params]
def init_params(*, d, e, s, n_qk=2, generator=None, dtype=torch.float64, device="cpu"):
    """Weights of one GAU layer: W_u, W_v (d, e), W_z (d, s), W_o (e, d), n_qk scale/offset pairs."""

    def w(*shape, fan_in):
        return torch.randn(*shape, generator=generator, dtype=dtype).to(device) / math.sqrt(fan_in)

    return {
        "W_u": w(d, e, fan_in=d),
        "W_v": w(d, e, fan_in=d),
        "W_z": w(d, s, fan_in=d),
        "W_o": w(e, d, fan_in=e),
        "gamma": 1.0 + 0.1 * w(n_qk, s, fan_in=1),  # per-dim scale, one row per Q/K copy
        "beta": 0.1 * w(n_qk, s, fan_in=1),  # per-dim offset
    }


def scale_offset(z, gamma, beta):
    """(n, s) -> (h, n, s): copy h = z·γ_h + β_h, a LayerNorm-like per-dimension affine map."""
    return z[None] * gamma[:, None, :] + beta[:, None, :]


# --8<-- [end:params]


# --8<-- [start:gau]
def gau(x, p, *, causal):
    """Full (quadratic) GAU: O = (U ⊙ A V) W_o with A = relu(Q Kᵀ / n)², one head, no softmax."""
    n = x.shape[0]
    u = F.silu(x @ p["W_u"])  # (n, e) gate U
    v = F.silu(x @ p["W_v"])  # (n, e) values V
    z = F.silu(x @ p["W_z"])  # (n, s) shared Z, s ≪ e
    q, k = scale_offset(z, p["gamma"][:2], p["beta"][:2])  # Q = Z·γ_q + β_q, K = Z·γ_k + β_k
    a = F.relu(q @ k.T / n) ** 2  # (n, n) A = relu²(QKᵀ / n)
    if causal:
        a = a.tril()  # token i only sees j ≤ i
    return (u * (a @ v)) @ p["W_o"]  # gating: U ⊙ (AV), then W_o


# --8<-- [end:gau]


# --8<-- [start:mixed_chunk]
def mixed_chunk_attention(qq, kq, ql, kl, v, *, chunk, causal):
    r"""Quadratic attention within chunks of length C + linear attention across chunks. O(N·C)."""
    n = v.shape[0]
    g = -(-n // chunk)  # number of chunks, ⌈N / C⌉
    pad = g * chunk - n  # zero rows: padded keys and values contribute exactly 0

    def chunked(t):  # (n, ·) -> (g, C, ·)
        return F.pad(t, (0, 0, 0, pad)).reshape(g, chunk, t.shape[-1])

    qq, kq, ql, kl, v = map(chunked, (qq, kq, ql, kl, v))
    # local: A_g = relu(Q_g K_gᵀ / C)², one C×C block per chunk
    a = F.relu(torch.einsum("gns,gms->gnm", qq, kq) / chunk) ** 2
    if causal:
        a = a.tril()  # within a chunk: j ≤ i
    local = torch.einsum("gnm,gme->gne", a, v)
    # global: per-chunk state S_g = K_gᵀ V_g (s × e)
    kv = torch.einsum("gcs,gce->gse", kl, v)
    kv = (
        F.pad(kv[:-1], (0, 0, 0, 0, 1, 0)).cumsum(0)  # causal, exclusive cumsum: Σ_{h < g} S_h
        if causal
        else kv.sum(0, keepdim=True)  # non-causal: Σ_h S_h over every chunk
    )
    glob = torch.einsum("gcs,gse->gce", ql, kv) / n  # Q_g · state, divided by N
    return (local + glob).reshape(g * chunk, -1)[:n]


def flash(x, p, *, chunk, causal):
    """FLASH layer: GAU whose attention is mixed-chunk; four scale/offset copies of Z."""
    u = F.silu(x @ p["W_u"])
    v = F.silu(x @ p["W_v"])
    z = F.silu(x @ p["W_z"])
    qq, kq, ql, kl = scale_offset(z, p["gamma"], p["beta"])  # quad Q/K, linear Q/K
    return (u * mixed_chunk_attention(qq, kq, ql, kl, v, chunk=chunk, causal=causal)) @ p["W_o"]


# --8<-- [end:mixed_chunk]


# --8<-- [start:naive]
def chunk_masks(n, chunk, *, causal):
    """Two (n, n) boolean masks: the local (quadratic) part and the global (linear) part."""
    i = torch.arange(n)[:, None]  # query position
    j = torch.arange(n)[None, :]  # key position
    ci, cj = i // chunk, j // chunk  # chunk index of each
    local = ci == cj
    if causal:
        return local & (j <= i), cj < ci  # same chunk and j ≤ i; strictly earlier chunks
    return local, torch.ones(n, n, dtype=torch.bool)  # the linear part sees every chunk


def mixed_chunk_naive(qq, kq, ql, kl, v, *, chunk, causal):
    """The same quantity as mixed_chunk_attention, written as two masked N×N matrices: O(N²)."""
    n = v.shape[0]
    m_loc, m_glob = chunk_masks(n, chunk, causal=causal)
    a_loc = F.relu(qq @ kq.T / chunk) ** 2 * m_loc  # relu²(q_i·k_j / C) where i, j share a chunk
    a_glob = (ql @ kl.T) / n * m_glob  # (q_i·k_j) / N on the chunk-causal part
    return (a_loc + a_glob) @ v


# --8<-- [end:naive]


# --8<-- [start:flops]
def flops(fn, *args, **kwargs):
    """FLOPs of one call counted by FlopCounterMode (matmul/einsum only; a multiply-add is 2)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


def full_attention(q, k, v, *, causal):
    """Quadratic relu² attention over the whole sequence (the GAU core): relu(QKᵀ/N)² V."""
    a = F.relu(q @ k.T / q.shape[0]) ** 2
    return (a.tril() if causal else a) @ v


# --8<-- [end:flops]


# --8<-- [start:draw]
def draw_masks(ax, n, chunk, *, causal, colors=("tab:orange", "tab:blue", "tab:purple")):
    """Cells (i, j) coloured by the part(s) connecting query i to key j; blank where none does."""
    ax = plt.gca() if ax is None else ax
    m_loc, m_glob = chunk_masks(n, chunk, causal=causal)
    part = m_loc.int() + 2 * m_glob.int()  # 0 none, 1 local, 2 global, 3 both
    for i in range(n):  # one rectangle per run of equal, non-zero cells in row i
        j = 0
        while j < n:
            end = j
            while end < n and part[i, end] == part[i, j]:
                end += 1
            if part[i, j]:
                ax.add_patch(Rectangle((j, i), end - j, 1, facecolor=colors[part[i, j] - 1], lw=0))
            j = end
    for b in range(n + 1):  # thin cell grid
        ax.axhline(b, color="0.85", lw=0.4)
        ax.axvline(b, color="0.85", lw=0.4)
    for b in range(0, n + 1, chunk):  # chunk boundaries
        ax.axhline(b, color="0.3", lw=0.8)
        ax.axvline(b, color="0.3", lw=0.8)
    ax.set_xlim(0, n)
    ax.set_ylim(n, 0)  # row 0 on top, like a matrix
    ax.set_aspect("equal")
    ax.set_xticks(range(0, n + 1, chunk))
    ax.set_yticks(range(0, n + 1, chunk))
    labels = ("块内二次", "跨块线性", "两者相加")
    return [Patch(color=c, label=lab) for c, lab in zip(colors, labels, strict=True)]


# --8<-- [end:draw]
