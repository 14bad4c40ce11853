r"""PyTorch DDP on two CPU processes, and the all-reduce underneath it, from scratch.

`worker` is one rank of a real 2-process gloo DDP job; each rank trains three copies: DDP on
its built-in C++ reducer (grad·(1/W) into the bucket, then all-reduce), DDP through a logging
Python comm hook, and a plain model with `all_reduce(p.grad)` then `/= world_size`.
`run_ddp` launches the ranks with `mp.spawn`. `average_over_ranks` spells out the orders of
"divide and sum"; `shard_indices` rebuilds the sampler's split; `ring_allreduce` and
`star_allreduce` simulate a ring and a via-rank-0 all-reduce with numpy, counting traffic.
"""

# --8<-- [start:imports]
import datetime
import os
import socket
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

# --8<-- [end:imports]


# --8<-- [start:setup]
WORLD_SIZE = 2
BATCH = 8  # rows per rank per step
N = WORLD_SIZE * BATCH  # dataset size: one step of all ranks together covers it exactly once
STEPS = 3  # one step per epoch, so STEPS epochs
LR = 0.1
BUCKET_CAP_MB = 72 / 2**20  # 72 bytes = the last layer's 9 float64 (default cap: 25 MiB)


def make_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A tiny regression set: X (N, 4), y (N, 1), float64."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, 4, generator=g, dtype=torch.float64)
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]], dtype=torch.float64)
    return X, X @ w + 0.1 * torch.randn(N, 1, generator=g, dtype=torch.float64)


def make_model(seed: int = 0) -> torch.nn.Module:
    """4 → 8 → 1 MLP in float64, identically initialised wherever it is built."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    ).double()


def checksum(model: torch.nn.Module) -> float:
    return sum(p.detach().sum() for p in model.parameters()).item()


def free_port() -> int:
    """Ask the OS for an unused TCP port (bind to port 0) for the rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --8<-- [end:setup]


# --8<-- [start:worker]
def print_in_rank_order(text: str) -> None:
    """Every rank prints `text`; ranks take turns, so the lines come out in rank order."""
    for r in range(dist.get_world_size()):
        if r == dist.get_rank():
            print(text, flush=True)
        dist.barrier()  # rank r+1 waits until rank r has written its line


def trace_backward(ddp: DDP) -> list[str]:
    """Log, in order, each gradient as autograd computes it and each bucket's all-reduce launch."""
    events: list[str] = []
    names = {id(p): n for n, p in ddp.module.named_parameters()}
    for name, p in ddp.module.named_parameters():
        p.register_hook(lambda grad, name=name: events.append(f"grad ready   {name}"))

    def hook(state, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        params = [names[id(p)] for p in bucket.parameters()]
        events.append(f"all-reduce   bucket {bucket.index()} {params}")
        # the reference hook: bucket.div_(W), then all_reduce(SUM). With a hook registered, the
        # C++ reducer no longer scales the gradients itself (it would copy grad·(1/W) instead).
        return default_hooks.allreduce_hook(None, bucket)

    ddp.register_comm_hook(None, hook)
    return events


def sgd_step(model, opt, xb, yb, *, manual_allreduce: bool) -> None:
    opt.zero_grad()
    F.mse_loss(model(xb), yb).backward()  # mean over this rank's BATCH rows
    if manual_allreduce:  # the textbook average, one tensor at a time and after backward
        for p in model.parameters():
            dist.all_reduce(p.grad)  # sum over ranks: Σ_r g_r
            p.grad /= dist.get_world_size()  # → (1/W) Σ_r g_r  (DDP divides *before* the sum)
    opt.step()


def worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)  # W processes share a few cores: one thread each
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=60),  # a missing rank is an error, not a hang
    )
    try:
        dataset = TensorDataset(*make_data())
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, seed=0)
        loader = DataLoader(dataset, batch_size=BATCH, sampler=sampler)
        models = {  # each DDP(...) broadcasts rank 0's weights to the other ranks
            "ddp": DDP(make_model(), bucket_cap_mb=BUCKET_CAP_MB),  # built-in reducer, no hook
            "hooked": DDP(make_model(), bucket_cap_mb=BUCKET_CAP_MB),  # Python comm hook
            "manual": make_model(),  # no DDP: all_reduce by hand
        }
        events = trace_backward(models["hooked"])
        opts = {k: torch.optim.SGD(m.parameters(), lr=LR) for k, m in models.items()}
        print_in_rank_order(f"rank {dist.get_rank()} of world_size {dist.get_world_size()}")
        indices, traces = [], []
        for epoch in range(STEPS):
            events.clear()  # trace this step only
            sampler.set_epoch(epoch)  # shuffle with seed + epoch: a new split, same on all ranks
            indices.append(list(sampler))
            for xb, yb in loader:  # xb (BATCH, 4): this rank's shard only
                for k, model in models.items():
                    sgd_step(model, opts[k], xb, yb, manual_allreduce=k == "manual")
            traces.append(list(events))
            print_in_rank_order(
                f"step {epoch} rank {rank} indices {indices[-1]} "
                f"checksum {checksum(models['ddp']):.15f}"
            )
        if rank == 0:  # one writer; .module drops DDP's "module." prefix from the keys
            torch.save(models["ddp"].module.state_dict(), os.path.join(out_dir, "model.pt"))
        result = {k: [p.detach() for p in m.parameters()] for k, m in models.items()}
        result |= {"indices": indices, "traces": traces}
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # all ranks done before rank 0, which hosts the TCP store, tears down
    finally:
        dist.destroy_process_group()


