"""The solve job: one question → the model server's stream → a parsed, stored SolveResult.

RQ runs `solve` in a work horse (a fork of the worker) with the request as JSON. Everything the
job learns is published as progress events and ends in a stored result, failures included, so
the bot can explain any outcome later. Transient trouble (the server still loading, overloaded,
a dropped connection) is retried with backoff inside the job; anything else fails at once with
a message a user can act on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx2
import redis
from huggingface_hub import (
    AsyncInferenceClient,
    ChatCompletionInputStreamOptions,
    set_async_client_factory,
)
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, TextGenerationError
from pydantic import ValidationError
from rq import Callback, Queue, Retry, get_current_job
from rq.job import Job
from rq.serializers import JSONSerializer

from fathom import keys
from fathom.contract import (
    CONTRACT_VERSION,
    Failure,
    FailureCode,
    Phase,
    ProgressEvent,
    SolveRequest,
    SolveResult,
    SolveStatus,
    Timings,
)
from fathom.events import load_result, publish_event, store_result
from fathom.queue import record_cancelled
from fathom.settings import Settings, get_settings
from fathom.tasks import cancel_and_wait
from worker.model_server import ServerInfo, count_prompt_tokens, http_client, server_info
from worker.parse import ThinkTracker, parse_completion, split_reasoning
from worker.progress import ProgressThrottle
from worker.prompt import (
    MIN_ANSWER_TOKENS,
    Message,
    answer_budget,
    build_messages,
    estimate_prompt_tokens,
)

log = logging.getLogger(__name__)

# huggingface_hub's clients reuse the worker's TLS context instead of building one per job.
set_async_client_factory(http_client)

RENDER_JOB_FUNC = "worker.render.job.render_solution"
"""The rendering job (issue B): lays the stored solution out and publishes the final DONE."""
RENDER_FAILURE_CALLBACK = "worker.render.job.on_render_failure"
"""Publishes DONE with plain text when the rendering job dies without doing so itself."""
CANCEL_POLL_S = 0.25
"""How often a running job looks at its cancel flag."""
STOP_GRACE_S = 5.0
"""Longest wait for the stream task to end once the job was cancelled or ran out of time."""
SIDE_REQUEST_TIMEOUT_S = 10.0
"""Limit of the small requests (/info, /chat_tokenize) made before generating."""
SEED_RANGE = 2**31


class JobFailed(Exception):
    """A failure that ends the job now, with a reason a user can read."""

    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RetryLater(Exception):
    """Transient trouble: back off and try the model server again."""

    def __init__(self, kind: str, note: str) -> None:
        super().__init__(note)
        self.kind = kind
        self.note = note


CONNECT, OVERLOADED, DROPPED = "connect", "overloaded", "dropped"


def backoff_delay(failures: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Exponential backoff with jitter (half to full delay), so many workers that hit the same
    busy or loading server do not come back in lockstep."""
    delay: float = min(cap_s, base_s * 2.0 ** (failures - 1))
    return delay * rng.uniform(0.5, 1.0)


def _too_long_message(prompt_tokens: int, info: ServerInfo, follow_up: bool) -> str:
    fix = "Shorten the question or start a new conversation." if follow_up else "Shorten it."
    return (
        f"The question is too long for the model: it takes about {prompt_tokens} of the "
        f"{info.max_total_tokens} tokens the model can handle, leaving fewer than "
        f"{MIN_ANSWER_TOKENS} to work it out. {fix}"
    )


