import itertools
import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.kimi_vl import (
    MoE,
    PackedViTLayer,
    Projector,
    ToyMoonViT,
    apply_rope,
    block_diagonal_mask,
    pack,
    patch_merge,
    rope_2d,
    update_bias,
)

grid_st = st.tuples(st.integers(1, 5), st.integers(1, 5))
even_grid_st = st.tuples(
    st.integers(1, 3).map(lambda n: 2 * n), st.integers(1, 3).map(lambda n: 2 * n)
)


def _rotation_oracle(x, row, col, theta=10000.0):
    """Apply 2-D RoPE with explicit 2×2 rotation matrices: pair 2i by col·ω_i, pair 2i+1 by row·ω_i."""
    d = x.shape[-1]
    out = torch.empty_like(x)
    for j in range(d // 2):
        i, axis = divmod(j, 2)
        angle = (col if axis == 0 else row) * theta ** (-4 * i / d)
        c, s = math.cos(angle), math.sin(angle)
        a, b = x[..., 2 * j], x[..., 2 * j + 1]
        out[..., 2 * j], out[..., 2 * j + 1] = c * a - s * b, s * a + c * b
    return out


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=5))
def test_block_diagonal_mask_matches_image_ids(lengths):
    """The mask is True exactly where both tokens come from the same image (ids listed by hand)."""
    image_id = [i for i, n in enumerate(lengths) for _ in range(n)]
    cu = torch.tensor([0] + list(itertools.accumulate(lengths)))
    expected = torch.tensor([[a == b for b in image_id] for a in image_id])
    assert torch.equal(block_diagonal_mask(cu), expected)


@settings(max_examples=15, deadline=None)
@given(st.lists(grid_st, min_size=1, max_size=3), st.integers(0, 2**16))
def test_pack_places_each_patch(grids, seed):
    """Token cu[i] + r·w + c is patch (r, c) of image i, cut out by slicing the image."""
    torch.manual_seed(seed)
    p = 3
    images = [torch.randn(2, h * p + 1, w * p + 2) for h, w in grids]  # ragged edges are cropped
    tokens, got_grids, cu = pack(images, p)
    assert got_grids == list(grids) and int(cu[-1]) == tokens.shape[0]
    for img, (h, w), start in zip(images, grids, cu[:-1].tolist(), strict=True):
        for r, c in itertools.product(range(h), range(w)):
            ref = img[:, r * p : (r + 1) * p, c * p : (c + 1) * p].reshape(-1)  # (C, p, p)
            assert torch.equal(tokens[start + r * w + c], ref)


@settings(max_examples=10, deadline=None)
@given(st.lists(grid_st, min_size=1, max_size=4), st.integers(0, 2**16))
def test_packed_layer_equals_each_image_alone(grids, seed):
    """One masked pass over the packed sequence = each image through the same layer on its own."""
    torch.manual_seed(seed)
    layer = PackedViTLayer(16, 2).double()
    x = torch.randn(sum(h * w for h, w in grids), 16, dtype=torch.float64)
    cu = torch.tensor([0] + list(itertools.accumulate(h * w for h, w in grids)))
    packed = layer(x, rope_2d(grids, 8), block_diagonal_mask(cu))
    for g, a, b in zip(grids, cu[:-1].tolist(), cu[1:].tolist(), strict=True):
        alone = layer(x[a:b], rope_2d([g], 8), None)
        torch.testing.assert_close(packed[a:b], alone, rtol=0, atol=1e-12)


