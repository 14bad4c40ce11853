"""Tests for snippets/upsampling.py against PyTorch built-ins and closed forms."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from snippets.upsampling import (
    antialias_np,
    bilinear_np,
    conv_transpose2d_gather,
    conv_transpose2d_scatter,
    conv_transpose_out_size,
    dcr_to_crd,
    deconv_bilinear,
    icnr,
    max_pool2d_with_indices,
    max_unpool2d,
    nearest_np,
    overlap_maps,
    pixel_shuffle,
    pixel_unshuffle,
    resize_conv_phase_kernels,
    source_coords,
    subpixel_bilinear,
    subpixel_conv,
    triangle_resample_matrix,
    zero_insert,
)

SETTINGS = settings(max_examples=40, deadline=None)
size = st.integers(1, 12)


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@SETTINGS
@given(h=size, w=size, ho=st.integers(1, 40), wo=st.integers(1, 40), exact=st.booleans())
def test_nearest_matches_interpolate(h, w, ho, wo, exact):
    """nearest_np equals F.interpolate(mode='nearest' / 'nearest-exact') exactly, up and down."""
    x = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
    mode = "nearest-exact" if exact else "nearest"
    ref = F.interpolate(x, size=(ho, wo), mode=mode)[0, 0].numpy()
    np.testing.assert_array_equal(nearest_np(x[0, 0].numpy(), (ho, wo), exact), ref)


def test_nearest_exhaustive_small_sizes():
    """Every in 1..16, out 1..48 and both modes match F.interpolate (catches float32 rounding)."""
    for h in range(1, 17):
        x = torch.arange(h * 2, dtype=torch.float32).view(1, 1, h, 2)
        for ho in range(1, 49):
            for exact, mode in [(False, "nearest"), (True, "nearest-exact")]:
                ref = F.interpolate(x, size=(ho, 2), mode=mode)[0, 0].numpy()
                np.testing.assert_array_equal(nearest_np(x[0, 0].numpy(), (ho, 2), exact), ref)


def test_nearest_exact_is_centred():
    """For ×2 downsampling 'nearest' picks pixels 0,2,4 and 'nearest-exact' picks 1,3,5."""
    x = np.arange(6.0)[None, :]
    np.testing.assert_array_equal(nearest_np(x, (1, 3))[0], [0, 2, 4])
    np.testing.assert_array_equal(nearest_np(x, (1, 3), exact=True)[0], [1, 3, 5])


@SETTINGS
@given(h=size, w=size, ho=st.integers(1, 30), wo=st.integers(1, 30), ac=st.booleans())
def test_bilinear_matches_interpolate(h, w, ho, wo, ac):
    """bilinear_np equals F.interpolate(mode='bilinear', size=...) for both align_corners."""
    x = _rand(2, 3, h, w)
    ref = F.interpolate(x, size=(ho, wo), mode="bilinear", align_corners=ac).numpy()
    np.testing.assert_allclose(bilinear_np(x.numpy(), (ho, wo), ac), ref, atol=1e-6, rtol=0)


@SETTINGS
@given(h=size, w=size, scale=st.sampled_from([0.5, 0.7, 1.3, 1.5, 2.0, 2.5, 3.0]))
def test_bilinear_scale_factor_matches_interpolate(h, w, scale):
    """With scale_factor, the mapping uses 1/scale_factor (not in/out), as F.interpolate does."""
    out = (int(np.floor(h * scale)), int(np.floor(w * scale)))
    assume(min(out) >= 1)
    x = _rand(1, 2, h, w)
    ref = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    mine = bilinear_np(x.numpy(), out, align_corners=False, scale=scale)
    np.testing.assert_allclose(mine, ref.numpy(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("h,scale", [(5, 1.1), (5, 1.19), (7, 1.1), (3, 1.3)])
def test_bilinear_scale_ignored_on_unchanged_dim(h, scale):
    """Where floor(h·scale) = h, F.interpolate copies along H, and bilinear_np(scale=...) matches."""
    x = _rand(1, 1, h, 10)
    ref = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    assert ref.shape[-2] == h  # H unchanged, W = floor(10·scale) changed
    same_h = F.interpolate(x, scale_factor=(1.0, scale), mode="bilinear", align_corners=False)
    assert torch.equal(ref, same_h)  # as if scale_factor along H were 1
    mine = bilinear_np(x.numpy(), tuple(ref.shape[-2:]), align_corners=False, scale=scale)
    np.testing.assert_allclose(mine, ref.numpy(), atol=1e-12, rtol=0)


@SETTINGS
@given(h=st.integers(1, 20), w=st.integers(1, 20), ho=st.integers(1, 20), wo=st.integers(2, 20))
def test_antialias_matches_interpolate(h, w, ho, wo):
    """antialias_np equals F.interpolate(bilinear, antialias=True, align_corners=False), up and down."""
    # wo >= 2: torch 2.13 CPU returns the first output row everywhere when the output width is 1
    x = _rand(2, 1, h, w)
    ref = F.interpolate(x, size=(ho, wo), mode="bilinear", antialias=True, align_corners=False)
    np.testing.assert_allclose(antialias_np(x.numpy(), (ho, wo)), ref.numpy(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("scale", [0.3, 0.5, 0.7])
def test_antialias_scale_factor(scale):
    """With scale_factor the triangle filter uses 1/scale_factor, as F.interpolate(antialias) does."""
    x = _rand(1, 1, 13, 3)  # width 3, unchanged (see the width-1 note above)
    ref = F.interpolate(x, scale_factor=(scale, 1.0), mode="bilinear", antialias=True)[0, 0]
    mine = triangle_resample_matrix(ref.shape[0], 13, scale) @ x[0, 0].numpy()
    np.testing.assert_allclose(mine, ref.numpy(), atol=1e-12, rtol=0)


def test_antialias_downsampling_removes_stripes():
    """×1/4 of period-3.2 stripes: antialias=False keeps ≥ half the std, the triangle filter < 1/10."""
    x = np.cos(2 * np.pi * np.arange(64) / 3.2)[None, :].repeat(4, axis=0)
    plain = F.interpolate(torch.from_numpy(x)[None, None], size=(4, 16), mode="bilinear")
    assert plain.numpy().std() > 0.5 * x.std()
    assert antialias_np(x, (4, 16)).std() < 0.1 * x.std()


def test_source_coords_closed_form():
    """4 -> 8: align_corners=False gives (dst+0.5)/2-0.5 clamped at 0; True gives dst·3/7."""
    dst = np.arange(8)
    np.testing.assert_allclose(source_coords(8, 4, False), np.maximum((dst + 0.5) / 2 - 0.5, 0))
    np.testing.assert_allclose(source_coords(8, 4, True), dst * 3 / 7)


def test_align_corners_keeps_corners():
    """align_corners=True reproduces the four corner pixels exactly and differs from False."""
    x = _rand(1, 1, 4, 5).numpy()
    y = bilinear_np(x, (9, 13), align_corners=True)
    for i, j in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert y[0, 0, i, j] == pytest.approx(x[0, 0, i, j])
    y_false = bilinear_np(x, (9, 13), align_corners=False)
    assert np.abs(y - y_false).max() > 1e-3


def test_upsample_module_is_interpolate():
    """nn.Upsample calls F.interpolate; nn.UpsamplingBilinear2d means align_corners=True."""
    x = _rand(1, 2, 5, 7)
    up = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(up(x).numpy(), bilinear_np(x.numpy(), (10, 14), False), atol=1e-12)
    ub = torch.nn.UpsamplingBilinear2d(scale_factor=2)
    np.testing.assert_allclose(ub(x).numpy(), bilinear_np(x.numpy(), (10, 14), True), atol=1e-12)


@SETTINGS
@given(n=st.integers(1, 2), c=st.integers(1, 3), r=st.integers(1, 4), h=st.integers(1, 5),
       w=st.integers(1, 5))  # fmt: skip
def test_pixel_shuffle_matches_torch(n, c, r, h, w):
    """pixel_shuffle equals nn.PixelShuffle and pixel_unshuffle equals nn.PixelUnshuffle."""
    x = _rand(n, c * r * r, h, w)
    y = torch.nn.PixelShuffle(r)(x)
    assert torch.equal(pixel_shuffle(x, r), y)
    assert torch.equal(pixel_unshuffle(y, r), torch.nn.PixelUnshuffle(r)(y))
    assert torch.equal(pixel_unshuffle(y, r), x)  # and it is the inverse


def test_pixel_shuffle_index_formula():
    """y[n, c, h·r+i, w·r+j] = x[n, c·r²+i·r+j, h, w], checked element by element."""
    r, c, h, w = 3, 2, 2, 3
    x = _rand(1, c * r * r, h, w)
    y = pixel_shuffle(x, r)
    for cc, hh, ww, i, j in np.ndindex(c, h, w, r, r):
        assert y[0, cc, hh * r + i, ww * r + j] == x[0, cc * r * r + i * r + j, hh, ww]


@SETTINGS
@given(c=st.integers(1, 3), r=st.integers(1, 4), h=st.integers(1, 4), w=st.integers(1, 4))
def test_dcr_to_crd_matches_onnx_dcr(c, r, h, w):
    """nn.PixelShuffle of dcr_to_crd-permuted channels equals ONNX DepthToSpace(mode='DCR')."""
    x = _rand(1, c * r * r, h, w).numpy()
    tmp = x.reshape(1, r, r, c, h, w).transpose(0, 3, 4, 1, 5, 2)  # ONNX operator docs, DCR
    ref = tmp.reshape(1, c, h * r, w * r)
    y = torch.nn.PixelShuffle(r)(torch.from_numpy(x[:, dcr_to_crd(c, r)]))
    np.testing.assert_array_equal(y.numpy(), ref)


def test_zero_insert_layout():
    """zero_insert keeps x on the stride grid and is zero everywhere else."""
    x = _rand(1, 2, 3, 4) + 10  # no accidental zeros
    z = zero_insert(x, 3)
    assert z.shape == (1, 2, 7, 10)
    assert torch.equal(z[:, :, ::3, ::3], x)
    assert int((z != 0).sum()) == x.numel()


conv_cfg = dict(
    h=st.integers(1, 6), w=st.integers(1, 6), k=st.integers(1, 4), s=st.integers(1, 3),
    p=st.integers(0, 3), op=st.integers(0, 2), d=st.integers(1, 2), cin=st.integers(1, 3),
    cout=st.integers(1, 3),
)  # fmt: skip


@SETTINGS
@given(**conv_cfg)
def test_conv_transpose_gather_matches_torch(h, w, k, s, p, op, d, cin, cout):
    """zero insertion + conv2d(flipped, transposed kernel) equals F.conv_transpose2d (with bias)."""
    assume(op < s and conv_transpose_out_size(min(h, w), k, s, p, op, d) >= 1)
    x, wt, b = _rand(2, cin, h, w, seed=1), _rand(cin, cout, k, k, seed=2), _rand(cout, seed=3)
    kw = dict(stride=s, padding=p, output_padding=op, dilation=d)
    ref = F.conv_transpose2d(x, wt, b, **kw)
    mine = conv_transpose2d_gather(x, wt, b, **kw)
    assert mine.shape == ref.shape
    torch.testing.assert_close(mine, ref, atol=1e-10, rtol=0)


@SETTINGS
@given(**conv_cfg)
def test_conv_transpose_scatter_matches_module(h, w, k, s, p, op, d, cin, cout):
    """The numpy scatter definition equals nn.ConvTranspose2d and its size formula."""
    assume(op < s and conv_transpose_out_size(min(h, w), k, s, p, op, d) >= 1)
    layer = torch.nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, output_padding=op,
                                     dilation=d, bias=False).double()  # fmt: skip
    with torch.no_grad():
        layer.weight.copy_(_rand(cin, cout, k, k, seed=4))  # weight layout (C_in, C_out, k, k)
    x = _rand(1, cin, h, w, seed=5)
    ref = layer(x).detach().numpy()
    mine = conv_transpose2d_scatter(x.numpy(), layer.weight.detach().numpy(), s, p, op, d)
    assert mine.shape == ref.shape
    assert ref.shape[-2:] == (conv_transpose_out_size(h, k, s, p, op, d),
                              conv_transpose_out_size(w, k, s, p, op, d))  # fmt: skip
    np.testing.assert_allclose(mine, ref, atol=1e-10, rtol=0)


def test_conv_transpose_is_adjoint_of_conv():
    """<conv2d(u, W), v> = <u, conv_transpose2d(v, W)>: the transpose is the adjoint."""
    u, v, wt = _rand(1, 2, 9, 9, seed=6), _rand(1, 3, 5, 5, seed=7), _rand(3, 2, 3, 3, seed=8)
    lhs = (F.conv2d(u, wt, stride=2, padding=1) * v).sum()
    rhs = (u * conv_transpose2d_gather(v, wt, stride=2, padding=1)).sum()
    assert lhs.item() == pytest.approx(rhs.item(), rel=1e-12)


@SETTINGS
@given(h=st.integers(1, 9), w=st.integers(1, 9), k=st.integers(1, 3))
def test_max_pool_and_unpool_match_torch(h, w, k):
    """Pool values/indices equal F.max_pool2d's; unpool equals F.max_unpool2d."""
    assume(h >= k and w >= k)
    x = _rand(2, 3, h, w, seed=h * 10 + w)  # continuous values: no ties
    v_ref, i_ref = F.max_pool2d(x, k, return_indices=True)
    v, idx = max_pool2d_with_indices(x, k)
    assert torch.equal(v, v_ref) and torch.equal(idx, i_ref)
    ref = F.max_unpool2d(v_ref, i_ref, k, output_size=(h, w))
    assert torch.equal(max_unpool2d(v, idx, (h, w)), ref)


