"""Figures in snippet tests are measured with the fonts the build draws them with."""

from __future__ import annotations

import matplotlib

from plugins.runnable.figures import RC, register_font

matplotlib.use("Agg")
register_font()  # Chinese labels: the pinned CJK font, as in the build's workers
matplotlib.rcParams.update(RC)
