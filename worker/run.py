"""A solve job's run: attempts with backoff under the job's time limit, watching its cancel
flag, and how the run ends (the job's outcome, or the hand-over to rendering)."""

from __future__ import annotations

import asyncio
import logging
import random

import httpx2
import redis
from huggingface_hub.errors import HfHubHTTPError

from fathom.contract import FailureCode, Phase, Rendering, SolveResult, SolveStatus
from fathom.events import end_job, hand_over_to_rendering
from fathom.queue import cancel_message, enqueue_render
from fathom.settings import Settings
from fathom.tasks import cancel_and_wait
from worker.attempt import attempt
from worker.errors import (
    JobFailed,
    RetryLater,
    Trouble,
    Unreachable,
    backoff_for,
    classify,
    gave_up,
)
from worker.model_server import ModelServerLoading, http_client
from worker.prompt import build_messages
from worker.state import SolveRun

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.25
"""How often a running job looks at its cancel flag."""
STOP_GRACE_S = 5.0
"""Longest wait for the stream task to end once the job was cancelled or ran out of time."""
SIDE_REQUEST_TIMEOUT_S = 10.0
"""Limit of the small requests made before generating (discovery, token counting)."""


async def solve_with_retries(run: SolveRun, http: httpx2.AsyncClient) -> SolveResult:
    """Attempts until one ends the job; transient trouble is retried within its budget."""
    settings = run.settings
    messages = build_messages(run.request, settings.instruction)
    rng = random.Random()
    failures = dict.fromkeys(Trouble, 0)
    causes: dict[Trouble, Unreachable | None] = {}
    while True:
        run.attempt += 1
        try:
            return await attempt(run, http, messages)
        except (JobFailed, RetryLater) as outcome:
            verdict: JobFailed | RetryLater = outcome
        except (httpx2.HTTPError, HfHubHTTPError, TimeoutError, ModelServerLoading) as exc:
            verdict = classify(exc, settings)
        if isinstance(verdict, JobFailed):
            raise verdict
        failures[verdict.kind] += 1
        causes[verdict.kind] = verdict.cause
        count = failures[verdict.kind]
        backoff = backoff_for(verdict.kind, settings)
        if count >= backoff.attempts:
            cause = causes.get(verdict.kind)
            raise gave_up(verdict.kind, count, settings.model_url, run.waited_s(), cause)
        delay = backoff.delay(count, rng)
        log.info("job %s: %s (in %.1f s)", run.job_id, verdict.note, delay)
        run.tokens = 0
        run.publish(Phase.THINKING, note=verdict.note)
        await asyncio.sleep(delay)


async def _wait_for_cancel(conn: redis.Redis, job_id: str) -> str:
    """Once someone asked to cancel the job, what the asker is told (polled: the flag lives in
    Redis)."""
    while (message := cancel_message(conn, job_id)) is None:  # noqa: ASYNC110 (flag in Redis)
        await asyncio.sleep(CANCEL_POLL_S)
    return message


async def run_solve(run: SolveRun, time_limit_s: float) -> SolveResult:
    """Run the attempts under the job's time limit, watching the cancel flag. Stopping the
    work task closes the client, hence the HTTP stream, so the server frees the slot."""
    cancelled = cancel_message(run.conn, run.job_id)
    if cancelled is not None:
        return run.unfinished(SolveStatus.CANCELLED, FailureCode.CANCELLED, cancelled)
    if not run.settings.model_url:
        return run.unfinished(
            SolveStatus.FAILED,
            FailureCode.MODEL_UNREACHABLE,
            "No model server is configured for the workers (FATHOM_MODEL_URL is not set).",
        )
    api_key = run.settings.model_api_key
    secret = api_key.get_secret_value() if api_key else None
    async with http_client(SIDE_REQUEST_TIMEOUT_S, secret) as http:
        work = asyncio.create_task(solve_with_retries(run, http))
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
        return run.unfinished(SolveStatus.CANCELLED, FailureCode.CANCELLED, cancel.result())
    return run.unfinished(
        SolveStatus.FAILED,
        FailureCode.TIMED_OUT,
        f"Solving took longer than the {time_limit_s:.0f} s limit, so it was stopped.",
    )


def time_limit(job_timeout: float | None, default_s: float) -> float:
    """The job's own deadline, a little under RQ's hard limit so the outcome is still stored."""
    limit = job_timeout if job_timeout and job_timeout > 0 else default_s
    return max(1.0, limit - min(30.0, max(2.0, 0.05 * limit)))


def finish(
    conn: redis.Redis, result: SolveResult, *, render: bool, settings: Settings
) -> SolveResult:
    """End the job, or hand a written solution over to a render worker, which ends it; returns
    what was stored."""
    drawable = result.status not in (SolveStatus.FAILED, SolveStatus.CANCELLED)
    if render and drawable and result.solution.strip():
        pending = result.model_copy(update={"rendering": Rendering.PENDING})
        hand_over_to_rendering(conn, pending, settings.result_ttl_s)
        enqueue_render(conn, result.job_id, settings)
        return pending
    return end_job(conn, result, ttl_s=settings.result_ttl_s)