def classify(exc: Exception, settings: Settings) -> JobFailed | RetryLater:
    """Map what the client raised to retry-or-fail. Only transient conditions are retried."""
    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return RetryLater(CONNECT, "model server not reachable yet (still loading?), retrying")
    if isinstance(exc, InferenceTimeoutError) and isinstance(
        exc.__cause__, httpx2.ConnectTimeout | httpx2.PoolTimeout
    ):
        return RetryLater(CONNECT, "model server not reachable yet (still loading?), retrying")
    if isinstance(exc, httpx2.TimeoutException):
        return RetryLater(CONNECT, "model server not answering, retrying")
    if isinstance(exc, TimeoutError):
        # The client's per-read timeout (InferenceTimeoutError) or the stall clock.
        return JobFailed(
            FailureCode.STALLED,
            "The model server stopped sending the answer: nothing came for "
            f"{settings.read_timeout_s:g} s.",
        )
    if isinstance(exc, httpx2.TransportError):
        return RetryLater(DROPPED, "connection to the model server lost, retrying")
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code
        detail = exc.response.text[:300]
        if status == 429 or "overloaded" in detail.lower():
            return RetryLater(OVERLOADED, "model server busy, retrying")
        if status in (502, 503, 504):
            return RetryLater(CONNECT, f"model server unavailable (HTTP {status}), retrying")
        if status in (400, 413, 422):
            return _validation_failure(detail)
        if status in (401, 403):
            return JobFailed(
                FailureCode.MODEL_ERROR,
                "The model server refused the worker's credentials (check FATHOM_MODEL_API_KEY).",
            )
        return JobFailed(
            FailureCode.MODEL_ERROR, f"The model server answered HTTP {status}: {detail}"
        )
    if isinstance(exc, TextGenerationError):
        # An error inside a 200 stream. TGI sends overload this way, coded 422.
        detail = str(exc)[:300]
        if "overloaded" in detail.lower():
            return RetryLater(OVERLOADED, "model server busy, retrying")
        if "validation" in detail.lower():
            return _validation_failure(detail)
        return JobFailed(FailureCode.MODEL_ERROR, f"The model server failed: {detail}")
    raise exc


def _validation_failure(detail: str) -> JobFailed:
    if "token" in detail.lower():
        return JobFailed(
            FailureCode.QUESTION_TOO_LONG,
            f"The question is too long for the model ({detail}). Shorten it.",
        )
    return JobFailed(
        FailureCode.INVALID_REQUEST, f"The model server rejected the question: {detail}"
    )


@dataclass
class SolveRun:
    """The state of one job while it runs (shared by its attempts)."""

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
    prepare_s: float | None = None
    ttft_s: float | None = None
    generation_s: float | None = None

    def __post_init__(self) -> None:
        self.throttle = ProgressThrottle(self.settings.progress_interval_s)

    @property
    def phase(self) -> Phase:
        return Phase.WRITING if self.tracker.writing else Phase.THINKING

    def publish(self, phase: Phase, note: str | None = None) -> None:
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