# --8<-- [end:worker]


# --8<-- [start:run_ddp]
def run_ddp(world_size: int = WORLD_SIZE) -> tuple[list[dict], dict]:
    """Start `world_size` ranks, wait for all (a failed rank raises here).

    Returns every rank's results and the checkpoint rank 0 saved (a plain state_dict).
    """
    port = free_port()
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(worker, args=(world_size, port, out_dir), nprocs=world_size, join=True)
        ranks = [torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in range(world_size)]
        return ranks, torch.load(os.path.join(out_dir, "model.pt"))


# --8<-- [end:run_ddp]


# --8<-- [start:single]
def train_single(steps: int = STEPS) -> list[torch.Tensor]:
    """The reference: one process, the whole dataset as one batch, mean loss, plain SGD."""
    X, y = make_data()  # (N, 4), (N, 1)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(X), y).backward()  # mean over all N = W·BATCH rows
        opt.step()
    return [p.detach() for p in model.parameters()]


def max_abs_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


# --8<-- [end:single]


# --8<-- [start:average]
def average_over_ranks(grads: torch.Tensor, *, order: str) -> torch.Tensor:
    r"""Mean of the rows of `grads` (W, L), row r = rank r's gradient, in one of three orders.

    "sum_then_div": $(\sum_r g_r) / W$, the manual `all_reduce` then `/= world_size`;
    "div_then_sum": $\sum_r (g_r / W)$, `default_hooks.allreduce_hook` (`div_`, then all-reduce);
    "mul_then_sum": $\sum_r (g_r \cdot \frac{1}{W})$, the built-in C++ reducer, which
    multiplies by 1/W while copying each grad into its bucket. The sum runs over ranks
    0, 1, ..., W-1 (a real all-reduce may add in another order).
    """
    W = grads.shape[0]
    terms = {"sum_then_div": grads, "div_then_sum": grads / W, "mul_then_sum": grads * (1.0 / W)}
    total = terms[order][0].clone()
    for g in terms[order][1:]:  # the all-reduce: Σ over ranks
        total += g
    return total / W if order == "sum_then_div" else total


# --8<-- [end:average]


