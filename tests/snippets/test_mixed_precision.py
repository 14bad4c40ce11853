"""Tests for snippets/mixed_precision.py.

Oracles: torch.finfo and torch's own fp32 -> fp16/bf16 casts (bit patterns), Python's exact
round-half-even on Fractions, torch.amp.GradScaler("cpu") and its update kernel
torch._amp_update_scale_, and plain fp32 autograd.
"""

import copy
import math
import platform
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from snippets.mixed_precision import (
    FORMATS,
    LossScaler,
    all_gradients,
    bf16_bits_to_fp32,
    bf16_hard_cases,
    decode,
    fields,
    fp16_bits_to_fp32,
    fp16_hard_cases,
    fp32_to_bf16_bits,
    fp32_to_fp16_bits,
    limits,
    make_toy,
    plot_underflow,
    rne_shift,
    train_amp,
)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
OURS = {"fp16": fp32_to_fp16_bits, "bf16": fp32_to_bf16_bits}
BACK = {"fp16": fp16_bits_to_fp32, "bf16": bf16_bits_to_fp32}


def torch_bits(u: np.ndarray, name: str) -> np.ndarray:
    """Oracle: torch's cast of the float32 bit patterns u, as uint16 bit patterns."""
    x = torch.from_numpy(np.asarray(u, dtype=np.uint32).view(np.float32).copy())
    return x.to(DTYPES[name]).view(torch.int16).numpy().view(np.uint16)


def assert_same_as_torch(u: np.ndarray, name: str) -> None:
    """Bits equal to torch's for every non-NaN input; a NaN input gives a NaN."""
    u = np.asarray(u, dtype=np.uint32)
    x = u.view(np.float32)
    ours, ref = OURS[name](x), torch_bits(u, name)
    nan = np.isnan(x)
    bad = np.flatnonzero((ours != ref) & ~nan)
    assert bad.size == 0, [(hex(u[i]), hex(ours[i]), hex(ref[i])) for i in bad[:5]]
    assert np.isnan(BACK[name](ours[nan])).all()


# ---------------------------------------------------------------- layout and limits


@pytest.mark.parametrize("name", FORMATS)
def test_limits_match_finfo(name):
    """max, smallest normal and eps from the field widths equal torch.finfo; 2^-24 etc. are exact."""
    lim, fi = limits(*FORMATS[name]), torch.finfo(DTYPES[name])
    assert lim["max"] == fi.max
    assert lim["min_normal"] == fi.smallest_normal == fi.tiny
    assert lim["eps"] == fi.eps
    assert lim["min_subnormal"] == fi.smallest_normal * fi.eps  # one mantissa step below 2^(1-b)
    t = torch.tensor([lim["min_subnormal"], lim["min_subnormal"] / 2], dtype=torch.float64)
    assert t.to(DTYPES[name]).tolist() == [lim["min_subnormal"], 0.0]


def test_brief_numbers():
    """The fp16/bf16 facts the post quotes."""
    f16, b16 = limits(*FORMATS["fp16"]), limits(*FORMATS["bf16"])
    assert f16["max"] == 65504 and f16["min_subnormal"] == 2.0**-24 and f16["eps"] == 2.0**-10
    assert f16["min_normal"] == pytest.approx(6.10e-5, rel=1e-3)
    assert b16["max"] == pytest.approx(3.39e38, rel=1e-3) and b16["eps"] == 2.0**-7


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_decode_all_16_bit_patterns(name):
    """decode() of every one of the 65536 patterns equals torch's value of those bits."""
    bits = np.arange(2**16, dtype=np.uint32)
    ref = torch.from_numpy(bits.astype(np.uint16).view(np.int16).copy()).view(DTYPES[name])
    ref = ref.double().numpy()
    ours = np.array([decode(int(b), *FORMATS[name]) for b in bits])
    nan = np.isnan(ref)
    assert (np.isnan(ours) == nan).all()
    assert np.array_equal(ours[~nan], ref[~nan])
    assert (np.signbit(ours[~nan]) == np.signbit(ref[~nan])).all()  # -0.0 stays -0.0


def test_fields():
    """The three fields of 1.0 and -2.5 in fp16 and bf16."""
    assert fields(0x3C00, *FORMATS["fp16"]) == "0 01111 0000000000"
    assert fields(0xC020, *FORMATS["bf16"]) == "1 10000000 0100000"


