"""The Redis keys and stream names the bot and the workers share, in one place. (What only the
bot keeps lives in `bot.keys`.)"""

from __future__ import annotations

PREFIX = "fathom"

PROGRESS_STREAM_MAXLEN = 64
"""Entries kept per job's progress stream (newest win); the stream expires with the job."""
EVENTS_STREAM_MAXLEN = 10_000
"""Entries kept in the global event stream the bot consumes (approximate trim)."""
JOB_KEY_TTL_S = 24 * 3600
"""Lifetime of a job's progress stream, document and drawn files."""

EVENTS_STREAM = f"{PREFIX}:events"
"""Global stream of every job's progress and outcome (see `fathom.events`). The bot reads it
through a consumer group, so what happens while it is down is read later."""


def progress_stream(job_id: str) -> str:
    """One job's progress events, newest last (`XREVRANGE ... COUNT 1` gives the state)."""
    return f"{PREFIX}:job:{job_id}:progress"


def result_key(job_id: str) -> str:
    """The job's SolveResult JSON, kept `result_ttl_s`."""
    return f"{PREFIX}:job:{job_id}:result"


def document_key(job_id: str) -> str:
    """The job's rendered solution (a `fathom.contract.Document` as JSON)."""
    return f"{PREFIX}:job:{job_id}:document"


def files_key(job_id: str) -> str:
    """Hash of the document's file names → PNG bytes."""
    return f"{PREFIX}:job:{job_id}:files"


def cancel_key(job_id: str) -> str:
    """Set when someone asked to cancel the job; the worker checks it while streaming."""
    return f"{PREFIX}:job:{job_id}:cancel"


def consensus_key(job_id: str) -> str:
    """A consensus job's record (`fathom.contract.ConsensusRecord` JSON)."""
    return f"{PREFIX}:job:{job_id}:consensus"


def consensus_state(job_id: str) -> str:
    """Hash of a consensus job's samples as they run and end: `tokens:<i>`, `ended:<i>` (the
    sample's status), `done` (samples ended) and `published` (time of the last progress
    event of the whole)."""
    return f"{PREFIX}:job:{job_id}:consensus:state"


def consensus_claim(job_id: str) -> str:
    """Set by whoever ends a consensus job (its vote, or a cancel), so only one does."""
    return f"{PREFIX}:job:{job_id}:consensus:claim"


# --- per server, for the moderators' views and actions -------------------------------------

GUILD_OUTCOMES_KEEP_S = 7 * 24 * 3600
"""How long a server's finished jobs are remembered for `/queue stats` and `/queue failed`."""
GUILD_OUTCOMES_MAX = 20_000
AUDIT_STREAM = f"{PREFIX}:audit"
"""Every moderator's and operator's action (fathom.admin.AuditEntry JSON in field `entry`)."""
AUDIT_STREAM_MAXLEN = 10_000
MODEL_STATUS_PREFIX = f"{PREFIX}:model:status:"
"""One key per model server a worker pool watches: its health and load, with a short TTL."""


def guild_jobs(guild_id: int) -> str:
    """Hash of a server's unfinished jobs: job id → fathom.admin.JobTicket JSON."""
    return f"{PREFIX}:guild:{guild_id}:jobs"


def guild_outcomes(guild_id: int) -> str:
    """Sorted set of a server's finished jobs (fathom.admin.Outcome JSON), by finish time."""
    return f"{PREFIX}:guild:{guild_id}:outcomes"


def guild_paused(guild_id: int) -> str:
    """Present while the server's moderators have paused new questions (who, since when)."""
    return f"{PREFIX}:guild:{guild_id}:paused"


def retry_of(job_id: str) -> str:
    """The job a moderator's retry re-runs (the bot delivers the new one where the old went)."""
    return f"{PREFIX}:job:{job_id}:retry-of"


def model_status(name: str) -> str:
    return f"{MODEL_STATUS_PREFIX}{name}"
