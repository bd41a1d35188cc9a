"""RQ job `worker.render.job.render_solution`, run by CPU render workers on the render queue.

It draws a stored solution's math into a Document, stores the document and its pictures beside
the job (both expire after JOB_KEY_TTL_S), and ends the job (`fathom.events.end_job`) with
`rendering` DONE. If drawing fails, the job still ends, with `rendering` FAILED, so the bot
shows the solution as plain text and nothing is lost.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType

import redis
from pydantic import ValidationError
from rq import get_current_job
from rq.job import Job

from fathom import metrics
from fathom.contract import Failure, FailureCode, Rendering, SolveResult, SolveStatus
from fathom.events import end_job, load_result, store_document
from fathom.settings import get_settings
from worker.render.document import draw_solution
from worker.render.errors import RenderError

log = logging.getLogger(__name__)

RENDER_FAILED_NOTE = "Math rendering failed; the solution is sent as plain text."
RESULT_LOST = "The solution was lost before it could be shown; please ask again."
MAX_SOLUTION_CHARS = 200_000
"""Longer solutions are not drawn (the bot sends them as plain text): it bounds a job's time."""


def on_render_failure(
    job: Job,
    connection: redis.Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ failure callback: the rendering job died without ending the job (its worker crashed
    or RQ's hard timeout fired). On the last try, end it with plain text."""
    if job.retries_left:
        return
    job_id = str(job.args[0])
    try:
        result = load_result(connection, job_id)
    except ValidationError:  # what killed the job may be the stored result itself
        result = None
    if result is not None and result.final:
        return
    log.warning("render %s: job died (%s); the bot will send plain text", job_id, exc_type)
    _end_plain(connection, job_id, result)


def _end_plain(conn: redis.Redis, job_id: str, result: SolveResult | None) -> None:
    """End the job without a document: the solution as plain text, or, where even the stored
    result is gone, a failure that says so."""
    ttl_s = get_settings().result_ttl_s
    if result is None:
        lost = SolveResult(
            job_id=job_id,
            status=SolveStatus.FAILED,
            question="",
            failure=Failure(code=FailureCode.INTERNAL, message=RESULT_LOST),
        )
        end_job(conn, lost, ttl_s=ttl_s)
        return
    plain = result.model_copy(update={"rendering": Rendering.FAILED})
    end_job(conn, plain, ttl_s=ttl_s, note=RENDER_FAILED_NOTE)


def render_solution(job_id: str) -> None:
    started = time.monotonic()
    try:
        _render(job_id)
    finally:
        job = get_current_job()
        if job is not None:
            pipe = job.connection.pipeline(transaction=False)
            metrics.observe(
                pipe, metrics.RENDER, time.monotonic() - started, metrics.RENDER_BUCKETS_S
            )
            pipe.execute()


def _render(job_id: str) -> None:
    job = get_current_job()
    settings = get_settings()
    conn = job.connection if job is not None else redis.Redis.from_url(settings.redis_url)
    result = load_result(conn, job_id)
    if result is None:
        log.warning("render %s: no stored result (expired?); nothing to draw", job_id)
        _end_plain(conn, job_id, None)
        return
    if result.final:  # ended already (its solve job's failure callback ended it)
        return
    draw_and_end(conn, result)


def draw_and_end(conn: redis.Redis, result: SolveResult) -> None:
    """Draw the result's solution, store the document beside its job and end the job; if
    drawing fails the job still ends, with plain text."""
    try:
        if len(result.solution) > MAX_SOLUTION_CHARS:
            raise RenderError(f"solution of {len(result.solution)} characters is too long")
        drawn = draw_solution(result.solution, result.answer)
        store_document(conn, result.job_id, drawn.document, drawn.files)
    except Exception:  # any failure here must still end the job, with plain text
        log.exception("render %s: drawing failed; the bot will send plain text", result.job_id)
        _end_plain(conn, result.job_id, result)
        return
    end_job(
        conn,
        result.model_copy(update={"rendering": Rendering.DONE}),
        ttl_s=get_settings().result_ttl_s,
    )
