"""Sessions for Runnable Notes. `nox` runs what CI runs; `nox -l` lists them all."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests", "docs"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

CONSTRAINTS = ("-c", "constraints.txt")
ENV = {"NO_MKDOCS_2_WARNING": "1"}  # Material 9.8's end-of-life banner


def install_project(session: nox.Session, *extras: str) -> None:
    """The project and its pinned dependencies (torch from pip: see README)."""
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install(*CONSTRAINTS, "-e", spec)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and formatting."""
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Snippet tests against their oracles, plugin unit tests and fixture-site builds."""
    install_project(session, "dev")
    session.run("pytest", *(session.posargs or ["tests/snippets", "tests/plugins"]), env=ENV)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site with --strict: every fence executes (or comes from the cache)."""
    install_project(session)
    session.run("mkdocs", "build", "--strict", *session.posargs, env=ENV)


@nox.session(name="docs-serve")
def docs_serve(session: nox.Session) -> None:
    """Serve the site on http://127.0.0.1:8000, rebuilding when docs or snippets change."""
    install_project(session)
    session.run("mkdocs", "serve", "--livereload", *session.posargs, env=ENV)
