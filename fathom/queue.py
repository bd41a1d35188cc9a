"""The queue operations both sides use: enqueueing solve and render jobs, cancelling them, and
asking where they stand.

Jobs and callbacks are named by their dotted paths (the bot never imports the worker), and every
argument crosses Redis as JSON (RQ's JSONSerializer).
"""

from __future__ import annotations

import random
import uuid
from enum import StrEnum

import redis
from rq import Callback, Queue, Retry, Worker
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from fathom import keys
from fathom.consensus import (
    claim_end,
    ended_samples,
    load_record,
    sample_ended,
    sample_id,
    save_record,
)
from fathom.contract import (
    RENDER_FAILURE_CALLBACK,
    RENDER_JOB_FUNC,
    SOLVE_FAILURE_CALLBACK,
    SOLVE_JOB_FUNC,
    SOLVE_STOPPED_CALLBACK,
    ConsensusRecord,
    Failure,
    FailureCode,
    JobTicket,
    Phase,
    ProgressEvent,
    SampleOf,
    SolveRequest,
    SolveResult,
    SolveStatus,
    preview,
)
from fathom.events import end_job, load_result, publish_event
from fathom.fairness import flow_of, forget, place
from fathom.settings import Settings

CANCELLED_MESSAGE = "The question was cancelled before it was answered."
RENDER_RETRIES = 1
SEED_RANGE = 2**31


def solve_queue(conn: redis.Redis, settings: Settings) -> Queue:
    return Queue(settings.solve_queue, connection=conn, serializer=JSONSerializer)


def render_queue(conn: redis.Redis, settings: Settings) -> Queue:
    return Queue(settings.render_queue, connection=conn, serializer=JSONSerializer)


