"""The versioned job contract: what goes on the queue, what comes back, and progress between.

Everything crosses Redis as JSON (RQ's JSONSerializer for job arguments, plain JSON strings for
results, events and documents); nothing is pickled.
"""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

CONTRACT_VERSION = 2

SOLVE_JOB_FUNC = "worker.jobs.solve"
"""Dotted path RQ imports on the worker; the bot enqueues by name and never imports the worker."""
SOLVE_FAILURE_CALLBACK = "worker.jobs.on_solve_failure"
"""Runs where RQ gives up on a solve job it could not finish (its worker died, retries spent)."""
SOLVE_STOPPED_CALLBACK = "worker.jobs.on_solve_stopped"
"""Runs in the worker after `fathom.queue.stop_job` killed the job's work horse."""
RENDER_JOB_FUNC = "worker.render.job.render_solution"
"""Draws a stored solution's math and stores its Document; ends the job."""
RENDER_FAILURE_CALLBACK = "worker.render.job.on_render_failure"
"""Ends the job with plain text when the rendering job dies without doing so itself."""
VOTE_JOB_FUNC = "worker.render.vote.vote_on_samples"
"""Groups a consensus job's sample answers, draws the chosen solution and ends the job; put on
the render queue by the end of its last sample."""
VOTE_FAILURE_CALLBACK = "worker.render.vote.on_vote_failure"
"""Ends a consensus job whose vote died without doing so itself."""

SIMULATOR_MODEL_ID = "fathom-simulator"
"""The model_id the TGI simulator reports in /info, /v1/models and every completion."""


def is_simulator(model_id: str) -> bool:
    """Whether a server's reported model_id (from /info or a completion) is the simulator."""
    return model_id.strip().lower().startswith(SIMULATOR_MODEL_ID)


_TERMINAL_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])"
)
"""ANSI/VT escape sequences (CSI such as colours, OSC such as window titles, two-byte ones)."""
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # control characters but tab and newline
    "\u00ad\u180e\u200b\u2060-\u2064\ufeff"  # soft hyphen, zero widths, invisible operators
    "\u202a-\u202e\u2066-\u2069"  # bidirectional embeddings, overrides and isolates
    "\ufff9-\ufffb"  # interlinear annotations
    "\U000e0000-\U000e007f]"  # tag characters (text a reader cannot see)
)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """What a person typed, without what they cannot see: terminal escapes, control characters
    (NUL included; tab and newline stay), zero-width and bidirectional-override characters,
    invisible tag characters; lone surrogates (undecodable input) become U+FFFD, line ends
    become newlines. Joiners (U+200C/D), marks (LRM/RLM) and variation selectors stay: scripts
    and emoji need them."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _TERMINAL_ESCAPE.sub("", text)
    text = _INVISIBLE.sub("", text)
    return _LONE_SURROGATE.sub("\ufffd", text)


def _clean_if_text(value: object) -> object:
    return clean_text(value) if isinstance(value, str) else value


CleanText = Annotated[str, BeforeValidator(_clean_if_text)]
"""A string field that holds only what a reader can see (see `clean_text`): nothing else of a
question reaches the model."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Turn(_Model):
    """An earlier question and its written solution (never the reasoning) for follow-ups."""

    question: CleanText
    solution: CleanText


class Origin(_Model):
    """Who asked, and from which community (a Discord server), for quotas, fairness and the
    moderators' views. Opaque to the worker."""

    source: Literal["cli", "discord", "bench", "test"] = "cli"
    user_id: int | None = None
    guild_id: int | None = None


class SampleOf(_Model):
    """Where a sample of a consensus job belongs: its job, its place, how many there are."""

    job_id: str
    index: int = Field(ge=0)
    samples: int = Field(ge=2)


class SolveRequest(_Model):
    """The job payload (the single argument of `worker.jobs.solve`)."""

    version: int = CONTRACT_VERSION
    question: CleanText = Field(min_length=1)
    history: list[Turn] = Field(default_factory=list)
    seed: int | None = None
    render: bool = True
    """Draw the solution's math into a Document after solving (a render job ends the job)."""
    origin: Origin = Field(default_factory=Origin)
    enqueued_at: float = Field(default_factory=time.time)
    sample_of: SampleOf | None = None
    """Set on each sample of a consensus job (`fathom.queue.enqueue_consensus`): its end counts
    towards the vote, and its progress shows in the consensus job's."""


