r"""Medusa at toy scale. A one-layer causal Transformer LM is trained on a tiny character
corpus; K extra heads on its last hidden state $h_t$ learn to predict $x_{t+k+1}$ while the base
stays frozen (Medusa-1). Decoding: the heads' top-$s_k$ tokens form a Cartesian-product tree of
candidates, one forward pass with a tree attention mask (each node sees the prefix and its own
ancestors, position = prefix length + depth) scores every node, and greedy verification keeps the
longest candidate prefix that agrees with the base model's argmax. The output is the base
model's greedy decoding; only the number of forward passes changes. For sampling, Medusa's typical
acceptance test $p(x) > \min(\epsilon, \delta e^{-H(p)})$ is included (it does not keep the base
model's sampling distribution).
"""

# --8<-- [start:imports]
import itertools
import random

import torch
import torch.nn.functional as F
from torch import nn

# --8<-- [end:imports]


# --8<-- [start:corpus]
WORDS = ["a", "and", "big", "cat", "dog", "house", "mat", "on", "ran", "red", "sat", "the", "tree"]


def make_corpus(n_chars, *, seed=0, n_next=2):
    """Words joined by spaces; each word is followed by one of `n_next` fixed words, uniformly."""
    rng = random.Random(seed)
    follow = {w: rng.sample(WORDS, n_next) for w in WORDS}  # a word-level bigram language
    out, word, size = [], WORDS[0], 0
    while size < n_chars:
        out.append(word)
        size += len(word) + 1
        word = rng.choice(follow[word])
    return " ".join(out)[:n_chars]


# --8<-- [end:corpus]


# --8<-- [start:model]
class ResBlock(nn.Module):
    """h + SiLU(W1 h + b1): the Medusa head's body; W1 = 0 and b1 = 0 at start, so it starts as identity."""

    def __init__(self, d):
        super().__init__()
        self.linear = nn.Linear(d, d)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)  # SiLU(0) = 0; the reference zeroes only W1

    def forward(self, h):
        return h + F.silu(self.linear(h))


class TinyLM(nn.Module):
    """One pre-LN Transformer block, an LM head, and `n_medusa` Medusa heads on the same h_t."""

    def __init__(self, vocab_size, *, d_model=32, n_head=2, max_len=48, n_medusa=3):
        super().__init__()
        self.n_head, self.max_len = n_head, max_len
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)  # learned absolute positions
        self.ln1, self.ln2, self.ln_f = (nn.LayerNorm(d_model) for _ in range(3))
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model)
        )
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.medusa = nn.ModuleList(
            nn.Sequential(ResBlock(d_model), nn.Linear(d_model, vocab_size, bias=False))
            for _ in range(n_medusa)
        )

    def hidden(self, idx, *, pos, mask):
        """h_t for every position; `mask` is bool (T, T), True = may attend (SDPA's convention)."""
        x = self.tok(idx) + self.pos(pos)  # (B, T, C)
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, T, C/H)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, C))
        x = x + self.mlp(self.ln2(x))
        return self.ln_f(x)

    def forward(self, idx, *, pos=None, mask=None):
        """(base logits (B, T, V), Medusa logits (K, B, T, V)); default: positions 0.., causal mask."""
        T = idx.shape[-1]
        pos = torch.arange(T) if pos is None else pos
        mask = torch.ones(T, T, dtype=torch.bool).tril() if mask is None else mask
        h = self.hidden(idx, pos=pos, mask=mask)
        return self.lm_head(h), torch.stack([head(h) for head in self.medusa])


# --8<-- [end:model]


# --8<-- [start:train]
def batches(data, *, steps, batch, seq_len, generator):
    """Random windows (x, y) of the token stream, y shifted by one."""
    for _ in range(steps):
        start = torch.randint(len(data) - seq_len - 1, (batch, 1), generator=generator)
        window = data[start + torch.arange(seq_len + 1)]  # (B, T+1)
        yield window[:, :-1], window[:, 1:]


def train_base(model, data, *, steps=120, batch=24, lr=1e-2, generator):
    """Next-token cross-entropy on the trunk and lm_head (Medusa heads untouched)."""
    params = [p for n, p in model.named_parameters() if not n.startswith("medusa")]
    opt = torch.optim.AdamW(params, lr=lr)
    for x, y in batches(data, steps=steps, batch=batch, seq_len=model.max_len, generator=generator):
        logits, _ = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def train_heads(model, data, *, steps=100, batch=16, lr=1e-2, generator):
    """Medusa-1: base frozen; head k (1-based) at position t learns x_{t+k+1}. Returns per-head loss."""
    for head in model.medusa:
        head[1].weight.data.copy_(
            model.lm_head.weight.data
        )  # start every head as the base's next-token head
    opt = torch.optim.AdamW(model.medusa.parameters(), lr=lr)
    for x, _ in batches(data, steps=steps, batch=batch, seq_len=model.max_len, generator=generator):
        T = x.shape[1]
        with torch.no_grad():
            h = model.hidden(x, pos=torch.arange(T), mask=torch.ones(T, T, dtype=torch.bool).tril())
        losses = [
            F.cross_entropy(
                head(h[:, : T - k - 1]).flatten(0, 1), x[:, k + 1 :].flatten()
            )  # h_t → x_{t+k+1}
            for k, head in enumerate(model.medusa, start=1)
        ]
        opt.zero_grad()
        sum(losses).backward()
        opt.step()
    return [loss.item() for loss in losses]


