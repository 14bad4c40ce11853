r"""Kimi-VL's mechanisms at toy scale, no weights. MoonViT packs images of different sizes into one
sequence (NaViT-style) and attends within each image only (a block-diagonal mask, which is what
FlashAttention's varlen kernel computes from `cu_seqlens`); positions enter as an interpolated
learnable absolute embedding plus a 2-D RoPE whose even frequency pairs turn with the column and odd
pairs with the row. A 2×2 patch merge ("pixel shuffle") and a two-layer MLP map the patches into the
language model, whose FFNs are DeepSeek-V3-style MoE layers: sigmoid router scores, a per-expert
bias used only to choose the top-k experts, normalised gate weights, and an always-on shared expert.
"""

# --8<-- [start:imports]
import torch
import torch.nn.functional as F
from torch import nn

# --8<-- [end:imports]


# --8<-- [start:packing]
def patchify(image, patch):
    """(C, H, W) -> (h·w, C·patch²) patches in row-major order, and the grid (h, w)."""
    C, H, W = image.shape
    h, w = H // patch, W // patch
    x = image[:, : h * patch, : w * patch].reshape(C, h, patch, w, patch)
    return x.permute(1, 3, 0, 2, 4).reshape(h * w, C * patch * patch), (h, w)


def pack(images, patch):
    """All images' patches in one sequence; cu_seqlens = [0, n_0, n_0 + n_1, …] marks the images."""
    pieces, grids = zip(*(patchify(img, patch) for img in images), strict=True)
    lengths = torch.tensor([h * w for h, w in grids])
    cu_seqlens = F.pad(lengths.cumsum(0), (1, 0))
    return torch.cat(pieces), list(grids), cu_seqlens


def block_diagonal_mask(cu_seqlens):
    """(L, L) bool, True = may attend: token i sees token j iff both come from the same image."""
    L = int(cu_seqlens[-1])
    image_id = torch.searchsorted(cu_seqlens[1:], torch.arange(L), right=True)  # (L,)
    return image_id[:, None] == image_id[None, :]


# --8<-- [end:packing]


