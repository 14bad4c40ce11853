r"""Build-time LaTeX → MathML: pages need no math JavaScript and load nothing from a CDN.

pymdownx.arithmatex (generic mode) finds `$...$` and `$$...$$` and wraps them as
`<span class="arithmatex">\(...\)</span>` / `<div class="arithmatex">\[...\]</div>`;
`MathMLExtension` replaces those wrappers with `<math>` in the final HTML of every
conversion, blog excerpts included. A formula that does not convert is recorded in
`errors` (with its LaTeX) and rendered as visible code; the caller fails the build.
"""

from __future__ import annotations

import html
import re
from functools import cache

from latex2mathml.converter import convert as latex_to_mathml
from markdown import Extension, Markdown
from markdown.postprocessors import Postprocessor

_WRAPPED = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*\\(?P<open>[(\[])(?P<latex>.*?)\\[)\]]\s*</(?P=tag)>',
    re.DOTALL,
)


# latex2mathml writes \log, \sin, ... as a bare <mi>, which sets "log P" as "logP" and
# "L \log L" as "LlogL". TeX puts a thin space between such an operator and an ordinary
# symbol on either side (none before an opening parenthesis); so do we. Names under a
# sub/superscript (<msub><mi>log</mi>...) are left alone: their element takes two children.
_NAMES = "log|ln|lg|exp|sin|cos|tan|sinh|cosh|tanh|dim|ker|deg"
_THIN = '<mspace width="0.1667em"></mspace>'
_SPACE_AFTER = re.compile(
    rf"(?<!<msub>)(?<!<msup>)(?<!<msubsup>)<mi>(?:{_NAMES})</mi>(?!<mo stretchy=\"false\">&#x00028;)"
)
_SPACE_BEFORE = re.compile(
    rf"(?:(?<=</mi>)|(?<=</mn>)|(?<=</msub>)|(?<=</msup>))(?=<mi>(?:{_NAMES})</mi>)"
)


# latex2mathml writes \mathbb E, \mathcal N, \mathbf x as <mi mathvariant="...">, which
# Chromium ignores (MathML Core keeps only "normal"): readers saw a plain E, N, x. The
# Mathematical Alphanumeric Symbols block has these letters as characters of their own;
# a few were encoded earlier in Letterlike Symbols and are holes in the block.
_ALPHANUMERIC = {  # variant: (first capital, first small letter, first digit)
    "bold": (0x1D400, 0x1D41A, 0x1D7CE),
    "double-struck": (0x1D538, 0x1D552, 0x1D7D8),
    "script": (0x1D49C, 0x1D4B6, None),
}
_LETTERLIKE = {
    "double-struck": dict(zip("CHNPQRZ", "ℂℍℕℙℚℝℤ", strict=True)),
    "script": dict(zip("BEFHILMRego", "ℬℰℱℋℐℒℳℛℯℊℴ", strict=True)),
}
_VARIANT = re.compile(r'<mi mathvariant="(bold|double-struck|script)">([A-Za-z0-9]+)</mi>')


def _alphanumeric(match: re.Match) -> str:
    variant, text = match[1], match[2]
    capital, small, digit = _ALPHANUMERIC[variant]
    chars = []
    for char in text:
        if char in _LETTERLIKE.get(variant, {}):
            chars.append(_LETTERLIKE[variant][char])
        elif char.isdigit():
            if digit is None:
                return match[0]
            chars.append(chr(digit + int(char)))
        else:
            chars.append(chr((capital if char.isupper() else small) + ord(char.lower()) - ord("a")))
    return "<mi>" + "".join(chars) + "</mi>"


# latex2mathml sets the limits of \max, \min, \sup, \lim ... (and \operatorname*) as
# subscripts, also in display math, where TeX sets them underneath. MathML Core does what
# TeX does for an <munder> whose base is <mo movablelimits="true">: underneath in display
# math, a subscript inline. (\operatorname{argmax} keeps its limits at the side, as in TeX.)
_LIMIT_NAMES = "max|min|sup|inf|lim|lim&#x02006;sup|lim&#x02006;inf|det|gcd|Pr"
_LIMITS = re.compile(rf'<msub><mo(?: movablelimits="true">[^<]*|>(?:{_LIMIT_NAMES}))</mo>')
_MSUB_TAG = re.compile(r"<(/?)msub>")


