r"""ThunderNet's detection part at toy scale: SNet (ShuffleNetV2 units with 5×5 depthwise convs),
the Context Enhancement Module (CEM), a light RPN whose hidden features drive the Spatial
Attention Module (SAM), and a position-sensitive RoI align on the α·p·p-channel thin map.
Random weights only: the point is shapes, wiring and what each module changes, not accuracy.
"""

# --8<-- [start:imports]
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# --8<-- [end:imports]


# --8<-- [start:snet]
class ShuffleBlock(nn.Module):
    """ShuffleNetV2 unit with a k×k depthwise conv; stride 2 halves H, W and widens to c_out."""

    def __init__(self, c_in: int, c_out: int, stride: int, k: int = 5):
        super().__init__()
        self.stride = stride
        c_main = c_out - c_in if stride == 2 else c_out // 2  # channels made by the main branch
        c_read = c_in if stride == 2 else c_out // 2  # channels the main branch reads
        mid = c_out // 2

        def dw(c):  # depthwise k×k (+BN, no ReLU, as in ShuffleNetV2)
            return [nn.Conv2d(c, c, k, stride, k // 2, groups=c, bias=False), nn.BatchNorm2d(c)]

        def pw(a, b):  # pointwise 1×1 + BN + ReLU
            return [nn.Conv2d(a, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

        self.main = nn.Sequential(*pw(c_read, mid), *dw(mid), *pw(mid, c_main))
        self.side = nn.Sequential(*dw(c_in), *pw(c_in, c_in)) if stride == 2 else None

    def forward(self, x):  # (B, c_in, H, W) -> (B, c_out, H/stride, W/stride)
        if self.stride == 2:
            return channel_shuffle(torch.cat([self.side(x), self.main(x)], 1))
        keep, work = x.chunk(2, dim=1)  # channel split
        return channel_shuffle(torch.cat([keep, self.main(work)], 1))


def channel_shuffle(x, groups: int = 2):
    """(B, g·c, H, W) -> interleave the g groups: channel g_i·c + j moves to j·g + g_i."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class SNet(nn.Module):
    """conv1 (stride 2) → maxpool (2) → stages 2, 3, 4 (stride 2 each); returns C4 and C5."""

    def __init__(self, widths=(24, 132, 264, 528), repeats=(4, 8, 4)):  # SNet146 by default
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, 2, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        stages, c = [], widths[0]
        for c_out, n in zip(widths[1:], repeats, strict=True):
            blocks = [ShuffleBlock(c_out if i else c, c_out, 1 if i else 2) for i in range(n)]
            stages.append(nn.Sequential(*blocks))
            c = c_out
        self.stage2, self.stage3, self.stage4 = stages

    def forward(self, x):  # (B, 3, H, W) -> C4 (stride 16), C5 (stride 32)
        c4 = self.stage3(self.stage2(self.stem(x)))
        return c4, self.stage4(c4)


# --8<-- [end:snet]


# --8<-- [start:cem]
class CEM(nn.Module):
    r"""Context Enhancement Module: F = W_4 C_4 + up_2(W_5 C_5) + W_g \bar C_5, all α·p·p channels."""

    def __init__(self, c4: int, c5: int, out: int = 245):
        super().__init__()
        self.lat4 = nn.Conv2d(c4, out, 1)  # 1×1 on C4
        self.lat5 = nn.Conv2d(c5, out, 1)  # 1×1 on C5
        self.glb = nn.Linear(c5, out)  # the fc on the global average of C5

    def forward(self, c4, c5):  # (B, c4, H, W), (B, c5, H/2, W/2) -> (B, out, H, W)
        up = F.interpolate(self.lat5(c5), size=c4.shape[-2:], mode="nearest")  # 2× upsample
        glb = self.glb(c5.mean(dim=(2, 3)))[:, :, None, None]  # (B, out, 1, 1), broadcast
        return self.lat4(c4) + up + glb  # local + one level deeper + whole image


# --8<-- [end:cem]


# --8<-- [start:rpn_sam]
class RPNWithSAM(nn.Module):
    r"""Light RPN (5×5 depthwise + 1×1) and SAM: F^{SAM} = F^{CEM} ⊙ σ(θ(F^{RPN}))."""

    def __init__(self, c: int = 245, hidden: int = 256, anchors: int = 25):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 5, padding=2, groups=c)  # 5×5 depthwise
        self.pw = nn.Conv2d(c, hidden, 1)  # 1×1 to the RPN's hidden width
        self.cls = nn.Conv2d(hidden, anchors, 1)  # objectness logit per anchor
        self.reg = nn.Conv2d(hidden, 4 * anchors, 1)  # box deltas per anchor
        self.theta = nn.Conv2d(hidden, c, 1)  # θ: 1×1 conv back to c channels

    def forward(self, f_cem):  # (B, c, H, W) -> scores, deltas, F_SAM (B, c, H, W)
        f_rpn = F.relu(self.pw(F.relu(self.dw(f_cem))))  # F^RPN (B, hidden, H, W)
        attention = torch.sigmoid(self.theta(f_rpn))  # in (0, 1), one weight per channel & pixel
        return self.cls(f_rpn), self.reg(f_rpn), f_cem * attention


# --8<-- [end:rpn_sam]


# --8<-- [start:psroi]
def bilinear_at(feat, y, x):
    """feat (C, H, W) sampled at float (y, x) of shape (...,), zero outside [-1, H] × [-1, W]."""
    h, w = feat.shape[-2:]
    inside = (y >= -1) & (y <= h) & (x >= -1) & (x <= w)
    y, x = y.clamp(0, h - 1), x.clamp(0, w - 1)
    y0, x0 = y.floor().long().clamp(max=max(h - 2, 0)), x.floor().long().clamp(max=max(w - 2, 0))
    y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
    ly, lx = y - y0, x - x0  # weights of the far neighbours
    top = feat[:, y0, x0] * (1 - lx) + feat[:, y0, x1] * lx  # interpolate along x, then y
    return (top * (1 - ly) + (feat[:, y1, x0] * (1 - lx) + feat[:, y1, x1] * lx) * ly) * inside


def ps_roi_align(feat, box, p: int = 7, scale: float = 1 / 16, samples: int = 2):
    r"""PS-RoI align of one box (x1, y1, x2, y2 in pixels) on feat (α·p·p, H, W) -> (α, p, p).

    Bin (i, j) averages samples² bilinear samples (torchvision's ps_roi_align averages too; the
    authors' CUDA kernel keeps their max), reading only channel (a·p + i)·p + j of part a.
    """
    alpha = feat.shape[0] // (p * p)
    x1, y1, x2, y2 = (v * scale for v in box)
    bh, bw = max(y2 - y1, 1.0) / p, max(x2 - x1, 1.0) / p  # bin size on the feature grid
    out = feat.new_zeros(alpha, p, p)
    offs = (torch.arange(samples, dtype=feat.dtype) + 0.5) / samples  # sample centres in a bin
    for i in range(p):
        for j in range(p):
            ys = (y1 + (i + offs) * bh)[:, None].expand(samples, samples)
            xs = (x1 + (j + offs) * bw)[None, :].expand(samples, samples)
            group = feat[torch.arange(alpha) * p * p + i * p + j]  # (α, H, W): this bin's channels
            out[:, i, j] = bilinear_at(group, ys, xs).mean(dim=(1, 2))
    return out


# --8<-- [end:psroi]


# --8<-- [start:thundernet]
class ThunderNetToy(nn.Module):
    """SNet → CEM → RPN + SAM; the R-CNN head (fc layers on PS-RoI features) is left to callers."""

    def __init__(self, widths=(24, 132, 264, 528), repeats=(4, 8, 4), alpha=5, p=7, hidden=256):
        super().__init__()
        self.backbone = SNet(widths, repeats)
        self.cem = CEM(widths[2], widths[3], alpha * p * p)
        self.rpn = RPNWithSAM(alpha * p * p, hidden)

    def forward(self, img):  # (B, 3, S, S) -> dict of every intermediate map
        c4, c5 = self.backbone(img)
        f_cem = self.cem(c4, c5)
        scores, deltas, f_sam = self.rpn(f_cem)
        return dict(C4=c4, C5=c5, F_CEM=f_cem, rpn_cls=scores, rpn_reg=deltas, F_SAM=f_sam)


def macs(fn):
    """Multiply-adds of fn() (FlopCounterMode counts conv / linear / matmul, 2 FLOPs per MAC)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = fn()
    return counter.get_total_flops() // 2, out


def flop_breakdown(model, size=320, rois=200, fc=(1024, 1024), classes=81):
    """Multiply-adds per component for one size×size image; the R-CNN head runs once per RoI."""
    counts = {}
    counts["SNet 主干"], (c4, c5) = macs(lambda: model.backbone(torch.zeros(1, 3, size, size)))
    counts["CEM"], f_cem = macs(lambda: model.cem(c4, c5))
    rpn = model.rpn
    counts["RPN"], f_rpn = macs(lambda: F.relu(rpn.pw(F.relu(rpn.dw(f_cem)))))
    counts["RPN"] += macs(lambda: (rpn.cls(f_rpn), rpn.reg(f_rpn)))[0]
    counts["SAM"] = macs(lambda: rpn.theta(f_rpn))[0]
    counts["R-CNN"] = rcnn_head_macs(f_cem.shape[1], rois, fc, classes)
    return counts


def rcnn_head_macs(in_dim: int, rois: int = 200, fc=(1024, 1024), classes: int = 81):
    """Multiply-adds of the R-CNN head (fc + ReLU layers, then scores and a box per fg class)."""
    dims = [in_dim, *fc]  # α·p·p flattened PS-RoI features, then the fc widths
    fcs = [m for a, b in zip(dims, dims[1:]) for m in (nn.Linear(a, b), nn.ReLU())]  # noqa: B905
    head = nn.Sequential(*fcs, nn.Linear(fc[-1], classes + 4 * (classes - 1))).to("meta")
    return macs(lambda: head(torch.zeros(rois, in_dim, device="meta")))[0]


# --8<-- [end:thundernet]


# --8<-- [start:receptive]
def input_gradient(model: ThunderNetToy, size: int = 160, branches=("C4", "C5", "全局")):
    """|∂F_CEM[:, centre] / ∂image| summed over channels, with the CEM branches not listed zeroed."""
    keep = {"C4": model.cem.lat4, "C5": model.cem.lat5, "全局": model.cem.glb}
    saved = {k: (m.weight.detach().clone(), m.bias.detach().clone()) for k, m in keep.items()}
    with torch.no_grad():
        for name, m in keep.items():
            if name not in branches:  # switch a branch off: weight and bias to zero
                m.weight.zero_(), m.bias.zero_()
    g = torch.Generator().manual_seed(0)
    img = torch.randn(1, 3, size, size, generator=g, requires_grad=True)
    f = model.cem(*model.backbone(img))
    f[0, :, f.shape[2] // 2, f.shape[3] // 2].sum().backward()
    with torch.no_grad():
        for name, m in keep.items():
            m.weight.copy_(saved[name][0]), m.bias.copy_(saved[name][1])
    return img.grad[0].abs().sum(0)  # (size, size)


def support_box(g) -> tuple[int, int]:
    """Height and width of the bounding box of the non-zero entries of g (H, W)."""
    rows, cols = g.sum(1).nonzero(), g.sum(0).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def plot_receptive(maps: dict):
    """One panel per CEM variant, stacked: where the centre output of F_CEM looks in the image."""
    fig, axes = plt.subplots(len(maps), 1, figsize=(3.4, 2.9 * len(maps)), layout="constrained")
    top = max(g.max().log10().item() for g in maps.values())  # one colour scale for all panels
    for ax, (name, g) in zip(axes, maps.items(), strict=True):
        im = ax.imshow((g + 1e-12).log10(), cmap="magma", vmin=-8, vmax=top, interpolation="none")
        ax.set_title(f"{name}：非零范围 {'×'.join(map(str, support_box(g)))}", fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.3, label="梯度幅值（log10）")
    fig.suptitle("CEM 中心输出对输入图像的梯度", fontsize=11)
    return fig


# --8<-- [end:receptive]


# --8<-- [start:plot_flops]
def plot_flops(counts: dict):
    """Horizontal bars: multiply-adds per component, in millions."""
    names, vals = list(counts), np.array(list(counts.values())) / 1e6
    fig, ax = plt.subplots(figsize=(5.0, 2.8), layout="constrained")
    ax.barh(names[::-1], vals[::-1], color="C0")
    for y, v in enumerate(vals[::-1]):
        ax.text(v, y, f" {v:.0f}", va="center", fontsize=10)
    ax.set(xlabel="乘加次数（百万）", xlim=(0, vals.max() * 1.25))
    ax.set_title("320×320 输入，各部分的乘加次数", fontsize=11)
    return fig


# --8<-- [end:plot_flops]


# --8<-- [start:plot_pipeline]
def plot_pipeline(out: dict):
    """Module diagram, top to bottom; every shape in it is read from the forward pass `out`."""
    hwc = {k: "×".join(map(str, (*t.shape[2:], t.shape[1]))) for k, t in out.items()}  # H×W×C
    s, c, a = 16 * out["C4"].shape[-1], out["F_CEM"].shape[1], out["rpn_cls"].shape[1]
    fig = plt.figure(figsize=(4.4, 5.0))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set(xlim=(0, 10), ylim=(0.2, 10.6)), ax.axis("off")
    boxes = {  # name: (x centre, y centre, text, fill)
        "img": (5, 10, f"输入图像 {s}×{s}×3", "white"),
        "snet": (5, 8.7, "SNet146 主干（5×5 深度卷积）", "#cfe0f7"),
        "c4": (2.6, 7.4, f"C4  {hwc['C4']}", "#cfe0f7"),
        "c5": (7.4, 7.4, f"C5  {hwc['C5']}", "#cfe0f7"),
        "cem": (
            5,
            6,
            f"CEM：1×1(C4) + 放大 1×1(C5)\n+ 全连接(全局平均 C5) → {hwc['F_CEM']}",
            "#d8eed8",
        ),
        "rpn": (2.6, 4.4, "RPN：5×5 深度卷积\n+ 1×1 → F_RPN", "#f9e3c6"),
        "anc": (2.6, 2.8, f"每个位置 {a} 个锚框\n分数 + 回归量", "#f9e3c6"),
        "sam": (7.4, 4.4, f"SAM：F_CEM ⊙ sigmoid(θ(F_RPN))\n→ {hwc['F_SAM']}", "#f3d4de"),
        "psroi": (7.4, 2.8, f"PS-RoI Align\n每个候选框 {c} 个数", "#e4dcf3"),
        "rcnn": (7.4, 1.2, "R-CNN：全连接\n→ 类别分数 + 框回归量", "#e4dcf3"),
    }
    patches = {}  # arrows run between the boxes' outlines, not their centres
    for name, (x, y, text, fill) in boxes.items():
        box = dict(boxstyle="round,pad=0.35", fc=fill, ec="0.3")
        t = ax.text(x, y, text, ha="center", va="center", fontsize=10, bbox=box)
        patches[name] = t.get_bbox_patch()
    arrow = dict(arrowstyle="->", color="0.3", shrinkA=1, shrinkB=1)
    edges = "img-snet snet-c4 snet-c5 c4-cem c5-cem cem-rpn cem-sam rpn-anc rpn-sam sam-psroi psroi-rcnn"
    for src, dst in (e.split("-") for e in edges.split()):  # noqa: SIM905
        ends = [(1, 0.5), (0, 0.5)] if (src, dst) == ("rpn", "sam") else [(0.5, 0), (0.5, 1)]
        ax.annotate("", ends[1], ends[0], patches[dst], patches[src], arrowprops=arrow)
    return fig


# --8<-- [end:plot_pipeline]


if __name__ == "__main__":
    print(flop_breakdown(ThunderNetToy().eval()))
