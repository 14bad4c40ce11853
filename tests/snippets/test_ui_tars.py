"""Tests for snippets/ui_tars.py: the grammar against Python's own parser (ast), smart_resize
against an exact integer search, coordinate maps against exact fractions."""

import ast
from fractions import Fraction

import matplotlib.pyplot as plt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from snippets.ui_tars import (
    DIRECTIONS,
    IMAGE_FACTOR,
    MAX_PIXELS,
    MIN_PIXELS,
    SPEC,
    Action,
    brute_resize,
    demo_screen,
    format_action,
    format_response,
    model_to_screen,
    parse_action,
    parse_response,
    perfect_grounding,
    plot_click,
    screen_to_model,
    smart_resize,
)

SETTINGS = settings(max_examples=60, deadline=None)
QWEN2_VL = {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280}  # transformers' defaults
UI_TARS = {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}

# printable text plus the three control characters a typed string plausibly holds, drawn often
# from the characters that break naive parsers (a quote or backslash next to a comma, say)
TRICKY = "'\"\\\n\r\t(),= "
text = st.text(
    st.sampled_from(TRICKY)
    | st.characters(blacklist_categories=("Cc", "Cs"), whitelist_characters="\n\r\t"),
    max_size=20,
)
point = st.tuples(st.integers(0, 9999), st.integers(0, 9999))


@st.composite
def actions(draw):
    name = draw(st.sampled_from(sorted(SPEC)))
    args = {}
    for spec in SPEC[name]:
        key = spec.rstrip("?")
        if spec.endswith("?") and draw(st.booleans()):
            continue
        if key in ("start_box", "end_box"):
            args[key] = draw(point)
        elif key == "direction":
            args[key] = draw(st.sampled_from(sorted(DIRECTIONS)))
        else:
            args[key] = draw(text)
    return Action(name, args)


@SETTINGS
@given(actions())
def test_printed_action_is_the_python_call_it_claims(a):
    """ast parses format_action(a) as a call a.name(k='v', ...) whose literals are a's values."""
    call = ast.parse(format_action(a), mode="eval").body
    assert isinstance(call, ast.Call) and call.func.id == a.name and not call.args
    values = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    expected = {k: f"({v[0]},{v[1]})" if k.endswith("_box") else v for k, v in a.args.items()}
    assert values == expected


@SETTINGS
@given(actions())
def test_parse_after_print_is_identity(a):
    """parse(print(a)) == a for every action the grammar allows."""
    assert parse_action(format_action(a)) == a


CANONICAL = {  # the grammar's canonical strings, written as regexes independently of the module
    "click": r"click\(start_box='\(P,P\)'\)",
    "left_double": r"left_double\(start_box='\(P,P\)'\)",
    "right_single": r"right_single\(start_box='\(P,P\)'\)",
    "call_user": r"call_user\(\)",
    "drag": r"drag\(start_box='\(P,P\)', end_box='\(P,P\)'\)",
    "scroll": r"scroll\(start_box='\(P,P\)', direction='(up|down|left|right)'\)",
    "type": r"type\(content='S'\)",
    "hotkey": r"hotkey\(key='S'\)",
    "finished": r"finished\((content='S')?\)",
    "wait": r"wait\(\)",
}
P = r"(0|[1-9][0-9]{0,3})"  # no leading zeros: '(007,1)' parses but prints as '(7,1)'
S = r"([^'\\\n\r\x00]|\\\\|\\'|\\n|\\r)*"  # escaped quote, backslash, newline, CR; tab raw


@SETTINGS
@given(
    st.sampled_from(sorted(CANONICAL)).flatmap(
        lambda k: st.from_regex(CANONICAL[k].replace("P", P).replace("S", S), fullmatch=True)
    )
)
def test_print_after_parse_is_identity_on_canonical_strings(s):
    """print(parse(s)) == s for strings generated from the grammar."""
    assert format_action(parse_action(s)) == s


@SETTINGS
@given(text.filter(lambda t: "\nAction: " not in t), st.lists(actions(), min_size=1, max_size=3))
def test_response_round_trip(thought, acts):
    """A whole 'Thought: ...\\nAction: ...' reply with several actions survives print and parse."""
    assert parse_response(format_response(thought, acts)) == (thought, acts)


