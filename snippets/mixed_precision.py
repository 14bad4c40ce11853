r"""fp16 and bf16 from their bits: rounding, limits, and dynamic loss scaling, from scratch.

`limits` derives max / min normal / min subnormal / eps from a format's field widths.
`fp32_to_bf16_bits` and `fp32_to_fp16_bits` round float32 arrays to the 16-bit formats with
round-to-nearest-even using integer operations only, as a cast does. `LossScaler` is a
hand-written dynamic loss scaler with the rules of `torch.amp.GradScaler`: skip the step and
multiply the scale by `backoff_factor` when a gradient is inf/NaN, multiply it by
`growth_factor` after `growth_interval` clean steps in a row. The rest builds a small MLP whose
gradients are late-training small, and draws where fp16 loses them.
"""

# --8<-- [start:imports]
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

# --8<-- [end:imports]


# --8<-- [start:layout]
FORMATS = {"fp32": (8, 23), "fp16": (5, 10), "bf16": (8, 7)}  # (exponent bits, mantissa bits)


def decode(bits: int, exp_bits: int, man_bits: int) -> float:
    r"""The value of a bit pattern: $(-1)^s \cdot 2^{e-b} \cdot 1.m$, or $2^{1-b} \cdot 0.m$ if e = 0."""
    bias = 2 ** (exp_bits - 1) - 1
    s = bits >> (exp_bits + man_bits)
    e = (bits >> man_bits) & (2**exp_bits - 1)
    m = bits & (2**man_bits - 1)
    if e == 2**exp_bits - 1:  # all-ones exponent: inf (m = 0) or NaN
        return (-math.inf if s else math.inf) if m == 0 else math.nan
    sign = -1.0 if s else 1.0  # a float, so that -0.0 keeps its sign
    if e == 0:  # subnormal: no implicit 1, exponent pinned at 1 - bias
        return sign * m * 2.0 ** (1 - bias - man_bits)
    return sign * (1 + m / 2**man_bits) * 2.0 ** (e - bias)


def fields(bits: int, exp_bits: int, man_bits: int) -> str:
    """'s eeeee mmmmmmmmmm': a bit pattern split into sign, exponent and mantissa."""
    b = format(bits, f"0{1 + exp_bits + man_bits}b")
    return f"{b[0]} {b[1 : 1 + exp_bits]} {b[1 + exp_bits :]}"


def limits(exp_bits: int, man_bits: int) -> dict[str, float]:
    """Largest finite, smallest normal, smallest subnormal, and eps (gap above 1), from the bits."""
    top = (2**exp_bits - 2) << man_bits  # largest finite exponent field, mantissa 0
    return {
        "max": decode(top | (2**man_bits - 1), exp_bits, man_bits),
        "min_normal": decode(1 << man_bits, exp_bits, man_bits),
        "min_subnormal": decode(1, exp_bits, man_bits),
        "eps": decode((2 ** (exp_bits - 1) - 1) << man_bits | 1, exp_bits, man_bits) - 1.0,
    }


# --8<-- [end:layout]


# --8<-- [start:bf16]
def fp32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 array -> bf16 bit patterns (uint16), round to nearest, ties to even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    lsb = (u >> 16) & 1  # last bit kept: ties go to the candidate where it is 0
    rounded = (u + 0x7FFF + lsb) >> 16  # a carry runs into the exponent: 1.11..1 -> 10.0
    is_nan = (u & 0x7FFFFFFF) > 0x7F800000
    quiet_nan = (u >> 16) | 0x0040  # keep sign and top payload bits, set the quiet bit
    return np.where(is_nan, quiet_nan, rounded).astype(np.uint16)


def bf16_bits_to_fp32(h: np.ndarray) -> np.ndarray:
    """bf16 bits -> float32: bf16 is the top half of a float32, so append 16 zero bits."""
    return (h.astype(np.uint32) << 16).view(np.float32)


# --8<-- [end:bf16]


