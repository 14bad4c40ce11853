"""Why a page executes: what its cache key is made of, and what changed since its last key.

A page's *material* is everything its key hashes, in a form small enough to keep and
compare: a digest of each fence's code and its execution options, the digest of each
repository file it includes or imports, the versions of the packages it imports, and the
environment. The cache keeps the material of each page's last key (`Cache.remember`);
when the key changes, comparing the two materials names the cause.

A change is a small dict (the machine-readable form in `report.json`); `describe` turns a
list of them into one short line.
"""

from __future__ import annotations

import hashlib

#: What a material holds (a record without all of them comes from another format).
PARTS = frozenset({"fences", "files", "packages", "environment"})
#: Environment fields that are not package versions, with how to name their change.
ENVIRONMENT_NAMES = {"plugin": "plugin code changed", "seed_policy": "seed policy changed"}


def fence_material(code: str, options: dict[str, str]) -> dict:
    return {"code": hashlib.sha256(code.encode("utf-8")).hexdigest(), "options": options}


def diff(old: dict, new: dict) -> list[dict]:
    """The changes from material `old` to material `new` (empty: the same key)."""
    changes: list[dict] = []
    old_fences, new_fences = old.get("fences", []), new["fences"]
    if len(old_fences) != len(new_fences):
        changes.append({"kind": "fences", "old": len(old_fences), "new": len(new_fences)})
    else:
        for number, (a, b) in enumerate(zip(old_fences, new_fences, strict=True), start=1):
            for part in ("code", "options"):
                if a.get(part) != b[part]:
                    changes.append({"kind": "fence", "fence": number, "part": part})
    old_files, new_files = old.get("files", {}), new["files"]
    for file in sorted(old_files.keys() | new_files.keys()):
        if file not in new_files:
            changes.append({"kind": "file", "file": file, "change": "removed"})
        elif file not in old_files:
            changes.append({"kind": "file", "file": file, "change": "added"})
        elif old_files[file] != new_files[file]:
            changes.append({"kind": "file", "file": file, "change": "changed"})
    old_env, new_env = old.get("environment", {}), new["environment"]
    for name in sorted(old_env.keys() | new_env.keys()):
        if old_env.get(name) != new_env.get(name):
            if name in ENVIRONMENT_NAMES:
                changes.append({"kind": name})
            else:
                changes.append(_version(name, old_env.get(name), new_env.get(name)))
    reported = {c["name"] for c in changes if c["kind"] == "package"}
    old_packages, new_packages = old.get("packages", {}), new["packages"]
    for name in sorted((old_packages.keys() | new_packages.keys()) - reported):
        if old_packages.get(name) != new_packages.get(name):
            changes.append(_version(name, old_packages.get(name), new_packages.get(name)))
    if not changes:  # a material of another format: the key changed, the cause is unknown
        changes.append({"kind": "unknown"})
    return changes


def _version(name: str, old: str | None, new: str | None) -> dict:
    return {"kind": "package", "name": name, "old": old or "none", "new": new or "none"}


def explain(record: dict | None, key: str, material: dict, *, corrupt: bool) -> list[dict]:
    """Why a page whose key `key` missed the cache runs, given its last `record`."""
    changes = []
    if corrupt:
        changes.append({"kind": "corrupt"})
    if record is None:
        return changes or [{"kind": "new"}]
    if record.get("key") != key:
        old = record.get("material")
        known = isinstance(old, dict) and old.keys() >= PARTS
        changes += diff(old, material) if known else [{"kind": "unknown"}]
    return changes or [{"kind": "pruned"}]


def describe(changes: list[dict]) -> str:
    """One short line for a list of changes."""
    return "; ".join(_describe(change) for change in changes)


def _describe(change: dict) -> str:
    kind = change["kind"]
    if kind == "forced":
        return f"forced ({change['by']})"
    if kind == "new":
        return "no entry yet"
    if kind == "pruned":
        return "its entry was pruned from the cache"
    if kind == "corrupt":
        return "its entry was unreadable"
    if kind == "fences":
        return f"fences added or removed ({change['old']} → {change['new']})"
    if kind == "fence":
        return f"fence {change['fence']}'s {change['part']} changed"
    if kind == "file":
        return {
            "changed": f"{change['file']} changed",
            "added": f"now depends on {change['file']}",
            "removed": f"no longer depends on {change['file']}",
        }[change["change"]]
    if kind == "package":
        return f"{change['name']} {change['old']} → {change['new']}"
    if kind in ENVIRONMENT_NAMES:
        return ENVIRONMENT_NAMES[kind]
    return "its key changed (cache from an older plugin)"