def test_reference_spellings_of_one_click():
    """v1 box tokens, the newer <point> form and the point= alias all mean one click."""
    want = Action("click", {"start_box": (100, 200)})
    for s in (
        "click(start_box='(100,200)')",
        "click(start_box='<|box_start|>(100,200)<|box_end|>')",
        "click(point='<point>100 200</point>')",
        "click(start_box = '( 100 , 200 )')",
    ):
        assert parse_action(s) == want
    s = r"""type(content='say \"hi\", it\'s 5\\6\n')"""  # \" is accepted, printed unescaped
    assert parse_action(s).args["content"] == ast.literal_eval(s[len("type(content=") : -1])
    assert format_action(parse_action(s)) == r"""type(content='say "hi", it\'s 5\\6\n')"""
    s = r"type(content='a\tb')"  # \t is accepted too, and printed as a raw tab
    assert parse_action(s).args["content"] == ast.literal_eval(s[len("type(content=") : -1])
    assert format_action(parse_action(s)) == "type(content='a\tb')"


@pytest.mark.parametrize(
    "s, key, value",
    [  # an escaped quote or backslash right before the closing quote, a comma or another key
        (r"type(content='it\', said')", "content", "it', said"),
        (r"type(content='\\')", "content", "\\"),
        (r"type(content='a\\\', b=\'c')", "content", "a\\', b='c"),
        (r"finished(content='\'')", "content", "'"),
    ],
)
def test_escapes_next_to_delimiters(s, key, value):
    """Hand-written canonical strings: value as Python reads the literal; printing gives s back."""
    assert ast.literal_eval(s[s.index("=") + 1 : -1]) == value
    assert parse_action(s).args == {key: value} and format_action(parse_action(s)) == s


@pytest.mark.parametrize(
    "bad",
    [
        "tap(start_box='(1,2)')",  # unknown action
        "click()",  # missing argument
        "click(start_box='(1,2)', key='a')",  # extra argument
        "scroll(start_box='(1,2)', direction='sideways')",
        "type(content='unterminated)",
        "type(content='a\\qb')",  # unknown escape
        "click(start_box='(1,2,3,4)')",  # a box, not a point
        "click(start_box=(1,2))",  # not quoted: never eval'd
        "wait() + 1",
    ],
)
def test_rejects(bad):
    """Malformed actions raise ValueError instead of being guessed at."""
    with pytest.raises(ValueError):
        parse_action(bad)


sides = st.integers(1, 20000)


@SETTINGS
@given(sides, sides, st.sampled_from([UI_TARS, QWEN2_VL]))
def test_smart_resize_equals_exact_search_except_at_float_ties(h, w, budget):
    """Float rule == exact integer search, or differs by one factor exactly on a tie."""
    assume(max(h, w) / min(h, w) <= 200)
    check_against_exact(h, w, budget)


def check_against_exact(h, w, budget):
    got, exact = smart_resize(h, w, **budget), brute_resize(h, w, **budget)
    for g, e, n, m in ((got[0], exact[0], h, w), (got[1], exact[1], w, h)):
        if g != e:  # then the exact value n·β sits on a multiple of 28 and floats break the tie
            assert abs(g - e) == IMAGE_FACTOR
            assert e**2 * m in (n * budget["max_pixels"], n * budget["min_pixels"])


@st.composite
def near_budget(draw):
    """(h, w, budget) with h·w within a few rows of max_pixels, where β < 1 can happen."""
    budget = draw(st.sampled_from([UI_TARS, QWEN2_VL]))
    h = draw(st.integers(IMAGE_FACTOR, 3600))
    w0 = budget["max_pixels"] // h
    return h, draw(st.integers(max(1, w0 - 40), w0 + 40)), budget


@SETTINGS
@given(near_budget())
def test_smart_resize_equals_exact_search_near_the_budget(case):
    """Same property where h·w <= max < h̄·w̄ is common (the shrink branch then enlarges)."""
    h, w, budget = case
    assume(max(h, w) / min(h, w) <= 200)
    check_against_exact(h, w, budget)


@pytest.mark.parametrize(
    "h, w, budget, exact, got",
    [
        (4720, 4720, UI_TARS, (3584, 3584), (3556, 3556)),  # 3584² == MAX_PIXELS exactly
        (38, 38, QWEN2_VL, (56, 56), (84, 84)),  # 56² == 56·56 exactly
        (1050, 1680, UI_TARS, (1064, 1680), (1064, 1680)),  # 1050 = 28·37.5: tie to even
        (1078, 1680, UI_TARS, (1064, 1680), (1064, 1680)),  # 1078 = 28·38.5: tie to even
        (3571, 3572, UI_TARS, (3584, 3584), (3584, 3584)),  # 3584² == MAX_PIXELS: kept, no shrink
        # h·w = 980910 <= max < 532·1904 (rounded): β < 1, the "shrink" branch widens 1890 to 1904
        (519, 1890, QWEN2_VL, (504, 1904), (504, 1904)),
        (1080, 1920, UI_TARS, (1092, 1932), (1092, 1932)),  # nearest multiples, within budget
        (
            2880,
            5120,
            UI_TARS,
            (2688, 4760),
            (2688, 4760),
        ),  # sqrt(M·9/16) = 2688, sqrt(M·16/9) = 4778.7
    ],
)
def test_known_ties(h, w, budget, exact, got):
    """Ties, budget edges and screens, pinned by hand (all but 3571x3572 are shown on the page)."""
    assert brute_resize(h, w, **budget) == exact and smart_resize(h, w, **budget) == got


