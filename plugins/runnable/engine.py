"""From pages' fences to their results: cache look-ups, parallel execution, failures.

`execute` is the whole build engine without MkDocs: the plugin and the command line
both call it with the fences of every page and render what it returns.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from . import worker
from .cache import Cache, make_key
from .deps import dependencies
from .fences import Fence
from .figures import FONT_PACKAGE
from .runner import FenceResult, PageJob, PageRun, run_pages

#: The packages whose versions every page's key includes (found without importing them).
LIBRARIES = ("torch", "numpy", "matplotlib", FONT_PACKAGE)


class ExecutionFailed(Exception):
    """One or more pages' fences failed; the message lists each with its location."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        noun = "page" if len(failures) == 1 else "pages"
        super().__init__(f"{len(failures)} {noun} failed to execute:\n\n" + "\n\n".join(failures))


@dataclass
class Outcome:
    page: str
    status: str  # "executed", "cached" or "skipped" (execution turned off)
    seconds: float
    fences: list[Fence]
    results: list[FenceResult] | None  # None when skipped


def environment() -> dict:
    """The machine-independent environment every key includes, and the report shows."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return {
        "python": platform.python_version(),
        **versions,
        "plugin": _plugin_digest(),
        "seed_policy": worker.SEED_POLICY,
    }


def _plugin_digest() -> str:
    """A digest of the code that executes fences: editing it invalidates every entry."""
    digest = hashlib.sha256()
    for module in ("worker.py", "runner.py", "figures.py"):
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()[:16]


def page_key(fences: list[Fence], root: Path, env: dict) -> str:
    code = [f.code for f in fences]
    includes = sorted({file for f in fences for file in f.includes})
    return make_key(
        {
            "fences": [f.exec_signature() for f in fences],
            "dependencies": dependencies(code, includes, root),
            "environment": env,
        }
    )


def check(run: PageRun, fences: list[Fence]) -> list[str]:
    """Everything wrong with a page's run: a crash or limit, an error, a missing error."""
    if run.failure:
        return [run.failure]
    problems = []
    for fence, result in zip(fences, run.results, strict=False):
        where = fence.location
        if result.error and not fence.allow_error:
            problems.append(f"{where} raised an exception:\n{result.error}")
        elif fence.allow_error and not result.error:
            problems.append(f'{where} has allow_error="on" but did not raise')
    return problems


def execute(
    pages: dict[str, list[Fence]],
    *,
    root: Path,
    cache: Cache | None,
    workers: int,
    timeout: float,
    off: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> dict[str, Outcome]:
    """Results for every page with fences: from the cache, or executed in parallel.

    `cache=None` executes everything and stores nothing. Raises `ExecutionFailed` after
    all pages have run if any failed; nothing of a failed page is cached.
    """
    pages = {page: fences for page, fences in pages.items() if fences}
    if off:
        return {p: Outcome(p, "skipped", 0.0, f, None) for p, f in pages.items()}
    env = environment()
    outcomes, keys, jobs = {}, {}, []
    for page, fences in pages.items():
        keys[page] = page_key(fences, root, env)
        stored = cache.get(keys[page]) if cache else None
        if stored is not None:
            results = [FenceResult(**r) for r in stored["results"]]
            outcomes[page] = Outcome(page, "cached", stored["seconds"], fences, results)
            log(f"{page} cached (ran {stored['seconds']:.1f}s when executed)")
        else:
            jobs.append(PageJob(page, fences, timeout))
    for path in cache.corrupt if cache else []:
        log(f"cache entry {path} was unreadable; executing its page again")
    if jobs:
        log(f"executing {len(jobs)} of {len(pages)} pages in {min(workers, len(jobs))} workers")
    failures: list[str] = []
    finished_runs: list[PageRun] = []
    started = time.monotonic()

    def finished(run: PageRun) -> None:
        problems = check(run, pages[run.page])
        failures.extend(problems)
        if not problems:
            outcomes[run.page] = Outcome(
                run.page, "executed", run.seconds, pages[run.page], run.results
            )
            if cache:
                value = {"results": [asdict(r) for r in run.results], "seconds": run.seconds}
                cache.put(keys[run.page], value)
        finished_runs.append(run)
        log(_progress(run, problems, started, done=len(finished_runs), total=len(jobs)))

    run_pages(jobs, root=root, workers=workers, on_page=finished)
    if failures:
        raise ExecutionFailed(failures)
    return outcomes


def _progress(run: PageRun, problems: list[str], started: float, *, done: int, total: int) -> str:
    elapsed = time.monotonic() - started
    eta = elapsed / done * (total - done) if done else 0.0
    state = "FAILED" if problems else "executed"
    return f"[{done}/{total}] {run.page} {state} in {run.seconds:.1f}s (elapsed {elapsed:.0f}s, ETA {eta:.0f}s)"


def default_workers() -> int:
    return os.cpu_count() or 1
