"""Captured matplotlib figures as SVG, in a light and a dark style, inside the worker.

A fence runs once; the figures it leaves open are saved as they were drawn (the light
style), then re-coloured in place for a dark page and saved again. matplotlib bakes
colours into each artist when it is created, so the dark style is a mapping applied to
the finished figure's artists: greys (text, spines, ticks, grid, frames) are mirrored
between the light page's white and the dark page's text colour, the backgrounds become
transparent, data colours stay (those too dark to see on the dark page get lighter), and
colour-mapped data (images, heatmaps) is left alone.

Text is drawn as paths (`svg.fonttype = "path"`) with DejaVu Sans and, for Chinese,
Noto Sans CJK SC from the pinned `noto-cjk-sans-otc` package: readers need no font, and
two machines with the same versions write the same bytes.
"""

from __future__ import annotations

import colorsys
import io
import logging
import re
import warnings

#: The PyPI package that ships the CJK font (OFL-1.1); its version is part of every key.
FONT_PACKAGE = "noto-cjk-sans-otc"
#: The face of its collection used for Chinese text.
CJK_FAMILY = "Noto Sans CJK SC"

#: matplotlib settings for every page: deterministic SVG, text as paths, Chinese glyphs.
RC = {
    "svg.fonttype": "path",
    "figure.dpi": 100,
    # phone-sized by default (matplotlib's 6.4 in would show 10 pt text below 9 px on a phone)
    "figure.figsize": (5.0, 3.75),
    "savefig.bbox": "tight",
    # Latin from the first sans-serif font (DejaVu Sans); glyphs it lacks from the CJK face.
    "font.family": ["sans-serif", CJK_FAMILY],
}

#: A 390 px phone shows the article in a column about this wide (Material's 0.8 rem margins).
PHONE_COLUMN_PX = 358
#: Figure text smaller than this on that phone cannot be read without zooming in.
MIN_PHONE_TEXT_PX = 9.0

#: Material's slate background (hsl(225, 15%, 14%)) and a text colour readable on it.
DARK_BACKGROUND = (0x1E / 255, 0x21 / 255, 0x29 / 255)
DARK_FOREGROUND = (0xD0 / 255, 0xD3 / 255, 0xDA / 255)
#: A colour whose channels differ by less than this is a grey.
GREY_SPREAD = 0.06
#: Colours darker than this HLS lightness (navy, dark red) are mirrored to light ones.
MIN_DARK_LIGHTNESS = 0.35
#: Colours lighter than this (pastel box fills under black text) become dark tints.
MAX_DARK_LIGHTNESS = 0.75
#: ... with at most this HLS saturation (a pale cream would turn a loud brown).
MAX_TINT_SATURATION = 0.3


def register_font() -> bool:
    """Make the CJK font known to matplotlib; False where the font package is absent."""
    try:
        from noto_cjk_sans_otc import FONT_PATH
    except ImportError:
        return False
    from matplotlib import font_manager

    manager = font_manager.fontManager
    # A system copy of Noto Sans CJK (Debian's fonts-noto-cjk, say) would win ties with the
    # pinned one, and differ from machine to machine: the pinned collection replaces it.
    manager.ttflist = [f for f in manager.ttflist if not f.name.startswith(_NOTO_CJK)]
    manager.addfont(str(FONT_PATH))  # every face of the collection (matplotlib >= 3.11)
    return True


_NOTO_CJK = ("Noto Sans CJK", "Noto Sans Mono CJK")


def capture(salt: str) -> list[dict]:
    """Every open figure as `{"light", "dark", "alt"}` (two SVG documents and its title), closed.

    Raises `MissingGlyphs` if a label has a character no font could draw, `TextTooSmall` if
    a phone would show some text too small to read.
    """
    import matplotlib.pyplot as plt

    captured = []
    for number in plt.get_fignums():
        figure = plt.figure(number)
        alt = title(figure)
        light = _svg(figure, f"{salt}-{number}")
        check_phone_text(figure, light)
        to_dark(figure)
        dark = _svg(figure, f"{salt}-{number}")
        plt.close(figure)
        captured.append({"light": light, "dark": dark, "alt": alt})
    return captured


_SVG_SIZE = re.compile(r'<svg\b[^>]*?\swidth="(?P<w>[\d.]+)pt"[^>]*?\sheight="(?P<h>[\d.]+)pt"')


