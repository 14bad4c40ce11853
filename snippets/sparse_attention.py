r"""Factorized sparse attention from Child et al., "Generating Long Sequences with Sparse
Transformers" (2019), at toy scale. Each query $i$ attends to subsets $A_i^{(m)}$ of the earlier
positions $\{j \le i\}$: the *strided* pattern (the previous $l$ positions, and every $l$-th
position) and the *fixed* pattern (the current block of length $l$, and the last $c$ cells of
every block). The patterns are written twice, independently: as boolean $n \times n$ masks for
`F.scaled_dot_product_attention` (the oracle), and as per-query key lists that a gather-based
attention reads without ever forming the $n \times n$ score matrix. Next to them: closed-form
nonzero counts (to compare with $n\sqrt{n}$ at large $n$), two-hop reachability through the two
patterns, and the figures. In the code the stride $l$ is called `stride`.
"""

# --8<-- [start:imports]
import math

import matplotlib.pyplot as plt
import torch
from matplotlib.collections import PatchCollection
from matplotlib.patches import Patch, Rectangle

# --8<-- [end:imports]


# --8<-- [start:masks]
def _query_key_grid(n):
    i = torch.arange(n).unsqueeze(1)  # (n, 1): query positions
    j = torch.arange(n).unsqueeze(0)  # (1, n): key positions
    return i, j


def strided_masks(n, stride):
    r"""Boolean (n, n) masks of $A^{(1)}$ and $A^{(2)}$ for the strided pattern (True = attend)."""
    i, j = _query_key_grid(n)
    causal = j <= i  # every A_i^(m) is a subset of {j : j <= i}
    a1 = causal & (j >= i - stride)  # A1_i = {t, ..., i}, t = max(0, i - l)
    a2 = causal & ((i - j) % stride == 0)  # A2_i = {j : (i - j) mod l = 0}
    return a1, a2


