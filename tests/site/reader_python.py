"""A reader's Python for the copy-paste tests: each script runs in a fork of this process.

Run as `python -I tests/site/reader_python.py` by the readers' interpreter (the one with
only torch, numpy and matplotlib). It imports those three once, then for each request (a
JSON line on stdin: script, cwd, stdout and stderr files, timeout) forks a child that runs
the script as `python -I script` would: as a fresh `__main__`, from `cwd`, with `sys.argv ==
[script]`, stdin from /dev/null, an uncaught exception printed by `sys.excepthook` and exit
status 1. It answers with a JSON line: the child's exit status, or null past the timeout
(the child and its own children are then killed).

Importing torch, numpy and matplotlib.pyplot takes a fresh interpreter ~3 s (more with the
other worker busy), about a third of what the copy-paste session spent per script. The
child starts from an interpreter that imported them and ran nothing else: a script still
gets fresh globals (a missing `import` fails as it would for a reader), the same sys.path
(`-I`: no script directory, no user site), torch's default seed and no OpenMP threads yet.
Processes the script spawns (`torch.multiprocessing.spawn`) are fresh interpreters.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import json
import os
import signal
import sys
import time
import types

import matplotlib.pyplot  # noqa: F401 (imported once, for every child)
import numpy  # noqa: F401
import torch  # noqa: F401


def run(script: str, cwd: str, stdout: str, stderr: str) -> None:
    """In the child: `python -I script` from `cwd`; never returns."""
    os.setpgid(0, 0)  # a group of its own: a timeout kills what it spawned too
    os.chdir(cwd)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for fd, path in ((1, stdout), (2, stderr)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.argv = [script]
    # The `__main__` module Python makes for a script (pylifecycle.c add_main_module and
    # pythonrun.c): runpy.run_path's differs (no __annotations__, no loader, __package__ "").
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __annotations__={},
        __builtins__=builtins,
        __file__=script,
        __cached__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", script),
    )
    sys.modules["__main__"] = main
    try:
        with open(script, "rb") as file:
            code = compile(file.read(), script, "exec")
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException:
        sys.excepthook(*sys.exc_info())
        sys.exit(1)
    sys.exit(0)


def wait(pid: int, timeout: float) -> int | None:
    """The child's exit status (negative: killed by that signal); None past `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            run(request["script"], request["cwd"], request["stdout"], request["stderr"])
        returncode = wait(pid, request["timeout"])
        print(json.dumps({"returncode": returncode}), flush=True)


if __name__ == "__main__":
    main()