async def _attempt(run: SolveRun, http: httpx2.AsyncClient, messages: list[Message]) -> SolveResult:
    """One request to the model server, streamed to the end."""
    settings = run.settings
    base_url = (settings.model_url or "").rstrip("/")
    # Both at once (they cost a few ms each); both finish before an error is raised, so
    # none is left running behind a retry.
    info, counted = await asyncio.gather(
        server_info(http, base_url, settings.model_id, settings.context_tokens),
        count_prompt_tokens(http, base_url, messages),
        return_exceptions=True,
    )
    if isinstance(info, BaseException):
        raise info
    if isinstance(counted, BaseException):
        raise counted
    run.info = info
    prompt_tokens = (
        counted
        if counted is not None
        else estimate_prompt_tokens(messages, settings.chars_per_token_estimate)
    )
    budget = answer_budget(prompt_tokens, info.max_total_tokens, info.max_input_tokens)
    run.prompt_tokens = prompt_tokens
    if budget is None:
        raise JobFailed(
            FailureCode.QUESTION_TOO_LONG,
            _too_long_message(prompt_tokens, info, follow_up=bool(run.request.history)),
        )
    run.budget = budget
    run.tracker = ThinkTracker()
    run.tokens = 0
    run.publish(Phase.THINKING)

    api_key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    finish_reason: str | None = None
    usage_prompt: int | None = None
    usage_completion: int | None = None
    sent = time.monotonic()
    run.prepare_s = sent - run.picked_up
    first: float | None = None
    async with AsyncInferenceClient(
        base_url=base_url, timeout=settings.read_timeout_s, api_key=api_key
    ) as client:
        stream = await client.chat_completion(
            messages,
            stream=True,
            stream_options=ChatCompletionInputStreamOptions(include_usage=True),
            temperature=settings.temperature,
            top_p=settings.top_p,
            seed=run.seed,
            max_tokens=budget,
        )
        # A stalled TGI still sends keep-alive comments every 15 s, which reset the client's
        # per-read timeout: the stall clock here restarts only when text arrives.
        async with asyncio.timeout(settings.read_timeout_s) as stall_clock:
            async for chunk in stream:
                stall_clock.reschedule(asyncio.get_running_loop().time() + settings.read_timeout_s)
                if chunk.usage is not None:
                    usage_prompt = chunk.usage.prompt_tokens
                    usage_completion = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    text = choice.delta.content
                    if text:
                        if first is None:
                            first = time.monotonic()
                            run.ttft_s = first - sent
                        run.tokens += 1
                        run.tracker.feed(text)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                if run.tokens and run.throttle.due(run.phase):
                    run.publish(run.phase)
    if finish_reason is None:
        raise RetryLater(DROPPED, "the model server ended the answer early, retrying")
    if first is not None:
        run.generation_s = time.monotonic() - first
    parsed = parse_completion(run.tracker.text, finish_reason)
    return run.result(
        parsed.status,
        answer=parsed.answer,
        solution=parsed.solution,
        reasoning=parsed.reasoning,
        finish_reason=finish_reason,
        prompt_tokens=usage_prompt if usage_prompt is not None else prompt_tokens,
        completion_tokens=usage_completion if usage_completion is not None else run.tokens,
    )


async def _solve_with_retries(run: SolveRun, http: httpx2.AsyncClient) -> SolveResult:
    settings = run.settings
    messages = build_messages(run.request, settings.instruction)
    rng = random.Random()
    failures = {CONNECT: 0, OVERLOADED: 0, DROPPED: 0}
    while True:
        run.attempt += 1
        try:
            return await _attempt(run, http, messages)
        except (JobFailed, RetryLater) as outcome:
            verdict: JobFailed | RetryLater = outcome
        except (httpx2.HTTPError, HfHubHTTPError, TimeoutError) as exc:
            verdict = classify(exc, settings)
        if isinstance(verdict, JobFailed):
            raise verdict
        failures[verdict.kind] += 1
        count = failures[verdict.kind]
        if verdict.kind == OVERLOADED:
            attempts, base, cap = (
                settings.overload_attempts,
                settings.overload_backoff_s,
                settings.overload_backoff_max_s,
            )
        else:
            attempts, base, cap = (
                settings.connect_attempts,
                settings.connect_backoff_s,
                settings.connect_backoff_max_s,
            )
        if count >= attempts:
            raise _gave_up(verdict.kind, count, run)
        delay = backoff_delay(count, base, cap, rng)
        log.info("job %s: %s (in %.1f s)", run.job_id, verdict.note, delay)
        run.tokens = 0
        run.publish(Phase.THINKING, note=verdict.note)
        await asyncio.sleep(delay)


def _gave_up(kind: str, count: int, run: SolveRun) -> JobFailed:
    if kind == OVERLOADED:
        return JobFailed(
            FailureCode.OVERLOADED,
            f"The model server stayed too busy to take the question ({count} tries). "
            "Try again later.",
        )
    if kind == DROPPED:
        return JobFailed(
            FailureCode.MODEL_ERROR,
            f"The model server dropped the connection {count} times while answering.",
        )
    return JobFailed(
        FailureCode.MODEL_UNREACHABLE,
        f"The model server at {run.settings.model_url} did not answer after {count} tries over "
        f"{time.monotonic() - run.picked_up:.0f} s; it may still be loading. "
        "Try again in a few minutes.",
    )


