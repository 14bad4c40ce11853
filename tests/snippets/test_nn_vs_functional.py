"""Tests for snippets.nn_vs_functional: the functional CNN against PyTorch's own modules."""

import matplotlib.pyplot as plt
import numpy as np
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
    conv2d_functional,
    decomposition_gap,
    draw_state_diagram,
    dropout_stats,
    loop_grads,
    make_model,
    module_as_function,
    norm_variants,
    per_sample_grads,
    sample_coupling,
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


conv_cfg = st.fixed_dictionaries(
    {
        "cin_g": st.integers(1, 3),  # input channels per group
        "cout_g": st.integers(1, 3),  # output channels per group
        "groups": st.integers(1, 3),
        "k": st.sampled_from([1, 2, 3]),
        "stride": st.integers(1, 2),
        "padding": st.integers(0, 2),
        "dilation": st.integers(1, 2),
        "padding_mode": st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
        "hw": st.integers(5, 8),
        "bias": st.booleans(),
        "seed": st.integers(0, 2**16),
    }
)


def _conv_case(c):
    """An nn.Conv2d (the oracle), an input, and the kwargs of conv2d_functional (the subject)."""
    torch.manual_seed(c["seed"])
    kw = {k: c[k] for k in ("stride", "padding", "dilation", "groups", "padding_mode")}
    m = nn.Conv2d(c["cin_g"] * c["groups"], c["cout_g"] * c["groups"], c["k"], bias=c["bias"], **kw)
    x = torch.randn(2, c["cin_g"] * c["groups"], c["hw"], c["hw"])
    return m, x, kw


@SETTINGS
@given(conv_cfg)
def test_conv2d_functional_equals_module(c):
    """conv2d_functional equals nn.Conv2d bit for bit over groups, dilation and padding modes."""
    m, x, kw = _conv_case(c)
    with torch.no_grad():
        assert torch.equal(conv2d_functional(x, m.weight, m.bias, **kw), m(x))


@SETTINGS
@given(conv_cfg)
def test_conv2d_functional_equals_numpy_brute_force(c):
    """conv2d_functional equals a loop-by-loop numpy convolution on np.pad-padded input."""
    m, x, kw = _conv_case(c)
    w = m.weight.detach().double().numpy()  # (C_out, C_in/groups, k, k)
    b = np.zeros(w.shape[0]) if m.bias is None else m.bias.detach().double().numpy()
    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
    pad = c["padding"]
    xp = np.pad(
        x.double().numpy(), ((0, 0), (0, 0), (pad, pad), (pad, pad)), np_mode[kw["padding_mode"]]
    )
    s, d, k = c["stride"], c["dilation"], c["k"]
    n_out = (xp.shape[2] - d * (k - 1) - 1) // s + 1
    out = np.zeros((x.shape[0], w.shape[0], n_out, n_out))
    for o in range(w.shape[0]):
        g = o // c["cout_g"]  # output channel o sees input channels of its group only
        xg = xp[:, g * c["cin_g"] : (g + 1) * c["cin_g"]]
        for i in range(n_out):
            for j in range(n_out):
                patch = xg[
                    :, :, i * s : i * s + d * (k - 1) + 1 : d, j * s : j * s + d * (k - 1) + 1 : d
                ]
                out[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3)) + b[o]
    with torch.no_grad():
        got = conv2d_functional(
            x.double(), m.weight.double(), None if m.bias is None else m.bias.double(), **kw
        )
    np.testing.assert_allclose(got.numpy(), out, rtol=1e-10, atol=1e-10)


def test_naive_f_conv2d_ignores_padding_mode():
    """F.conv2d with the module's padding zero-pads: it differs from a reflect-padded nn.Conv2d."""
    torch.manual_seed(0)
    m = nn.Conv2d(4, 4, 3, padding=1, dilation=2, groups=2, padding_mode="reflect")
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        naive = F.conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
        assert not torch.allclose(naive, m(x))
        assert torch.equal(naive[..., 1:-1, 1:-1], m(x)[..., 1:-1, 1:-1])  # interior agrees


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


def _manual_loop(model, x, y):
    """The oracle: per-sample gradients by one backward() per sample, written out here."""
    out = {name: [] for name, _ in model.named_parameters()}
    for i in range(x.shape[0]):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        for name, p in model.named_parameters():
            out[name].append(p.grad.clone())
    return {k: torch.stack(v) for k, v in out.items()}


