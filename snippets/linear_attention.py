r"""Linear attention (Katharopoulos et al., 2020, "Transformers are RNNs") at toy scale.

Attention with a similarity $\mathrm{sim}(q, k) = \phi(q)^\top \phi(k)$ for a feature map
$\phi \ge 0$ can be computed three ways that give the same numbers:

- parallel: $V' = \phi(Q)\,[\phi(K)^\top V] \,/\, \phi(Q)\,[\phi(K)^\top \mathbf 1]$ (eq. 5-6), $O(NCM)$;
- causal, cumulative sums: $S_i = \sum_{j \le i} \phi(K_j) V_j^\top$, $Z_i = \sum_{j \le i} \phi(K_j)$,
  $V'_i = \phi(Q_i)^\top S_i / \phi(Q_i)^\top Z_i$ (eq. 9-12), also chunk by chunk;
- recurrent: $s_i = s_{i-1} + \phi(k_i) v_i^\top$, $z_i = z_{i-1} + \phi(k_i)$ (eq. 16-20).

Shapes: one head, `q, k` of shape (N, D), `v` of shape (N, M); $\phi$ maps D to C features.
Next to them: softmax attention, three feature maps, multiply-add counts, and two figures.
"""

# --8<-- [start:imports]
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

# --8<-- [end:imports]


# --8<-- [start:feature_maps]
def elu_plus_one(x):
    """φ(x) = elu(x) + 1, the paper's choice (eq. 7): every feature is > 0."""
    return F.elu(x) + 1.0


def relu_features(x):
    """φ(x) = max(x, 0): features are >= 0, and all of them can be 0."""
    return F.relu(x)


def positive_random_features(x, omega):
    r"""φ(x) = exp(ωᵀx − |x|²/2) / √m for the m columns ω of `omega` (D, m), ω ~ N(0, I).

    E[φ(q)ᵀφ(k)] = exp(qᵀk): an unbiased estimate of the softmax kernel (Performer's positive
    random features).
    """
    m = omega.shape[1]
    sq_norm = (x * x).sum(-1, keepdim=True) / 2  # |x|²/2, (N, 1)
    return torch.exp(x @ omega - sq_norm) / math.sqrt(m)  # (N, m)


# --8<-- [end:feature_maps]


# --8<-- [start:softmax]
def softmax_attention(q, k, v, *, causal=False):
    """softmax(QKᵀ/√D) V, with row i seeing keys j <= i when causal: O(N²) time and memory."""
    scores = q @ k.T / math.sqrt(q.shape[-1])  # (N, N)
    if causal:
        future = torch.ones_like(scores, dtype=torch.bool).triu(1)  # j > i
        scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v  # (N, M)


# --8<-- [end:softmax]


# --8<-- [start:quadratic]
def append_ones(v):
    """[V | 1]: one extra column, so that φ(K)ᵀ[V | 1] = [Σ φ(K_j)V_jᵀ | Σ φ(K_j)]."""
    return torch.cat([v, torch.ones_like(v[:, :1])], dim=-1)  # (N, M + 1)


def kernel_attention_matrix(q, k, *, phi, causal=False, eps=1e-6):
    """The N×N weights φ(Q_i)ᵀφ(K_j) / Σ_j φ(Q_i)ᵀφ(K_j) (eq. 4), masked to j <= i when causal."""
    sim = phi(q) @ phi(k).T  # (N, N), sim[i, j] = φ(q_i)ᵀφ(k_j) >= 0
    if causal:
        sim = sim.tril()  # drop j > i
    return sim / (sim.sum(-1, keepdim=True) + eps)  # each row sums to 1 (up to eps)


def quadratic_linear_attention(q, k, v, *, phi, causal=False, eps=1e-6):
    """Eq. 4 (or eq. 8 when causal) with the N×N matrix built explicitly: O(N²)."""
    sim = phi(q) @ phi(k).T  # (N, N)
    if causal:
        sim = sim.tril()
    out = sim @ append_ones(v)  # (N, M + 1): Σ_j sim·V_j and, last column, Σ_j sim
    return out[:, :-1] / (out[:, -1:] + eps)


# --8<-- [end:quadratic]


# --8<-- [start:parallel]
def linear_attention(q, k, v, *, phi, eps=1e-6):
    """Non-causal linear attention, eq. 5-6: φ(Q)(φ(K)ᵀV) / φ(Q)(φ(K)ᵀ1), O(N·C·M)."""
    fq, fk = phi(q), phi(k)  # (N, C), (N, C)
    state = fk.T @ append_ones(v)  # (C, M + 1) = [Σ_j φ(K_j)V_jᵀ | Σ_j φ(K_j)], once for all i
    out = fq @ state  # (N, M + 1): numerators and, in the last column, denominators
    return out[:, :-1] / (out[:, -1:] + eps)


# --8<-- [end:parallel]