# --8<-- [start:fp16]
def rne_shift(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """round(m / 2**s) with ties to even, for integer m >= 0 and shift s >= 1."""
    lsb = (m >> s) & 1
    return (m + (1 << (s - 1)) - 1 + lsb) >> s


def fp32_to_fp16_bits(x: np.ndarray) -> np.ndarray:
    """float32 array -> fp16 bit patterns (uint16), round to nearest, ties to even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.int64)
    sign = (u >> 16) & 0x8000
    e32, m32 = (u >> 23) & 0xFF, u & 0x7FFFFF
    e16 = e32 - 127 + 15  # re-bias the exponent: 2^(e32-127) = 2^(e16-15)
    # normal fp16 (e16 >= 1): keep 10 of 23 mantissa bits; a carry may reach inf (0x7C00)
    normal = np.minimum(rne_shift((e16 << 23) | m32, np.int64(13)), 0x7C00)
    # subnormal fp16 (e16 <= 0): the integer count of 2^-24 steps, round(1.m · 2^(e32-127+24))
    sig = np.where(e32 > 0, m32 | 0x800000, m32)  # fp32 subnormals have no implicit 1
    shift = np.clip(126 - np.maximum(e32, 1), 14, 40)  # 2^-24 steps; past 25 all round to 0
    sub = rne_shift(sig, shift)  # a carry from 0x3FF gives 0x400, the smallest normal
    mag = np.where(e16 >= 1, normal, sub)
    mag = np.where(e32 == 0xFF, 0x7C00 | np.where(m32 != 0, 0x200 | (m32 >> 13), 0), mag)  # inf/NaN
    return (sign | mag).astype(np.uint16)


def fp16_bits_to_fp32(h: np.ndarray) -> np.ndarray:
    """fp16 bits -> float32 (exact: every fp16 value is a float32)."""
    return h.astype(np.uint16).view(np.float16).astype(np.float32)


# --8<-- [end:fp16]


# --8<-- [start:cases]
def bf16_hard_cases() -> np.ndarray:
    """float32 bits: all 2^16 high halves × the low halves that decide rounding (0x8000 = tie)."""
    hi = np.arange(2**16, dtype=np.uint32) << 16
    lo = np.array([0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF], dtype=np.uint32)
    return (hi[:, None] | lo).ravel()


def fp16_hard_cases() -> np.ndarray:
    """float32 bits: each finite fp16 value, each midpoint (a tie) and the float32 on either side."""
    v = fp16_bits_to_fp32(np.arange(0x7C00, dtype=np.uint16))  # 0 … 65504
    nxt = np.append(v[1:], np.float32(65536))  # above 65504 the next step would be 2^16
    mid = ((v.astype(np.float64) + nxt) / 2).astype(np.float32).view(np.uint32)  # exact in fp32
    cases = np.concatenate([v.view(np.uint32), mid - 1, mid, mid + 1])  # ±1 in the bits = ±1 ulp
    return np.concatenate([cases, cases | np.uint32(0x80000000)])  # and the negatives


# --8<-- [end:cases]


# --8<-- [start:scaler]
class LossScaler:
    """Dynamic loss scaling by hand, with the interface, defaults and rules of torch.amp.GradScaler."""

    def __init__(
        self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000
    ):
        self._scale = float(np.float32(init_scale))  # GradScaler keeps S in a float32 tensor
        self.growth_factor, self.backoff_factor = growth_factor, backoff_factor
        self.growth_interval = growth_interval
        self._good_steps = 0  # clean steps in a row since the last growth or overflow
        self._found_inf = None  # None: this iteration's gradients are not unscaled yet

    def get_scale(self) -> float:
        return self._scale

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return loss * self._scale  # S·L: backward then yields S·∇L, the chain rule is linear

    def unscale_(self, optimizer) -> None:
        """g ← g · (1/S) in place; remember whether any scaled gradient was inf/NaN."""
        inv = float(np.float32(1.0 / self._scale))  # 1/S in float64, stored as float32
        self._found_inf = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._found_inf |= not bool(torch.isfinite(p.grad).all())  # before unscaling
                    p.grad.mul_(inv)

    def step(self, optimizer) -> None:
        """Unscale (unless unscale_ was called), then optimizer.step() only if nothing overflowed."""
        if self._found_inf is None:
            self.unscale_(optimizer)
        if not self._found_inf:
            optimizer.step()

    def update(self) -> None:
        if self._found_inf:  # overflow: S was too large, and this step was skipped
            self._scale = float(np.float32(self._scale * self.backoff_factor))
            self._good_steps = 0
        else:
            self._good_steps += 1
            if self._good_steps == self.growth_interval:  # growth_interval clean steps in a row
                with np.errstate(over="ignore"):  # float32 rounding may overflow to inf ...
                    grown = np.float32(self._scale * self.growth_factor)
                if np.isfinite(grown):  # ... and then S keeps its value
                    self._scale = float(grown)
                self._good_steps = 0
        self._found_inf = None


# --8<-- [end:scaler]


# --8<-- [start:toy]
def make_toy(seed: int = 0, n: int = 256, dim: int = 16, width: int = 64):
    """Regression data y = tanh(X w) and a 3-layer tanh MLP (float32), seeded."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, dim, generator=g)
    y = torch.tanh(X @ torch.randn(dim, 1, generator=g))
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(dim, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, 1),
    )
    return X, y, model


