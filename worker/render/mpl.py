"""The secondary engine: matplotlib mathtext (in-process, no node needed).

mathtext lacks environments, `\\boxed`, `\\le`, `\\pmod`, `\\tfrac`, `\\text`… (FACTS.md); a
small rewrite layer maps the common spellings onto what it has, and multi-line environments
(align*, aligned, gather, split…) are drawn row by row. Matrices and cases are left to the next
step of the chain. It runs in-process and cannot be interrupted, so the input is bounded (length,
nesting, rows) before anything is drawn, and the raster is checked before it is painted.
"""

from __future__ import annotations

import io
import re
from functools import cache
from typing import TYPE_CHECKING

from worker.render.errors import RenderError
from worker.render.fonts import cjk_font_files
from worker.render.style import STYLE
from worker.render.texutil import brace_end, nesting_depth

if TYPE_CHECKING:
    from matplotlib.mathtext import MathTextParser, RasterParse
    from PIL import Image

MAX_CHARS = 1000
MAX_ROWS = 24
ROW_ENVIRONMENTS = ("align", "aligned", "gather", "gathered", "split", "eqnarray", "multline")
ROW_ENV = re.compile(r"\\begin\{(?:" + "|".join(ROW_ENVIRONMENTS) + r")\*?\}(?:\{[^}]*\})?")
ROW_ENV_END = re.compile(r"\\end\{(?:" + "|".join(ROW_ENVIRONMENTS) + r")\*?\}")

