"""The status messages of the jobs the bot follows: what each should say, and editing them
within the bot-wide edit budget (the newest text wins; a job's final text goes first)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

import discord

from bot.client import TRANSIENT_ERRORS, FathomBot
from bot.components import status_view
from bot.i18n import texts
from bot.logic.edits import EditBudget, EditScheduler
from bot.logic.naming import status_header
from bot.logic.progress import JobProgress, estimate_wait_s, status_text
from bot.records import Promise, TargetKind
from fathom.consensus import sample_id
from fathom.contract import Phase, ProgressEvent
from fathom.settings import Settings

log = logging.getLogger(__name__)

CONCURRENT_EDITS = 8
SOLVE_TIME_WEIGHT = 0.2
"""Weight of the newest solve time in the running average behind the ETAs."""


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


class StatusBoard:
    def __init__(self, bot: FathomBot, settings: Settings) -> None:
        self.bot = bot
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
        self.edits: set[asyncio.Task[None]] = set()
        self._edit_slots = asyncio.Semaphore(CONCURRENT_EDITS)

    # --- what the board knows --------------------------------------------------------------
    def track(self, promise: Promise, progress: JobProgress, *, shown: bool = True) -> TrackedJob:
        """Follow a job from now on. `shown`: its status message already says `progress`."""
        job = TrackedJob(promise, progress)
        if shown:
            job.shown = status_text(progress, eta_s=self.eta(progress), t=texts(promise.language))
        self.jobs[promise.job_id] = job
        return job

    def untrack(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        self.scheduler.forget(job_id)

    def open_jobs(self) -> list[TrackedJob]:
        """Jobs whose outcome is not delivered yet."""
        return [job for job in self.jobs.values() if job.final is None]

    def eta(self, progress: JobProgress) -> float | None:
        if progress.phase is not Phase.QUEUED or progress.position is None:
            return None
        return estimate_wait_s(progress.position, self.workers, self.solve_s)

    def apply(self, job: TrackedJob, event: ProgressEvent) -> None:
        """A progress event of a job that has not ended (terminal events go to delivery)."""
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
            samples=event.samples or job.progress.samples,
            samples_done=event.samples_done,
        )
        self.request_edit(job)

    def ended(self, job: TrackedJob, phase: Phase, elapsed_s: float) -> None:
        job.progress = JobProgress(phase=phase, elapsed_s=elapsed_s)

    def positions(self, queued_job_ids: list[str], workers: int) -> None:
        """The solve queue as it stands: places of waiting jobs (a consensus job is where its
        first waiting sample is), and workers behind the ETAs."""
        self.workers = max(workers, 1)
        places = {job_id: index + 1 for index, job_id in enumerate(queued_job_ids)}
        for job_id, job in list(self.jobs.items()):
            samples = job.promise.samples
            ids = [sample_id(job_id, i) for i in range(samples)] if samples > 1 else [job_id]
            position = min((places[i] for i in ids if i in places), default=None)
            if position is not None:
                self.moved(job_id, position)

    def moved(self, job_id: str, position: int) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.progress.phase is Phase.QUEUED:
            job.progress = JobProgress(
                phase=Phase.QUEUED,
                position=position,
                elapsed_s=job.progress.elapsed_s,
                samples=job.progress.samples,
            )
            self.request_edit(job)

    def solved_in(self, solve_s: float) -> None:
        self.solve_s += SOLVE_TIME_WEIGHT * (solve_s - self.solve_s)

    def finish(self, job: TrackedJob, final: str) -> None:
        """The outcome is delivered: show `final`, then forget the job."""
        job.final = final
        self.request_edit(job)

    # --- editing ------------------------------------------------------------------------------
    def _text(self, job: TrackedJob) -> str:
        if job.final is not None:
            return job.final
        return status_text(
            job.progress, eta_s=self.eta(job.progress), t=texts(job.promise.language)
        )

    def request_edit(self, job: TrackedJob) -> None:
        if job.status_gone or self._text(job) == job.shown:
            if job.final is not None:
                self.untrack(job.promise.job_id)
            return
        self.scheduler.request(
            job.promise.job_id,
            job.promise.status_channel_id,
            time.monotonic(),
            urgent=job.final is not None,
        )

    def edit_due(self) -> None:
        """Start the edits that are due now."""
        for job_id in self.scheduler.take_due(time.monotonic()):
            job = self.jobs.get(job_id)
            if job is not None:
                task = asyncio.create_task(self._edit(job))
                self.edits.add(task)
                task.add_done_callback(self.edits.discard)

    async def _edit(self, job: TrackedJob) -> None:
        text = self._text(job)
        promise = job.promise
        t = texts(promise.language)
        header = status_header(
            promise.question, promise.user_id, public=promise.kind is not TargetKind.DM, t=t
        )
        message = self.bot.get_partial_messageable(promise.status_channel_id).get_partial_message(
            promise.status_message_id
        )
        async with self._edit_slots:
            try:
                await message.edit(
                    content=f"{header}\n\n{text}",
                    view=None if job.final is not None else status_view(promise.job_id, t),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
                job.shown = text
            except (discord.NotFound, discord.Forbidden):
                job.status_gone = True
            except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
                log.warning("status edit of job %s failed: %s", promise.job_id, exc)
        if job.final is not None and (job.shown == job.final or job.status_gone):
            self.untrack(promise.job_id)
        elif job.shown != self._text(job):
            self.request_edit(job)
