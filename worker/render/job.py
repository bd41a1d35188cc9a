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

import redis
from rq import get_current_job

from fathom import keys
from fathom.contract import Phase, ProgressEvent, SolveResult
from fathom.events import load_result, publish_event, store_result
from fathom.settings import get_settings
from worker.render.errors import RenderError

log = logging.getLogger(__name__)

MAX_SOLUTION_CHARS = 200_000
"""Longer solutions are not laid out (the bot sends them as plain text): it bounds a job's time."""


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
        note = "Math rendering failed; the solution is sent as plain text."
    if rendered:
        result = result.model_copy(update={"rendered": True})
        store_result(conn, result, get_settings().result_ttl_s)
    publish_event(
        conn,
        ProgressEvent(
            job_id=job_id,
            phase=Phase.DONE,
            tokens=result.completion_tokens or 0,
            budget_tokens=result.budget_tokens,
            elapsed_s=round((result.timings.total_s or 0.0) + time.monotonic() - started, 4),
            attempt=result.attempts,
            note=note,
        ),
    )


def store_layout(conn: redis.Redis, result: SolveResult) -> None:
    """Lay the result's solution out and store the messages and files under the job's keys."""
    from worker.render.layout import layout_solution

    if len(result.solution) > MAX_SOLUTION_CHARS:
        raise RenderError(f"solution of {len(result.solution)} characters is too long to lay out")
    reasoning = result.reasoning if result.show_reasoning and result.reasoning else None
    rendered = layout_solution(result.solution, result.answer, reasoning)
    layout = json.dumps([m.model_dump(mode="json") for m in rendered.messages])
    pipe = conn.pipeline(transaction=True)
    pipe.delete(keys.files_key(result.job_id))
    for name, data in rendered.files.items():
        pipe.hset(keys.files_key(result.job_id), name, data)
    if rendered.files:
        pipe.expire(keys.files_key(result.job_id), keys.JOB_KEY_TTL_S)
    pipe.set(keys.layout_key(result.job_id), layout, ex=keys.JOB_KEY_TTL_S)
    pipe.execute()
