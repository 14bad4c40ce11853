"""Snippet tests run as the build's workers do: the same fonts for figures, one torch thread."""

from __future__ import annotations

import matplotlib
import pytest
import torch

from plugins.runnable.figures import RC, register_font

matplotlib.use("Agg")
register_font()  # Chinese labels: the pinned CJK font, as in the build's workers


@pytest.fixture(autouse=True)
def build_style():
    """The build's matplotlib settings, for this test only (plugin tests share the process)."""
    with matplotlib.rc_context(RC):
        yield


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread, as the build's workers use (no OpenMP spin-waits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