def test_bits_to_fp32_match_torch():
    """bf16/fp16 bits -> float32 equal torch's upcast, for every pattern."""
    h = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    for name in ("fp16", "bf16"):
        ref = torch.from_numpy(h.view(np.int16).copy()).view(DTYPES[name]).float().numpy()
        ours = BACK[name](h)
        nan = np.isnan(ref)
        assert np.array_equal(np.isnan(ours), nan)
        assert np.array_equal(ours[~nan].view(np.uint32), ref[~nan].view(np.uint32))


# ---------------------------------------------------------------- rounding


@settings(max_examples=200, deadline=None)
@given(m=st.integers(0, 2**40), s=st.integers(1, 40))
def test_rne_shift_is_round_half_even(m, s):
    """rne_shift(m, s) = round(m / 2^s) with ties to even (Python's round on an exact Fraction)."""
    got = rne_shift(np.array([m], dtype=np.int64), np.array([s], dtype=np.int64))[0]
    assert got == round(Fraction(m, 2**s))


def test_bf16_hard_cases_exhaustive():
    """All 2^16 high halves × the deciding low halves (ties included): bf16 bits equal torch's."""
    u = bf16_hard_cases()
    assert u.size == 2**16 * 6 and np.count_nonzero(u & 0xFFFF == 0x8000) == 2**16
    assert_same_as_torch(u, "bf16")


def test_fp16_hard_cases_exhaustive():
    """Every fp16 value, midpoint (tie) and neighbouring float32, both signs: bits equal torch's."""
    u = fp16_hard_cases()
    assert u.size == 0x7C00 * 4 * 2
    assert_same_as_torch(u, "fp16")
    mid = u[0x7C00 * 2 : 0x7C00 * 3].view(np.float32).astype(np.float64)  # the midpoints
    lo = fp16_bits_to_fp32(np.arange(0x7C00, dtype=np.uint16)).astype(np.float64)
    assert np.all(mid > lo)  # each midpoint lies strictly between two fp16 neighbours


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_specials(name):
    """±0, ±inf, fp32 subnormals and quiet/signalling NaNs with and without payload."""
    u = [0, 0x80000000, 0x7F800000, 0xFF800000, 1, 0x807FFFFF, 0x00400000]
    u += [0x7F800001, 0x7FC00000, 0xFFC00001, 0x7FFFFFFF, 0x7F812345, 0xFFFFFFFF]
    assert_same_as_torch(np.array(u, dtype=np.uint32), name)


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="x86's F16C conversion"
)
def test_fp16_nan_bits_match_x86_hardware():
    """On x86 torch converts to fp16 with F16C/AVX-512 (vcvtps2ph), which keeps a NaN's sign and
    top 9 payload bits and sets the quiet bit: the post says our NaNs are bit-equal there."""
    rng = np.random.default_rng(1)
    payload = rng.integers(1, 2**23, size=4096, dtype=np.uint32)
    sign = rng.integers(0, 2, size=4096, dtype=np.uint32) << 31
    u = sign | 0x7F800000 | payload  # every one a NaN, quiet or signalling
    assert np.array_equal(fp32_to_fp16_bits(u.view(np.float32)), torch_bits(u, "fp16"))


