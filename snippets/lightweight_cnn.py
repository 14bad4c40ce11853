r"""Lightweight CNN building blocks from scratch: the Inception module's 1x1 reductions
(GoogLeNet), depthwise-separable convolution (MobileNet v1)
with its parameter and multiply-add counts, channel shuffle (ShuffleNet v1) as
reshape/transpose and as an index formula, the inverted residual block (MobileNetV2) with its
cost formula, and ShuffleNet V2's memory-access count for a 1x1 convolution. The tests check
each against PyTorch built-ins, loops and closed forms.
"""

# --8<-- [start:imports]
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

# --8<-- [end:imports]


# --8<-- [start:counts]
def conv_params(c_in: int, c_out: int, k: int, groups: int = 1) -> int:
    r"""Weights of a k×k convolution without bias: $k^2 \cdot (c_{in}/g) \cdot c_{out}$."""
    if c_in % groups or c_out % groups:
        raise ValueError(f"channels {c_in}, {c_out} not divisible by groups={groups}")
    return k * k * (c_in // groups) * c_out


def conv_macs(c_in: int, c_out: int, k: int, h_out: int, w_out: int, groups: int = 1) -> int:
    """Multiply-adds: every output pixel applies every weight once."""
    return conv_params(c_in, c_out, k, groups) * h_out * w_out


def separable_costs(m: int, n: int, k: int, h: int, w: int) -> dict[str, int]:
    r"""Standard k×k conv (M -> N) vs depthwise (groups=M) + pointwise 1×1, same padding."""
    return {
        "standard": conv_macs(m, n, k, h, w),  # D_K²·M·N·D_F²
        "depthwise": conv_macs(m, m, k, h, w, groups=m),  # D_K²·M·D_F²
        "pointwise": conv_macs(m, n, 1, h, w),  # M·N·D_F²
    }


def counted_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward pass as FlopCounterMode sees them (it counts 2 per MAC)."""
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


# --8<-- [end:counts]


# --8<-- [start:inception]
class Inception(nn.Module):
    """GoogLeNet module: 1×1 | 1×1 -> 3×3 | 1×1 -> 5×5 | 3×3 max-pool -> 1×1, concatenated."""

    def __init__(self, c_in: int, c1: int, r3: int, c3: int, r5: int, c5: int, pool_proj: int):
        super().__init__()
        self.b1 = nn.Conv2d(c_in, c1, 1, bias=False)
        self.b3 = nn.Sequential(  # 1×1 reduction to r3 channels, then the 3×3
            nn.Conv2d(c_in, r3, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(r3, c3, 3, padding=1, bias=False),
        )
        self.b5 = nn.Sequential(  # 1×1 reduction to r5 channels, then the 5×5
            nn.Conv2d(c_in, r5, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(r5, c5, 5, padding=2, bias=False),
        )
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c_in, pool_proj, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(b(x)) for b in (self.b1, self.b3, self.b5, self.bp)], dim=1)


def inception_macs(c_in, c1, r3, c3, r5, c5, pool_proj, h: int, w: int) -> int:
    """Per pixel: C·c1 + (C·r3 + 9·r3·c3) + (C·r5 + 25·r5·c5) + C·pool_proj, all at h×w."""
    return (
        conv_macs(c_in, c1, 1, h, w)
        + conv_macs(c_in, r3, 1, h, w)  # 3×3 branch: reduce ...
        + conv_macs(r3, c3, 3, h, w)  # ... then 3×3 on r3 channels
        + conv_macs(c_in, r5, 1, h, w)  # 5×5 branch: reduce ...
        + conv_macs(r5, c5, 5, h, w)  # ... then 5×5 on r5 channels
        + conv_macs(c_in, pool_proj, 1, h, w)
    )


def naive_inception_macs(c_in: int, c1: int, c3: int, c5: int, h: int, w: int) -> int:
    """No reductions: 1×1, 3×3, 5×5 all read the C input channels; the pool branch has no conv."""
    return (
        conv_macs(c_in, c1, 1, h, w) + conv_macs(c_in, c3, 3, h, w) + conv_macs(c_in, c5, 5, h, w)
    )


# --8<-- [end:inception]


# --8<-- [start:separable]
class DepthwiseSeparable(nn.Module):
    """k×k depthwise conv (one filter per channel) followed by a 1×1 pointwise conv."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, stride: int = 1, bias: bool = False):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, k, stride, k // 2, groups=c_in, bias=bias)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def depthwise_loop(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """Depthwise conv as C separate single-channel convolutions; weight is (C, 1, k, k)."""
    planes = [
        F.conv2d(x[:, c : c + 1], weight[c : c + 1], padding=padding) for c in range(x.shape[1])
    ]
    return torch.cat(planes, dim=1)


def pointwise_einsum(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """1×1 conv = the same matrix applied at every pixel: y[n,o,h,w] = Σ_i W[o,i]·x[n,i,h,w]."""
    return torch.einsum("oi,nihw->nohw", weight[:, :, 0, 0], x)


# --8<-- [end:separable]


# --8<-- [start:shuffle]
def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet: view channels as (g, n), transpose to (n, g), flatten back."""
    batch, channels, h, w = x.shape
    n = channels // groups
    return x.view(batch, groups, n, h, w).transpose(1, 2).reshape(batch, channels, h, w)


def shuffle_source(channels: int, groups: int) -> list[int]:
    """Input channel read by output channel j: src(j) = (j mod g)·n + ⌊j/g⌋, n = C/g."""
    n = channels // groups
    return [(j % groups) * n + j // groups for j in range(channels)]


def group_reach(channels: int, groups: int, shuffle: bool) -> torch.Tensor:
    """(C_out, C_in) 0/1 matrix: can output channel o of two stacked 1×1 group convs see input i?"""
    block = torch.block_diag(*[torch.ones(channels // groups, channels // groups)] * groups)
    reach = block  # one group conv: channel o sees only its own group
    if shuffle:
        reach = reach[shuffle_source(channels, groups)]  # permute rows: out j = in src(j)
    return ((block @ reach) > 0).int()  # second group conv


# --8<-- [end:shuffle]


# --8<-- [start:inverted_residual]
class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand (×t) -> 3×3 depthwise -> 1×1 linear projection (+ input)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, t: int = 6, k: int = 3):
        super().__init__()
        hidden = c_in * t
        self.use_residual = stride == 1 and c_in == c_out
        self.expand = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()
        )
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
        )
        # linear bottleneck: no ReLU after the projection
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.use_residual else y


def inverted_residual_macs(
    c_in: int, c_out: int, h: int, w: int, t: int = 6, k: int = 3, stride: int = 1
) -> int:
    r"""Convolution multiply-adds; for stride 1 it is $h w d' t (d' + k^2 + d'')$."""
    hidden = c_in * t
    h2, w2 = (h - 1) // stride + 1, (w - 1) // stride + 1  # 'same' padding, k odd
    return (
        conv_macs(c_in, hidden, 1, h, w)  # expand at full resolution
        + conv_macs(hidden, hidden, k, h2, w2, groups=hidden)  # depthwise, strided
        + conv_macs(hidden, c_out, 1, h2, w2)  # project
    )


# --8<-- [end:inverted_residual]


# --8<-- [start:memory_access]
def pointwise_memory_access(h: int, w: int, c1: int, c2: int) -> int:
    r"""ShuffleNet V2's MAC of a 1×1 conv: read input $hwc_1$, write output $hwc_2$, read weights $c_1c_2$."""
    return h * w * (c1 + c2) + c1 * c2


def memory_access_bound(h: int, w: int, flops: int) -> float:
    r"""Lower bound at fixed B = h·w·c1·c2: MAC ≥ $2\sqrt{hwB} + B/(hw)$, equality at c1 = c2."""
    return 2 * math.sqrt(h * w * flops) + flops / (h * w)


# --8<-- [end:memory_access]


# --8<-- [start:figure]
def plot_ratio(widths, measured: dict[int, list[float]]):
    """Measured separable/standard MAC ratio vs output channels N, one curve per k, with 1/N + 1/k²."""
    fig, ax = plt.subplots(figsize=(5.0, 4.6), layout="constrained")
    for (k, ratios), color in zip(measured.items(), ("C0", "C1", "C2"), strict=True):
        ax.loglog(widths, ratios, "o", color=color, label=f"实测 k = {k}")
        ax.loglog(
            widths,
            [1 / n + 1 / k**2 for n in widths],
            "-",
            color=color,
            lw=1,
            label=f"1/N + 1/{k * k}",
        )
        ax.axhline(1 / k**2, color=color, ls=":", lw=1)
    ax.set_xticks(widths, [str(n) for n in widths])
    ax.set_xticks([], minor=True)
    ticks = [0.02, 0.04, 0.1, 0.2]
    ax.set_yticks(ticks, [str(t) for t in ticks])
    ax.set_yticks([], minor=True)
    ax.set(xlabel="输出通道数 N（M = N）", ylabel="可分离 / 标准 乘加次数")
    ax.set_title("N 变大后比值停在 1/k²（点线）", fontsize=11)
    # below the axes, off the data; filled by column: markers on top, formulas underneath
    ax.legend(ncol=3, fontsize=10, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return fig


# --8<-- [end:figure]


if __name__ == "__main__":
    block = InvertedResidual(24, 24)
    x = torch.randn(1, 24, 28, 28)
    print(block(x).shape, counted_macs(block, x), inverted_residual_macs(24, 24, 28, 28))
    print(
        channel_shuffle(torch.arange(6.0).view(1, 6, 1, 1), 2).flatten().tolist(),
        shuffle_source(6, 2),
    )