def test_per_sample_grads_match_loop():
    """vmap(grad) on cnn_forward and on the unchanged module equal a loop of backward() calls."""
    model, x = _setup(batch=5, in_ch=1, ch=4, hw=6, seed=11)
    y = torch.tensor([0, 2, 1, 1, 0])
    model.eval()
    params, buffers = split_state(model)
    f_fn = lambda p, xb: cnn_forward(p, buffers, xb, training=False)  # noqa: E731
    by_fn = per_sample_grads(f_fn, params, x, y)
    by_module = per_sample_grads(module_as_function(model, buffers), params, x, y)
    want = _manual_loop(model, x, y)
    for name in want:
        assert by_fn[name].shape == (5, *params[name].shape)
        assert torch.allclose(by_fn[name], want[name], atol=1e-6, rtol=1e-5), name
        assert torch.allclose(by_module[name], want[name], atol=1e-6, rtol=1e-5), name
    got_loop = loop_grads(model, x, y)
    assert all(torch.equal(got_loop[k], want[k]) for k in want)
    # the batch-mean gradient is the mean of per-sample gradients (eval mode: no coupling)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(by_module[name].mean(0), p.grad, atol=1e-6, rtol=1e-5), name


def test_norm_variants_modes_and_groupnorm():
    """norm_variants: dropout off everywhere, BN train/eval as named, GroupNorm(min(32, C), C)."""
    model = make_model(0, ch=4)
    v = norm_variants(model)
    assert v["BatchNorm, train()"].bn.training and not v["BatchNorm, train()"].drop.training
    assert not v["BatchNorm, eval()"].bn.training and not v["BatchNorm, eval()"].drop.training
    gn = v["GroupNorm"].bn
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 4 and gn.num_channels == 4
    assert model.training  # the original is left alone


def test_sample_coupling_against_autograd_and_zero_pattern():
    """sample_coupling equals per-(i, k) autograd.grad norms; only train-mode BN has off-diagonals."""
    model, x = _setup(batch=4, in_ch=1, ch=3, hw=5, seed=5)
    for name, m in norm_variants(model).items():
        c = sample_coupling(m, x)
        xr = x.clone().requires_grad_(True)
        logits = m(xr)
        want = torch.zeros(4, 4)
        for i in range(4):
            for k in range(logits.shape[1]):
                (g,) = torch.autograd.grad(logits[i, k], xr, retain_graph=True)
                want[i] += g.pow(2).sum(dim=(1, 2, 3))
        assert torch.allclose(c, want.sqrt(), atol=1e-7, rtol=1e-5), name
        off = c[~torch.eye(4, dtype=torch.bool)]  # the 12 entries with i != j
        if name == "BatchNorm, train()":
            assert (off > 0).all(), name
        else:
            assert torch.equal(off, torch.zeros_like(off)), name


def test_decomposition_gap_zero_iff_no_coupling():
    """Batch gradient = mean of single-sample gradients for BN eval and GroupNorm, not BN train."""
    model, x = _setup(batch=6, in_ch=1, ch=4, hw=6, seed=9)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    gaps = {name: decomposition_gap(m, x, y) for name, m in norm_variants(model).items()}
    assert gaps["BatchNorm, eval()"] < 1e-5 and gaps["GroupNorm"] < 1e-5
    assert gaps["BatchNorm, train()"] > 1e-2


def test_state_diagram_labels_inside_boxes():
    """Every text of the state diagram that sits in a box lies within that box's drawn extent."""
    fig = draw_state_diagram()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [p.get_window_extent(renderer) for p in ax.patches]
    n_checked = 0
    for t in ax.texts:
        tb = t.get_window_extent(renderer)
        cx, cy = (tb.x0 + tb.x1) / 2, (tb.y0 + tb.y1) / 2
        holders = [b for b in boxes if b.contains(cx, cy)]
        if not holders:
            continue  # a panel title
        box = min(holders, key=lambda b: b.width * b.height)  # the innermost box
        assert box.x0 <= tb.x0 and tb.x1 <= box.x1 and box.y0 <= tb.y0 and tb.y1 <= box.y1, t
        n_checked += 1
    assert n_checked == 10
    plt.close(fig)


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
