r"""UI-TARS plumbing from scratch: the desktop action grammar (``click(start_box='(x,y)')`` ...)
parsed and printed, Qwen2-VL's ``smart_resize`` (sides multiples of 28, a pixel budget), and
the coordinate maps between model output, resized screenshot and screen. Nothing here executes
an action: a parsed action is data. The tests check the grammar against Python's own ``ast`` and
``smart_resize`` against an exact integer brute force.
"""

# --8<-- [start:imports]
import math
import re
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

# --8<-- [end:imports]


# --8<-- [start:grammar]
# Desktop action space of the UI-TARS prompts; a trailing "?" marks an optional argument.
SPEC = {
    "click": ("start_box",),
    "left_double": ("start_box",),
    "right_single": ("start_box",),
    "drag": ("start_box", "end_box"),
    "hotkey": ("key",),
    "type": ("content",),
    "scroll": ("start_box", "direction"),
    "wait": (),
    "finished": ("content?",),  # finished() in v1 prompts, finished(content='...') later
    "call_user": (),
}
POINT_KEYS = {"start_box", "end_box"}
ALIASES = {
    "point": "start_box",
    "start_point": "start_box",
    "end_point": "end_box",
}  # newer prompts
DIRECTIONS = {"up", "down", "left", "right"}
ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}  # \x -> char

CALL = re.compile(r"\s*([a-z_]+)\((.*)\)\s*", re.S)
KWARG = re.compile(r"\s*([a-z_]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*(?:,|$)", re.S)  # key='...'
POINT = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)|<point>\s*(\d+)\s+(\d+)\s*</point>")


@dataclass
class Action:
    name: str
    args: dict  # start_box/end_box -> (x, y) ints; key/content/direction -> str


