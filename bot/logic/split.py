"""Splitting plain Markdown into Discord messages (≤ 2,000 characters each) when there is no
rendered layout: at paragraph breaks first, then lines, then spaces; a code block that must be
cut is closed at the end of one message and reopened at the start of the next."""

from __future__ import annotations

import re
from collections.abc import Callable

DISCORD_MESSAGE_LIMIT = 2000

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def split_message(text: str, limit: int = DISCORD_MESSAGE_LIMIT) -> list[str]:
    """Consecutive chunks of `text`, each at most `limit` characters; none when `text` is
    blank. Joining the chunks gives the text back, except for the whitespace at the cuts and
    the fences added around a cut inside a code block."""
    if limit < 20:
        raise ValueError("limit too small to split Markdown sensibly")
    chunks: list[str] = []
    current = ""
    for unit in _units(text):
        for piece in _fit(unit, limit):
            if not current:
                current = piece
            elif len(current) + 2 + len(piece) <= limit:
                current += "\n\n" + piece
            else:
                chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def _units(text: str) -> list[str]:
    """Paragraphs, with a fenced code block always one unit (blank lines inside included)."""
    units: list[str] = []
    lines: list[str] = []
    fence: str | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                if lines:
                    units.append("\n".join(lines))
                    lines = []
                fence = match.group(1)
                lines.append(line)
            elif line.strip():
                lines.append(line)
            elif lines:
                units.append("\n".join(lines))
                lines = []
        else:
            lines.append(line)
            if _closes(line, fence):
                units.append("\n".join(lines))
                lines = []
                fence = None
    if lines:
        units.append("\n".join(lines).rstrip())
    return [unit for unit in units if unit.strip()]


def _closes(line: str, fence: str) -> bool:
    """A closing fence: only the fence character, at least as many as the opening had."""
    stripped = line.strip()
    return len(stripped) >= len(fence) and stripped == fence[0] * len(stripped)


def _fit(unit: str, limit: int) -> list[str]:
    if len(unit) <= limit:
        return [unit]
    first, _, rest = unit.partition("\n")
    match = _FENCE.match(first)
    if match:
        return _fit_code(first, rest, match.group(1), limit)
    return _pack(unit.split("\n"), limit, "\n", _cut_line)


def _fit_code(opening: str, rest: str, fence: str, limit: int) -> list[str]:
    body = rest.split("\n")
    if body and _FENCE.match(body[-1]):
        body = body[:-1]
    room = limit - len(opening) - len(fence) - 2
    return [f"{opening}\n{piece}\n{fence}" for piece in _pack(body, room, "\n", _hard_cut)]


def _pack(
    parts: list[str], limit: int, joiner: str, cut: Callable[[str, int], list[str]]
) -> list[str]:
    pieces: list[str] = []
    current: str | None = None
    for part in parts:
        for segment in [part] if len(part) <= limit else cut(part, limit):
            if current is None:
                current = segment
            elif len(current) + len(joiner) + len(segment) <= limit:
                current += joiner + segment
            else:
                pieces.append(current)
                current = segment
    if current is not None and current.strip():
        pieces.append(current)
    return pieces


def _cut_line(line: str, limit: int) -> list[str]:
    """A too-long line cut at spaces, or hard where a single word is longer than the limit."""
    pieces: list[str] = []
    while len(line) > limit:
        cut = line.rfind(" ", 0, limit + 1)
        if cut <= 0:
            pieces.append(line[:limit])
            line = line[limit:]
        else:
            pieces.append(line[:cut])
            line = line[cut + 1 :]
    if line:
        pieces.append(line)
    return pieces


def _hard_cut(line: str, limit: int) -> list[str]:
    return [line[i : i + limit] for i in range(0, len(line), limit)] or [""]
