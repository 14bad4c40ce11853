"""Tests for snippets/self_supervised.py against numpy oracles, brute force and the brief's bars."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.self_supervised import (
    GLYPHS,
    SCALE,
    SIZE,
    SYMMETRIC,
    Encoder,
    accuracy,
    fit_probe,
    glyph_bank,
    make_glyphs,
    pretext_accuracy_by_glyph,
    pretrain_rotation,
    probe_accuracy,
    rotate_batch,
)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 4), h=st.integers(1, 6), seed=st.integers(0, 99))
def test_rotate_batch_matches_numpy_rot90(n, h, seed):
    """Block k of rotate_batch is numpy's rot90 by k quarter turns, labelled k (square images)."""
    x = torch.randn(n, 1, h, h, generator=torch.Generator().manual_seed(seed))
    xs, r = rotate_batch(x)
    assert len(xs) == len(r) == 4 * n
    for k in range(4):
        want = np.rot90(x.numpy(), k, axes=(2, 3))
        np.testing.assert_array_equal(xs[k * n : (k + 1) * n].numpy(), want)
        assert (r[k * n : (k + 1) * n] == k).all()


def test_four_quarter_turns_are_identity():
    """torch.rot90 four times returns x; so does taking rotate_batch's k = 1 block four times."""
    x = torch.randn(3, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(6))
    y, z = x, x
    for _ in range(4):
        y = torch.rot90(y, 1, dims=(2, 3))
        z = rotate_batch(z)[0][len(x) : 2 * len(x)]  # the block labelled k = 1
    assert torch.equal(x, y) and torch.equal(x, z)
    assert not torch.equal(x, rotate_batch(x)[0][len(x) : 2 * len(x)])  # one turn is not


def test_glyphs_asymmetric_and_symmetric_ones_symmetric():
    """No training glyph equals a rotation of itself; the SYMMETRIC ones equal all of theirs."""
    for name in GLYPHS:
        g = np.array([[c == "#" for c in row] for row in GLYPHS[name]])
        assert all(not np.array_equal(np.rot90(g, k), g) for k in (1, 2, 3)), name
    for name in SYMMETRIC:
        g = np.array([[c == "#" for c in row] for row in SYMMETRIC[name]])
        assert all(np.array_equal(np.rot90(g, k), g) for k in (1, 2, 3)), name


def test_make_glyphs_places_the_labelled_glyph():
    """Noise-free images: brute-force search finds the class's template at some offset."""
    x, y = make_glyphs(60, generator=torch.Generator().manual_seed(0), noise=0.0)
    bank = glyph_bank().numpy()
    g = 5 * SCALE
    offsets = []
    for img, label in zip(x[:, 0].numpy(), y.tolist(), strict=True):
        ink = img > 0
        assert img[ink].min() >= 0.5 and img[ink].max() < 1.5  # one contrast per image
        hits = [
            (oy, ox)
            for oy in range(SIZE - g + 1)
            for ox in range(SIZE - g + 1)
            if ink[oy : oy + g, ox : ox + g].sum() == ink.sum()
            and np.array_equal(ink[oy : oy + g, ox : ox + g], bank[label] > 0)
        ]
        assert hits
        offsets.append(hits[0])
    assert len(set(offsets)) > 10 and any(oy != ox for oy, ox in offsets)  # x, y drawn apart


