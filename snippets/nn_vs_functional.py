"""`torch.nn.Xxx` vs `torch.nn.functional.xxx`: one tiny CNN (conv → BatchNorm → ReLU → dropout →
pool → linear) written twice, once as an `nn.Module` that owns its state (parameters, buffers,
the training flag, hooks) and once as a pure function `cnn_forward(params, buffers, x, *,
training)` that receives all of it as arguments; plus the classic pitfalls (unregistered
tensors, `F.dropout`'s `training=True` default, `F.batch_norm`'s running statistics) and the
payoff of the functional style: per-sample gradients with `torch.func.vmap` and `grad`.
"""

# --8<-- [start:imports]
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
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
def per_sample_grads(
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """∂loss_i/∂θ for every sample i at once: vmap over grad of a one-sample loss (eval mode)."""

    def loss_one(p, xi, yi):  # xi: (in_ch, H, W), yi: () -> scalar loss
        logits = cnn_forward(p, buffers, xi.unsqueeze(0), training=False)  # (1, n_classes)
        return F.cross_entropy(logits, yi.unsqueeze(0))

    # grad differentiates w.r.t. the first argument (the params dict); vmap maps over samples
    return vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)  # each: (B, *param.shape)


# --8<-- [end:per_sample]


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
    """Left: zeroed fraction vs p (target y = p in train mode). Right: output mean vs p."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    ps = next(iter(stats.values()))[:, 0]
    axes[0].plot(ps, ps, color="0.85", lw=6, label="y = p")
    for (label, rows), style in zip(stats.items(), ["o-", "s-", "x--"], strict=True):
        axes[0].plot(rows[:, 0], rows[:, 1], style, label=label)
        axes[1].plot(rows[:, 0], rows[:, 2], style, label=label)
    axes[0].set(xlabel="dropout p", ylabel="fraction of outputs zeroed")
    axes[1].set(xlabel="dropout p", ylabel="mean output (input = 1)", ylim=(0.8, 1.2))
    axes[0].legend(fontsize=7)
    fig.suptitle("model.eval() switches nn.Dropout off, not F.dropout(x, p)", fontsize=10)
    fig.tight_layout()
    return fig


# --8<-- [end:dropout_stats]


# --8<-- [start:diagram]
def _box(ax, xy, w, h, text, color, fontsize=9):
    ax.add_patch(FancyBboxPatch(xy, w, h, boxstyle="round,pad=0.02", fc=color, ec="0.3"))
    ax.text(xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", fontsize=fontsize)


def draw_state_diagram():
    """Where state lives: inside the Module (left) vs in the call's arguments (right)."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.set(xlim=(0, 10), ylim=(0, 5))
    ax.axis("off")
    # left: the module object owns everything; a call passes only x
    ax.add_patch(FancyBboxPatch((0.1, 0.15), 4.6, 4.2, boxstyle="round,pad=0.05", fc="#eef3fb"))
    ax.text(2.4, 4.65, "nn.Module:  y = model(x)", ha="center", fontsize=11, weight="bold")
    _box(
        ax,
        (0.3, 3.2),
        4.2,
        0.9,
        "parameters  (model.parameters() -> optimizer)\n"
        "conv.weight, conv.bias, bn.weight, bn.bias, fc.*",
        "#cfe0f7",
        8,
    )
    _box(
        ax,
        (0.3, 2.1),
        4.2,
        0.85,
        "buffers  (register_buffer -> state_dict, .to())\nbn.running_mean, bn.running_var, ...",
        "#d8eed8",
        8,
    )
    _box(ax, (0.3, 1.15), 1.75, 0.7, "self.training\n<- train() / eval()", "#f9e3c6", 8)
    _box(ax, (2.2, 1.15), 2.3, 0.7, "forward hooks\n<- register_forward_hook", "#f3d4de", 8)
    _box(ax, (0.3, 0.3), 4.2, 0.6, "forward(x) reads all of the above", "white", 9)
    # right: a stateless function; every piece of state arrives as an argument
    ax.text(
        7.55, 4.65, "functional:  y = cnn_forward(...)", ha="center", fontsize=11, weight="bold"
    )
    args = [("params\ndict", "#cfe0f7"), ("buffers\ndict", "#d8eed8"), ("x", "white")]
    args.append(("training=\nTrue/False", "#f9e3c6"))
    for i, (name, color) in enumerate(args):
        x0 = 5.3 + i * 1.15
        _box(ax, (x0, 3.2), 1.0, 0.9, name, color, 8)
        ax.annotate("", xy=(7.55, 1.65), xytext=(x0 + 0.5, 3.15), arrowprops={"arrowstyle": "->"})
    _box(
        ax,
        (5.6, 0.6),
        3.9,
        1.0,
        "F.conv2d -> F.batch_norm -> F.relu\n"
        "-> F.dropout -> pool -> F.linear\n(no state of its own)",
        "white",
        8,
    )
    return fig


# --8<-- [end:diagram]


if __name__ == "__main__":
    model = make_model(0)
    x = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    params, buffers = split_state(model)
    model.eval()
    same = torch.equal(model(x), cnn_forward(params, buffers, x, training=False))
    print(f"eval: module == function: {same}")
    print(
        f"eval: functional_call == model(x): {torch.equal(functional_call(model, params, (x,)), model(x))}"
    )
    model.train()
    torch.manual_seed(2)
    y_mod = model(x)
    torch.manual_seed(2)
    y_fn = cnn_forward(params, buffers, x, training=True)
    print(f"train (same seed): module == function: {torch.equal(y_mod, y_fn)}")
    same_stats = torch.equal(model.bn.running_var, buffers["bn.running_var"])
    print(f"train: running_var updated identically: {same_stats}")