def test_layer_matches_explicit_attention():
    """One layer, recomputed by hand: rotation matrices on q and k, per-head softmax over same-image keys."""
    torch.manual_seed(1)
    layer = PackedViTLayer(8, 2).double()
    grids = [(2, 3), (3, 2)]
    pos = [(b, r, c) for b, (h, w) in enumerate(grids) for r in range(h) for c in range(w)]
    x = torch.randn(len(pos), 8, dtype=torch.float64)
    cu = torch.tensor([0, 6, 12])
    with torch.no_grad():
        got = layer(x, rope_2d(grids, 4), block_diagonal_mask(cu))
        q, k, v = layer.wqkv(layer.norm0(x)).view(len(pos), 3, 2, 4).unbind(1)
        heads = []
        for h in range(2):
            qr = torch.stack([_rotation_oracle(q[t, h], r, c) for t, (_, r, c) in enumerate(pos)])
            kr = torch.stack([_rotation_oracle(k[t, h], r, c) for t, (_, r, c) in enumerate(pos)])
            scores = qr @ kr.T / 2.0  # sqrt(head_dim = 4)
            same = torch.tensor([[a[0] == b[0] for b in pos] for a in pos])
            heads.append(scores.masked_fill(~same, -math.inf).softmax(-1) @ v[:, h])
        y = x + layer.wo(torch.cat(heads, dim=-1))
        expected = y + layer.mlp(layer.norm1(y))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def _bicubic_matrix(n_in, n_out, A=-0.75):
    """(n_out, n_in) weights of 1-D bicubic resampling (Keys, a = -0.75, half-pixel centres, edge clamp)."""
    W = torch.zeros(n_out, n_in, dtype=torch.float64)
    for o in range(n_out):
        real = (o + 0.5) * n_in / n_out - 0.5  # source coordinate of output sample o
        i0 = math.floor(real)
        t = real - i0
        taps = [
            ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A,  # |x| in [1, 2)
            ((A + 2) * t - (A + 3)) * t * t + 1,  # |x| in [0, 1)
            ((A + 2) * (1 - t) - (A + 3)) * (1 - t) ** 2 + 1,
            ((A * (2 - t) - 5 * A) * (2 - t) + 8 * A) * (2 - t) - 4 * A,
        ]
        for k, weight in enumerate(taps):
            W[o, min(max(i0 - 1 + k, 0), n_in - 1)] += weight
    return W


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 9)), min_size=1, max_size=3))
def test_pos_embedding_is_a_bicubic_resize_of_the_table(grids):
    """Each image gets the 5×5 table resampled separably (rows, then columns) to its (h, w), row-major."""
    torch.manual_seed(0)
    vit = ToyMoonViT(patch=4, d_model=6, n_head=2, pos_grid=5).double()
    with torch.no_grad():
        got = vit.pos_embedding(grids)
        table = vit.pos  # (5, 5, D)
        expected = torch.cat(
            [
                torch.einsum(
                    "ri,cj,ijd->rcd", _bicubic_matrix(5, h), _bicubic_matrix(5, w), table
                ).reshape(h * w, -1)
                for h, w in grids
            ]
        )
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_toy_moonvit_packed_equals_one_image_at_a_time():
    """The whole encoder (pos-embedding resize, RoPE, mask) gives each image the features it gets alone."""
    torch.manual_seed(0)
    vit = ToyMoonViT(patch=4, d_model=16, n_head=2, pos_grid=5).double()
    images = [
        torch.randn(3, 8, 12, dtype=torch.float64),
        torch.randn(3, 20, 20, dtype=torch.float64),
    ]
    feats, grids = vit(images)
    assert grids == [(2, 3), (5, 5)]
    alone = torch.cat([vit([img])[0] for img in images])
    torch.testing.assert_close(feats, alone, rtol=0, atol=1e-12)
    # the encoder ends in a LayerNorm (weight 1, bias 0 at init): each token has mean 0, variance ≈ 1
    torch.testing.assert_close(feats.mean(-1), torch.zeros(len(feats), dtype=torch.float64))
    torch.testing.assert_close(
        feats.var(-1, unbiased=False),
        torch.ones(len(feats), dtype=torch.float64),
        atol=1e-3,
        rtol=0,
    )
    # at the table's own size the bicubic resize is the identity
    torch.testing.assert_close(
        vit.pos_embedding([(5, 5)]), vit.pos.reshape(25, 16), rtol=0, atol=1e-6
    )


@settings(max_examples=15, deadline=None)
@given(
    st.lists(grid_st, min_size=1, max_size=3), st.sampled_from([4, 8, 12]), st.integers(0, 2**16)
)
def test_rope_matches_rotation_matrices(grids, d, seed):
    """apply_rope(rope_2d) = explicit 2×2 rotations with the column on even pairs and the row on odd pairs."""
    torch.manual_seed(seed)
    L = sum(h * w for h, w in grids)
    x = torch.randn(L, 2, d, dtype=torch.float64)
    got = apply_rope(x, rope_2d(grids, d))
    rows = [(r, c) for h, w in grids for r in range(h) for c in range(w)]
    for t, (r, c) in enumerate(rows):
        torch.testing.assert_close(got[t], _rotation_oracle(x[t], r, c), rtol=0, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.integers(-3, 3), st.integers(-3, 3))
def test_rope_score_depends_only_on_offset(seed, dr, dc):
    """<R(p1)q, R(p2)k> = <q, R(p2 - p1)k> for every pair of positions in a 7×7 grid."""
    torch.manual_seed(seed)
    d = 8
    q, k = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    cis = rope_2d([(7, 7)], d)
    qr = apply_rope(q.expand(49, 1, d), cis)[:, 0]
    kr = apply_rope(k.expand(49, 1, d), cis)[:, 0]
    expected = q @ _rotation_oracle(k, dr, dc)
    for r, c in itertools.product(range(7), range(7)):
        if 0 <= r + dr < 7 and 0 <= c + dc < 7:
            score = qr[r * 7 + c] @ kr[(r + dr) * 7 + (c + dc)]
            torch.testing.assert_close(score, expected, rtol=0, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.lists(even_grid_st, min_size=1, max_size=3), st.integers(0, 2**16))
