"""Every Redis key and stream name the bot and the workers share, in one place."""

from __future__ import annotations

PREFIX = "fathom"

PROGRESS_STREAM_MAXLEN = 64
"""Entries kept per job's progress stream (newest win); the stream expires with the job."""
EVENTS_STREAM_MAXLEN = 10_000
"""Entries kept in the global event stream the bot consumes (approximate trim)."""
JOB_KEY_TTL_S = 24 * 3600
"""Lifetime of a job's progress stream and rendered files."""

EVENTS_STREAM = f"{PREFIX}:events"
"""Global stream of every job's progress and outcome (ProgressEvent JSON in field `event`).
The bot reads it through a consumer group, so what happens while it is down is read later."""
EVENTS_GROUP = "bot"


def progress_stream(job_id: str) -> str:
    """One job's progress events, newest last (`XREVRANGE ... COUNT 1` gives the state)."""
    return f"{PREFIX}:job:{job_id}:progress"


def result_key(job_id: str) -> str:
    """The job's SolveResult JSON, kept `result_ttl_s`."""
    return f"{PREFIX}:job:{job_id}:result"


def files_key(job_id: str) -> str:
    """Hash of rendered file name → PNG bytes, deleted by the bot once delivered."""
    return f"{PREFIX}:job:{job_id}:files"


def layout_key(job_id: str) -> str:
    """The rendered layout (list of MessagePayload JSON) for the job's solution."""
    return f"{PREFIX}:job:{job_id}:layout"


def cancel_key(job_id: str) -> str:
    """Set when someone asked to cancel the job; the worker checks it while streaming."""
    return f"{PREFIX}:job:{job_id}:cancel"


# --- kept by the Discord bot ------------------------------------------------------------------

BOT_PROMISED = f"{PREFIX}:bot:promised"
"""Hash job_id → the bot's delivery promise (where the status message and the answer go), for
every job whose outcome the bot has not delivered yet. Read back after a restart."""


def bot_job_key(job_id: str) -> str:
    """The promise of a delivered job, kept `result_ttl_s` for its buttons (Solve again…)."""
    return f"{PREFIX}:bot:job:{job_id}"


def bot_delivery_key(job_id: str) -> str:
    """Hash recording how far the bot delivered a job's outcome (messages sent, done)."""
    return f"{PREFIX}:bot:job:{job_id}:delivery"


def bot_thread_key(thread_id: int) -> str:
    """The conversation (asker, earlier questions and written solutions) of a solution thread."""
    return f"{PREFIX}:bot:thread:{thread_id}"


def bot_user_pending(user_id: int) -> str:
    """Sorted set of a user's unfinished job ids, scored by when they stop counting."""
    return f"{PREFIX}:bot:user:{user_id}:pending"


def bot_user_cooldown(user_id: int) -> str:
    """Present (with a TTL) while the user must wait before asking again."""
    return f"{PREFIX}:bot:user:{user_id}:cooldown"


def bot_commands_key(application_id: int, scope: str) -> str:
    """Hash of the application commands last synced to `scope` ("global" or a guild id), so a
    restart does not re-upload unchanged commands (Discord rate-limits that tightly)."""
    return f"{PREFIX}:bot:commands:{application_id}:{scope}"
