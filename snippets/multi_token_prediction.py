r"""Multi-token prediction (Gloeckle et al., 2024) at toy scale. A shared causal trunk $f_s$ turns
tokens $x_{1:T}$ into hidden states $z_{1:T}$; $n$ independent heads $f_{h_i}$ and one shared
unembedding $f_u$ turn $z_t$ into a distribution over $x_{t+i}$, and the loss sums the heads'
cross-entropies, $L_n = \sum_{i=1}^{n} \mathrm{CE}(f_u(f_{h_i}(z_t)), x_{t+i})$.

Two mechanisms are implemented: the memory-efficient backward (trunk forward once; each head's
forward and backward in turn, accumulating $\partial L / \partial z$; then one backward through
the trunk), which holds one head's logits at a time instead of $n$; and greedy self-speculative
decoding (blockwise parallel decoding), where heads $2..n$ draft and the next-token head verifies,
so that the output is the next-token head's greedy decoding, in fewer model calls. The trunk here
is a small causal convolution net, not a transformer: both mechanisms only need it to be causal.
"""

# --8<-- [start:imports]
import random

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

# --8<-- [end:imports]


# --8<-- [start:model]
class CausalConv(nn.Module):
    """z_t depends on x_{t-k+1..t} only: a Conv1d padded on the left, plus a residual MLP."""

    def __init__(self, d, k):
        super().__init__()
        self.k = k
        self.conv = nn.Conv1d(d, d, k)
        self.mlp = nn.Sequential(
            nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d)
        )

    def forward(self, h):  # (B, T, d)
        c = self.conv(F.pad(h.transpose(1, 2), (self.k - 1, 0))).transpose(1, 2)  # left pad only
        h = h + F.gelu(c)
        return h + self.mlp(h)


class MTPModel(nn.Module):
    r"""Shared trunk f_s, n independent heads f_{h_i}, shared unembedding f_u (the paper's layout)."""

    def __init__(self, vocab, n_heads, d=64, k=4, layers=2):
        super().__init__()
        self.n_heads = n_heads
        self.embed = nn.Embedding(vocab, d)
        self.trunk_layers = nn.ModuleList(CausalConv(d, k) for _ in range(layers))
        self.heads = nn.ModuleList(  # head i predicts x_{t+i}; the paper uses a transformer layer
            nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
            for _ in range(n_heads)
        )
        self.norm = nn.LayerNorm(d)
        self.unembed = nn.Linear(d, vocab, bias=False)  # f_u, shared by all heads

    def trunk(self, x):  # (B, T) int -> (B, T, d)
        h = self.embed(x)
        for layer in self.trunk_layers:
            h = layer(h)
        return h

    def head_logits(self, z, i):  # head i = 1..n: (B, T, d) -> (B, T, V), row t predicts x_{t+i}
        h = z + self.heads[i - 1](z)  # residual head
        return self.unembed(self.norm(h))

    def forward(self, x):  # all heads at all positions: (n, B, T, V)
        z = self.trunk(x)
        return torch.stack([self.head_logits(z, i) for i in range(1, self.n_heads + 1)])


# --8<-- [end:model]


# --8<-- [start:losses]
def head_loss(logits, x, i):
    """Mean CE of head i: row t predicts x_{t+i}, so the last i rows have no target and are dropped."""
    T = x.shape[1]
    pred = logits[:, : T - i]  # (B, T-i, V): positions t = 0..T-i-1
    return F.cross_entropy(
        pred.reshape(-1, pred.shape[-1]), x[:, i:].reshape(-1)
    )  # targets x_{t+i}


def mtp_backward_naive(model, x):
    """L = Σ_i L_i, one backward: all n heads' logits (and their gradients) are alive at once."""
    z = model.trunk(x)
    logits = [model.head_logits(z, i) for i in range(1, model.n_heads + 1)]
    losses = [head_loss(lg, x, i) for i, lg in enumerate(logits, start=1)]
    sum(losses).backward()
    peak = sum(lg.numel() for lg in logits)  # logits elements alive when backward starts
    return torch.stack(losses).detach(), peak


def mtp_backward_sequential(model, x):
    """Same gradients, one head at a time (Gloeckle et al., Fig. 2): peak = one head's logits."""
    z = model.trunk(x)  # trunk forward once
    z_d = z.detach().requires_grad_()  # cut the graph at the trunk output
    losses, peak = [], 0
    for i in range(1, model.n_heads + 1):
        logits = model.head_logits(z_d, i)  # forward head i
        loss = head_loss(logits, x, i)
        loss.backward()  # into head i, f_u, and z_d.grad += ∂L_i/∂z (accumulated across heads)
        peak = max(peak, logits.numel())
        losses.append(loss.detach())
        del logits, loss  # head i's graph and logits are freed before head i+1
    z.backward(z_d.grad)  # one backward through the trunk with ∂L/∂z = Σ_i ∂L_i/∂z
    return torch.stack(losses), peak


# --8<-- [end:losses]