def test_patch_merge_is_pixel_unshuffle_reordered(grids, seed):
    """patch_merge = F.pixel_unshuffle per image with (ki, kj) outer and the channel inner."""
    torch.manual_seed(seed)
    D = 3
    x = torch.randn(sum(h * w for h, w in grids), D)
    out, start = [], 0
    for h, w in grids:
        img = x[start : start + h * w].T.reshape(1, D, h, w)
        u = F.pixel_unshuffle(img, 2)[0]  # (D·4, h/2, w/2), channel index = d·4 + 2·ki + kj
        out.append(u.view(D, 4, h // 2, w // 2).permute(2, 3, 1, 0).reshape(-1, 4, D))
        start += h * w
    assert torch.equal(patch_merge(x, grids), torch.cat(out))


def test_projector_normalises_each_patch_then_concatenates():
    """Projector = MLP(concat(LN(p_00), LN(p_01), LN(p_10), LN(p_11))), LN over one patch's channels."""
    torch.manual_seed(0)
    proj = Projector(6, 5).double()
    merged = torch.randn(7, 4, 6, dtype=torch.float64) * 3 + 1
    ln = [F.layer_norm(merged[:, j], (6,), proj.norm.weight, proj.norm.bias) for j in range(4)]
    torch.testing.assert_close(proj(merged), proj.mlp(torch.cat(ln, dim=-1)), rtol=0, atol=1e-12)


def _moe(seed, *, n_experts=6, top_k=2, scale=2.5):
    torch.manual_seed(seed)
    moe = MoE(8, 12, n_experts=n_experts, top_k=top_k, n_shared=2, scale=scale).double()
    moe.bias.copy_(torch.randn(n_experts, dtype=torch.float64) * 0.3)  # a bias that changes choices
    return moe


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 4))
def test_routing_matches_brute_force(seed, top_k):
    """The chosen set maximises Σ(s + b) over all k-subsets; weights are scale·s/Σs, without b."""
    moe = _moe(seed, top_k=top_k)
    x = torch.randn(10, 8, dtype=torch.float64)
    idx, g = moe.route(x)
    s = torch.sigmoid(x @ moe.router.detach().T)  # the router scores, recomputed
    for t in range(10):
        subsets = itertools.combinations(range(6), top_k)
        best = max(subsets, key=lambda c: sum(float(s[t, e] + moe.bias[e]) for e in c))
        assert sorted(idx[t].tolist()) == sorted(best)
        raw = s[t, idx[t]]
        torch.testing.assert_close(g[t], 2.5 * raw / raw.sum(), rtol=0, atol=1e-14)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 3), st.integers(1, 12))
def test_moe_equals_dense_loop(seed, top_k, T):
    """Sort-and-batch dispatch = for every token, Σ over its chosen experts of gate · expert(x) + shared(x)."""
    moe = _moe(seed, top_k=top_k)
    x = torch.randn(T, 8, dtype=torch.float64)
    idx, g = moe.route(x)
    expected = torch.stack(
        [
            moe.shared(x[t])
            + sum(
                g[t, j] * moe.experts[e](x[t])
                for e in range(6)
                for j in range(top_k)
                if idx[t, j] == e
            )
            for t in range(T)
        ]
    )
    torch.testing.assert_close(moe(x), expected, rtol=0, atol=1e-12)


def test_update_bias_moves_against_the_load():
    """Overloaded experts lose γ, underloaded ones gain γ, experts exactly at the mean keep their bias."""
    moe = _moe(0, n_experts=4)
    moe.bias.zero_()
    idx = torch.tensor([[0, 1], [0, 2], [0, 1], [3, 1]])  # loads 3, 3, 1, 1; mean 2
    load = update_bias(moe, idx, gamma=0.1)
    assert load.tolist() == [3, 3, 1, 1]
    torch.testing.assert_close(moe.bias, torch.tensor([-0.1, -0.1, 0.1, 0.1], dtype=torch.float64))
    moe.bias.zero_()
    update_bias(moe, torch.tensor([[0, 1], [2, 3]]), gamma=0.1)  # balanced: nothing moves
    assert torch.equal(moe.bias, torch.zeros(4, dtype=torch.float64))
