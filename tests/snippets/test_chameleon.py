import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.chameleon import (
    BOI,
    BOS,
    EOI,
    EOS,
    IMG0,
    N_BYTES,
    allowed_next,
    attention,
    attention_logits,
    build_stream,
    kmeans,
    layer_norm,
    make_images,
    nearest_code,
    parse_stream,
    patchify,
    row_entropy,
    train_vqvae,
    unpatchify,
    vq_layer,
    z_loss,
)

SETTINGS = settings(max_examples=25, deadline=None)


def _weights(seed, C=16, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [
        scale * torch.randn(C, C, generator=g, dtype=torch.float64) / math.sqrt(C) for _ in range(3)
    ]


# --- VQ tokenizer ---------------------------------------------------------------------------


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 12), st.integers(1, 6), st.integers(0, 10**6))
def test_nearest_code_is_brute_force_argmin(n, k, d, seed):
    """nearest_code equals argmin_j ||z - e_j||^2 computed from explicit differences."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    codebook = torch.randn(k, d, generator=g, dtype=torch.float64)
    brute = ((z[:, None, :] - codebook[None]) ** 2).sum(-1).argmin(1)
    assert torch.equal(nearest_code(z, codebook), brute)


def test_patchify_matches_unfold_and_round_trips():
    """patchify equals F.unfold's p x p blocks (row-major), and unpatchify inverts it."""
    imgs = make_images(5, generator=torch.Generator().manual_seed(0))
    ref = F.unfold(imgs[:, None], kernel_size=4, stride=4).transpose(1, 2)  # (n, L, p*p)
    assert torch.equal(patchify(imgs, 4), ref)
    assert torch.equal(unpatchify(patchify(imgs, 4), 4, 16), imgs)
    assert imgs.min() >= 0 and imgs.max() <= 1


