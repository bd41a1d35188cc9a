"""What moderators and operators do to the queue, shared by the bot's `/queue` commands and
`fathom queue` in a shell: the same functions, so both do exactly the same.

Every action is recorded in the audit stream (who, what, when, which server, which jobs, before
→ after); the bot posts each entry to the server's mod-log channel where one is set.
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from collections.abc import Iterable
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.typing import EncodableT, FieldT
from rq import Worker
from rq.suspension import is_suspended, resume, suspend

from fathom import keys
from fathom.consensus import load_record, sample_id
from fathom.contract import JobTicket, Outcome, Phase, SolveRequest, SolveStatus, preview
from fathom.events import decode_entries
from fathom.fairness import expected_position, flow_of
from fathom.queue import (
    CancelOutcome as CancelOutcome,
)
from fathom.queue import (
    cancel_job,
    enqueue_consensus,
    enqueue_solve,
    fetch_job,
    render_queue,
    solve_queue,
)
from fathom.settings import Settings

AUDIT_FIELD = b"entry"
LISTED_JOBS = 15
"""Jobs of each kind a status lists by name (the rest are counted)."""
SOLVE_TIME_SAMPLE = 50
"""Recent finished jobs behind the typical solve time used for ETAs."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Actor(_Model):
    """Who did something: a Discord member or an operator in a shell."""

    kind: Literal["discord", "shell"]
    name: str
    user_id: int | None = None

    def describe(self) -> str:
        """As the asker reads it: "a moderator (Ada)", "an operator (root)"."""
        role = "an operator" if self.kind == "shell" else "a moderator"
        return f"{role} ({self.name})"


class AuditEntry(_Model):
    at: float = Field(default_factory=time.time)
    actor: Actor
    action: str
    guild_id: int | None = None
    job_ids: list[str] = Field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    note: str | None = None


def audit(conn: redis.Redis, entry: AuditEntry) -> None:
    fields: dict[FieldT, EncodableT] = {AUDIT_FIELD: entry.model_dump_json()}
    conn.xadd(keys.AUDIT_STREAM, fields, maxlen=keys.AUDIT_STREAM_MAXLEN, approximate=True)


def decode_audit(fields: object) -> AuditEntry | None:
    if not isinstance(fields, dict):
        return None
    raw = fields.get(AUDIT_FIELD, fields.get(AUDIT_FIELD.decode()))
    if not isinstance(raw, bytes | str):
        return None
    try:
        return AuditEntry.model_validate_json(raw)
    except ValidationError:
        return None


def audit_log(conn: redis.Redis, guild_id: int | None = None, limit: int = 50) -> list[AuditEntry]:
    """The newest entries first (only one server's, when given)."""
    entries: list[AuditEntry] = []
    last = "+"
    while len(entries) < limit:
        batch = conn.xrevrange(keys.AUDIT_STREAM, max=last, count=200)
        if not batch:
            break
        for _entry_id, fields in batch:
            entry = decode_audit(fields)
            if entry is not None and (guild_id is None or entry.guild_id == guild_id):
                entries.append(entry)
        last_id = batch[-1][0]
        last = "(" + (last_id.decode() if isinstance(last_id, bytes) else str(last_id))
    return entries[:limit]


# --- pausing ------------------------------------------------------------------------------------


class PauseState(_Model):
    by: str
    since: float


def guild_pause(conn: redis.Redis, guild_id: int) -> PauseState | None:
    raw = conn.get(keys.guild_paused(guild_id))
    if raw is None:
        return None
    try:
        return PauseState.model_validate_json(raw)
    except ValidationError:
        return PauseState(by="unknown", since=0.0)


def pause_guild(conn: redis.Redis, guild_id: int, actor: Actor) -> bool:
    """Stop taking this server's questions (queued ones stay); False if it already was."""
    state = PauseState(by=actor.describe(), since=time.time())
    changed = bool(conn.set(keys.guild_paused(guild_id), state.model_dump_json(), nx=True))
    audit(
        conn,
        AuditEntry(
            actor=actor,
            action="pause",
            guild_id=guild_id,
            before={"paused": not changed},
            after={"paused": True},
        ),
    )
    return changed


def resume_guild(conn: redis.Redis, guild_id: int, actor: Actor) -> bool:
    changed = bool(conn.delete(keys.guild_paused(guild_id)))
    audit(
        conn,
        AuditEntry(
            actor=actor,
            action="resume",
            guild_id=guild_id,
            before={"paused": changed},
            after={"paused": False},
        ),
    )
    return changed