class ConsensusRecord(_Model):
    """A consensus job (cons@k): `samples` solve jobs of one question with different seeds, then
    one vote. Stored by `fathom.queue.enqueue_consensus` before any sample is enqueued."""

    version: int = CONTRACT_VERSION
    job_id: str
    request: SolveRequest
    """The question as asked (its seed, if any, is the first sample's)."""
    samples: int = Field(ge=2)
    sample_ids: list[str]
    vote_queue: str
    vote_timeout_s: int
    result_ttl_s: int


class Phase(StrEnum):
    QUEUED = "queued"
    THINKING = "thinking"
    WRITING = "writing"
    RENDERING = "rendering"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (Phase.DONE, Phase.FAILED, Phase.CANCELLED)


class ProgressEvent(_Model):
    version: int = CONTRACT_VERSION
    job_id: str
    phase: Phase
    tokens: int = 0
    """Completion tokens generated so far."""
    budget_tokens: int | None = None
    """max_tokens granted for this job, for progress bars."""
    elapsed_s: float = 0.0
    """Seconds since the job was enqueued."""
    attempt: int = 1
    note: str | None = None
    """Short human-readable detail (e.g. "model server busy, retrying")."""
    ts: float = Field(default_factory=time.time)
    samples: int | None = None
    """For a consensus job: how many samples it runs (`tokens` is then their sum)."""
    samples_done: int = 0
    """For a consensus job: samples that have ended."""


class SolveStatus(StrEnum):
    SOLVED = "solved"
    """Finished with a `</think>` and a final `\\boxed{}` answer."""
    NO_ANSWER = "no_answer"
    """Finished (stop) but without a final boxed answer or without `</think>`."""
    TRUNCATED = "truncated"
    """Hit the token budget (finish_reason "length")."""
    FAILED = "failed"
    CANCELLED = "cancelled"


class FailureCode(StrEnum):
    MODEL_UNREACHABLE = "model_unreachable"
    MODEL_LOADING = "model_loading"
    OVERLOADED = "overloaded"
    QUESTION_TOO_LONG = "question_too_long"
    INVALID_REQUEST = "invalid_request"
    STALLED = "stalled"
    TIMED_OUT = "timed_out"
    MODEL_ERROR = "model_error"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


class Failure(_Model):
    code: FailureCode
    message: str
    """One sentence a user can read and act on."""


class Rendering(StrEnum):
    """Where the drawing of a solution's math stands."""

    NONE = "none"
    """Not asked for, or nothing to draw: the solution is plain Markdown."""
    PENDING = "pending"
    """A render job will store the Document and end the job."""
    DONE = "done"
    """A Document is stored beside the result."""
    FAILED = "failed"
    """Drawing failed: the solution is shown as plain Markdown."""


class Timings(_Model):
    queued_s: float | None = None
    """Enqueue → the worker picked the job up."""
    prepare_s: float | None = None
    """Picked up → the (last) request sent to the model server: /info, token count, retries."""
    ttft_s: float | None = None
    """Request sent → first token."""
    generation_s: float | None = None
    """First token → last token."""
    total_s: float | None = None
    """Enqueue → the job's outcome stored."""
    tokens_per_s: float | None = None


class AnswerVotes(_Model):
    """One equivalence class of a consensus job's answers."""

    answer: str
    """As its first sample wrote it."""
    votes: int


class Consensus(_Model):
    """How a consensus job's samples voted (on a consensus job's result)."""

    samples: int
    votes: int
    """Samples in the chosen answer's class (0 when no sample gave a final answer)."""
    no_answer: int = 0
    """Samples that finished without a final answer (none boxed, or cut at the budget)."""
    failed: int = 0
    """Samples that failed or were cancelled."""
    tied: bool = False
    """Another class has as many votes as the chosen one (the first to appear is shown)."""
    answers: list[AnswerVotes] = Field(default_factory=list)
    """Every class, most votes first."""
    chosen_sample: int | None = None
    """Index of the sample whose written solution is shown."""
    compared_by_text_only: bool = False
    """The time allowed for comparing ran out: the remaining answers were grouped by their
    text only."""

    @property
    def agreement(self) -> float:
        return self.votes / self.samples if self.samples else 0.0

    @property
    def low_agreement(self) -> bool:
        """Fewer than half of the samples agree on the answer shown."""
        return self.agreement < 0.5


