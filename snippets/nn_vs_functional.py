"""`torch.nn.Xxx` vs `torch.nn.functional.xxx`: one tiny CNN (conv → BatchNorm → ReLU → dropout →
pool → linear) written twice, once as an `nn.Module` that owns its state (parameters, buffers,
the training flag, hooks) and once as a pure function `cnn_forward(params, buffers, x, *,
training)` that receives all of it as arguments; what `nn.Conv2d.forward` really passes to
`F.conv2d`; per-sample gradients with `torch.func` (on the function and, through
`functional_call`, on the unchanged module); why train-mode BatchNorm has no per-sample gradient;
and the classic pitfalls (unregistered tensors, `F.dropout`'s `training=True` default).
"""

# --8<-- [start:imports]
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import LogNorm
from matplotlib.patches import FancyBboxPatch
from torch import nn
from torch.func import functional_call, grad, vmap

# --8<-- [end:imports]


# --8<-- [start:module]
class TinyCNN(nn.Module):
    """conv3x3 → BatchNorm2d → ReLU → Dropout → global avg pool → Linear."""

    def __init__(self, in_ch: int = 1, ch: int = 4, n_classes: int = 3, p: float = 0.5):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, ch, kernel_size=3, padding=1)  # weight (ch, in_ch, 3, 3)
        self.bn = nn.BatchNorm2d(ch)  # params weight/bias (ch,), buffers running_mean/var (ch,)
        self.relu = nn.ReLU()
        self.drop = nn.Dropout(p)  # reads self.training at call time
        self.pool = nn.AdaptiveAvgPool2d(1)  # (B, ch, H, W) -> (B, ch, 1, 1)
        self.fc = nn.Linear(ch, n_classes)  # weight (n_classes, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, in_ch, H, W)
        h = self.drop(self.relu(self.bn(self.conv(x))))  # (B, ch, H, W)
        return self.fc(self.pool(h).flatten(1))  # (B, n_classes)


def make_model(seed: int = 0, **kwargs) -> TinyCNN:
    """A `TinyCNN` whose initial weights depend only on `seed` (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyCNN(**kwargs)
    return model


# --8<-- [end:module]


# --8<-- [start:functional]
def cnn_forward(
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
    *,
    training: bool,
    p: float = 0.5,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """The same network as a function: every tensor and every flag is an argument.

    Keys follow `TinyCNN.state_dict()`, so `dict(model.named_parameters())` plugs straight in.
    In training mode `F.batch_norm` updates `buffers["bn.running_*"]` in place, as the module does.
    """
    h = F.conv2d(x, params["conv.weight"], params["conv.bias"], stride=1, padding=1)
    h = F.batch_norm(
        h,
        buffers["bn.running_mean"],  # required: used in eval, updated in train
        buffers["bn.running_var"],
        params["bn.weight"],
        params["bn.bias"],
        training=training,  # F.batch_norm defaults to training=False
        momentum=momentum,
        eps=eps,
    )
    h = F.relu(h)
    h = F.dropout(h, p=p, training=training)  # F.dropout defaults to training=True!
    h = F.adaptive_avg_pool2d(h, 1).flatten(1)  # (B, ch)
    return F.linear(h, params["fc.weight"], params["fc.bias"])  # (B, n_classes)


def split_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Detached copies of a module's parameters and buffers, as two plain dicts."""
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    return params, buffers


# --8<-- [end:functional]


