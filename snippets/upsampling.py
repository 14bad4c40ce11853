r"""Upsampling from scratch: nearest / nearest-exact and bilinear (both ``align_corners``) and
the antialiased (Pillow-style triangle) resize in numpy; pixel shuffle and the DCR -> CRD channel
permutation; transposed convolution as a scatter and as zero insertion + convolution; max
unpooling; the per-phase kernels of resize-convolution, sub-pixel convolution with ICNR, and the
overlap maps behind checkerboard artifacts. The tests check each against PyTorch built-ins.
"""

# --8<-- [start:imports]
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

# --8<-- [end:imports]


# --8<-- [start:nearest]
def nearest_index(out_size: int, in_size: int, exact: bool = False) -> np.ndarray:
    """Source row of each output row for mode='nearest' (exact=False) or 'nearest-exact'."""
    # PyTorch computes scale = in/out and the product in float32; float64 would disagree
    # on rare sizes where dst*in/out is (nearly) an integer.
    scale = np.float32(in_size) / np.float32(out_size)
    dst = np.arange(out_size, dtype=np.float32)
    offset = np.float32(0.5 if exact else 0.0)
    src = np.floor((dst + offset) * scale).astype(np.int64)  # nearest: ⌊dst·in/out⌋
    return np.minimum(src, in_size - 1)  # nearest-exact: ⌊(dst+0.5)·in/out⌋


def nearest_np(x: np.ndarray, size: tuple[int, int], exact: bool = False) -> np.ndarray:
    """(..., H, W) -> (..., H_out, W_out) by copying the nearest source pixel."""
    rows = nearest_index(size[0], x.shape[-2], exact)
    cols = nearest_index(size[1], x.shape[-1], exact)
    return x[..., rows[:, None], cols[None, :]]


# --8<-- [end:nearest]


# --8<-- [start:bilinear]
def source_coords(out_size: int, in_size: int, align_corners: bool, scale=None) -> np.ndarray:
    r"""Continuous source coordinate of every output index (the heart of ``align_corners``)."""
    dst = np.arange(out_size, dtype=np.float64)
    if align_corners:  # corners map to corners: src = dst·(in−1)/(out−1)
        return dst * ((in_size - 1) / (out_size - 1)) if out_size > 1 else np.zeros(out_size)
    # a given scale_factor wins over in/out, except along a dim whose size is unchanged
    ratio = in_size / out_size if scale is None or out_size == in_size else 1.0 / scale
    return np.maximum((dst + 0.5) * ratio - 0.5, 0.0)  # pixel centres: (dst+0.5)·in/out − 0.5


def linear_taps(out_size: int, in_size: int, align_corners: bool, scale=None):
    """Left/right source index and the weight λ of the right one, per output index."""
    src = source_coords(out_size, in_size, align_corners, scale)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)  # right neighbour, clamped at the border
    return i0, i1, src - i0  # value = (1−λ)·x[i0] + λ·x[i1]


def bilinear_np(x: np.ndarray, size, align_corners: bool, scale=None) -> np.ndarray:
    """(..., H, W) -> (..., H_out, W_out): linear along H, then linear along W."""
    sh, sw = (None, None) if scale is None else (scale, scale)
    r0, r1, ly = linear_taps(size[0], x.shape[-2], align_corners, sh)
    c0, c1, lx = linear_taps(size[1], x.shape[-1], align_corners, sw)
    rows = x[..., r0, :] * (1 - ly)[:, None] + x[..., r1, :] * ly[:, None]  # (..., H_out, W)
    return rows[..., c0] * (1 - lx) + rows[..., c1] * lx  # (..., H_out, W_out)


# --8<-- [end:bilinear]


# --8<-- [start:antialias]
def triangle_resample_matrix(out_size: int, in_size: int, scale=None) -> np.ndarray:
    """(out, in) weights of a triangle filter stretched by max(in/out, 1), as in Pillow."""
    s = in_size / out_size if scale is None else 1.0 / scale  # input pixels per output pixel
    width = max(s, 1.0)  # downsampling widens the filter; upsampling keeps it 1 pixel
    centre = (np.arange(out_size) + 0.5) * s  # output pixel centre in input coordinates
    dist = (np.arange(in_size)[None, :] + 0.5 - centre[:, None]) / width
    w = np.maximum(1 - np.abs(dist), 0)  # tri(t) = max(1 − |t|, 0)
    return w / w.sum(axis=1, keepdims=True)  # renormalise (also at the borders)