class SolveResult(_Model):
    version: int = CONTRACT_VERSION
    job_id: str
    status: SolveStatus
    question: str
    answer: str | None = None
    """Contents of the last brace-balanced `\\boxed{...}` in the written solution."""
    solution: str = ""
    """Markdown after the last `</think>`."""
    reasoning: str = ""
    """Everything before the last `</think>` (all of it when there is none)."""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    budget_tokens: int | None = None
    seed: int | None = None
    model_id: str | None = None
    simulated: bool = False
    """True when the text came from the fathom simulator, not a model."""
    attempts: int = 1
    timings: Timings = Field(default_factory=Timings)
    failure: Failure | None = None
    origin: Origin = Field(default_factory=Origin)
    rendering: Rendering = Rendering.NONE
    enqueued_at: float | None = None
    finished_at: float = Field(default_factory=time.time)
    sample_of: SampleOf | None = None
    """The result of one sample of a consensus job (never delivered by itself)."""
    consensus: Consensus | None = None
    """The vote, on a consensus job's result; the solution and answer are the chosen sample's."""

    @property
    def final(self) -> bool:
        """The job has ended (nothing more will be stored for it)."""
        return self.rendering is not Rendering.PENDING


# --- what a server's moderators see of its jobs -----------------------------------------------

PREVIEW_CHARS = 100


def preview(question: str) -> str:
    """The start of a question, on one line."""
    flat = " ".join(question.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


class JobTicket(_Model):
    """An unfinished job of a server, as its moderators list it."""

    job_id: str
    user_id: int | None
    question: str
    """A one-line preview."""
    enqueued_at: float
    samples: int = 1
    """More than one: a consensus job, whose samples are `fathom.consensus.sample_id(job_id,
    i)` on the solve queue."""


class Outcome(_Model):
    """How a job of a server ended, for the moderators' failures list and statistics."""

    job_id: str
    user_id: int | None
    question: str
    status: SolveStatus
    failure: Failure | None = None
    enqueued_at: float | None = None
    finished_at: float
    queued_s: float | None = None
    """Enqueue → picked up by a worker."""
    total_s: float | None = None
    completion_tokens: int | None = None

    @classmethod
    def of(cls, result: SolveResult) -> Outcome:
        return cls(
            job_id=result.job_id,
            user_id=result.origin.user_id,
            question=preview(result.question),
            status=result.status,
            failure=result.failure,
            enqueued_at=result.enqueued_at,
            finished_at=result.finished_at,
            queued_s=result.timings.queued_s,
            total_s=result.timings.total_s,
            completion_tokens=result.completion_tokens,
        )


# --- the rendered solution: a neutral document, no idea of messages or their limits ---------


class TextBlock(_Model):
    """Markdown, with the math that converts exactly already written as Unicode."""

    kind: Literal["text"] = "text"
    markdown: str


class ImageBlock(_Model):
    """A picture of math (a formula, or a line of prose with formulas in it)."""

    kind: Literal["image"] = "image"
    file: str
    """Name in the job's files (`fathom.keys.files_key`)."""
    alt: str
    """The source the picture shows (LaTeX, with the line's prose), for copying and screen
    readers."""
    width: int
    height: int


class AnswerBlock(_Model):
    """The final answer: as text where it converts exactly, and as an emphasised picture."""

    kind: Literal["answer"] = "answer"
    latex: str
    text: str | None = None
    """Exact Unicode form, when there is one."""
    file: str | None = None


Block = Annotated[TextBlock | ImageBlock | AnswerBlock, Field(discriminator="kind")]


class Document(_Model):
    """A written solution with its math drawn, in reading order."""

    version: int = CONTRACT_VERSION
    blocks: list[Block] = Field(default_factory=list)

    @property
    def files(self) -> list[str]:
        """Every file the blocks name, in order."""
        names = [block.file for block in self.blocks if not isinstance(block, TextBlock)]
        return [name for name in names if name is not None]