def fetch_job(conn: redis.Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
    except NoSuchJobError:
        return None


def enqueue_solve(
    conn: redis.Redis, request: SolveRequest, settings: Settings, job_id: str | None = None
) -> str:
    """Put the request on the solve queue and return its job id.

    The QUEUED event is published first, so no later event of the job can precede it.
    """
    job_id = job_id or uuid.uuid4().hex
    sample = request.sample_of is not None
    publish_event(
        conn, ProgressEvent(job_id=job_id, phase=Phase.QUEUED, elapsed_s=0.0), announce=not sample
    )
    origin = request.origin
    if origin.guild_id is not None and not sample:
        ticket = JobTicket(
            job_id=job_id,
            user_id=origin.user_id,
            question=preview(request.question),
            enqueued_at=request.enqueued_at,
        )
        conn.hset(keys.guild_jobs(origin.guild_id), job_id, ticket.model_dump_json())
    queue = solve_queue(conn, settings)
    queue.enqueue_call(
        SOLVE_JOB_FUNC,
        args=(request.model_dump(mode="json"),),
        job_id=job_id,
        timeout=settings.job_timeout_s,
        result_ttl=settings.result_ttl_s,
        failure_ttl=settings.result_ttl_s,
        retry=Retry(max=settings.job_retries) if settings.job_retries else None,
        on_failure=Callback(SOLVE_FAILURE_CALLBACK),
        on_stopped=Callback(SOLVE_STOPPED_CALLBACK),
        description=_description(request),
    )
    if settings.fair_queue:
        place(conn, queue.key, job_id, *flow_of(origin.source, origin.guild_id, origin.user_id))
    return job_id


def _description(request: SolveRequest) -> str:
    text = f"solve {request.origin.source} question ({len(request.question)} chars)"
    part = request.sample_of
    return text if part is None else f"{text}, sample {part.index + 1} of {part.job_id}"


def enqueue_consensus(
    conn: redis.Redis,
    request: SolveRequest,
    samples: int,
    settings: Settings,
    job_id: str | None = None,
) -> str:
    """A consensus job (cons@k): `samples` solve jobs of the question with different seeds,
    then a vote on the render queue that ends it (see `fathom.consensus`). Returns the one job
    id the asker follows. The record is stored first, so no sample can end before its whole is
    known; each sample is placed in the fair order like any job."""
    if samples < 2:
        raise ValueError("a consensus job needs at least 2 samples")
    job_id = job_id or uuid.uuid4().hex
    publish_event(
        conn, ProgressEvent(job_id=job_id, phase=Phase.QUEUED, elapsed_s=0.0, samples=samples)
    )
    origin = request.origin
    if origin.guild_id is not None:
        ticket = JobTicket(
            job_id=job_id,
            user_id=origin.user_id,
            question=preview(request.question),
            enqueued_at=request.enqueued_at,
            samples=samples,
        )
        conn.hset(keys.guild_jobs(origin.guild_id), job_id, ticket.model_dump_json())
    ids = [sample_id(job_id, index) for index in range(samples)]
    save_record(
        conn,
        ConsensusRecord(
            job_id=job_id,
            request=request,
            samples=samples,
            sample_ids=ids,
            vote_queue=settings.render_queue,
            vote_timeout_s=settings.render_job_timeout_s,
            result_ttl_s=settings.result_ttl_s,
        ),
    )
    for index, (sample, seed) in enumerate(
        zip(ids, sample_seeds(request.seed, samples), strict=True)
    ):
        part = request.model_copy(
            update={
                "seed": seed,
                "render": False,
                "sample_of": SampleOf(job_id=job_id, index=index, samples=samples),
            }
        )
        enqueue_solve(conn, part, settings, job_id=sample)
    return job_id


def sample_seeds(first: int | None, samples: int) -> list[int]:
    """Different seeds for the samples: from `first` on when one is given, else drawn."""
    if first is not None:
        return [(first + index) % SEED_RANGE for index in range(samples)]
    return random.sample(range(SEED_RANGE), samples)


def enqueue_render(conn: redis.Redis, job_id: str, settings: Settings) -> Job:
    """Hand a stored solution to a CPU render worker (it ends the job)."""
    return render_queue(conn, settings).enqueue_call(
        RENDER_JOB_FUNC,
        args=(job_id,),
        timeout=settings.render_job_timeout_s,
        result_ttl=settings.result_ttl_s,
        failure_ttl=settings.result_ttl_s,
        retry=Retry(max=RENDER_RETRIES),
        on_failure=Callback(RENDER_FAILURE_CALLBACK),
        description=f"render solution of {job_id}",
    )


def queue_position(conn: redis.Redis, job_id: str) -> int | None:
    """0-based place in the solve queue; None once a worker took it (or it is unknown)."""
    job = fetch_job(conn, job_id)
    return None if job is None else job.get_position()


def solve_workers(conn: redis.Redis, settings: Settings) -> int:
    """Live workers listening on the solve queue."""
    return Worker.count(connection=conn, queue=solve_queue(conn, settings))


def cancelled_result(job_id: str, request: SolveRequest, message: str) -> SolveResult:
    """The outcome of a job cancelled before or while it was solved, with nothing kept."""
    return SolveResult(
        job_id=job_id,
        status=SolveStatus.CANCELLED,
        question=request.question,
        origin=request.origin,
        enqueued_at=request.enqueued_at,
        failure=Failure(code=FailureCode.CANCELLED, message=message),
        sample_of=request.sample_of,
    )


def cancel_message(conn: redis.Redis, job_id: str) -> str | None:
    """What the asker is told of a cancel, once someone asked for one (who did it)."""
    raw = conn.get(keys.cancel_key(job_id))
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return text if text not in ("", "1") else CANCELLED_MESSAGE


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    """It was still waiting: taken off the queue, the CANCELLED outcome is stored."""
    STOPPING = "stopping"
    """A worker is solving it: it closes the model stream and stores CANCELLED shortly."""
    FINISHED = "finished"
    """Too late: it already has an outcome."""
    UNKNOWN = "unknown"


def cancel_job(
    conn: redis.Redis, job_id: str, settings: Settings, by: str | None = None
) -> CancelOutcome:
    """Ask for the job to be cancelled (`by`: who, as the asker will read it, e.g. "a
    moderator (Ada)"). A waiting job leaves the queue at once; a running one sees the cancel
    flag within a fraction of a second and closes its model stream. A consensus job ends at
    once, and so do all its samples."""
    message = f"Cancelled by {by}." if by else CANCELLED_MESSAGE
    record = load_record(conn, job_id)
    if record is not None:
        return _cancel_consensus(conn, record, message, settings)
    return _cancel_one(conn, job_id, message, settings)


def _cancel_one(conn: redis.Redis, job_id: str, message: str, settings: Settings) -> CancelOutcome:
    conn.set(keys.cancel_key(job_id), message, ex=keys.JOB_KEY_TTL_S)
    job = fetch_job(conn, job_id)
    if job is None:
        return CancelOutcome.FINISHED if load_result(conn, job_id) else CancelOutcome.UNKNOWN
    status = job.get_status()
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        try:
            job.cancel()
        except InvalidJobOperation:
            return CancelOutcome.FINISHED
        forget(conn, job_id)
        request = SolveRequest.model_validate(job.args[0])
        end_job(conn, cancelled_result(job_id, request, message), ttl_s=settings.result_ttl_s)
        return CancelOutcome.CANCELLED
    if status == JobStatus.STARTED:
        return CancelOutcome.STOPPING
    return CancelOutcome.FINISHED


def _cancel_consensus(
    conn: redis.Redis, record: ConsensusRecord, message: str, settings: Settings
) -> CancelOutcome:
    """Every sample is cancelled (the running ones close their streams) and the consensus job
    ends now, unless its vote already took over."""
    if not claim_end(conn, record.job_id, f"cancel:{uuid.uuid4().hex}"):
        return CancelOutcome.FINISHED
    conn.set(keys.cancel_key(record.job_id), message, ex=keys.JOB_KEY_TTL_S)
    outcomes = [_cancel_one(conn, sample, message, settings) for sample in record.sample_ids]
    end_job(
        conn,
        cancelled_result(record.job_id, record.request, message),
        ttl_s=settings.result_ttl_s,
    )
    if CancelOutcome.STOPPING in outcomes:
        return CancelOutcome.STOPPING
    return CancelOutcome.CANCELLED


SAMPLE_LOST = "The worker solving this sample stopped without an answer."


def settle_consensus(conn: redis.Redis, job_id: str, settings: Settings) -> bool:
    """For a consensus job still sampling (no vote enqueued yet): end the samples that will
    never end by themselves (their RQ job is gone or failed without a stored result, a worker
    killed outright), and count a sample whose result was stored but not counted, so the vote
    can run. False when there is no such consensus job (it was never enqueued)."""
    record = load_record(conn, job_id)
    if record is None:
        return False
    ended = ended_samples(conn, job_id)
    for index, sample in enumerate(record.sample_ids):
        if index in ended:
            continue
        stored = load_result(conn, sample)
        if stored is not None and stored.final:
            sample_ended(conn, stored)
            continue
        job = fetch_job(conn, sample)
        status = None if job is None else job.get_status()
        if job is None or status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            part = record.request.model_copy(
                update={"sample_of": SampleOf(job_id=job_id, index=index, samples=record.samples)}
            )
            lost = SolveResult(
                job_id=sample,
                status=SolveStatus.FAILED,
                question=part.question,
                origin=part.origin,
                enqueued_at=part.enqueued_at,
                failure=Failure(code=FailureCode.INTERNAL, message=SAMPLE_LOST),
                sample_of=part.sample_of,
            )
            end_job(conn, lost, ttl_s=settings.result_ttl_s)
    return True


def stop_job(conn: redis.Redis, job_id: str) -> bool:
    """Hard stop: the worker kills the job's work horse (the kernel closes its model stream);
    the worker's stopped callback ends the job. For a job that ignores `cancel_job`."""
    job = fetch_job(conn, job_id)
    if job is None or job.get_status() != JobStatus.STARTED:
        return False
    if not conn.exists(keys.cancel_key(job_id)):
        conn.set(keys.cancel_key(job_id), CANCELLED_MESSAGE, ex=keys.JOB_KEY_TTL_S)
    try:
        send_stop_job_command(conn, job_id, serializer=JSONSerializer)
    except InvalidJobOperation:  # it finished in the meantime
        return False
    return True