def _limits_underneath(mathml: str) -> str:
    """Each `<msub>` whose base is such an operator, as `<munder>` with movable limits."""
    while match := _LIMITS.search(mathml):
        depth = 0
        for tag in _MSUB_TAG.finditer(mathml, match.start()):
            depth += -1 if tag[1] else 1
            if depth == 0:
                break
        operator = re.sub(r"^<msub><mo[^>]*>", '<munder><mo movablelimits="true">', match[0])
        mathml = (
            mathml[: match.start()]
            + operator
            + mathml[match.end() : tag.start()]
            + "</munder>"
            + mathml[tag.end() :]
        )
    return mathml


# \big( ... \Bigg]: latex2mathml writes <mo minsize maxsize>, which Chromium sets with an
# operator's space on both sides, and at normal size when it is the base of a script
# (\big)^2). TeX sets them as ordinary symbols: no space; a script goes on the big one.
_SIZED = re.compile(r"<mo ([^>]*\bminsize=[^>]*)>")
_SIZED_BASE = re.compile(r"<(msup|msub|msubsup)>(<mo [^>]*\bminsize=[^>]*>[^<]*</mo>)")
# \lVert, \rVert, \lvert come as a bare <mo> that Chromium stretches to its neighbours'
# height, so one bar of a norm grows and the other (under a ^2) does not, and spaces them as
# infix operators; TeX sets them at one size, as opening and closing symbols.
_BARE_BAR = re.compile(r"<mo>(&#x02016;|&#x0007C;)</mo>")


def _delimiters_as_tex(mathml: str) -> str:
    mathml = _SIZED.sub(r'<mo \1 lspace="0" rspace="0">', mathml)
    mathml = _SIZED_BASE.sub(r"<\1><mrow>\2</mrow>", mathml)
    return _BARE_BAR.sub(r'<mo stretchy="false" lspace="0" rspace="0">\1</mo>', mathml)


# \bar and \hat over one symbol: latex2mathml draws the bar stretchy (Chromium sets it short
# and off-centre over an italic letter) and the hat as an ASCII "^" that Chromium widens to
# the letter (\widehat's look). TeX centres a fixed-size accent: so do these.
_ONE_SYMBOL = r"(?:<mrow>)?<m[ion]>[^<]*</m[ion]>(?:</mrow>)?"
_ACCENTS = (
    (
        re.compile(rf'<mover>({_ONE_SYMBOL})<mo stretchy="true">&#x000AF;</mo></mover>'),
        r'<mover accent="true">\1<mo stretchy="false">&#x000AF;</mo></mover>',
    ),
    (
        re.compile(rf'<mover accent="true">({_ONE_SYMBOL})<mo>&#x0005E;</mo></mover>'),
        r'<mover accent="true">\1<mo stretchy="false">&#x002C6;</mo></mover>',
    ),
)


# \overline{VE}: latex2mathml puts one fixed "―" over the box, which covers its first letter
# only; no font here stretches a horizontal bar. The line is drawn by CSS instead
# (docs/stylesheets/runnable.css, class runnable-overline): a top border as wide as the box.
_OVERLINE_BAR = '<mo accent="true">&#x02015;</mo></mover>'
_MOVER_TAG = re.compile(r"<(/?)mover\b[^>]*>")


def _overline_as_border(mathml: str) -> str:
    while (bar := mathml.find(_OVERLINE_BAR)) >= 0:
        depth = 0  # walk back to the <mover> this bar closes
        for tag in reversed(list(_MOVER_TAG.finditer(mathml, 0, bar))):
            depth += 1 if tag[1] else -1
            if depth < 0:
                break
        base = mathml[tag.end() : bar]
        mathml = (
            mathml[: tag.start()]
            + f'<mrow class="runnable-overline">{base}</mrow>'
            + mathml[bar + len(_OVERLINE_BAR) :]
        )
    return mathml


def _accents_as_tex(mathml: str) -> str:
    for pattern, replacement in _ACCENTS:
        mathml = pattern.sub(replacement, mathml)
    return _overline_as_border(mathml)


# latex2mathml wraps every formula in an <mrow>, and each one-token group ({a} of \frac{a}{b},
# {i} of x_{i}) in another. <math> lays out its children as an <mrow> does, and an <mi> or
# <mn> alone lays out as it does inside its own <mrow> (an <mo> does not: where it stands in
# a row decides its spacing, so those rows stay). Chromium styles and lays out every element,
# and on the formula-heavy posts these rows were a tenth of the page's elements.
_LONE_TOKEN = re.compile(r"<mrow>(<m[in]>[^<]*</m[in]>)</mrow>")
_OUTER_ROW = re.compile(r"\A(<math [^>]*>)<mrow>(.*)</mrow></math>\Z", re.DOTALL)
_ROW_TAG = re.compile(r"<(/?)mrow\b[^>]*>")


