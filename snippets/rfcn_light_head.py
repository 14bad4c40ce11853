r"""RoI pooling, position-sensitive RoI pooling and the cost of a detector's head.

Faster R-CNN runs a subnetwork once per RoI; R-FCN moves all weights before the pooling
(k²(C+1) position-sensitive score maps, bins vote by averaging); Light-Head R-CNN keeps a
cheap per-RoI fc but pools from thin maps of α·p² channels.
Boxes are (x1, y1, x2, y2) in image pixels, corners inclusive (the Caffe convention).
"""

# --8<-- [start:bins]
import matplotlib.pyplot as plt
import numpy as np
import torch

SPATIAL_SCALE = 1 / 16  # feature stride 16 (ResNet conv4, or a dilated conv5)


def c_round(x: torch.Tensor) -> torch.Tensor:
    """C's round(): halves go away from zero (torch.round and Python's round send 2.5 to 2)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def bin_masks(start: torch.Tensor, length: torch.Tensor, k: int, size: int) -> torch.Tensor:
    r"""Bin j of k covers $[\lfloor s + jL/k \rfloor, \lceil s + (j+1)L/k \rceil) \cap [0, size)$.

    start, length: (R,) in feature cells. Returns a bool mask (R, k, size).
    """
    j = torch.arange(k + 1, dtype=torch.float64)
    edge = start[:, None] + (j * length[:, None]) / k  # (R, k+1); j·L first: exact edges
    lo = torch.floor(edge[:, :-1]).clamp(0, size)
    hi = torch.ceil(edge[:, 1:]).clamp(0, size)
    pos = torch.arange(size, dtype=torch.float64)
    return (pos >= lo[..., None]) & (pos < hi[..., None])


# --8<-- [end:bins]


# --8<-- [start:roi_pool]
def roi_max_pool(
    feat: torch.Tensor, boxes: torch.Tensor, *, k: int, spatial_scale: float = SPATIAL_SCALE
):
    """Fast R-CNN RoI max pooling. feat (C, H, W), boxes (R, 4) -> (R, C, k, k); empty bin -> 0."""
    C, H, W = feat.shape
    b = c_round(boxes.double() * spatial_scale)  # integer cells, corners inclusive
    x0, y0, x1, y1 = b.unbind(1)
    w = (x1 - x0 + 1).clamp(min=1)  # legacy "+1": the end cell belongs to the box
    h = (y1 - y0 + 1).clamp(min=1)
    rows = bin_masks(y0, h, k, H)  # (R, k, H)
    cols = bin_masks(x0, w, k, W)  # (R, k, W)
    neg = torch.tensor(float("-inf"), dtype=feat.dtype)
    # max over a rectangle = max over its columns, then over its rows
    a = torch.where(cols[:, None, None], feat[None, :, :, None, :], neg).amax(-1)  # (R, C, H, k)
    a = torch.where(rows[:, None, :, :, None], a[:, :, None], neg).amax(-2)  # (R, C, k, k)
    return torch.where(torch.isinf(a), torch.zeros_like(a), a)


# --8<-- [end:roi_pool]


# --8<-- [start:psroi_pool]
def ps_roi_pool(
    feat: torch.Tensor, boxes: torch.Tensor, *, k: int, spatial_scale: float = SPATIAL_SCALE
):
    r"""R-FCN position-sensitive RoI average pooling.

    feat (D·k·k, H, W), channel d·k² + i·k + j is group (i, j) of output d.
    $r_d(i, j) = \frac{1}{n_{ij}} \sum_{(y, x) \in \mathrm{bin}(i, j)} z_{d, i, j}(y, x)$ -> (R, D, k, k).
    """
    Ck, H, W = feat.shape
    z = feat.reshape(Ck // (k * k), k, k, H, W)  # (D, i, j, H, W)
    b = c_round(boxes.double())
    x0, y0 = b[:, 0] * spatial_scale, b[:, 1] * spatial_scale
    w = ((b[:, 2] + 1) * spatial_scale - x0).clamp(min=0.1)  # end + 1 pixel, then scale
    h = ((b[:, 3] + 1) * spatial_scale - y0).clamp(min=0.1)
    rows = bin_masks(y0, h, k, H).to(feat.dtype)  # (R, k, H)
    cols = bin_masks(x0, w, k, W).to(feat.dtype)  # (R, k, W)
    s = torch.einsum("rih,rjw,dijhw->rdij", rows, cols, z)  # each bin reads only its own group
    n = rows.sum(-1)[:, :, None] * cols.sum(-1)[:, None, :]  # (R, k, k) cells per bin
    return torch.where(n[:, None] > 0, s / n[:, None].clamp(min=1), torch.zeros_like(s))


def rfcn_vote(pooled: torch.Tensor) -> torch.Tensor:
    """R-FCN's vote: average the k×k bins. (R, C+1, k, k) -> (R, C+1) class scores."""
    return pooled.mean(dim=(-2, -1))


# --8<-- [end:psroi_pool]


# --8<-- [start:costs]
def conv_macs(h: int, w: int, c_in: int, c_out: int, kh: int = 1, kw: int = 1) -> int:
    """Multiply-adds of a stride-1 'same' convolution (a fc layer is h = w = kh = kw = 1)."""
    return h * w * c_in * c_out * kh * kw


