import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.medusa import (
    WORDS,
    ResBlock,
    TinyLM,
    build_tree,
    candidates,
    greedy_generate,
    make_corpus,
    medusa_generate,
    train_base,
    train_heads,
    tree_mask,
    typical_accept,
    verify_inputs,
)

widths_st = st.lists(st.integers(1, 3), min_size=1, max_size=3)


def _random_model(seed, vocab=11):
    torch.manual_seed(seed)
    model = TinyLM(vocab, d_model=16, max_len=40)
    for head in model.medusa:  # give the heads' residual blocks some weight, too
        torch.nn.init.normal_(head[0].linear.weight, std=0.3)
    return model.eval().double()


@pytest.fixture(scope="module")
def trained(one_thread):
    torch.manual_seed(0)
    text = make_corpus(20000, seed=0)
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text])
    gen = torch.Generator().manual_seed(0)
    model = TinyLM(len(chars))
    base_loss = train_base(model, data, generator=gen)
    train_heads(model, data, generator=gen)
    return model.eval().double(), chars, data, base_loss


def _reference_logits(model, idx):
    """The base model's logits recomputed by hand: explicit softmax attention, -inf above the diagonal."""
    T = idx.shape[-1]
    x = model.tok.weight[idx] + model.pos.weight[:T]
    C, H = x.shape[-1], model.n_head
    q, k, v = model.qkv(model.ln1(x)).split(C, dim=-1)
    out = []
    for h in range(H):
        sl = slice(h * C // H, (h + 1) * C // H)
        scores = q[:, sl] @ k[:, sl].T / math.sqrt(C // H)
        scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), -math.inf)
        out.append(scores.softmax(-1) @ v[:, sl])
    x = x + model.proj(torch.cat(out, dim=-1))
    x = x + model.mlp(model.ln2(x))
    return model.lm_head(model.ln_f(x))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), T=st.integers(1, 12))
def test_forward_matches_handwritten_causal_attention(seed, T):
    """TinyLM's SDPA forward with its bool causal mask equals explicit masked softmax attention."""
    model = _random_model(seed)
    idx = torch.randint(11, (T,), generator=torch.Generator().manual_seed(seed))
    logits, medusa_logits = model(idx[None])
    assert torch.allclose(logits[0], _reference_logits(model, idx), atol=1e-12)
    assert medusa_logits.shape == (len(model.medusa), 1, T, 11)


@settings(max_examples=40, deadline=None)
@given(widths=widths_st)
def test_tree_mask_is_union_of_path_causal_masks(widths):
    """The tree mask equals the union of plain causal masks over every root-to-leaf path."""
    nodes, parents = build_tree(widths)
    assert len(nodes) == 1 + sum(math.prod(widths[:d]) for d in range(1, len(widths) + 1))
    assert parents[0] == -1
    assert all(nodes[p] == node[:-1] for node, p in zip(nodes[1:], parents[1:], strict=True))
    expected = torch.zeros(len(nodes), len(nodes), dtype=torch.bool)
    for leaf in itertools.product(*(range(s) for s in widths)):
        path = [nodes.index(leaf[:d]) for d in range(len(leaf) + 1)]  # root … leaf
        for a, b in itertools.product(range(len(path)), repeat=2):
            if b <= a:  # causal along the path
                expected[path[a], path[b]] = True
    assert torch.equal(tree_mask(parents), expected)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), widths=widths_st, n=st.integers(1, 10))