@SETTINGS
@given(sides, sides, st.sampled_from([UI_TARS, QWEN2_VL]))
def test_smart_resize_invariants(h, w, budget):
    """Sides are multiples of 28, pixels within budget, each side within one factor of n·s."""
    assume(max(h, w) / min(h, w) <= 200)
    hb, wb = smart_resize(h, w, **budget)
    assert hb % IMAGE_FACTOR == 0 and wb % IMAGE_FACTOR == 0 and min(hb, wb) >= IMAGE_FACTOR
    assert budget["min_pixels"] <= hb * wb <= budget["max_pixels"]
    near = (max(IMAGE_FACTOR, round(h / 28) * 28), max(IMAGE_FACTOR, round(w / 28) * 28))
    fits = budget["min_pixels"] <= near[0] * near[1] <= budget["max_pixels"]
    target = (
        budget["max_pixels"] if near[0] * near[1] > budget["max_pixels"] else budget["min_pixels"]
    )
    s = 1.0 if fits else (target / (h * w)) ** 0.5  # the common scale of both sides
    for bar, n in ((hb, h), (wb, w)):  # both sides scaled by the same s: aspect ratio kept
        assert abs(bar - n * s) <= IMAGE_FACTOR * (0.5 if fits and n >= 14 else 1) + 1e-6


def test_aspect_ratio_limit():
    """Strips longer than 200:1 are refused, as in the reference."""
    assert smart_resize(10, 2000) == (28, 3976)  # grown to the budget; short side floored at 28
    with pytest.raises(ValueError):
        smart_resize(10, 2001)


screens = st.tuples(st.integers(200, 6000), st.integers(200, 6000)).filter(
    lambda s: max(s) / min(s) <= 4
)


@SETTINGS
@given(screens, st.floats(0, 1), st.floats(0, 1), st.booleans())
def test_coordinate_round_trip(screen, fx, fy, relative):
    """screen -> model -> screen moves a point by at most half a model unit (≤ 1 px if W ≤ 2w̄)."""
    H, W = screen
    resized = smart_resize(H, W)
    X, Y = fx * W, fy * H
    x, y = screen_to_model(X, Y, resized=resized, screen=screen, relative=relative)
    X2, Y2 = model_to_screen(x, y, resized=resized, screen=screen, relative=relative)
    units = (1000, 1000) if relative else (resized[1], resized[0])
    exact = (Fraction(x) * W / units[0], Fraction(y) * H / units[1])  # X = x·W/w̄ exactly
    assert abs(X2 - exact[0]) < 1e-9 and abs(Y2 - exact[1]) < 1e-9
    assert abs(X2 - X) <= W / units[0] / 2 + 1e-9 and abs(Y2 - Y) <= H / units[1] / 2 + 1e-9
    if max(W / units[0], H / units[1]) <= 2:
        assert max(abs(X2 - X), abs(Y2 - Y)) <= 1 + 1e-9


@pytest.mark.parametrize("H, W", [(800, 1280), (1050, 1680), (1200, 1920)])
def test_perfect_grounding_lands_on_button_only_with_the_right_convention(H, W):
    """A click found in the resized image maps back inside the button; x·W/1000 misses it."""
    top, left, h, w = 412, 930, 36, 120  # near the right edge: errors grow with x
    img = demo_screen(H, W, button=(top, left, h, w))
    resized = smart_resize(H, W)
    out = perfect_grounding(img, resized)
    X, Y = model_to_screen(*out, resized=resized, screen=(H, W))
    assert left <= X < left + w and top <= Y < top + h
    Xr, Yr = model_to_screen(*out, resized=resized, screen=(H, W), relative=True)
    assert not (left <= Xr < left + w and top <= Yr < top + h)


def test_plot_click():
    """The figure draws the screenshot and both mapped clicks."""
    img = demo_screen()
    fig = plot_click(img, smart_resize(800, 1280), (996, 436))
    assert len(fig.axes[0].get_lines()) >= 2
    plt.close(fig)
