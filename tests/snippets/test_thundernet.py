"""Tests for snippets/thundernet.py against closed forms and brute-force loops."""

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.thundernet import (
    CEM,
    RPNWithSAM,
    ShuffleBlock,
    ThunderNetToy,
    channel_shuffle,
    flop_breakdown,
    input_gradient,
    macs,
    ps_roi_align,
    rcnn_head_macs,
    support_box,
)

SETTINGS = settings(max_examples=15, deadline=None)
TOY = dict(widths=(8, 16, 32, 64), repeats=(1, 1, 1), alpha=1, p=3, hidden=16)


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _conv1x1(x, conv):
    """1×1 convolution as an explicit channel contraction (oracle for nn.Conv2d(k=1))."""
    w = conv.weight.detach()[:, :, 0, 0]
    return torch.einsum("oc,bchw->bohw", w, x) + conv.bias.detach()[None, :, None, None]


def test_shape_contract_snet146_at_320():
    """320×320 input: C4 264×20×20, C5 528×10×10, F_CEM = F_SAM = 245×20×20, 25 anchors."""
    torch.manual_seed(0)
    out = ThunderNetToy().eval()(torch.zeros(1, 3, 320, 320))
    assert out["C4"].shape == (1, 264, 20, 20)
    assert out["C5"].shape == (1, 528, 10, 10)
    assert out["F_CEM"].shape == out["F_SAM"].shape == (1, 245, 20, 20)
    assert out["rpn_cls"].shape == (1, 25, 20, 20) and out["rpn_reg"].shape == (1, 100, 20, 20)


@SETTINGS
@given(h=st.integers(1, 4), w=st.integers(1, 4), b=st.integers(1, 2))
def test_shapes_any_multiple_of_32(h, w, b):
    """An input of 32h × 32w gives C4 at 2h × 2w, C5 at h × w, thin map at 2h × 2w."""
    torch.manual_seed(0)
    out = ThunderNetToy(**TOY).eval()(torch.zeros(b, 3, 32 * h, 32 * w))
    assert out["C4"].shape == (b, 32, 2 * h, 2 * w) and out["C5"].shape == (b, 64, h, w)
    assert out["F_SAM"].shape == (b, 9, 2 * h, 2 * w)


@SETTINGS
@given(c=st.sampled_from([2, 4, 6, 10]))
def test_channel_shuffle_is_the_interleaving_permutation(c):
    """Output channel j·2 + g is input channel g·(c/2) + j (brute-force index map)."""
    x = torch.arange(c, dtype=torch.float64).view(1, c, 1, 1)
    y = channel_shuffle(x)[0, :, 0, 0].tolist()
    half = c // 2
    assert y == [float(g * half + j) for j in range(half) for g in range(2)]


def test_shuffle_block_keeps_half_the_channels_untouched():
    """Stride 1: the even output channels are the first half of the input, unchanged."""
    torch.manual_seed(0)
    block = ShuffleBlock(8, 8, 1).eval().double()
    x = _rand(2, 8, 6, 6)
    torch.testing.assert_close(block(x)[:, 0::2], x[:, :4], rtol=0, atol=0)
    down = ShuffleBlock(8, 16, 2).eval().double()
    assert down(x).shape == (2, 16, 3, 3)


@SETTINGS
@given(h=st.integers(1, 5), w=st.integers(1, 5), seed=st.integers(0, 99))
def test_cem_matches_explicit_sum(h, w, seed):
    """CEM = W4·C4 + nearest-2×(W5·C5) + fc(mean C5), written with einsum and repeat_interleave."""
    torch.manual_seed(seed)
    cem = CEM(6, 10, 9).double()
    c4, c5 = _rand(2, 6, 2 * h, 2 * w, seed=seed), _rand(2, 10, h, w, seed=seed + 1)
    up = _conv1x1(c5, cem.lat5).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    glb = c5.mean(dim=(2, 3)) @ cem.glb.weight.detach().T + cem.glb.bias.detach()
    expected = _conv1x1(c4, cem.lat4) + up + glb[:, :, None, None]
    torch.testing.assert_close(cem(c4, c5), expected)


def test_cem_with_c5_and_global_zeroed_is_a_1x1_conv_on_c4():
    """Zero the C5 and global branches: CEM is exactly the 1×1 conv on C4."""
    torch.manual_seed(1)
    cem = CEM(6, 10, 9).double()
    with torch.no_grad():
        for m in (cem.lat5, cem.glb):
            m.weight.zero_(), m.bias.zero_()
    c4, c5 = _rand(1, 6, 8, 8), _rand(1, 10, 4, 4, seed=1)
    torch.testing.assert_close(cem(c4, c5), _conv1x1(c4, cem.lat4))