uint32_arrays = arrays(np.uint32, st.integers(1, 64), elements=st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(u=uint32_arrays)
def test_random_bit_patterns(u):
    """Any float32 bit patterns: fp16 and bf16 bits equal torch's."""
    for name in ("fp16", "bf16"):
        assert_same_as_torch(u, name)


@settings(max_examples=60, deadline=None)
@given(
    sign=st.integers(0, 1),
    exp=st.integers(90, 145),  # fp16's subnormals, normals and overflow: 2^-37 … 2^18
    man=st.integers(0, 2**23 - 1),
    low=st.sampled_from([None, 0x1000, 0x0FFF, 0x1001, 0x0000, 0x1FFF]),
)
def test_fp16_range_and_ties(sign, exp, man, low):
    """float32 around fp16's range, with the 13 dropped bits forced to a tie or its neighbours."""
    if low is not None:
        man = (man & ~0x1FFF) | low
    u = np.array([sign << 31 | exp << 23 | man], dtype=np.uint32)
    assert_same_as_torch(u, "fp16")
    assert_same_as_torch(u, "bf16")


def test_examples_from_the_post():
    """Ties to even, underflow, the overflow threshold."""

    def rt(name, v):
        return float(BACK[name](OURS[name](np.float32([v])))[0])

    assert rt("bf16", 1 + 2**-8) == 1.0  # tie, 1 is even
    assert rt("bf16", 1 + 3 * 2**-8) == 1 + 2**-6  # tie, rounds up to the even neighbour
    assert rt("bf16", 1 + 2**-8 + 2**-23) == 1 + 2**-7
    assert rt("fp16", 1e-8) == 0.0
    assert rt("fp16", 1e-8 * 2**16) == pytest.approx(6.55e-4, rel=1e-3)
    assert rt("fp16", 2**-25) == 0.0 and rt("fp16", 1.5 * 2**-25) == 2**-24
    assert rt("fp16", 65519) == 65504 and rt("fp16", 65520) == math.inf
    assert rt("fp16", -65520) == -math.inf


# ---------------------------------------------------------------- loss scaling


@settings(max_examples=100, deadline=None)
@given(
    init=st.floats(2.0**-10, 2.0**127),
    growth=st.floats(1.01, 8.0),
    backoff=st.floats(0.01, 0.99),
    interval=st.integers(1, 5),
    found=st.lists(st.booleans(), min_size=1, max_size=30),
)
def test_update_rule_matches_kernel(init, growth, backoff, interval, found):
    """LossScaler.update follows torch._amp_update_scale_ for any flags, incl. S near fp32 max."""
    ours = LossScaler(init, growth, backoff, interval)
    scale = torch.tensor(np.float32(init).item(), dtype=torch.float32)
    tracker = torch.zeros((), dtype=torch.int32)
    for f in found:
        ours._found_inf = f
        ours.update()
        torch._amp_update_scale_(scale, tracker, torch.tensor(float(f)), growth, backoff, interval)
        assert ours.get_scale() == scale.item()
        assert ours._good_steps == tracker.item()


def test_scale_never_grows_to_inf():
    """At S = fp32 max / 1.5, growth ×2 would overflow: S stays, the counter resets."""
    big = float(np.float32(np.finfo(np.float32).max / 1.5))
    s = LossScaler(init_scale=big, growth_interval=1)
    s._found_inf = False
    s.update()
    assert s.get_scale() == big and s._good_steps == 0


@settings(max_examples=40, deadline=None)
@given(
    scale=st.floats(2.0**-4, 2.0**40),
    seed=st.integers(0, 1000),
    bad=st.sampled_from([None, math.inf, -math.inf, math.nan]),
)
def test_unscale_matches_gradscaler(scale, seed, bad):
    """unscale_: gradients bit-equal to GradScaler's (any S, not only powers of 2), same inf flag."""
    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(5, 3, generator=g) * 1e3, torch.randn(7, generator=g)]
    if bad is not None:
        grads[1][2] = bad
    results = []
    for scaler in (torch.amp.GradScaler("cpu", init_scale=scale), LossScaler(init_scale=scale)):
        params = [torch.nn.Parameter(torch.zeros_like(t)) for t in grads]
        for p, t in zip(params, grads, strict=True):
            p.grad = t.clone()
        opt = torch.optim.SGD(params, lr=0.1)
        scaler.scale(torch.ones(()))  # GradScaler creates its scale tensor lazily here
        scaler.unscale_(opt)
        results.append([p.grad for p in params])
    for a, b in zip(*results, strict=True):
        assert torch.equal(a.view(torch.int32), b.view(torch.int32))  # bit for bit, NaN included


def test_inf_check_sees_scaled_gradients():
    """As in GradScaler, the check runs before unscaling: with S < 1 a finite scaled gradient
    that 1/S pushes past fp32 max does not count as an overflow."""
    flags = []
    for scaler in (torch.amp.GradScaler("cpu", init_scale=0.25), LossScaler(init_scale=0.25)):
        p = torch.nn.Parameter(torch.zeros(2))
        p.grad = torch.tensor([3e38, 1.0])
        opt = torch.optim.SGD([p], lr=0.1)
        scaler.scale(torch.ones(()))
        scaler.unscale_(opt)
        assert p.grad[0].item() == math.inf
        if isinstance(scaler, LossScaler):
            flags.append(scaler._found_inf)
        else:
            (found,) = scaler._per_optimizer_states[id(opt)]["found_inf_per_device"].values()
            flags.append(bool(found.item()))
    assert flags == [False, False]


def _small_toy():
    X, y, model = make_toy(seed=3, n=32, dim=4, width=8)
    return X, y, model