def pause_all(conn: redis.Redis, actor: Actor) -> bool:
    """Operators: every worker stops taking new jobs; running ones finish (RQ's suspension)."""
    was = bool(is_suspended(conn))
    suspend(conn)
    audit(
        conn,
        AuditEntry(
            actor=actor, action="pause-all", before={"suspended": was}, after={"suspended": True}
        ),
    )
    return not was


def resume_all(conn: redis.Redis, actor: Actor) -> bool:
    was = bool(is_suspended(conn))
    resume(conn)
    audit(
        conn,
        AuditEntry(
            actor=actor, action="resume-all", before={"suspended": was}, after={"suspended": False}
        ),
    )
    return was


# --- cancelling ---------------------------------------------------------------------------------


def guild_tickets(conn: redis.Redis, guild_id: int) -> list[JobTicket]:
    """The server's unfinished jobs, oldest first."""
    raw = conn.hgetall(keys.guild_jobs(guild_id))
    tickets = []
    for value in raw.values():
        try:
            tickets.append(JobTicket.model_validate_json(value))
        except ValidationError:
            continue
    return sorted(tickets, key=lambda ticket: ticket.enqueued_at)


def cancel_jobs(
    conn: redis.Redis,
    job_ids: Iterable[str],
    settings: Settings,
    actor: Actor,
    *,
    guild_id: int | None,
    action: str = "cancel",
) -> dict[str, CancelOutcome]:
    """Cancel each job (a running one stops streaming at once); the askers are told who."""
    outcomes = {
        job_id: cancel_job(conn, job_id, settings, by=actor.describe()) for job_id in job_ids
    }
    audit(
        conn,
        AuditEntry(
            actor=actor,
            action=action,
            guild_id=guild_id,
            job_ids=list(outcomes),
            after={job_id: outcome.value for job_id, outcome in outcomes.items()},
        ),
    )
    return outcomes


def member_jobs(conn: redis.Redis, guild_id: int, user_id: int) -> list[str]:
    return [t.job_id for t in guild_tickets(conn, guild_id) if t.user_id == user_id]


def queued_jobs(conn: redis.Redis, guild_id: int, settings: Settings) -> list[str]:
    """The server's jobs still waiting on the queue (not those being solved; a consensus job
    while none of its samples has started)."""
    waiting = set(solve_queue(conn, settings).get_job_ids())
    return [
        t.job_id
        for t in guild_tickets(conn, guild_id)
        if all(part in waiting for part in _queue_ids(t))
    ]


def _queue_ids(ticket: JobTicket) -> list[str]:
    """The solve jobs of a ticket: itself, or a consensus job's samples."""
    if ticket.samples > 1:
        return [sample_id(ticket.job_id, index) for index in range(ticket.samples)]
    return [ticket.job_id]


def clear_guild(
    conn: redis.Redis, guild_id: int, settings: Settings, actor: Actor
) -> dict[str, CancelOutcome]:
    """Drop every question of the server still waiting; running ones go on."""
    job_ids = queued_jobs(conn, guild_id, settings)
    return cancel_jobs(conn, job_ids, settings, actor, guild_id=guild_id, action="clear")


# --- failures and retries -------------------------------------------------------------------


def outcomes(conn: redis.Redis, guild_id: int, since: float) -> list[Outcome]:
    """The server's finished jobs since `since`, oldest first."""
    raw = conn.zrangebyscore(keys.guild_outcomes(guild_id), since, "+inf")
    found = []
    for value in raw:
        if not isinstance(value, bytes | str):
            continue
        try:
            found.append(Outcome.model_validate_json(value))
        except ValidationError:
            continue
    return found


def failed(conn: redis.Redis, guild_id: int, since: float, limit: int = 25) -> list[Outcome]:
    """Recent failures (not cancels), newest first."""
    found = [o for o in outcomes(conn, guild_id, since) if o.status is SolveStatus.FAILED]
    return found[::-1][:limit]


class RetryRefused(Exception):
    """The job cannot be re-run (unknown, not this server's, or still running)."""


