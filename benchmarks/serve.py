"""The author loop as an author feels it: save a file under `mkdocs serve`, reload the page.

`Server(site)` starts `mkdocs serve --livereload` on a free port in `site` and waits for
its first build; `server.time_edit(url, edit, marker)` saves an edit and polls the served
URL until the HTML contains `marker`, returning the seconds from the save. The dev server
answers a request only once a rebuild in progress has finished, so polling sees the page
as soon as a browser could.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

LIVERELOAD = re.compile(rb"<script>\s*var livereload = .*?</script>", re.DOTALL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`mkdocs serve --livereload` running in `root` (a context manager)."""

    def __init__(self, root: Path, *, env: dict[str, str] | None = None, timeout: float = 900):
        self.root = Path(root)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/"
        self.env = env or {}
        self.timeout = timeout
        self.log_path = self.root / f".serve-{self.port}.log"

    def __enter__(self) -> Server:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
        environ.update({"NO_MKDOCS_2_WARNING": "1", **self.env})
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mkdocs",
                "serve",
                "--livereload",
                "-a",
                f"127.0.0.1:{self.port}",
            ],
            cwd=self.root,
            env=environ,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        started = time.perf_counter()
        self.first_build = None
        while time.perf_counter() - started < self.timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"mkdocs serve exited:\n{self.output()}")
            if b"Serving on" in self.log_path.read_bytes():
                self.first_build = time.perf_counter() - started
                return self
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise TimeoutError(f"mkdocs serve did not start in {self.timeout} s:\n{self.output()}")

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str) -> bytes:
        """The served file, without the script the dev server injects into HTML."""
        try:
            with urllib.request.urlopen(self.base + path.lstrip("/"), timeout=self.timeout) as r:
                return LIVERELOAD.sub(b"", r.read())
        except urllib.error.HTTPError as error:
            return f"HTTP {error.code}".encode()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the serve process has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def time_edit(self, path: str, edit: Callable[[], None], marker: str) -> float:
        """Seconds from `edit()` (the save) until the served `path` contains `marker`.

        `self.last_cpu` is then the CPU seconds the serve process spent meanwhile (its
        rebuild, without worker processes): what the wait would be on an idle core.
        """
        needle = marker.encode("utf-8")
        if needle in self.get(path):
            raise ValueError(f"{path} already shows {marker!r}")
        cpu = self.cpu_seconds()
        started = time.perf_counter()
        edit()
        while time.perf_counter() - started < self.timeout:
            if needle in self.get(path):
                elapsed = time.perf_counter() - started
                self.last_cpu = self.cpu_seconds() - cpu
                return elapsed
            if self.process.poll() is not None:
                raise RuntimeError(f"mkdocs serve exited:\n{self.output()}")
            time.sleep(0.05)
        raise TimeoutError(f"{path} did not show {marker!r} in {self.timeout} s:\n{self.output()}")


def append_paragraph(post: Path, text: str) -> Callable[[], None]:
    """An edit that adds a paragraph at the end of `post`."""

    def edit() -> None:
        with post.open("a", encoding="utf-8") as file:
            file.write(f"\n\n{text}\n")

    return edit


def comment_in_section(module: Path, section: str, text: str) -> Callable[[], None]:
    """An edit that adds `# text` as the first line of the module's section `section`."""

    def edit() -> None:
        source = module.read_text(encoding="utf-8")
        start = re.search(rf"^# --8<-- \[start:{section}\]\n", source, re.MULTILINE)
        if start is None:
            raise ValueError(f"{module} has no `# --8<-- [start:{section}]`")
        module.write_text(
            source[: start.end()] + f"# {text}\n" + source[start.end() :], encoding="utf-8"
        )

    return edit