@settings(max_examples=15, deadline=None)
@given(
    init_exp=st.integers(10, 34),
    frac=st.sampled_from([1.0, 1.5, 0.7]),  # also scales that are not powers of 2
    growth=st.sampled_from([2.0, 1.5, 3.0]),
    backoff=st.sampled_from([0.5, 0.25, 0.8]),
    interval=st.integers(1, 4),
    inject=st.integers(-1, 7),
)
def test_training_matches_gradscaler(init_exp, frac, growth, backoff, interval, inject):
    """fp16-autocast SGD: same S and skip/step at every step, parameters bit-equal at the end."""
    X, y, model = _small_toy()
    kw = dict(
        init_scale=frac * 2.0**init_exp,
        growth_factor=growth,
        backoff_factor=backoff,
        growth_interval=interval,
    )
    m1, m2 = copy.deepcopy(model), copy.deepcopy(model)
    log1 = train_amp(m1, X, y, torch.amp.GradScaler("cpu", **kw), steps=8, inject_inf_at=inject)
    log2 = train_amp(m2, X, y, LossScaler(**kw), steps=8, inject_inf_at=inject)
    assert log1 == log2
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q)


def test_skip_backoff_and_growth():
    """The brief's scenario: an injected inf skips the step (params unchanged) and halves 2^16;
    two clean steps then double it (growth_interval=2)."""
    X, y, model = _small_toy()
    scaler = LossScaler(growth_interval=2)
    before = copy.deepcopy(model)
    log = train_amp(model, X, y, scaler, steps=3, inject_inf_at=0)
    assert log[0] == (2.0**16, False)
    assert log[1][0] == 2.0**15 and log[2][0] == 2.0**15 and log[1][1] and log[2][1]
    assert scaler.get_scale() == 2.0**16
    assert not all(
        torch.equal(p, q) for p, q in zip(model.parameters(), before.parameters(), strict=True)
    )


def test_first_step_skipped_leaves_params():
    """A skipped step leaves every parameter exactly as it was."""
    X, y, model = _small_toy()
    before = [p.detach().clone() for p in model.parameters()]
    log = train_amp(model, X, y, LossScaler(), steps=1, inject_inf_at=0)
    assert log == [(2.0**16, False)]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_unscaled_grads_close_to_fp32():
    """fp16 autocast with S = 2^16, after unscale_: gradients within fp16 error of fp32's."""
    X, y, model = _small_toy()
    ref = copy.deepcopy(model)
    torch.nn.functional.mse_loss(ref(X), y).backward()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = LossScaler()
    with torch.autocast("cpu", dtype=torch.float16):
        loss = torch.nn.functional.mse_loss(model(X), y)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        assert p.grad.dtype == torch.float32
        torch.testing.assert_close(p.grad, q.grad, rtol=0.05, atol=2e-3 * q.grad.abs().max().item())


# ---------------------------------------------------------------- autocast, toy, figure


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_linear(dtype):
    """Under CPU autocast nn.Linear outputs the low dtype; params and their grads stay fp32."""
    layer = torch.nn.Linear(6, 3)
    with torch.autocast("cpu", dtype=dtype):
        out = layer(torch.randn(2, 6))
    out.float().sum().backward()
    assert out.dtype == dtype
    assert layer.weight.dtype == layer.weight.grad.dtype == torch.float32


def test_all_gradients():
    """Parameter part equals a plain backward's .grad; activation part has one entry per output."""
    X, y, model = _small_toy()
    g = all_gradients(model, X, y)
    ref = copy.deepcopy(model)
    ref.zero_grad()
    torch.nn.functional.mse_loss(ref(X), y).backward()
    n_act = sum(X.shape[0] * w for w in (8, 8, 8, 8, 1))
    params = torch.cat([p.grad.flatten() for p in ref.parameters()])
    assert g.numel() == n_act + params.numel()
    torch.testing.assert_close(g[n_act:], params, rtol=0, atol=0)
    out_grad = 2 * (ref(X) - y) / y.numel()  # dL/df of the last layer's output, by hand
    torch.testing.assert_close(g[n_act - X.shape[0] : n_act], out_grad.detach().flatten())


def test_plot_underflow():
    """The figure has two panels and draws without error."""
    X, y, model = _small_toy()
    fig = plot_underflow(all_gradients(model, X, y), scale=2.0**16)
    assert len(fig.axes) == 2
    plt.close(fig)