def retry_job(
    conn: redis.Redis, job_id: str, settings: Settings, actor: Actor, guild_id: int | None
) -> str:
    """Ask the same question again as a new job (a new sample); the bot delivers it where the
    first one went. Returns the new job id."""
    record = load_record(conn, job_id)
    job = fetch_job(conn, job_id)
    if record is None and job is None:
        raise RetryRefused(f"job {job_id} is no longer known")
    if record is not None:
        request = record.request
    else:
        assert job is not None
        request = SolveRequest.model_validate(job.args[0])
    if guild_id is not None and request.origin.guild_id != guild_id:
        raise RetryRefused(f"job {job_id} is not from this server")
    if job_id in {t.job_id for t in guild_tickets(conn, request.origin.guild_id or 0)}:
        raise RetryRefused(f"job {job_id} has not finished")
    again = request.model_copy(update={"seed": None, "enqueued_at": time.time()})
    new_id = uuid.uuid4().hex
    conn.set(keys.retry_of(new_id), job_id, ex=keys.JOB_KEY_TTL_S)
    if record is not None:
        enqueue_consensus(conn, again, record.samples, settings, job_id=new_id)
    else:
        enqueue_solve(conn, again, settings, job_id=new_id)
    audit(
        conn,
        AuditEntry(
            actor=actor, action="retry", guild_id=request.origin.guild_id, job_ids=[job_id, new_id]
        ),
    )
    return new_id


# --- status -------------------------------------------------------------------------------------


class JobView(_Model):
    job_id: str
    user_id: int | None
    question: str
    age_s: float
    phase: Phase
    tokens: int = 0
    position: int | None = None
    """1 = next in line."""


class ModelView(_Model):
    name: str
    engine: str | None = None
    healthy: bool | None = None
    """None: not known (the server does not say)."""
    queue_size: float | None = None
    """Requests waiting in the model server."""
    batch_size: float | None = None
    """Sequences it decodes at once."""
    model_id: str | None = None
    updated_at: float


class QueueStatus(_Model):
    guild_id: int | None
    paused: PauseState | None
    suspended: bool
    queued: list[JobView]
    running: list[JobView]
    failed: list[Outcome]
    queued_count: int
    """This server's waiting jobs (every server's, for the global status)."""
    running_count: int
    depth: int
    """Jobs waiting on the solve queue, every server together."""
    oldest_wait_s: float | None
    render_depth: int
    workers: int
    workers_busy: int
    models: list[ModelView]
    typical_solve_s: float
    eta_new_s: float
    """How long a new question from this server would wait for its answer."""


def estimate_wait_s(position: int, workers: int, solve_s: float) -> float:
    """Seconds until a job at `position` (1 = next) is answered, when `workers` jobs run at
    once and one takes about `solve_s`: the waves of jobs ahead of it, then its own."""
    waves_ahead = (max(position, 1) - 1) // max(workers, 1)
    return (waves_ahead + 1) * solve_s


def status(
    conn: redis.Redis, settings: Settings, guild_id: int | None, now: float | None = None
) -> QueueStatus:
    """This server's queued, running and recently failed jobs, and the global picture."""
    now = time.time() if now is None else now
    queue = solve_queue(conn, settings)
    pipe = conn.pipeline(transaction=False)
    pipe.lrange(queue.key, 0, -1)
    pipe.llen(render_queue(conn, settings).key)
    queue_ids_raw, render_depth = pipe.execute()
    queue_ids = [i.decode() if isinstance(i, bytes) else str(i) for i in queue_ids_raw]
    positions = {job_id: index + 1 for index, job_id in enumerate(queue_ids)}
    workers = Worker.all(connection=conn, queue=queue)
    busy = sum(1 for worker in workers if worker.get_state() == "busy")

    if guild_id is not None:
        tickets = guild_tickets(conn, guild_id)
    else:  # everyone's: the head of the queue and what the workers hold
        held = [job_id for worker in workers if (job_id := worker.get_current_job_id())]
        tickets = _tickets_of(conn, [*queue_ids[:LISTED_JOBS], *held])
    views = _job_views(conn, tickets, positions, now, guild_id)
    queued = sorted((v for v in views if v.phase is Phase.QUEUED), key=_by_position)
    running = [v for v in views if v.phase is not Phase.QUEUED]
    queued_count = len(queued) if guild_id is not None else len(queue_ids)
    recent = outcomes(conn, guild_id, now - 24 * 3600) if guild_id is not None else []
    solve_s = typical_solve_s(recent, settings)
    oldest = _enqueued_at(conn, queue_ids[0]) if queue_ids else None
    flow, _member = flow_of("discord", guild_id, None)
    position = expected_position(conn, queue.key, flow, "a new asker")
    return QueueStatus(
        guild_id=guild_id,
        paused=guild_pause(conn, guild_id) if guild_id is not None else None,
        suspended=bool(is_suspended(conn)),
        queued=queued[:LISTED_JOBS],
        running=running[:LISTED_JOBS],
        failed=[o for o in recent if o.status is SolveStatus.FAILED][::-1][:LISTED_JOBS],
        queued_count=queued_count,
        running_count=len(running),
        depth=len(queue_ids),
        oldest_wait_s=None if oldest is None else max(0.0, now - oldest),
        render_depth=int(render_depth),
        workers=len(workers),
        workers_busy=busy,
        models=model_views(conn),
        typical_solve_s=solve_s,
        eta_new_s=estimate_wait_s(position, len(workers), solve_s),
    )


