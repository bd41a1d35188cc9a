"""Words in other scripts inside formulas (`\\text{số học sinh}`, `\\text{面积}`) are drawn with
real glyphs by both engines, and the final-answer picture has one frame."""

from __future__ import annotations

import numpy as np
import pytest

from tests.render.conftest import image
from worker.render.chain import Engine, Picture, RenderCache, Renderer
from worker.render.document import ANSWER_FILE, draw_solution
from worker.render.fonts import cjk_font_files
from worker.render.mathjax import MathJaxEngine
from worker.render.mpl import MatplotlibEngine

ACCENT = np.array((0xF0, 0xB2, 0x32), dtype=np.int16)

needs_cjk_font = pytest.mark.skipif(
    not cjk_font_files(),
    reason="no CJK font installed (sudo apt-get install fonts-noto-cjk, or FATHOM_CJK_FONT)",
)


def glyphs_differ(engine: Engine, first: str, second: str) -> bool:
    """Two words that differ in one character give different pictures only where the engine
    has glyphs for them: a missing glyph is the same empty box whatever the character."""
    one = engine.formula(rf"x = \text{{{first}}}", display=True)
    two = engine.formula(rf"x = \text{{{second}}}", display=True)
    return bool(np.asarray(image(one)).tolist() != np.asarray(image(two)).tolist())


@pytest.mark.parametrize("engine_name", ["mathjax", "matplotlib"])
def test_vietnamese_words_are_drawn(mathjax_engine: MathJaxEngine, engine_name: str) -> None:
    engine: Engine = mathjax_engine if engine_name == "mathjax" else MatplotlibEngine()
    assert glyphs_differ(engine, "số học sinh", "sọ học sinh")


@needs_cjk_font
@pytest.mark.parametrize("engine_name", ["mathjax", "matplotlib"])
@pytest.mark.parametrize(("first", "second"), [("个苹果", "个香蕉"), ("答え", "答ぇ")])
def test_chinese_and_japanese_words_are_drawn(
    mathjax_engine: MathJaxEngine, engine_name: str, first: str, second: str
) -> None:
    engine: Engine = mathjax_engine if engine_name == "mathjax" else MatplotlibEngine()
    assert glyphs_differ(engine, first, second)


@needs_cjk_font
def test_a_paragraph_with_cjk_prose_is_one_picture(mathjax_engine: MathJaxEngine) -> None:
    renderer = Renderer([mathjax_engine, MatplotlibEngine()], RenderCache())
    shown = renderer.paragraph([{"text": "面积是 "}, {"tex": r"\pi r^2"}])
    assert isinstance(shown, Picture)


def accent_runs(row: np.ndarray) -> int:
    """How many separate stretches of the accent colour a row of pixels crosses."""
    near = (np.abs(row.astype(np.int16) - ACCENT) <= 40).all(axis=-1)
    return int(np.count_nonzero(near[1:] & ~near[:-1]) + int(near[0]))


@pytest.mark.parametrize("engine_name", ["mathjax", "matplotlib"])
def test_the_final_answer_picture_has_a_single_frame(
    mathjax_engine: MathJaxEngine, engine_name: str
) -> None:
    engine: Engine = mathjax_engine if engine_name == "mathjax" else MatplotlibEngine()
    drawn = draw_solution("So $x = 7$.", "7", renderer=Renderer([engine], RenderCache()))
    picture = np.asarray(image(drawn.files[ANSWER_FILE]))
    middle = picture[picture.shape[0] // 2]
    assert accent_runs(middle) == 2  # the plate's left and right edges, nothing inside
