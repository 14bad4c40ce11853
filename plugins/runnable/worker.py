"""The worker process: executes pages' fences and sends their results back.

Started by `runner.py` as `python -m plugins.runnable.worker READ_FD WRITE_FD ROOT`; it
runs one page per job until its input closes. The heavy libraries are imported by the
pages that use them, once per worker, and set up as they are imported (see `prepare`).
Each fence runs as the `__main__` module from a real file, so `multiprocessing` spawn
children can import what it defines, and its output is captured at the file-descriptor
level, so prints from imported functions and from child processes are kept.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import random
import sys
import time
import traceback
import types
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

from .figures import RC, FigureError, capture, register_font

#: The seed every page starts from (part of the cache key: see `SEED_POLICY`).
SEED = 0
SEED_POLICY = f"random/numpy/torch seeded {SEED} per page; torch threads 1"


def _reset_matplotlib(matplotlib: types.ModuleType) -> None:
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    matplotlib.rcdefaults()
    matplotlib.rcParams.update(RC)


#: The state each of these libraries starts every page in, once a page has imported it.
RESET = {
    "numpy": lambda numpy: numpy.random.seed(SEED),
    "torch": lambda torch: torch.manual_seed(SEED),
    "matplotlib": _reset_matplotlib,
}
#: What a worker does once, when a page first imports the library (then the RESET step).
#: Importing torch costs ~3 s of CPU: a worker whose pages never use it does not pay it.
FIRST = {
    "matplotlib": lambda matplotlib: (matplotlib.use("Agg"), register_font()),
    "torch": lambda torch: torch.set_num_threads(1),
}


class _Prepare(importlib.abc.MetaPathFinder):
    """Finds the libraries of RESET as Python would; sets each up once it is loaded."""

    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201 (importlib's API)
        spec = name in RESET and importlib.machinery.PathFinder.find_spec(name, path, target)
        if not spec or not spec.loader:
            return None  # not ours, or not found: the other finders decide
        load = spec.loader.exec_module  # the loader object is this module's own

        def exec_module(module: types.ModuleType) -> None:
            load(module)
            FIRST.get(name, lambda _: None)(module)
            RESET[name](module)

        spec.loader.exec_module = exec_module
        return spec


def prepare() -> None:
    """Set up each library of RESET when a page first imports it (once per worker)."""
    sys.meta_path.insert(0, _Prepare())


def reset(root: Path) -> None:
    """Give the next page a fresh start: seeds, figures, cwd, and repository modules."""
    os.chdir(root)
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and _is_repository_file(Path(file), root):
            del sys.modules[name]  # re-imported from disk: an edited module is never stale
    random.seed(SEED)
    for name, step in RESET.items():
        if name in sys.modules:
            step(sys.modules[name])


def _is_repository_file(file: Path, root: Path) -> bool:
    file = file.resolve()
    return (
        file.is_relative_to(root)
        and not file.is_relative_to(Path(__file__).parent)  # this plugin, running the page
        and not file.is_relative_to(Path(sys.prefix).resolve())
        and "site-packages" not in file.parts
    )


@contextmanager
def captured(path: Path):
    """Send fd 1 and 2 (and so `sys.stdout`, `sys.stderr`, C code, child processes) to `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


@contextmanager
def fence_options(root: Path, cwd: str | None, width: str | None):
    """markdown-exec's `workdir` and `width`: the fence's cwd and `COLUMNS`, then restored."""
    saved_cwd, saved_columns = os.getcwd(), os.environ.get("COLUMNS")
    if cwd:
        os.chdir(root / cwd)
    if width and width != "0":
        os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if cwd:
            os.chdir(saved_cwd)
        if width and width != "0":
            if saved_columns is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = saved_columns


def execute(code: str, file: Path, module: types.ModuleType) -> BaseException | None:
    """Run `code` as the `__main__` module from `file`; return what it raised, if anything."""
    file.write_text(code, encoding="utf-8")
    module.__file__ = str(file)
    saved_main, saved_argv = sys.modules["__main__"], sys.argv
    sys.modules["__main__"], sys.argv = module, [str(file)]
    try:
        exec(compile(code, str(file), "exec"), module.__dict__)
    except BaseException as error:  # SystemExit, KeyboardInterrupt: errors of the fence too
        return error
    finally:
        sys.modules["__main__"], sys.argv = saved_main, saved_argv
    return None


def format_error(error: BaseException, origins: dict[str, list[str]]) -> str:
    """The traceback from the fence down, with fence files mapped back to page/module lines."""
    tb = traceback.TracebackException.from_exception(error)
    frames = list(tb.stack)
    while frames and frames[0].filename not in origins:
        frames.pop(0)  # the worker's own frames
    for frame in frames:
        _ = frame.line  # read the code line before the location is rewritten
        if frame.filename in origins:
            frame.filename, frame.lineno = _origin(origins[frame.filename], frame.lineno)
            frame.colno = frame.end_colno = None
        else:
            frame.filename = _portable(frame.filename)
    tb.stack = traceback.StackSummary.from_list(frames)
    if isinstance(error, SyntaxError) and tb.filename in origins:
        path, line = _origin(origins[tb.filename], int(tb.lineno or 1))
        tb.filename, tb.lineno = path, str(line)  # TracebackException keeps it as text
    return "".join(tb.format()).rstrip()


def _portable(filename: str) -> str:
    """A library path without this machine's prefix: pages must not depend on where Python is."""
    head, marker, tail = filename.rpartition("site-packages/")
    if marker:
        return marker + tail
    for prefix in {sys.prefix, sys.base_prefix}:
        if filename.startswith(prefix + os.sep):
            return "<python>" + filename[len(prefix) :]
    return filename


def _origin(lines: list[str], lineno: int) -> tuple[str, int]:
    where = lines[min(lineno, len(lines)) - 1] if lines else "?:0"
    path, _, line = where.rpartition(":")
    return path, int(line)


def figures(salt: str) -> tuple[list[dict], str | None]:
    """Every open matplotlib figure, light and dark (see `figures.py`), then closed; or why not."""
    if "matplotlib.pyplot" not in sys.modules:
        return [], None
    try:
        return capture(salt), None
    except FigureError as error:
        sys.modules["matplotlib.pyplot"].close("all")
        return [], str(error)


def run_page(job: dict, send, root: Path) -> None:
    """Execute one page's fences in order, sending a message as each starts and ends."""
    reset(root)
    workdir = Path(job["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    sessions: dict[str, types.ModuleType] = {}
    origins: dict[str, list[str]] = {}
    for i, fence in enumerate(job["fences"]):
        file, output = workdir / f"fence{i + 1}.py", workdir / f"fence{i + 1}.out"
        origins[str(file)] = fence["origins"]
        session = fence["session"]
        module = sessions.get(session) if session else None
        if module is None:
            module = types.ModuleType("__main__")
            if session:
                sessions[session] = module
        send(("start", i, str(output)))
        started = time.perf_counter()
        with captured(output), fence_options(root, fence["cwd"], fence["width"]):
            error = execute(fence["code"], file, module)
        drawn, problem = figures(f"{job['page']}:{i + 1}")
        result = {
            "output": output.read_text(encoding="utf-8", errors="replace"),
            "figures": drawn,
            "error": format_error(error, origins) if error else problem,
            "seconds": time.perf_counter() - started,
        }
        send(("done", i, result))
        if error and not fence["allow_error"]:
            break  # later fences build on this one


def main(argv: list[str]) -> None:
    receive = Connection(int(argv[1]), writable=False)
    send = Connection(int(argv[2]), readable=False)
    root = Path(argv[3]).resolve()
    sys.path.insert(0, str(root))
    sys.stdout.reconfigure(line_buffering=True)  # keep prints and tracebacks in order
    prepare()
    send.send(("ready",))
    while True:
        try:
            job = receive.recv()
        except EOFError:
            return
        run_page(job, send.send, root)
        send.send(("page_done",))


if __name__ == "__main__":
    main(sys.argv)