def quote(text: str) -> str:
    """Escape so that '...' is a Python string literal with this value (canonical form)."""
    for raw, esc in (("\\", "\\\\"), ("'", "\\'"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.replace(raw, esc)  # backslash first, or later escapes get doubled
    return text


def unquote(body: str) -> str:
    """Inverse of quote; also accepts \\" (the prompts mention it) and \\t."""

    def one(m):
        if m.group(1) not in ESCAPES:
            raise ValueError(f"unknown escape \\{m.group(1)}")
        return ESCAPES[m.group(1)]

    return re.sub(r"\\(.)", one, body, flags=re.S)


def format_action(a: Action) -> str:
    parts = []
    for spec in SPEC[a.name]:
        key = spec.rstrip("?")
        if key not in a.args:
            continue  # only optional arguments may be absent (parse_action enforces it)
        value = a.args[key]
        text = f"({value[0]},{value[1]})" if key in POINT_KEYS else quote(value)
        parts.append(f"{key}='{text}'")
    return f"{a.name}({', '.join(parts)})"


def parse_point(text: str) -> tuple[int, int]:
    text = text.replace("<|box_start|>", "").replace("<|box_end|>", "")  # v1 box tokens
    m = POINT.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a point: {text!r}")
    x, y = (int(g) for g in m.groups() if g is not None)
    return x, y


def parse_action(text: str) -> Action:
    m = CALL.fullmatch(text)
    if m is None or m.group(1) not in SPEC:
        raise ValueError(f"not an action: {text!r}")
    name, body, args, i = m.group(1), m.group(2), {}, 0
    while body[i:].strip():  # one key='value' at a time; never eval()
        kw = KWARG.match(body, i)
        if kw is None:
            raise ValueError(f"bad argument list: {body[i:]!r}")
        key = ALIASES.get(kw.group(1), kw.group(1))
        args[key] = parse_point(kw.group(2)) if key in POINT_KEYS else unquote(kw.group(2))
        i = kw.end()
    required = {s for s in SPEC[name] if not s.endswith("?")}
    allowed = {s.rstrip("?") for s in SPEC[name]}
    if not required <= set(args) <= allowed:
        raise ValueError(f"{name} takes {sorted(allowed)}, got {sorted(args)}")
    if "direction" in args and args["direction"] not in DIRECTIONS:
        raise ValueError(f"bad direction {args['direction']!r}")
    return Action(name, args)


def format_response(thought: str, actions: list[Action]) -> str:
    return f"Thought: {thought}\nAction: " + "\n\n".join(map(format_action, actions))


def parse_response(text: str) -> tuple[str, list[Action]]:
    """'Thought: ...\\nAction: a1\\n\\na2' -> (thought, [a1, a2]); escaped content has no blank line."""
    head, sep, tail = text.partition("\nAction: ")
    if not sep or not head.startswith("Thought: "):
        raise ValueError("expected 'Thought: ...\\nAction: ...'")
    return head.removeprefix("Thought: "), [parse_action(s) for s in tail.split("\n\n")]


# --8<-- [end:grammar]


# --8<-- [start:resize]
IMAGE_FACTOR = 28  # Qwen2-VL: 14-px patches, 2x2 of them merged into one token -> 28 px
MIN_PIXELS = 100 * IMAGE_FACTOR**2  # UI-TARS defaults: 100 to 16384 tokens per image
MAX_PIXELS = 16384 * IMAGE_FACTOR**2
MAX_RATIO = 200


def smart_resize(
    height: int,
    width: int,
    *,
    factor: int = IMAGE_FACTOR,
    min_pixels: int = MIN_PIXELS,
    max_pixels: int = MAX_PIXELS,
) -> tuple[int, int]:
    """(h̄, w̄): multiples of factor, h̄·w̄ in [min_pixels, max_pixels], aspect ratio ≈ kept.

    Same float operations as the reference code, so the results match it bit for bit.
    """
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"aspect ratio above {MAX_RATIO}: {height}x{width}")
    h_bar = max(factor, round(height / factor) * factor)  # nearest multiple; round() ties to even
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:  # shrink both sides by β = sqrt(hw / max), then floor
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:  # grow both sides by β = sqrt(min / hw), then ceil
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


# --8<-- [end:resize]


# --8<-- [start:coords]
def model_to_screen(x, y, *, resized, screen, relative=False) -> tuple[float, float]:
    """Model output -> screen pixels. resized = (h̄, w̄), screen = (H, W).

    UI-TARS-1.5 (Qwen2.5-VL): absolute pixels of the resized image, X = x·W/w̄.
    UI-TARS v1 (Qwen2-VL): relative 0..1000, X = x·W/1000.
    """
    (h_bar, w_bar), (H, W) = resized, screen
    if relative:
        return x * W / 1000, y * H / 1000
    return x * W / w_bar, y * H / h_bar


def screen_to_model(X, Y, *, resized, screen, relative=False) -> tuple[int, int]:
    """Screen pixels -> the integer coordinates a model would print (e.g. for training labels)."""
    (h_bar, w_bar), (H, W) = resized, screen
    if relative:
        return round(X * 1000 / W), round(Y * 1000 / H)
    return round(X * w_bar / W), round(Y * h_bar / H)


# --8<-- [end:coords]


# --8<-- [start:brute]
def brute_resize(
    height, width, *, factor=IMAGE_FACTOR, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
) -> tuple[int, int]:
    """The same rule searched over k = 0, 1, 2, ... in exact integers: no float, no sqrt."""

    def nearest(n):  # multiple of factor nearest to n; a tie goes to the even multiple
        k = min(range(n // factor + 2), key=lambda k: (abs(k * factor - n), k % 2))
        return max(factor, k * factor)

    def shrink(n, m):  # largest k·factor <= n/β = n·sqrt(max/(n·m))  <=>  (k·factor)²·m <= n·max
        # k can exceed n // factor: when h·w <= max < h̄·w̄, β < 1 and this branch enlarges a side
        return next(k for k in range(10**6) if ((k + 1) * factor) ** 2 * m > n * max_pixels)

    def grow(n, m):  # smallest k·factor >= n·β = n·sqrt(min/(n·m))  <=>  (k·factor)²·m >= n·min
        return next(k for k in range(1, 10**6) if (k * factor) ** 2 * m >= n * min_pixels)

    h_bar, w_bar = nearest(height), nearest(width)
    if h_bar * w_bar > max_pixels:
        return factor * shrink(height, width), factor * shrink(width, height)
    if h_bar * w_bar < min_pixels:
        return factor * grow(height, width), factor * grow(width, height)
    return h_bar, w_bar


# --8<-- [end:brute]


# --8<-- [start:demo]
BUTTON = (412, 560, 36, 120)  # top, left, height, width on the demo screen


def demo_screen(H=800, W=1280, button=BUTTON) -> np.ndarray:
    """A flat grey 'desktop' (H, W, 3) in [0, 1] with one red button at (top, left, h, w)."""
    img = np.full((H, W, 3), 0.92)
    img[:40] = 0.75  # title bar
    img[120:700, 160:1120] = 1.0  # a window
    top, left, h, w = button
    img[top : top + h, left : left + w] = (0.85, 0.15, 0.15)
    return img


def perfect_grounding(img: np.ndarray, resized) -> tuple[int, int]:
    """Stand-in for the model: resize like the processor, click the red blob's centre."""
    x = torch.from_numpy(img).permute(2, 0, 1)[None]  # (1, 3, H, W)
    small = F.interpolate(x, size=resized, mode="bicubic", align_corners=False)[0]  # (3, h̄, w̄)
    red = (small[0] > 0.6) & (small[1] < 0.4)
    ys, xs = torch.nonzero(red, as_tuple=True)
    return round(xs.double().mean().item()), round(ys.double().mean().item())  # resized pixels


def plot_click(img, resized, out_xy, *, factor=IMAGE_FACTOR):
    (H, W), (h_bar, w_bar) = img.shape[:2], resized
    right = model_to_screen(*out_xy, resized=resized, screen=(H, W))
    wrong = model_to_screen(*out_xy, resized=resized, screen=(H, W), relative=True)
    fig, ax = plt.subplots(figsize=(5.4, 4.6), layout="constrained")  # <= 5.5 in: phone width
    ax.imshow(img, extent=(0, W, H, 0), interpolation="nearest")
    for gx in np.arange(0, w_bar + 1, factor) * W / w_bar:  # one cell = one visual token
        ax.axvline(gx, color="0.55", lw=0.3)
    for gy in np.arange(0, h_bar + 1, factor) * H / h_bar:
        ax.axhline(gy, color="0.55", lw=0.3)
    ax.plot(*right, "o", ms=11, mfc="none", mec="C0", mew=2.5, label="按 1.5 约定：x·W/w̄")
    ax.plot(*wrong, "x", ms=11, color="C1", mew=3, label="误当 0–1000 相对坐标：x·W/1000")
    ax.set(xlim=(0, W), ylim=(H, 0), xlabel="屏幕 x（像素）", ylabel="屏幕 y（像素）")
    fig.legend(loc="outside lower center", fontsize=10)  # below the axes, off the screenshot
    ax.set_title(
        f"同一个输出 {tuple(out_xy)}，两种坐标约定落在两处\n"
        f"（网格：缩放到 {w_bar}×{h_bar} 后的 28 像素格）",
        fontsize=11,
    )
    return fig


# --8<-- [end:demo]


if __name__ == "__main__":
    a = parse_action("drag(start_box='(10,20)', end_box='(30,40)')")
    print(a, format_action(a))
    print(smart_resize(1080, 1920), smart_resize(4720, 4720))
