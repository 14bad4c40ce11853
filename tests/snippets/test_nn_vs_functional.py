"""Tests for snippets.nn_vs_functional: the functional CNN against PyTorch's own modules."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from snippets.nn_vs_functional import (
    PlainAttr,
    Registered,
    bn_running_update,
    cnn_forward,
    dropout_stats,
    make_model,
    per_sample_grads,
    split_state,
)

SETTINGS = settings(max_examples=25, deadline=None)
shapes = st.fixed_dictionaries(
    {
        "batch": st.integers(2, 6),
        "in_ch": st.integers(1, 3),
        "ch": st.integers(1, 5),
        "hw": st.integers(1, 7),
        "seed": st.integers(0, 2**16),
    }
)


def _setup(batch, in_ch, ch, hw, seed):
    model = make_model(seed, in_ch=in_ch, ch=ch, n_classes=3)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, in_ch, hw, hw, generator=g)
    with torch.no_grad():  # non-trivial running stats so eval mode is not an identity BN
        model.bn.running_mean.normal_(generator=g)
        model.bn.running_var.uniform_(0.5, 2.0, generator=g)
    return model, x


@SETTINGS
@given(shapes)
def test_eval_module_equals_functional(s):
    """In eval mode TinyCNN(x) and cnn_forward(..., training=False) are bit-identical."""
    model, x = _setup(**s)
    params, buffers = split_state(model)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), cnn_forward(params, buffers, x, training=False))


@SETTINGS
@given(shapes)
def test_train_module_equals_functional_same_seed(s):
    """In train mode with one seed, outputs and updated running stats are bit-identical."""
    model, x = _setup(**s)
    params, buffers = split_state(model)
    model.train()
    torch.manual_seed(s["seed"])
    y_module = model(x)
    torch.manual_seed(s["seed"])
    y_fn = cnn_forward(params, buffers, x, training=True)
    assert torch.equal(y_module, y_fn)
    assert torch.equal(model.bn.running_mean, buffers["bn.running_mean"])
    assert torch.equal(model.bn.running_var, buffers["bn.running_var"])


def test_functional_call_matches_model_and_cnn_forward():
    """functional_call(model, state) equals model(x); with swapped params it equals cnn_forward."""
    model, x = _setup(batch=4, in_ch=2, ch=3, hw=5, seed=7)
    model.eval()
    params, buffers = split_state(model)
    y = model(x)
    assert torch.equal(functional_call(model, {**params, **buffers}, (x,)), y)
    new_params = {k: v + 0.1 for k, v in params.items()}
    y_new = functional_call(model, (new_params, buffers), (x,))
    assert torch.equal(y_new, cnn_forward(new_params, buffers, x, training=False))
    assert not torch.equal(y_new, y)
    assert torch.equal(model(x), y)  # the module's own parameters were not touched


@SETTINGS
@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(0, 2),
    st.sampled_from([1, 3, 5]),
    st.integers(0, 2**16),
)
def test_conv2d_module_equals_functional(cin, cout, stride, padding, k, seed):
    """nn.Conv2d(x) equals F.conv2d(x, m.weight, m.bias, m.stride, m.padding) exactly."""
    torch.manual_seed(seed)
    m = nn.Conv2d(cin, cout, k, stride=stride, padding=padding)
    x = torch.randn(2, cin, 7, 7)
    with torch.no_grad():
        assert torch.equal(m(x), F.conv2d(x, m.weight, m.bias, m.stride, m.padding))


def test_dropout_eval_is_identity_but_functional_still_drops():
    """After eval() nn.Dropout returns x unchanged; F.dropout(x, p) still zeroes ~p of it."""
    x = torch.ones(10_000)
    layer = nn.Dropout(0.5).eval()
    assert torch.equal(layer(x), x)
    torch.manual_seed(0)
    y = F.dropout(x, 0.5)
    frac_zero = (y == 0).float().mean().item()
    assert 0.45 < frac_zero < 0.55  # Binomial(10^4, 0.5)/10^4 has std 0.005
    assert torch.equal(y[y != 0], torch.full_like(y[y != 0], 2.0))  # kept entries scaled 1/(1-p)
    assert torch.equal(F.dropout(x, 0.5, training=False), x)


@SETTINGS
@given(shapes)
def test_bn_running_stats_match_hand_computation(s):
    """Train-mode BatchNorm2d buffers follow momentum 0.1 with unbiased var; eval leaves them."""
    model, x = _setup(**s)
    bn = model.bn
    h = model.conv(x).detach()
    expected_mean, expected_var = bn_running_update(h, bn.running_mean, bn.running_var, 0.1)
    # the hand formula, written out independently once more with torch.var(correction=1)
    n = h.numel() / h.shape[1]
    mu = h.sum(dim=(0, 2, 3)) / n
    var_u = ((h - mu[None, :, None, None]) ** 2).sum(dim=(0, 2, 3)) / (n - 1)
    assert torch.allclose(expected_var, 0.9 * bn.running_var + 0.1 * var_u, atol=1e-6)
    bn.train()
    bn(h)
    assert torch.allclose(bn.running_mean, expected_mean, atol=1e-6, rtol=1e-5)
    assert torch.allclose(bn.running_var, expected_var, atol=1e-6, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    before = [t.clone() for t in bn.buffers()]
    bn.eval()
    bn(h)
    assert all(torch.equal(a, b) for a, b in zip(before, bn.buffers(), strict=True))


def test_forgetting_training_flag_freezes_running_stats():
    """F.batch_norm's default training=False uses and never updates the running stats."""
    x = torch.randn(8, 3, 4, 4) * 3 + 5
    rm, rv = torch.zeros(3), torch.ones(3)
    y = F.batch_norm(x, rm, rv)  # silently eval mode
    assert torch.equal(rm, torch.zeros(3)) and torch.equal(rv, torch.ones(3))
    assert torch.allclose(y, x / torch.sqrt(torch.tensor(1 + 1e-5)))
    with pytest.raises(RuntimeError, match="running_mean must be defined"):
        F.batch_norm(x, None, None)