def antialias_np(x: np.ndarray, size) -> np.ndarray:
    """(..., H, W) -> (..., H_out, W_out): separable triangle filter, rows then columns."""
    rh = triangle_resample_matrix(size[0], x.shape[-2])  # (H_out, H)
    rw = triangle_resample_matrix(size[1], x.shape[-1])  # (W_out, W)
    return rh @ x @ rw.T  # y = R_h · x · R_wᵀ


# --8<-- [end:antialias]


# --8<-- [start:pixel_shuffle]
def pixel_shuffle(x: torch.Tensor, r: int) -> torch.Tensor:
    """(N, C·r², H, W) -> (N, C, H·r, W·r): y[n, c, h·r+i, w·r+j] = x[n, c·r²+i·r+j, h, w]."""
    n, c, h, w = x.shape
    c_out = c // (r * r)
    x = x.view(n, c_out, r, r, h, w)  # split channels into (c, i, j)
    x = x.permute(0, 1, 4, 2, 5, 3)  # (n, c, h, i, w, j)
    return x.reshape(n, c_out, h * r, w * r)


def pixel_unshuffle(y: torch.Tensor, r: int) -> torch.Tensor:
    """Inverse of pixel_shuffle: (N, C, H·r, W·r) -> (N, C·r², H, W)."""
    n, c, hr, wr = y.shape
    y = y.view(n, c, hr // r, r, wr // r, r)  # (n, c, h, i, w, j)
    y = y.permute(0, 1, 3, 5, 2, 4)  # (n, c, i, j, h, w)
    return y.reshape(n, c * r * r, hr // r, wr // r)


def dcr_to_crd(c: int, r: int) -> np.ndarray:
    """Channel permutation p with x_crd = x_dcr[:, p]: DCR index (i·r+j)·C+c -> c·r²+i·r+j."""
    return np.arange(r * r * c).reshape(r, r, c).transpose(2, 0, 1).reshape(-1)


# --8<-- [end:pixel_shuffle]


# --8<-- [start:conv_transpose]
def conv_transpose_out_size(h: int, k: int, s: int, p: int, op: int = 0, d: int = 1) -> int:
    return (h - 1) * s - 2 * p + d * (k - 1) + op + 1  # H_out = (H−1)s − 2p + d(k−1) + op + 1


def conv_transpose2d_scatter(x, w, stride=1, padding=0, output_padding=0, dilation=1):
    """Definition (numpy): input pixel (i, j) adds x·w[:, :, a, b] at out[s·i + d·a − p, ...]."""
    n, _, h, wd = x.shape
    _, c_out, kh, kw = w.shape  # weight layout (C_in, C_out, k, k)
    s, p, d, op = stride, padding, dilation, output_padding
    hf, wf = (h - 1) * s + d * (kh - 1) + 1, (wd - 1) * s + d * (kw - 1) + 1  # size at p = 0
    full = np.zeros((n, c_out, hf + op, wf + op))
    for a in range(kh):
        for b in range(kw):
            rows = slice(d * a, d * a + (h - 1) * s + 1, s)  # s·i + d·a for all i
            cols = slice(d * b, d * b + (wd - 1) * s + 1, s)
            full[:, :, rows, cols] += np.einsum("nchw,co->nohw", x, w[:, :, a, b])
    h_out = conv_transpose_out_size(h, kh, s, p, op, d)
    w_out = conv_transpose_out_size(wd, kw, s, p, op, d)
    return full[:, :, p : p + h_out, p : p + w_out]  # padding p crops p rows/cols per side


def zero_insert(x: torch.Tensor, s: int) -> torch.Tensor:
    """Put s−1 zeros between neighbouring pixels: (N, C, H, W) -> (N, C, (H−1)s+1, (W−1)s+1)."""
    n, c, h, w = x.shape
    z = x.new_zeros(n, c, (h - 1) * s + 1, (w - 1) * s + 1)
    z[:, :, ::s, ::s] = x
    return z


def conv_transpose2d_gather(x, w, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    """Transposed conv = zero insertion + ordinary conv with the flipped, transposed kernel."""
    kh, kw = w.shape[-2:]
    z = zero_insert(x, stride)
    ph, pw = dilation * (kh - 1) - padding, dilation * (kw - 1) - padding  # may be < 0: crop
    z = F.pad(z, (pw, pw + output_padding, ph, ph + output_padding))  # op: extra bottom/right
    w_conv = w.flip(-1, -2).transpose(0, 1)  # (C_in, C_out, k, k) -> (C_out, C_in, k, k)
    return F.conv2d(z, w_conv, bias, dilation=dilation)


# --8<-- [end:conv_transpose]


# --8<-- [start:unpool]
def max_pool2d_with_indices(x: torch.Tensor, k: int):
    """Non-overlapping k×k max pool; indices are flat positions h·W + w in each input plane."""
    n, c, h, w = x.shape
    ho, wo = h // k, w // k
    blocks = x[:, :, : ho * k, : wo * k].reshape(n, c, ho, k, wo, k).permute(0, 1, 2, 4, 3, 5)
    vals, arg = blocks.reshape(n, c, ho, wo, k * k).max(dim=-1)  # arg = i·k + j inside block
    rows = torch.arange(ho)[:, None] * k + arg // k
    cols = torch.arange(wo)[None, :] * k + arg % k
    return vals, rows * w + cols  # the "switches" of Zeiler & Fergus


def max_unpool2d(y: torch.Tensor, indices: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Put every pooled value back at its switch position; all other positions are 0."""
    n, c = y.shape[:2]
    out = y.new_zeros(n, c, out_hw[0] * out_hw[1])
    out.scatter_(2, indices.reshape(n, c, -1), y.reshape(n, c, -1))
    return out.view(n, c, *out_hw)


# --8<-- [end:unpool]


# --8<-- [start:fixed_filters]
def bilinear_subpixel_weight(r: int) -> torch.Tensor:
    """(r², 1, 3, 3) conv weight: output channel i·r+j is phase (i, j) of bilinear ×r."""
    taps = []
    for i in range(r):
        delta = (2 * i + 1 - r) / (2 * r)  # src − h for output row h·r+i (align_corners=False)
        taps.append([-delta, 1 + delta, 0.0] if delta < 0 else [0.0, 1 - delta, delta])
    t = torch.tensor(taps, dtype=torch.float64)  # (r, 3)
    return torch.einsum("ia,jb->ijab", t, t).reshape(r * r, 1, 3, 3)


def subpixel_bilinear(x: torch.Tensor, r: int) -> torch.Tensor:
    """ESPCN-style: fixed 3×3 conv to C·r² channels (replicate border), then pixel shuffle."""
    c = x.shape[1]
    w = bilinear_subpixel_weight(r).to(x.dtype).repeat(c, 1, 1, 1)  # (C·r², 1, 3, 3)
    feats = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, groups=c)
    return pixel_shuffle(feats, r)


def bilinear_deconv_weight(r: int, channels: int = 1) -> torch.Tensor:
    """FCN-style bilinear kernel (k = 2r) for ConvTranspose2d(stride=r, padding=r/2)."""
    a = torch.arange(2 * r, dtype=torch.float64)
    f = 1 - (a - (2 * r - 1) / 2).abs() / r  # hat function sampled at pixel centres
    return torch.outer(f, f).expand(channels, 1, 2 * r, 2 * r).clone()  # (C, 1, 2r, 2r)


def deconv_bilinear(x: torch.Tensor, r: int) -> torch.Tensor:
    """Transposed conv with the bilinear kernel (r even): bilinear inside, darker border."""
    assert r % 2 == 0, "padding r/2 must be an integer"
    w = bilinear_deconv_weight(r).to(x.dtype)
    n, c, h, wd = x.shape  # channels -> batch: the same kernel for every channel
    y = conv_transpose2d_gather(x.reshape(n * c, 1, h, wd), w, stride=r, padding=r // 2)
    return y.view(n, c, *y.shape[-2:])


# --8<-- [end:fixed_filters]


# --8<-- [start:phases]
def resize_conv_phase_kernels(w: torch.Tensor, r: int) -> torch.Tensor:
    """nearest ×r then k×k conv (padding k//2) = r² centred kernels on the low-res grid."""
    k = w.shape[-1]
    off = torch.tensor([[(i + a - k // 2) // r for a in range(k)] for i in range(r)])  # (r, k)
    sel = F.one_hot(off - off.min()).to(w.dtype)  # sel[i, a, u] = 1: tap a of phase i reads row u
    return torch.einsum("iau,ab,jbv->ijuv", sel, w, sel)  # K_ij = S_iᵀ · w · S_j, (r, r, m, m)


def subpixel_conv(x: torch.Tensor, w: torch.Tensor, r: int) -> torch.Tensor:
    """ESPCN layer: conv2d to C·r² channels (zero padding k//2), then pixel shuffle."""
    return pixel_shuffle(F.conv2d(x, w, padding=w.shape[-1] // 2), r)


def icnr(w: torch.Tensor, r: int) -> torch.Tensor:
    """ICNR (Aitken et al.): every sub-pixel phase gets the same kernel, (C, ...) -> (C·r², ...)."""
    return w.repeat_interleave(r * r, dim=0)  # channel c·r² + i·r + j holds w[c]


# --8<-- [end:phases]


# --8<-- [start:gallery]
def demo_image(n: int = 8) -> np.ndarray:
    """n×n test image: a bright disk on a one-pixel checkerboard."""
    yy, xx = np.mgrid[0:n, 0:n]
    disk = (yy - (n - 1) / 2) ** 2 + (xx - (n - 1) / 2) ** 2 <= (n / 4) ** 2
    return np.where(disk, 1.0, 0.4 * ((yy + xx) % 2))


def upsample_gallery(img: np.ndarray, r: int = 4) -> dict[str, np.ndarray]:
    """The same image upsampled ×r by five methods, all from this page's code."""
    size = (img.shape[0] * r, img.shape[1] * r)
    t = torch.from_numpy(img)[None, None]  # (1, 1, H, W) float64
    return {
        "input": img,
        "nearest": nearest_np(img, size),
        "bilinear ac=False": bilinear_np(img, size, align_corners=False),
        "bilinear ac=True": bilinear_np(img, size, align_corners=True),
        "conv + pixel shuffle": subpixel_bilinear(t, r)[0, 0].numpy(),
        "transposed conv": deconv_bilinear(t, r)[0, 0].numpy(),
    }


def plot_gallery(images: dict[str, np.ndarray]):
    cols = 2  # two images side by side: large enough on a phone to see the artefacts
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0, 2.6 * rows), layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, im) in zip(axes.flat, images.items(), strict=False):
        ax.imshow(im, cmap="gray", vmin=0, vmax=1, interpolation="nearest")  # no display blur
        ax.set_title(f"{name}\n{im.shape[0]}×{im.shape[1]}", fontsize=11)
    fig.suptitle("同一张输入图，各种上采样方法的输出", fontsize=12)
    return fig


# --8<-- [end:gallery]


# --8<-- [start:checkerboard]
def overlap_maps(n: int = 8) -> dict[str, np.ndarray]:
    """Constant input, all-ones weights: how many kernel taps land on each output pixel."""
    x = torch.ones(1, 1, n, n, dtype=torch.float64)
    ones = lambda k: torch.ones(1, 1, k, k, dtype=torch.float64)  # noqa: E731
    up = F.interpolate(x, scale_factor=2, mode="nearest")  # resize first ...
    return {  # all three give 2n × 2n
        "ConvT k=3 s=2": conv_transpose2d_gather(x, ones(3), stride=2, padding=1, output_padding=1),
        "ConvT k=4 s=2": conv_transpose2d_gather(x, ones(4), stride=2, padding=1),
        "nearest x2 + conv3x3": F.conv2d(up, ones(3), padding=1),  # ... then convolve
    }


def plot_overlap(maps: dict[str, torch.Tensor]):
    """The maps side by side on top, one row through the middle of each below."""
    names = list(maps)
    fig, axes = plt.subplot_mosaic([names, ["row"] * len(names)], figsize=(5.2, 5.6),
                                   height_ratios=(1, 1.5), layout="constrained")  # fmt: skip
    for name, m in maps.items():
        im = m[0, 0].numpy()
        axes[name].imshow(im / im.max(), cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        axes[name].set_title(name.replace(" + ", "\n+ "), fontsize=10)
        axes[name].axis("off")
    for name, m in maps.items():  # one row through the middle, normalised by its max
        row = m[0, 0, m.shape[-2] // 2].numpy()
        axes["row"].plot(row / row.max(), marker=".", label=name)
    axes["row"].set(ylim=(0, 1.08), xlabel="列")
    axes["row"].set_title("中间一行 / 最大值", fontsize=11)
    axes["row"].legend(fontsize=10, loc="lower center")
    fig.suptitle("常数输入、全 1 权重：每个输出像素叠加了几次卷积核", fontsize=11)
    return fig


# --8<-- [end:checkerboard]
