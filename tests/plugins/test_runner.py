"""The worker pool: real capture, sessions, limits and faults, without MkDocs."""

from __future__ import annotations

import random
import textwrap
import time
from pathlib import Path

import pytest
from fixture_site import fence

from plugins.runnable.engine import ExecutionFailed, execute
from plugins.runnable.fences import find_fences


def run(root: Path, pages: dict[str, str], **options):
    """Execute Markdown pages (name -> body) under `root` without a cache."""
    fences = {name: find_fences(body, path=name, root=root) for name, body in pages.items()}
    settings = {"cache": None, "workers": 2, "timeout": 60} | options
    return execute(fences, root=root, **settings)


def test_captures_prints_from_imports_and_child_processes(tmp_path: Path) -> None:
    """fd-level capture keeps prints from imported functions, C-level writes and children."""
    (tmp_path / "helper.py").write_text("def shout():\n    print('from the module')\n")
    code = """\
    import os, subprocess, sys
    from helper import shout
    shout()
    os.write(1, b"raw fd write\\n")
    subprocess.run([sys.executable, "-c", "print('from a child')"], check=True)
    print("stderr too", file=sys.stderr)
    """
    outcome = run(tmp_path, {"p.md": fence(code)})["p.md"]
    assert outcome.results[0].output.splitlines() == [
        "from the module",
        "raw fd write",
        "from a child",
        "stderr too",
    ]


def test_sessions_share_globals_and_others_do_not(tmp_path: Path) -> None:
    """Fences of one session share globals; a fence without a session starts empty."""
    page = (
        fence("x = 1", 'session="a"')
        + fence("print(x + 1)", 'session="a"')
        + fence("print('x' in globals())")
    )
    results = run(tmp_path, {"p.md": page})["p.md"].results
    assert [r.output.strip() for r in results] == ["", "2", "False"]


def test_pages_start_from_the_same_seed(tmp_path: Path) -> None:
    """Every page starts from seed 0 with one torch thread, whichever worker runs it and in
    what order: the first page of a worker imports the libraries, the next finds them."""
    import numpy
    import torch

    code = """\
    import torch, numpy, random
    print(torch.rand(1).item(), numpy.random.rand(), random.random(), torch.get_num_threads())
    """
    outcomes = run(tmp_path, {f"p{i}.md": fence(code) for i in range(4)}, workers=2)
    outputs = {o.results[0].output for o in outcomes.values()}
    torch.manual_seed(0), numpy.random.seed(0), random.seed(0)
    assert outputs == {f"{torch.rand(1).item()} {numpy.random.rand()} {random.random()} 1\n"}


def test_spawned_processes_can_use_fence_functions(tmp_path: Path) -> None:
    """A fence runs as __main__ from a file, so multiprocessing spawn finds its functions."""
    code = """\
    import multiprocessing as mp

    def square(x):
        return x * x

    if __name__ == "__main__":
        with mp.get_context("spawn").Pool(2) as pool:
            print(pool.map(square, range(5)))
    """
    outcome = run(tmp_path, {"p.md": fence(code)}, timeout=120)["p.md"]
    assert outcome.results[0].output.strip() == "[0, 1, 4, 9, 16]"


def failure(tmp_path: Path, code: str, **options) -> str:
    with pytest.raises(ExecutionFailed) as caught:
        run(tmp_path, {"p.md": "# P\n\n" + fence(code, 'id="f"')}, **options)
    return str(caught.value)


def test_hang_is_killed_at_the_page_timeout(tmp_path: Path) -> None:
    """A fence that never ends fails within the timeout plus a little, with its location."""
    started = time.monotonic()
    message = failure(tmp_path, "import time\nwhile True:\n    time.sleep(1)", timeout=3)
    assert time.monotonic() - started < 3 + 30  # worker start-up included
    assert "p.md:3: fence 'f'" in message and "page timeout of 3s" in message


def test_fence_timeout_overrides_the_page_timeout(tmp_path: Path) -> None:
    """timeout="N" on a fence replaces the page's limit for that fence."""
    page = fence("import time\ntime.sleep(2)\nprint('slept')", 'timeout="20"')
    outcome = run(tmp_path, {"p.md": page}, timeout=1)["p.md"]
    assert outcome.results[0].output.strip() == "slept"
    page = fence("import time\ntime.sleep(30)", 'timeout="1" id="short"')
    with pytest.raises(ExecutionFailed, match=r"fence 'short': timed out after 1s"):
        run(tmp_path, {"p.md": page}, timeout=60)


def test_worker_death_fails_the_page_and_the_pool_recovers(tmp_path: Path) -> None:
    """os._exit in a fence fails that page with its location; other pages still run."""
    pages = {
        "dies.md": "# D\n\n" + fence("import os\nos._exit(3)", 'id="exit"'),
        **{f"ok{i}.md": fence(f"print({i})") for i in range(3)},
    }
    with pytest.raises(ExecutionFailed) as caught:
        run(tmp_path, pages, workers=1)
    message = str(caught.value)
    assert "1 page failed" in message
    assert "dies.md:3: fence 'exit': the worker process died (exit code 3)" in message


def test_output_flood_is_stopped(tmp_path: Path) -> None:
    """A fence printing without end is cut at the output limit with a clear error."""
    message = failure(tmp_path, "while True:\n    print('x' * 1000)")
    assert "p.md:3: fence 'f': printed more than" in message


@pytest.mark.parametrize("code", ["raise SystemExit(2)", "raise KeyboardInterrupt"])
def test_exit_and_interrupt_are_fence_errors(tmp_path: Path, code: str) -> None:
    """SystemExit and KeyboardInterrupt inside a fence fail the fence, not the build process."""
    message = failure(tmp_path, code)
    assert "fence 'f' raised an exception" in message
    assert code.split()[1].split("(")[0] in message


def test_edited_module_is_not_stale_in_a_reused_worker(tmp_path: Path) -> None:
    """A worker re-imports repository modules for every page."""
    module = tmp_path / "value.py"
    module.write_text("V = 1\n")
    first = run(tmp_path, {"p.md": fence("from value import V\nprint(V)")})
    module.write_text("V = 2\n")
    second = run(tmp_path, {"p.md": fence("from value import V\nprint(V)")})
    assert [first["p.md"].results[0].output, second["p.md"].results[0].output] == ["1\n", "2\n"]


def test_syntax_error_points_into_the_page(tmp_path: Path) -> None:
    """A syntax error is reported at the page line of the bad code."""
    message = failure(tmp_path, textwrap.dedent("x = 1\ny = (\n"))
    assert 'File "p.md", line 5' in message and "SyntaxError" in message
