import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.deformable_conv import (
    DeformConv2d,
    bilinear_sample,
    deform_conv2d,
    out_size,
    sampling_positions,
    to_grid,
)

SETTINGS = settings(max_examples=20, deadline=None)
conv_args = st.tuples(
    st.integers(1, 3),  # kernel
    st.integers(1, 2),  # stride
    st.integers(0, 2),  # padding
    st.integers(1, 2),  # dilation
)


def _rand(*shape, seed, lo=-1.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=torch.float64) * (hi - lo) + lo


def _brute_force(x, offset, weight, *, stride, padding, dilation):
    """The paper's formula with loops: G(q, p) = g(q_y, p_y) g(q_x, p_x) summed over every pixel q."""
    B, C, H, W = x.shape
    C_out, _, kh, kw = weight.shape
    Ho, Wo = offset.shape[-2:]
    qy = torch.arange(H, dtype=x.dtype).view(H, 1)
    qx = torch.arange(W, dtype=x.dtype).view(1, W)
    y = torch.zeros(B, C_out, Ho, Wo, dtype=x.dtype)
    for b in range(B):
        for i in range(Ho):
            for j in range(Wo):
                for n in range(kh * kw):
                    r, c = divmod(n, kw)
                    py = i * stride - padding + r * dilation + offset[b, 2 * n, i, j]
                    px = j * stride - padding + c * dilation + offset[b, 2 * n + 1, i, j]
                    G = (1 - (qy - py).abs()).clamp(min=0) * (1 - (qx - px).abs()).clamp(min=0)
                    sample = (x[b] * G).sum((1, 2))  # (C,)
                    y[b, :, i, j] += weight[:, :, r, c] @ sample
    return y


@SETTINGS
@given(conv_args, st.integers(1, 3), st.integers(3, 7), st.integers(3, 7), st.integers(0, 10**6))
def test_zero_offsets_equal_conv2d(args, C, H, W, seed):
    """With Δp = 0, deform_conv2d equals F.conv2d (weights, bias, stride, padding, dilation)."""
    k, s, p, d = args
    Ho, Wo = (
        out_size(H, k, stride=s, padding=p, dilation=d),
        out_size(W, k, stride=s, padding=p, dilation=d),
    )
    if Ho < 1 or Wo < 1:
        return
    x, w, bias = (
        _rand(2, C, H, W, seed=seed),
        _rand(3, C, k, k, seed=seed + 1),
        _rand(3, seed=seed + 2),
    )
    off = torch.zeros(2, 2 * k * k, Ho, Wo, dtype=torch.float64)
    mine = deform_conv2d(x, off, w, bias, stride=s, padding=p, dilation=d)
    ref = F.conv2d(x, w, bias, stride=s, padding=p, dilation=d)
    assert mine.shape == ref.shape
    torch.testing.assert_close(mine, ref, rtol=0, atol=1e-12)


@SETTINGS
@given(st.integers(-3, 3), st.integers(-3, 3), st.integers(0, 10**6))
def test_uniform_integer_offset_is_conv_of_shifted_input(dy, dx, seed):
    """Every Δp = (dy, dx) equals conv2d on x shifted by (dy, dx) with zeros filled in."""
    x, w = _rand(1, 2, 6, 7, seed=seed), _rand(3, 2, 3, 3, seed=seed + 1)
    off = torch.zeros(1, 18, 6, 7, dtype=torch.float64)
    off[:, 0::2], off[:, 1::2] = dy, dx
    # the padded frame, shifted: z[a, b] = x[a - 1 + dy, b - 1 + dx], 0 outside x. Shifting x
    # first and padding after would be wrong: a shift pulls real pixels into the padding.
    big = F.pad(x, (4, 4, 4, 4))
    z = big[:, :, 3 + dy : 3 + dy + 8, 3 + dx : 3 + dx + 9]
    ref = F.conv2d(z, w)
    torch.testing.assert_close(deform_conv2d(x, off, w, padding=1), ref, rtol=0, atol=1e-12)


@SETTINGS
@given(conv_args, st.integers(0, 10**6))
def test_matches_brute_force_formula(args, seed):
    """Random fractional offsets: equals the paper's sum over all pixels q of G(q, p) x(q)."""
    k, s, p, d = args
    x, w = _rand(2, 2, 6, 5, seed=seed), _rand(3, 2, k, k, seed=seed + 1)
    Ho, Wo = (
        out_size(6, k, stride=s, padding=p, dilation=d),
        out_size(5, k, stride=s, padding=p, dilation=d),
    )
    if Ho < 1 or Wo < 1:
        return
    off = _rand(2, 2 * k * k, Ho, Wo, seed=seed + 2, lo=-2.5, hi=2.5)
    mine = deform_conv2d(x, off, w, stride=s, padding=p, dilation=d)
    ref = _brute_force(x, off, w, stride=s, padding=p, dilation=d)
    torch.testing.assert_close(mine, ref, rtol=0, atol=1e-12)


