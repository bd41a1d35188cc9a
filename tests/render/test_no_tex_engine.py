"""No TeX engine ever runs on model output: TeX programs planted first on PATH are never
started, whatever a formula asks for (file reads, shell escapes, macro loops)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.render.conftest import image
from worker.render import mathjax
from worker.render.chain import RenderCache, Renderer
from worker.render.document import draw_solution
from worker.render.mathjax import MathJaxEngine
from worker.render.mpl import MatplotlibEngine

PROGRAMS = ("tex", "latex", "pdflatex", "xelatex", "lualatex", "dvipng", "dvisvgm", "kpsewhich")
TRICKS = [
    r"\input{/etc/passwd}",
    r"\openin5=/etc/passwd \read5 to\x \x",
    r"\csname input\endcsname{/etc/passwd}",
    r"^^5cinput{/etc/passwd}",
    r"\immediate\write18{touch /tmp/pwned}",
    r"\def\a{\a\a}\a",
    r"\require{action}\toggle{a}{b}\endtoggle",
    r"\href{file:///etc/passwd}{x}",
    r"\text{\input{/etc/shadow}}",
]


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TeX programs first on PATH, each leaving a mark when started; the mark's folder."""
    marks = tmp_path / "marks"
    marks.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in PROGRAMS:
        path = bin_dir / program
        path.write_text(f'#!/bin/sh\ntouch "{marks}/{program}"\nexit 1\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return marks


def draw(trick: str, renderer: Renderer) -> None:
    drawn = draw_solution(f"Consider ${trick}$ and\n\n$$ {trick} $$", trick, renderer)
    for content in drawn.files.values():
        image(content)  # every file is a picture that opens


@pytest.mark.parametrize("trick", TRICKS)
def test_matplotlib_starts_no_tex_program(planted: Path, trick: str) -> None:
    draw(trick, Renderer([MatplotlibEngine()], RenderCache()))
    assert list(planted.iterdir()) == []
    assert not Path("/tmp/pwned").exists()


@pytest.mark.skipif(not mathjax.installed(), reason="node + MathJax not installed (bin/setup)")
def test_mathjax_starts_no_tex_program(planted: Path) -> None:
    engine = MathJaxEngine()  # started with the planted PATH
    try:
        for trick in TRICKS:
            draw(trick, Renderer([engine], RenderCache()))
    finally:
        engine.close()
    assert list(planted.iterdir()) == []
    assert not Path("/tmp/pwned").exists()