def fixed_masks(n, stride, c):
    r"""Boolean (n, n) masks of $A^{(1)}$ and $A^{(2)}$ for the fixed pattern (True = attend)."""
    i, j = _query_key_grid(n)
    causal = j <= i
    # A1_i = {j : floor(j/l) = floor(i/l)}: the current block
    a1 = causal & (j // stride == i // stride)
    # A2_i = {j : j mod l in {t, ..., l}}, t = l - c; j mod l never reaches l: c columns per block
    a2 = causal & (j % stride >= stride - c)
    return a1, a2


# --8<-- [end:masks]


# --8<-- [start:keys]
def strided_keys(n, stride, part="both"):
    r"""Key indices (n, K) of each query for the strided pattern, and which of them are real.

    Built from offsets $i - j$, not from a mask: $A^{(1)}$ is $i - \{0, \dots, l\}$, $A^{(2)}$
    is $i - \{0, l, 2l, \dots\}$; their union drops the offsets $0$ and $l$ already in $A^{(1)}$.
    """
    local = torch.arange(stride + 1)  # offsets 0..l   (A1)
    column = stride * torch.arange((n - 1) // stride + 1)  # offsets 0, l, 2l, ...  (A2)
    offsets = {"A1": local, "A2": column, "both": torch.cat([local, column[2:]])}[part]
    idx = torch.arange(n).unsqueeze(1) - offsets  # (n, K): j = i - offset
    return idx, idx >= 0  # a negative index is padding


def fixed_keys(n, stride, c, part="both"):
    r"""Key indices (n, K) of each query for the fixed pattern, and which of them are real."""
    i = torch.arange(n).unsqueeze(1)  # (n, 1)
    start = (i // stride) * stride  # first position of i's block
    block = start + torch.arange(stride)  # (n, l): A1 candidates
    n_blocks = (n + stride - 1) // stride
    # A2 candidates: the last c cells of every block, the same list for every query
    last_c = stride * torch.arange(n_blocks).unsqueeze(1) + torch.arange(stride - c, stride)
    summary = last_c.flatten().expand(n, -1)  # (n, n_blocks·c)
    if part == "A1":
        idx = block
    elif part == "A2":
        idx = summary
    else:  # union: own block, plus the summary cells of the earlier blocks only
        summary_earlier = torch.where(summary < start, summary, n)  # n: marks padding
        idx = torch.cat([block, summary_earlier], dim=1)
    return idx, idx <= i  # causal, and drops the padding (n > i)


# --8<-- [end:keys]


# --8<-- [start:gather]
def gather_attention(q, k, v, idx, valid):
    r"""Attention of each query over its own key list only: O(n·K·d) work and memory.

    q, k, v: (B, H, n, d); idx, valid: (n, K). A query with no valid key returns 0, which is what
    `F.scaled_dot_product_attention` returns for a fully masked row in torch 2.13 on CPU.
    """
    n = k.shape[-2]
    safe = idx.clamp(0, n - 1)  # padding points at a real row; `valid` hides it below
    k_sel, v_sel = k[..., safe, :], v[..., safe, :]  # (B, H, n, K, d)
    scores = torch.einsum("bhnd,bhnkd->bhnk", q, k_sel) / math.sqrt(q.shape[-1])  # q·k_j / √d
    scores = scores.masked_fill(~valid, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # NaN in a row that is -inf everywhere
    weights = torch.where(valid, weights, 0.0)  # ... set to 0, so such a row outputs 0
    return torch.einsum("bhnk,bhnkd->bhnd", weights, v_sel)  # Σ_j p_ij v_j


def factorized_heads(q, k, v, keys_per_head):
    """Head h attends through keys_per_head[h] = (idx, valid); q, k, v: (B, H, n, d)."""
    outs = [
        gather_attention(q[:, h : h + 1], k[:, h : h + 1], v[:, h : h + 1], *keys)
        for h, keys in enumerate(keys_per_head)
    ]
    return torch.cat(outs, dim=1)


# --8<-- [end:gather]


# --8<-- [start:count]
def nnz_per_row(n, stride, c=None):
    r"""Closed-form $|A_i^{(1)} \cup A_i^{(2)}|$ for every query i (strided if c is None)."""
    i = torch.arange(n, dtype=torch.int64)
    if c is None:  # strided: min(i, l) + 1 local keys, plus i - 2l, i - 3l, ... >= 0
        return torch.clamp(i, max=stride) + 1 + torch.clamp(i // stride - 1, min=0)
    return i % stride + 1 + c * (i // stride)  # fixed: own block up to i, plus c per earlier block


def nnz(n, stride, c=None):
    """Number of (query, key) pairs computed by the union pattern."""
    return int(nnz_per_row(n, stride, c).sum())


# --8<-- [end:count]


# --8<-- [start:reach]
def two_hop(first, second, residual=True):
    r"""R[i, j]: j reaches i through `first` (layer 1) and then `second` (layer 2).

    R = second ∘ first as a boolean matrix product: R[i, j] = OR_a second[i, a] AND first[a, j].
    With `residual`, each layer also passes every position's own state on (a residual connection
    around each attention layer): R = (M2 ∨ I)(M1 ∨ I), so one hop through either layer counts.
    """
    if residual:
        eye = torch.eye(first.shape[0], dtype=torch.bool)
        first, second = first | eye, second | eye  # M ∨ I: the skip path of each layer
    return (second.to(torch.float32) @ first.to(torch.float32)) > 0  # OR-AND as a 0/1 product


def missing_pairs(reach):
    """How many pairs j <= i are NOT connected by `reach`."""
    causal = torch.ones_like(reach).tril()
    return int((causal & ~reach).sum())


# --8<-- [end:reach]


# --8<-- [start:draw]
def _runs(row):
    """(start, length) of every run of True in a list of booleans."""
    out, start = [], None
    for j, on in enumerate([*row, False]):
        if on and start is None:
            start = j
        elif not on and start is not None:
            out.append((start, j - start))
            start = None
    return out


def _paint(ax, cells, color):
    """Fill the True cells of an (n, n) mask: one vector rectangle per horizontal run of cells."""
    rows = enumerate(cells.tolist())
    runs = [Rectangle((j - 0.5, i - 0.5), w, 1) for i, row in rows for j, w in _runs(row)]
    # edges in the face colour close the hairline seams between rows
    ax.add_collection(PatchCollection(runs, facecolor=color, edgecolor=color, lw=0.4))


def _cell_panels(panels, *, n, title, colors):
    """Stacked panels, one per (name, [cells per colour]); grey diagonal j = i, above it the future."""
    size = (4.2, 4.0 * len(panels) + 0.6)
    fig, axes = plt.subplots(len(panels), 1, figsize=size, sharex=True, layout="constrained")
    fig.get_layout_engine().set(h_pad=0.1)  # room between suptitle, titles, labels and legend
    for ax, (name, layers) in zip(axes, panels, strict=True):
        for cells, color in zip(layers, colors.values(), strict=True):
            _paint(ax, cells, color)
        ax.plot([-0.5, n - 0.5], [-0.5, n - 0.5], color="0.5", lw=0.8)
        ax.set(xlim=(-0.5, n - 0.5), ylim=(n - 0.5, -0.5), aspect="equal")
        ax.set_title(name, fontsize=11)
        ax.set_ylabel("查询位置 i", fontsize=11)
        ax.tick_params(labelsize=10)
    axes[-1].set_xlabel("键位置 j", fontsize=11)
    handles = [Patch(facecolor=col, label=label) for label, col in colors.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=10, frameon=False)
    fig.suptitle(title, fontsize=12)
    return fig


def draw_masks(panels, *, n, title):
    """One panel per (name, a1, a2): cells coloured by A1 only / A2 only / both."""
    colors = {"只在 A(1)": "tab:blue", "只在 A(2)": "tab:orange", "两者都有": "tab:green"}
    layers = [(name, [a1 & ~a2, a2 & ~a1, a1 & a2]) for name, a1, a2 in panels]
    return _cell_panels(layers, n=n, title=title, colors=colors)


def draw_reach(panels, *, n, title):
    """One panel per (name, reach): the pairs j <= i that `reach` connects, and those it misses."""
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    colors = {"两跳可达": "tab:cyan", "不可达": "tab:red"}
    layers = [(name, [causal & reach, causal & ~reach]) for name, reach in panels]
    return _cell_panels(layers, n=n, title=title, colors=colors)


def draw_nnz(ns, series, *, title):
    """Log-log lines of nonzero counts against n; series: {label: [count per n]}."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2), layout="constrained")
    for (label, counts), marker in zip(series.items(), "os^vD", strict=False):
        ax.loglog(ns, counts, marker=marker, ms=5, lw=1.4, label=label)
    ax.set_xlabel("序列长度 n", fontsize=11)
    ax.set_ylabel("计算的 (查询, 键) 对数", fontsize=11)
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", lw=0.4, alpha=0.5)
    ax.tick_params(labelsize=10)
    ax.legend(fontsize=10, frameon=False)
    return fig


# --8<-- [end:draw]
