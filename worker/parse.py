"""Reading an R1-style completion: reasoning, `</think>`, written solution, `\\boxed{...}` answer.

Pure functions and one small incremental tracker; no I/O. The R1-Distill chat template ends the
prompt with `<think>\\n`, so a completion is usually reasoning, then `</think>`, then the written
solution; some servers or templates echo the opening `<think>`, which is dropped here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fathom.contract import SolveStatus
from worker.render.texutil import brace_end

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# `\boxed{...}` and `\fbox{...}` both draw a box around their argument in LaTeX; R1 models use
# `\boxed`, `\fbox` shows up occasionally in text-mode answers. TeX allows spaces before the brace.
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])\s*\{")


@dataclass(frozen=True, slots=True)
class ParsedCompletion:
    reasoning: str
    """Everything before the last `</think>` (all of the text when there is none)."""
    solution: str
    """The written solution after the last `</think>` ("" when there is none)."""
    answer: str | None
    """The last non-empty brace-balanced box in the solution; None when not finished properly."""
    status: SolveStatus


def split_reasoning(text: str) -> tuple[str, str, bool]:
    """Split on the LAST `</think>`: (reasoning, solution, whether `</think>` was there)."""
    head, sep, tail = text.rpartition(THINK_CLOSE)
    if not sep:
        return _strip_think_open(text).strip(), "", False
    return _strip_think_open(head).strip(), tail.strip(), True


def _strip_think_open(text: str) -> str:
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        return stripped[len(THINK_OPEN) :]
    return text


def last_boxed(text: str) -> str | None:
    """The contents of the last complete, non-empty `\\boxed{...}` (or `\\fbox{...}`) in text.

    An unclosed box (text cut short) and an empty `\\boxed{}` (the instruction echoed back) are
    not answers; an earlier complete box then counts.
    """
    for match in reversed(list(_BOX_COMMAND.finditer(text))):
        open_brace = match.end() - 1
        end = brace_end(text, open_brace)
        contents = text[open_brace + 1 : end - 1].strip()
        if end != -1 and contents:
            return contents
    return None


def parse_completion(text: str, finish_reason: str | None) -> ParsedCompletion:
    """Parse a whole completion. A "length" finish is TRUNCATED and carries no answer, whatever
    the text holds: a box written before the budget ran out is not a checked final answer."""
    reasoning, solution, closed = split_reasoning(text)
    answer = last_boxed(solution) if closed else None
    if finish_reason == "length":
        return ParsedCompletion(reasoning, solution, None, SolveStatus.TRUNCATED)
    if answer is None:
        return ParsedCompletion(reasoning, solution, None, SolveStatus.NO_ANSWER)
    return ParsedCompletion(reasoning, solution, answer, SolveStatus.SOLVED)


class ThinkTracker:
    """Follows a completion as it streams and tells when the model moved from thinking to
    writing, even when `</think>` arrives split across chunks. Keeps the whole text.

    Servers that parse the reasoning out themselves (llama.cpp's default `reasoning_format`,
    vLLM's `--reasoning-parser`) send it in a field of its own and drop `</think>`: fed through
    `feed_reasoning`, it is put back in front of the first written text, so the whole text
    reads as if the server had left it alone."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._tail = ""
        self._separate_reasoning = False
        self.writing = False

    def feed_reasoning(self, chunk: str) -> None:
        """Add a chunk the server marked as reasoning."""
        self._separate_reasoning = True
        if not self.writing:
            self._parts.append(chunk)

    def feed(self, chunk: str) -> bool:
        """Add a chunk; True exactly when this chunk completed the first `</think>`."""
        if self._separate_reasoning and not self.writing:
            # The server kept the reasoning apart and dropped `</think>`: this is the solution.
            self._parts.extend((THINK_CLOSE, chunk))
            self.writing = True
            self._tail = ""
            return True
        self._parts.append(chunk)
        if self.writing:
            return False
        window = self._tail + chunk
        if THINK_CLOSE in window:
            self.writing = True
            self._tail = ""
            return True
        self._tail = window[-(len(THINK_CLOSE) - 1) :]
        return False

    @property
    def text(self) -> str:
        return "".join(self._parts)
