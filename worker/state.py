"""The state of one solve job while it runs, shared by its attempts, and the results it makes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis

from fathom.consensus import sample_progress
from fathom.contract import (
    Failure,
    FailureCode,
    Phase,
    ProgressEvent,
    SolveRequest,
    SolveResult,
    SolveStatus,
    Timings,
)
from fathom.events import publish_event
from fathom.settings import Settings
from worker.model_server import ServerInfo
from worker.parse import ThinkTracker, split_reasoning
from worker.progress import ProgressThrottle

INFO_FRESH_S = 60.0
"""How long a job trusts the limits its server gave across its attempts (a restarted server may
come back with other limits)."""


@dataclass
class SolveRun:
    job_id: str
    request: SolveRequest
    settings: Settings
    conn: redis.Redis
    seed: int
    picked_up_wall: float = field(default_factory=time.time)
    picked_up: float = field(default_factory=time.monotonic)
    attempt: int = 0
    tracker: ThinkTracker = field(default_factory=ThinkTracker)
    tokens: int = 0
    budget: int | None = None
    prompt_tokens: int | None = None
    info: ServerInfo | None = None
    info_at: float = float("-inf")
    prepare_s: float | None = None
    ttft_s: float | None = None
    generation_s: float | None = None

    def __post_init__(self) -> None:
        self.throttle = ProgressThrottle(self.settings.progress_interval_s)

    @property
    def phase(self) -> Phase:
        return Phase.WRITING if self.tracker.writing else Phase.THINKING

    def fresh_info(self) -> ServerInfo | None:
        if self.info is not None and time.monotonic() - self.info_at < INFO_FRESH_S:
            return self.info
        return None

    def waited_s(self) -> float:
        """Seconds since the worker picked the job up."""
        return time.monotonic() - self.picked_up

    def restart_text(self) -> None:
        """A new attempt starts its answer from nothing."""
        self.tracker = ThinkTracker()
        self.tokens = 0

    def publish(self, phase: Phase, note: str | None = None) -> None:
        """The job's progress; a consensus job's sample also feeds the progress of the whole
        (which the bot follows instead of the sample's)."""
        sample = self.request.sample_of
        publish_event(
            self.conn,
            ProgressEvent(
                job_id=self.job_id,
                phase=phase,
                tokens=self.tokens,
                budget_tokens=self.budget,
                elapsed_s=round(time.time() - self.request.enqueued_at, 3),
                attempt=max(self.attempt, 1),
                note=note,
            ),
            announce=sample is None,
        )
        if sample is not None:
            sample_progress(
                self.conn,
                sample,
                self.tokens,
                enqueued_at=self.request.enqueued_at,
                min_interval_s=self.settings.progress_interval_s,
            )

    def result(self, status: SolveStatus, **fields: Any) -> SolveResult:
        queued_s = self.picked_up_wall - self.request.enqueued_at
        tokens_per_s = None
        completion_tokens = fields.get("completion_tokens")
        if self.generation_s and completion_tokens:
            tokens_per_s = round(completion_tokens / self.generation_s, 2)
        return SolveResult(
            job_id=self.job_id,
            status=status,
            question=self.request.question,
            budget_tokens=self.budget,
            seed=self.seed,
            model_id=self.info.model_id if self.info else None,
            simulated=self.info.simulated if self.info else False,
            attempts=max(self.attempt, 1),
            origin=self.request.origin,
            enqueued_at=self.request.enqueued_at,
            sample_of=self.request.sample_of,
            timings=Timings(
                queued_s=round(queued_s, 4),
                prepare_s=_round(self.prepare_s),
                ttft_s=_round(self.ttft_s),
                generation_s=_round(self.generation_s),
                tokens_per_s=tokens_per_s,
            ),
            **fields,
        )

    def unfinished(self, status: SolveStatus, code: FailureCode, message: str) -> SolveResult:
        """A result for a job that did not finish, keeping whatever text came so far."""
        reasoning, solution, _closed = split_reasoning(self.tracker.text)
        return self.result(
            status,
            reasoning=reasoning,
            solution=solution,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.tokens or None,
            failure=Failure(code=code, message=message),
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