# --8<-- [start:data]
NEXT_WORD = {  # a word-level Markov chain: which word may follow which, with weights
    "the": {"cat": 4, "dog": 3, "dot": 2},
    "cat": {"sat": 2, "ran": 1},
    "dog": {"ran": 2, "sat": 1},
    "dot": {"and": 1},
    "sat": {"on": 1},
    "ran": {"to": 1},
    "on": {"the": 1},
    "to": {"the": 1},
    "and": {"the": 1},
}
ALPHABET = sorted(set("".join(NEXT_WORD)) | {" "})  # the tokens are characters
STOI = {ch: j for j, ch in enumerate(ALPHABET)}


def make_text(n_chars, seed=0):
    """A walk on NEXT_WORD, words separated by spaces: predictable inside a word, not always after."""
    rng = random.Random(seed)
    words = ["the"]
    while sum(len(w) + 1 for w in words) <= n_chars:  # joined length = this sum - 1
        options = NEXT_WORD[words[-1]]
        words.append(rng.choices(list(options), list(options.values()))[0])
    return " ".join(words)[:n_chars]


def encode(text):
    return torch.tensor([STOI[ch] for ch in text])


def decode(tokens):
    return "".join(ALPHABET[int(t)] for t in tokens)


def train(model, data, steps=300, batch=32, T=32, lr=3e-3, seed=0):
    """AdamW with the sequential backward; returns the per-head losses, shape (steps, n)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        starts = torch.randint(0, len(data) - T, (batch,), generator=gen)
        x = torch.stack([data[s : s + T] for s in starts.tolist()])  # (B, T)
        opt.zero_grad()
        losses, _ = mtp_backward_sequential(model, x)
        opt.step()
        history.append(losses)
    return torch.stack(history)


# --8<-- [end:data]


# --8<-- [start:decode]
@torch.no_grad()
def greedy_decode(model, prompt, n_new):
    """Plain greedy decoding with the next-token head: one model call per new token."""
    seq = list(prompt)
    for _ in range(n_new):
        logits = model(torch.tensor([seq]))[0, 0, -1]  # head 1, last position
        seq.append(int(logits.argmax()))
    return seq, n_new


@torch.no_grad()
def self_speculative_decode(model, prompt, n_new, k=None):
    """Greedy blockwise parallel decoding: heads 2..k draft, head 1 verifies in the next call.

    Returns the tokens, the number of model calls, and per draft slot j = 1..k-1 the counts
    (offered, accepted) of head j+1's drafts.
    """
    k = k or model.n_heads
    seq = list(prompt)
    out = model(torch.tensor([seq]))[:k, 0, -1]  # (k, V) at the last position
    calls = 1
    draft = out.argmax(-1).tolist()  # draft[0]: head 1's greedy token (certain); rest: guesses
    offered, accepted = [0] * (k - 1), [0] * (k - 1)
    target = len(prompt) + n_new
    while len(seq) < target:
        block = draft[: target - len(seq)]  # never run past the requested length
        if len(block) == 1 and len(seq) + 1 == target:  # the last token needs no verification
            seq += block
            break
        cand = seq + block
        out = model(torch.tensor([cand]))[:k, 0]  # (k, len(cand), V): verify and draft in one call
        calls += 1
        verify = out[0].argmax(-1)  # head 1 at every position of cand
        n_ok = 1  # block[0] is head 1's own greedy token
        while n_ok < len(block):
            offered[n_ok - 1] += 1
            if int(verify[len(seq) + n_ok - 1]) != block[n_ok]:  # head 1 after block[:n_ok]
                break
            accepted[n_ok - 1] += 1
            n_ok += 1
        seq += block[:n_ok]
        draft = out[:, len(seq) - 1].argmax(-1).tolist()  # causal: row len(seq)-1 saw only seq
    return seq, calls, list(zip(offered, accepted, strict=True))


# --8<-- [end:decode]


# --8<-- [start:plot]
def plot_results(history, slots, window=20):
    """Top: per-head training loss (moving average). Bottom: acceptance rate per draft slot."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(5.2, 6.8))
    kernel = torch.ones(window) / window
    for i in range(history.shape[1]):
        smooth = F.conv1d(history[:, i].view(1, 1, -1), kernel.view(1, 1, -1))[0, 0]
        ax1.plot(range(window, history.shape[0] + 1), smooth, label=f"头 {i + 1}（预测 t+{i + 1}）")
    ax1.set_xlabel("训练步", fontsize=12)
    ax1.set_ylabel("交叉熵（nat）", fontsize=12)
    ax1.set_title(f"各头训练损失（{window} 步滑动平均）：越远的头越高", fontsize=13)
    ax1.legend(fontsize=11)
    ax1.tick_params(labelsize=11)
    rates = [a / max(o, 1) for o, a in slots]
    ax2.bar([f"头 {j + 2}" for j in range(len(slots))], rates, color="tab:green")
    for j, ((o, a), r) in enumerate(zip(slots, rates, strict=True)):
        ax2.text(j, r + 0.03, f"{r:.2f}（{a}/{o}）", ha="center", fontsize=11)
    ax2.set_ylim(0, 1.2)
    ax2.set_ylabel("接受率", fontsize=12)
    ax2.set_title("草稿被头 1 接受的比例（前面的草稿都已接受时）", fontsize=13)
    ax2.tick_params(labelsize=12)
    fig.tight_layout()
    return fig


# --8<-- [end:plot]
