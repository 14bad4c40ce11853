r"""Rotation prediction (Gidaris et al., ICLR 2018) on tiny synthetic glyphs, and a linear probe.

Pretext: rotate every image by $k \cdot 90°$, $k \in \{0, 1, 2, 3\}$, and train a small CNN to
predict $k$ -- the label is made from the image itself. Evaluation: freeze the encoder, fit a
closed-form ridge-regression classifier on its features to predict the glyph class (the
"linear probe"), and compare with the same probe on a randomly initialised encoder.
"""

# --8<-- [start:imports]
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --8<-- [end:imports]

# --8<-- [start:data]
#: 5×5 glyphs, none equal to its own 90°, 180° or 270° rotation ("#" = ink).
GLYPHS = {
    "L": ["#....", "#....", "#....", "#....", "#####"],
    "F": ["#####", "#....", "####.", "#....", "#...."],
    "P": ["####.", "#...#", "####.", "#....", "#...."],
    "J": ["....#", "....#", "....#", "#...#", ".###."],
    "T": ["#####", "..#..", "..#..", "..#..", "..#.."],
    "Y": ["#...#", ".#.#.", "..#..", "..#..", "..#.."],
    "4": ["#..#.", "#..#.", "#####", "...#.", "...#."],
    "7": ["#####", "....#", "...#.", "..#..", ".#..."],
}
#: Glyphs that equal their own rotations: the pretext label cannot be read from them.
SYMMETRIC = {
    "+": ["..#..", "..#..", "#####", "..#..", "..#.."],
    "O": [".###.", "#...#", "#...#", "#...#", ".###."],
}
SIZE = 16  # image side, pixels
SCALE = 2  # each glyph cell becomes SCALE×SCALE pixels: a 10×10 glyph


def glyph_bank(names=tuple(GLYPHS)) -> torch.Tensor:
    """(K, 5·SCALE, 5·SCALE) float templates, 1 = ink."""
    rows = {**GLYPHS, **SYMMETRIC}
    cells = torch.tensor([[[c == "#" for c in row] for row in rows[n]] for n in names])
    return cells.float().repeat_interleave(SCALE, 1).repeat_interleave(SCALE, 2)


def make_glyphs(n: int, *, generator: torch.Generator, noise: float = 0.2, names=tuple(GLYPHS)):
    """n images (n, 1, SIZE, SIZE): a random glyph at a random offset, random contrast, noise."""
    bank = glyph_bank(names)  # (K, g, g)
    k, g = bank.shape[0], bank.shape[1]
    y = torch.randint(k, (n,), generator=generator)
    ox, oy = torch.randint(SIZE - g + 1, (2, n), generator=generator)
    x = torch.zeros(n, 1, SIZE, SIZE)
    for i in range(n):
        x[i, 0, oy[i] : oy[i] + g, ox[i] : ox[i] + g] = bank[y[i]]
    contrast = 0.5 + torch.rand(n, 1, 1, 1, generator=generator)  # ink in [0.5, 1.5)
    x = x * contrast + noise * torch.randn(x.shape, generator=generator)
    return x, y


def rotate_batch(x: torch.Tensor):
    """All four rotations of square images: (4n, 1, H, H) and the pretext label k (90°·k CCW)."""
    xs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    r = torch.arange(4).repeat_interleave(x.shape[0])
    return xs, r


# --8<-- [end:data]


# --8<-- [start:model]
class Encoder(nn.Module):
    """Three conv layers (BatchNorm, ReLU), then global average pooling: a `width`-dim feature per image."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 8, 8, 8)
            nn.Conv2d(8, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, w, 4, 4)
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(2, 3))  # (B, w): global average pool


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (logits.argmax(1) == y).float().mean().item()


# --8<-- [end:model]


# --8<-- [start:probe]
def fit_probe(feats: torch.Tensor, y: torch.Tensor, *, classes: int, ridge: float = 1e-2):
    r"""Linear probe in closed form: ridge regression onto one-hot labels.

    $W = (Z^\top Z + \lambda n I)^{-1} Z^\top Y$, with $Z$ the features standardised by the
    training set's mean and std plus a column of ones (the bias), $Y$ one-hot (n, K).
    """
    feats = feats.double()  # float64 throughout, standardisation included
    mu, sd = feats.mean(0), feats.std(0) + 1e-6

    def design(f):  # (n, d) -> (n, d + 1): standardised features and a bias column
        z = (f.double() - mu) / sd
        return torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], 1)

    z = design(feats)
    onehot = F.one_hot(y, classes).double()  # (n, K)
    gram = z.T @ z + ridge * len(z) * torch.eye(z.shape[1], dtype=z.dtype)
    w = torch.linalg.solve(gram, z.T @ onehot)  # (d + 1, K)
    return lambda f: design(f) @ w  # features -> class scores


@torch.no_grad()
def probe_accuracy(encoder: nn.Module, train, test, *, classes: int) -> float:
    """Fit the probe on the encoder's features of `train`, report accuracy on `test`."""
    encoder.eval()
    probe = fit_probe(encoder(train[0]), train[1], classes=classes)
    return accuracy(probe(encoder(test[0])), test[1])


