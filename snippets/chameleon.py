r"""Chameleon at toy scale: the three pieces that make early fusion work.

1. A VQ image tokenizer on $p \times p$ patches: nearest-code lookup, a Lloyd (k-means) codebook,
   and the VQ-VAE layer with the straight-through estimator $z_e + \mathrm{sg}(z_q - z_e)$, the
   codebook loss $\lVert \mathrm{sg}(z_e) - e \rVert^2$ and the commitment loss
   $\beta \lVert z_e - \mathrm{sg}(e) \rVert^2$.
2. One token stream for text and images: text bytes, and each image as
   ``BOI, code_1, ..., code_N, EOI`` with its codes offset into the shared vocabulary; the logit
   mask that keeps sampling inside the image codes between the sentinels.
3. Attention logits with and without QK-Norm (a LayerNorm over each head's query and key, as in
   the reference code): with it, scaling $W_q, W_k$ by $c > 0$ leaves the logits unchanged and
   $|\ell_{ij}| \le \sqrt{d_h}$; without it the logits grow as $c^2$ and the softmax saturates.
"""

# --8<-- [start:imports]
import math

import torch
import torch.nn.functional as F
from torch import nn

# --8<-- [end:imports]


# --8<-- [start:images]
def make_images(n, *, size=16, generator):
    """(n, size, size) in [0, 1]: a random linear ramp plus one bright or dark rectangle."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    angle = 2 * math.pi * torch.rand(n, 1, 1, generator=generator)
    ramp = 0.5 + 0.3 * (torch.cos(angle) * (xs - 0.5) + torch.sin(angle) * (ys - 0.5))
    corner = torch.randint(0, size // 2, (n, 2), generator=generator)
    extent = torch.randint(size // 4, size // 2 + 1, (n, 2), generator=generator)
    r, c = torch.arange(size)[None, :, None], torch.arange(size)[None, None, :]
    inside = (r >= corner[:, 0, None, None]) & (r < (corner[:, 0] + extent[:, 0])[:, None, None])
    inside = inside & (c >= corner[:, 1, None, None])
    inside = inside & (c < (corner[:, 1] + extent[:, 1])[:, None, None])
    level = torch.where(torch.rand(n, 1, 1, generator=generator) < 0.5, 0.05, 0.95)
    return torch.where(inside, level, ramp)


def patchify(images, p):
    """(n, H, W) -> (n, H/p * W/p, p*p): row-major p x p patches, the tokenizer's raster order."""
    n, H, W = images.shape
    x = images.reshape(n, H // p, p, W // p, p).permute(0, 1, 3, 2, 4)
    return x.reshape(n, (H // p) * (W // p), p * p)


def unpatchify(patches, p, size):
    """Inverse of `patchify` for square images of side `size`."""
    g = size // p
    x = patches.reshape(-1, g, g, p, p).permute(0, 1, 3, 2, 4)
    return x.reshape(-1, size, size)


# --8<-- [end:images]


# --8<-- [start:vq]
def nearest_code(z, codebook):
    """argmin_j ||z - e_j||^2 for every row of z (N, d); codebook (K, d). Ties -> lowest j."""
    d = (z * z).sum(1, keepdim=True) - 2 * z @ codebook.T + (codebook * codebook).sum(1)  # (N, K)
    return d.argmin(1)


def kmeans(z, k, *, iters, generator):
    """Lloyd's algorithm: assign to the nearest code, move each code to its cluster's mean."""
    # init: k distinct samples
    codebook = z[torch.randperm(len(z), generator=generator)[:k]].clone()
    for _ in range(iters):
        idx = nearest_code(z, codebook)
        count = torch.bincount(idx, minlength=k).to(z.dtype)  # (K,)
        total = torch.zeros_like(codebook).index_add_(0, idx, z)  # sum of each cluster
        used = count > 0  # an empty cluster keeps its old code
        codebook[used] = total[used] / count[used, None]
    return codebook


def vq_layer(z_e, codebook, *, beta):
    r"""VQ-VAE quantizer. Returns (z_q with straight-through gradient, indices, codebook loss,
    commitment loss). The first output's value is e_{k(i)} up to one rounding of z_e + (e - z_e)."""
    idx = nearest_code(z_e.detach(), codebook.detach())
    z_q = codebook[idx]  # (N, d): e_{k(i)}; gradient flows to the codebook
    codebook_loss = F.mse_loss(z_q, z_e.detach())  # ||sg(z_e) - e||^2: moves e toward z_e
    commit_loss = beta * F.mse_loss(z_e, z_q.detach())  # beta ||z_e - sg(e)||^2: moves z_e toward e
    z_st = z_e + (z_q - z_e).detach()  # value e, gradient dL/dz_e := dL/dz_q
    return z_st, idx, codebook_loss, commit_loss


# --8<-- [end:vq]


# --8<-- [start:train]
ADAM_BETAS = (0.9, 0.999)


def train_vqvae(z, *, k, d, straight_through, beta=0.25, steps=400, batch=256, lr=1e-2, seed=0):
    """Linear encoder R^{p*p} -> R^d, codebook (k, d), linear decoder; Adam on rec + VQ losses.
    straight_through=False feeds the decoder e_{k(i)} itself: the reconstruction loss then
    sends no gradient to the encoder. Returns (encoder, codebook, decoder)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    enc, dec = nn.Linear(z.shape[1], d), nn.Linear(d, z.shape[1])
    with torch.no_grad():  # data-dependent init: k-means on the first encodings
        codebook = nn.Parameter(kmeans(enc(z), k, iters=5, generator=g))
    params = [*enc.parameters(), *dec.parameters(), codebook]
    m, v = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        x = z[torch.randint(len(z), (batch,), generator=g)]
        z_st, idx, codebook_loss, commit_loss = vq_layer(enc(x), codebook, beta=beta)
        z_q = z_st if straight_through else codebook[idx]
        loss = F.mse_loss(dec(z_q), x) + codebook_loss + commit_loss
        grads = torch.autograd.grad(loss, params)
        with (
            torch.no_grad()
        ):  # Adam by hand: torch.optim imports torch._dynamo on first use, slow on a cold start
            for p, m_, v_, g_ in zip(params, m, v, grads, strict=True):
                m_.lerp_(g_, 1 - ADAM_BETAS[0])  # m_t = b1 m + (1 - b1) g
                v_.lerp_(g_ * g_, 1 - ADAM_BETAS[1])  # v_t = b2 v + (1 - b2) g^2
                m_hat, v_hat = m_ / (1 - ADAM_BETAS[0] ** t), v_ / (1 - ADAM_BETAS[1] ** t)
                p -= lr * m_hat / (v_hat.sqrt() + 1e-8)
    return enc, codebook.detach(), dec


# --8<-- [end:train]


# --8<-- [start:stream]
N_BYTES = 256  # text tokens: one per UTF-8 byte
BOS, EOS, BOI, EOI = 256, 257, 258, 259  # begin/end of sequence, begin/end of image
IMG0 = 260  # image code j has token id IMG0 + j


def build_stream(segments):
    """One token list for interleaved text (str) and images (1-D tensors of codes)."""
    ids = [BOS]
    for seg in segments:
        if isinstance(seg, str):
            ids += list(seg.encode("utf-8"))
        else:
            ids += [BOI, *(IMG0 + seg).tolist(), EOI]  # the image between its sentinels
    return ids + [EOS]


def parse_stream(ids):
    """Inverse of `build_stream`: back to the list of str / code tensors."""
    assert ids[0] == BOS and ids[-1] == EOS
    segments, text, i = [], bytearray(), 1
    while i < len(ids) - 1:
        if ids[i] == BOI:
            end = ids.index(EOI, i)
            if text:
                segments.append(text.decode("utf-8"))
                text = bytearray()
            segments.append(torch.tensor(ids[i + 1 : end]) - IMG0)
            i = end + 1
        else:
            text.append(ids[i])
            i += 1
    return segments + ([text.decode("utf-8")] if text else [])


def allowed_next(ids, *, n_codes, tokens_per_image):
    """Bool mask over the vocabulary for the next token, as the reference decoder constrains it."""
    allowed = torch.zeros(IMG0 + n_codes, dtype=torch.bool)
    last_boi = max((i for i, t in enumerate(ids) if t == BOI), default=-1)
    inside = last_boi >= 0 and EOI not in ids[last_boi:]
    if inside and len(ids) - 1 - last_boi == tokens_per_image:
        allowed[EOI] = True  # the image is complete: force its end sentinel
    elif inside:
        allowed[IMG0:] = True  # inside an image: image codes only
    else:
        allowed[:N_BYTES] = True  # text, end of sequence, or a new image; never a bare code
        allowed[[EOS, BOI]] = True
    return allowed


# --8<-- [end:stream]


# --8<-- [start:attention]
def layer_norm(x, *, gamma=None, bias=None, eps=1e-5):
    r"""LayerNorm over the last dim: gamma * (x - mean) / sqrt(var + eps) + bias (biased var)."""
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps)
    y = y if gamma is None else y * gamma
    return y if bias is None else y + bias


def attention_logits(x, w_q, w_k, *, n_head, qk_norm, eps=1e-5, gamma_q=None, gamma_k=None):
    r"""(H, T, T) logits q_i . k_j / sqrt(d_h); with qk_norm, q and k are LayerNormed per head."""
    T, C = x.shape
    d_h = w_q.shape[0] // n_head
    q = (x @ w_q.T).view(T, n_head, d_h).transpose(0, 1)  # (H, T, d_h)
    k = (x @ w_k.T).view(T, n_head, d_h).transpose(0, 1)
    if qk_norm:  # one LayerNorm(d_h) shared by all heads, as in the reference code
        q, k = layer_norm(q, gamma=gamma_q, eps=eps), layer_norm(k, gamma=gamma_k, eps=eps)
    return q @ k.transpose(1, 2) / math.sqrt(d_h)


def attention(x, w_q, w_k, w_v, *, n_head, qk_norm, eps=1e-5):
    """Causal softmax attention over (T, C) with explicit logits; returns (T, C) and the weights."""
    T, C = x.shape
    logits = attention_logits(x, w_q, w_k, n_head=n_head, qk_norm=qk_norm, eps=eps)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    a = logits.masked_fill(~causal, -math.inf).softmax(-1)  # (H, T, T)
    v = (x @ w_v.T).view(T, n_head, C // n_head).transpose(0, 1)  # (H, T, d_h)
    return (a @ v).transpose(0, 1).reshape(T, C), a


def row_entropy(a):
    """Mean over rows of H(a_i) = -sum_j a_ij log a_ij (0 log 0 = 0), in nats."""
    return -torch.special.xlogy(a, a).sum(-1).mean()


def z_loss(logits):
    """log^2 Z per row, Z = sum exp(logits): the one term a softmax cannot shift away."""
    return torch.logsumexp(logits, -1).pow(2).mean()


# --8<-- [end:attention]


if __name__ == "__main__":
    gen = torch.Generator().manual_seed(0)
    imgs = make_images(8, generator=gen)
    z = patchify(imgs, 4).reshape(-1, 16)
    codebook = kmeans(z, 32, iters=10, generator=gen)
    recon = unpatchify(codebook[nearest_code(z, codebook)], 4, 16)
    print("k-means tokenizer MSE:", F.mse_loss(recon, imgs).item())
    ids = build_stream(["a cat ", nearest_code(z[:16], codebook), " sat"])
    print(len(ids), "tokens")
