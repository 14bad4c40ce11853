"""Tests for snippets/ddp.py: a real 2-process gloo DDP job, the sampler rule, ring all-reduce."""

import faulthandler

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DistributedSampler

from snippets.ddp import (
    LR,
    STEPS,
    WORLD_SIZE,
    N,
    make_data,
    make_model,
    ring_allreduce,
    run_ddp,
    shard_indices,
)

WATCHDOG_S = 120  # the whole 2-process job normally takes a few seconds


@pytest.fixture(scope="module")
def ranks() -> list[dict]:
    """One real DDP run (gloo, 2 processes) shared by the tests that inspect its results."""
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)  # a hang kills pytest loudly
    try:
        return run_ddp()
    finally:
        faulthandler.cancel_dump_traceback_later()


def full_batch_gd() -> list[torch.Tensor]:
    """Oracle: one process, all N rows in every step, mean squared error, p ← p − lr·∇p."""
    X, y = make_data()
    model = make_model()
    params = list(model.parameters())
    for _ in range(STEPS):
        loss = ((model(X) - y) ** 2).mean()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= LR * g
    return [p.detach() for p in params]


def test_ranks_hold_identical_parameters(ranks):
    """After training, every rank's DDP parameters are bitwise identical to rank 0's."""
    assert len(ranks) == WORLD_SIZE
    for other in ranks[1:]:
        for a, b in zip(ranks[0]["ddp"], other["ddp"], strict=True):
            assert a.dtype == torch.float64
            assert torch.equal(a, b)


def test_ddp_equals_single_process_full_batch(ranks):
    """DDP over 2 shards equals plain single-process full-batch gradient descent (1e-6)."""
    reference = full_batch_gd()
    init = [p.detach() for p in make_model().parameters()]
    moved = max((p - q).abs().max().item() for p, q in zip(reference, init, strict=True))
    assert moved > 1e-3  # training really changed the weights
    for rank in ranks:
        for a, b in zip(rank["ddp"], reference, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_manual_allreduce_equals_ddp(ranks):
    """all_reduce(p.grad) then /= world_size gives the same parameters as DDP."""
    for rank in ranks:
        for a, b in zip(rank["manual"], rank["ddp"], strict=True):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_each_step_sees_every_row_once(ranks):
    """In every epoch the ranks' shards are disjoint and together are exactly range(N)."""
    for epoch in range(STEPS):
        seen = sorted(i for rank in ranks for i in rank["indices"][epoch])
        assert seen == list(range(N))


def test_bucket_trace_overlaps_backward(ranks):
    """From step 1 on, bucket 0 (last layer) is all-reduced before the first layer's grads exist."""
    trace = ranks[0]["traces"][1]
    launch = trace.index("all-reduce   bucket 0 ['2.bias', '2.weight']")
    assert launch < trace.index("grad ready   0.weight")
    assert sum(e.startswith("all-reduce") for e in ranks[0]["traces"][0]) == 1  # step 0: 1 bucket


def test_padding_repeats_leading_indices():
    """n=10 on 4 ranks: rank r gets r, r+4, r+8 of 0..9 padded with 0, 1 (closed form by hand)."""
    split = [shard_indices(10, 4, r, shuffle=False) for r in range(4)]
    assert split == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
    split = [shard_indices(10, 4, r, shuffle=False, drop_last=True) for r in range(4)]
    assert split == [[0, 4], [1, 5], [2, 6], [3, 7]]


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 40),
    world=st.integers(1, 6),
    data=st.data(),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 3),
    epoch=st.integers(0, 3),
)
def test_shard_indices_match_distributed_sampler(n, world, data, shuffle, drop_last, seed, epoch):
    """The hand-written rule gives exactly the indices of torch's DistributedSampler."""
    rank = data.draw(st.integers(0, world - 1))
    sampler = DistributedSampler(
        range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
    )
    sampler.set_epoch(epoch)
    got = shard_indices(
        n, world, rank, shuffle=shuffle, seed=seed, epoch=epoch, drop_last=drop_last
    )
    assert got == list(sampler)


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 8),
    shape=st.lists(st.integers(1, 7), min_size=1, max_size=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_ring_allreduce_equals_sum(n, shape, seed):
    """Every simulated rank ends with the plain sum; total traffic is 2(N−1)·L elements."""
    rng = np.random.default_rng(seed)
    buffers = [rng.standard_normal(shape) for _ in range(n)]
    copies = [b.copy() for b in buffers]
    results, history, sent = ring_allreduce(buffers)
    expected = np.sum(np.stack(copies), axis=0)
    for result in results:
        assert result.shape == expected.shape
        np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)
    for b, c in zip(buffers, copies, strict=True):
        np.testing.assert_array_equal(b, c)  # inputs untouched
    assert len(history) == 2 * (n - 1) + 1
    assert sum(sent) == 2 * (n - 1) * expected.size


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_ring_traffic_and_ownership(n):
    """Each rank sends 2(N−1)/N·L; after reduce-scatter rank r owns the full chunk (r+1) mod N."""
    k = 5  # elements per chunk
    _, history, sent = ring_allreduce([np.ones(n * k) for _ in range(n)])
    assert sent == [2 * (n - 1) * k] * n
    after_rs = history[n - 1].reshape(n, n, k)  # (rank, chunk, element): contributions so far
    for r in range(n):
        assert (after_rs[r, (r + 1) % n] == n).all()
    assert (history[-1] == n).all()