# --8<-- [start:rope]
def rope_2d(grids, head_dim, *, theta=10000.0):
    r"""Unit complex numbers (L, head_dim/2) for the packed tokens, row-major within each image.

    Pair $2i$ turns by $c\,\omega_i$ (column), pair $2i+1$ by $r\,\omega_i$ (row),
    $\omega_i = \theta^{-4i/d}$, $i < d/4$: the layout of MoonViT's `Rope2DPosEmb`.
    """
    assert head_dim % 4 == 0
    omega = theta ** (-torch.arange(0, head_dim, 4, dtype=torch.float64) / head_dim)  # (d/4,)
    angles = []
    for h, w in grids:
        r, c = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        # (h·w, d/4, 2): [column angle, row angle] for each frequency
        a = torch.stack([c.reshape(-1, 1) * omega, r.reshape(-1, 1) * omega], dim=-1)
        angles.append(a.reshape(h * w, head_dim // 2))
    angles = torch.cat(angles)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rope(x, cis):
    """Rotate adjacent pairs (x_{2j}, x_{2j+1}) of x (L, H, d) by cis (L, d/2): one complex product."""
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())  # (L, H, d/2)
    return torch.view_as_real(xc * cis.to(xc.dtype)[:, None, :]).flatten(-2)


# --8<-- [end:rope]


# --8<-- [start:encoder]
class PackedViTLayer(nn.Module):
    """Pre-norm block as in MoonViT: x + Attn(LN(x)), then x + MLP(LN(x)), on the packed sequence."""

    def __init__(self, d_model, n_head):
        super().__init__()
        self.n_head = n_head
        self.norm0, self.norm1 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.wqkv = nn.Linear(d_model, 3 * d_model)
        self.wo = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model),
            nn.GELU(approximate="tanh"),
            nn.Linear(4 * d_model, d_model),
        )

    def attention(self, x, cis, mask):
        L, D = x.shape
        q, k, v = self.wqkv(x).view(L, 3, self.n_head, D // self.n_head).unbind(1)  # (L, H, d) each
        q, k = apply_rope(q, cis), apply_rope(k, cis)
        q, k, v = (t.transpose(0, 1) for t in (q, k, v))  # (H, L, d)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # softmax(qk^T/√d) v, masked
        return self.wo(out.transpose(0, 1).reshape(L, D))

    def forward(self, x, cis, mask):
        x = x + self.attention(self.norm0(x), cis, mask)
        return x + self.mlp(self.norm1(x))


class ToyMoonViT(nn.Module):
    """Patch embedding + interpolated absolute position embedding, then packed layers with 2-D RoPE."""

    def __init__(self, *, patch=14, channels=3, d_model=32, n_head=4, n_layers=2, pos_grid=8):
        super().__init__()
        self.patch, self.n_head = patch, n_head
        # a Linear on flattened patches = Conv2d with kernel = stride = patch
        self.embed = nn.Linear(channels * patch * patch, d_model)
        self.pos = nn.Parameter(torch.randn(pos_grid, pos_grid, d_model))  # learned on a fixed grid
        self.layers = nn.ModuleList(PackedViTLayer(d_model, n_head) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)

    def pos_embedding(self, grids):
        """The fixed grid resized to each image's (h, w), bicubic, flattened row-major and packed."""
        table = self.pos.permute(2, 0, 1)[None]  # (1, D, g, g)
        return torch.cat(
            [F.interpolate(table, size=hw, mode="bicubic")[0].flatten(1).T for hw in grids]
        )

    def forward(self, images):
        patches, grids, cu_seqlens = pack(images, self.patch)
        x = self.embed(patches) + self.pos_embedding(grids)  # (L, D)
        cis = rope_2d(grids, x.shape[-1] // self.n_head)
        mask = block_diagonal_mask(cu_seqlens)
        for layer in self.layers:
            x = layer(x, cis, mask)
        return self.norm(x), grids


# --8<-- [end:encoder]


# --8<-- [start:projector]
def patch_merge(x, grids, k=2):
    """(L, D) -> (L/k², k², D): each k×k block of neighbouring patches becomes one token."""
    out, start = [], 0
    for h, w in grids:
        seq = x[start : start + h * w].view(h // k, k, w // k, k, -1)  # (h/k, ki, w/k, kj, D)
        out.append(seq.permute(0, 2, 1, 3, 4).reshape((h // k) * (w // k), k * k, -1))
        start += h * w
    return torch.cat(out)


class Projector(nn.Module):
    """LayerNorm per patch, concatenate the k² patches of a block, Linear-GELU-Linear to the LM width."""

    def __init__(self, d_vision, d_text, k=2):
        super().__init__()
        self.norm = nn.LayerNorm(d_vision)
        self.mlp = nn.Sequential(
            nn.Linear(k * k * d_vision, k * k * d_vision),
            nn.GELU(),
            nn.Linear(k * k * d_vision, d_text),
        )

    def forward(self, merged):  # (N, k², D)
        return self.mlp(self.norm(merged).flatten(1))  # (N, d_text)


# --8<-- [end:projector]


# --8<-- [start:moe]
class SwiGLU(nn.Module):
    """down(SiLU(gate(x)) ⊙ up(x)): one expert."""

    def __init__(self, d_model, d_ff):
        super().__init__()
        self.gate = nn.Linear(d_model, d_ff, bias=False)
        self.up = nn.Linear(d_model, d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class MoE(nn.Module):
    """Routed experts chosen per token by a sigmoid router, plus a shared expert every token uses."""

    def __init__(self, d_model, d_ff, *, n_experts=8, top_k=2, n_shared=1, scale=1.0):
        super().__init__()
        self.top_k, self.scale = top_k, scale
        self.router = nn.Parameter(torch.randn(n_experts, d_model) / d_model**0.5)
        # e_score_correction_bias: used to select experts, never to weigh them
        self.register_buffer("bias", torch.zeros(n_experts))
        self.experts = nn.ModuleList(SwiGLU(d_model, d_ff) for _ in range(n_experts))
        self.shared = SwiGLU(d_model, d_ff * n_shared)  # n_shared experts fused into one wider FFN

    def route(self, x):
        """(T, D) -> expert ids (T, k) and gate weights (T, k)."""
        s = torch.sigmoid(x @ self.router.T)  # s_{t,e} = σ(x_t · e_e), (T, E)
        idx = (s + self.bias).topk(self.top_k, dim=-1).indices  # choose with the bias …
        g = s.gather(-1, idx)  # … weigh without it
        # g_{t,e} = scale · s_{t,e} / Σ_{chosen e'} s_{t,e'}
        return idx, g / g.sum(-1, keepdim=True) * self.scale

    def forward(self, x):
        T, D = x.shape
        idx, g = self.route(x)
        flat = idx.reshape(-1)  # slot t·k + j holds token t's j-th expert
        order = flat.argsort(stable=True)  # slots grouped by expert
        counts = torch.bincount(flat, minlength=len(self.experts)).tolist()
        y = x.new_empty(T * self.top_k, D)
        for expert, slots in zip(self.experts, order.split(counts), strict=True):
            y[slots] = expert(x[slots // self.top_k])  # one batched call per expert
        routed = (y.view(T, self.top_k, D) * g[..., None]).sum(1)  # Σ_j g_{t,j} E_{idx[t,j]}(x_t)
        return routed + self.shared(x)


def update_bias(moe, idx, gamma=1e-3):
    """Aux-loss-free balancing (DeepSeek-V3): b_e -= γ if expert e is overloaded, += γ if underloaded."""
    load = torch.bincount(idx.reshape(-1), minlength=len(moe.experts)).double()
    moe.bias += gamma * torch.sign(load.mean() - load)
    return load


# --8<-- [end:moe]


if __name__ == "__main__":
    torch.manual_seed(0)
    images = [torch.randn(3, 56, 84), torch.randn(3, 84, 84), torch.randn(3, 28, 56)]
    vit = ToyMoonViT().double()
    feats, grids = vit([img.double() for img in images])
    tokens = Projector(32, 48).double()(patch_merge(feats, grids))
    moe = MoE(48, 64).double()
    print("grids", grids, "| packed", tuple(feats.shape), "| LM tokens", tuple(moe(tokens).shape))
