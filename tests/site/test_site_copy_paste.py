"""A reader's copy-paste: the code each post displays runs in a plain torch/numpy/matplotlib Python.

Run by `nox -s copy-paste` (collected only with RUNNABLE_COPY_PASTE=1), whose interpreter
has torch, numpy and matplotlib installed and not this project (pytest itself is only on
PYTHONPATH, which `python -I` ignores). Each script runs as `python -I script` (no PYTHON*
variables, no script directory or user site on sys.path) in an empty temporary directory,
as a reader's fresh file would: in a fork of a `python -I` that imported torch, numpy and
matplotlib once (`reader_python.py` says what the child shares with a fresh interpreter).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from site_helpers import ROOT, Post, displayed_sources, posts

POSTS = posts()
MODULES = sorted(p for p in (ROOT / "snippets").glob("*.py") if p.name != "__init__.py")
TIMEOUT = 600


def reader_env() -> dict[str, str]:
    """This environment without the runner's variables, one OpenMP thread per process.

    `nox -s copy-paste` runs two readers at once (`-n 2`), on two cores in CI. With torch's
    default of a thread per core each, their OpenMP threads spin waiting for each other: two
    notebooks of small matrix products took 270 s each instead of 11 s. The build's workers
    (one per core) set one torch thread each for the same reason.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RUNNABLE_"))}
    return env | {"OMP_NUM_THREADS": "1"}


def script_env() -> dict[str, str]:
    """The readers' environment for a script: headless matplotlib."""
    return reader_env() | {"MPLBACKEND": "Agg"}


