"""Split a model's Markdown + LaTeX solution into prose, math, code and diagrams.

Rules (in the order they are tried at each position):
- fenced code blocks (``` or ~~~ at a line start) and inline code spans are opaque text;
- `[asy]…[/asy]` Asymptote diagrams become a Diagram (the layout shows a short note instead);
- `\\$` is a literal dollar; `$$…$$` and `\\[…\\]` are display math, `\\(…\\)` inline math;
- `$…$` is inline math only when the opening `$` is followed by a non-space and the closing one
  is preceded by a non-space and not followed by a digit (so "$5 and $10" stays prose), and it
  never crosses a blank line;
- `\\begin{env}…\\end{env}` of a math environment outside delimiters is display math;
- a bare `\\boxed{…}` outside delimiters is math (display when it is alone on its line);
- anything unmatched (a stray `$`, `\\[` without `\\]`) stays literal prose.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from worker.render.texutil import brace_end

MATH_ENVIRONMENTS = frozenset(
    {
        "align",
        "align*",
        "aligned",
        "alignat",
        "alignat*",
        "alignedat",
        "array",
        "bmatrix",
        "Bmatrix",
        "cases",
        "dcases",
        "eqnarray",
        "eqnarray*",
        "equation",
        "equation*",
        "gather",
        "gather*",
        "gathered",
        "matrix",
        "multline",
        "multline*",
        "pmatrix",
        "smallmatrix",
        "split",
        "subarray",
        "vmatrix",
        "Vmatrix",
    }
)


@dataclass(frozen=True)
class Prose:
    text: str
    """Markdown as it is shown (escaped dollars already turned into `$`)."""


@dataclass(frozen=True)
class Math:
    tex: str
    """The formula without its delimiters."""
    display: bool
    source: str
    """The formula as written, delimiters included."""


@dataclass(frozen=True)
class CodeBlock:
    text: str
    """The whole fenced block, fences included."""


@dataclass(frozen=True)
class Diagram:
    source: str


Segment = Prose | Math | CodeBlock | Diagram

_FENCE = re.compile(r"[ ]{0,3}(`{3,}|~{3,})")
_BEGIN = re.compile(r"\\begin\{([A-Za-z]+\*?)\}")
_ENV_TOKEN = re.compile(r"\\(begin|end)\{([A-Za-z]+\*?)\}")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def segment(text: str) -> list[Segment]:
    """The solution as an ordered list of segments; joining their sources gives back the text
    (up to escaped dollars)."""
    out: list[Segment] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            out.append(Prose("".join(prose)))
            prose.clear()

    def emit(seg: Segment) -> None:
        flush()
        out.append(seg)

    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        at_line_start = i == 0 or text[i - 1] == "\n"
        if at_line_start and (fence := _FENCE.match(text, i)):
            end = _fence_end(text, fence.end(), fence.group(1))
            emit(CodeBlock(text[i:end]))
            i = end
            continue
        if ch == "`":
            run = _run_length(text, i, "`")
            close = text.find("`" * run, i + run)
            while close != -1 and _run_length(text, close, "`") != run:
                close = text.find("`" * run, close + _run_length(text, close, "`"))
            if close == -1:
                prose.append(text[i : i + run])
                i += run
            else:
                prose.append(text[i : close + run])
                i = close + run
            continue
        if text.startswith("[asy]", i):
            close = text.find("[/asy]", i)
            end = n if close == -1 else close + len("[/asy]")
            emit(Diagram(text[i:end]))
            i = end
            continue
        if ch == "\\":
            step = _backslash(text, i, emit, prose)
            i += step
            continue
        if ch == "$":
            if text.startswith("$$", i):
                close = text.find("$$", i + 2)
                if close != -1 and text[i + 2 : close].strip():
                    emit(Math(text[i + 2 : close].strip(), True, text[i : close + 2]))
                    i = close + 2
                else:
                    prose.append("$$")
                    i += 2
                continue
            close = _inline_dollar_close(text, i)
            if close == -1:
                prose.append("$")
                i += 1
            else:
                emit(Math(text[i + 1 : close], False, text[i : close + 1]))
                i = close + 1
            continue
        prose.append(ch)
        i += 1
    flush()
    return out


def _backslash(text: str, i: int, emit: Callable[[Segment], None], prose: list[str]) -> int:
    """Handle a backslash at i; returns the characters consumed."""
    nxt = text[i + 1 : i + 2]
    if nxt == "$":
        prose.append("$")
        return 2
    if nxt == "\\":
        prose.append("\\\\")
        return 2
    if nxt in ("[", "("):
        closer = "\\]" if nxt == "[" else "\\)"
        close = text.find(closer, i + 2)
        if close != -1 and text[i + 2 : close].strip():
            emit(Math(text[i + 2 : close].strip(), nxt == "[", text[i : close + 2]))
            return close + 2 - i
        prose.append(text[i : i + 2])
        return 2
    begin = _BEGIN.match(text, i)
    if begin and begin.group(1) in MATH_ENVIRONMENTS:
        end = _environment_end(text, begin.end(), begin.group(1))
        if end != -1:
            source = text[i:end]
            emit(Math(source, True, source))
            return end - i
    if text.startswith("\\boxed{", i):
        end = brace_end(text, i + len("\\boxed"))
        if end != -1:
            source = text[i:end]
            line_start = text.rfind("\n", 0, i) + 1
            line_end = text.find("\n", end)
            line_end = len(text) if line_end == -1 else line_end
            alone = not text[line_start:i].strip() and not text[end:line_end].strip(" .\t")
            emit(Math(source, alone, source))
            return end - i
    prose.append("\\")
    return 1


def _run_length(text: str, i: int, ch: str) -> int:
    j = i
    while j < len(text) and text[j] == ch:
        j += 1
    return j - i


def _fence_end(text: str, after_open: int, fence: str) -> int:
    """Index just past the closing fence line (or the end of the text)."""
    pos = text.find("\n", after_open)
    while pos != -1:
        line_start = pos + 1
        m = re.match(r"[ ]{0,3}(" + re.escape(fence[0]) + r"{3,})[ \t]*(?:\n|$)", text[line_start:])
        if m and len(m.group(1)) >= len(fence):
            return line_start + m.end()
        pos = text.find("\n", line_start)
    return len(text)


def _inline_dollar_close(text: str, i: int) -> int:
    """Index of the `$` closing the inline formula opened at i, or -1 when i is not an opener."""
    if i + 1 >= len(text) or text[i + 1].isspace() or text[i + 1] == "$":
        return -1
    j = i + 1
    while j < len(text):
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "\n" and _BLANK_LINE.match(text, j):
            return -1
        if ch == "$":
            if text.startswith("$$", j):
                return -1
            before = text[j - 1]
            after = text[j + 1 : j + 2]
            if before.isspace() or after.isdigit():
                return -1
            return j
        j += 1
    return -1


def _environment_end(text: str, start: int, name: str) -> int:
    depth = 1
    for m in _ENV_TOKEN.finditer(text, start):
        if m.group(2) != name:
            continue
        depth += 1 if m.group(1) == "begin" else -1
        if depth == 0:
            return m.end()
    return -1