# --8<-- [end:train]


# --8<-- [start:tree]
def build_tree(widths):
    """Cartesian-product tree: node (i_1, …, i_d) takes head d's i_d-th choice; () is the root."""
    nodes = [()]
    for d in range(1, len(widths) + 1):
        nodes += list(itertools.product(*(range(s) for s in widths[:d])))  # breadth-first order
    index = {node: i for i, node in enumerate(nodes)}
    parents = [-1] + [index[node[:-1]] for node in nodes[1:]]
    return nodes, parents


def tree_mask(parents):
    """(m, m) bool: node i may attend node j iff j is i or one of i's ancestors."""
    m = len(parents)
    mask = torch.zeros(m, m, dtype=torch.bool)
    for i in range(m):
        j = i
        while j != -1:  # walk up to the root
            mask[i, j] = True
            j = parents[j]
    return mask


def verify_inputs(prefix_len, nodes, parents):
    """Positions and mask for [prefix | tree]: the tree sees the whole prefix; position = n + depth."""
    m = len(nodes)
    n = prefix_len
    mask = torch.zeros(n + m, n + m, dtype=torch.bool)
    mask[:n, :n] = torch.ones(n, n, dtype=torch.bool).tril()  # ordinary causal prefix
    mask[n:, :n] = True
    mask[n:, n:] = tree_mask(parents)
    depth = torch.tensor([len(node) for node in nodes])
    pos = torch.cat([torch.arange(n), n + depth])  # depth, not node index
    return pos, mask


def candidates(root, head_logits, nodes):
    """Token of every node: the root is the base's argmax, node (…, i) at depth d is head d's i-th best."""
    width = max((max(node) for node in nodes[1:]), default=-1) + 1
    top = head_logits.topk(max(width, 1), dim=-1).indices  # (K, s_max)
    return torch.tensor([root] + [int(top[len(node) - 1, node[-1]]) for node in nodes[1:]])


# --8<-- [end:tree]


# --8<-- [start:decode]
@torch.no_grad()
def greedy_generate(model, prompt, n_new):
    """Plain greedy decoding; one forward pass (whole sequence, no KV cache) per new token."""
    seq, calls = list(prompt), 0
    for _ in range(n_new):
        logits, _ = model(torch.tensor([seq]))
        calls += 1
        seq.append(int(logits[0, -1].argmax()))
    return seq[len(prompt) :], calls


@torch.no_grad()
def medusa_generate(model, prompt, n_new, widths):
    """Tree candidates + greedy verification. Returns (tokens, forward calls, tokens gained per tree call)."""
    nodes, parents = build_tree(widths)
    seq = list(prompt)
    logits, medusa_logits = model(torch.tensor([seq]))  # prefill: base + heads at the last position
    calls, gains = 1, []
    root, heads = int(logits[0, -1].argmax()), medusa_logits[:, 0, -1]
    while len(seq) - len(prompt) < n_new:
        tokens = candidates(root, heads, nodes)
        pos, mask = verify_inputs(len(seq), nodes, parents)
        logits, medusa_logits = model(
            torch.cat([torch.tensor(seq), tokens])[None], pos=pos, mask=mask
        )
        calls += 1
        best = logits[0, len(seq) :].argmax(-1)  # base's greedy next token after each node
        accepted = [True] * len(nodes)  # the root is the base's own argmax
        for i in range(1, len(nodes)):  # parents come first (breadth-first order)
            accepted[i] = accepted[parents[i]] and int(tokens[i]) == int(best[parents[i]])
        last = max((i for i in range(len(nodes)) if accepted[i]), key=lambda i: len(nodes[i]))
        path = []
        while last != -1:
            path.append(last)
            last = parents[last]
        path.reverse()  # root … deepest accepted node
        seq += [int(tokens[i]) for i in path]
        gains.append(len(path))  # = accepted length + 1
        root = int(best[path[-1]])  # the next root comes free from the same pass
        heads = medusa_logits[:, 0, len(seq) - len(path) + path[-1]]
    return seq[len(prompt) : len(prompt) + n_new], calls, gains


# --8<-- [end:decode]


# --8<-- [start:typical]
def typical_accept(probs, token, *, eps, delta):
    r"""Typical acceptance: accept `token` iff $p(x) > \min(\epsilon, \delta e^{-H(p)})$, $H$ the entropy."""
    entropy = -torch.special.xlogy(probs, probs).sum(-1)  # H(p) = -Σ p log p, with 0·log 0 = 0
    return bool(probs[token] > torch.clamp(delta * torch.exp(-entropy), max=eps))


# --8<-- [end:typical]