def _distortion(z, codebook):
    return ((z - codebook[nearest_code(z, codebook)]) ** 2).sum(1).mean().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_distortion_never_increases_and_reaches_a_fixed_point(seed):
    """Lloyd steps never raise the distortion; at convergence every used code is its cluster's mean."""
    z = torch.randn(80, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    runs = [kmeans(z, 6, iters=t, generator=torch.Generator().manual_seed(7)) for t in range(12)]
    d = [_distortion(z, c) for c in runs]
    assert all(b <= a + 1e-12 for a, b in zip(d, d[1:], strict=False))
    codebook = kmeans(z, 6, iters=60, generator=torch.Generator().manual_seed(7))
    idx = nearest_code(z, codebook)
    for j in idx.unique():
        torch.testing.assert_close(codebook[j], z[idx == j].mean(0))  # mean by brute force


def test_kmeans_keeps_an_empty_code():
    """A code that wins no point keeps its value (no division by zero)."""
    z = torch.zeros(6, 2, dtype=torch.float64)
    z[3:] = 1.0
    codebook = kmeans(z, 3, iters=3, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(codebook).all()


def _vq_setup(seed, n=7, d=3, k=5):
    g = torch.Generator().manual_seed(seed)
    z_e = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    codebook = torch.randn(k, d, generator=g, dtype=torch.float64, requires_grad=True)
    W = torch.randn(4, d, generator=g, dtype=torch.float64)  # a linear decoder
    y = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return z_e, codebook, W, y


@SETTINGS
@given(st.integers(0, 10**6), st.floats(0.0, 2.0))
def test_ste_gradients_equal_closed_forms(seed, beta):
    """dL/dz_e and dL/de from autograd equal the hand-derived STE, codebook and commitment gradients."""
    z_e, codebook, W, y = _vq_setup(seed)
    z_st, idx, cb_loss, commit = vq_layer(z_e, codebook, beta=beta)
    e = codebook.detach()[idx]
    # forward value: the code, up to the rounding of z_e + (e - z_e)
    torch.testing.assert_close(z_st.detach(), e, rtol=0, atol=1e-15)
    rec = ((z_st @ W.T - y) ** 2).mean()
    (rec + cb_loss + commit).backward()
    n = z_e.numel()
    grad_rec = 2 * (e @ W.T - y) @ W / y.numel()  # dL_rec/dz_q, copied to z_e
    torch.testing.assert_close(z_e.grad, grad_rec + 2 * beta * (z_e.detach() - e) / n)
    grad_e = torch.zeros_like(codebook).index_add_(0, idx, 2 * (e - z_e.detach()) / n)
    torch.testing.assert_close(codebook.grad, grad_e)


def test_ste_gradient_matches_finite_differences_at_z_q_and_true_gradient_is_zero():
    """The STE gradient is the finite-difference gradient of L_rec at z_q; of L_rec(quantize(z_e)) it is 0."""
    z_e, codebook, W, y = _vq_setup(3)
    z_st, idx, _, _ = vq_layer(z_e, codebook, beta=0.0)
    ((z_st @ W.T - y) ** 2).mean().backward()
    z_q, h = codebook.detach()[idx], 1e-6

    def rec(z):
        return ((z @ W.T - y) ** 2).mean()

    def rec_quantized(z):
        return rec(codebook.detach()[nearest_code(z, codebook.detach())])

    fd_q, fd_true = torch.zeros_like(z_q), torch.zeros_like(z_q)
    for i in range(z_q.shape[0]):
        for j in range(z_q.shape[1]):
            dz = torch.zeros_like(z_q)
            dz[i, j] = h
            fd_q[i, j] = (rec(z_q + dz) - rec(z_q - dz)) / (2 * h)
            ze = z_e.detach()
            fd_true[i, j] = (rec_quantized(ze + dz) - rec_quantized(ze - dz)) / (2 * h)
    torch.testing.assert_close(z_e.grad, fd_q, rtol=1e-6, atol=1e-8)
    assert fd_true.abs().max() == 0


# --- token stream ---------------------------------------------------------------------------

text_st = st.text(min_size=1, max_size=6)
image_st = st.lists(st.integers(0, 15), min_size=1, max_size=5).map(torch.tensor)


@st.composite
def documents(draw):
    """Alternating text and image segments (two texts never touch: they would merge)."""
    segs, want_text = [], draw(st.booleans())
    for _ in range(draw(st.integers(0, 5))):
        segs.append(draw(text_st if want_text else image_st))
        want_text = not want_text
    return segs


@SETTINGS
@given(documents())
def test_stream_round_trips_and_has_closed_form_length(segs):
    """parse(build(doc)) == doc; length = 2 + sum(UTF-8 bytes) + sum(2 + codes per image)."""
    ids = build_stream(segs)
    back = parse_stream(ids)
    assert len(back) == len(segs)
    for a, b in zip(back, segs, strict=True):
        assert a == b if isinstance(b, str) else torch.equal(a, b)
    expected = 2 + sum(len(s.encode("utf-8")) if isinstance(s, str) else 2 + len(s) for s in segs)
    assert len(ids) == expected
    for s in segs:
        if not isinstance(s, str):
            assert ids[ids.index(BOI) + 1] == IMG0 + s[0].item()
            break


def test_allowed_next_follows_the_image_grammar():
    """Text: bytes, EOS, BOI; inside an image: only codes; after N codes: only EOI."""
    n_codes, N = 16, 3
    text = allowed_next([BOS, 104], n_codes=n_codes, tokens_per_image=N)
    assert set(text.nonzero().flatten().tolist()) == set(range(N_BYTES)) | {EOS, BOI}
    for m in range(N):
        inside = allowed_next([BOS, 104, BOI] + [IMG0] * m, n_codes=n_codes, tokens_per_image=N)
        assert set(inside.nonzero().flatten().tolist()) == set(range(IMG0, IMG0 + n_codes))
    full = allowed_next([BOS, BOI] + [IMG0 + 2] * N, n_codes=n_codes, tokens_per_image=N)
    assert full.nonzero().flatten().tolist() == [EOI]
    after = allowed_next([BOS, BOI] + [IMG0] * N + [EOI], n_codes=n_codes, tokens_per_image=N)
    assert torch.equal(after, text)


@pytest.mark.parametrize("seed", [0, 1])
def test_masked_sampling_always_yields_whole_images(seed):
    """Sampling random logits under the mask: every image has exactly N codes and parses back."""
    g = torch.Generator().manual_seed(seed)
    n_codes, N = 8, 5
    for _ in range(20):
        ids = [BOS]
        while ids[-1] != EOS and len(ids) < 200:
            logits = torch.randn(IMG0 + n_codes, generator=g)
            logits[BOI] += 3.0  # make images common
            mask = allowed_next(ids, n_codes=n_codes, tokens_per_image=N)
            p = logits.masked_fill(~mask, -math.inf).softmax(-1)
            ids.append(torch.multinomial(p, 1, generator=g).item())
        if ids[-1] != EOS:
            continue
        starts = [i for i, t in enumerate(ids) if t == BOI]
        for s in starts:
            assert ids[s + N + 1] == EOI and all(t >= IMG0 for t in ids[s + 1 : s + N + 1])
        assert all(t < IMG0 for i, t in enumerate(ids) if not any(s < i <= s + N for s in starts))
        parse_stream([t if t < 128 or t >= N_BYTES else 97 for t in ids])  # parseable (ASCII text)


# --- attention and QK-Norm ------------------------------------------------------------------


@SETTINGS
@given(st.integers(0, 10**6), st.floats(0.0, 1e-2))
def test_layer_norm_matches_torch(seed, eps):
    """layer_norm (with gain and bias) equals F.layer_norm."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 8, generator=g, dtype=torch.float64)
    gamma, bias = torch.randn(2, 8, generator=g, dtype=torch.float64)
    ref = F.layer_norm(x, (8,), weight=gamma, bias=bias, eps=eps)
    torch.testing.assert_close(layer_norm(x, gamma=gamma, bias=bias, eps=eps), ref)


@pytest.mark.parametrize("qk_norm", [False, True])
def test_attention_matches_sdpa(qk_norm):
    """Output equals F.scaled_dot_product_attention (causal) on independently built q, k, v."""
    T, C, H = 9, 16, 4
    w_q, w_k, w_v = _weights(1)
    x = torch.randn(T, C, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    q, k, v = ((x @ w.T).view(T, H, C // H).transpose(0, 1) for w in (w_q, w_k, w_v))
    if qk_norm:
        q, k = F.layer_norm(q, (C // H,)), F.layer_norm(k, (C // H,))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(0, 1).reshape(T, C)
    out, a = attention(x, w_q, w_k, w_v, n_head=H, qk_norm=qk_norm)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(a.sum(-1), torch.ones(H, T, dtype=torch.float64))


@SETTINGS
@given(st.integers(0, 10**6), st.floats(0.05, 50.0), st.floats(0.05, 50.0))
def test_qk_norm_logits_are_scale_invariant(seed, cq, ck):
    """With QK-Norm: logits(c_q W_q, c_k W_k) = logits(W_q, W_k) for eps = 0; for eps > 0 they equal
    the logits at eps / c^2 (LN_eps(c x) = LN_{eps/c^2}(x)). Without it they scale by c_q c_k."""
    w_q, w_k, _ = _weights(seed)
    x = torch.randn(6, 16, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    base = attention_logits(x, w_q, w_k, n_head=2, qk_norm=True, eps=0.0)
    scaled = attention_logits(x, cq * w_q, ck * w_k, n_head=2, qk_norm=True, eps=0.0)
    torch.testing.assert_close(scaled, base)
    c = cq  # the same c for both, eps > 0
    with_eps = attention_logits(x, c * w_q, c * w_k, n_head=2, qk_norm=True, eps=1e-3)
    ref = attention_logits(x, w_q, w_k, n_head=2, qk_norm=True, eps=1e-3 / c**2)
    torch.testing.assert_close(with_eps, ref)
    plain = attention_logits(x, w_q, w_k, n_head=2, qk_norm=False)
    plain_scaled = attention_logits(x, cq * w_q, ck * w_k, n_head=2, qk_norm=False)
    torch.testing.assert_close(plain_scaled, cq * ck * plain)


@SETTINGS
@given(st.integers(0, 10**6), st.floats(0.01, 1e4))
def test_qk_norm_logits_are_bounded(seed, scale):
    """|logit| <= sqrt(d_h) with unit gains, <= max|g_q| max|g_k| sqrt(d_h) with gains."""
    w_q, w_k, _ = _weights(seed, scale=scale)
    x = torch.randn(10, 16, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    d_h = 4
    lg = attention_logits(x, w_q, w_k, n_head=4, qk_norm=True)
    assert lg.abs().max() <= math.sqrt(d_h) + 1e-9
    g = torch.Generator().manual_seed(seed + 2)
    gq, gk = 3 * torch.randn(2, d_h, generator=g, dtype=torch.float64)
    lg = attention_logits(x, w_q, w_k, n_head=4, qk_norm=True, gamma_q=gq, gamma_k=gk)
    assert lg.abs().max() <= gq.abs().max() * gk.abs().max() * math.sqrt(d_h) + 1e-9


def test_qk_norm_gains_match_torch_layer_norm():
    """With gains, the logits equal LN_q(q) . LN_k(k) / sqrt(d_h) built from F.layer_norm."""
    w_q, w_k, _ = _weights(6)
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    gq, gk = torch.randn(2, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    q, k = ((x @ w.T).view(5, 4, 4).transpose(0, 1) for w in (w_q, w_k))
    q, k = F.layer_norm(q, (4,), weight=gq), F.layer_norm(k, (4,), weight=gk)
    ref = q @ k.transpose(1, 2) / 2.0  # sqrt(d_h) = 2
    lg = attention_logits(x, w_q, w_k, n_head=4, qk_norm=True, gamma_q=gq, gamma_k=gk)
    torch.testing.assert_close(lg, ref)


def test_entropy_closed_forms_and_saturation():
    """row_entropy: log n for uniform rows, 0 for one-hot; without QK-Norm it falls toward 0 as c grows."""
    assert math.isclose(
        row_entropy(torch.full((3, 5), 0.2, dtype=torch.float64)).item(), math.log(5)
    )
    assert row_entropy(torch.eye(4, dtype=torch.float64)).item() == 0
    w_q, w_k, w_v = _weights(4)
    x = torch.randn(12, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ents = [
        row_entropy(attention(x, c * w_q, c * w_k, w_v, n_head=2, qk_norm=False)[1]).item()
        for c in (0.5, 1, 2, 4, 8, 16, 32)
    ]
    assert all(
        b <= a + 1e-12 for a, b in zip(ents, ents[1:], strict=False)
    )  # dH/dβ = -β Var(z) <= 0
    assert ents[-1] < 0.05 * ents[0]
    normed = [
        row_entropy(attention(x, c * w_q, c * w_k, w_v, n_head=2, qk_norm=True, eps=0)[1]).item()
        for c in (0.5, 32)
    ]
    assert math.isclose(normed[0], normed[1], rel_tol=1e-9)


@SETTINGS
@given(st.integers(0, 10**6), st.floats(-30, 30))
def test_z_loss_sees_the_shift_cross_entropy_does_not(seed, shift):
    """CE(z + c) = CE(z) and sum_j dCE/dz_j = 0; z-loss gradient = 2 log Z softmax(z) / rows."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(4, 7, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 7, (4,), generator=g)
    torch.testing.assert_close(F.cross_entropy(z + shift, y), F.cross_entropy(z, y))
    (ce_grad,) = torch.autograd.grad(F.cross_entropy(z, y), z)
    torch.testing.assert_close(ce_grad.sum(-1), torch.zeros(4, dtype=torch.float64))
    (zl_grad,) = torch.autograd.grad(z_loss(z), z)
    zd = z.detach()
    ref = 2 * torch.log(torch.exp(zd).sum(-1, keepdim=True)) * torch.softmax(zd, -1) / 4
    torch.testing.assert_close(zl_grad, ref)


@pytest.mark.parametrize("seed", [0, 1])
def test_straight_through_training_beats_training_without_it(seed):
    """With the STE the tokenizer reconstructs held-out patches better and uses more codes."""
    gen = torch.Generator().manual_seed(0)
    z_train = patchify(make_images(256, generator=gen), 4).reshape(-1, 16)
    z_test = patchify(make_images(64, generator=gen), 4).reshape(-1, 16)
    results = {}
    for ste in (True, False):
        enc, codebook, dec = train_vqvae(
            z_train, k=32, d=4, straight_through=ste, steps=300, seed=seed
        )
        with torch.no_grad():
            z_st, idx, _, _ = vq_layer(enc(z_test), codebook, beta=0.25)
            results[ste] = (F.mse_loss(dec(z_st), z_test).item(), len(idx.unique()))
    assert results[True][0] < 0.8 * results[False][0]
    assert results[True][1] > results[False][1]
    assert torch.isfinite(codebook).all() and codebook.shape == (32, 4)


@pytest.mark.parametrize("ste", [True, False])
def test_train_vqvae_steps_equal_torch_adam(ste):
    """The hand-written Adam in train_vqvae gives the parameters torch.optim.Adam gives."""
    z = patchify(make_images(16, generator=torch.Generator().manual_seed(5)), 4).reshape(-1, 16)
    enc, codebook, dec = train_vqvae(z, k=8, d=3, straight_through=ste, steps=6, batch=32, seed=3)
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    enc_r, dec_r = torch.nn.Linear(16, 3), torch.nn.Linear(3, 16)
    with torch.no_grad():
        cb_r = torch.nn.Parameter(kmeans(enc_r(z), 8, iters=5, generator=g))
    opt = torch.optim.Adam([*enc_r.parameters(), *dec_r.parameters(), cb_r], lr=1e-2)
    for _ in range(6):
        x = z[torch.randint(len(z), (32,), generator=g)]
        z_e = enc_r(x)
        idx = ((z_e.detach()[:, None] - cb_r.detach()[None]) ** 2).sum(-1).argmin(1)
        e = cb_r[idx]
        z_in = z_e + (e - z_e).detach() if ste else e
        loss = F.mse_loss(dec_r(z_in), x) + F.mse_loss(e, z_e.detach())
        loss = loss + 0.25 * F.mse_loss(z_e, e.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.testing.assert_close(codebook, cb_r.detach())
    torch.testing.assert_close(enc.weight, enc_r.weight)
    torch.testing.assert_close(dec.bias, dec_r.bias)