def test_forward_hook_sees_functional_intermediate():
    """A forward hook on model.bn captures exactly F.batch_norm(F.conv2d(x)) from the dicts."""
    model, x = _setup(batch=3, in_ch=1, ch=4, hw=6, seed=3)
    model.eval()
    params, buffers = split_state(model)
    seen = {}
    handle = model.bn.register_forward_hook(lambda mod, inp, out: seen.setdefault("bn", out))
    model(x)
    handle.remove()
    h = F.conv2d(x, params["conv.weight"], params["conv.bias"], padding=1)
    expected = F.batch_norm(
        h,
        buffers["bn.running_mean"],
        buffers["bn.running_var"],
        params["bn.weight"],
        params["bn.bias"],
    )
    assert torch.equal(seen["bn"].detach(), expected)


def test_registration_pitfall():
    """Plain tensor attributes and Parameters made in forward are invisible to nn.Module."""
    plain, reg = PlainAttr(3), Registered(3)
    assert list(plain.state_dict()) == [] and list(plain.parameters()) == []
    assert sorted(reg.state_dict()) == ["stat", "w"]
    assert [n for n, _ in reg.named_parameters()] == ["w"]
    assert [n for n, _ in reg.named_buffers()] == ["stat"]
    plain.double()
    reg.double()
    assert plain.stat.dtype == torch.float32  # not converted: nn.Module does not know it
    assert reg.stat.dtype == torch.float64 and reg.w.dtype == torch.float64
    x = torch.randn(2, 3, dtype=torch.float64)
    assert torch.equal(plain(x), reg(x))  # same maths, different bookkeeping


def test_per_sample_grads_match_loop():
    """vmap(grad(...)) per-sample gradients equal a Python loop of .backward() calls."""
    model, x = _setup(batch=5, in_ch=1, ch=4, hw=6, seed=11)
    y = torch.tensor([0, 2, 1, 1, 0])
    model.eval()
    params, buffers = split_state(model)
    grads = per_sample_grads(params, buffers, x, y)
    for i in range(x.shape[0]):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        for name, p in model.named_parameters():
            assert torch.allclose(grads[name][i], p.grad, atol=1e-6, rtol=1e-5), name
    # the batch-mean gradient is the mean of per-sample gradients
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(grads[name].mean(0), p.grad, atol=1e-6, rtol=1e-5), name


def test_dropout_stats_closed_form():
    """Zeroed fraction ≈ p (train, F.dropout) or 0 (eval); output mean ≈ 1 in all three cases."""
    ps = [0.0, 0.25, 0.5, 0.75]
    n = 20_000
    stats = dropout_stats(ps, n=n, seed=0)
    for name, rows in stats.items():
        assert rows[:, 0].tolist() == ps
        target = [0.0] * len(ps) if "eval()" in name and "F." not in name else ps
        tol = [5 * (p * (1 - p) / n) ** 0.5 + 1e-9 for p in ps]  # 5 binomial std devs
        assert all(abs(z - t) <= e for z, t, e in zip(rows[:, 1], target, tol, strict=True))
        assert all(abs(m - 1) < 0.05 for m in rows[:, 2])