async def _wait_for_cancel(conn: redis.Redis, job_id: str) -> None:
    """Return once someone set the job's cancel flag (polled: the flag lives in Redis)."""
    key = keys.cancel_key(job_id)
    while True:
        if conn.exists(key):
            return
        await asyncio.sleep(CANCEL_POLL_S)


async def _solve(run: SolveRun, time_limit_s: float) -> SolveResult:
    """Run the attempts under the job's time limit, watching the cancel flag. Stopping the
    work task closes the client, hence the HTTP stream, so the server frees the slot."""
    cancelled_message = "The question was cancelled before it was answered."
    if run.conn.exists(keys.cancel_key(run.job_id)):
        return run.unfinished(SolveStatus.CANCELLED, FailureCode.CANCELLED, cancelled_message)
    if not run.settings.model_url:
        return run.unfinished(
            SolveStatus.FAILED,
            FailureCode.MODEL_UNREACHABLE,
            "No model server is configured for the workers (FATHOM_MODEL_URL is not set).",
        )
    async with http_client(SIDE_REQUEST_TIMEOUT_S) as http:
        work = asyncio.create_task(_solve_with_retries(run, http))
        cancel = asyncio.create_task(_wait_for_cancel(run.conn, run.job_id))
        done, pending = await asyncio.wait(
            {work, cancel}, timeout=time_limit_s, return_when=asyncio.FIRST_COMPLETED
        )
        # Bounded: on Python 3.11 a cancellation can be lost inside asyncio.wait_for, and
        # RQ's hard timeout is the backstop for a task that still does not end.
        left = await cancel_and_wait(pending, STOP_GRACE_S)
        for task in left:
            log.error("job %s: %s did not stop within %.0f s", run.job_id, task, STOP_GRACE_S)
    if work in done:
        try:
            return work.result()
        except JobFailed as failure:
            return run.unfinished(SolveStatus.FAILED, failure.code, failure.message)
    if cancel in done:
        return run.unfinished(SolveStatus.CANCELLED, FailureCode.CANCELLED, cancelled_message)
    return run.unfinished(
        SolveStatus.FAILED,
        FailureCode.TIMED_OUT,
        f"Solving took longer than the {time_limit_s:.0f} s limit, so it was stopped.",
    )


def time_limit(job_timeout: float | None, default_s: float) -> float:
    """The job's own deadline, a little under RQ's hard limit so the result is still stored."""
    limit = job_timeout if job_timeout and job_timeout > 0 else default_s
    return max(1.0, limit - min(30.0, max(2.0, 0.05 * limit)))


def finish(
    conn: redis.Redis,
    result: SolveResult,
    *,
    enqueued_at: float | None,
    render: bool,
    settings: Settings,
) -> SolveResult:
    """Store the result, timed to the moment it is stored, and announce the outcome: DONE,
    FAILED or CANCELLED, or RENDERING with the rendering job taking over."""
    stored_at = time.time()
    total_s = None if enqueued_at is None else round(stored_at - enqueued_at, 4)
    result = result.model_copy(
        update={
            "timings": result.timings.model_copy(update={"total_s": total_s}),
            "finished_at": stored_at,
        }
    )
    store_result(conn, result, settings.result_ttl_s)
    if result.status is SolveStatus.CANCELLED:
        phase = Phase.CANCELLED
    elif result.status is SolveStatus.FAILED:
        phase = Phase.FAILED
    elif render and result.solution:
        phase = Phase.RENDERING
    else:
        phase = Phase.DONE
    publish_event(
        conn,
        ProgressEvent(
            job_id=result.job_id,
            phase=phase,
            tokens=result.completion_tokens or 0,
            budget_tokens=result.budget_tokens,
            elapsed_s=total_s or 0.0,
            attempt=result.attempts,
            note=result.failure.message if result.failure else None,
        ),
    )
    if phase is Phase.RENDERING:
        enqueue_render(conn, result.job_id, settings)
    return result


