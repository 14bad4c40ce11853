"""Content-addressed page results on disk.

A key is the SHA-256 of everything that decides a page's output; an entry is one JSON
file named by its key. Entries are written to a temporary file and renamed into place,
so a reader never sees half an entry and two builds at once never corrupt one. An entry
that cannot be read back whole is a miss, never a crash.

Beside the entries, `pages/<digest of page path>/<key>.json` records which key a page had
and what that key was made of (a *record*), so a later build can say why the page runs
again. Every file name is a digest of its content's identity, so cache folders written
by several machines (CI shards) merge by plain copying: a page's latest record is the
one with the newest `when`, whichever folder it came from.
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

    def is_corrupt(self, key: str) -> bool:
        """Whether this build found `key`'s entry unreadable."""
        return self._path(key) in self.corrupt

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
        entry = {"format": FORMAT, "key": key, "value": value}
        _write(self._path(key), json.dumps(entry, ensure_ascii=False))

    def _records(self, page: str) -> Path:
        return self.directory / "pages" / hashlib.sha256(page.encode("utf-8")).hexdigest()[:32]

    def last(self, page: str) -> dict | None:
        """The page's latest record (`key`, `when`, `seconds`, `fences`, `material`), if any."""
        latest = None
        for path in self._records(page).glob("*.json"):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue  # a damaged record only loses the explanation, never a result
            if (
                isinstance(record, dict)
                and record.get("format") == FORMAT
                and record.get("page") == page
                and path.stem == record.get("key")
                and isinstance(record.get("when"), int | float)
                and (latest is None or (record["when"], record["key"]) > latest[0])
            ):
                latest = ((record["when"], record["key"]), path, record)
        if latest is None:
            return None
        os.utime(latest[1])  # used now: kept by `prune`
        return latest[2]

    def remember(self, page: str, key: str, **fields: object) -> None:
        """Record that `page` now has `key` (with `fields`: seconds, fences, material)."""
        record = {"format": FORMAT, "page": page, "key": key, "when": time.time(), **fields}
        path = self._records(page) / f"{key}.json"
        _write(path, json.dumps(record, ensure_ascii=False))
        for older in path.parent.glob("[!.]*.json"):  # only the latest is ever read
            if older != path:
                older.unlink(missing_ok=True)

    def prune(self, *, max_age: float = MAX_AGE_SECONDS) -> int:
        """Delete entries unused for `max_age` seconds and stale temporary files; return the count."""
        if not self.directory.is_dir():
            return 0
        cutoff = time.time() - max_age
        removed = 0
        for path in [*self.directory.glob("*/*.json"), *self.directory.glob("pages/*/*.json")]:
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


def _write(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: a temporary file in the same folder, renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
