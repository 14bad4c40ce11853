r"""Deformable convolution v1 (Dai et al., ICCV 2017) from scratch.

A regular convolution reads $x$ at $p_0 + p_n$ for the $N = k_h k_w$ points $p_n$ of its grid;
a deformable one reads it at $p_0 + p_n + \Delta p_n$, with a fractional offset per kernel point
and per output position, sampled by bilinear interpolation:

$$y(p_0) = \sum_n w_n \, x(p_0 + p_n + \Delta p_n), \qquad
x(p) = \sum_q g(q_y, p_y)\, g(q_x, p_x)\, x(q), \quad g(a, b) = \max(0, 1 - |a - b|).$$

Only the four integer neighbours $q$ of $p$ have non-zero weight; a neighbour outside the image
contributes 0 (zero padding). Offsets are laid out as in torchvision's ``deform_conv2d``:
``offset[:, 2n]`` is $\Delta y$ and ``offset[:, 2n + 1]`` is $\Delta x$ of kernel point $n$
(row-major over the kernel). One offset group, no groups, no modulation (that is v2).
"""

# --8<-- [start:imports]
import torch
import torch.nn.functional as F
from torch import nn

# --8<-- [end:imports]


# --8<-- [start:sampler]
def bilinear_sample(x, py, px):
    r"""Read x (B, C, H, W) at real positions (row py, column px), each of shape (B, *S).

    Returns (B, C, *S). Zero outside the image: a corner q outside [0, H-1] x [0, W-1]
    contributes nothing, so a point within one pixel of the border still gets a partial value.
    """
    B, C, H, W = x.shape
    y0, x0 = py.floor(), px.floor()
    ly, lx = py - y0, px - x0  # fractional parts in [0, 1)
    flat = x.reshape(B, C, H * W)
    out = 0
    for qy, wy in ((y0, 1 - ly), (y0 + 1, ly)):  # g(q_y, p_y) = 1 - |q_y - p_y|
        for qx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            inside = (qy >= 0) & (qy <= H - 1) & (qx >= 0) & (qx <= W - 1)
            idx = (qy.clamp(0, H - 1) * W + qx.clamp(0, W - 1)).long().reshape(B, 1, -1)
            val = flat.gather(2, idx.expand(B, C, -1)).reshape(B, C, *py.shape[1:])
            out = out + (wy * wx * inside).unsqueeze(1) * val
    return out


# --8<-- [end:sampler]


# --8<-- [start:deform_conv]
def out_size(n, k, *, stride, padding, dilation):
    """Output length of a convolution, as in nn.Conv2d's docs."""
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def sampling_positions(offset, kh, kw, *, stride=1, padding=0, dilation=1):
    """Absolute rows and columns p0 + p_n + Δp_n, each (B, N, Ho, Wo), N = kh * kw."""
    B, _, Ho, Wo = offset.shape
    dtype, dev = offset.dtype, offset.device
    p0y = (torch.arange(Ho, dtype=dtype, device=dev) * stride - padding).view(1, 1, Ho, 1)
    p0x = (torch.arange(Wo, dtype=dtype, device=dev) * stride - padding).view(1, 1, 1, Wo)
    ky, kx = torch.meshgrid(
        torch.arange(kh, dtype=dtype, device=dev) * dilation,
        torch.arange(kw, dtype=dtype, device=dev) * dilation,
        indexing="ij",
    )  # p_n, row-major over the kernel
    py = p0y + ky.reshape(1, -1, 1, 1) + offset[:, 0::2]  # channel 2n   -> Δy
    px = p0x + kx.reshape(1, -1, 1, 1) + offset[:, 1::2]  # channel 2n+1 -> Δx
    return py, px


def deform_conv2d(x, offset, weight, bias=None, *, stride=1, padding=0, dilation=1):
    r"""y(p0) = Σ_n w_n · x(p0 + p_n + Δp_n); x (B, C, H, W), offset (B, 2N, Ho, Wo),
    weight (C_out, C, kh, kw). With offset = 0 this is F.conv2d with the same arguments."""
    C_out, C, kh, kw = weight.shape
    py, px = sampling_positions(offset, kh, kw, stride=stride, padding=padding, dilation=dilation)
    cols = bilinear_sample(x, py, px)  # (B, C, N, Ho, Wo): the "deformable im2col"
    y = torch.einsum("bcnhw,ocn->bohw", cols, weight.reshape(C_out, C, kh * kw))
    return y if bias is None else y + bias.view(1, C_out, 1, 1)


# --8<-- [end:deform_conv]


# --8<-- [start:module]
class DeformConv2d(nn.Module):
    """A k x k deformable conv whose offsets come from a plain conv on the same input.

    The offset conv has the same kernel, stride, padding and dilation, 2N output channels,
    and starts at zero (as in the authors' code), so at initialisation the layer is a conv.
    """

    def __init__(self, c_in, c_out, k=3, *, stride=1, padding=1, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation)
        self.offset = nn.Conv2d(
            c_in, 2 * k * k, k, stride=stride, padding=padding, dilation=dilation
        )
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, x):
        c = self.conv
        return deform_conv2d(
            x, self.offset(x), c.weight, c.bias,
            stride=c.stride[0], padding=c.padding[0], dilation=c.dilation[0],
        )  # fmt: skip


# --8<-- [end:module]


# --8<-- [start:grid_sample]
def to_grid(py, px, H, W):
    """Pixel positions -> grid_sample's grid (…, 2) in [-1, 1], x first, align_corners=True."""
    return torch.stack([2 * px / (W - 1) - 1, 2 * py / (H - 1) - 1], dim=-1)


# --8<-- [end:grid_sample]


def _demo():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 8, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    off = torch.zeros(2, 18, 7, 8, dtype=torch.float64)
    err = (deform_conv2d(x, off, w, padding=1) - F.conv2d(x, w, padding=1)).abs().max()
    print(f"zero offsets vs F.conv2d: {err:.1e}")


if __name__ == "__main__":
    _demo()
