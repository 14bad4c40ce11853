"""Sessions for Runnable Notes. `nox` runs what CI runs; `nox -l` lists them all."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests", "docs", "e2e", "copy-paste"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

CONSTRAINTS = ("-c", "constraints.txt")
ENV = {"NO_MKDOCS_2_WARNING": "1"}  # Material 9.8's end-of-life banner


#: One virtualenv for the sessions that run the project (tests, docs, docs-serve, e2e, bench):
#: the project with its dev tools and Playwright. One each would unpack torch's 190 MB wheel
#: (torch from pip: see README) four times, ~1.5 min each.
PROJECT = Path(".nox", "project")


def project(session: nox.Session, *command: str, env: dict[str, str] = ENV) -> None:
    """Run `command` from the shared project virtualenv, installed once per set of pins."""
    bin_dir = PROJECT.resolve() / "bin"
    pins = Path("constraints.txt").read_bytes() + Path("pyproject.toml").read_bytes()
    installed = PROJECT / f".installed-{hashlib.sha256(pins).hexdigest()[:12]}"
    if not installed.exists():
        venv = (sys.executable, "-m", "virtualenv", "--clear", str(PROJECT))
        session.run_install(*venv, external=True, silent=True)
        pip = (str(bin_dir / "python"), "-m", "pip", "install", *CONSTRAINTS)
        session.run_install(*pip, "-e", ".[dev]", "playwright", external=True, silent=True)
        if (bin_dir / "pytest").exists():  # not when --no-install skipped the install
            installed.touch()
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**env, "VIRTUAL_ENV": str(PROJECT.resolve()), "PATH": path}
    session.run(str(bin_dir / command[0]), *command[1:], env=env, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and formatting."""
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Snippet tests against their oracles, plugin unit tests and fixture-site builds."""
    # Two processes: the plugin tests' time limits leave room for a busy machine.
    default = ("-n", "2", "tests/snippets", "tests/plugins")
    project(session, "pytest", *(session.posargs or default))


@nox.session(venv_backend="none")
def docs(session: nox.Session) -> None:
    """Build the site into site/ with --strict: every fence executes (or comes from the cache).

    `e2e` and `copy-paste` require this session and test this build (on a fresh clone it
    executed every fence, so the reproducibility check compares two clean builds).
    """
    project(session, "mkdocs", "build", "--strict")


@nox.session(name="docs-serve", venv_backend="none")
def docs_serve(session: nox.Session) -> None:
    """Serve the site on http://127.0.0.1:8000, rebuilding when docs or snippets change."""
    project(session, "mkdocs", "serve", "--livereload", *session.posargs)


SITE_ENV = {**ENV, "RUNNABLE_SITE_DIR": "site"}  # tests/site read the `docs` session's site
# Two pytest processes: browser visits and pasted scripts wait on Chromium and subprocesses.
# A post's browser tests share one process (its page opens once): tests/site/conftest.py.
PARALLEL = ("-n", "2")


@nox.session(requires=["docs"], venv_backend="none")
def e2e(session: nox.Session) -> None:
    """The built site in Chromium (Playwright), its links and consistency, one more clean build."""
    project(session, "pytest", *PARALLEL, *(session.posargs or ["tests/site"]), env=SITE_ENV)


@nox.session(name="copy-paste", requires=["docs"])
def copy_paste(session: nox.Session) -> None:
    """Each post's displayed code and each snippets/*.py, run with only torch, numpy, matplotlib.

    pytest runs from a --target folder on PYTHONPATH, which the readers' `python -I` ignores.
    """
    session.install(*CONSTRAINTS, "torch", "numpy", "matplotlib")
    session.install(*CONSTRAINTS, "nbformat", "nbclient", "ipykernel")  # runs the .ipynb
    pins = hashlib.sha256(Path("constraints.txt").read_bytes()).hexdigest()[:12]
    runner = Path(session.cache_dir) / f"copy-paste-pytest-{pins}"
    if not (runner / ".installed").exists():
        packages = ("pytest", "pytest-xdist", "pyyaml")
        session.install("--upgrade", "--target", str(runner), *CONSTRAINTS, *packages)
        (runner / ".installed").touch()
    env = {**SITE_ENV, "PYTHONPATH": str(runner), "RUNNABLE_COPY_PASTE": "1"}
    tests = "tests/site/test_site_copy_paste.py"
    session.run("python", "-m", "pytest", *PARALLEL, tests, *session.posargs, env=env)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Build times as ratios to the floor; `-- --posts 36` times a synthetic 36-post copy.

    Synthetic mode adds the excerpt change's ratios, the search index's size and the
    `mkdocs serve` author loop; `--no-cold` skips the builds that execute code.
    """
    project(session, "python", "benchmarks/bench.py", *session.posargs)


LIGHTHOUSE = "13.5.0"  # from npm, into nox's cache folder; Chromium is Debian's


@nox.session(requires=["docs"])
def lighthouse(session: nox.Session) -> None:
    """Lighthouse (mobile) on every post and the home page, served with gzip: a table of scores.

    Fails below performance 90, accessibility 100, best practices 100, SEO 100.
    LIGHTHOUSE_PAGES="home autograd" picks pages; CHROME_PATH another Chromium.
    """
    session.install(*CONSTRAINTS, "pyyaml")
    prefix = Path(session.cache_dir) / f"lighthouse-{LIGHTHOUSE}"
    binary = prefix / "node_modules" / ".bin" / "lighthouse"
    if not binary.exists():
        session.run(
            "npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
            f"lighthouse@{LIGHTHOUSE}", external=True,
        )  # fmt: skip
    env = {"CHROME_PATH": "/usr/bin/chromium"}
    session.run("python", "tests/site/lighthouse.py", "site", str(binary), env=env)