def test_cem_global_branch_is_spatially_constant():
    """Only the global branch on: every pixel of F_CEM carries the same vector fc(mean C5)."""
    torch.manual_seed(2)
    cem = CEM(6, 10, 9).double()
    with torch.no_grad():
        for m in (cem.lat4, cem.lat5):
            m.weight.zero_(), m.bias.zero_()
    c5 = _rand(1, 10, 4, 4, seed=3)
    out = cem(_rand(1, 6, 8, 8), c5)
    expected = c5.mean(dim=(2, 3)) @ cem.glb.weight.detach().T + cem.glb.bias.detach()
    torch.testing.assert_close(out, expected[:, :, None, None].expand_as(out))


def _rpn_hidden_bruteforce(rpn, x):
    """F_RPN with the 5×5 depthwise conv written as 25 shifted copies (oracle for groups=c)."""
    w = rpn.dw.weight.detach()[:, 0]  # (c, 5, 5)
    xp = F.pad(x, (2, 2, 2, 2))
    h, wd = x.shape[-2:]
    dw = sum(
        w[None, :, a, b, None, None] * xp[:, :, a : a + h, b : b + wd]
        for a in range(5)
        for b in range(5)
    )
    dw = F.relu(dw + rpn.dw.bias.detach()[None, :, None, None])
    return F.relu(_conv1x1(dw, rpn.pw))


@SETTINGS
@given(seed=st.integers(0, 99))
def test_sam_matches_closed_form(seed):
    """F_SAM = F_CEM ⊙ sigmoid(θ(F_RPN)), with F_RPN and θ recomputed by hand."""
    torch.manual_seed(seed)
    rpn = RPNWithSAM(6, 8, anchors=3).double()
    x = _rand(2, 6, 5, 7, seed=seed)
    f_rpn = _rpn_hidden_bruteforce(rpn, x)
    cls, reg, f_sam = rpn(x)
    torch.testing.assert_close(f_sam, x * torch.sigmoid(_conv1x1(f_rpn, rpn.theta)))
    torch.testing.assert_close(cls, _conv1x1(f_rpn, rpn.cls))
    torch.testing.assert_close(reg, _conv1x1(f_rpn, rpn.reg))


def test_sam_limits_identity_and_zero():
    """θ → +∞ (bias +60) leaves F_CEM unchanged; θ → −∞ (bias −60) gives zeros."""
    torch.manual_seed(0)
    rpn = RPNWithSAM(6, 8, anchors=3).double()
    x = _rand(1, 6, 5, 5)
    with torch.no_grad():
        rpn.theta.weight.zero_()
        rpn.theta.bias.fill_(60.0)
        torch.testing.assert_close(rpn(x)[2], x, rtol=0, atol=1e-20)
        rpn.theta.bias.fill_(-60.0)
        assert rpn(x)[2].abs().max() < 1e-25


def test_sam_lets_the_rcnn_loss_reach_the_rpn():
    """A loss on F_SAM alone has a non-zero gradient on the RPN's 1×1 conv; (SAM is the path)."""
    torch.manual_seed(0)
    rpn = RPNWithSAM(6, 8, anchors=3).double()
    x = _rand(1, 6, 5, 5)
    rpn(x)[2].square().sum().backward()
    assert rpn.pw.weight.grad.abs().sum() > 0


def _bilinear_scalar(f, y, x):
    """One channel, one point; zero outside [-1, H] × [-1, W], clamped inside (RoIAlign rules)."""
    h, w = f.shape
    if y < -1 or y > h or x < -1 or x > w:
        return 0.0
    y, x = min(max(y, 0.0), h - 1), min(max(x, 0.0), w - 1)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    ly, lx = y - y0, x - x0
    return float(
        f[y0, x0] * (1 - ly) * (1 - lx)
        + f[y0, x1] * (1 - ly) * lx
        + f[y1, x0] * ly * (1 - lx)
        + f[y1, x1] * ly * lx
    )


