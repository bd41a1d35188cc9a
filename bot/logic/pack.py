"""The one packer: everything the bot posts is made into Discord messages here. Pure.

Discord's rules, and how they are kept:
- a message holds at most 2,000 characters and 10 files;
- a message's attachments are shown below its text, so every picture ends the message it
  belongs to: a message is "the text leading up to a picture, then the picture";
- text is cut only between lines, preferably at a blank line (a paragraph or step boundary);
  a single overlong line is cut at spaces (hard only where one word is longer than a message);
- a code block is never cut open: where one must be split, each part is closed and reopened;
- hidden pieces (study mode) are spoilers: each line of hidden text is wrapped in `||…||`
  (Markdown that starts a line — a heading, a list item, a quote — stays in front; a line too
  long for one message is cut first, so no spoiler spans two messages), and a hidden picture's
  file is sent named `SPOILER_…`, which Discord blurs until clicked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import discord

from bot.i18n import ENGLISH, N_, Texts

DISCORD_MESSAGE_LIMIT = 2000
MAX_FILES = 10
ANSWER_PREFIX = N_("**Final answer:**")
TOO_LONG_ANSWER = N_(
    "**Final answer:** (too long to repeat here; it is the boxed expression above)"
)

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TEX_MARKUP = re.compile(r"[\\^_{}]")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send."""

    content: str
    files: tuple[str, ...] = ()
    """Names of the files to attach, resolved when the message is sent."""
    buttons: tuple[str, ...] = ()


SPOILER_PREFIX = "SPOILER_"
"""Discord shows an attachment whose name starts with this blurred until it is clicked."""


@dataclass(frozen=True, slots=True)
class Text:
    markdown: str
    hidden: bool = False
    """Behind spoilers, line by line (study mode)."""


@dataclass(frozen=True, slots=True)
class Picture:
    """A picture shown where it stands: it ends the message holding the text before it."""

    file: str
    hidden: bool = False
    """Sent as a spoiler (`SPOILER_` + its name)."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file for download (the reasoning), added to the last message where there is room."""

    file: str


Piece = Text | Picture | Attachment


def pack(pieces: Sequence[Piece], limit: int = DISCORD_MESSAGE_LIMIT) -> list[Outgoing]:
    """The pieces as messages, in reading order."""
    messages: list[Outgoing] = []
    pending: list[str] = []

    def flush(picture: str | None = None) -> None:
        chunks = split_markdown("\n\n".join(pending), limit)
        pending.clear()
        if picture is None:
            messages.extend(Outgoing(chunk) for chunk in chunks)
            return
        last = chunks.pop() if chunks else ""
        messages.extend(Outgoing(chunk) for chunk in chunks)
        messages.append(Outgoing(last, (picture,)))

    for piece in pieces:
        if isinstance(piece, Text):
            if piece.markdown.strip():
                pending.append(spoiler(piece.markdown, limit) if piece.hidden else piece.markdown)
        elif isinstance(piece, Picture):
            flush(SPOILER_PREFIX + piece.file if piece.hidden else piece.file)
        else:
            flush()
            if messages and len(messages[-1].files) < MAX_FILES:
                messages[-1] = replace(messages[-1], files=(*messages[-1].files, piece.file))
            else:
                messages.append(Outgoing("", (piece.file,)))
    flush()
    return messages


def with_footer(messages: list[Outgoing], line: str) -> list[Outgoing]:
    """A short line under the last message's text, or a message of its own where it does not
    fit."""
    if messages and len(messages[-1].content) + 1 + len(line) <= DISCORD_MESSAGE_LIMIT:
        last = messages[-1]
        content = f"{last.content}\n{line}" if last.content else line
        return [*messages[:-1], replace(last, content=content)]
    return [*messages, Outgoing(line)]


def code_span(text: str) -> str:
    """`text` as inline code that no backtick inside it can break."""
    ticks = "`"
    while ticks in text:
        ticks += "`"
    pad = " " if text.startswith("`") or text.endswith("`") or ticks != "`" else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def answer_line(
    latex: str, text: str | None = None, *, hidden: bool = False, t: Texts = ENGLISH
) -> str:
    """The final answer as copyable text: its exact Unicode form where one is known (with the
    LaTeX beside it where they differ), else the LaTeX itself. `hidden`: the answer (not its
    label) behind a spoiler."""
    latex = latex.strip()
    if text is None:
        value = code_span(latex)
    elif not _TEX_MARKUP.search(latex):
        value = discord.utils.escape_markdown(text)
    else:
        shown = discord.utils.escape_markdown(text)
        value = f"{shown}   (LaTeX: {code_span(latex)})"
    if hidden:
        value = f"||{_escape_bars(value)}||"
    line = f"{t.gettext(ANSWER_PREFIX)} {value}"
    return line if len(line) <= DISCORD_MESSAGE_LIMIT else t.gettext(TOO_LONG_ANSWER)


