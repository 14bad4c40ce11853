r"""EfficientNet compound scaling from scratch: depth $d=\alpha^\phi$, width $w=\beta^\phi$,
resolution $r=\gamma^\phi$ with the official rounding (ceil for repeats, channels to a multiple
of 8 but never below 90 %), an MBConv network built from a stage table, and a layer-by-layer
closed-form count of its FLOPs and parameters that the tests hold against
``torch.utils.flop_counter.FlopCounterMode`` and ``sum(p.numel())``.
"""

# --8<-- [start:imports]
import math
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# --8<-- [end:imports]


# --8<-- [start:scaling]
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # depth, width, resolution: the paper's grid search at φ = 1


def compound(phi: float, alpha=ALPHA, beta=BETA, gamma=GAMMA) -> tuple[float, float, float]:
    r"""(d, w, r) = (α^φ, β^φ, γ^φ); FLOPs grow like d·w²·r² = (α·β²·γ²)^φ."""
    return alpha**phi, beta**phi, gamma**phi


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels × width, to the nearest multiple of `divisor`, never more than 10 % below."""
    exact = filters * width
    new = max(divisor, int(exact + divisor / 2) // divisor * divisor)  # round half up
    if new < 0.9 * exact:  # rounding down lost more than 10 %: go one step up
        new += divisor
    return int(new)


def round_repeats(repeats: int, depth: float) -> int:
    """Blocks per stage × depth, rounded up."""
    return int(math.ceil(depth * repeats))


# --8<-- [end:scaling]


# --8<-- [start:config]
@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int  # of the first block; the others use 1
    expand: int  # MBConv expansion ratio
    c_in: int
    c_out: int


# EfficientNet-B0 (tensorflow/tpu efficientnet_builder.py), SE ratio 0.25 everywhere
B0_STAGES = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)
# (width, depth, resolution) of the released models
OFFICIAL = {
    "B0": (1.0, 1.0, 224), "B1": (1.0, 1.1, 240), "B2": (1.1, 1.2, 260), "B3": (1.2, 1.4, 300),
    "B4": (1.4, 1.8, 380), "B5": (1.6, 2.2, 456), "B6": (1.8, 2.6, 528), "B7": (2.0, 3.1, 600),
}  # fmt: skip
# a toy with the same block types, small enough to run on a CPU in milliseconds
TOY_STAGES = (Stage(1, 3, 1, 1, 16, 8), Stage(2, 3, 2, 4, 8, 16), Stage(2, 5, 2, 4, 16, 24))
TOY = {"stages": TOY_STAGES, "stem": 16, "head": 64, "num_classes": 10}
SE_RATIO = 0.25


def scaled_stages(stages, width: float, depth: float) -> list[Stage]:
    """Apply the width and depth multipliers to every stage (kernels and strides stay)."""
    return [
        replace(s, repeats=round_repeats(s.repeats, depth),
                c_in=round_filters(s.c_in, width), c_out=round_filters(s.c_out, width))
        for s in stages
    ]  # fmt: skip


def blocks(stages):
    """(c_in, c_out, kernel, stride, expand) of every MBConv block, in order."""
    for s in stages:
        for i in range(s.repeats):  # only the first block of a stage changes c and stride
            yield (
                (s.c_in if i == 0 else s.c_out),
                s.c_out,
                s.kernel,
                (s.stride if i == 0 else 1),
                s.expand,
            )


# --8<-- [end:config]


# --8<-- [start:model]
def conv_bn_act(c_in, c_out, k, stride=1, groups=1, act=True):
    layers = [
        nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    return nn.Sequential(*layers, nn.SiLU()) if act else nn.Sequential(*layers)


class MBConv(nn.Module):
    """1×1 expand → k×k depthwise → squeeze-and-excite → 1×1 project (+ identity skip)."""

    def __init__(self, c_in, c_out, kernel, stride, expand):
        super().__init__()
        mid = c_in * expand
        self.expand = conv_bn_act(c_in, mid, 1) if expand != 1 else nn.Identity()
        self.depthwise = conv_bn_act(mid, mid, kernel, stride, groups=mid)
        squeezed = max(1, int(c_in * SE_RATIO))  # SE width follows the block's *input* channels
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(mid, squeezed, 1), nn.SiLU(),
                                nn.Conv2d(squeezed, mid, 1), nn.Sigmoid())  # fmt: skip
        self.project = conv_bn_act(mid, c_out, 1, act=False)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x):  # (N, c_in, H, W) -> (N, c_out, H/stride, W/stride)
        h = self.depthwise(self.expand(x))
        h = self.project(h * self.se(h))  # channel gates in (0, 1)
        return x + h if self.skip else h


class EfficientNet(nn.Sequential):
    def __init__(
        self, stages=B0_STAGES, width=1.0, depth=1.0, stem=32, head=1280, num_classes=1000
    ):
        stages = scaled_stages(stages, width, depth)
        head = round_filters(head, width)
        super().__init__(
            conv_bn_act(3, round_filters(stem, width), 3, stride=2),
            *(MBConv(*b) for b in blocks(stages)),
            conv_bn_act(stages[-1].c_out, head, 1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(head, num_classes),
        )  # fmt: skip


# --8<-- [end:model]


# --8<-- [start:count]
def conv_cost(c_in, c_out, k, h, groups=1, bias=False):
    """(FLOPs, params) of a k×k conv on an h×h output; 2 FLOPs per multiply-add."""
    weights = (c_in // groups) * c_out * k * k
    return 2 * weights * h * h, weights + (c_out if bias else 0)


def analytic_cost(stages=B0_STAGES, width=1.0, depth=1.0, resolution=224, stem=32, head=1280,
                  num_classes=1000) -> tuple[int, int]:  # fmt: skip
    """Closed-form FLOPs and parameters, walking the stage table (no nn.Module involved)."""
    stages, head = scaled_stages(stages, width, depth), round_filters(head, width)
    c, h = round_filters(stem, width), math.ceil(resolution / 2)  # padding k//2: out = ⌈H/s⌉
    flops, params = conv_cost(3, c, 3, h)
    params += 2 * c  # BatchNorm γ, β
    for c_in, c_out, k, stride, expand in blocks(stages):
        mid, sq = c_in * expand, max(1, int(c_in * SE_RATIO))
        parts = [conv_cost(c_in, mid, 1, h)] if expand != 1 else []  # expand at input size
        h = math.ceil(h / stride)
        parts += [
            conv_cost(mid, mid, k, h, groups=mid),  # depthwise: linear in width
            conv_cost(mid, sq, 1, 1, bias=True),  # SE acts on the pooled 1×1 map
            conv_cost(sq, mid, 1, 1, bias=True),
            conv_cost(mid, c_out, 1, h),  # project
        ]
        flops += sum(f for f, _ in parts)
        params += sum(p for _, p in parts) + 2 * (mid * (expand != 1) + mid + c_out)  # BN
    f, p = conv_cost(stages[-1].c_out, head, 1, h)
    flops += f + 2 * head * num_classes  # head conv, then the classifier
    params += p + 2 * head + head * num_classes + num_classes
    return flops, params


def measured_flops(model: nn.Module, resolution: int) -> int:
    """FlopCounterMode on the meta device: shapes only, no arithmetic, any resolution."""
    x = torch.empty(1, 3, resolution, resolution, device="meta")
    with FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return counter.get_total_flops()


def build_meta(stages=B0_STAGES, width=1.0, depth=1.0, **kw) -> nn.Module:
    with torch.device("meta"):  # parameters without storage: B7 costs nothing to build
        return EfficientNet(stages, width, depth, **kw)


# --8<-- [end:count]


# --8<-- [start:implied]
def implied_phi(
    width: float, depth: float, resolution: int, base=224
) -> tuple[float, float, float]:
    """The φ each dimension of a released model would need under d=α^φ, w=β^φ, r=γ^φ."""
    return math.log(depth) / math.log(ALPHA), math.log(width) / math.log(BETA), \
        math.log(resolution / base) / math.log(GAMMA)  # fmt: skip


# --8<-- [end:implied]


# --8<-- [start:plot]
def plot_scaling(phis, toy_flops):
    """Top: toy FLOPs against φ on log2 with the 1.92^φ law; bottom: implied φ of B1–B7."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.0, 6.4), layout="constrained")
    ratio = ALPHA * BETA**2 * GAMMA**2
    top.plot(phis, np.log2(np.asarray(toy_flops) / toy_flops[0]), "o-", label="玩具网络实测")
    top.plot(phis, np.asarray(phis) * np.log2(ratio), "--", label=r"$(\alpha\beta^2\gamma^2)^\phi$")
    top.set(xlabel="φ", ylabel="log₂(FLOPs / φ=0)", title="玩具网络：φ 每加 1，FLOPs 约乘 αβ²γ²")
    top.legend(loc="upper left")
    names = [n for n in OFFICIAL if n != "B0"]
    implied = np.array([implied_phi(*OFFICIAL[n]) for n in names])  # (7, 3)
    x = np.arange(len(names))
    for j, (label, marker) in enumerate([("深度 d", "o"), ("宽度 w", "s"), ("分辨率 r", "^")]):
        bottom.plot(x + (j - 1) * 0.15, implied[:, j], marker, label=label, ms=7)
    bottom.set_xticks(x, names)
    bottom.set(ylabel="反推的 φ", title="官方 B1–B7：三个维度的 φ 不一致")
    bottom.legend(loc="upper left")
    bottom.grid(axis="y", alpha=0.3)
    top.grid(alpha=0.3)
    return fig


# --8<-- [end:plot]


if __name__ == "__main__":
    f, p = analytic_cost()
    print(f"B0 closed form: {f / 2e9:.3f} G multiply-adds, {p / 1e6:.3f} M params")
    print(f"FlopCounterMode: {measured_flops(build_meta(), 224) / 2e9:.3f} G multiply-adds")
