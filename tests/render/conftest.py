"""Fixtures for the renderer tests: fresh engines and renderers (never the shared cache)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from worker.render import mathjax
from worker.render.chain import Engine, RenderCache, Renderer
from worker.render.mathjax import MathJaxEngine
from worker.render.mpl import MatplotlibEngine


@pytest.fixture
def mathjax_engine() -> Iterator[MathJaxEngine]:
    if not mathjax.installed():
        pytest.skip("node + MathJax not installed (bin/setup installs them)")
    engine = MathJaxEngine()
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def renderer(mathjax_engine: MathJaxEngine) -> Renderer:
    engines: list[Engine] = [mathjax_engine, MatplotlibEngine()]
    return Renderer(engines, RenderCache())


def image(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img.convert("RGB")


def count_near(img: Image.Image, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels within tolerance of the colour in every channel."""
    pixels = np.asarray(img, dtype=np.int16)
    close = np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tolerance
    return int(close.all(axis=-1).sum())