# --8<-- [start:shard_indices]
def shard_indices(
    n: int,
    num_replicas: int,
    rank: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
) -> list[int]:
    """The indices `DistributedSampler` gives `rank`, rebuilt from its documented rule."""
    if shuffle:  # the same permutation on every rank: seeded by seed + epoch
        g = torch.Generator().manual_seed(seed + epoch)
        indices = torch.randperm(n, generator=g).tolist()
    else:
        indices = list(range(n))
    if drop_last:  # cut the tail so every rank gets floor(n / W)
        total = (n // num_replicas) * num_replicas
        indices = indices[:total]
    else:  # pad by repeating from the start so every rank gets ceil(n / W)
        total = -(-n // num_replicas) * num_replicas
        while len(indices) < total:
            indices += indices[: total - len(indices)]
    return indices[rank:total:num_replicas]  # round-robin: rank, rank + W, rank + 2W, ...


# --8<-- [end:shard_indices]


# --8<-- [start:ring]
def ring_allreduce(
    buffers: list[np.ndarray],
) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    r"""Sum `buffers` (one per simulated rank) with a ring all-reduce.

    Each buffer is cut into $N$ chunks. Reduce-scatter ($N-1$ steps): rank $r$ sends chunk
    $(r-s) \bmod N$ to rank $r+1$, which adds it to its own; afterwards rank $r$ holds the full
    sum of chunk $(r+1) \bmod N$. All-gather ($N-1$ steps): rank $r$ sends chunk
    $(r+1-s) \bmod N$ to rank $r+1$, which overwrites its copy.
    Returns (result on every rank, history of the (N, L) state after each step, elements sent
    by each rank).
    """
    n = len(buffers)
    shape = buffers[0].shape
    chunks = [np.array_split(b.astype(np.float64).ravel(), n) for b in buffers]  # chunks[r][c]
    history = [np.stack([np.concatenate(c) for c in chunks])]  # (N ranks, L elements)
    sent = [0] * n
    for phase in ("reduce-scatter", "all-gather"):
        for s in range(n - 1):
            offset = -s if phase == "reduce-scatter" else 1 - s
            # all ranks send at the same time: read every message before anyone writes
            msgs = [(r, (r + offset) % n, chunks[r][(r + offset) % n].copy()) for r in range(n)]
            for r, c, data in msgs:
                dst = (r + 1) % n  # the right-hand neighbour on the ring
                if phase == "reduce-scatter":
                    chunks[dst][c] += data  # partial sum grows by one rank's contribution
                else:
                    chunks[dst][c] = data  # the finished sum is passed along
                sent[r] += data.size
            history.append(np.stack([np.concatenate(c) for c in chunks]))
    return [np.concatenate(c).reshape(shape) for c in chunks], history, sent


def star_allreduce(buffers: list[np.ndarray]) -> tuple[list[np.ndarray], list[int]]:
    """Sum via rank 0: ranks 1..N-1 send their buffers to rank 0, which sends the sum back."""
    n = len(buffers)
    total = buffers[0].astype(np.float64)  # a copy: rank 0's own buffer
    sent = [0] * n
    for r in range(1, n):  # gather: rank r → rank 0
        total += buffers[r]
        sent[r] += buffers[r].size
    results = [total]
    for _ in range(1, n):  # broadcast: rank 0 → rank r
        results.append(total.copy())
        sent[0] += total.size
    return results, sent


# --8<-- [end:ring]


# --8<-- [start:plot_ring]
def plot_ring(history: list[np.ndarray]):
    """One panel per ring step: how many ranks' data each (rank, chunk) cell already sums."""
    import matplotlib.pyplot as plt  # imported here: the spawned ranks never need it

    n = history[0].shape[0]
    # row 0: the N-1 reduce-scatter steps; row 1: the N-1 all-gather steps (at the start every
    # cell holds 1: its own rank's data). N-1 columns and a narrow figure keep the numbers
    # readable on a phone, where the image is scaled down to the screen's width.
    fig, axes = plt.subplots(2, n - 1, figsize=(1.6 * (n - 1) + 0.4, 3.9), layout="constrained")
    for k, (ax, state) in enumerate(zip(axes.flat, history[1:], strict=True), start=1):
        ax.imshow(state, cmap="Blues", vmin=0, vmax=n)
        for r in range(n):
            for c in range(state.shape[1]):
                color = "white" if state[r, c] > n / 2 else "black"
                count = f"{state[r, c]:.0f}"
                ax.text(c, r, count, ha="center", va="center", color=color, fontsize=11)
        ax.set_title(f"RS 第 {k} 步" if k < n else f"AG 第 {k - n + 1} 步", fontsize=11)
        ax.set_xticks(range(state.shape[1]))
        ax.set_yticks(range(n))
        ax.tick_params(labelsize=10)
    for ax in axes[1]:
        ax.set_xlabel("块", fontsize=10)
    for ax in axes[:, 0]:
        ax.set_ylabel("rank", fontsize=10)
    fig.suptitle(
        f"ring all-reduce，{n} 个 rank（初始每格为 1）：\n每块已经累加了几个 rank", fontsize=11
    )
    return fig


# --8<-- [end:plot_ring]


# --8<-- [start:launch]
if __name__ == "__main__":
    print(f"torch {torch.__version__}, W = {WORLD_SIZE}, BATCH = {BATCH}, N = {N}")
    ranks, checkpoint = run_ddp()  # each rank prints its own lines
# --8<-- [end:launch]