# --8<-- [start:conv]
def conv2d_functional(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """What `nn.Conv2d.forward` computes, with `F` only (integer padding, as in `_conv_forward`).

    weight: (C_out, C_in / groups, kH, kW). For padding_mode "reflect" / "replicate" / "circular"
    the module pads with `F.pad` first and then convolves with padding 0.
    """
    if padding_mode != "zeros":
        x = F.pad(x, (padding,) * 4, mode=padding_mode)  # (left, right, top, bottom)
        padding = 0
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


# --8<-- [end:conv]


# --8<-- [start:registration]
class PlainAttr(nn.Module):
    """Stores its running statistic as a plain tensor attribute: nn.Module never sees it."""

    def __init__(self, ch: int):
        super().__init__()
        self.stat = torch.zeros(ch)

    def forward(self, x):
        w = nn.Parameter(torch.ones(x.shape[-1]))  # created in forward: a new, unseen tensor
        return x * w + self.stat


class Registered(nn.Module):
    """The same state, registered: a buffer for the statistic, a Parameter for the weight."""

    def __init__(self, ch: int):
        super().__init__()
        self.register_buffer("stat", torch.zeros(ch))  # in state_dict, follows .to()/.double()
        self.w = nn.Parameter(torch.ones(ch))  # assignment to an attribute registers it

    def forward(self, x):
        return x * self.w + self.stat


# --8<-- [end:registration]


# --8<-- [start:bn_by_hand]
def bn_running_update(
    x: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor, momentum: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One train-mode update of BatchNorm2d's buffers, from the formula.

    $\hat\mu \leftarrow (1-m)\,\hat\mu + m\,\mu_B$, $\hat\sigma^2 \leftarrow (1-m)\,\hat\sigma^2
    + m\,\frac{n}{n-1}\sigma_B^2$ with $n = B \cdot H \cdot W$ values per channel.
    """
    mean = x.mean(dim=(0, 2, 3))  # (C,) batch mean μ_B
    var_unbiased = x.var(dim=(0, 2, 3), unbiased=True)  # (C,) divides by n - 1
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var_unbiased
    return new_mean, new_var


# --8<-- [end:bn_by_hand]


# --8<-- [start:per_sample]
def module_as_function(model: nn.Module, buffers: dict[str, torch.Tensor]):
    """The unchanged module as f(params, x): functional_call swaps `params` in for one call."""
    return lambda p, xb: functional_call(model, (p, buffers), (xb,))


def per_sample_grads(f, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
    r"""$g_i = \nabla_\theta \ell(f(\theta, x_i), y_i)$ for every sample at once: vmap over grad.

    `f(params, x_batch) -> logits`: `cnn_forward` with fixed buffers, or `module_as_function`.
    Returns {name: (B, *param.shape)}.
    """

    def loss_one(p, xi, yi):  # xi: (in_ch, H, W), yi: () -> scalar loss of one sample
        return F.cross_entropy(f(p, xi.unsqueeze(0)), yi.unsqueeze(0))

    # grad differentiates w.r.t. the first argument (the params dict); vmap maps over samples
    return vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)


def batch_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """∇θ of the batch-mean cross-entropy by one backward() (updates train-mode BN buffers)."""
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return {k: p.grad.detach().clone() for k, p in model.named_parameters()}


def loop_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample gradients the slow way: one backward() on each batch of one sample."""
    rows = [batch_grads(model, x[i : i + 1], y[i : i + 1]) for i in range(x.shape[0])]
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


# --8<-- [end:per_sample]


# --8<-- [start:coupling]
def norm_variants(model: TinyCNN) -> dict[str, nn.Module]:
    """Copies of `model` with dropout off and three normalisations: BN train, BN eval, GroupNorm."""
    bn_train = copy.deepcopy(model).eval()
    bn_train.bn.train()  # batch statistics: every sample is normalised with the whole batch
    gn = copy.deepcopy(model).eval()
    ch = gn.bn.num_features
    gn.bn = nn.GroupNorm(min(32, ch), ch)  # Opacus's BatchNorm fixer: per-sample statistics
    return {"BatchNorm, train()": bn_train, "BatchNorm, eval()": copy.deepcopy(model).eval(),
            "GroupNorm": gn}  # fmt: skip


def sample_coupling(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""(B, B) matrix $C_{ij} = \lVert \partial\,\mathrm{logits}_i / \partial x_j \rVert_F$."""
    jac = torch.autograd.functional.jacobian(model, x)  # (B, K, B, C, H, W)
    return jac.pow(2).sum(dim=(1, 3, 4, 5)).sqrt()


def decomposition_gap(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    r"""$\lVert \frac1B\sum_i g_i^{(1)} - g_{\text{batch}} \rVert / \lVert g_{\text{batch}} \rVert$.

    $g_i^{(1)}$: gradient on sample i alone (batch of one); 0 when samples do not interact.
    """
    g_batch = batch_grads(model, x, y)
    g_loop = loop_grads(model, x, y)
    diff = torch.cat([(g_loop[k].mean(0) - g_batch[k]).flatten() for k in g_batch])
    return (diff.norm() / torch.cat([g.flatten() for g in g_batch.values()]).norm()).item()


def plot_coupling(mats: dict[str, torch.Tensor], floor: float = 1e-3):
    """One heatmap per variant, two to a row, log colour scale: how much sample j moves sample i."""
    rows = len(mats) // 2 + 1  # room for every heatmap and the colour bar
    fig, axes = plt.subplots(rows, 2, figsize=(5.0, 2.7 * rows), layout="constrained")
    axes = list(axes.flat)
    vmax = max(m.max().item() for m in mats.values())
    cmap = plt.get_cmap("viridis").with_extremes(under="white")  # exactly 0 -> white
    for ax, (name, m) in zip(axes, mats.items(), strict=False):
        im = ax.imshow(m.numpy(), cmap=cmap, norm=LogNorm(vmin=floor, vmax=vmax))
        ax.set_title(name, fontsize=11)
        ax.set(xlabel="输入样本 j", ylabel="样本 i 的 logits", xticks=[], yticks=[])
    spare, *unused = axes[len(mats) :]
    spare.axis("off")
    bar = spare.inset_axes((0.05, 0.5, 0.9, 0.08))
    fig.colorbar(im, cax=bar, orientation="horizontal", extend="min", label="|d logits_i / d x_j|")
    for ax in unused:
        ax.remove()
    fig.suptitle("只有 train() 模式的 BatchNorm 让样本互相影响", fontsize=12)
    return fig


# --8<-- [end:coupling]


# --8<-- [start:dropout_stats]
def dropout_stats(ps: list[float], *, n: int = 20_000, seed: int = 0) -> dict[str, np.ndarray]:
    """For three kinds of dropout on a ones-tensor: rows (p, zeroed fraction, output mean)."""
    x = torch.ones(n)
    layer = nn.Dropout()
    kinds = {
        "nn.Dropout, train()": lambda p: layer.train()(x),
        "nn.Dropout, eval()": lambda p: layer.eval()(x),
        # the layer is in eval mode, but F.dropout never asks it: training=True by default
        "F.dropout(x, p), eval()": lambda p: F.dropout(x, p),
    }
    out = {k: [] for k in kinds}
    with torch.random.fork_rng(devices=[]):  # nn.Dropout takes no generator: seed a forked RNG
        torch.manual_seed(seed)
        for p in ps:
            layer.p = p
            for name, fn in kinds.items():
                y = fn(p)  # kept entries are scaled by 1/(1-p), so E[y] = 1 in every case
                out[name].append([p, (y == 0).float().mean().item(), y.mean().item()])
    return {k: np.array(v) for k, v in out.items()}


def plot_dropout_stats(stats: dict[str, np.ndarray]):
    """Top: zeroed fraction vs p (target y = p in train mode). Bottom: output mean vs p."""
    fig, axes = plt.subplots(2, 1, figsize=(5.0, 7.2), sharex=True, layout="constrained")
    fig.get_layout_engine().set(h_pad=0.12)
    ps = next(iter(stats.values()))[:, 0]
    axes[0].plot(ps, ps, color="0.85", lw=6, label="y = p（训练时的目标）")
    for (label, rows), style in zip(stats.items(), ["o-", "s-", "x--"], strict=True):
        axes[0].plot(rows[:, 0], rows[:, 1], style, label=label)
        axes[1].plot(rows[:, 0], rows[:, 2], style, label=label)
    axes[0].set(ylabel="被置零的比例")
    axes[1].set(xlabel="dropout 概率 p", ylabel="输出均值（输入全为 1）", ylim=(0.8, 1.2))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", fontsize=10)
    fig.suptitle("model.eval() 关掉的是 nn.Dropout，不是 F.dropout", fontsize=12)
    return fig


# --8<-- [end:dropout_stats]


# --8<-- [start:diagram]
def _box(ax, xy, w, h, text, color):
    """A rounded box with centred text (fontsize 10)."""
    ax.add_patch(FancyBboxPatch(xy, w, h, boxstyle="round,pad=0.03", fc=color, ec="0.3"))
    ax.text(xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", fontsize=10)


def draw_state_diagram():
    """Where state lives: inside the Module (left) vs in the call's arguments (right)."""
    # 5.1 in, not the usual 6.4: on a phone the image is scaled to the screen, so a narrower
    # figure shows its 10 pt text larger; the axes fill the figure (no margins to lay out)
    fig = plt.figure(figsize=(5.1, 4.5))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set(xlim=(0, 10), ylim=(0, 6.3))
    ax.axis("off")
    # left: the module object owns everything; a call passes only x
    ax.add_patch(FancyBboxPatch((0.1, 0.1), 4.7, 5.5, boxstyle="round,pad=0.05", fc="#eef3fb"))
    ax.text(2.45, 5.9, "nn.Module：y = model(x)", ha="center", fontsize=11, weight="bold")
    left = [  # (x, y, width, height, label, colour)
        (0.3, 4.25, 4.3, 1.1, "参数 → 优化器\nconv.*, bn.weight/bias, fc.*", "#cfe0f7"),
        (0.3, 2.95, 4.3, 1.05, "buffer → state_dict、.to()\nbn.running_mean/var", "#d8eed8"),
        (0.3, 1.45, 2.05, 1.25, "self.training\ntrain()/eval()", "#f9e3c6"),
        (2.55, 1.45, 2.05, 1.25, "钩子\n由 model(x)\n调用", "#f3d4de"),
        (0.3, 0.3, 4.3, 0.9, "forward(x) 读取 self.*", "white"),
    ]
    for x0, y0, w, h, text, color in left:
        _box(ax, (x0, y0), w, h, text, color)
    # right: a stateless function; every piece of state arrives as an argument
    ax.text(7.5, 5.9, "函数式：y = f(...)", ha="center", fontsize=11, weight="bold")
    args = [("params", "#cfe0f7"), ("buffers", "#d8eed8"), ("x", "white"), ("training", "#f9e3c6")]
    for i, (name, color) in enumerate(args):  # a 2 x 2 grid of arguments
        _box(ax, (5.3 + (i % 2) * 2.4, 4.6 - (i // 2) * 1.0), 2.0, 0.75, name, color)
    ax.annotate("", xy=(7.5, 2.6), xytext=(7.5, 3.5), arrowprops={"arrowstyle": "-|>", "lw": 2})
    _box(ax, (5.3, 0.3), 4.4, 2.2, "F.conv2d, F.batch_norm,\nF.relu, F.dropout,\npool, F.linear\n（自己不存状态）", "white")  # fmt: skip
    return fig


# --8<-- [end:diagram]
