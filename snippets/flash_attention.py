r"""FlashAttention at toy scale: exact attention computed tile by tile with the online softmax,
and its IO count. Q, K, V (N × d, one head) live in "HBM" (ordinary tensors); the algorithm
loads tiles into "SRAM" (local variables) through an `HBM` counter that records every element
moved, so the counts can be set against Theorem 2 of Dao et al. (2022): Θ(Nd + N²) accesses for
standard attention (their Algorithm 0) and Θ(N²d²/M) for FlashAttention (their Algorithm 1),
M being the on-chip memory. `flash_forward` follows Algorithm 1 (outer loop over K/V blocks,
inner loop over Q blocks, O, ℓ, m rescaled with exp(m_old − m_new)) and returns O and the
row logsumexp L = m + log ℓ; `flash_backward` recomputes each P block from L (no N × N matrix
is stored) and returns dQ, dK, dV. A CPU has no SRAM: the counts are a model, not a timing.
"""

# --8<-- [start:imports]
import math

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

# --8<-- [end:imports]


# --8<-- [start:hbm]
class HBM:
    """Counts the elements moved between slow memory (whole tensors) and fast memory (tiles)."""

    def __init__(self):
        self.reads = 0
        self.writes = 0

    @property
    def total(self):
        return self.reads + self.writes

    def load(self, tensor, rows):
        """Copy `tensor[rows]` on chip: one read per element."""
        tile = tensor[rows].clone()
        self.reads += tile.numel()
        return tile

    def store(self, tensor, rows, tile):
        """Write `tile` back to `tensor[rows]`: one write per element."""
        tensor[rows] = tile
        self.writes += tile.numel()


# --8<-- [end:hbm]


# --8<-- [start:standard]
def standard_attention(q, k, v, *, causal=False, hbm=None):
    """Algorithm 0 of the paper: S and P (N × N) are written to HBM and read back."""
    hbm = HBM() if hbm is None else hbm
    n, d = q.shape
    every = slice(0, n)
    s_hbm = torch.empty(n, n, dtype=q.dtype)
    qs, ks = hbm.load(q, every), hbm.load(k, every)  # step 1: read Q, K
    hbm.store(s_hbm, every, qs @ ks.T / math.sqrt(d))  # write S = QKᵀ/√d
    s = hbm.load(s_hbm, every)  # step 2: read S
    if causal:  # query i sees keys j ≤ i
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -math.inf)
    p_hbm = torch.empty_like(s_hbm)
    hbm.store(p_hbm, every, torch.softmax(s, dim=-1))  # write P = softmax(S)
    p, vs = hbm.load(p_hbm, every), hbm.load(v, every)  # step 3: read P, V
    o = torch.empty_like(q)
    hbm.store(o, every, p @ vs)  # write O = PV
    return o


# --8<-- [end:standard]


