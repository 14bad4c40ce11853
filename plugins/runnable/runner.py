"""A pool of worker processes that execute pages' fences, with limits and crash recovery.

Pages run in parallel, one per worker; a page's fences run in order inside its worker.
The parent enforces every limit from outside, so nothing a fence does can get past them:
it kills the worker's whole process group on a timeout or an output flood, notices a
worker that died, starts a new one for the remaining pages, and kills everything on
Ctrl-C. Workers are ordinary (non-daemonic) processes, so fences may start processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from .fences import Fence

#: Output one fence may print before it is stopped.
MAX_OUTPUT_BYTES = 2_000_000
#: Seconds a new worker may take to import its libraries.
STARTUP_TIMEOUT = 180.0
POLL_SECONDS = 0.05


@dataclass
class FenceResult:
    output: str
    figures: list[dict]  # {"light": SVG, "dark": SVG, "alt": the figure's title}
    error: str | None  # the formatted traceback, if the fence raised
    seconds: float


@dataclass
class PageJob:
    page: str  # the page's path, as shown in messages
    fences: list[Fence]
    timeout: float  # seconds for the fences that set no timeout of their own


@dataclass
class PageRun:
    page: str
    results: list[FenceResult] = field(default_factory=list)
    seconds: float = 0.0
    failure: str | None = None  # why the page stopped: timeout, crash, output flood


class Worker:
    """One worker process and the page it is running."""

    def __init__(self, root: Path, tmp: Path, number: int) -> None:
        child_reads, parent_writes = os.pipe()
        parent_reads, child_writes = os.pipe()
        self.log = tmp / f"worker{number}.log"
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1"}
        env["MKDOCS_CONFIG_DIR"] = str(root)  # as markdown-exec's plugin sets it for fences
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "plugins.runnable.worker"]
                + [str(child_reads), str(child_writes), str(root)],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(child_reads, child_writes),
                start_new_session=True,  # its own process group: killed as a whole
            )
        os.close(child_reads)
        os.close(child_writes)
        self.send = Connection(parent_writes, readable=False)
        self.receive = Connection(parent_reads, writable=False)
        self.started = time.monotonic()
        self.ready = False
        self.job: PageJob | None = None
        self.run: PageRun | None = None
        self.fence: int | None = None  # index of the running fence
        self.output: Path | None = None
        self.fence_started = 0.0
        self.page_used = 0.0  # seconds spent by fences that count against the page timeout

    def assign(self, job: PageJob, workdir: Path) -> None:
        self.job, self.run, self.fence, self.page_used = job, PageRun(job.page), None, 0.0
        fences = [
            {
                "code": f.code,
                "origins": list(f.origins),
                "session": f.session,
                "allow_error": f.allow_error,
                "cwd": f.options.get("workdir"),
                "width": f.options.get("width"),
            }
            for f in job.fences
        ]
        self.send.send({"page": job.page, "fences": fences, "workdir": str(workdir)})

    def location(self) -> str:
        return self.job.fences[self.fence or 0].location

    def limit_exceeded(self, now: float) -> str | None:
        """Why the running fence must be stopped now, if it must."""
        if not self.ready:
            if now - self.started > STARTUP_TIMEOUT:
                return f"worker did not start within {STARTUP_TIMEOUT:.0f}s"
            return None
        if self.fence is None:
            return None
        fence = self.job.fences[self.fence]
        elapsed = now - self.fence_started
        if fence.timeout is not None and elapsed > fence.timeout:
            return f'timed out after {fence.timeout:g}s (its timeout="{fence.timeout:g}")'
        if fence.timeout is None and self.page_used + elapsed > self.job.timeout:
            return (
                f"timed out: the page's fences ran past the page timeout of {self.job.timeout:g}s "
                '(raise `timeout` in mkdocs.yml or set timeout="N" on the fence)'
            )
        if self.output and self.output.exists() and self.output.stat().st_size > MAX_OUTPUT_BYTES:
            return f"printed more than {MAX_OUTPUT_BYTES:,} bytes of output; stopped"
        return None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.send.close()
        self.receive.close()

    def close(self) -> None:
        """Let the worker exit on its own; kill what is left (its children) after a moment."""
        self.send.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.kill()

    def death_note(self) -> str:
        code = self.process.wait()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        log = self.log.read_text(errors="replace").strip()[-2000:]
        return f"the worker process died ({how})" + (f"; its last output:\n{log}" if log else "")


def run_pages(
    jobs: list[PageJob],
    *,
    root: Path,
    workers: int,
    on_page: Callable[[PageRun], None] = lambda run: None,
) -> list[PageRun]:
    """Run every job's fences in a pool of `workers` processes; return one run per job."""
    if not jobs:
        return []
    pending = deque(jobs)
    done: list[PageRun] = []
    with tempfile.TemporaryDirectory(prefix="runnable-") as tmp:
        tmp = Path(tmp)
        count = min(workers, len(jobs))
        pool = [Worker(root, tmp, n) for n in range(count)]
        spawned = assigned = count
        try:
            while pending or any(w.job for w in pool):
                for worker in pool:
                    if worker.job is None and pending:
                        assigned += 1
                        worker.assign(pending.popleft(), tmp / f"page{assigned}")
                for connection in wait([w.receive for w in pool if w.job], timeout=POLL_SECONDS):
                    worker = next(w for w in pool if w.receive is connection)
                    finished = _handle(worker)
                    if finished:
                        done.append(finished)
                        on_page(finished)
                now = time.monotonic()
                for i, worker in enumerate(pool):
                    if worker.job is None:
                        continue
                    reason = worker.limit_exceeded(now)
                    if worker.process.poll() is not None and reason is None:
                        reason = worker.death_note()
                    if reason is None:
                        continue
                    worker.kill()
                    worker.run.failure = f"{worker.location()}: {reason}"
                    if worker.fence is not None:
                        worker.run.seconds += now - worker.fence_started
                    done.append(worker.run)
                    on_page(worker.run)
                    pool[i] = Worker(root, tmp, spawned)  # the pool recovers for the other pages
                    spawned += 1
        finally:
            for worker in pool:
                if worker.job is None:
                    worker.close()  # idle: let it exit, then clean up what it started
                else:
                    worker.kill()  # interrupted mid-page (Ctrl-C, an error here)
    return done


def _handle(worker: Worker) -> PageRun | None:
    """Read one message from a worker; return its page's run when the page is complete."""
    try:
        message = worker.receive.recv()
    except (EOFError, OSError):
        return None  # a dead worker is noticed by the caller's poll
    kind = message[0]
    if kind == "ready":
        worker.ready = True
    elif kind == "start":
        worker.fence, worker.output = message[1], Path(message[2])
        worker.fence_started = time.monotonic()
    elif kind == "done":
        result = FenceResult(**message[2])
        worker.run.results.append(result)
        worker.run.seconds += result.seconds
        if worker.job.fences[message[1]].timeout is None:
            worker.page_used += result.seconds
        worker.fence = worker.output = None
    elif kind == "page_done":
        run, worker.job, worker.run = worker.run, None, None
        return run
    return None