def svg_size_px(svg: str) -> tuple[float, float] | None:
    """A saved figure's width and height in CSS px (matplotlib writes points; 1 pt = 4/3 px)."""
    size = _SVG_SIZE.search(svg)
    return (float(size["w"]) * 4 / 3, float(size["h"]) * 4 / 3) if size else None


class FigureError(Exception):
    """A figure that must not be published; the message says why, for the build's error."""


class MissingGlyphs(FigureError):
    """A figure's text has characters that no registered font has."""


class _Messages(logging.Handler):
    """Keeps the messages logged to it."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class TextTooSmall(FigureError):
    """A figure's text would be too small to read on a phone."""


def phone_text(figure, svg: str) -> tuple[float, str, float, float]:  # noqa: ANN001 (a Figure)
    """The figure's smallest text as a 390 px phone shows it: (px, text, points, inches wide).

    The SVG is `width` points wide (bbox tight); the browser draws a point as 4/3 px and a
    phone shrinks the image to its column.
    """
    from matplotlib.text import Text

    width_px, _ = svg_size_px(svg)  # matplotlib always writes the size
    scale = min(1.0, PHONE_COLUMN_PX / width_px)
    texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    if not texts:
        return float("inf"), "", 0.0, width_px / 96
    smallest = min(texts, key=lambda t: t.get_fontsize())
    size = smallest.get_fontsize()
    return size * 4 / 3 * scale, smallest.get_text(), size, width_px / 96


def check_phone_text(figure, svg: str) -> None:  # noqa: ANN001 (a matplotlib Figure)
    px, text, size, inches = phone_text(figure, svg)
    if px < MIN_PHONE_TEXT_PX:
        widest = size * 4 / 3 * PHONE_COLUMN_PX / MIN_PHONE_TEXT_PX / 96
        raise TextTooSmall(
            f"a figure's text is too small for a phone: {text!r} ({size:g} pt) shows at {px:.1f} px on a 390 px phone, the figure being "
            f"{inches:.1f} in wide (saved): make the figure at most {widest:.1f} in wide, or "
            f"its text larger (≥ {MIN_PHONE_TEXT_PX} px is readable)"
        )


def _svg(figure, salt: str) -> str:  # noqa: ANN001 (a matplotlib Figure)
    import matplotlib

    buffer = io.StringIO()
    mathtext, logged = logging.getLogger("matplotlib.mathtext"), _Messages()
    mathtext.addHandler(logged)  # mathtext logs its missing glyphs instead of warning
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with matplotlib.rc_context({"svg.hashsalt": salt}):
                figure.savefig(buffer, format="svg", metadata={"Date": None})
    finally:
        mathtext.removeHandler(logged)
    missing = sorted({str(w.message) for w in caught if "missing from font" in str(w.message)})
    if missing:
        raise MissingGlyphs("a figure has characters no font can draw: " + "; ".join(missing))
    if any("does not have a glyph" in m for m in logged.messages):
        raise MissingGlyphs(
            "a figure has characters no font can draw: a label with $...$ is drawn wholly by mathtext, whose fonts have no Chinese: "
            "keep Chinese and $...$ in separate labels; " + "; ".join(sorted(set(logged.messages)))
        )
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return buffer.getvalue()


def title(figure) -> str:  # noqa: ANN001 (a matplotlib Figure)
    """The figure's suptitle, else its axes' titles joined: the default alt text."""
    suptitle = figure.get_suptitle()
    titles = (
        [suptitle]
        if suptitle
        else [
            t
            for ax in figure.axes
            for loc in ("left", "center", "right")
            if (t := ax.get_title(loc))
        ]
    )
    return re.sub(r"\s+", " ", "；".join(titles)).strip()