def test_encoder_feature_is_global_average_of_last_conv_map():
    """Encoder(x) is the spatial mean (numpy) of its last feature map, one value per channel."""
    enc = Encoder().eval()
    x = torch.randn(5, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        fmap = enc.net(x).numpy()  # (B, w, 4, 4)
        feats = enc(x).numpy()
    assert fmap.shape[2:] == (SIZE // 4, SIZE // 4)
    np.testing.assert_allclose(feats, fmap.reshape(*fmap.shape[:2], -1).mean(-1), atol=1e-6)


def test_accuracy_brute_force():
    """accuracy = fraction of rows whose argmax equals the label, counted by a loop."""
    logits = torch.randn(50, 7, generator=torch.Generator().manual_seed(1))
    y = torch.randint(7, (50,), generator=torch.Generator().manual_seed(2))
    want = (
        sum(int(np.argmax(row) == t) for row, t in zip(logits.numpy(), y.tolist(), strict=True))
        / 50
    )
    assert abs(accuracy(logits, y) - want) < 1e-6


@settings(max_examples=10, deadline=None)
@given(n=st.integers(12, 40), d=st.integers(1, 6), k=st.integers(2, 4), seed=st.integers(0, 99))
def test_probe_is_ridge_least_squares(n, d, k, seed):
    """fit_probe's scores equal numpy lstsq on the ridge-augmented system [Z; √(λn) I]."""
    gen = torch.Generator().manual_seed(seed)
    feats = 3 * torch.randn(n, d, generator=gen) + 1
    y = torch.randint(k, (n,), generator=gen)
    lam = 1e-2
    scores = fit_probe(feats, y, classes=k, ridge=lam)(feats).numpy()
    f = feats.double().numpy()
    z = (f - f.mean(0)) / (f.std(0, ddof=1) + 1e-6)
    z = np.hstack([z, np.ones((n, 1))])
    a = np.vstack([z, np.sqrt(lam * n) * np.eye(d + 1)])
    b = np.vstack([np.eye(k)[y.numpy()], np.zeros((d + 1, k))])
    w = np.linalg.lstsq(a, b, rcond=None)[0]
    np.testing.assert_allclose(scores, z @ w, rtol=0, atol=1e-9)  # both in float64


def test_probe_separates_separable_classes():
    """Well-separated clusters: the probe classifies held-out points perfectly."""
    gen = torch.Generator().manual_seed(3)
    centres = 10 * torch.eye(3)
    y = torch.randint(3, (90,), generator=gen)
    feats = centres[y] + 0.1 * torch.randn(90, 3, generator=gen)
    probe = fit_probe(feats[:60], y[:60], classes=3)
    assert accuracy(probe(feats[60:]), y[60:]) == 1.0


def test_pretraining_meets_the_brief():
    """Seed 0: held-out pretext accuracy > 0.9; probe on trained features beats random init."""
    enc, head, rnd, (train, test), hist = pretrain_rotation(seed=0)
    (_, pretext, probe), random_probe = hist[-1], probe_accuracy(rnd, train, test, classes=8)
    assert pretext > 0.9
    assert probe > random_probe + 0.1
    by_glyph = pretext_accuracy_by_glyph(enc, head, names=list(SYMMETRIC), n=64, seed=5)
    assert all(abs(a - 0.25) < 0.1 for a in by_glyph.values())  # nothing to read: chance


def test_symmetric_centred_glyph_gives_exactly_chance():
    """A centred, noise-free symmetric glyph: four identical inputs, so any model scores 1/4."""
    bank = glyph_bank(("+",))[0]
    g, o = bank.shape[0], (SIZE - bank.shape[0]) // 2
    x = torch.zeros(1, 1, SIZE, SIZE)
    x[0, 0, o : o + g, o : o + g] = bank
    xs, r = rotate_batch(x)
    assert all(torch.equal(xs[0], xs[k]) for k in range(4))
    enc, head, *_ = pretrain_rotation(seed=1, epochs=1)
    enc.eval()
    with torch.no_grad():
        assert accuracy(head(enc(xs)), r) == 0.25


def test_random_baseline_is_the_same_initialisation():
    """The random-feature control equals a fresh Encoder built after torch.manual_seed(seed)."""
    torch.manual_seed(3)
    ref = Encoder().state_dict()
    enc, _, rnd, *_ = pretrain_rotation(seed=3, epochs=1)
    for name, value in rnd.state_dict().items():
        assert torch.equal(value, ref[name]), name
    assert not torch.equal(enc.state_dict()["net.0.weight"], ref["net.0.weight"])  # trained
