"""Tests for snippets/ddp.py: a real 2-process gloo DDP job, the sampler rule, ring all-reduce.

Which DDP paths are verified: the job trains two DDP copies, each checked against an
independent full-batch oracle. "ddp" uses DDP's built-in C++ reducer (no comm hook: grad·(1/W)
is copied into the bucket, then all-reduced); "hooked" uses a registered Python comm hook that
logs each bucket and calls `default_hooks.allreduce_hook` (div_(W), then all-reduce).
"""

import faulthandler
from fractions import Fraction

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
    average_over_ranks,
    make_data,
    make_model,
    ring_allreduce,
    run_ddp,
    shard_indices,
    star_allreduce,
)

WATCHDOG_S = 120  # the whole 2-process job normally takes a few seconds


@pytest.fixture(scope="module")
def job() -> tuple[list[dict], dict]:
    """One real DDP run (gloo, 2 processes) shared by the tests that inspect its results."""
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)  # a hang kills pytest loudly
    try:
        return run_ddp()
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def ranks(job) -> list[dict]:
    """Every rank's results from the shared run."""
    return job[0]


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
    """After training, every rank's parameters (all three copies) are bitwise equal to rank 0's."""
    assert len(ranks) == WORLD_SIZE
    for key in ("ddp", "hooked", "manual"):
        for other in ranks[1:]:
            for a, b in zip(ranks[0][key], other[key], strict=True):
                assert a.dtype == torch.float64
                assert torch.equal(a, b)


@pytest.mark.parametrize("key", ["ddp", "hooked"])
def test_ddp_equals_single_process_full_batch(ranks, key):
    """Built-in reducer ("ddp") and Python-hook ("hooked") DDP equal full-batch GD (1e-6)."""
    reference = full_batch_gd()
    init = [p.detach() for p in make_model().parameters()]
    moved = max((p - q).abs().max().item() for p, q in zip(reference, init, strict=True))
    assert moved > 1e-3  # training really changed the weights
    for rank in ranks:
        for a, b in zip(rank[key], reference, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_paths_bitwise_equal_at_world_size_2(ranks):
    """W = 2: grad·½ then sum, grad/2 then sum, sum then /2 are all exact, so bitwise equal."""
    assert WORLD_SIZE == 2  # dividing by a power of two never rounds; W = 3 would differ
    for rank in ranks:
        for a, b, c in zip(rank["ddp"], rank["hooked"], rank["manual"], strict=True):
            assert torch.equal(a, b)
            assert torch.equal(a, c)


def test_checkpoint_from_rank_0_loads_into_plain_model(job):
    """Rank 0's ddp.module.state_dict() has plain keys and loads into an unwrapped model."""
    ranks, checkpoint = job
    model = make_model()
    assert list(checkpoint) == list(model.state_dict())  # no "module." prefix
    model.load_state_dict(checkpoint)
    for a, b in zip(model.parameters(), ranks[1]["ddp"], strict=True):
        assert torch.equal(a.detach(), b)


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


def exact_mean(column: list[float]) -> Fraction:
    """Oracle: the mean of float64 values in exact rational arithmetic."""
    return sum((Fraction(x) for x in column), Fraction(0)) / len(column)


ORDERS = ("sum_then_div", "div_then_sum", "mul_then_sum")


@settings(max_examples=50, deadline=None)
@given(
    world=st.integers(1, 7),
    length=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
    order=st.sampled_from(ORDERS),
)
def test_average_over_ranks_is_the_mean_up_to_rounding(world, length, seed, order):
    """Each order is within (W+2)·eps·mean|g| of the exact rational mean of the ranks' rows."""
    grads = torch.from_numpy(np.random.default_rng(seed).standard_normal((world, length)))
    got = average_over_ranks(grads, order=order)
    eps = torch.finfo(torch.float64).eps
    for j in range(length):
        column = grads[:, j].tolist()
        err = abs(Fraction(got[j].item()) - exact_mean(column))
        assert err <= (world + 2) * eps * sum(abs(x) for x in column) / world


@pytest.mark.parametrize("world", [1, 2, 4, 8])
def test_average_orders_agree_bitwise_for_powers_of_two(world):
    """For W a power of two all three orders give bitwise the same average (division is exact)."""
    grads = torch.from_numpy(np.random.default_rng(world).standard_normal((world, 1000)))
    first = average_over_ranks(grads, order=ORDERS[0])
    for order in ORDERS[1:]:
        assert torch.equal(average_over_ranks(grads, order=order), first)


def test_average_orders_differ_for_three_ranks():
    """For W = 3 both divide-first orders differ from sum-then-divide in some last bits."""
    grads = torch.from_numpy(np.random.default_rng(0).standard_normal((3, 1000)))
    first = average_over_ranks(grads, order="sum_then_div")
    for order in ("div_then_sum", "mul_then_sum"):
        other = average_over_ranks(grads, order=order)
        assert (other != first).any()
        torch.testing.assert_close(other, first, rtol=0, atol=1e-15)


def test_divide_first_avoids_fp16_overflow():
    """fp16, W = 3, each grad 40000: the sum overflows to inf, dividing first stays 40000."""
    grads = torch.full((3, 1), 40000.0, dtype=torch.float16)
    assert torch.isinf(average_over_ranks(grads, order="sum_then_div")).all()
    assert average_over_ranks(grads, order="div_then_sum").item() == 40000.0


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_star_allreduce_sums_and_counts_sends(n):
    """Via rank 0: every rank gets the sum; rank 0 sends (N−1)·L elements, the others L each."""
    rng = np.random.default_rng(n)
    buffers = [rng.standard_normal(7) for _ in range(n)]
    results, sent = star_allreduce(buffers)
    for result in results:
        np.testing.assert_allclose(result, np.sum(buffers, axis=0), rtol=1e-12, atol=1e-12)
    assert len(results) == n
    assert sent == [(n - 1) * 7] + [7] * (n - 1)


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