def test_unpool_keeps_maxima_in_place():
    """After pool+unpool each 2×2 block holds its max at the original position and 3 zeros."""
    x = _rand(1, 1, 6, 6, seed=9)
    y = max_unpool2d(*max_pool2d_with_indices(x, 2), (6, 6))
    blocks_x = x.view(6 // 2, 2, 6 // 2, 2).permute(0, 2, 1, 3).reshape(9, 4)
    blocks_y = y.view(6 // 2, 2, 6 // 2, 2).permute(0, 2, 1, 3).reshape(9, 4)
    for bx, by in zip(blocks_x, blocks_y, strict=True):
        j = int(bx.argmax())
        assert by[j] == bx[j] and int((by != 0).sum()) == 1


@pytest.mark.parametrize("r", [2, 3, 4])
def test_subpixel_conv_reproduces_bilinear(r):
    """Fixed 3×3 conv + pixel shuffle equals F.interpolate(bilinear, align_corners=False)."""
    x = _rand(1, 2, 5, 6, seed=10)
    ref = F.interpolate(x, scale_factor=r, mode="bilinear", align_corners=False)
    torch.testing.assert_close(subpixel_bilinear(x, r), ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("r", [2, 4])
def test_deconv_bilinear_interior(r):
    """Bilinear-kernel ConvTranspose2d equals bilinear interpolation except r/2 border rows."""
    x = _rand(1, 2, 6, 5, seed=11)
    ref = F.interpolate(x, scale_factor=r, mode="bilinear", align_corners=False)
    out = deconv_bilinear(x, r)
    b = r // 2
    torch.testing.assert_close(out[..., b:-b, b:-b], ref[..., b:-b, b:-b], atol=1e-12, rtol=0)
    assert (out[..., 0, :] - ref[..., 0, :]).abs().max() > 1e-3  # zero padding darkens the edge


def test_overlap_maps_closed_form():
    """Interior overlaps: k=3,s=2 is outer(1,2,1,2,...); k=4,s=2 is 4; resize+conv is 9."""
    maps = overlap_maps(8)
    m = maps["ConvT k=3 s=2"][0, 0].numpy()
    row = np.where(np.arange(16) % 2 == 1, 2.0, 1.0)  # padding=1 shifts the even/odd phase
    np.testing.assert_array_equal(m[1:-1, 1:-1], np.outer(row, row)[1:-1, 1:-1])
    assert set(np.unique(maps["ConvT k=4 s=2"][0, 0, 1:-1, 1:-1].numpy())) == {4.0}
    assert set(np.unique(maps["nearest x2 + conv3x3"][0, 0, 1:-1, 1:-1].numpy())) == {9.0}


@pytest.mark.parametrize("r,k", [(2, 1), (2, 3), (2, 5), (3, 3), (3, 5), (4, 3)])
def test_resize_conv_phase_kernels(r, k):
    """Sub-pixel conv with the r² phase kernels equals nearest ×r + conv; each sums to w.sum()."""
    w = _rand(k, k, seed=12)
    kernels = resize_conv_phase_kernels(w, r)
    m = kernels.shape[-1]
    x = _rand(1, 1, 6, 7, seed=13)
    ref = F.conv2d(
        F.interpolate(x, scale_factor=r, mode="nearest"), w.view(1, 1, k, k), padding=k // 2
    )
    mine = F.pixel_shuffle(F.conv2d(x, kernels.reshape(r * r, 1, m, m), padding=m // 2), r)
    torch.testing.assert_close(mine, ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(kernels.sum(dim=(-1, -2)), w.sum().expand(r, r), atol=1e-12, rtol=0)
    assert (
        r == 1 or k == 1 or len({tuple(kk.flatten().tolist()) for kk in kernels.flatten(0, 1)}) > 1
    )


@pytest.mark.parametrize("r", [2, 3])
def test_subpixel_checkerboard_and_icnr(r):
    """Constant input: random sub-pixel conv tiles the per-phase sums; ICNR equals conv then nearest."""
    w_rand = _rand(2 * r * r, 3, 3, 3, seed=14)  # 2 output channels × r² phases
    out = subpixel_conv(torch.ones(1, 3, 6, 6, dtype=torch.float64), w_rand, r)[0]
    tile = w_rand.sum(dim=(1, 2, 3)).view(2, r, r).repeat(1, 6, 6)  # phase (i, j) -> its kernel sum
    torch.testing.assert_close(out[:, r:-r, r:-r], tile[:, r:-r, r:-r], atol=1e-12, rtol=0)
    w, x = _rand(2, 3, 3, 3, seed=15), _rand(1, 3, 5, 6, seed=16)
    ref = F.interpolate(F.conv2d(x, w, padding=1), scale_factor=r, mode="nearest")
    torch.testing.assert_close(subpixel_conv(x, icnr(w, r), r), ref, atol=1e-12, rtol=0)