# --8<-- [start:blocks]
def blocks(n, size):
    """Row slices of length `size` (the last one may be shorter) covering 0..n-1."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def visits(rows, cols, causal):
    """Does tile (rows, cols) hold any unmasked score? Causal: some key col ≤ some query row."""
    return not causal or cols.start <= rows.stop - 1


def tile_scores(qi, kj, rows, cols, causal):
    """S_ij = Q_i K_jᵀ / √d on chip, with −inf above the diagonal when causal."""
    s = qi @ kj.T / math.sqrt(qi.shape[1])
    if causal:  # only diagonal tiles have masked entries, but masking all is harmless
        r = torch.arange(rows.start, rows.stop)[:, None]
        c = torch.arange(cols.start, cols.stop)[None, :]
        s = s.masked_fill(c > r, -math.inf)
    return s


def exp_minus(a, b):
    """exp(a − b), with 0 where a = −inf (so −inf − (−inf) never turns into NaN)."""
    return torch.where(a == -math.inf, torch.zeros_like(a), torch.exp(a - b))


# --8<-- [end:blocks]


# --8<-- [start:forward]
def flash_forward(q, k, v, *, block_r, block_c, causal=False, hbm=None):
    r"""Algorithm 1: returns O = softmax(QKᵀ/√d)V and the row logsumexp L = m + log ℓ."""
    hbm = HBM() if hbm is None else hbm
    n, d = q.shape
    o = torch.zeros_like(q)  # O, ℓ, m live in HBM between tiles
    ell = torch.zeros(n, dtype=q.dtype)
    m = torch.full((n,), -math.inf, dtype=q.dtype)
    hbm.writes += o.numel() + ell.numel() + m.numel()  # line 2: initialise them in HBM
    for cols in blocks(n, block_c):  # outer loop: K_j, V_j stay on chip
        kj, vj = hbm.load(k, cols), hbm.load(v, cols)
        for rows in blocks(n, block_r):  # inner loop over Q_i
            if not visits(rows, cols, causal):  # causal: the whole tile is above the diagonal
                continue
            qi, oi = hbm.load(q, rows), hbm.load(o, rows)
            ell_i, m_i = hbm.load(ell, rows), hbm.load(m, rows)
            s = tile_scores(qi, kj, rows, cols, causal)  # (Br, Bc)
            m_tile = s.amax(dim=1)  # m̃_ij = rowmax(S_ij)
            p = exp_minus(s, m_tile[:, None])  # P̃_ij = exp(S_ij − m̃_ij)
            ell_tile = p.sum(dim=1)  # ℓ̃_ij = rowsum(P̃_ij)
            m_new = torch.maximum(m_i, m_tile)  # m_new = max(m_i, m̃_ij)
            alpha = exp_minus(m_i, m_new)  # rescales the old statistics
            beta = exp_minus(m_tile, m_new)  # rescales the new tile
            ell_new = alpha * ell_i + beta * ell_tile  # ℓ_new = e^{m_i−m_new}ℓ_i + e^{m̃−m_new}ℓ̃
            o_new = ((alpha * ell_i)[:, None] * oi + beta[:, None] * (p @ vj)) / ell_new[:, None]
            hbm.store(o, rows, o_new)  # O_i ← diag(ℓ_new)⁻¹(diag(ℓ_i)e^{..}O_i + e^{..}P̃V_j)
            hbm.store(ell, rows, ell_new)
            hbm.store(m, rows, m_new)
    return o, m + torch.log(ell)  # L = m + log ℓ: one number per row for the backward


# --8<-- [end:forward]


# --8<-- [start:backward]
def flash_backward(q, k, v, o, lse, d_o, *, block_r, block_c, causal=False, hbm=None):
    r"""dQ, dK, dV from O and L alone: each P_ij = exp(S_ij − L_i) is recomputed on chip."""
    hbm = HBM() if hbm is None else hbm
    n, d = q.shape
    scale = 1 / math.sqrt(d)
    every = slice(0, n)
    delta = torch.empty(n, dtype=q.dtype)  # D_i = rowsum(dO_i ∘ O_i) = Σ_j P_ij dP_ij
    hbm.store(delta, every, (hbm.load(d_o, every) * hbm.load(o, every)).sum(dim=1))
    dq = torch.zeros_like(q)
    dk, dv = torch.empty_like(k), torch.empty_like(v)
    hbm.writes += dq.numel()  # dQ is accumulated in HBM across the outer loop
    for cols in blocks(n, block_c):
        kj, vj = hbm.load(k, cols), hbm.load(v, cols)
        dkj, dvj = torch.zeros_like(kj), torch.zeros_like(vj)  # accumulated on chip
        for rows in blocks(n, block_r):
            if not visits(rows, cols, causal):
                continue
            qi, doi, dqi = hbm.load(q, rows), hbm.load(d_o, rows), hbm.load(dq, rows)
            lse_i, delta_i = hbm.load(lse, rows), hbm.load(delta, rows)
            s = tile_scores(qi, kj, rows, cols, causal)
            p = exp_minus(s, lse_i[:, None])  # P_ij = exp(S_ij − L_i), recomputed
            dvj += p.T @ doi  # dV_j += P_ijᵀ dO_i
            dp = doi @ vj.T  # dP_ij = dO_i V_jᵀ
            ds = p * (dp - delta_i[:, None])  # dS_ij = P_ij ∘ (dP_ij − D_i)
            hbm.store(dq, rows, dqi + scale * ds @ kj)  # dQ_i += dS_ij K_j / √d
            dkj += scale * ds.T @ qi  # dK_j += dS_ijᵀ Q_i / √d
        hbm.store(dk, cols, dkj)
        hbm.store(dv, cols, dvj)
    return dq, dk, dv


# --8<-- [end:backward]


# --8<-- [start:io_model]
def paper_block_sizes(m_sram, d):
    """Algorithm 1, line 1: B_c = ⌈M / 4d⌉, B_r = min(⌈M / 4d⌉, d)."""
    b_c = math.ceil(m_sram / (4 * d))
    return min(b_c, d), b_c


def counted_io(n, d, m_sram, *, causal=False, seed=0):
    """HBM elements moved by both algorithms on random inputs, blocks set from M."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(n, d, generator=g) for _ in range(3))
    standard, tiled = HBM(), HBM()
    standard_attention(q, k, v, causal=causal, hbm=standard)
    block_r, block_c = paper_block_sizes(m_sram, d)
    flash_forward(q, k, v, block_r=block_r, block_c=block_c, causal=causal, hbm=tiled)
    return standard.total, tiled.total


