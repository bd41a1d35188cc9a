"""Which messages deliver a job's outcome, in order. Pure: files are named here and read from
Redis at send time; the same inputs always give the same list, so a delivery interrupted by a
restart resumes at the right message."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.logic.outcome import has_reasoning, has_solution, outcome_text
from bot.logic.split import DISCORD_MESSAGE_LIMIT, split_message
from fathom.contract import FailureCode, MessagePayload, SolveResult, SolveStatus

REASONING_FILE = "reasoning.md"
MAX_FILES = 10
SIMULATED_NOTE = "-# Answered by the Fathom simulator (a test stand-in), not by the model."


@dataclass(frozen=True, slots=True)
class Outgoing:
    content: str
    files: tuple[str, ...] = ()
    """Names in the job's files hash, or REASONING_FILE for the reasoning."""
    buttons: tuple[str, ...] = field(default=())
    """"reasoning" and/or "again", on the last message only."""


def final_answer_line(answer: str) -> str:
    """The boxed answer as copyable text."""
    fence = "``" if "`" in answer else "`"
    pad = " " if fence == "``" else ""
    return f"**Final answer:** {fence}{pad}{answer}{pad}{fence}"


def compose(
    result: SolveResult, layout: list[MessagePayload] | None, *, attach_reasoning: bool
) -> list[Outgoing]:
    """The messages for `result`: the laid-out solution (or the plain Markdown split safely)
    with an honest note first where it did not simply succeed, the reasoning attached when
    asked for, and the buttons on the last message."""
    messages: list[Outgoing] = []
    if has_solution(result):
        if result.status is not SolveStatus.SOLVED:
            messages.append(Outgoing(outcome_text(result)))
        if result.rendered and layout:
            messages.extend(Outgoing(m.content, tuple(m.files)) for m in layout)
        else:
            messages.extend(_plain(result))
    else:
        messages.append(Outgoing(outcome_text(result)))
    if not messages:
        messages.append(Outgoing(outcome_text(result)))

    reasoning_sent = any(name.endswith(".md") for m in messages for name in m.files)
    reasoning = has_reasoning(result)
    if attach_reasoning and reasoning and not reasoning_sent:
        messages = _with_file(messages, REASONING_FILE)
        reasoning_sent = True
    if result.simulated:
        messages = _with_line(messages, SIMULATED_NOTE)

    buttons: list[str] = []
    if reasoning and not reasoning_sent:
        buttons.append("reasoning")
    if not (result.failure and result.failure.code is FailureCode.QUESTION_TOO_LONG):
        buttons.append("again")
    last = messages[-1]
    messages[-1] = Outgoing(last.content, last.files, tuple(buttons))
    return messages


def _plain(result: SolveResult) -> list[Outgoing]:
    chunks = split_message(result.solution)
    if result.answer is not None and result.answer.strip():
        line = final_answer_line(result.answer.strip())
        if chunks and len(chunks[-1]) + 2 + len(line) <= DISCORD_MESSAGE_LIMIT:
            chunks[-1] += "\n\n" + line
        else:
            chunks.extend(split_message(line))
    return [Outgoing(chunk) for chunk in chunks]


def _with_file(messages: list[Outgoing], name: str) -> list[Outgoing]:
    last = messages[-1]
    if len(last.files) < MAX_FILES:
        return [*messages[:-1], Outgoing(last.content, (*last.files, name))]
    return [*messages, Outgoing("", (name,))]


def _with_line(messages: list[Outgoing], line: str) -> list[Outgoing]:
    last = messages[-1]
    if len(last.content) + 1 + len(line) <= DISCORD_MESSAGE_LIMIT:
        content = f"{last.content}\n{line}" if last.content else line
        return [*messages[:-1], Outgoing(content, last.files)]
    return [*messages, Outgoing(line)]
