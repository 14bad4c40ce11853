r"""ThunderNet's detection part at toy scale: an SNet backbone (ShuffleNetV2 blocks with 5×5
depthwise convolutions), the Context Enhancement Module (CEM), a light RPN whose hidden features
drive the Spatial Attention Module (SAM), and a position-sensitive RoI align that reads the
α·p·p-channel thin feature map. Random weights only: the point is shapes, wiring and what each
module changes, not accuracy.
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
            blocks = [ShuffleBlock(c, c_out, 2)] + [
                ShuffleBlock(c_out, c_out, 1) for _ in range(n - 1)
            ]
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
        local = self.lat4(c4)
        up = F.interpolate(self.lat5(c5), size=c4.shape[-2:], mode="nearest")  # 2× upsample
        glb = self.glb(c5.mean(dim=(2, 3)))[:, :, None, None]  # (B, out, 1, 1), broadcast
        return local + up + glb


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
    y0, x0 = (
        y.floor().long().clamp(max=h - 2 if h > 1 else 0),
        x.floor().long().clamp(max=w - 2 if w > 1 else 0),
    )
    y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
    ly, lx = y - y0, x - x0  # weights of the far neighbours
    v = (
        feat[:, y0, x0] * (1 - ly) * (1 - lx)
        + feat[:, y0, x1] * (1 - ly) * lx
        + feat[:, y1, x0] * ly * (1 - lx)
        + feat[:, y1, x1] * ly * lx
    )
    return v * inside


def ps_roi_align(feat, box, p: int = 7, scale: float = 1 / 16, samples: int = 2):
    r"""PS-RoI align of one box (x1, y1, x2, y2 in pixels) on feat (α·p·p, H, W) -> (α, p, p).

    Bin (i, j) averages samples² bilinear samples, reading only channel group (a·p + i)·p + j.
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
        return {
            "C4": c4,
            "C5": c5,
            "F_CEM": f_cem,
            "rpn_cls": scores,
            "rpn_reg": deltas,
            "F_SAM": f_sam,
        }


def macs(fn):
    """Multiply-adds of fn() (FlopCounterMode counts conv / linear / matmul, 2 FLOPs per MAC)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = fn()
    return counter.get_total_flops() // 2, out


def flop_breakdown(
    model: ThunderNetToy, size: int = 320, rois: int = 200, fc=(1024, 1024), classes=81
):
    """Multiply-adds per component for one size×size image; the R-CNN head runs once per RoI."""
    counts = {}
    counts["SNet 主干"], (c4, c5) = macs(lambda: model.backbone(torch.zeros(1, 3, size, size)))
    counts["CEM"], f_cem = macs(lambda: model.cem(c4, c5))
    rpn = model.rpn
    counts["RPN"], f_rpn = macs(lambda: F.relu(rpn.pw(F.relu(rpn.dw(f_cem)))))
    counts["RPN"] += macs(lambda: (rpn.cls(f_rpn), rpn.reg(f_rpn)))[0]
    counts["SAM"] = macs(lambda: rpn.theta(f_rpn))[0]
    widths = [f_cem.shape[1], *fc]  # PS-RoI output α·p·p flattened, then the fc layers
    head = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True)) + fc[-1] * (
        classes + 4 * (classes - 1)
    )
    counts["R-CNN"] = rois * head  # classes scores + a box per foreground class
    return counts


# --8<-- [end:thundernet]


# --8<-- [start:receptive]
def input_gradient(model: ThunderNetToy, size: int = 160, branches=("C4", "C5", "全局")):
    """|∂F_CEM[:, centre] / ∂image| summed over channels, with the CEM branches not listed zeroed."""
    cem = model.cem
    keep = {"C4": cem.lat4, "C5": cem.lat5, "全局": cem.glb}
    saved = {k: (m.weight.detach().clone(), m.bias.detach().clone()) for k, m in keep.items()}
    with torch.no_grad():
        for name, m in keep.items():
            if name not in branches:  # switch a branch off: weight and bias to zero
                m.weight.zero_(), m.bias.zero_()
    img = torch.randn(
        1, 3, size, size, generator=torch.Generator().manual_seed(0), requires_grad=True
    )
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
    """One panel per CEM variant, side by side: where the centre output of F_CEM looks in the input image."""
    fig, axes = plt.subplots(1, len(maps), figsize=(5.2, 2.3), layout="constrained")
    for ax, (name, g) in zip(axes, maps.items(), strict=True):
        h, w = support_box(g)
        ax.imshow(np.log10(g.numpy() + 1e-12).clip(-8), cmap="magma")
        ax.set_title(f"{name}\n范围 {h}×{w}", fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("CEM 中心输出对输入的梯度（log 幅值）", fontsize=11)
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
    ax.set_xlabel("乘加次数（百万）")
    ax.set_xlim(0, vals.max() * 1.25)
    ax.set_title("320×320 输入，各部分的乘加次数", fontsize=11)
    return fig


# --8<-- [end:plot_flops]


if __name__ == "__main__":
    net = ThunderNetToy().eval()
    print({k: tuple(v.shape) for k, v in net(torch.zeros(1, 3, 320, 320)).items()})
    print(flop_breakdown(net))
