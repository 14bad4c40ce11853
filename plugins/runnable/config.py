"""The `runnable` plugin's configuration schema."""

from __future__ import annotations

from mkdocs.config import config_options as opt
from mkdocs.config.base import Config

from .engine import default_workers


class RunnableConfig(Config):
    enabled = opt.Type(bool, default=True)
    """Execute and render exec fences; false leaves the pages untouched."""

    cache_dir = opt.Type(str, default=".cache/runnable")
    """Where results are stored, relative to mkdocs.yml."""

    timeout = opt.Type((int, float), default=120)
    """Seconds a page's fences may run in all (a fence's `timeout="N"` overrides it)."""

    workers = opt.Type(int, default=default_workers())
    """Worker processes that execute pages in parallel."""
