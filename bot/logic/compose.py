"""Which messages deliver a job's outcome, in order. Pure: files are named here and read from
Redis at send time; the same inputs always give the same list, so a delivery interrupted by a
restart resumes at the right message."""

from __future__ import annotations

from dataclasses import replace

from bot.components import JobAction
from bot.i18n import ENGLISH, N_, Texts
from bot.logic.outcome import consensus_text, has_reasoning, has_solution, outcome_text
from bot.logic.pack import (
    Attachment,
    Outgoing,
    Picture,
    Piece,
    Text,
    answer_line,
    pack,
    with_footer,
)
from fathom.contract import (
    AnswerBlock,
    Document,
    FailureCode,
    ImageBlock,
    Rendering,
    SolveResult,
    SolveStatus,
    TextBlock,
)

REASONING_FILE = "reasoning.md"
SIMULATED_NOTE = N_("-# Answered by the Fathom simulator (a test stand-in), not by the model.")
STUDY_NOTE = N_(
    "📖 **Study mode:** each step is hidden. Try it yourself first, then click the next "
    "step to check it; the final answer comes last."
)


def document_pieces(document: Document, *, hidden: bool = False, t: Texts = ENGLISH) -> list[Piece]:
    """A drawn solution as the packer's pieces: text, pictures where they stand, and the final
    answer as copyable text above its picture; `hidden` (study mode): each behind a spoiler."""
    pieces: list[Piece] = []
    for block in document.blocks:
        if isinstance(block, TextBlock):
            pieces.append(Text(block.markdown, hidden=hidden))
        elif isinstance(block, ImageBlock):
            pieces.append(Picture(block.file, hidden=hidden))
        elif isinstance(block, AnswerBlock):
            pieces.append(Text(answer_line(block.latex, block.text, hidden=hidden, t=t)))
            if block.file is not None:
                pieces.append(Picture(block.file, hidden=hidden))
    return pieces


def plain_pieces(result: SolveResult, *, hidden: bool = False, t: Texts = ENGLISH) -> list[Piece]:
    """The written solution as Markdown (LaTeX left as written), then the final answer."""
    pieces: list[Piece] = [Text(result.solution, hidden=hidden)]
    if result.answer is not None and result.answer.strip():
        pieces.append(Text(answer_line(result.answer, hidden=hidden, t=t)))
    return pieces


def compose(
    result: SolveResult,
    document: Document | None,
    *,
    attach_reasoning: bool,
    study: bool = False,
    t: Texts = ENGLISH,
) -> list[Outgoing]:
    """The messages for `result`: the drawn solution (or the plain Markdown) with an honest
    note first where it did not simply succeed (and, for a consensus, how its samples voted),
    the reasoning attached when asked for, and the buttons on the last message. `study`: every
    step and the final answer behind spoilers, to be revealed one at a time."""
    pieces: list[Piece] = []
    plainly_solved = (
        result.status is SolveStatus.SOLVED and result.rendering is not Rendering.FAILED
    )
    if not plainly_solved:
        pieces.append(Text(outcome_text(result, t)))
    if result.consensus is not None:
        pieces.append(Text(consensus_text(result.consensus, hide_answers=study, t=t)))
    if has_solution(result):
        if study:
            pieces.append(Text(t.gettext(STUDY_NOTE)))
        drawn = document if result.rendering is Rendering.DONE else None
        pieces.extend(
            document_pieces(drawn, hidden=study, t=t)
            if drawn is not None
            else plain_pieces(result, hidden=study, t=t)
        )
    reasoning = has_reasoning(result)
    if attach_reasoning and reasoning:
        pieces.append(Attachment(REASONING_FILE))
    messages = pack(pieces) or pack([Text(outcome_text(result, t))])
    if result.simulated:
        messages = with_footer(messages, t.gettext(SIMULATED_NOTE))

    buttons: list[str] = []
    if reasoning and not attach_reasoning:
        buttons.append(JobAction.SHOW_REASONING)
    if not (result.failure and result.failure.code is FailureCode.QUESTION_TOO_LONG):
        buttons.append(JobAction.SOLVE_AGAIN)
    messages[-1] = replace(messages[-1], buttons=tuple(buttons))
    return messages