# --8<-- [start:causal]
def causal_linear_attention(q, k, v, *, phi, eps=1e-6):
    """Causal linear attention with cumulative sums over positions, eq. 9-12."""
    fq, fk = phi(q), phi(k)  # (N, C)
    S = torch.cumsum(fk[:, :, None] * v[:, None, :], dim=0)  # (N, C, M): S_i = Σ_{j<=i} φ(K_j)V_jᵀ
    Z = torch.cumsum(fk, dim=0)  # (N, C): Z_i = Σ_{j<=i} φ(K_j)
    num = torch.einsum("nc,ncm->nm", fq, S)  # φ(Q_i)ᵀ S_i
    den = (fq * Z).sum(-1, keepdim=True)  # φ(Q_i)ᵀ Z_i
    return num / (den + eps)


def recurrent_linear_attention(q, k, v, *, phi, eps=1e-6):
    """The same layer as an RNN, one position at a time, with states s (C, M) and z (C,)."""
    fq, fk = phi(q), phi(k)
    s = v.new_zeros(fk.shape[1], v.shape[1])  # s_0 = 0
    z = v.new_zeros(fk.shape[1])  # z_0 = 0
    outputs = []
    for i in range(q.shape[0]):
        s = s + torch.outer(fk[i], v[i])  # s_i = s_{i-1} + φ(k_i) v_iᵀ
        z = z + fk[i]  # z_i = z_{i-1} + φ(k_i)
        outputs.append(fq[i] @ s / (fq[i] @ z + eps))  # v'_i = φ(q_i)ᵀ s_i / φ(q_i)ᵀ z_i
    return torch.stack(outputs)  # (N, M)


def chunked_causal_linear_attention(q, k, v, *, phi, chunk, eps=1e-6):
    """Causal linear attention in chunks of `chunk` rows: a (C, M+1) state between chunks,
    a masked chunk×chunk product inside one. Never holds the (N, C, M) tensor of all S_i."""
    fq, fk, v1 = phi(q), phi(k), append_ones(v)
    state = v1.new_zeros(fk.shape[1], v1.shape[1])  # [S | z] of all earlier chunks
    outputs = []
    for a in range(0, q.shape[0], chunk):
        qc, kc, vc = fq[a : a + chunk], fk[a : a + chunk], v1[a : a + chunk]
        inside = (qc @ kc.T).tril() @ vc  # keys j <= i within this chunk
        out = qc @ state + inside  # earlier chunks + this chunk
        outputs.append(out[:, :-1] / (out[:, -1:] + eps))
        state = state + kc.T @ vc  # add this chunk's Σ φ(K_j)[V_j | 1]ᵀ
    return torch.cat(outputs)


# --8<-- [end:causal]


# --8<-- [start:costs]
def softmax_macs(n, d, m):
    """Multiply-adds of softmax attention's two products: QKᵀ (N·N·D) and AV (N·N·M)."""
    return n * n * d + n * n * m


def quadratic_kernel_macs(n, c, m):
    """Multiply-adds of eq. 4 built explicitly: φ(Q)φ(K)ᵀ (N·N·C), then A[V | 1] (N·N·(M+1))."""
    return n * n * c + n * n * (m + 1)


def linear_macs(n, c, m):
    """Multiply-adds of `linear_attention`: φ(K)ᵀ[V | 1] and φ(Q)·state, N·C·(M+1) each."""
    return 2 * n * c * (m + 1)


# --8<-- [end:costs]


# --8<-- [start:figures]
def plot_costs(ns, d, m):
    """Counted multiply-adds against N on log-log axes: softmax (N²) and linear (N)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    ax.loglog(ns, [softmax_macs(n, d, m) for n in ns], "o-", label="softmax 注意力：N²(D+M)")
    ax.loglog(ns, [linear_macs(n, d, m) for n in ns], "s-", label="线性注意力：2N·C(M+1)")
    ax.set_xlabel("序列长度 N")
    ax.set_ylabel("乘加次数")
    ax.set_title(
        f"乘加次数：softmax 按 N² 增长，线性注意力按 N 增长\n（D = C = {d}，M = {m}）", fontsize=12
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=10)
    return fig


def plot_attention_maps(maps, suptitle):
    """N×N attention matrices, two to a row; the colour bar sits in the next cell."""
    rows = len(maps) // 2 + 1  # room for every map and the colour bar
    fig, axes = plt.subplots(rows, 2, figsize=(5.0, 2.8 * rows), layout="constrained")
    axes = list(axes.flat)
    for ax, (title, w) in zip(axes, maps.items(), strict=False):
        im = ax.imshow(torch.as_tensor(w).numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_title(title, fontsize=12)
        ax.set(xlabel="键 j", ylabel="查询 i", xticks=[], yticks=[])
    spare, *unused = axes[len(maps) :]
    spare.axis("off")
    bar = spare.inset_axes((0.1, 0.45, 0.8, 0.08))
    fig.colorbar(im, cax=bar, orientation="horizontal", label="权重")
    for ax in unused:
        ax.remove()
    fig.suptitle(suptitle, fontsize=12)
    return fig


# --8<-- [end:figures]