def test_offset_channel_order_is_y_then_x():
    """Channel 2n moves kernel point n down (rows), channel 2n+1 moves it right (columns)."""
    off = torch.zeros(1, 18, 2, 2, dtype=torch.float64)
    off[0, 2 * 4] = 0.25  # centre point, Δy
    off[0, 2 * 4 + 1] = -0.5  # centre point, Δx
    py, px = sampling_positions(off, 3, 3, padding=1)
    assert py[0, 4, 1, 1].item() == 1.25 and px[0, 4, 1, 1].item() == 0.5
    assert py[0, 0, 0, 0].item() == -1 and px[0, 2, 0, 0].item() == 1  # corners of the grid


@SETTINGS
@given(st.integers(1, 3), st.integers(2, 9), st.integers(2, 9), st.integers(0, 10**6))
def test_sampler_equals_grid_sample_align_corners_true_zeros(C, H, W, seed):
    """bilinear_sample == F.grid_sample(bilinear, zeros, align_corners=True), x → 2x/(W−1) − 1."""
    x = _rand(2, C, H, W, seed=seed)
    py, px = (
        _rand(2, 4, 5, seed=seed + 1, lo=-1.5, hi=H + 0.5),
        _rand(2, 4, 5, seed=seed + 2, lo=-1.5, hi=W + 0.5),
    )
    grid = torch.stack([2 * px / (W - 1) - 1, 2 * py / (H - 1) - 1], dim=-1)  # (x, y) order
    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    torch.testing.assert_close(bilinear_sample(x, py, px), ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(to_grid(py, px, H, W), grid, rtol=0, atol=0)


def test_sampler_at_integer_positions_indexes_the_image():
    """At integer (i, j) the sampler returns x[i, j], and 0 outside the image."""
    x = _rand(1, 2, 4, 5, seed=3)
    ii, jj = torch.meshgrid(torch.arange(-1, 5.0), torch.arange(-1, 6.0), indexing="ij")
    out = bilinear_sample(x, ii[None].double(), jj[None].double())
    torch.testing.assert_close(out[:, :, 1:5, 1:6], x, rtol=0, atol=0)
    assert out[:, :, 0].abs().max() == 0 and out[:, :, :, -1].abs().max() == 0


def test_gradcheck_float64():
    """Gradients w.r.t. x, offsets, weight and bias pass gradcheck (fractional offsets, no kinks)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    whole = torch.randint(-2, 2, (1, 18, 3, 3), generator=g).double()
    frac = torch.rand(1, 18, 3, 3, generator=g, dtype=torch.float64) * 0.8 + 0.1
    off = (whole + frac).requires_grad_()  # stride 2 → 3 x 3 outputs; offsets reach the border
    fn = lambda a, o, c, d: deform_conv2d(a, o, c, d, stride=2, padding=1)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, off, w, b))


def test_module_starts_as_its_conv():
    """DeformConv2d has 2k² zero-initialised offset channels, so at init it equals its Conv2d."""
    torch.manual_seed(0)
    m = DeformConv2d(3, 4, 3, stride=2, padding=1).double()
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    assert m.offset.out_channels == 18
    torch.testing.assert_close(m(x), m.conv(x), rtol=0, atol=1e-12)
    m.offset.bias.data.fill_(0.3)
    assert (m(x) - m.conv(x)).abs().max() > 1e-3


def test_module_offsets_come_from_a_conv_of_the_same_geometry():
    """The offset conv shares the main conv's kernel, stride, padding and dilation (paper §2.1)."""
    torch.manual_seed(0)
    m = DeformConv2d(2, 3, 3, stride=2, padding=2, dilation=2).double()
    with torch.no_grad():
        m.offset.weight.normal_(0, 0.3)
        m.offset.bias.normal_(0, 0.3)
    x = torch.randn(1, 2, 8, 7, dtype=torch.float64)
    off = F.conv2d(x, m.offset.weight, m.offset.bias, stride=2, padding=2, dilation=2)
    ref = _brute_force(x, off, m.conv.weight, stride=2, padding=2, dilation=2)
    torch.testing.assert_close(m(x), ref + m.conv.bias.view(1, 3, 1, 1), rtol=0, atol=1e-12)