def test_tree_forward_equals_each_path_run_causally(seed, widths, n):
    """One tree-attention pass gives every node the logits of its root-to-node path run causally."""
    model = _random_model(seed)
    gen = torch.Generator().manual_seed(seed)
    prefix = torch.randint(11, (n,), generator=gen)
    nodes, parents = build_tree(widths)
    tokens = torch.randint(11, (len(nodes),), generator=gen)
    pos, mask = verify_inputs(n, nodes, parents)
    logits, medusa_logits = model(torch.cat([prefix, tokens])[None], pos=pos, mask=mask)
    for i, node in enumerate(nodes):
        path = [nodes.index(node[:d]) for d in range(len(node) + 1)]
        ref, ref_medusa = model(torch.cat([prefix, tokens[path]])[None])  # positions 0.., causal
        assert torch.allclose(logits[0, n + i], ref[0, -1], atol=1e-10)
        assert torch.allclose(medusa_logits[:, 0, n + i], ref_medusa[:, 0, -1], atol=1e-10)
    assert torch.allclose(logits[0, :n], model(prefix[None])[0][0], atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), widths=widths_st, root=st.integers(0, 10))
def test_candidates_take_each_heads_ranked_choices(seed, widths, root):
    """Node (…, i) at depth d carries head d's i-th most likely token; the root carries `root`."""
    head_logits = torch.randn(len(widths), 11, generator=torch.Generator().manual_seed(seed))
    nodes, _ = build_tree(widths)
    ranked = torch.argsort(head_logits, dim=-1, descending=True)
    tokens = candidates(root, head_logits, nodes)
    assert int(tokens[0]) == root
    for node, token in zip(nodes[1:], tokens[1:], strict=True):
        assert int(token) == int(ranked[len(node) - 1, node[-1]])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), widths=widths_st, n=st.integers(1, 5), n_new=st.integers(1, 20))
def test_medusa_equals_greedy_random_model(seed, widths, n, n_new):
    """With random weights, Medusa decoding returns exactly the base model's greedy tokens."""
    model = _random_model(seed)
    prompt = torch.randint(11, (n,), generator=torch.Generator().manual_seed(seed)).tolist()
    seq = list(prompt)  # the oracle: a plain argmax loop written here, not the module's
    with torch.no_grad():
        for _ in range(n_new):
            seq.append(int(_reference_logits(model, torch.tensor(seq))[-1].argmax()))
    reference = seq[n:]
    assert greedy_generate(model, prompt, n_new) == (reference, n_new)
    tokens, calls, gains = medusa_generate(model, prompt, n_new, tuple(widths))
    assert tokens == reference
    assert calls == 1 + len(gains) and sum(gains) >= n_new > sum(gains) - gains[-1]
    assert all(1 <= g <= len(widths) + 1 for g in gains)


def test_medusa_equals_greedy_trained_and_saves_calls(trained):
    """On the trained toy LM: same tokens as greedy for every prompt, and fewer forward calls."""
    model, chars, _, base_loss = trained
    assert base_loss < 0.6  # uniform over the characters would be log(len(chars))
    total_greedy = total_medusa = 0
    for word in WORDS:
        prompt = [chars.index(c) for c in word + " "]
        reference, greedy_calls = greedy_generate(model, prompt, 24)
        tokens, calls, gains = medusa_generate(model, prompt, 24, (3, 2, 2))
        assert tokens == reference
        total_greedy, total_medusa = total_greedy + greedy_calls, total_medusa + calls
    assert total_medusa < 0.5 * total_greedy


def _reference_gains(model, prompt, n_new, widths):
    """Tokens gained per tree pass, from plain causal runs: 1 + the longest run of greedy tokens
    x_{n+1}, x_{n+2}, ... that sit among head 1, 2, ...'s top-s_d guesses made at the last prefix position."""
    seq, gains = list(prompt), []
    while len(seq) - len(prompt) < n_new:
        with torch.no_grad():
            _, medusa_logits = model(torch.tensor([seq]))
        ahead, _ = greedy_generate(model, seq, len(widths) + 1)  # the base's own next tokens
        gain = 1
        for d, s in enumerate(widths):
            if ahead[d + 1] not in medusa_logits[d, 0, -1].topk(s).indices.tolist():
                break
            gain += 1
        seq += ahead[:gain]
        gains.append(gain)
    return gains


