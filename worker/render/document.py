"""A written solution drawn as a neutral Document: text where the math converts exactly,
pictures for the rest, in reading order, and the final answer last (as text where it converts
exactly, and as an emphasised picture).

The document knows nothing of messages or their limits: the bot decides how it is shown.
Consecutive pictures with nothing but blank lines between them (a display formula right after
a paragraph picture) are stacked into one picture up to a height, so they read as one.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fathom.contract import AnswerBlock, Block, Document, ImageBlock, TextBlock
from worker.render.chain import Picture, Renderer, default_renderer, png_size, source_markdown
from worker.render.segment import CodeBlock, Diagram, Math, Prose, Segment, segment
from worker.render.style import STYLE
from worker.render.unicode import to_unicode

DIAGRAM_NOTE = "*(An Asymptote diagram was drawn here; diagrams are not shown.)*"
ANSWER_FILE = "answer.png"
_MARKDOWN_SPECIAL = re.compile(r"([\\*_~`|])")


@dataclass
class DrawStats:
    """How each formula of the solution ended up being shown."""

    formulas: int = 0
    unicode_inline: int = 0
    """Inline formulas written as exact Unicode text (by choice, not as a fallback)."""
    pictures: Counter[str] = field(default_factory=Counter)
    """Formulas drawn as (part of) a picture, by engine."""
    unicode_fallback: int = 0
    source_fallback: int = 0
    diagrams: int = 0


@dataclass(frozen=True)
class DrawnSolution:
    document: Document
    files: dict[str, bytes]
    """File name (as the document's blocks name them) → PNG."""
    stats: DrawStats


@dataclass
class _Text:
    text: str


@dataclass
class _Image:
    png: bytes
    alt: str


_Unit = _Text | _Image


def escape_markdown(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def draw_solution(
    solution: str, answer: str | None, renderer: Renderer | None = None
) -> DrawnSolution:
    """Draw a solution (Markdown + LaTeX) and its final answer; never raises on odd input."""
    renderer = renderer if renderer is not None else default_renderer()
    stats = DrawStats()
    units = _stack_images(_units(segment(solution), renderer, stats))
    files: dict[str, bytes] = {}
    blocks = _blocks(units, files)
    if answer is not None and answer.strip():
        blocks.append(_answer_block(answer.strip(), renderer, files))
    return DrawnSolution(Document(blocks=blocks), files, stats)


def _answer_block(answer: str, renderer: Renderer, files: dict[str, bytes]) -> AnswerBlock:
    # A size up from the solution's math, on the emphasised plate, whose frame is the only
    # one: a `\\boxed{}` inside it drew a second.
    shown = renderer.formula(f"\\large {answer}", display=True, emphasis=True)
    name = None
    if isinstance(shown, Picture):
        files[ANSWER_FILE] = shown.png
        name = ANSWER_FILE
    return AnswerBlock(latex=answer, text=to_unicode(answer), file=name)


# --- segments → units -----------------------------------------------------------------------


def _units(segments: list[Segment], renderer: Renderer, stats: DrawStats) -> list[_Unit]:
    units: list[_Unit] = []
    line: list[Prose | Math] = []

    def end_line() -> None:
        units.append(_line_unit(line, renderer, stats))
        line.clear()

    after_block = False
    for seg in segments:
        if isinstance(seg, Prose):
            parts = seg.text.split("\n")
            for k, part in enumerate(parts):
                # The newline right after a block only ends the block's own line.
                if k and not (k == 1 and after_block and not line):
                    end_line()
                if part:
                    line.append(Prose(part))
            after_block = False
        elif isinstance(seg, Math) and not seg.display:
            line.append(seg)
            after_block = False
        else:
            if any(not isinstance(p, Prose) or p.text.strip() for p in line):
                end_line()
            line.clear()
            units.append(_block_unit(seg, renderer, stats))
            after_block = True
    if line:
        end_line()
    return units


def _block_unit(seg: Segment, renderer: Renderer, stats: DrawStats) -> _Unit:
    if isinstance(seg, CodeBlock):
        return _Text(_closed_fence(seg.text.rstrip("\n")))
    if isinstance(seg, Diagram):
        stats.diagrams += 1
        return _Text(DIAGRAM_NOTE)
    assert isinstance(seg, Math)
    stats.formulas += 1
    shown = renderer.formula(seg.tex, display=True)
    if isinstance(shown, Picture):
        stats.pictures[shown.engine] += 1
        return _Image(shown.png, seg.source.strip())
    if shown.how == "unicode":
        stats.unicode_fallback += 1
        return _Text(escape_markdown(shown.text))
    stats.source_fallback += 1
    return _Text(shown.text)


def _closed_fence(block: str) -> str:
    """The code block with its closing fence (a model's output may stop inside one)."""
    lines = block.split("\n")
    fence = re.match(r"\s*(`{3,}|~{3,})", lines[0])
    closer = fence.group(1) if fence else "```"
    if len(lines) > 1 and lines[-1].strip().startswith(closer):
        return block
    return f"{block}\n{closer}"


def _line_unit(line: list[Prose | Math], renderer: Renderer, stats: DrawStats) -> _Unit:
    maths = [p for p in line if isinstance(p, Math)]
    if not maths:
        return _Text("".join(p.text for p in line if isinstance(p, Prose)).rstrip())
    stats.formulas += len(maths)
    exact = {id(m): to_unicode(m.tex) for m in maths}
    if all(exact.values()):
        stats.unicode_inline += len(maths)
        return _Text(_join_line(line, lambda m: escape_markdown(exact[id(m)] or "")))
    picture = renderer.paragraph(_paragraph_pieces(line))
    if picture is not None:
        stats.pictures[picture.engine] += len(maths)
        return _Image(picture.png, _join_line(line, lambda m: m.source))
    # No engine could draw the line: exact Unicode where there is one, else the LaTeX source.
    for m in maths:
        if exact[id(m)]:
            stats.unicode_inline += 1
        else:
            stats.source_fallback += 1

    def shown(m: Math) -> str:
        text = exact[id(m)]
        return escape_markdown(text) if text else source_markdown(m.tex, False)

    return _Text(_join_line(line, shown))


def _join_line(line: list[Prose | Math], show: Any) -> str:
    return "".join(p.text if isinstance(p, Prose) else str(show(p)) for p in line).rstrip()


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")
_QUOTE = re.compile(r"^\s*>\s?")


def _paragraph_pieces(line: list[Prose | Math]) -> list[dict[str, Any]]:
    """The line as prose words and inline formulas for a paragraph picture; Markdown markers
    become bold text or bullets, since a picture cannot show them as Markdown would."""
    pieces: list[dict[str, Any]] = []
    bold = False
    for k, part in enumerate(line):
        if isinstance(part, Math):
            pieces.append({"tex": part.tex})
            continue
        text = part.text
        if k == 0:
            text = _QUOTE.sub("", text)
            if _HEADING.match(text):
                text = _HEADING.sub("", text)
                bold = True
            text = _BULLET.sub(r"\1• ", text)
        text = text.replace("`", "").replace("__", "**")
        for i, chunk in enumerate(text.split("**")):
            if i:
                bold = not bold
            if chunk:
                pieces.append({"text": chunk, "bold": bold})
    return pieces


# --- pictures stacked, then blocks -------------------------------------------------------------


def _stack_images(units: list[_Unit]) -> list[_Unit]:
    """Merge runs of consecutive pictures into one (up to max_image_height_px tall), dropping
    empty lines between them, so they read as one in order."""
    out: list[_Unit] = []
    run: list[_Image] = []

    def flush() -> None:
        if run:
            out.extend(_stack(run))
            run.clear()

    for unit in units:
        if isinstance(unit, _Image):
            run.append(unit)
        elif not unit.text.strip() and run:
            continue
        else:
            flush()
            out.append(unit)
    flush()
    return out


def _stack(images: list[_Image]) -> list[_Image]:
    if len(images) == 1:
        return images
    from PIL import Image

    groups: list[list[tuple[_Image, Image.Image]]] = [[]]
    height = 0
    for unit in images:
        img = Image.open(io.BytesIO(unit.png))
        if groups[-1] and height + img.height > STYLE.max_image_height_px:
            groups.append([])
            height = 0
        groups[-1].append((unit, img))
        height += img.height
    out: list[_Image] = []
    for group in groups:
        if len(group) == 1:
            out.append(group[0][0])
            continue
        width = max(img.width for _unit, img in group)
        sheet = Image.new("RGB", (width, sum(img.height for _unit, img in group)), STYLE.bg)
        y = 0
        for _unit, part in group:
            sheet.paste(part.convert("RGB"), (0, y))
            y += part.height
        buf = io.BytesIO()
        sheet.save(buf, format="PNG", compress_level=6)
        out.append(_Image(buf.getvalue(), "\n".join(unit.alt for unit, _img in group)))
    return out


def _blocks(units: list[_Unit], files: dict[str, bytes]) -> list[Block]:
    """Runs of text lines become one text block; each picture becomes a file and a block."""
    blocks: list[Block] = []
    lines: list[str] = []

    def flush() -> None:
        text = "\n".join(lines).strip("\n")
        if text.strip():
            blocks.append(TextBlock(markdown=text))
        lines.clear()

    for unit in units:
        if isinstance(unit, _Text):
            lines.append(unit.text)
            continue
        flush()
        name = f"math-{len(files) + 1:03d}.png"
        files[name] = unit.png
        width, height = png_size(unit.png)
        blocks.append(ImageBlock(file=name, alt=unit.alt, width=width, height=height))
    flush()
    return blocks