def head_costs(
    *,
    h: int,
    w: int,
    n_cls: int = 81,
    c5: int = 2048,
    p: int = 7,
    alpha: int = 10,
    c_mid: int = 256,
    k_sep: int = 15,
    fc: int = 2048,
) -> dict:
    """(shared MACs per image, MACs per RoI) of each head on an h×w stride-16 feature map."""
    out = n_cls + 4 * n_cls  # class scores + class-specific boxes
    # Faster R-CNN, ResNet "C4": conv5 (three bottlenecks 1024 -> 2048) runs on every p×p RoI
    block = [(1024, 512, 1), (512, 512, 3), (512, 2048, 1), (1024, 2048, 1)]  # last: shortcut
    block += [(2048, 512, 1), (512, 512, 3), (512, 2048, 1)] * 2
    c4 = sum(conv_macs(p, p, ci, co, kk, kk) for ci, co, kk in block) + conv_macs(1, 1, c5, out)
    # Faster R-CNN with two fc layers of 1024 on a p×p×c5 RoI feature
    two_fc = (
        conv_macs(1, 1, p * p * c5, 1024) + conv_macs(1, 1, 1024, 1024) + conv_macs(1, 1, 1024, out)
    )
    # R-FCN: 1×1 conv to 1024, then p²·n_cls score maps and p²·4 box maps; per RoI only pooling
    rfcn = conv_macs(h, w, c5, 1024) + conv_macs(h, w, 1024, p * p * (n_cls + 4))
    # Light-Head: large separable conv (k×1 then 1×k, plus 1×k then k×1) to α·p² thin maps
    thin = alpha * p * p
    light = 2 * (conv_macs(h, w, c5, c_mid, k_sep, 1) + conv_macs(h, w, c_mid, thin, 1, k_sep))
    light_roi = conv_macs(1, 1, thin, fc) + conv_macs(1, 1, fc, out)
    return {
        "Faster R-CNN (C4)": (0, c4),
        "Faster R-CNN (2fc)": (0, two_fc),
        "R-FCN": (rfcn, 0),
        "Light-Head R-CNN": (light, light_roi),
    }


# --8<-- [end:costs]


# --8<-- [start:demo]
def part_maps(*, size: int, box: tuple, k: int, noise: float = 0.1, seed: int = 0) -> torch.Tensor:
    """Toy 'trained' score maps for one class: group (i, j) fires on part (i, j) of the object.

    box = (x0, y0, x1, y1) in feature cells, end exclusive. Returns (k·k, size, size).
    """
    g = torch.Generator().manual_seed(seed)
    z = noise * torch.randn(k, k, size, size, generator=g, dtype=torch.float64)
    x0, y0, x1, y1 = box
    ys = np.linspace(y0, y1, k + 1).round().astype(int)
    xs = np.linspace(x0, x1, k + 1).round().astype(int)
    for i in range(k):
        for j in range(k):
            z[i, j, ys[i] : ys[i + 1], xs[j] : xs[j + 1]] += 1.0
    return z.reshape(k * k, size, size)


def shift_scores(maps: torch.Tensor, box_px: tuple, shifts: list, *, k: int) -> tuple:
    """Score of a box shifted right by s pixels: PS-RoI vote vs plain RoI average of all groups."""
    ps, plain = [], []
    for s in shifts:
        b = torch.tensor(
            [[box_px[0] + s, box_px[1], box_px[2] + s, box_px[3]]], dtype=torch.float64
        )
        ps.append(rfcn_vote(ps_roi_pool(maps, b, k=k)).item())
        # the same pooling on k² copies of the class-agnostic sum map: no position sensitivity
        flat = maps.sum(0, keepdim=True).expand(k * k, -1, -1) / (k * k)
        plain.append(rfcn_vote(ps_roi_pool(flat, b, k=k)).item())
    return np.array(ps), np.array(plain)


def plot_part_maps(maps: torch.Tensor, box_cells: tuple, *, k: int):
    """k×k panels: group (i, j) with the RoI drawn and its bin (i, j) highlighted."""
    fig, axes = plt.subplots(k, k, figsize=(5.0, 5.4), layout="constrained")
    x0, y0, x1, y1 = box_cells
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            ax.imshow(maps[i * k + j].numpy(), cmap="magma", vmin=-0.3, vmax=1.3)
            ax.add_patch(
                plt.Rectangle(
                    (x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="#4fc3f7", lw=1.5
                )
            )
            bw, bh = (x1 - x0) / k, (y1 - y0) / k
            ax.add_patch(
                plt.Rectangle(
                    (x0 + j * bw - 0.5, y0 + i * bh - 0.5), bw, bh, fill=False, ec="#76ff03", lw=2.5
                )
            )
            ax.set_title(f"第 {i * k + j} 组：bin ({i},{j})", fontsize=10)
            ax.axis("off")
    fig.suptitle("每个 bin 只读自己那一组图（绿框）", fontsize=12)
    return fig


def plot_costs(costs: dict, n_rois: np.ndarray):
    """Head multiply-adds per image against the number of RoIs (log-log)."""
    fig, ax = plt.subplots(figsize=(5.0, 4.3), layout="constrained")
    for (name, (shared, per_roi)), ls in zip(costs.items(), ["-", "--", "-.", ":"], strict=True):
        ax.plot(n_rois, (shared + n_rois * per_roi) / 1e9, ls, lw=2, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("每张图的 RoI 数")
    ax.set_ylabel("检测头乘加数（G）")
    ax.set_title("检测头的计算量随 RoI 数的变化")
    fig.legend(fontsize=10, loc="outside lower center", ncols=2)  # below the axes, off the data
    ax.grid(alpha=0.3, which="both")
    return fig


# --8<-- [end:demo]


if __name__ == "__main__":
    k = 3
    maps = part_maps(size=24, box=(6, 6, 18, 18), k=k)
    ps, plain = shift_scores(maps, (96, 96, 287, 287), [0, 32, 64, 96], k=k)
    print("PS-RoI score:", ps.round(3), "plain:", plain.round(3))
    for name, (shared, per_roi) in head_costs(h=50, w=84).items():
        print(f"{name}: shared {shared / 1e9:.2f} G, per RoI {per_roi / 1e6:.2f} M")