_SIMPLE_REWRITES = [
    (
        re.compile(
            r"\\(?:displaystyle|textstyle|nonumber|notag|limits|nolimits|small|normalsize"
            r"|large|Large|LARGE)(?![A-Za-z])"
        ),
        "",
    ),
    (re.compile(r"\\tag\*?\{([^{}]*)\}"), r"\\qquad (\1)"),
    (re.compile(r"\\le(?![A-Za-z])"), r"\\leq"),
    (re.compile(r"\\ge(?![A-Za-z])"), r"\\geq"),
    (re.compile(r"\\ne(?![A-Za-z])"), r"\\neq"),
    (re.compile(r"\\[dt]frac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\[dt]binom(?![A-Za-z])"), r"\\binom"),
    (re.compile(r"\\implies(?![A-Za-z])"), r"\\Rightarrow"),
    (re.compile(r"\\iff(?![A-Za-z])"), r"\\Leftrightarrow"),
    (re.compile(r"\\(?:dots[cbmi]?|ldotp)(?![A-Za-z])"), r"\\ldots"),
    (re.compile(r"\\[lr]vert(?![A-Za-z])"), "|"),
    (re.compile(r"\\[lr]Vert(?![A-Za-z])"), r"\\Vert"),
    (re.compile(r"\\operatorname\*?"), r"\\mathrm"),
    (re.compile(r"\\(?:bmod|mod)(?![A-Za-z])"), r"\\ \\mathrm{mod}\\ "),
    (re.compile(r"\\pmod\s*\{([^{}]*)\}"), r"\\ (\\mathrm{mod}\\ \1)"),
    (re.compile(r"\\pmod\s*(\w)"), r"\\ (\\mathrm{mod}\\ \1)"),
    (re.compile(r"\\(?:bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])"), ""),
    (re.compile(r"\\frac\s*(\d)\s*(\d)"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\(?:emph|textit)\s*\{"), r"\\mathit{"),
    (re.compile(r"\\(?:textbf|bold)\s*\{"), r"\\mathbf{"),
    (re.compile(r"\\!"), ""),
]
_TEXT = re.compile(r"\\(?:text|textrm|mbox|textnormal|hbox)\s*\{([^{}$]*)\}")
_BOXED = "\\boxed{"
_CJK = re.compile(
    "[\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f]"
)


def rewrite(tex: str) -> str:
    """mathtext spellings of common LaTeX; `\\boxed{x}` loses its box (drawn by the caller)."""
    for pattern, replacement in _SIMPLE_REWRITES:
        tex = pattern.sub(replacement, tex)
    # `\mathdefault` writes in the text font (DejaVu Sans, or the CJK font: see `_raster`),
    # which has Vietnamese letters; `\mathrm` would use Computer Modern, which has none.
    tex = _TEXT.sub(lambda m: r"\mathdefault{" + m.group(1).replace(" ", r"\ ") + "}", tex)
    while (start := tex.find(_BOXED)) != -1:
        end = brace_end(tex, start + len(_BOXED) - 1)
        if end == -1:
            raise RenderError("matplotlib: unbalanced \\boxed")
        tex = tex[:start] + "{" + tex[start + len(_BOXED) : end - 1] + "}" + tex[end:]
    return tex


def rows(tex: str) -> list[str]:
    """The rows of a multi-line environment (alignment marks dropped), or the formula itself."""
    body = ROW_ENV_END.sub("", ROW_ENV.sub("", tex))
    if "\\begin" in body or "\\end" in body:
        raise RenderError("matplotlib: environment not supported")
    parts = [p.replace("&", " ").strip() for p in re.split(r"\\\\(?:\[[^\]]*\])?", body)]
    parts = [p for p in parts if p]
    if not parts:
        raise RenderError("matplotlib: empty formula")
    if len(parts) > MAX_ROWS:
        raise RenderError("matplotlib: too many rows")
    return parts


class MatplotlibEngine:
    name = "matplotlib"

    def formula(self, tex: str, display: bool, emphasis: bool = False) -> bytes:
        if len(tex) > MAX_CHARS:
            raise RenderError("matplotlib: formula too long")
        framed = tex.strip().startswith(_BOXED) and brace_end(tex.strip(), 6) == len(tex.strip())
        lines = [f"${rewrite(row)}$" for row in rows(tex)]
        return _paint([_raster(line) for line in lines], framed=framed, emphasis=emphasis)

    def paragraph(self, pieces: list[dict[str, str | bool]]) -> bytes:
        """Prose and inline math, wrapped at about paragraph_width_em."""
        lines: list[str] = []
        current = ""
        width = 0.0
        limit = STYLE.paragraph_width_em * 2.1  # ~characters per line at this width
        for piece in pieces:
            if "tex" in piece:
                words = [f"${rewrite(str(piece['tex']))}$"]
                weights = [len(str(piece["tex"])) * 0.6]
            else:
                words = _escape_text(str(piece["text"])).split(" ")
                weights = [float(len(w)) for w in words]
            for word, weight in zip(words, weights, strict=True):
                if current and width + weight > limit:
                    lines.append(current)
                    current, width = "", 0.0
                current = f"{current} {word}" if current and word else current + word
                width += weight + 1
        if current.strip():
            lines.append(current)
        if sum(len(line) for line in lines) > STYLE.max_tex_chars:
            raise RenderError("matplotlib: paragraph too long")
        masks = [_raster(line.strip()) for line in lines if line.strip()]
        return _paint(masks, framed=False, emphasis=False, centred=False)


def _escape_text(text: str) -> str:
    """Prose given to mathtext: `$` and `\\` would start math or a command."""
    return re.sub(r"\s+", " ", text.replace("\\", "").replace("$", r"\$"))


@cache
def _parser() -> MathTextParser[RasterParse]:
    from matplotlib.mathtext import MathTextParser

    return MathTextParser("agg")


def _raster(line: str) -> Image.Image:
    """One line as an alpha mask."""
    import numpy as np
    from matplotlib.font_manager import FontProperties
    from PIL import Image

    if nesting_depth(line) > STYLE.max_depth:
        raise RenderError("matplotlib: nested too deeply")
    prop = FontProperties(size=STYLE.em_px, math_fontfamily="cm")
    if _CJK.search(line):
        # Text with Chinese, Japanese or Korean in it is written in a CJK font (mathtext has no
        # font fallback); without one, the chain shows the line as text instead of boxes.
        fonts = cjk_font_files()
        if not fonts:
            raise RenderError("matplotlib: no CJK font installed")
        prop = FontProperties(size=STYLE.em_px, math_fontfamily="cm", fname=fonts[0])
    try:
        parsed = _parser().parse(line, dpi=72 * STYLE.scale, prop=prop)
    except (ValueError, RuntimeError, KeyError, IndexError) as exc:
        raise RenderError(f"matplotlib: {str(exc).strip().splitlines()[-1:]}") from exc
    mask = np.asarray(parsed.image)
    if mask.size == 0 or mask.shape[0] * mask.shape[1] > STYLE.max_pixels:
        raise RenderError("matplotlib: empty or too large")
    return Image.fromarray(mask)


def _paint(lines: list[Image.Image], framed: bool, emphasis: bool, centred: bool = True) -> bytes:
    from PIL import Image, ImageDraw

    pad = round(STYLE.em_px * STYLE.scale * 0.3)
    gap = round(STYLE.em_px * STYLE.scale * 0.3)
    inner = 6 if framed else 0
    width = max(mask.width for mask in lines) + 2 * (pad + inner)
    height = sum(mask.height for mask in lines) + gap * (len(lines) - 1) + 2 * (pad + inner)
    if width > STYLE.max_width_px or height > STYLE.max_height_px:
        raise RenderError(f"matplotlib: image too large ({width}x{height})")
    plate = Image.new("RGB", (width, height), STYLE.bg)
    ink = Image.new("RGB", (width, height), STYLE.fg)
    y = pad + inner
    for mask in lines:
        x = (width - mask.width) // 2 if centred else pad
        plate.paste(ink.crop((x, y, x + mask.width, y + mask.height)), (x, y), mask)
        y += mask.height + gap
    draw = ImageDraw.Draw(plate)
    if framed:
        draw.rectangle(
            (pad // 2, pad // 2, width - pad // 2, height - pad // 2), outline=STYLE.accent, width=2
        )
    if emphasis:
        draw.rounded_rectangle(
            (1, 1, width - 2, height - 2), radius=8, outline=STYLE.accent, width=3
        )
    out = io.BytesIO()
    plate.save(out, format="PNG", compress_level=6)
    return out.getvalue()