def _by_position(view: JobView) -> float:
    return view.position if view.position is not None else math.inf


def _job_views(
    conn: redis.Redis,
    tickets: list[JobTicket],
    positions: dict[str, int],
    now: float,
    guild_id: int | None,
) -> list[JobView]:
    """Each unfinished job with its phase; tickets of jobs that ended are dropped."""
    pipe = conn.pipeline(transaction=False)
    for ticket in tickets:
        pipe.xrevrange(keys.progress_stream(ticket.job_id), count=1)
    latest = pipe.execute()
    views: list[JobView] = []
    stale: list[str] = []
    for ticket, entries in zip(tickets, latest, strict=True):
        decoded = decode_entries(entries)
        event = decoded[0].event if decoded else None
        position = min(
            (positions[part] for part in _queue_ids(ticket) if part in positions), default=None
        )
        if position is None and (event is None or event.phase.terminal):
            stale.append(ticket.job_id)
            continue
        phase = Phase.QUEUED if position is not None else event.phase if event else Phase.QUEUED
        views.append(
            JobView(
                job_id=ticket.job_id,
                user_id=ticket.user_id,
                question=ticket.question,
                age_s=max(0.0, now - ticket.enqueued_at),
                phase=phase,
                tokens=event.tokens if event is not None and position is None else 0,
                position=position,
            )
        )
    if stale and guild_id is not None:
        conn.hdel(keys.guild_jobs(guild_id), *stale)
    return views


def _tickets_of(conn: redis.Redis, job_ids: list[str]) -> list[JobTicket]:
    """Tickets made from the jobs themselves (for jobs of any server, or none)."""
    tickets = []
    for job_id in job_ids:
        job = fetch_job(conn, job_id)
        if job is None or not job.args:
            continue
        try:
            request = SolveRequest.model_validate(job.args[0])
        except ValidationError:
            continue
        tickets.append(
            JobTicket(
                job_id=job_id,
                user_id=request.origin.user_id,
                question=preview(request.question),
                enqueued_at=request.enqueued_at,
            )
        )
    return tickets


def _enqueued_at(conn: redis.Redis, job_id: str) -> float | None:
    job = fetch_job(conn, job_id)
    if job is None or job.enqueued_at is None:
        return None
    return job.enqueued_at.timestamp()


def typical_solve_s(recent: list[Outcome], settings: Settings) -> float:
    """The median time from a worker taking a job to its answer, over the newest answers."""
    solved = [
        o.total_s - (o.queued_s or 0.0)
        for o in recent[-SOLVE_TIME_SAMPLE:]
        if o.status is SolveStatus.SOLVED and o.total_s is not None
    ]
    return statistics.median(solved) if solved else settings.expected_solve_s


def model_views(conn: redis.Redis) -> list[ModelView]:
    views = []
    for key in conn.scan_iter(match=f"{keys.MODEL_STATUS_PREFIX}*", count=100):
        raw = conn.get(key)
        if raw is None:
            continue
        try:
            views.append(ModelView.model_validate_json(raw))
        except ValidationError:
            continue
    return sorted(views, key=lambda view: view.name)


def publish_model_view(conn: redis.Redis, view: ModelView, ttl_s: int) -> None:
    """A worker pool's word on its model server, kept while the pool keeps saying it."""
    conn.set(keys.model_status(view.name), view.model_dump_json(), ex=ttl_s)
