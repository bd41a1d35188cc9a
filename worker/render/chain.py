"""The fallback chain every formula goes through, with a bounded content-hash cache.

primary engine (MathJax) → secondary (matplotlib) → exact Unicode text → the LaTeX source in a
code block. Every formula ends up shown somehow; no input raises. Inputs longer or deeper than
the Style bounds skip the engines altogether.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from worker.render.errors import RenderError
from worker.render.style import STYLE
from worker.render.texutil import nesting_depth
from worker.render.unicode import to_unicode


class Engine(Protocol):
    name: str

    def formula(self, tex: str, display: bool, emphasis: bool = False) -> bytes: ...

    def paragraph(self, pieces: list[dict[str, Any]]) -> bytes: ...


@dataclass(frozen=True)
class Picture:
    png: bytes
    engine: str
    width: int
    height: int


@dataclass(frozen=True)
class TextForm:
    text: str
    """Markdown shown instead of a picture."""
    how: Literal["unicode", "source"]


Shown = Picture | TextForm


def png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def source_markdown(tex: str, display: bool) -> str:
    """The LaTeX as a code block (display) or code span (inline) that no backtick can break."""
    if display:
        fence = "```"
        while fence in tex:
            fence += "`"
        return f"{fence}latex\n{tex.strip()}\n{fence}"
    ticks = "`"
    while ticks in tex:
        ticks += "`"
    pad = " " if tex.startswith("`") or tex.endswith("`") else ""
    return f"{ticks}{pad}{tex.strip()}{pad}{ticks}"


def within_bounds(tex: str) -> bool:
    return len(tex) <= STYLE.max_tex_chars and nesting_depth(tex) <= STYLE.max_depth


class RenderCache:
    """LRU of rendered results keyed by a hash of what was asked, bounded in entries and bytes."""

    def __init__(self, max_entries: int = 4096, max_bytes: int = 64 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Shown | None] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(*parts: object) -> str:
        return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()

    def get(self, key: str) -> tuple[bool, Shown | None]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return True, self._items[key]
            self.misses += 1
            return False, None

    def put(self, key: str, value: Shown | None) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += _size(value)
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= _size(old)

    def __len__(self) -> int:
        return len(self._items)


def _size(value: Shown | None) -> int:
    return len(value.png) if isinstance(value, Picture) else 256


class Renderer:
    def __init__(self, engines: list[Engine], cache: RenderCache | None = None) -> None:
        self.engines = engines
        self.cache = cache if cache is not None else RenderCache()

    def formula(self, tex: str, display: bool, emphasis: bool = False) -> Shown:
        """The formula as a picture from the first engine that draws it, else as text."""
        tex = tex.strip()
        key = self.cache.key("formula", display, emphasis, tex)
        found, cached = self.cache.get(key)
        if found and cached is not None:
            return cached
        shown: Shown | None = None
        if within_bounds(tex):
            shown = self._picture(lambda engine: engine.formula(tex, display, emphasis))
        if shown is None:
            text = to_unicode(tex)
            if text:
                shown = TextForm(text, "unicode")
            else:
                shown = TextForm(source_markdown(tex, display), "source")
        self.cache.put(key, shown)
        return shown

    def paragraph(self, pieces: list[dict[str, Any]]) -> Picture | None:
        """Prose with inline math as one wrapped picture, or None when no engine can draw it."""
        total = "".join(str(p.get("tex", p.get("text", ""))) for p in pieces)
        key = self.cache.key("paragraph", repr(pieces))
        found, cached = self.cache.get(key)
        if found:
            return cached if isinstance(cached, Picture) else None
        shown: Picture | None = None
        maths = [str(p["tex"]) for p in pieces if "tex" in p]
        if len(total) <= STYLE.max_tex_chars and all(within_bounds(t) for t in maths):
            shown = self._picture(lambda engine: engine.paragraph(pieces))
        self.cache.put(key, shown)
        return shown

    def _picture(self, draw: Callable[[Engine], bytes]) -> Picture | None:
        for engine in self.engines:
            try:
                png = draw(engine)
            except RenderError:
                continue
            width, height = png_size(png)
            return Picture(png, engine.name, width, height)
        return None


_default: Renderer | None = None
_default_lock = threading.Lock()


def default_renderer() -> Renderer:
    """The process-wide renderer: MathJax first when node and its packages are installed."""
    global _default
    with _default_lock:
        if _default is None:
            from worker.render import mathjax
            from worker.render.mpl import MatplotlibEngine

            engines: list[Engine] = []
            if mathjax.installed():
                engines.append(mathjax.MathJaxEngine())
            engines.append(MatplotlibEngine())
            _default = Renderer(engines)
        return _default