# --8<-- [end:probe]


# --8<-- [start:pretrain]
def pretrain_rotation(
    *,
    seed: int,
    n_train: int = 512,
    n_test: int = 512,
    epochs: int = 8,
    batch: int = 64,
    lr: float = 1e-2,
    track: bool = False,
):
    """Train encoder + 4-way head on rotation prediction; the glyph labels are never used.

    Returns the trained encoder, a copy of its random initialisation, the data, and rows of
    (epoch, held-out pretext accuracy, probe accuracy): every epoch if `track`, else the last.
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # initial weights
    train, test = make_glyphs(n_train, generator=g), make_glyphs(n_test, generator=g)
    encoder, head = Encoder(), nn.Linear(32, 4)
    random_encoder = Encoder()
    random_encoder.load_state_dict(encoder.state_dict())  # same init, never trained
    xr, r = rotate_batch(train[0])  # pretext data: (4n, 1, H, W), labels k
    xr_test, r_test = rotate_batch(test[0])
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=lr)
    steps = epochs * -(-len(r) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)  # lr -> 0 at the end

    def evaluate(epoch):
        with torch.no_grad():
            encoder.eval()
            pretext = accuracy(head(encoder(xr_test)), r_test)
        return epoch, pretext, probe_accuracy(encoder, train, test, classes=len(GLYPHS))

    history = [evaluate(0)] if track else []
    for epoch in range(1, epochs + 1):
        encoder.train()
        for idx in torch.randperm(len(r), generator=g).split(batch):
            loss = F.cross_entropy(head(encoder(xr[idx])), r[idx])  # labels from the data
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if track or epoch == epochs:
            history.append(evaluate(epoch))
    return encoder, head, random_encoder, (train, test), history


# --8<-- [end:pretrain]


# --8<-- [start:symmetric]
@torch.no_grad()
def pretext_accuracy_by_glyph(encoder: nn.Module, head: nn.Module, *, names, n: int, seed: int):
    """Held-out rotation accuracy on fresh images of each named glyph, one glyph at a time."""
    encoder.eval()
    out = {}
    for name in names:
        x, _ = make_glyphs(n, generator=torch.Generator().manual_seed(seed), names=(name,))
        xr, r = rotate_batch(x)
        out[name] = accuracy(head(encoder(xr)), r)
    return out


# --8<-- [end:symmetric]


# --8<-- [start:plot]
def plot_history(history):
    """Held-out pretext accuracy and linear-probe accuracy against pretraining epochs."""
    ep, pre, probe = (np.array(c) for c in zip(*history, strict=True))
    fig, ax = plt.subplots(figsize=(5.0, 3.4), layout="constrained")
    ax.plot(ep, pre, "o-", label="旋转预测（前置任务，4 类）")
    ax.plot(ep, probe, "s-", label="线性探针（字形分类，8 类）")
    ax.axhline(1 / 4, color="C0", ls=":", lw=1)
    ax.axhline(1 / len(GLYPHS), color="C1", ls=":", lw=1)
    ax.text(ep[-1], 1 / 4 + 0.015, "旋转的随机猜测 1/4", color="C0", ha="right", fontsize=10)
    ax.text(
        ep[-1],
        1 / len(GLYPHS) + 0.015,
        f"字形的随机猜测 1/{len(GLYPHS)}",
        color="C1",
        ha="right",
        fontsize=10,
    )
    ax.set(xlabel="预训练轮数（第 0 轮 = 随机初始化）", ylabel="测试集准确率", ylim=(0, 1.05))
    ax.set_title("前置任务学会了，探针也跟着变好", fontsize=12)
    ax.legend(loc="center right")  # the empty band between the chance lines and the curves
    ax.grid(alpha=0.3)
    return fig


# --8<-- [end:plot]

if __name__ == "__main__":
    torch.set_num_threads(1)
    enc, head, rnd, (train, test), hist = pretrain_rotation(seed=0, track=True)
    for e, a, p in hist:
        print(f"epoch {e}: pretext {a:.3f}  probe {p:.3f}")
    print("random-init probe", probe_accuracy(rnd, train, test, classes=len(GLYPHS)))
    print(pretext_accuracy_by_glyph(enc, head, names=[*GLYPHS, *SYMMETRIC], n=256, seed=1))
