"""The RQ entry points of the solve job: `solve` (one question → a stored outcome) and the
callbacks RQ runs when a job dies or is stopped without ending itself.

RQ runs `solve` in a work horse (a fork of the worker) with the request as JSON. Everything the
job learns is published as progress events and ends in a stored outcome, failures included, so
the bot can explain any outcome later (see worker.run for the run itself).
"""

from __future__ import annotations

import asyncio
import logging
import random
from types import TracebackType
from typing import Any

import redis
from huggingface_hub import set_async_client_factory
from pydantic import ValidationError
from rq import get_current_job
from rq.job import Job

from fathom.contract import (
    CONTRACT_VERSION,
    Failure,
    FailureCode,
    Phase,
    ProgressEvent,
    Rendering,
    SampleOf,
    SolveRequest,
    SolveResult,
    SolveStatus,
)
from fathom.events import end_job, load_result, publish_event
from fathom.queue import CANCELLED_MESSAGE, cancel_message, cancelled_result
from fathom.settings import get_settings
from worker.model_server import http_client
from worker.run import finish, run_solve, time_limit
from worker.state import SolveRun

log = logging.getLogger(__name__)

# huggingface_hub's clients reuse the worker's TLS context instead of building one per job.
set_async_client_factory(http_client)

SEED_RANGE = 2**31
WORKER_LOST = "The worker solving this question stopped unexpectedly; ask again."


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
            sample_of=_sample_of(payload),
        )
        return end_job(conn, rejected, ttl_s=settings.result_ttl_s).model_dump(mode="json")

    seed = next(
        s for s in (request.seed, settings.seed, random.randrange(SEED_RANGE)) if s is not None
    )
    run = SolveRun(job_id=job.id, request=request, settings=settings, conn=conn, seed=seed)
    limit = time_limit(job.timeout, settings.job_timeout_s)
    log.info("job %s: solving (%d chars, seed %d)", job.id, len(request.question), seed)
    try:
        result = asyncio.run(run_solve(run, limit))
    except Exception:
        log.exception("job %s: unexpected error", job.id)
        result = run.unfinished(
            SolveStatus.FAILED,
            FailureCode.INTERNAL,
            "Something went wrong in the worker while solving; the operators can see why "
            "in its log.",
        )
    stored = finish(conn, result, render=request.render, settings=settings)
    log.info("job %s: %s", job.id, stored.status)
    return stored.model_dump(mode="json")


def _sample_of(payload: dict[str, Any]) -> SampleOf | None:
    """Where an unreadable job belongs, if that much can be read: a consensus job's sample must
    still be counted, or its vote would never run."""
    try:
        return SampleOf.model_validate(payload.get("sample_of"))
    except ValidationError:
        return None


def on_solve_failure(
    job: Job,
    connection: redis.Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ failure callback: the job died without ending itself (its worker was killed, or RQ's
    hard timeout fired). With retries left RQ puts it back on the queue; otherwise say why."""
    request = SolveRequest.model_validate(job.args[0])
    if job.retries_left:
        publish_event(
            connection,
            ProgressEvent(
                job_id=job.id, phase=Phase.QUEUED, note="the worker was lost; trying again"
            ),
            announce=request.sample_of is None,
        )
        return
    settings = get_settings()
    stored = load_result(connection, job.id)
    if stored is not None:
        if not stored.final:  # solved, but the hand-over to rendering did not happen
            plain = stored.model_copy(update={"rendering": Rendering.FAILED})
            end_job(connection, plain, ttl_s=settings.result_ttl_s)
        return
    lost = SolveResult(
        job_id=job.id,
        status=SolveStatus.FAILED,
        question=request.question,
        origin=request.origin,
        enqueued_at=request.enqueued_at,
        failure=Failure(code=FailureCode.INTERNAL, message=WORKER_LOST),
        sample_of=request.sample_of,
    )
    end_job(connection, lost, ttl_s=settings.result_ttl_s)


def on_solve_stopped(job: Job, connection: redis.Redis) -> None:
    """RQ stopped callback (`fathom.queue.stop_job`): the work horse was killed mid-stream;
    the kernel closed its connection, so the model server already freed the slot."""
    request = SolveRequest.model_validate(job.args[0])
    message = cancel_message(connection, job.id) or CANCELLED_MESSAGE
    cancelled = cancelled_result(job.id, request, message)
    end_job(connection, cancelled, ttl_s=get_settings().result_ttl_s)
