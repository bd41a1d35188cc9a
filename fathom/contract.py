"""The versioned job contract: what goes on the queue, what comes back, and progress between.

Everything crosses Redis as JSON (RQ's JSONSerializer for job arguments, plain JSON strings for
results and events); nothing is pickled.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION = 1

SOLVE_JOB_FUNC = "worker.jobs.solve"
"""Dotted path RQ imports on the worker; the bot enqueues by name and never imports the worker."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Turn(_Model):
    """An earlier question and its written solution (never the reasoning) for follow-ups."""

    question: str
    solution: str


class Origin(_Model):
    """Where the question came from, so the bot can deliver the answer. Opaque to the worker."""

    source: Literal["cli", "discord", "bench", "test"] = "cli"
    user_id: int | None = None
    guild_id: int | None = None
    channel_id: int | None = None
    thread_id: int | None = None
    status_message_id: int | None = None
    reply_to_message_id: int | None = None
    private: bool = False


class SolveRequest(_Model):
    """The job payload (the single argument of `worker.jobs.solve`)."""

    version: int = CONTRACT_VERSION
    question: str = Field(min_length=1)
    history: list[Turn] = Field(default_factory=list)
    seed: int | None = None
    show_reasoning: bool = False
    render: bool = True
    """Lay the solution out as Discord messages with rendered math (issue B) after solving."""
    origin: Origin = Field(default_factory=Origin)
    enqueued_at: float = Field(default_factory=time.time)


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
    OVERLOADED = "overloaded"
    QUESTION_TOO_LONG = "question_too_long"
    INVALID_REQUEST = "invalid_request"
    STALLED = "stalled"
    TIMED_OUT = "timed_out"
    MODEL_ERROR = "model_error"
    RENDER_FAILED = "render_failed"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


class Failure(_Model):
    code: FailureCode
    message: str
    """One sentence a user can read and act on."""


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
    """Enqueue → result stored."""
    tokens_per_s: float | None = None


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
    rendered: bool = False
    """A layout of Discord messages (and image files) is stored for this job."""
    finished_at: float = Field(default_factory=time.time)


class MessagePayload(_Model):
    """One Discord message of a laid-out solution; `files` name entries of the job's files hash
    (or files in a directory for `fathom render`)."""

    content: str = Field(max_length=2000)
    files: list[str] = Field(default_factory=list, max_length=10)
