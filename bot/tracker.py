"""Following promised jobs to the end: reading the events stream, editing status messages
within the bot-wide edit budget, and delivering each outcome exactly once.

Durability: every job the bot promised is in Redis (bot.records.Promise). Events arrive through
a consumer group, and an event that ends a job is acknowledged only after its outcome was
delivered, so after a restart the bot first re-reads its unacknowledged entries, then reconciles
every promise against the stored results. How far a delivery got is recorded per message, and
each message carries a nonce derived from (job, index), so a resend after a crash is dropped by
Discord instead of posted twice.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import redis.exceptions
from pydantic import TypeAdapter, ValidationError

from bot.logic.compose import REASONING_FILE, Outgoing, compose
from bot.logic.edits import EditBudget, EditScheduler
from bot.logic.naming import message_nonce, status_header
from bot.logic.outcome import final_status, has_solution, lost_reason
from bot.logic.progress import JobProgress, estimate_wait_s, status_text
from bot.records import Conversation, Promise, TargetKind
from bot.store import BotStore, StreamEntry
from bot.views import outcome_view, status_view
from fathom import queue
from fathom.contract import (
    Failure,
    FailureCode,
    MessagePayload,
    Phase,
    ProgressEvent,
    SolveResult,
    SolveStatus,
    Turn,
)
from fathom.settings import Settings
from fathom.tasks import cancel_and_wait

if TYPE_CHECKING:
    from bot.client import FathomBot

log = logging.getLogger(__name__)

RECONCILE_INTERVAL_S = 30.0
"""How often promises are checked against stored results (a safety net behind the stream)."""
LOST_AFTER_S = 120.0
"""A promise this old with neither a result nor an RQ job was never enqueued (a crash between
the two): the asker is told instead of waiting forever."""
DELIVERY_ATTEMPTS = 4
CONCURRENT_DELIVERIES = 8
CONCURRENT_EDITS = 8
READ_COUNT = 200
SOLVE_TIME_WEIGHT = 0.2
"""Weight of the newest solve time in the running average behind the ETAs."""

_LAYOUT = TypeAdapter(list[MessagePayload])
_TRANSIENT = (
    aiohttp.ClientError,
    asyncio.TimeoutError,
    OSError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


@dataclass
class TrackedJob:
    promise: Promise
    progress: JobProgress
    event_ts: float = 0.0
    shown: str | None = None
    """The status text last written to the status message."""
    final: str | None = None
    """The status text once the outcome was delivered; the job is dropped after showing it."""
    status_gone: bool = False
    """The status message was deleted: no more edits."""
    acks: list[bytes] = field(default_factory=list)
    """Stream entries that ended the job, acknowledged after delivery."""


class Tracker:
    def __init__(self, bot: FathomBot, store: BotStore, settings: Settings) -> None:
        self.bot = bot
        self.store = store
        self.settings = settings
        self.jobs: dict[str, TrackedJob] = {}
        self.scheduler: EditScheduler[str] = EditScheduler(
            EditBudget(
                message_interval_s=settings.status_edit_interval_s,
                channel_interval_s=settings.channel_edit_interval_s,
                edits_per_s=settings.bot_edits_per_s,
                burst=max(1, math.ceil(settings.bot_edits_per_s)),
            )
        )
        self.workers = settings.workers
        self.solve_s = settings.expected_solve_s
        self._deliveries: dict[str, asyncio.Task[None]] = {}
        self._delivery_slots = asyncio.Semaphore(CONCURRENT_DELIVERIES)
        self._edit_slots = asyncio.Semaphore(CONCURRENT_EDITS)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        """Set by stop(): the loops end at their next turn even if a cancellation was lost."""

    # --- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume every promise (status edits, deliveries), then follow the events stream."""
        await self.store.ensure_group()
        for promise in await self.store.promises():
            event = await self.store.latest_event(promise.job_id)
            job = TrackedJob(promise, JobProgress(phase=Phase.QUEUED))
            self.jobs[promise.job_id] = job
            if event is not None:
                self._apply(job, event)
        await self.reconcile()
        for job in list(self.jobs.values()):
            self._request_edit(job)
        for loop in (
            self._consume(),
            self._edit_loop(),
            self._refresh_loop(),
            self._reconcile_loop(),
        ):
            self._spawn(loop)

    async def stop(self) -> None:
        """Cancel the loops, edits and deliveries and wait for them, at most the stop grace;
        what did not end by then is logged and left behind (a delivery cut short resumes after
        the restart: how far it got is recorded per message)."""
        self._stopping = True
        grace_s = self.settings.bot_stop_grace_s
        left = await cancel_and_wait([*self._tasks, *self._deliveries.values()], grace_s)
        for task in left:
            log.error("stopping: %s did not end within %.1f s", task.get_coro(), grace_s)
        self._tasks.clear()
        self._deliveries.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- new jobs ------------------------------------------------------------------------------
    def track(self, promise: Promise, progress: JobProgress) -> None:
        """Follow a job from now on (call before it is enqueued, so no event is missed)."""
        job = TrackedJob(promise, progress)
        job.shown = status_text(progress, eta_s=self.eta(progress))
        self.jobs[promise.job_id] = job

    def untrack(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        self.scheduler.forget(job_id)

    def eta(self, progress: JobProgress) -> float | None:
        if progress.phase is not Phase.QUEUED or progress.position is None:
            return None
        return estimate_wait_s(progress.position, self.workers, self.solve_s)

    # --- the events stream ---------------------------------------------------------------------
    async def _consume(self) -> None:
        consumer = self.settings.bot_consumer_name
        while not self._stopping:
            try:
                # What this consumer read before (a restart) but never acknowledged, first.
                start: bytes | str = "0"
                while entries := await self.store.read_events(consumer, start, count=READ_COUNT):
                    await self._handle(entries)
                    start = entries[-1].entry_id
                while not self._stopping:
                    entries = await self.store.read_events(
                        consumer, ">", count=READ_COUNT, block_ms=self.settings.events_block_ms
                    )
                    await self._handle(entries)
            except asyncio.CancelledError:
                raise
            except _TRANSIENT as exc:
                log.warning("events stream unavailable (%s); retrying", exc)
                await asyncio.sleep(1.0)
            except redis.exceptions.ResponseError as exc:
                # The stream or the group was deleted under us (NOGROUP, UNBLOCKED): make them
                # again and go on; promises are reconciled against stored results anyway.
                log.warning("events stream reset (%s); recreating the consumer group", exc)
                await asyncio.sleep(0.1)
                await self.store.ensure_group()

    async def _handle(self, entries: list[StreamEntry]) -> None:
        acks: list[bytes] = []
        for entry in entries:
            event = entry.event
            job = None if event is None else self.jobs.get(event.job_id)
            if event is None or job is None or job.final is not None:
                acks.append(entry.entry_id)  # not ours, or already delivered
                continue
            self._apply(job, event)
            if event.phase.terminal:
                job.acks.append(entry.entry_id)
            else:
                acks.append(entry.entry_id)
        await self.store.ack(*acks)

    def _apply(self, job: TrackedJob, event: ProgressEvent) -> None:
        if event.phase.terminal:
            job.progress = JobProgress(phase=event.phase, elapsed_s=event.elapsed_s)
            self._deliver_soon(job.promise.job_id)
            return
        if event.ts < job.event_ts:
            return
        job.event_ts = event.ts
        position = job.progress.position if event.phase is Phase.QUEUED else None
        job.progress = JobProgress(
            phase=event.phase,
            position=position,
            tokens=event.tokens,
            budget_tokens=event.budget_tokens,
            elapsed_s=event.elapsed_s,
            note=event.note,
        )
        self._request_edit(job)

    # --- status messages -----------------------------------------------------------------------
    def _status_text(self, job: TrackedJob) -> str:
        if job.final is not None:
            return job.final
        return status_text(job.progress, eta_s=self.eta(job.progress))

    def _request_edit(self, job: TrackedJob) -> None:
        if job.status_gone or self._status_text(job) == job.shown:
            if job.final is not None:
                self.untrack(job.promise.job_id)
            return
        self.scheduler.request(
            job.promise.job_id,
            job.promise.status_channel_id,
            time.monotonic(),
            urgent=job.final is not None,
        )

    async def _edit_loop(self) -> None:
        while not self._stopping:
            for job_id in self.scheduler.take_due(time.monotonic()):
                job = self.jobs.get(job_id)
                if job is not None:
                    self._spawn(self._edit(job))
            await asyncio.sleep(self.settings.edit_tick_s)

    async def _edit(self, job: TrackedJob) -> None:
        text = self._status_text(job)
        promise = job.promise
        content = status_header(promise.question, promise.user_id, public=_public(promise))
        message = self.bot.get_partial_messageable(promise.status_channel_id).get_partial_message(
            promise.status_message_id
        )
        async with self._edit_slots:
            try:
                await self.bot.pace()
                await message.edit(
                    content=f"{content}\n\n{text}",
                    view=None if job.final is not None else status_view(promise.job_id),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
                job.shown = text
            except (discord.NotFound, discord.Forbidden):
                job.status_gone = True
            except (discord.HTTPException, *_TRANSIENT) as exc:
                log.warning("status edit of job %s failed: %s", promise.job_id, exc)
        if job.final is not None and (job.shown == job.final or job.status_gone):
            self.untrack(promise.job_id)
        elif job.shown != self._status_text(job):
            self._request_edit(job)

    async def _refresh_loop(self) -> None:
        """Queue positions (and the number of workers behind the ETAs) of waiting jobs."""
        while not self._stopping:
            await asyncio.sleep(self.settings.queue_position_refresh_s)
            waiting = [j for j in self.jobs.values() if j.progress.phase is Phase.QUEUED]
            if not waiting:
                continue
            try:
                job_ids, workers = await asyncio.to_thread(self._queue_snapshot)
            except _TRANSIENT as exc:
                log.warning("queue positions unavailable: %s", exc)
                continue
            self.workers = max(workers, 1)
            positions = {job_id: index + 1 for index, job_id in enumerate(job_ids)}
            for job in waiting:
                position = positions.get(job.promise.job_id)
                if position is not None and job.progress.phase is Phase.QUEUED:
                    job.progress = JobProgress(
                        phase=Phase.QUEUED, position=position, elapsed_s=job.progress.elapsed_s
                    )
                    self._request_edit(job)

    def _queue_snapshot(self) -> tuple[list[str], int]:
        conn = self.bot.rq_conn
        job_ids = queue.solve_queue(conn, self.settings).get_job_ids()
        return job_ids, queue.solve_workers(conn, self.settings)

    # --- reconciling ---------------------------------------------------------------------------
    async def _reconcile_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(RECONCILE_INTERVAL_S)
            try:
                await self.reconcile()
            except _TRANSIENT as exc:
                log.warning("reconcile failed: %s", exc)

    async def reconcile(self) -> None:
        """Deliver promised jobs whose result is stored though no event said so (they ended
        while the bot was down and their entry is gone, or a delivery gave up earlier)."""
        open_jobs = [
            job_id
            for job_id, job in self.jobs.items()
            if job.final is None and job_id not in self._deliveries
        ]
        if not open_jobs:
            return
        finished = await self.store.finished(open_jobs)
        now = time.time()
        for job_id in open_jobs:
            job = self.jobs[job_id]
            if job_id in finished:
                self._deliver_soon(job_id)
            elif now - job.promise.created_at > LOST_AFTER_S:
                rq_job = await asyncio.to_thread(queue.fetch_job, self.bot.rq_conn, job_id)
                status = None if rq_job is None else await asyncio.to_thread(rq_job.get_status)
                reason = lost_reason(rq_job is not None, status)
                if reason is not None and not await self.store.finished([job_id]):
                    self._deliver_soon(job_id, lost=reason)

    # --- delivery ------------------------------------------------------------------------------
    def _deliver_soon(self, job_id: str, *, lost: str | None = None) -> None:
        if job_id in self._deliveries or self._stopping:
            return
        task = asyncio.create_task(self._deliver(job_id, lost=lost))
        self._deliveries[job_id] = task
        task.add_done_callback(lambda _t: self._deliveries.pop(job_id, None))

    async def _deliver(self, job_id: str, *, lost: str | None) -> None:
        async with self._delivery_slots:
            for attempt in range(DELIVERY_ATTEMPTS):
                job = self.jobs.get(job_id)
                if job is None or job.final is not None:
                    return
                try:
                    await self._deliver_once(job, lost=lost)
                    return
                except (discord.HTTPException, *_TRANSIENT) as exc:
                    log.warning("delivery of job %s failed (%s), attempt %d", job_id, exc, attempt)
                    await asyncio.sleep(2**attempt)
            log.error("delivery of job %s postponed to the next reconcile", job_id)

    async def _deliver_once(self, job: TrackedJob, *, lost: str | None) -> None:
        promise = job.promise
        job_id = promise.job_id
        result = await self._outcome(job, lost=lost)
        if result is None:
            return
        progress = await self.store.delivery(job_id)
        if not progress.done:
            layout = await self._layout(job_id) if result.rendered else None
            outgoing = compose(result, layout, attach_reasoning=promise.show_reasoning)
            try:
                await self._send(promise, result, outgoing, progress.sent, progress.last_message_id)
            except (discord.NotFound, discord.Forbidden) as exc:
                # The thread or DM is gone or closed: nothing can be delivered there, ever.
                log.warning("job %s cannot be delivered: %s", job_id, exc)
            if await self.store.claim_done(job_id):
                await self._remember_turn(promise, result)
        await self._finish(job, result)

    async def _outcome(self, job: TrackedJob, *, lost: str | None) -> SolveResult | None:
        """The stored result; or, for a job that can no longer produce one, a failure that
        says why (`lost`)."""
        promise = job.promise
        result = await self.store.result(promise.job_id)
        if result is not None:
            return result
        if lost is not None:
            return SolveResult(
                job_id=promise.job_id,
                status=SolveStatus.FAILED,
                question=promise.question,
                failure=Failure(code=FailureCode.INTERNAL, message=lost),
            )
        # Results are stored before the event that announces them; if it is missing, the
        # reconcile loop delivers it once it appears.
        log.warning("job %s ended but its result is not stored yet", promise.job_id)
        return None

    async def _layout(self, job_id: str) -> list[MessagePayload] | None:
        raw = await self.store.layout(job_id)
        if raw is None:
            return None
        try:
            return _LAYOUT.validate_json(raw)
        except ValidationError:
            log.warning("job %s has an unreadable layout; sending plain text", job_id)
            return None

    async def _send(
        self,
        promise: Promise,
        result: SolveResult,
        outgoing: list[Outgoing],
        already_sent: int,
        last_message_id: int | None,
    ) -> None:
        channel = self.bot.get_partial_messageable(promise.target_channel_id)
        stored = await self.store.files(promise.job_id) if any(o.files for o in outgoing) else {}
        reply_to = last_message_id or promise.status_message_id
        for index, message in enumerate(outgoing):
            if index < already_sent:
                continue
            files = [
                discord.File(io.BytesIO(data), filename=name)
                for name in message.files
                if (data := _file_bytes(name, stored, result)) is not None
            ]
            extra: dict[str, Any] = {}
            if promise.kind is TargetKind.DM:
                extra["reference"] = discord.MessageReference(
                    message_id=reply_to,
                    channel_id=promise.target_channel_id,
                    fail_if_not_exists=False,
                )
            view = outcome_view(promise.job_id, message.buttons)
            if view is not None:
                extra["view"] = view
            await self.bot.pace()
            sent = await channel.send(
                content=message.content or None,
                files=files,
                nonce=message_nonce(promise.job_id, index),
                allowed_mentions=discord.AllowedMentions.none(),
                **extra,
            )
            reply_to = sent.id
            await self.store.mark_sent(promise.job_id, index + 1, sent.id)

    async def _remember_turn(self, promise: Promise, result: SolveResult) -> None:
        """A solution thread remembers its questions and written solutions for follow-ups
        (threads the bot made; a channel or someone else's thread never turns the asker's
        next messages into questions)."""
        if not has_solution(result) or not result.solution.strip():
            return
        thread_id = promise.target_channel_id
        conversation = await self.store.conversation(thread_id)
        if conversation is None:
            if promise.kind is not TargetKind.THREAD:
                return
            conversation = Conversation(asker_id=promise.user_id, turns=list(promise.history))
        turn = Turn(question=promise.question, solution=result.solution)
        await self.store.save_conversation(thread_id, conversation.with_turn(turn))

    async def _finish(self, job: TrackedJob, result: SolveResult) -> None:
        promise = job.promise
        await self.store.finish(promise)
        await self.store.ack(*job.acks)
        job.acks.clear()
        timings = result.timings
        if timings.total_s is not None and result.status is SolveStatus.SOLVED:
            solve_s = timings.total_s - (timings.queued_s or 0.0)
            self.solve_s += SOLVE_TIME_WEIGHT * (solve_s - self.solve_s)
        where = "in the thread" if promise.kind is TargetKind.THREAD else "below"
        job.final = final_status(result, where=where)
        self._request_edit(job)


def _public(promise: Promise) -> bool:
    return promise.kind is not TargetKind.DM


def _file_bytes(name: str, stored: dict[str, bytes], result: SolveResult) -> bytes | None:
    if name in stored:
        return stored[name]
    if name == REASONING_FILE:
        return result.reasoning.encode()
    return None
