"""Content-addressed page results on disk.

A key is the SHA-256 of everything that decides a page's output; an entry is one JSON
file named by its key. Entries are written to a temporary file and renamed into place,
so a reader never sees half an entry and two builds at once never corrupt one. An entry
that cannot be read back whole is a miss, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

FORMAT = 1
#: Entries no build has used for this long are deleted by `prune`.
MAX_AGE_SECONDS = 7 * 24 * 3600


def make_key(material: dict) -> str:
    """The key of a page: the SHA-256 of its canonical JSON."""
    text = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Cache:
    """A folder of entries `<key[:2]>/<key>.json`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.corrupt: list[Path] = []  # entries found unreadable in this build

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            self.corrupt.append(path)
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key:
            self.corrupt.append(path)
            return None
        os.utime(path)  # used now: kept by `prune`
        return entry["value"]

    def put(self, key: str, value: dict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = json.dumps({"format": FORMAT, "key": key, "value": value}, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(entry)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def prune(self, *, max_age: float = MAX_AGE_SECONDS) -> int:
        """Delete entries unused for `max_age` seconds and stale temporary files; return the count."""
        if not self.directory.is_dir():
            return 0
        cutoff = time.time() - max_age
        removed = 0
        for path in self.directory.glob("*/*.json"):
            try:
                stale = path.stat().st_mtime < cutoff
                if stale or (
                    path.name.startswith(".tmp-") and path.stat().st_mtime < time.time() - 3600
                ):
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass  # another build removed it first
        return removed
