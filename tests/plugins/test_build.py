"""Fixture-site builds: what the built HTML shows and when the build must fail."""

from __future__ import annotations

import re

from fixture_site import Site, fence


def test_outputs_figures_and_classes(site: Site) -> None:
    """A page's source, text output and figure land in the contract's classes."""
    site.page(
        "p.md",
        "# P\n\n"
        + fence('print("hello from the fence")')
        + fence(
            "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])",
            'source="above"',
        ),
    )
    build = site.build()
    assert build.returncode == 0, build.log
    html = build.html("p/index.html")
    assert '<div class="runnable-source">' in html
    assert re.search(r'<div class="runnable-output">.*hello from the fence', html, re.DOTALL)
    assert html.count('<figure class="runnable-figure">\n<img') == 1


def test_output_is_escaped_unless_html_on(site: Site) -> None:
    """Printed markup is shown as text; only html="on" passes it through."""
    site.page(
        "p.md",
        "# P\n\n"
        + fence('print("<script>alert(1)</script>")')
        + fence('print("<b>bold</b>")', 'html="on"')
        + fence('print("<i>plain</i>")', 'source="above"'),
    )
    build = site.build()
    assert build.returncode == 0, build.log
    html = build.html("p/index.html")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" in html
    assert "&lt;i&gt;plain&lt;/i&gt;" in html


def test_raising_fence_fails_with_location(site: Site) -> None:
    """A fence that raises fails the build with path:line, fence id and mapped traceback."""
    site.page(
        "p.md",
        "# P\n\ntext\n\n"
        + fence("x = 1\n\ndef f():\n    raise ValueError('boom')\n\nf()", 'id="broken"'),
    )
    build = site.build()
    assert build.returncode != 0
    assert "docs/p.md:5: fence 'broken' raised an exception" in build.log
    assert 'File "docs/p.md", line 9, in f' in build.log  # the raise, in the page's numbering
    assert "ValueError: boom" in build.log


def test_allow_error_shows_traceback_and_must_raise(site: Site) -> None:
    """allow_error renders the traceback in runnable-error, and fails if nothing raises."""
    site.page("p.md", "# P\n\n" + fence("1 / 0", 'allow_error="on" source="above"'))
    build = site.build()
    assert build.returncode == 0, build.log
    html = build.html("p/index.html")
    assert re.search(r'<div class="runnable-error">.*ZeroDivisionError', html, re.DOTALL)

    site.page("p.md", "# P\n\n" + fence("1 / 1", 'allow_error="on" id="calm"'))
    build = site.build()
    assert build.returncode != 0
    assert "docs/p.md:3: fence 'calm' has allow_error=\"on\" but did not raise" in build.log


def test_unknown_option_and_missing_section_are_errors(site: Site) -> None:
    """Typos in fence options and snippet sections fail with their location."""
    site.page("p.md", "# P\n\n" + fence("pass", 'sesion="x"'))
    build = site.build()
    assert build.returncode != 0
    assert "docs/p.md:3: unknown fence option(s) sesion" in build.log

    site.write("snippets/mod.py", "# --8<-- [start:a]\nA = 1\n# --8<-- [end:a]\n")
    site.page("p.md", "# P\n\n" + fence('--8<-- "snippets/mod.py:b"'))
    build = site.build()
    assert build.returncode != 0
    assert 'docs/p.md:4: section "b" not found' in build.log


def test_snippet_sections_and_sessions(site: Site) -> None:
    """Included sections run and show; a session shares globals across fences."""
    site.write(
        "snippets/mod.py",
        """\
        # --8<-- [start:double]
        def double(x):
            return 2 * x
        # --8<-- [end:double]
        """,
    )
    site.page(
        "p.md",
        "# P\n\n"
        + fence('--8<-- "snippets/mod.py:double"', 'session="s" source="above"')
        + fence("print(double(21))", 'session="s" source="above" result="text"'),
    )
    build = site.build()
    assert build.returncode == 0, build.log
    html = build.html("p/index.html")
    assert "--8&lt;--" not in html and "--8<--" not in html
    assert re.search(r"runnable-output.*\b42\b", html, re.DOTALL)


def test_math_becomes_mathml_and_bad_math_fails(site: Site) -> None:
    """$...$ and $$...$$ become <math>; an unknown command fails the build with its line."""
    site.page("p.md", "# P\n\nInline $\\alpha^2$.\n\n$$\n\\frac{a}{b}\n$$\n")
    build = site.build()
    assert build.returncode == 0, build.log
    html = build.html("p/index.html")
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">' in html
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in html
    assert "arithmatex" not in html

    site.page("p.md", "# P\n\nline\n\nBad $\\notacommand x$.\n")
    build = site.build()
    assert build.returncode != 0
    assert "docs/p.md:5: cannot convert formula $\\notacommand x$" in build.log


def test_runnable_off_renders_code_without_running(site: Site) -> None:
    """RUNNABLE_OFF=1 shows the source but executes nothing."""
    site.page("p.md", "# P\n\n" + fence("raise SystemExit('would fail')"))
    build = site.build(env={"RUNNABLE_OFF": "1"})
    assert build.returncode == 0, build.log
    html = build.html("p/index.html")
    assert "runnable-source" in html and "runnable-output" not in html
    assert build.statuses() == {"p.md": "skipped"}


def test_two_clean_builds_are_identical(site: Site) -> None:
    """Seeded pages with figures give byte-identical HTML without the cache."""
    code = """\
    import random
    import numpy as np
    import torch
    import matplotlib.pyplot as plt
    print(random.random(), np.random.rand(), torch.rand(1).item())
    plt.plot(np.random.rand(5))
    """
    site.page("p.md", "# P\n\n" + fence(code))
    first = site.build(env={"RUNNABLE_NO_CACHE": "1"})
    assert first.returncode == 0, first.log
    html = first.html("p/index.html")
    second = site.build(env={"RUNNABLE_NO_CACHE": "1"})
    assert second.html("p/index.html") == html