def dark_color(rgba: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A colour of the light figure as the dark figure shows it (alpha kept)."""
    r, g, b, a = rgba
    if max(r, g, b) - min(r, g, b) < GREY_SPREAD:
        # Greys mirror: black (text) -> the dark page's text colour, white -> its background.
        level = (r + g + b) / 3
        r, g, b = (
            bg + (1 - level) * (fg - bg)
            for bg, fg in zip(DARK_BACKGROUND, DARK_FOREGROUND, strict=True)
        )
        return (r, g, b, a)
    hue, lightness, saturation = colorsys.rgb_to_hls(r, g, b)
    if lightness < MIN_DARK_LIGHTNESS:  # navy, dark red: invisible on the dark page
        r, g, b = colorsys.hls_to_rgb(hue, 1 - lightness, saturation)
    elif lightness > MAX_DARK_LIGHTNESS:  # a pastel fill: mirrored like a grey, hue kept
        low, high = _lightness(DARK_BACKGROUND), _lightness(DARK_FOREGROUND)
        dark = low + (1 - lightness) * (high - low)
        r, g, b = colorsys.hls_to_rgb(hue, dark, min(saturation, MAX_TINT_SATURATION))
    return (r, g, b, a)


def _lightness(rgb: tuple[float, float, float]) -> float:
    return colorsys.rgb_to_hls(*rgb)[1]


def to_dark(figure) -> None:  # noqa: ANN001 (a matplotlib Figure)
    """Re-colour a finished figure's artists for a dark page, in place."""
    from matplotlib.axes import Axes
    from matplotlib.collections import Collection
    from matplotlib.figure import FigureBase
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text

    # The figure's, subfigures' and axes' own backgrounds (not legends or text boxes).
    owners = figure.findobj(lambda a: isinstance(a, FigureBase | Axes))
    backgrounds = {id(owner.patch) for owner in owners}
    # What is drawn over colour-mapped data (cell values, markers on a heatmap) was coloured
    # against the colormap, not the page: it keeps its colours.
    seen = {id(a) for ax in figure.get_axes() if _has_colormapped_data(ax) for a in _data(ax)}
    for artist in figure.findobj():
        if id(artist) in seen:
            continue
        seen.add(id(artist))
        if isinstance(artist, Text):
            artist.set_color(_dark(artist.get_color()))
            for extra in (artist.get_bbox_patch(), getattr(artist, "arrow_patch", None)):
                if extra is not None and id(extra) not in seen:
                    seen.add(id(extra))
                    _patch(extra, background=False)
        elif isinstance(artist, Line2D):
            _line(artist)
        elif isinstance(artist, Patch):
            _patch(artist, background=id(artist) in backgrounds)
        elif isinstance(artist, Collection):
            _collection(artist)
        elif isinstance(artist, Axes):
            continue  # its patch, spines, axes and texts are visited on their own


def _data(ax) -> list:  # noqa: ANN001 (a matplotlib Axes)
    return [*ax.lines, *ax.collections, *ax.patches, *ax.texts, *ax.images]


def _has_colormapped_data(ax) -> bool:  # noqa: ANN001 (a matplotlib Axes)
    from matplotlib.cm import ScalarMappable

    return any(isinstance(a, ScalarMappable) and a.get_array() is not None for a in _data(ax))


def _dark(color):  # noqa: ANN001, ANN202 (any matplotlib colour)
    from matplotlib.colors import to_rgba

    return dark_color(to_rgba(color))


def _is_white(color) -> bool:  # noqa: ANN001 (any matplotlib colour)
    from matplotlib.colors import to_rgba

    return all(channel > 0.98 for channel in to_rgba(color)[:3])


def _patch(patch, *, background: bool) -> None:  # noqa: ANN001 (a matplotlib Patch)
    face = patch.get_facecolor()
    if background and _is_white(face):
        patch.set_facecolor("none")  # the page shows through: no white card
    else:
        patch.set_facecolor(_dark(face))
    patch.set_edgecolor(_dark(patch.get_edgecolor()))


def _line(line) -> None:  # noqa: ANN001 (a matplotlib Line2D)
    line.set_color(_dark(line.get_color()))
    for get, set_ in (
        (line.get_markerfacecolor, line.set_markerfacecolor),
        (line.get_markeredgecolor, line.set_markeredgecolor),
    ):
        color = get()
        if not (isinstance(color, str) and color.lower() == "none"):
            set_(_dark(color))


def _collection(collection) -> None:  # noqa: ANN001 (a matplotlib Collection)
    if collection.get_array() is not None:
        return  # colour-mapped data (heatmaps, coloured scatter): the colormap decides
    faces = collection.get_facecolor()
    if len(faces):
        collection.set_facecolor([dark_color(tuple(c)) for c in faces])
    edges = getattr(collection, "_edgecolors", None)
    if isinstance(edges, str) and edges == "face":
        return  # follows the faces
    edges = collection.get_edgecolor()
    if len(edges):
        collection.set_edgecolor([dark_color(tuple(c)) for c in edges])