# --- spoilers --------------------------------------------------------------------------------

_LINE_START = re.compile(r"^(\s*(?:#{1,3} |-# |>>> |> |[-*+] |\d{1,3}[.)] )*)(.*)$")
_CODE_SPAN = re.compile(r"(`+).+?\1")


def _escape_bars(text: str) -> str:
    """`|` escaped outside code spans, so text inside a spoiler cannot close it."""
    out: list[str] = []
    last = 0
    for match in _CODE_SPAN.finditer(text):
        out.append(text[last : match.start()].replace("|", "\\|"))
        out.append(match.group(0))
        last = match.end()
    out.append(text[last:].replace("|", "\\|"))
    return "".join(out)


def spoiler(markdown: str, limit: int = DISCORD_MESSAGE_LIMIT) -> str:
    """Markdown with every line behind a spoiler: the Markdown that starts a line in front of
    it, code blocks left as they are (a spoiler does not work inside one), a line too long for
    one message cut at spaces first."""
    lines: list[str] = []
    for atom in _atoms(markdown.replace("\r\n", "\n")):
        if _FENCE.match(atom):
            lines.append(atom)
            continue
        match = _LINE_START.match(atom)
        assert match is not None  # the pattern matches every line
        prefix, rest = match.group(1), match.group(2)
        if not rest.strip():
            lines.append(atom)
            continue
        room = limit - len(prefix) - 4
        for part in _cut_line(_escape_bars(rest.strip()), room):
            lines.append(f"{prefix}||{part}||")
            prefix = ""
    return "\n".join(lines)


# --- splitting Markdown --------------------------------------------------------------------


def split_markdown(text: str, limit: int = DISCORD_MESSAGE_LIMIT) -> list[str]:
    """Consecutive chunks of `text`, each at most `limit` characters; none when `text` is
    blank. Joining them with newlines gives the text back, but for the whitespace at the cuts
    and the fences added around a code block that had to be split (or was left open)."""
    if limit < 20:
        raise ValueError("limit too small to split Markdown sensibly")
    chunks: list[str] = []
    lines: list[str] = []

    def emit(part: list[str]) -> None:
        chunk = "\n".join(part).strip("\n")
        if chunk.strip():
            chunks.append(chunk)

    for atom in _atoms(text.replace("\r\n", "\n")):
        for part in _fit(atom, limit):
            if lines and len("\n".join([*lines, part])) > limit:
                cut = _last_blank(lines)
                if cut > 0 and len("\n".join([*lines[cut + 1 :], part])) <= limit:
                    emit(lines[:cut])
                    lines = lines[cut + 1 :]
                else:
                    emit(lines)
                    lines = []
            lines.append(part)
    emit(lines)
    return chunks


def _atoms(text: str) -> list[str]:
    """Lines, with a fenced code block kept whole as one atom (closed if the text ends
    inside it)."""
    atoms: list[str] = []
    block: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            match = _FENCE.match(line)
            if match:
                fence = match.group(1)
                block = [line]
            else:
                atoms.append(line)
            continue
        block.append(line)
        if _closes(line, fence):
            atoms.append("\n".join(block))
            fence = None
    if fence is not None:
        atoms.append("\n".join([*block, fence]))
    return atoms


def _closes(line: str, fence: str) -> bool:
    """A closing fence: only the fence character, at least as many as the opening had."""
    stripped = line.strip()
    return len(stripped) >= len(fence) and stripped == fence[0] * len(stripped)


def _last_blank(lines: list[str]) -> int:
    for index in range(len(lines) - 1, -1, -1):
        if not lines[index].strip():
            return index
    return -1


def _fit(atom: str, limit: int) -> list[str]:
    """The atom as parts of at most `limit` characters."""
    if len(atom) <= limit:
        return [atom]
    opening, _, rest = atom.partition("\n")
    match = _FENCE.match(opening)
    if match is None:
        return _cut_line(atom, limit)
    fence = match.group(1)
    body = rest.split("\n")[:-1]  # the closing fence is the last line
    room = limit - len(opening) - len(fence) - 2
    return [f"{opening}\n{piece}\n{fence}" for piece in _pack_lines(body, room)]


def _pack_lines(lines: list[str], room: int) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    for line in lines:
        for part in [line] if len(line) <= room else _hard_cut(line, room):
            if current and len("\n".join([*current, part])) > room:
                pieces.append("\n".join(current))
                current = []
            current.append(part)
    if current:
        pieces.append("\n".join(current))
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
    return [line[i : i + limit] for i in range(0, len(line), limit)]