def test_gains_match_plain_causal_reference(trained):
    """Per tree pass, Medusa gains exactly what the heads at the true last position allow."""
    model, chars, _, _ = trained
    for word in WORDS[:6]:
        prompt = [chars.index(c) for c in word + " "]
        for widths in [(3, 2, 2), (1, 1), (2,)]:
            _, _, gains = medusa_generate(model, prompt, 16, widths)
            assert gains == _reference_gains(model, prompt, 16, widths), (word, widths)


def test_head_k_predicts_token_k_plus_one_ahead(trained):
    """Head k's top-1 accuracy is highest at offset k+1 (its training target), not at k or k+2."""
    model, _, data, _ = trained
    T = model.max_len
    x = data[torch.arange(20)[:, None] * 500 + torch.arange(T)]  # 20 windows, (20, T)
    with torch.no_grad():
        _, medusa_logits = model(x)
    pred = medusa_logits.argmax(-1)  # (K, 20, T)
    for k in range(1, len(model.medusa) + 1):
        acc = {
            off: (pred[k - 1, :, : T - off] == x[:, off:]).double().mean().item()
            for off in (k, k + 1, k + 2)
        }
        assert acc[k + 1] > max(acc[k], acc[k + 2]), (k, acc)


def test_corpus_follows_its_word_bigram():
    """Every word in the corpus is followed by one of at most `n_next` words."""
    words = make_corpus(5000, seed=3, n_next=2).split()[:-1]  # the last word may be cut
    following = {}
    for a, b in itertools.pairwise(words):
        following.setdefault(a, set()).add(b)
    assert set(words) <= set(WORDS)
    assert all(len(nxt) <= 2 for nxt in following.values())


def test_heads_start_as_the_base_next_token_head():
    """A fresh ResBlock is exactly the identity; with lr = 0 every head's logits equal lm_head's."""
    torch.manual_seed(0)
    h = torch.randn(5, 16)
    assert torch.equal(ResBlock(16)(h), h)
    model = TinyLM(7, d_model=16, max_len=12)
    data = torch.randint(7, (200,), generator=torch.Generator().manual_seed(1))
    train_heads(model, data, steps=1, lr=0.0, generator=torch.Generator().manual_seed(2))
    x = data[None, :12]
    with torch.no_grad():
        logits, medusa_logits = model(x)
    for k in range(len(model.medusa)):
        assert torch.equal(medusa_logits[k], logits)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 50),
    eps=st.floats(0.01, 0.6),
    delta=st.one_of(st.floats(0.05, 0.9), st.floats(1.1, 3.0)),  # delta/n below or above 1/n
)
def test_typical_accept_closed_forms(n, eps, delta):
    """Uniform p: exp(-H) = 1/n, accept iff 1/n > min(eps, delta/n); one-hot p: H = 0, only its token."""
    uniform = torch.full((n,), 1 / n, dtype=torch.float64)
    assert typical_accept(uniform, n - 1, eps=eps, delta=delta) == (1 / n > min(eps, delta / n))
    onehot = torch.zeros(n, dtype=torch.float64)
    onehot[0] = 1.0
    assert typical_accept(onehot, 0, eps=eps, delta=delta)
    assert not typical_accept(onehot, 1, eps=eps, delta=delta)


def test_typical_accept_two_point_by_hand():
    """p = (0.9, 0.1): H = 0.325, delta·e^-H = 0.2167 with delta = 0.3; threshold 0.09 or 0.2167."""
    p = torch.tensor([0.9, 0.1], dtype=torch.float64)
    H = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert abs(0.3 * math.exp(-H) - 0.2167) < 1e-4
    assert typical_accept(p, 1, eps=0.09, delta=0.3)  # 0.1 > min(0.09, 0.2167) = 0.09
    assert not typical_accept(p, 1, eps=0.5, delta=0.3)  # 0.1 < min(0.5, 0.2167)
    assert typical_accept(p, 0, eps=0.5, delta=0.3)
