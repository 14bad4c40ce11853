"""Tests for snippets/multi_token_prediction.py against autograd, brute force and a greedy loop."""

import math
import weakref

import matplotlib.pyplot as plt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.multi_token_prediction import (
    ALPHABET,
    NEXT_WORD,
    MTPModel,
    encode,
    greedy_decode,
    head_loss,
    make_text,
    mtp_backward_naive,
    mtp_backward_sequential,
    plot_results,
    self_speculative_decode,
    train,
)

SETTINGS = settings(max_examples=25, deadline=None)


def _model(vocab, n, d, seed):
    torch.manual_seed(seed)
    return MTPModel(vocab, n, d=d, k=3).double()


def _tokens(vocab, B, T, seed):
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


def _brute_loss(logits, x, i):
    """-mean_{b,t} log softmax(logits[b, t])[x[b, t+i]], one position at a time."""
    B, T = x.shape
    terms = []
    for b in range(B):
        for t in range(T - i):
            row = logits[b, t]
            log_z = torch.log(torch.exp(row - row.max()).sum()) + row.max()
            terms.append(log_z - row[x[b, t + i]])
    return torch.stack(terms).mean()


def _oracle_grads(model, x):
    """Autograd on the summed loss Σ_i L_i, each L_i computed by brute force."""
    T = x.shape[1]
    logits = model(x)  # (n, B, T, V)
    total = sum(_brute_loss(logits[i - 1], x, i) for i in range(1, model.n_heads + 1) if i < T)
    params = list(model.parameters())
    return torch.autograd.grad(total, params, allow_unused=True)


@SETTINGS
@given(
    n=st.integers(1, 4),
    B=st.integers(1, 3),
    extra=st.integers(1, 6),
    vocab=st.integers(2, 9),
    d=st.integers(2, 10),
    seed=st.integers(0, 2**16),
)
def test_sequential_backward_equals_autograd_of_summed_loss(n, B, extra, vocab, d, seed):
    """The per-head sequential backward gives every parameter the gradient of Σ_i L_i (1e-10)."""
    model, x = _model(vocab, n, d, seed), _tokens(vocab, B, n + extra, seed)
    ref = _oracle_grads(model, x)
    for fn in (mtp_backward_sequential, mtp_backward_naive):
        model.zero_grad(set_to_none=True)
        fn(model, x)
        for (name, p), g in zip(model.named_parameters(), ref, strict=True):
            expected = torch.zeros_like(p) if g is None else g
            torch.testing.assert_close(p.grad, expected, rtol=1e-10, atol=1e-10, msg=name)


@SETTINGS
@given(n=st.integers(1, 4), B=st.integers(1, 3), extra=st.integers(1, 5), seed=st.integers(0, 999))
def test_head_losses_equal_brute_force_and_peaks_are_counted(n, B, extra, seed):
    """Head i's loss is the mean CE against x_{t+i}; the peaks are n·B·T·V (naive) and B·T·V."""
    vocab, T = 7, n + extra
    model, x = _model(vocab, n, 6, seed), _tokens(vocab, B, T, seed)
    losses, peak_seq = mtp_backward_sequential(model, x)
    naive_losses, peak_naive = mtp_backward_naive(model, x)
    with torch.no_grad():
        logits = model(x)
        brute = torch.stack([_brute_loss(logits[i - 1], x, i) for i in range(1, n + 1)])
    torch.testing.assert_close(losses, brute, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(naive_losses, brute, rtol=1e-12, atol=1e-12)
    assert peak_naive == n * B * T * vocab
    assert peak_seq == B * T * vocab


def test_head_loss_uses_target_shifted_by_i():
    """Logits that put all mass on x_{t+i} give head_loss ≈ 0 for head i and not for i ± 1."""
    x = torch.tensor([[3, 1, 4, 1, 5, 0, 2, 6]])
    for i in (1, 2, 3):
        logits = torch.full((1, 8, 7), -50.0, dtype=torch.float64)
        for t in range(8 - i):
            logits[0, t, x[0, t + i]] = 50.0
        assert head_loss(logits, x, i).item() < 1e-30
        assert head_loss(logits, x, i + 1).item() > 1.0
        assert head_loss(logits, x, i - 1).item() > 1.0


def _max_logits_alive(fn, model, x):
    """Observe, not count: weak references to every unembedding output; at each new head's
    forward, how many earlier logits tensors are still alive (plus the new one)."""
    refs, alive = [], []

    def hook(module, inputs, output):
        refs.append(weakref.ref(output))
        alive.append(sum(r() is not None for r in refs))

    handle = model.unembed.register_forward_hook(hook)
    try:
        fn(model, x)
    finally:
        handle.remove()
    return max(alive)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_sequential_backward_frees_each_heads_logits(n):
    """Naive: all n heads' logits are alive together; sequential: never more than one."""
    model, x = _model(7, n, 6, 0), _tokens(7, 2, n + 4, 0)
    assert _max_logits_alive(mtp_backward_naive, model, x) == n
    assert _max_logits_alive(mtp_backward_sequential, model, x) == 1


@SETTINGS
@given(T=st.integers(2, 12), j=st.integers(0, 11), seed=st.integers(0, 999))
def test_trunk_and_heads_are_causal(T, j, seed):
    """Changing token j leaves every head's output at positions < j unchanged (causal trunk)."""
    j = j % T
    model, x = _model(5, 3, 6, seed), _tokens(5, 1, T, seed)
    y = x.clone()
    y[0, j] = (y[0, j] + 1) % 5
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :, :j], b[:, :, :j], rtol=0, atol=1e-12)
    assert not torch.allclose(a[:, :, j], b[:, :, j])  # position j itself does see the change


