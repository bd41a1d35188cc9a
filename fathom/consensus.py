"""Consensus jobs (cons@k): k samples of one question on the solve queue, then one vote.

A consensus job is promised and delivered as ONE job id. Its samples are ordinary solve jobs
(`sample_id(job_id, i)`, each with its own seed and `SolveRequest.sample_of` set), so worker
slots, fairness and retries treat them as k jobs. Every end of a sample goes through
`fathom.events.end_job` (solved, failed, cancelled, stopped, lost), which calls `sample_ended`
here: the sample is counted once, and the end that completes the count puts the vote job on the
render queue (`VOTE_JOB_FUNC`, job id = the consensus job's id). The vote ends the consensus
job with `end_job`.

Why not RQ's `depends_on` with `allow_failure=True`: RQ (3.0, `Job.dependencies_are_met`)
never releases a dependent of a CANCELED or STOPPED job, so a sample cancelled while queued or
stopped by a moderator would leave the vote deferred for ever; counting the ends here covers
every way a sample can end, and the vote is enqueued only after every sample's result is
stored.

While the samples run, each one's progress also updates the whole's (`sample_progress`): one
progress event of the consensus job at most every `min_interval_s`, with the samples' tokens
summed and the samples done, so every reader of a job's progress (the bot's status message,
`fathom ask`, the moderators' views) follows the consensus job like any other.
"""

from __future__ import annotations

import logging
import time

import redis
from rq import Callback, Queue, Retry
from rq.serializers import JSONSerializer

from fathom import keys
from fathom.contract import (
    VOTE_FAILURE_CALLBACK,
    VOTE_JOB_FUNC,
    ConsensusRecord,
    Phase,
    ProgressEvent,
    SampleOf,
    SolveResult,
)
from fathom.events import publish_event

log = logging.getLogger(__name__)

VOTE_RETRIES = 1
VOTING_NOTE = "comparing the samples' answers"

# Record one sample's tokens; publish (return the totals) only when `min_interval` passed since
# the last published event. KEYS: state. ARGV: index, tokens, now, min_interval.
_PROGRESS = """
local state = KEYS[1]
redis.call('HSET', state, 'tokens:' .. ARGV[1], ARGV[2])
local last = tonumber(redis.call('HGET', state, 'published') or '0')
if tonumber(ARGV[3]) - last < tonumber(ARGV[4]) then return false end
redis.call('HSET', state, 'published', ARGV[3])
local flat = redis.call('HGETALL', state)
local total = 0
for i = 1, #flat, 2 do
  if string.sub(flat[i], 1, 7) == 'tokens:' then total = total + tonumber(flat[i + 1]) end
end
return {total, tonumber(redis.call('HGET', state, 'done') or '0')}
"""

# Count one sample's end, once. KEYS: state. ARGV: index, status, tokens, ttl.
# Returns {samples ended so far, total tokens} for a first end, false for a repeated one.
_ENDED = """
local state = KEYS[1]
if redis.call('HSETNX', state, 'ended:' .. ARGV[1], ARGV[2]) == 0 then return false end
redis.call('HSET', state, 'tokens:' .. ARGV[1], ARGV[3])
local done = redis.call('HINCRBY', state, 'done', 1)
redis.call('EXPIRE', state, ARGV[4])
local flat = redis.call('HGETALL', state)
local total = 0
for i = 1, #flat, 2 do
  if string.sub(flat[i], 1, 7) == 'tokens:' then total = total + tonumber(flat[i + 1]) end
end
return {done, total}
"""


def sample_id(job_id: str, index: int) -> str:
    """The solve job id of a consensus job's sample `index`."""
    return f"{job_id}-{index}"


def save_record(conn: redis.Redis, record: ConsensusRecord) -> None:
    conn.set(keys.consensus_key(record.job_id), record.model_dump_json(), ex=keys.JOB_KEY_TTL_S)


def load_record(conn: redis.Redis, job_id: str) -> ConsensusRecord | None:
    raw = conn.get(keys.consensus_key(job_id))
    return None if raw is None else ConsensusRecord.model_validate_json(raw)


def ended_samples(conn: redis.Redis, job_id: str) -> dict[int, str]:
    """Samples counted as ended so far: index → their status."""
    raw = conn.hgetall(keys.consensus_state(job_id))
    ended: dict[int, str] = {}
    for field, value in raw.items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        if name.startswith("ended:"):
            ended[int(name.removeprefix("ended:"))] = (
                value.decode() if isinstance(value, bytes) else str(value)
            )
    return ended


def claim_end(conn: redis.Redis, job_id: str, owner: str) -> bool:
    """Take the right to end the consensus job: to its vote (`owner` "vote", again on a retry
    of the vote) or to one cancel (an owner of its own), whichever comes first."""
    key = keys.consensus_claim(job_id)
    if conn.set(key, owner, nx=True, ex=keys.JOB_KEY_TTL_S):
        return True
    held = conn.get(key)
    return held is not None and (held.decode() if isinstance(held, bytes) else str(held)) == owner


def _elapsed(record: ConsensusRecord | None) -> float:
    return round(time.time() - record.request.enqueued_at, 3) if record is not None else 0.0


def sample_progress(
    conn: redis.Redis,
    sample: SampleOf,
    tokens: int,
    *,
    enqueued_at: float,
    min_interval_s: float,
) -> None:
    """A running sample's tokens; now and then a progress event of the whole consensus job."""
    totals = conn.eval(
        _PROGRESS,
        1,
        keys.consensus_state(sample.job_id),
        sample.index,
        tokens,
        time.time(),
        min_interval_s,
    )
    if not totals:
        return
    total, done = (int(value) for value in totals)
    publish_event(
        conn,
        ProgressEvent(
            job_id=sample.job_id,
            phase=Phase.THINKING,
            tokens=total,
            elapsed_s=round(time.time() - enqueued_at, 3),
            samples=sample.samples,
            samples_done=done,
        ),
    )


def sample_ended(conn: redis.Redis, result: SolveResult) -> None:
    """Count a sample's end (called by `end_job` once its result is stored; a repeated end of
    the same sample is ignored); the end that completes the count enqueues the vote."""
    sample = result.sample_of
    if sample is None:
        return
    counted = conn.eval(
        _ENDED,
        1,
        keys.consensus_state(sample.job_id),
        sample.index,
        result.status.value,
        result.completion_tokens or 0,
        keys.JOB_KEY_TTL_S,
    )
    if not counted:
        return
    done, total = (int(value) for value in counted)
    record = load_record(conn, sample.job_id)
    last = done >= sample.samples
    publish_event(
        conn,
        ProgressEvent(
            job_id=sample.job_id,
            phase=Phase.RENDERING if last else Phase.THINKING,
            tokens=total,
            elapsed_s=_elapsed(record),
            samples=sample.samples,
            samples_done=done,
            note=VOTING_NOTE if last else None,
        ),
    )
    if not last:
        return
    if record is None:
        log.error("consensus %s: all samples ended but its record is gone", sample.job_id)
        return
    Queue(record.vote_queue, connection=conn, serializer=JSONSerializer).enqueue_call(
        VOTE_JOB_FUNC,
        args=(record.job_id,),
        job_id=record.job_id,
        timeout=record.vote_timeout_s,
        result_ttl=record.result_ttl_s,
        failure_ttl=record.result_ttl_s,
        retry=Retry(max=VOTE_RETRIES),
        on_failure=Callback(VOTE_FAILURE_CALLBACK),
        description=f"vote on {record.samples} samples of {record.job_id}",
    )
