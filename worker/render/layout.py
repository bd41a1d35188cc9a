"""A written solution laid out as Discord messages: text where text is exact, pictures for the
rest, in reading order.

Discord shows a message's attachments below its text, so every picture ends the message it
belongs to: a message is "the text leading up to a picture, then the picture". Consecutive
pictures (a display formula right after a paragraph picture) are stacked into one image so they
keep their order. Text is split only between lines, preferably at blank lines (paragraph or step
boundaries); a code block is never cut open. The final answer comes last, as copyable text and
as an emphasised picture, with the reasoning attached as Markdown when asked for.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fathom.contract import MessagePayload
from worker.render.chain import Picture, Renderer, default_renderer, source_markdown
from worker.render.segment import CodeBlock, Diagram, Math, Prose, Segment, segment
from worker.render.style import STYLE
from worker.render.unicode import to_unicode

MAX_CONTENT = 2000
MAX_FILES = 10
DIAGRAM_NOTE = "*(An Asymptote diagram was drawn here; diagrams are not shown.)*"
REASONING_FILE = "reasoning.md"
ANSWER_FILE = "answer.png"
_MARKDOWN_SPECIAL = re.compile(r"([\\*_~`|])")


@dataclass
class LayoutStats:
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
class RenderedSolution:
    messages: list[MessagePayload]
    files: dict[str, bytes]
    """File name (as referenced by messages) → content."""
    stats: LayoutStats


@dataclass
class _Text:
    text: str
    code: bool = False


@dataclass
class _Image:
    png: bytes


_Unit = _Text | _Image


def escape_markdown(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def layout_solution(
    solution: str,
    answer: str | None,
    reasoning: str | None = None,
    renderer: Renderer | None = None,
) -> RenderedSolution:
    """Lay out a solution (Markdown + LaTeX) as messages; never raises on odd input."""
    renderer = renderer if renderer is not None else default_renderer()
    stats = LayoutStats()
    units = _stack_images(_units(segment(solution), renderer, stats))
    files: dict[str, bytes] = {}
    messages = _pack(units, files)

    answer_files: list[str] = []
    answer_text = ""
    if answer is not None and answer.strip():
        answer_text = _answer_line(answer.strip())
        boxed = f"\\large\\boxed{{{answer.strip()}}}"  # a size up from the solution's math
        shown = renderer.formula(boxed, display=True, emphasis=True)
        if isinstance(shown, Picture):
            files[ANSWER_FILE] = shown.png
            answer_files.append(ANSWER_FILE)
    if reasoning:
        files[REASONING_FILE] = reasoning.encode()
        answer_files.append(REASONING_FILE)
        if not answer_text:
            answer_text = "The full reasoning is attached."
    if answer_text or answer_files:
        messages.append(MessagePayload(content=answer_text, files=answer_files))
    if not messages:
        messages.append(MessagePayload(content="(The solution is empty.)"))
    return RenderedSolution(messages=messages, files=files, stats=stats)


def _answer_line(answer: str) -> str:
    text = to_unicode(answer)
    if text is None:
        line = f"**Answer:** {source_markdown(answer, False)}"
    elif not re.search(r"[\\^_{}]", answer):
        line = f"**Answer:** {escape_markdown(text)}"
    else:
        line = f"**Answer:** {escape_markdown(text)}   (LaTeX: {source_markdown(answer, False)})"
    if len(line) > MAX_CONTENT:
        line = "**Answer:** (too long to repeat here; it is the boxed expression above)"
    return line


# --- segments → units -----------------------------------------------------------------------


def _units(segments: list[Segment], renderer: Renderer, stats: LayoutStats) -> list[_Unit]:
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


def _block_unit(seg: Segment, renderer: Renderer, stats: LayoutStats) -> _Unit:
    if isinstance(seg, CodeBlock):
        return _Text(_closed_fence(seg.text.rstrip("\n")), code=True)
    if isinstance(seg, Diagram):
        stats.diagrams += 1
        return _Text(DIAGRAM_NOTE)
    assert isinstance(seg, Math)
    stats.formulas += 1
    shown = renderer.formula(seg.tex, display=True)
    if isinstance(shown, Picture):
        stats.pictures[shown.engine] += 1
        return _Image(shown.png)
    if shown.how == "unicode":
        stats.unicode_fallback += 1
        return _Text(escape_markdown(shown.text))
    stats.source_fallback += 1
    return _Text(shown.text, code=True)


def _closed_fence(block: str) -> str:
    """The code block with its closing fence (a model's output may stop inside one)."""
    lines = block.split("\n")
    fence = re.match(r"\s*(`{3,}|~{3,})", lines[0])
    closer = fence.group(1) if fence else "```"
    if len(lines) > 1 and lines[-1].strip().startswith(closer):
        return block
    return f"{block}\n{closer}"


def _line_unit(line: list[Prose | Math], renderer: Renderer, stats: LayoutStats) -> _Unit:
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
        return _Image(picture.png)
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
    become bold text or bullets, since a picture cannot show them as Discord would."""
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


# --- pictures stacked, then messages -----------------------------------------------------------


def _stack_images(units: list[_Unit]) -> list[_Unit]:
    """Merge runs of consecutive pictures into one (up to max_image_height_px tall), dropping
    empty lines between them, so Discord shows them in order."""
    out: list[_Unit] = []
    run: list[bytes] = []

    def flush() -> None:
        if run:
            out.extend(_Image(png) for png in _stack(run))
            run.clear()

    for unit in units:
        if isinstance(unit, _Image):
            run.append(unit.png)
        elif not unit.text.strip() and run:
            continue
        else:
            flush()
            out.append(unit)
    flush()
    return out


def _stack(pngs: list[bytes]) -> list[bytes]:
    if len(pngs) == 1:
        return pngs
    from PIL import Image

    images: list[Image.Image] = [Image.open(io.BytesIO(png)) for png in pngs]
    groups: list[list[Image.Image]] = [[]]
    height = 0
    for img in images:
        if groups[-1] and height + img.height > STYLE.max_image_height_px:
            groups.append([])
            height = 0
        groups[-1].append(img)
        height += img.height
    out: list[bytes] = []
    for group in groups:
        if len(group) == 1:
            out.append(pngs[next(k for k, img in enumerate(images) if img is group[0])])
            continue
        width = max(img.width for img in group)
        sheet = Image.new("RGB", (width, sum(img.height for img in group)), STYLE.bg)
        y = 0
        for img in group:
            sheet.paste(img.convert("RGB"), (0, y))
            y += img.height
        buf = io.BytesIO()
        sheet.save(buf, format="PNG", compress_level=6)
        out.append(buf.getvalue())
    return out


def _pack(units: list[_Unit], files: dict[str, bytes]) -> list[MessagePayload]:
    messages: list[MessagePayload] = []
    buf: list[str] = []

    def content(lines: list[str]) -> str:
        return "\n".join(lines).strip("\n")

    def flush_text() -> None:
        """Send what is buffered, keeping a trailing incomplete paragraph for the next one."""
        text = content(buf)
        if text.strip():
            messages.append(MessagePayload(content=text))
        buf.clear()

    for unit in units:
        if isinstance(unit, _Image):
            name = f"math-{len(files) + 1:03d}.png"
            files[name] = unit.png
            messages.append(MessagePayload(content=content(buf), files=[name]))
            buf.clear()
            continue
        for chunk in _chunks(unit):
            if len(content([*buf, chunk])) > MAX_CONTENT:
                cut = _last_blank(buf)
                if cut > 0 and len(content([*buf[cut + 1 :], chunk])) <= MAX_CONTENT:
                    rest = buf[cut + 1 :]
                    del buf[cut:]
                    flush_text()
                    buf.extend(rest)
                else:
                    flush_text()
            buf.append(chunk)
    flush_text()
    return messages


def _last_blank(lines: list[str]) -> int:
    for i in range(len(lines) - 1, -1, -1):
        if not lines[i].strip():
            return i
    return -1


def _chunks(unit: _Text) -> list[str]:
    """The unit as pieces of at most MAX_CONTENT characters; code blocks are closed and reopened
    at a line boundary rather than cut open."""
    if len(unit.text) <= MAX_CONTENT:
        return [unit.text]
    if unit.code:
        lines = unit.text.split("\n")
        fence = re.match(r"\s*(`{3,}|~{3,})", lines[0])
        opener = lines[0] if fence else "```"
        closer = fence.group(1) if fence else "```"
        body = lines[1:-1] if fence and lines[-1].strip().startswith(closer) else lines[1:]
        room = MAX_CONTENT - len(opener) - len(closer) - 2
        return [f"{opener}\n{piece}\n{closer}" for piece in _wrap_lines(body, room)]
    return _wrap_lines(unit.text.split("\n"), MAX_CONTENT)


def _wrap_lines(lines: list[str], room: int) -> list[str]:
    """Pack lines into pieces ≤ room; a single overlong line is cut at spaces (or hard)."""
    pieces: list[str] = []
    current: list[str] = []
    for line in lines:
        for part in _cut_line(line, room):
            if current and len("\n".join([*current, part])) > room:
                pieces.append("\n".join(current))
                current = []
            current.append(part)
    if current:
        pieces.append("\n".join(current))
    return pieces


def _cut_line(line: str, room: int) -> list[str]:
    parts: list[str] = []
    while len(line) > room:
        cut = line.rfind(" ", 0, room)
        cut = room if cut <= 0 else cut
        parts.append(line[:cut])
        line = line[cut:].lstrip(" ")
    parts.append(line)
    return parts
