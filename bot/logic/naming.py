"""Names and identifiers the bot derives from a job: thread names, button custom ids, message
nonces, the header of a status message."""

from __future__ import annotations

import hashlib
import re

from discord.utils import escape_markdown

from bot.i18n import ENGLISH, Texts

THREAD_NAME_LIMIT = 100
NONCE_LIMIT = 25
QUOTE_LIMIT = 300

CANCEL_PREFIX = "fathom:cancel:"
AGAIN_PREFIX = "fathom:again:"
REASONING_PREFIX = "fathom:reasoning:"
JOB_ID_PATTERN = r"(?P<job_id>[0-9A-Za-z_-]{1,64})"

_JOB_ID = re.compile(JOB_ID_PATTERN)
_MARKUP = re.compile(r"[`*_~|>#]+")
_SPACE = re.compile(r"\s+")


def thread_name(question: str, t: Texts = ENGLISH) -> str:
    """The question's first words as a thread name (Discord allows 1-100 characters)."""
    plain = _SPACE.sub(" ", _MARKUP.sub(" ", question)).strip()
    if not plain:
        return t.gettext("Question")
    if len(plain) <= THREAD_NAME_LIMIT:
        return plain
    cut = plain.rfind(" ", 0, THREAD_NAME_LIMIT - 1)
    if cut < THREAD_NAME_LIMIT // 2:
        cut = THREAD_NAME_LIMIT - 1
    return plain[:cut].rstrip() + "…"


def job_id_prefix(typed: str) -> str | None:
    """The job id (or its first characters) a moderator typed, or None when it cannot be one:
    what is echoed back is then only ever an id."""
    text = typed.strip()
    return text if _JOB_ID.fullmatch(text) else None


def message_nonce(job_id: str, index: int) -> str:
    """The same nonce for the same message of the same job, so that Discord (which enforces
    nonces for a few minutes) drops a resend after a crash instead of posting it twice."""
    digest = hashlib.sha256(f"{job_id}:{index}".encode()).hexdigest()
    return digest[:NONCE_LIMIT]


def status_nonce(job_id: str) -> str:
    """The nonce of a job's status message (see `message_nonce`)."""
    return message_nonce(job_id, -1)


def quote(question: str, limit: int = QUOTE_LIMIT) -> str:
    """The question as a Markdown block quote, shortened to `limit` characters, its own
    Markdown escaped: it reads as typed, and a stray ``` or || cannot swallow what follows."""
    text = question.strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return "\n".join("> " + escape_markdown(line) for line in text.split("\n"))


def status_header(question: str, user_id: int, *, public: bool, t: Texts = ENGLISH) -> str:
    """Above the progress line of a status message: who asked what (a mention that, like
    everything the bot sends, pings no one)."""
    if public:
        asked = t.gettext("**{asker} asked:**").format(asker=f"<@{user_id}>")
        return f"{asked}\n{quote(question)}"
    return f"{t.gettext('**Your question:**')}\n{quote(question)}"