def enqueue_render(conn: redis.Redis, job_id: str, settings: Settings) -> Job:
    """Hand the stored solution to a CPU render worker (it publishes the job's DONE)."""
    return Queue(settings.render_queue, connection=conn, serializer=JSONSerializer).enqueue_call(
        RENDER_JOB_FUNC,
        args=(job_id,),
        timeout=settings.render_job_timeout_s,
        result_ttl=settings.result_ttl_s,
        failure_ttl=settings.result_ttl_s,
        retry=Retry(max=1),
        on_failure=Callback(RENDER_FAILURE_CALLBACK),
        description=f"render solution of {job_id}",
    )


def solve(payload: dict[str, Any]) -> dict[str, Any]:
    """RQ job `worker.jobs.solve`: solve one SolveRequest (as JSON); returns the SolveResult
    JSON, which is also stored under `fathom.keys.result_key(job_id)`."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("worker.jobs.solve runs as an RQ job")
    settings = get_settings()
    conn = job.connection
    try:
        request = SolveRequest.model_validate(payload)
        if request.version != CONTRACT_VERSION:
            raise ValueError(f"contract version {request.version}, expected {CONTRACT_VERSION}")
    except (ValidationError, ValueError) as exc:
        log.warning("job %s: unreadable payload: %s", job.id, exc)
        rejected = SolveResult(
            job_id=job.id,
            status=SolveStatus.FAILED,
            question=str(payload.get("question", ""))[: settings.max_question_chars],
            failure=Failure(
                code=FailureCode.INVALID_REQUEST,
                message=f"The job could not be read ({type(exc).__name__}); ask again.",
            ),
        )
        stored = finish(conn, rejected, enqueued_at=None, render=False, settings=settings)
        return stored.model_dump(mode="json")

    seed = next(
        s for s in (request.seed, settings.seed, random.randrange(SEED_RANGE)) if s is not None
    )
    run = SolveRun(job_id=job.id, request=request, settings=settings, conn=conn, seed=seed)
    limit = time_limit(job.timeout, settings.job_timeout_s)
    log.info("job %s: solving (%d chars, seed %d)", job.id, len(request.question), seed)
    try:
        result = asyncio.run(_solve(run, limit))
    except Exception:
        log.exception("job %s: unexpected error", job.id)
        result = run.unfinished(
            SolveStatus.FAILED,
            FailureCode.INTERNAL,
            "Something went wrong in the worker while solving; the operators can see why "
            "in its log.",
        )
    stored = finish(
        conn, result, enqueued_at=request.enqueued_at, render=request.render, settings=settings
    )
    log.info("job %s: %s", job.id, stored.status)
    return stored.model_dump(mode="json")


def on_solve_failure(
    job: Job,
    connection: redis.Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ failure callback: the job died without reporting (its worker was killed, or RQ's hard
    timeout fired). With retries left RQ puts it back on the queue; otherwise record why."""
    if job.retries_left:
        publish_event(
            connection,
            ProgressEvent(
                job_id=job.id, phase=Phase.QUEUED, note="the worker was lost; trying again"
            ),
        )
        return
    if load_result(connection, job.id) is not None:
        return
    request = SolveRequest.model_validate(job.args[0])
    message = "The worker solving this question stopped unexpectedly; ask again."
    result = SolveResult(
        job_id=job.id,
        status=SolveStatus.FAILED,
        question=request.question,
        origin=request.origin,
        failure=Failure(code=FailureCode.INTERNAL, message=message),
    )
    store_result(connection, result, get_settings().result_ttl_s)
    publish_event(connection, ProgressEvent(job_id=job.id, phase=Phase.FAILED, note=message))


def on_solve_stopped(job: Job, connection: redis.Redis) -> None:
    """RQ stopped callback (`fathom.queue.stop_job`): the work horse was killed mid-stream;
    the kernel closed its connection, so the model server already freed the slot."""
    request = SolveRequest.model_validate(job.args[0])
    record_cancelled(connection, job.id, request.question, request.origin, get_settings())