class Reader:
    """The readers' interpreter, started once: `run(script, cwd)` runs a script in a fork."""

    def __init__(self) -> None:
        command = [sys.executable, "-I", str(Path(__file__).with_name("reader_python.py"))]
        self.process = subprocess.Popen(
            command, env=script_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.outputs = Path(tempfile.mkdtemp(prefix="reader-"))  # not in the script's cwd

    def run(self, script: Path, cwd: Path) -> subprocess.CompletedProcess:
        """What `python -I script` in `cwd` returns: exit status, stdout, stderr."""
        out, err = self.outputs / "stdout", self.outputs / "stderr"
        request = {"script": str(script), "cwd": str(cwd), "stdout": str(out)}
        request |= {"stderr": str(err), "timeout": TIMEOUT}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the reader interpreter exited ({self.process.wait()})")
        returncode = json.loads(answer)["returncode"]
        stdout, stderr = (f.read_text(encoding="utf-8", errors="replace") for f in (out, err))
        if returncode is None:
            raise subprocess.TimeoutExpired([script], TIMEOUT, stdout, stderr)
        return subprocess.CompletedProcess([script], returncode, stdout, stderr)

    def close(self) -> None:
        self.process.stdin.close()  # its loop ends
        self.process.wait(timeout=60)
        self.process.stdout.close()
        shutil.rmtree(self.outputs)


@pytest.fixture(scope="session")
def reader() -> Iterator[Reader]:
    reader = Reader()
    yield reader
    reader.close()


def tail(process: subprocess.CompletedProcess, lines: int = 40) -> str:
    return "\n".join((process.stdout + process.stderr).splitlines()[-lines:])


def write_script(path: Path, blocks: list[str]) -> list[range]:
    """Write `blocks` one after another into `path`; the 1-based line range of each."""
    ranges, text, line = [], "", 1
    for block in blocks:
        block = block.rstrip("\n") + "\n\n"
        count = block.count("\n")
        ranges.append(range(line, line + count))
        text += block
        line += count
    path.write_text(text, encoding="utf-8")
    return ranges


def module_level_line(stderr: str, script: Path) -> int | None:
    """The line of `script` whose top-level statement raised (last traceback wins)."""
    pattern = rf'File "{re.escape(str(script))}", line (\d+), in <module>'
    lines = re.findall(pattern, stderr)
    return int(lines[-1]) if lines else None


@pytest.mark.parametrize("module", ["snippets", "plugins", "mkdocs"])
def test_reader_python_lacks_the_project(module: str, reader: Reader, tmp_path: Path) -> None:
    """The interpreter that runs readers' code cannot import this project or MkDocs."""
    script = tmp_path / "probe.py"
    script.write_text(f"import torch, numpy, matplotlib\nimport {module}\n", encoding="utf-8")
    process = reader.run(script, tmp_path)
    assert f"No module named '{module}'" in process.stderr, (
        f"`import {module}` works in {sys.executable}: run this test with `nox -s copy-paste`\n"
        + tail(process)
    )


# What a script sees of its interpreter, and how a failure looks: a reader's fresh
# `python -I` is the oracle for the fork that runs the posts' code.
PROBE = """import json, os, sys
print(json.dumps([__name__, sys.argv, os.getcwd(), sys.path, sys.flags.isolated,
                  sorted(globals()), os.listdir("."), sys.stdin.read()]))
print("to stderr", file=sys.stderr)
{last}
"""


@pytest.mark.parametrize(
    "last", ["", "np.zeros(1)  # numpy not imported here", "raise SystemExit(3)"]
)
def test_reader_runs_a_script_as_a_fresh_interpreter(
    last: str, reader: Reader, tmp_path: Path
) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE.format(last=last), encoding="utf-8")
    fresh = subprocess.run(
        [sys.executable, "-I", str(script)],
        cwd=tmp_path,
        env=script_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    forked = reader.run(script, tmp_path)
    assert (forked.returncode, forked.stdout) == (fresh.returncode, fresh.stdout)
    # The traceback: the fork's has runpy's frames above the script's; the rest is the same.
    assert forked.stderr.splitlines()[-2:] == fresh.stderr.splitlines()[-2:]
    assert module_level_line(forked.stderr, script) == module_level_line(fresh.stderr, script)


@pytest.mark.parametrize("post", POSTS, ids=[p.slug for p in POSTS])
def test_displayed_code_runs_when_pasted(
    post: Post, site_dir: Path, reader: Reader, tmp_path: Path
) -> None:
    """A post's displayed code, concatenated in page order, runs as one plain script.

    A fence marked allow_error="on" is left out of that script; instead the code above it
    followed by that fence must raise, and raise in that fence.
    """
    sources = displayed_sources(post.html_path(site_dir).read_text(encoding="utf-8"))
    shown = [f for f in post.fences() if f.shows_source]
    assert len(sources) == len(shown), "runnable-source blocks differ from fences with source="
    if not sources:
        pytest.skip("the post displays no code")
    failing = {i for i, fence in enumerate(shown) if fence.allow_error}

    # The post's download `<slug>.py` is that script: the displayed code, under a comment header.
    download = post.html_path(site_dir).parent / f"{post.slug}.py"
    assert download.is_file(), f"{post.slug}.py is not next to the post"
    text = download.read_text(encoding="utf-8")
    shown_code = "\n".join(c.rstrip("\n") + "\n" for i, c in enumerate(sources) if i not in failing)
    header, _, body = text.partition("\n\n")
    assert body == shown_code, f"{download.name} differs from the code the page displays"
    assert all(line.startswith("#") for line in header.split("\n")), "header is not comments"
    script = tmp_path / download.name
    script.write_text(text, encoding="utf-8")
    process = reader.run(script, tmp_path)
    if process.returncode:
        pytest.fail(f"{script.name} (all displayed code) failed:\n{tail(process)}", pytrace=False)

    for k in sorted(failing):
        script = tmp_path / f"{post.module}_until_block_{k + 1}.py"
        blocks = [code for i, code in enumerate(sources[:k]) if i not in failing]
        ranges = write_script(script, [*blocks, sources[k]])
        process = reader.run(script, tmp_path)
        line = module_level_line(process.stderr, script)
        where = f"code block {k + 1} (allow_error) of {post.slug}"
        if process.returncode == 0:
            pytest.fail(f"{where} does not raise when pasted", pytrace=False)
        if line not in ranges[-1]:
            pytest.fail(
                f"{where}: the error comes from line {line}:\n{tail(process)}", pytrace=False
            )


@pytest.mark.parametrize("post", POSTS, ids=[p.slug for p in POSTS])
def test_notebook_is_valid_and_runs(post: Post, site_dir: Path, tmp_path: Path) -> None:
    """The post's `<slug>.ipynb` validates (nbformat 4) and runs top to bottom (nbclient)."""
    import nbformat
    from nbclient import NotebookClient

    download = post.html_path(site_dir).parent / f"{post.slug}.ipynb"
    book = nbformat.reads(download.read_text(encoding="utf-8"), as_version=4)
    nbformat.validate(book)
    code = [
        c
        for c in book.cells
        if c.cell_type == "code" and "spawn-setup" not in c.metadata.get("tags", [])
    ]
    assert len(code) == len(post.fences()), "code cells differ from the post's exec fences"
    script = download.with_suffix(".py")  # downloaded with it: spawned processes load it
    (tmp_path / script.name).write_bytes(script.read_bytes())
    client = NotebookClient(
        book,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        # Every cell has run when the kernel stops: a graceful stop of a kernel that imported
        # torch took ~2.3 s more, per notebook, than killing it.
        shutdown_kernel="immediate",
    )
    # The kernel: this interpreter, without the pytest runner's path.
    client.execute(env=reader_env())


@pytest.mark.parametrize("module", MODULES, ids=[m.stem for m in MODULES])
def test_snippet_module_runs_standalone(module: Path, reader: Reader, tmp_path: Path) -> None:
    """`python snippets/<module>.py` runs with nothing but torch, numpy and matplotlib."""
    process = reader.run(module, tmp_path)
    if process.returncode:
        pytest.fail(f"snippets/{module.name} failed:\n{tail(process)}", pytrace=False)