# --8<-- [end:io_model]


# --8<-- [start:figures]
def plot_io(ns, d, counts_n, n_fixed, counts_m):
    """Counted HBM elements vs N (top, one curve per M) and vs M (bottom), log-log, beside
    Theorem 2's shapes Nd + N² and N²d²/M (dotted, unscaled)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.3, 9.6), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.15)
    first = next(iter(counts_n.values()))
    top.loglog(ns, [std for std, _ in first], "o-", color="C3", label="标准注意力（计数）")
    top.loglog(ns, [n * d + n * n for n in ns], ":", color="C3", label="Nd + N²")
    for (m_sram, counts), color in zip(counts_n.items(), ("C0", "C2"), strict=True):
        top.loglog(
            ns,
            [tiled for _, tiled in counts],
            "s-",
            color=color,
            label=f"分块，M = {m_sram}（计数）",
        )
        top.loglog(
            ns,
            [n * n * d * d / m_sram for n in ns],
            ":",
            color=color,
            label=f"N²d²/M，M = {m_sram}",
        )
    top.set(xlabel="序列长度 N", ylabel="HBM 访问（元素个数）")
    top.set_xticks(ns, [str(n) for n in ns])
    top.set_xticks([], minor=True)
    top.set_title(f"两者都按 N² 增长，分块算法的系数随 M 变小（d = {d}）", fontsize=11)
    # legends under the axes: inside, they would cover the dotted lines
    below = dict(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=10)
    handles, labels = top.get_legend_handles_labels()  # counts left, formulas right
    top.legend(handles[::2] + handles[1::2], labels[::2] + labels[1::2], **below)
    m_values = list(counts_m)
    bottom.loglog(
        m_values,
        [std for std, _ in counts_m.values()],
        "o-",
        color="C3",
        label="标准注意力（计数）",
    )
    bottom.loglog(
        m_values, [tiled for _, tiled in counts_m.values()], "s-", color="C0", label="分块（计数）"
    )
    bottom.loglog(
        m_values, [n_fixed**2 * d**2 / m for m in m_values], ":", color="C0", label="N²d²/M"
    )
    bottom.set(xlabel="片上存储 M（元素个数）", ylabel="HBM 访问（元素个数）")
    bottom.set_xticks(m_values, [str(m) for m in m_values])
    bottom.set_xticks([], minor=True)
    bottom.set_title(f"分块算法的读写量与 M 成反比（N = {n_fixed}，d = {d}）", fontsize=11)
    bottom.legend(**below)
    return fig


def plot_schedule(n, block_r, block_c):
    """Which K/V tiles each Q tile visits under a causal mask, in the order Algorithm 1 runs them."""
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    rows, cols = blocks(n, block_r), blocks(n, block_c)
    step = 0
    for c in cols:  # outer loop: K/V tiles
        for r in rows:  # inner loop: Q tiles
            y = n - r.stop  # draw query 0 at the top
            box = dict(xy=(c.start, y), width=c.stop - c.start, height=r.stop - r.start)
            if not visits(r, c, causal=True):
                ax.add_patch(Rectangle(**box, facecolor="0.92", edgecolor="0.55", hatch="//"))
                continue
            step += 1
            diagonal = c.stop - 1 > r.start  # some entry above the diagonal: needs the mask
            ax.add_patch(
                Rectangle(**box, facecolor="#fdd0a2" if diagonal else "#c6dbef", edgecolor="0.2")
            )
            ax.text(
                c.start + (c.stop - c.start) / 2,
                y + (r.stop - r.start) / 2,
                str(step),
                ha="center",
                va="center",
                fontsize=10,
            )
    ax.plot([0, n], [n, 0], "k--", lw=1)
    ax.set(
        xlim=(0, n),
        ylim=(0, n),
        aspect="equal",
        xlabel="键位置（K/V 块，外层循环）",
        ylabel="查询位置（Q 块，内层循环）",
    )
    ax.set_xticks([c.start for c in cols] + [n])
    ax.set_yticks([n - r.start for r in rows] + [0], labels=[str(r.start) for r in rows] + [str(n)])
    ax.set_title(
        f"因果掩码下的块调度（N = {n}，Q 块 {block_r} 行，K/V 块 {block_c} 行）\n"
        "蓝：整块参与；橙：对角块，块内要逐元素遮挡；灰：整块跳过",
        fontsize=10.5,
    )
    fig.tight_layout()
    return fig


# --8<-- [end:figures]
