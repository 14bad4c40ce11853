"""From pages' fences to their results: cache look-ups, parallel execution, failures.

`execute` is the whole build engine without MkDocs: the plugin and the command line
both call it with the fences of every page and render what it returns. Each executed
page carries the reason it ran (see `reasons.py`); with `shard=(K, N)` only the K-th of
N balanced shares of the pages that miss the cache runs (see `shards.py`).
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from . import shards, worker
from .cache import Cache, make_key
from .deps import dependencies
from .fences import Fence
from .figures import FONT_PACKAGE
from .reasons import describe, explain, fence_material
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
    changes: list[dict] = field(default_factory=list)  # why it executed (see reasons.py)

    @property
    def reason(self) -> str | None:
        """Why the page executed, in one line; None when it did not."""
        return describe(self.changes) if self.status == "executed" else None


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


def page_material(fences: list[Fence], root: Path, env: dict) -> dict:
    """Everything a page's key is made of, small enough to keep for explaining a miss:
    each fence's code (digest) and execution options, the repository files the code
    includes or imports (digests), the packages it imports (versions), the environment."""
    code = [f.code for f in fences]
    includes = sorted({file for f in fences for file in f.includes})
    deps = dependencies(code, includes, root)
    return {
        "fences": [fence_material(f.code, f.exec_signature()["options"]) for f in fences],
        "files": deps["files"],
        "packages": deps["packages"],
        "environment": env,
    }


def page_key(fences: list[Fence], root: Path, env: dict) -> str:
    return make_key(page_material(fences, root, env))


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
    forced_by: str = "RUNNABLE_NO_CACHE=1",
    shard: tuple[int, int] | None = None,
) -> dict[str, Outcome]:
    """Results for every page with fences: from the cache, or executed in parallel.

    `cache=None` executes everything (the reason names `forced_by`) and stores nothing.
    `shard=(K, N)` executes only the K-th of N shares of the pages that miss the cache;
    the others are left out of the result. Raises `ExecutionFailed` after all pages have
    run if any failed; nothing of a failed page is cached.
    """
    pages = {page: fences for page, fences in pages.items() if fences}
    if off:
        return {p: Outcome(p, "skipped", 0.0, f, None) for p, f in pages.items()}
    env = environment()
    outcomes, keys, materials, records, changes = {}, {}, {}, {}, {}
    for page, fences in pages.items():
        materials[page] = page_material(fences, root, env)
        key = keys[page] = make_key(materials[page])
        if cache is None:
            changes[page] = [{"kind": "forced", "by": forced_by}]
            continue
        stored = cache.get(key)
        record = records[page] = cache.last(_record_name(fences))
        if stored is None:
            changes[page] = explain(record, key, materials[page], corrupt=cache.is_corrupt(key))
            continue
        results = [FenceResult(**r) for r in stored["results"]]
        outcomes[page] = Outcome(page, "cached", stored["seconds"], fences, results)
        log(f"{page} cached (ran {stored['seconds']:.1f}s when executed)")
        if record is None or record.get("key") != key:  # the page is back to this key
            _remember(cache, fences, key, materials[page], stored["seconds"])
    for path in cache.corrupt if cache else []:
        log(f"cache entry {path} was unreadable; executing its page again")
    missing = list(changes)
    if shard:
        missing = _share(shard, {p: pages[p] for p in missing}, records, log)
    jobs = [PageJob(page, pages[page], timeout) for page in missing]
    if jobs:
        log(f"executing {len(jobs)} of {len(pages)} pages in {min(workers, len(jobs))} workers")
    failures: list[str] = []
    finished_runs: list[PageRun] = []
    started = time.monotonic()

    def finished(run: PageRun) -> None:
        problems = check(run, pages[run.page])
        failures.extend(problems)
        fences = pages[run.page]
        if not problems:
            outcomes[run.page] = Outcome(
                run.page, "executed", run.seconds, fences, run.results, changes[run.page]
            )
            if cache:
                value = {"results": [asdict(r) for r in run.results], "seconds": run.seconds}
                cache.put(keys[run.page], value)
                _remember(cache, fences, keys[run.page], materials[run.page], run.seconds)
        finished_runs.append(run)
        reason = describe(changes[run.page])
        log(_progress(run, problems, reason, started, done=len(finished_runs), total=len(jobs)))

    run_pages(jobs, root=root, workers=workers, on_page=finished)
    if failures:
        raise ExecutionFailed(failures)
    return outcomes


def _record_name(fences: list[Fence]) -> str:
    """The name a page's records go by: its path from the repository root, which the
    plugin and the command line agree on (the plugin's own page names are docs-relative)."""
    return fences[0].path


def _remember(cache: Cache, fences: list[Fence], key: str, material: dict, seconds: float) -> None:
    cache.remember(
        _record_name(fences), key, seconds=seconds, fences=len(fences), material=material
    )


def _share(
    shard: tuple[int, int],
    missing: dict[str, list[Fence]],
    records: dict[str, dict | None],
    log: Callable[[str], None],
) -> list[str]:
    """The pages of shard `shard` = (K, N) among those that miss the cache."""
    number, count = shard
    costs = shards.estimates({page: len(fences) for page, fences in missing.items()}, records)
    share = shards.assign(costs, count)[number - 1]
    total, mine = sum(costs.values()), sum(costs[page] for page in share)
    log(
        f"shard {number}/{count}: {len(share)} of the {len(missing)} pages that miss the cache "
        f"(estimated {mine:.1f}s of {total:.1f}s)"
    )
    return share  # longest first


def _progress(
    run: PageRun, problems: list[str], reason: str, started: float, *, done: int, total: int
) -> str:
    elapsed = time.monotonic() - started
    eta = elapsed / done * (total - done) if done else 0.0
    state = "FAILED" if problems else "executed"
    return (
        f"[{done}/{total}] {run.page} {state} in {run.seconds:.1f}s "
        f"(elapsed {elapsed:.0f}s, ETA {eta:.0f}s) — {reason}"
    )


def default_workers() -> int:
    return os.cpu_count() or 1
