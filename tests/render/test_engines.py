"""The engines, the fallback chain and the bounds, with real node and matplotlib."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.render.conftest import count_near, image
from worker.render.chain import Engine, Picture, RenderCache, Renderer, TextForm
from worker.render.errors import EngineUnavailable, RenderError
from worker.render.mathjax import MathJaxEngine, compatible
from worker.render.mpl import MatplotlibEngine
from worker.render.style import STYLE

PLATE = (0x31, 0x33, 0x38)
GLYPH = (0xDB, 0xDE, 0xE1)
ACCENT = (0xF0, 0xB2, 0x32)


def test_mathjax_draws_light_glyphs_on_an_opaque_dark_plate(mathjax_engine: MathJaxEngine) -> None:
    png = mathjax_engine.formula(r"\frac{a+b}{2} \le \sqrt{x^2+y^2}", display=True)
    img = image(png)
    assert img.getpixel((img.width // 2, 1)) == PLATE  # opaque plate, no transparency
    assert count_near(img, GLYPH, 10) > 50
    # 2x scale: a displayed fraction is well over 2 x 16 px tall, yet the file stays small.
    assert 64 <= img.height <= 200
    assert len(png) < 20_000


def test_boxed_gets_an_accent_frame(mathjax_engine: MathJaxEngine) -> None:
    plain = image(mathjax_engine.formula("x = 5", display=True))
    boxed = image(mathjax_engine.formula(r"x = \boxed{5}", display=True))
    answer = image(mathjax_engine.formula(r"\boxed{5}", display=True, emphasis=True))
    assert count_near(plain, ACCENT) == 0
    assert count_near(boxed, ACCENT) > 40
    assert count_near(answer, ACCENT) > count_near(boxed, ACCENT)


def test_mathjax_handles_environments_and_model_spellings(mathjax_engine: MathJaxEngine) -> None:
    for tex in [
        r"\begin{align*} x &= 1 \\ y &= 2 \end{align*}",
        r"f(x) = \begin{cases} 1 & x > 0 \\ 0 & \text{otherwise} \end{cases}",
        r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}",
        r"x \equiv 3 \pmod{7}, \tfrac12, \dbinom{5}{2}, \displaystyle\sum_{k=1}^n k",
        r"\bold{v} = \emph{velocity}",
        r"x = 1 \tag{1}",
        r"\text{Größe} = 10\,\text{µm}",
    ]:
        assert image(mathjax_engine.formula(tex, display=True)).width > 20, tex


def test_paragraph_wraps_prose_and_math_into_one_picture(mathjax_engine: MathJaxEngine) -> None:
    words = "word " * 60
    pieces: list[dict[str, Any]] = [
        {"text": f"So {words}the answer is ", "bold": False},
        {"tex": r"\frac{1}{2}"},
    ]
    img = image(mathjax_engine.paragraph(pieces))
    width_limit = STYLE.paragraph_width_em * STYLE.em_px * STYLE.scale
    assert img.width <= width_limit + 2 * STYLE.em_px * STYLE.scale
    assert img.height > 3 * STYLE.em_px * STYLE.scale  # several lines


def test_mathjax_errors_are_render_errors(mathjax_engine: MathJaxEngine) -> None:
    with pytest.raises(RenderError, match="Missing close brace"):
        mathjax_engine.formula(r"\frac{1}{2", display=True)
    with pytest.raises(RenderError, match="Undefined control sequence"):
        mathjax_engine.formula(r"\input{/etc/passwd}", display=True)


@pytest.mark.parametrize(
    "tex",
    [
        r"\rule{10000cm}{10000cm}",
        r"\Huge " + r"\sum " * 900,
        r"\newcommand{\a}{\a}\a",
        r"\def\x{\x\x}\x",
    ],
)
def test_hostile_formulas_fail_fast_in_mathjax(mathjax_engine: MathJaxEngine, tex: str) -> None:
    start = time.monotonic()
    with pytest.raises(RenderError):
        mathjax_engine.formula(tex, display=True)
    assert time.monotonic() - start < 10  # bounded (generous: this is a correctness check)
    assert mathjax_engine.formula("x", display=True)  # and the engine still works


def test_mathjax_timeout_restarts_the_process(mathjax_engine: MathJaxEngine) -> None:
    mathjax_engine.formula("x", display=True)
    starts = mathjax_engine.starts
    mathjax_engine.timeout_s = 0.000_001
    with pytest.raises(RenderError, match="timed out"):
        mathjax_engine.formula(r"\sum_{k=1}^{n} k^2", display=True)
    mathjax_engine.timeout_s = 3.0
    assert image(mathjax_engine.formula("y", display=True)).width > 0
    assert mathjax_engine.starts == starts + 1


def test_mathjax_survives_its_process_dying(mathjax_engine: MathJaxEngine) -> None:
    mathjax_engine.formula("x", display=True)
    proc = mathjax_engine._proc
    assert proc is not None
    starts = mathjax_engine.starts
    proc.kill()
    proc.wait()
    # The dead process is noticed before the next request and replaced.
    assert image(mathjax_engine.formula("z", display=True)).width > 0
    assert mathjax_engine.starts == starts + 1


def test_without_node_the_engine_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FATHOM_NODE", "/nonexistent/node")
    engine = MathJaxEngine()
    with pytest.raises(EngineUnavailable):
        engine.formula("x", display=True)


def test_matplotlib_rewrites_common_spellings() -> None:
    engine = MatplotlibEngine()
    for tex in [
        r"x \le 3 \ge 1 \ne 2",
        r"\tfrac{1}{2} + \dfrac{3}{4}",
        r"x \equiv 3 \pmod{7}",
        r"\text{area} = \displaystyle\frac12",
        r"\boxed{42}",
        r"\begin{align*} x &= 1 \\ y &= 2 \end{align*}",
    ]:
        img = image(engine.formula(tex, display=True))
        assert img.getpixel((0, 0)) == PLATE, tex
        assert count_near(img, GLYPH, 10) > 20, tex
    framed = image(engine.formula(r"\boxed{42}", display=True, emphasis=True))
    assert count_near(framed, ACCENT) > 40


def test_matplotlib_refuses_what_it_cannot_draw() -> None:
    engine = MatplotlibEngine()
    for tex in [r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\rule{1cm}{1cm}", "x" * 2000]:
        with pytest.raises(RenderError):
            engine.formula(tex, display=True)


# --- the chain -------------------------------------------------------------------------------


def test_chain_primary_draws_when_it_can(renderer: Renderer) -> None:
    shown = renderer.formula(r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", display=True)
    assert isinstance(shown, Picture)
    assert shown.engine == "mathjax"


def test_chain_falls_back_to_matplotlib_without_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FATHOM_NODE", "/nonexistent/node")
    engines: list[Engine] = [MathJaxEngine(), MatplotlibEngine()]
    shown = Renderer(engines).formula(r"x \le \frac{1}{2}", display=True)
    assert isinstance(shown, Picture)
    assert shown.engine == "matplotlib"


def test_chain_falls_back_to_matplotlib_on_a_primary_timeout(
    mathjax_engine: MathJaxEngine,
) -> None:
    mathjax_engine.timeout_s = 0.000_001
    mathjax_engine.startup_timeout_s = 0.000_001
    shown = Renderer([mathjax_engine, MatplotlibEngine()]).formula("a^2 + b^2", display=True)
    assert isinstance(shown, Picture)
    assert shown.engine == "matplotlib"


def test_chain_falls_back_to_exact_unicode(renderer: Renderer) -> None:
    # Nested deeper than any engine is given: the bound skips both, the text is exact.
    tex = "{" * (STYLE.max_depth + 1) + r"x \le 3" + "}" * (STYLE.max_depth + 1)
    assert renderer.formula(tex, display=True) == TextForm("x ≤ 3", "unicode")


def test_chain_falls_back_to_the_source(renderer: Renderer) -> None:
    shown = renderer.formula(r"\input{/etc/passwd}", display=True)
    assert shown == TextForm("```latex\n\\input{/etc/passwd}\n```", "source")
    assert isinstance(shown, TextForm)
    assert "root:" not in shown.text


def test_chain_bounds_hostile_inputs(renderer: Renderer) -> None:
    start = time.monotonic()
    hostile = [
        r"\frac{" * 300 + "x" + "}{2}" * 300,
        r"\rule{10000cm}{10000cm}",
        r"\sqrt{" + "x+" * 50_000 + "}",  # ~100 KB
        r"\left(" * 200 + "x" + r"\right)" * 200,
    ]
    for tex in hostile:
        shown = renderer.formula(tex, display=True)
        if isinstance(shown, Picture):
            assert shown.width <= STYLE.max_width_px
            assert shown.height <= STYLE.max_height_px
        else:
            assert shown.how == "source"
    assert time.monotonic() - start < 20


def test_source_fallback_cannot_be_broken_by_backticks(renderer: Renderer) -> None:
    shown = renderer.formula("```\\rule{1cm}", display=True)
    assert isinstance(shown, TextForm)
    assert shown.text.startswith("````latex\n")
    assert shown.text.endswith("\n````")


def test_cache_renders_each_formula_once(renderer: Renderer) -> None:
    first = renderer.formula(r"\frac{1}{2}", display=True)
    second = renderer.formula(r"\frac{1}{2}", display=True)
    assert first is second
    assert (renderer.cache.hits, renderer.cache.misses) == (1, 1)
    assert renderer.formula(r"\frac{1}{2}", display=False) is not first


def test_cache_is_bounded() -> None:
    cache = RenderCache(max_entries=3, max_bytes=10_000)
    for i in range(5):
        cache.put(str(i), Picture(b"x" * 100, "test", 1, 1))
    assert len(cache) == 3
    assert cache.get("0") == (False, None)
    cache.put("big", Picture(b"x" * 20_000, "test", 1, 1))
    assert len(cache) == 0


def test_array_column_spacing_is_dropped_for_mathjax(mathjax_engine: MathJaxEngine) -> None:
    tex = r"\begin{array}{@{}c@{\;}c@{}c} & 6_8 \\ \times & 7_8 \\ \cline{2-3} \end{array}"
    want = r"\begin{array}{ccc} & 6_8 \\ \times & 7_8 \\ \hline \end{array}"
    assert compatible(tex) == want
    assert image(mathjax_engine.formula(tex, display=True)).width > 20


def test_a_forked_copy_starts_its_own_node_process(mathjax_engine: MathJaxEngine) -> None:
    import os

    mathjax_engine.formula("x", display=True)
    parent_proc = mathjax_engine._proc
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: render, report whether it used its own process, exit at once
        try:
            ok = mathjax_engine.formula("y", display=True).startswith(b"\x89PNG")
            own = mathjax_engine._proc is not parent_proc
            os.write(write_end, b"1" if ok and own else b"0")
            mathjax_engine.close()
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    assert os.read(read_end, 1) == b"1"
    os.close(read_end)
    # The parent's process was left alone and still answers.
    assert mathjax_engine._proc is parent_proc
    assert mathjax_engine.formula("z", display=True).startswith(b"\x89PNG")


def test_table_rules_are_drawn(mathjax_engine: MathJaxEngine) -> None:
    # MathJax styles table rules through CSS, which the rasteriser never sees.
    plain = image(mathjax_engine.formula(r"\begin{array}{cc} 1 & 2 \\ 3 & 4 \end{array}", True))
    ruled = image(
        mathjax_engine.formula(r"\begin{array}{c|c} 1 & 2 \\ \hline 3 & 4 \end{array}", True)
    )
    assert count_near(ruled, GLYPH, 30) > count_near(plain, GLYPH, 30) + 2 * ruled.width


@pytest.mark.parametrize(
    "definition",
    [
        r"\newcommand{\frac}[2]{0}",
        r"\def\frac#1#2{0}",
        r"\let\frac\relax",
        r"\definecolor{red}{RGB}{49,51,56}",
        r"\DeclarePairedDelimiter\abs{\lvert}{\rvert}",
        r"\newtagform{x}{[}{]}",
    ],
)
def test_definitions_cannot_change_later_renders(
    mathjax_engine: MathJaxEngine, definition: str
) -> None:
    before = mathjax_engine.formula(r"\frac{1}{2} \color{red}{x}", display=True)
    with pytest.raises(RenderError, match="definitions are not allowed"):
        mathjax_engine.formula(definition + r" \frac{1}{2}", display=True)
    assert mathjax_engine.formula(r"\frac{1}{2} \color{red}{x}", display=True) == before
