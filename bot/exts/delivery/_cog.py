"""The delivery extension: its loops (the events stream, due status edits, queue positions,
reconciling promises with stored outcomes) and the hand-off from a job's end to its delivery.

Durability: every job the bot promised is in Redis (bot.records.Promise). Events arrive through
a consumer group, and an event that ends a job is acknowledged only after its outcome was
delivered, so after a restart the bot first re-reads its unacknowledged entries, then reconciles
every promise against the stored outcomes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import discord
import redis.exceptions
from discord.ext import commands, tasks

from bot import observe
from bot.client import TRANSIENT_ERRORS, FathomBot
from bot.components import status_view
from bot.exts.delivery._board import StatusBoard, TrackedJob
from bot.exts.delivery._deliverer import Deliverer
from bot.i18n import N_, texts
from bot.logic.naming import status_header
from bot.logic.outcome import lost_reason
from bot.logic.progress import JobProgress, status_text
from bot.records import Promise, TargetKind
from bot.store import BotStore
from fathom import keys, queue
from fathom.contract import (
    Failure,
    FailureCode,
    Origin,
    Phase,
    ProgressEvent,
    SolveResult,
    SolveStatus,
)
from fathom.events import StreamEntry, end_job
from fathom.tasks import cancel_and_wait

log = logging.getLogger(__name__)

RECONCILE_INTERVAL_S = 30.0
"""How often promises are checked against stored outcomes (a safety net behind the stream)."""
DELIVERY_ATTEMPTS = 4
CONCURRENT_DELIVERIES = 8
READ_COUNT = 200
RETRY_NOTE = N_("-# Asked again by the moderators.")


class Delivery(commands.Cog):
    """Follows promised jobs to the end. Intake tells it about each new job (`track`) before
    enqueueing it, so no event of the job goes unnoticed."""

    def __init__(self, bot: FathomBot) -> None:
        self.bot = bot
        self.settings = bot.settings
        self.deliveries: dict[str, asyncio.Task[None]] = {}
        self._delivery_slots = asyncio.Semaphore(CONCURRENT_DELIVERIES)
        self._stopping = False

    # --- life cycle ---------------------------------------------------------------------------
    async def cog_load(self) -> None:
        settings = self.settings
        self.store = BotStore.configured(self.bot.redis, settings)
        self.board = StatusBoard(self.bot, settings)
        self.deliverer = Deliverer(self.bot, self.store)
        await self.store.ensure_group()
        for promise in await self.store.promises():
            samples = promise.samples if promise.samples > 1 else None
            job = self.board.track(
                promise, JobProgress(phase=Phase.QUEUED, samples=samples), shown=False
            )
            event = await self.store.latest_event(promise.job_id)
            if event is not None:
                self._apply(job, event, entry_id=None)
            else:
                self.board.request_edit(job)
        self.edit_loop.change_interval(seconds=settings.edit_tick_s)
        self.refresh_loop.change_interval(seconds=settings.queue_position_refresh_s)
        for loop in (self.consume_loop, self.reconcile_loop, self.edit_loop, self.refresh_loop):
            loop.start()

    async def cog_unload(self) -> None:
        """Stop the loops, edits and deliveries, waiting at most the stop grace; what did not
        end by then is logged and left behind (a delivery cut short resumes after the restart:
        how far it got is recorded per message)."""
        self._stopping = True
        loops = (self.consume_loop, self.reconcile_loop, self.edit_loop, self.refresh_loop)
        running = [task for loop in loops if (task := loop.get_task()) is not None]
        grace_s = self.settings.bot_stop_grace_s
        left = await cancel_and_wait(
            [*running, *self.deliveries.values(), *self.board.edits], grace_s
        )
        for task in left:
            log.error("stopping: %s did not end within %.1f s", task.get_coro(), grace_s)
        self.deliveries.clear()

    # --- what intake asks --------------------------------------------------------------------
    def track(self, promise: Promise, progress: JobProgress) -> None:
        """Follow a job from now on (call before it is enqueued); its status message shows
        `progress` already."""
        self.board.track(promise, progress)

    def untrack(self, job_id: str) -> None:
        self.board.untrack(job_id)

    def moved(self, job_id: str, position: int) -> None:
        """The job's place in the queue is known to be `position` (1 = next)."""
        self.board.moved(job_id, position)

    def eta(self, progress: JobProgress) -> float | None:
        return self.board.eta(progress)

    def following(self) -> set[str]:
        """Jobs whose outcome or final status is not shown yet."""
        return set(self.board.jobs)

    # --- the events stream --------------------------------------------------------------------
    @tasks.loop(seconds=0)
    async def consume_loop(self) -> None:
        consumer = self.settings.bot_consumer_name
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
        except TRANSIENT_ERRORS as exc:
            log.warning("events stream unavailable (%s); retrying", exc)
            await asyncio.sleep(1.0)
        except redis.exceptions.ResponseError as exc:
            # The stream or the group was deleted under us (NOGROUP, UNBLOCKED): make them
            # again and go on; promises are reconciled against stored outcomes anyway.
            log.warning("events stream reset (%s); recreating the consumer group", exc)
            await asyncio.sleep(0.1)
            await self.store.ensure_group()

    async def _handle(self, entries: list[StreamEntry]) -> None:
        acks: list[bytes] = []
        for entry in entries:
            event = entry.event
            job = None if event is None else self.board.jobs.get(event.job_id)
            if event is not None and job is None and event.phase is Phase.QUEUED:
                job = await self._adopt(event.job_id)
            if event is None or job is None or job.final is not None:
                acks.append(entry.entry_id)  # not ours, or already delivered
                continue
            self._apply(job, event, entry.entry_id)
            if not event.phase.terminal:
                acks.append(entry.entry_id)
        await self.store.ack(*acks)

    async def _adopt(self, job_id: str) -> TrackedJob | None:
        """A moderator's retry of a job the bot delivered (`fathom.admin.retry_job`, from
        Discord or a shell): promise it where the first one went, with a status message of its
        own. None for a job that is no retry of ours."""
        raw = await self.bot.redis.get(keys.retry_of(job_id))
        if raw is None:
            return None
        first_id = raw.decode() if isinstance(raw, bytes) else raw
        first = await self.store.promise(first_id)
        if first is None:
            log.warning("retry %s of %s: the first promise is gone", job_id, first_id)
            return None
        kind = TargetKind.DM if first.kind is TargetKind.DM else TargetKind.CHANNEL
        progress = JobProgress(phase=Phase.QUEUED)
        t = texts(first.language)
        header = status_header(
            first.question, first.user_id, public=kind is TargetKind.CHANNEL, t=t
        )
        extra: dict[str, Any] = {}
        if kind is TargetKind.DM:
            extra["reference"] = discord.MessageReference(
                message_id=first.status_message_id,
                channel_id=first.target_channel_id,
                fail_if_not_exists=False,
            )
        try:
            status = await self.bot.get_partial_messageable(first.target_channel_id).send(
                f"{header}\n\n{t.gettext(RETRY_NOTE)}\n{status_text(progress, t=t)}",
                view=status_view(job_id, t),
                allowed_mentions=discord.AllowedMentions.none(),
                **extra,
            )
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            log.warning("retry %s cannot be announced: %s", job_id, exc)
            return None
        promise = first.model_copy(
            update={
                "job_id": job_id,
                "kind": kind,
                "status_channel_id": first.target_channel_id,
                "status_message_id": status.id,
                "created_at": time.time(),
            }
        )
        await self.store.save_promise(promise)
        return self.board.track(promise, progress, shown=False)

    def _apply(self, job: TrackedJob, event: ProgressEvent, entry_id: bytes | None) -> None:
        if not event.phase.terminal:
            self.board.apply(job, event)
            return
        self.board.ended(job, event.phase, event.elapsed_s)
        if entry_id is not None:
            job.acks.append(entry_id)
        self._deliver_soon(job.promise.job_id)

    # --- status messages ------------------------------------------------------------------------
    @tasks.loop(seconds=1.0)
    async def edit_loop(self) -> None:
        self.board.edit_due()
        observe.FOLLOWING.set(len(self.board.jobs))

    @tasks.loop(seconds=15.0)
    async def refresh_loop(self) -> None:
        """Queue positions (and the number of workers behind the ETAs) of waiting jobs."""
        if not any(job.progress.phase is Phase.QUEUED for job in self.board.jobs.values()):
            return
        try:
            job_ids, workers = await asyncio.to_thread(self._queue_snapshot)
        except TRANSIENT_ERRORS as exc:
            log.warning("queue positions unavailable: %s", exc)
            return
        self.board.positions(job_ids, workers)

    def _queue_snapshot(self) -> tuple[list[str], int]:
        conn = self.bot.rq_conn
        job_ids = queue.solve_queue(conn, self.settings).get_job_ids()
        return job_ids, queue.solve_workers(conn, self.settings)

    # --- reconciling ----------------------------------------------------------------------------
    @tasks.loop(seconds=RECONCILE_INTERVAL_S)
    async def reconcile_loop(self) -> None:
        try:
            await self.reconcile()
        except TRANSIENT_ERRORS as exc:
            log.warning("reconcile failed: %s", exc)

    async def reconcile(self) -> None:
        """Deliver promised jobs whose outcome is stored though no event said so (they ended
        while the bot was down and their entry is gone, or a delivery gave up earlier); end
        those that can no longer get one."""
        open_jobs = [
            job for job in self.board.open_jobs() if job.promise.job_id not in self.deliveries
        ]
        if not open_jobs:
            return
        ended = await self.store.ended([job.promise.job_id for job in open_jobs])
        now = time.time()
        for job in open_jobs:
            job_id = job.promise.job_id
            if job_id in ended:
                self._deliver_soon(job_id)
            elif now - job.promise.created_at > self.settings.lost_job_after_s:
                reason = await asyncio.to_thread(self._lost_reason, job.promise)
                if reason is not None and not await self.store.ended([job_id]):
                    await asyncio.to_thread(self._end_lost, job.promise, reason)

    def _lost_reason(self, promise: Promise) -> str | None:
        """Why a promised job will never end by itself, or None while it still may. A
        consensus job has no RQ job of its own until its vote is enqueued: while it samples,
        its samples that will never end are ended for it (so the vote runs), and it is lost
        only if it was never enqueued."""
        conn = self.bot.rq_conn
        rq_job = queue.fetch_job(conn, promise.job_id)
        sampling = rq_job is None and promise.samples > 1
        if sampling and queue.settle_consensus(conn, promise.job_id, self.settings):
            return None
        status = None if rq_job is None else rq_job.get_status()
        return lost_reason(rq_job is not None, status)

    def _end_lost(self, promise: Promise, reason: str) -> None:
        lost = SolveResult(
            job_id=promise.job_id,
            status=SolveStatus.FAILED,
            question=promise.question,
            origin=Origin(source="discord", user_id=promise.user_id, guild_id=promise.guild_id),
            enqueued_at=promise.created_at,
            failure=Failure(code=FailureCode.INTERNAL, message=reason),
        )
        end_job(self.bot.rq_conn, lost, ttl_s=self.settings.result_ttl_s)

    # --- delivery -------------------------------------------------------------------------------
    def _deliver_soon(self, job_id: str) -> None:
        if job_id in self.deliveries or self._stopping:
            return
        task = asyncio.create_task(self._deliver(job_id))
        self.deliveries[job_id] = task
        task.add_done_callback(lambda _t: self.deliveries.pop(job_id, None))

    async def _deliver(self, job_id: str) -> None:
        async with self._delivery_slots:
            for attempt in range(DELIVERY_ATTEMPTS):
                job = self.board.jobs.get(job_id)
                if job is None or job.final is not None:
                    return
                try:
                    result = await self.store.result(job_id)
                    if result is None or not result.final:
                        # Outcomes are stored before the event that announces them; if it is
                        # missing, the reconcile loop delivers it once it appears.
                        log.warning("job %s ended but its outcome is not stored yet", job_id)
                        return
                    final = await self.deliverer.deliver(job.promise, result)
                except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
                    log.warning("delivery of job %s failed (%s), attempt %d", job_id, exc, attempt)
                    await asyncio.sleep(2**attempt)
                    continue
                await self.store.ack(*job.acks)
                job.acks.clear()
                timings = result.timings
                if timings.total_s is not None and result.status is SolveStatus.SOLVED:
                    self.board.solved_in(timings.total_s - (timings.queued_s or 0.0))
                self.board.finish(job, final)
                observe.DELIVERIES.labels(result="delivered").inc()
                return
            observe.DELIVERIES.labels(result="postponed").inc()
            log.error("delivery of job %s postponed to the next reconcile", job_id)