def _plain_greedy(model, prompt, n_new):
    """The oracle: append argmax of the next-token head at the last position, n_new times."""
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(n_new):
            seq.append(int(model(torch.tensor([seq]))[0, 0, -1].argmax()))
    return seq


@SETTINGS
@given(
    n=st.integers(1, 4),
    k=st.integers(1, 4),
    prompt=st.lists(st.integers(0, 5), min_size=1, max_size=5),
    n_new=st.integers(1, 20),
    seed=st.integers(0, 2**16),
)
def test_self_speculative_equals_plain_greedy(n, k, prompt, n_new, seed):
    """Self-speculative output equals plain greedy decoding; calls ≤ n_new, accounting adds up."""
    k = min(k, n)
    model = _model(6, n, 8, seed)
    ref = _plain_greedy(model, prompt, n_new)
    assert greedy_decode(model, prompt, n_new) == (ref, n_new)
    seq, calls, slots = self_speculative_decode(model, prompt, n_new, k=k)
    assert seq == ref
    accepted = sum(a for _, a in slots)
    assert all(0 <= a <= o for o, a in slots)
    assert calls <= n_new
    if k == 1:
        assert calls == n_new and slots == []
    # each call after the first yields one verified token plus its accepted drafts;
    # the final token may be appended without a call
    assert n_new - accepted in (calls - 1, calls)


def test_make_text_follows_the_word_chain():
    """make_text has exactly n_chars characters and every adjacent word pair is allowed."""
    for n_chars in (1, 2, 3, 4, 7, 50):
        assert len(make_text(n_chars, seed=n_chars)) == n_chars
    words = make_text(2000, seed=3).split(" ")[:-1]  # the last word may be cut
    assert all(b in NEXT_WORD[a] for a, b in zip(words, words[1:], strict=False))
    assert set(encode("the cat").tolist()) <= set(range(len(ALPHABET)))


def test_training_lowers_every_head_and_drafts_save_calls():
    """After short training every head's loss drops below ln V and speculation saves calls."""
    torch.manual_seed(0)
    data = encode(make_text(3000))
    model = MTPModel(len(ALPHABET), 3, d=32)
    hist = train(model, data, steps=120, batch=16, T=24, lr=1e-2)
    assert torch.all(hist[-10:].mean(0) < 0.6 * math.log(len(ALPHABET)))
    prompt = encode("the dog ").tolist()
    seq, calls, _ = self_speculative_decode(model, prompt, 30)
    assert seq == _plain_greedy(model, prompt, 30)
    assert calls < 30
    fig = plot_results(hist, [(10, 9), (8, 5)], window=10)
    assert len(fig.axes) == 2
    plt.close(fig)
