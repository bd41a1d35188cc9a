"""RQ job `worker.render.job.render_solution`, run by CPU render workers on the render queue.

It lays a stored solution out as Discord messages and stores the layout and its images beside
the job (both expire after JOB_KEY_TTL_S; the bot deletes them once delivered), marks the result
`rendered`, and publishes the job's terminal DONE. If rendering fails, DONE is still published
with `rendered=False`, so the bot sends the solution as plain text and nothing is lost.
"""

from __future__ import annotations

import json
import logging
import time
from types import TracebackType

import redis
from pydantic import ValidationError
from rq import get_current_job
from rq.job import Job

from fathom import keys
from fathom.contract import Phase, ProgressEvent, SolveResult
from fathom.events import latest_event, load_result, publish_event, store_result
from fathom.settings import get_settings
from worker.render.errors import RenderError

log = logging.getLogger(__name__)

RENDER_FAILED_NOTE = "Math rendering failed; the solution is sent as plain text."
MAX_SOLUTION_CHARS = 200_000
"""Longer solutions are not laid out (the bot sends them as plain text): it bounds a job's time."""


def on_render_failure(
    job: Job,
    connection: redis.Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ failure callback: the rendering job died without publishing (its worker crashed or
    RQ's hard timeout fired). On the last try, end the job in DONE with plain text so the bot
    still delivers the solution."""
    if job.retries_left:
        return
    job_id = str(job.args[0])
    latest = latest_event(connection, job_id)
    if latest is not None and latest.phase.terminal:
        return
    log.warning("render %s: job died (%s); the bot will send plain text", job_id, exc_type)
    try:
        result = load_result(connection, job_id)
    except ValidationError:  # what killed the job may be the stored result itself
        result = None
    publish_done(connection, job_id, note=RENDER_FAILED_NOTE, result=result)


def render_solution(job_id: str) -> None:
    job = get_current_job()
    conn = job.connection if job is not None else redis.Redis.from_url(get_settings().redis_url)
    started = time.monotonic()
    result = load_result(conn, job_id)
    if result is None:
        log.warning("render %s: no stored result (expired?); nothing to lay out", job_id)
        publish_event(
            conn,
            ProgressEvent(job_id=job_id, phase=Phase.FAILED, note="The result has expired."),
        )
        return
    rendered = False
    note: str | None = None
    try:
        store_layout(conn, result)
        rendered = True
    except Exception:  # any failure here must still end in DONE with plain text
        log.exception("render %s: layout failed; the bot will send plain text", job_id)
        note = RENDER_FAILED_NOTE
    if rendered:
        result = result.model_copy(update={"rendered": True})
        store_result(conn, result, get_settings().result_ttl_s)
    publish_done(conn, job_id, note=note, result=result, render_s=time.monotonic() - started)


def publish_done(
    conn: redis.Redis,
    job_id: str,
    *,
    note: str | None,
    result: SolveResult | None,
    render_s: float = 0.0,
) -> None:
    """The job's terminal DONE event (the bot then delivers the stored result)."""
    publish_event(
        conn,
        ProgressEvent(
            job_id=job_id,
            phase=Phase.DONE,
            tokens=(result.completion_tokens or 0) if result else 0,
            budget_tokens=result.budget_tokens if result else None,
            elapsed_s=round(((result.timings.total_s or 0.0) if result else 0.0) + render_s, 4),
            attempt=result.attempts if result else 1,
            note=note,
        ),
    )


def store_layout(conn: redis.Redis, result: SolveResult) -> None:
    """Lay the result's solution out and store the messages and files under the job's keys."""
    from worker.render.layout import layout_solution

    if len(result.solution) > MAX_SOLUTION_CHARS:
        raise RenderError(f"solution of {len(result.solution)} characters is too long to lay out")
    # The reasoning is not part of the layout: the bot attaches it from the stored result when
    # the asker wants it, also for failed jobs that have no layout.
    rendered = layout_solution(result.solution, result.answer)
    layout = json.dumps([m.model_dump(mode="json") for m in rendered.messages])
    pipe = conn.pipeline(transaction=True)
    pipe.delete(keys.files_key(result.job_id))
    for name, data in rendered.files.items():
        pipe.hset(keys.files_key(result.job_id), name, data)
    if rendered.files:
        pipe.expire(keys.files_key(result.job_id), keys.JOB_KEY_TTL_S)
    pipe.set(keys.layout_key(result.job_id), layout, ex=keys.JOB_KEY_TTL_S)
    pipe.execute()