def pretrain(model, X, y, steps: int = 200, lr: float = 3e-3):
    """Plain fp32 Adam: brings the toy to 'late training', where the loss and gradients are small."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X), y).backward()
        opt.step()
    return model


def all_gradients(model, X, y) -> torch.Tensor:
    """Every activation gradient (output of each layer) and every parameter gradient, fp32, flat."""
    model.zero_grad()
    h, outs = X, []
    for layer in model:
        h = layer(h)
        h.retain_grad()  # keep dL/dh of this intermediate
        outs.append(h)
    torch.nn.functional.mse_loss(h, y).backward()
    grads = [o.grad for o in outs] + [p.grad for p in model.parameters()]
    return torch.cat([t.flatten() for t in grads])


def train_amp(model, X, y, scaler, *, steps: int, lr: float = 0.05, inject_inf_at: int = -1):
    """SGD under fp16 autocast with a loss scaler; log (scale used, stepped?) for each step."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    log = []
    for step in range(steps):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):  # matmuls in fp16, params stay fp32
            loss = torch.nn.functional.mse_loss(model(X), y)
        scaled = scaler.scale(loss)  # the scale is read after scale(): GradScaler makes it lazily
        scale = scaler.get_scale()
        scaled.backward()
        if step == inject_inf_at:
            model[0].weight.grad[0, 0] = math.inf  # an overflow we place ourselves
        before = [p.detach().clone() for p in model.parameters()]
        scaler.step(opt)
        scaler.update()
        moved = any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
        log.append((scale, moved))
    return log


# --8<-- [end:toy]


# --8<-- [start:plot]
def plot_underflow(g: torch.Tensor, scale: float):
    """Top: the three formats on a log2 axis. Bottom: log2|g| before and after ×scale."""
    fig, (top, bot) = plt.subplots(2, 1, figsize=(5.0, 7.0), height_ratios=[1, 1.7])
    fig.set_layout_engine("constrained")
    for row, (name, (e, m)) in enumerate(FORMATS.items()):
        lim = limits(e, m)
        lo, mid, hi = (math.log2(lim[k]) for k in ("min_subnormal", "min_normal", "max"))
        top.plot([lo, mid], [row, row], color=f"C{row}", lw=3, alpha=0.45)  # subnormals: thin
        top.plot([mid, hi], [row, row], color=f"C{row}", lw=9, solid_capstyle="butt")
        mant, ex = f"{lim['max']:.1e}".split("e")  # 65504 stays as is, 3.4e+38 as 3.4 × 10^38
        biggest = f"{lim['max']:.0f}" if hi < 20 else f"${mant} \\times 10^{{{int(ex)}}}$"
        label = f"{name}: $2^{{{lo:.0f}}}$ … {biggest}"  # smallest subnormal … max
        top.annotate(label, (hi, row), (0, 9), textcoords="offset points", ha="right", fontsize=10)
    a = g[g != 0].abs().double().log2().numpy()
    top.axvspan(a.min(), a.max(), color="gray", alpha=0.2)
    top.text((a.min() + a.max()) / 2, 2.45, "本例梯度", ha="center", fontsize=10)
    top.set(yticks=[], ylim=(-0.6, 2.8), xlabel="log2(数值)")
    top.set_title("三种格式能表示的量级\n（粗线：正规数，细线：次正规数）", fontsize=11)

    bins, k = np.arange(-40, 20.5, 0.5), math.log2(scale)
    bot.hist(a, bins=bins, color="C0", alpha=0.6, label="原始梯度")
    bot.hist(a + k, bins=bins, color="C1", alpha=0.6, label=f"乘以 2^{k:.0f} 之后")
    fp16 = limits(*FORMATS["fp16"])
    zero, normal = math.log2(fp16["min_subnormal"]) - 1, math.log2(fp16["min_normal"])  # -25, -14
    bot.axvspan(-40, zero, color="C3", alpha=0.15, label="fp16 下溢为 0")
    bot.axvspan(zero, normal, color="C3", alpha=0.06, label="fp16 次正规数")
    bot.axvline(
        math.log2(fp16["max"]), color="C3", ls="--", lw=1, label=f"fp16 最大值 {fp16['max']:.0f}"
    )
    bot.set(xlim=(-40, 20), xlabel="$\\log_2|g|$", ylabel="个数")
    bot.set_title(f"乘以 2^{k:.0f}：梯度整体移进 fp16 的正规数区间", fontsize=11)
    bot.legend(fontsize=10, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return fig


# --8<-- [end:plot]


if __name__ == "__main__":
    torch.set_num_threads(1)
    X, y, model = make_toy()
    g = all_gradients(pretrain(model, X, y), X, y)
    zero = fp32_to_fp16_bits(g.numpy()) & 0x7FFF == 0
    print(f"{g.numel()} gradients; {zero.mean():.2%} of them are 0 in fp16")
