"""Runnable Notes' MkDocs plugin: executes Python fences at build time, with a cache.

`RunnablePlugin` is imported on first use, so the worker processes and the command line
(`python -m plugins.runnable PAGE.md`) never import MkDocs.
"""


def __getattr__(name: str):
    if name == "RunnablePlugin":
        from .plugin import RunnablePlugin

        return RunnablePlugin
    raise AttributeError(name)


__all__ = ["RunnablePlugin"]