def _without_redundant_rows(mathml: str) -> str:
    mathml = _LONE_TOKEN.sub(r"\1", mathml)
    outer = _OUTER_ROW.match(mathml)
    if not outer:
        return mathml
    depth = 0  # the first <mrow> must close at the end, not before: <mrow>a</mrow><mrow>b</mrow>
    for tag in _ROW_TAG.finditer(outer[2]):
        depth += -1 if tag[1] else 1
        if depth < 0:
            return mathml
    return f"{outer[1]}{outer[2]}</math>"


class MathError(ValueError):
    """A formula latex2mathml cannot convert, or converts with a command left over."""

    def __init__(self, latex: str, reason: str, *, message: str | None = None) -> None:
        super().__init__(message or f"cannot convert formula ${latex}$: {reason}")
        self.latex, self.reason = latex, reason


@cache  # listing pages convert a post's formulas again
def to_mathml(latex: str, *, display: bool) -> str:
    """One formula as MathML; raises `MathError` instead of passing bad input through."""
    depth = 0
    for brace in re.findall(r"(?<!\\)[{}]", latex):
        depth += 1 if brace == "{" else -1
        if depth < 0:
            break
    if depth:
        raise MathError(latex, "unbalanced braces")
    try:
        mathml = latex_to_mathml(latex, display="block" if display else "inline")
    except Exception as error:  # latex2mathml raises assorted types on malformed input
        raise MathError(latex, f"{type(error).__name__}: {error}") from None
    mathml = mathml.replace(">\\|<", ">&#x02016;<")  # \big\| etc. come through as "\|"
    leftover = re.search(r">\s*(\\[A-Za-z]+|\\[^A-Za-z\s])", mathml)
    if leftover:  # latex2mathml passes unknown commands through as text
        raise MathError(latex, f"unknown command {leftover[1]}")
    if "<mi>&</mi>" in mathml or 'linebreak="newline"' in mathml:
        raise MathError(latex, "aligned rows are not laid out: use \\begin{array}{rl} or align*")
    mathml = _VARIANT.sub(_alphanumeric, mathml)
    mathml = _accents_as_tex(_delimiters_as_tex(_limits_underneath(mathml)))
    mathml = _SPACE_BEFORE.sub(_THIN, _SPACE_AFTER.sub(lambda m: m[0] + _THIN, mathml))
    return _without_redundant_rows(mathml)


# A `$` left in the prose is a formula arithmatex did not take: it wants no space just
# inside either dollar ("$x + $" stays text), and readers would see raw LaTeX.
_NOT_PROSE = re.compile(r"<(pre|code|math|script|style)\b.*?</\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_STRAY_DOLLAR = re.compile(r"\$[^$\n]*\$?")  # to the next dollar: as in the source


def stray_dollars(text: str) -> list[MathError]:
    """An error for each `$` left in `text`'s prose (code, formulas and scripts aside)."""
    errors = []
    prose = _TAG.sub("\n", _NOT_PROSE.sub("", text))
    for match in _STRAY_DOLLAR.finditer(prose):
        source = html.unescape(match[0]).strip()[:80]
        errors.append(
            MathError(
                source,
                "not a formula",
                message=f"a `$` left in the text, shown to readers as is: {source!r}; "
                "arithmatex takes $...$ as a formula only with no space just inside the "
                "dollars (write &#36; for a dollar sign)",
            )
        )
    return errors


def convert_html(text: str, errors: list[MathError]) -> str:
    """Replace every arithmatex wrapper in `text` by MathML, appending failures to `errors`
    (formulas that do not convert, and `$` left in the prose)."""

    def replace(match: re.Match) -> str:
        latex = html.unescape(match["latex"]).strip()
        display = match["open"] == "["
        try:
            return to_mathml(latex, display=display)
        except MathError as error:
            errors.append(error)
            return f'<code class="runnable-math-error">{html.escape(latex)}</code>'

    converted = _WRAPPED.sub(replace, text)
    errors.extend(stray_dollars(converted))
    return converted


class _MathMLPostprocessor(Postprocessor):
    def __init__(self, md: Markdown, extension: MathMLExtension) -> None:
        super().__init__(md)
        self.extension = extension

    def run(self, text: str) -> str:
        return convert_html(text, self.extension.errors)


class MathMLExtension(Extension):
    """Converts arithmatex output to MathML; failures accumulate in `errors`."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[MathError] = []

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Markdown's API)
        # Priority 5: after the raw-HTML postprocessor (30) has put stashed HTML back.
        md.postprocessors.register(_MathMLPostprocessor(md, self), "runnable_mathml", 5)