@SETTINGS
@given(
    x1=st.floats(-20, 100),
    y1=st.floats(-20, 100),
    bw=st.floats(1, 90),
    bh=st.floats(1, 90),
    p=st.sampled_from([2, 3]),
    seed=st.integers(0, 99),
)
def test_ps_roi_align_matches_scalar_loops(x1, y1, bw, bh, p, seed):
    """ps_roi_align equals a pure-Python loop over bins, samples and the bin's channel group."""
    alpha, scale, s = 2, 1 / 16, 2
    feat = _rand(alpha * p * p, 5, 6, seed=seed)
    box = (x1, y1, x1 + bw, y1 + bh)
    out = ps_roi_align(feat, box, p=p, scale=scale, samples=s)
    fx1, fy1 = x1 * scale, y1 * scale
    sh, sw = max(bh * scale, 1.0) / p, max(bw * scale, 1.0) / p
    for a in range(alpha):
        for i in range(p):
            for j in range(p):
                ch = feat[(a * p + i) * p + j]
                vals = [
                    _bilinear_scalar(
                        ch, fy1 + (i + (u + 0.5) / s) * sh, fx1 + (j + (v + 0.5) / s) * sw
                    )
                    for u in range(s)
                    for v in range(s)
                ]
                assert math.isclose(
                    out[a, i, j].item(), sum(vals) / len(vals), rel_tol=1e-9, abs_tol=1e-12
                )


def test_ps_roi_align_is_position_sensitive():
    """Channel k filled with the constant k: bin (i, j) of part a reads exactly (a·p + i)·p + j."""
    p, alpha = 3, 2
    feat = torch.arange(alpha * p * p, dtype=torch.float64)[:, None, None].expand(-1, 6, 6).clone()
    out = ps_roi_align(feat, (16.0, 16.0, 64.0, 64.0), p=p)
    expected = torch.arange(alpha * p * p, dtype=torch.float64).view(alpha, p, p)
    torch.testing.assert_close(out, expected)


def _snet_macs_by_hand(size, widths=(24, 132, 264, 528), repeats=(4, 8, 4), k=5):
    """Multiply-adds of SNet, unit by unit, from the ShuffleNetV2 unit's layer list."""
    r = size // 2
    total = 3 * widths[0] * 9 * r * r  # stem 3×3 conv, stride 2
    r //= 2  # max pool
    for c_in, c_out, n in zip(widths[:-1], widths[1:], repeats, strict=True):
        mid, r_in, r = c_out // 2, r, r // 2
        total += c_in * mid * r_in * r_in  # main branch 1×1, before its stride-2 depthwise
        total += (mid * k * k + mid * (c_out - c_in) + c_in * k * k + c_in * c_in) * r * r
        total += (n - 1) * (2 * mid * mid + mid * k * k) * r * r  # stride-1 units on half
    return total


def test_flop_breakdown_closed_form():
    """MACs of every part at 320 match a hand count for SNet146 widths and the 2-fc head."""
    torch.manual_seed(0)
    counts = flop_breakdown(ThunderNetToy().eval(), size=320, rois=200)
    hw, c, hid = 20 * 20, 245, 256
    assert counts["SNet 主干"] == _snet_macs_by_hand(320)
    assert counts["CEM"] == hw * 264 * c + 10 * 10 * 528 * c + 528 * c
    assert counts["RPN"] == hw * (c * 25 + c * hid + hid * 25 + hid * 100)
    assert counts["SAM"] == hw * hid * c
    assert counts["R-CNN"] == 200 * (245 * 1024 + 1024 * 1024 + 1024 * (81 + 320))
    assert rcnn_head_macs(245, 200, fc=(1024,)) == 200 * (245 * 1024 + 1024 * (81 + 320))


def test_snet146_macs_at_224_by_hand():
    """The 224×224 count the page prints is the hand count (no classifier, BN or pooling)."""
    torch.manual_seed(0)
    net = ThunderNetToy().eval()
    assert macs(lambda: net.backbone(torch.zeros(1, 3, 224, 224)))[0] == _snet_macs_by_hand(224)


def test_receptive_field_grows_with_each_cem_branch():
    """Centre output: C4 alone sees a window, C5 a bigger one, the global branch the whole image."""
    torch.manual_seed(0)
    model = ThunderNetToy(**TOY).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    boxes = [
        support_box(input_gradient(model, 192, b))
        for b in [("C4",), ("C4", "C5"), ("C4", "C5", "全局")]
    ]
    assert boxes[0][0] < boxes[1][0] < boxes[2][0] == 192
    for k, v in model.state_dict().items():  # the branches were switched back on
        assert torch.equal(v, before[k])
