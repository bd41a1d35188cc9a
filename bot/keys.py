"""The Redis keys only the bot keeps (the shared ones are in `fathom.keys`)."""

from __future__ import annotations

from fathom.keys import PREFIX

EVENTS_GROUP = "bot"
"""The bot's consumer group on `fathom.keys.EVENTS_STREAM`."""

PROMISED = f"{PREFIX}:bot:promised"
"""Hash job_id → the bot's delivery promise (where the status message and the answer go), for
every job whose outcome the bot has not delivered yet. Read back after a restart."""


DRAFTS = f"{PREFIX}:bot:drafts"
"""Hash job_id → a question being taken in (bot.records.Draft), until its job is promised."""


def job_key(job_id: str) -> str:
    """The promise of a delivered job, kept `result_ttl_s` for its buttons (Solve again…)."""
    return f"{PREFIX}:bot:job:{job_id}"


def delivery_key(job_id: str) -> str:
    """Hash recording how far the bot delivered a job's outcome (messages sent, done)."""
    return f"{PREFIX}:bot:job:{job_id}:delivery"


def thread_key(thread_id: int) -> str:
    """The conversation (asker, earlier questions and written solutions) of a solution thread."""
    return f"{PREFIX}:bot:thread:{thread_id}"


def user_pending(user_id: int) -> str:
    """Sorted set of a user's unfinished job ids, scored by when they stop counting."""
    return f"{PREFIX}:bot:user:{user_id}:pending"


def user_cooldown(user_id: int) -> str:
    """Present (with a TTL) while the user must wait before asking again."""
    return f"{PREFIX}:bot:user:{user_id}:cooldown"


def user_language(user_id: int) -> str:
    """The language of a user's Discord client as last seen (`bot.i18n`)."""
    return f"{PREFIX}:bot:user:{user_id}:language"


def commands_key(application_id: int, scope: str) -> str:
    """Hash of the application commands last synced to `scope` ("global" or a guild id), so a
    restart does not re-upload unchanged commands (Discord rate-limits that tightly)."""
    return f"{PREFIX}:bot:commands:{application_id}:{scope}"


def guild_settings(guild_id: int) -> str:
    """A server's own settings (bot.guild_settings.GuildSettings JSON)."""
    return f"{PREFIX}:bot:guild:{guild_id}:settings"


def guild_blocked(guild_id: int) -> str:
    """Set of the members a server's moderators blocked from asking."""
    return f"{PREFIX}:bot:guild:{guild_id}:blocked"


def daily_count(guild_id: int, user_id: int, day: str) -> str:
    """Questions a member asked in a server on one (UTC) day."""
    return f"{PREFIX}:bot:guild:{guild_id}:user:{user_id}:day:{day}"


MODLOG_GROUP = "modlog"
"""The bot's consumer group on `fathom.keys.AUDIT_STREAM`, posting to mod-log channels."""
