"""The bot's Redis I/O (redis.asyncio): promises, delivery progress, quotas, conversations and
the events stream. Decisions live in bot.logic; this module only reads and writes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError, WatchError

from bot import keys as bot_keys
from bot.i18n import ENGLISH, Texts
from bot.logic.checks import Limits, check_quota
from bot.records import Conversation, Draft, Promise
from fathom import keys
from fathom.contract import Document, ProgressEvent, SolveResult
from fathom.events import StreamEntry, decode_entries
from fathom.settings import Settings


@dataclass(frozen=True, slots=True)
class DeliveryProgress:
    sent: int = 0
    """Messages of the outcome already sent."""
    last_message_id: int | None = None
    done: bool = False


class BotStore:
    def __init__(self, conn: aioredis.Redis, *, record_ttl_s: int, pending_ttl_s: int) -> None:
        self.conn = conn
        self._record_ttl_s = record_ttl_s
        self._pending_ttl_s = pending_ttl_s

    @classmethod
    def configured(cls, conn: aioredis.Redis, settings: Settings) -> BotStore:
        """Records kept as long as results; a pending question counts against its asker until
        every try of its job could have timed out, and an hour more."""
        return cls(
            conn,
            record_ttl_s=settings.result_ttl_s,
            pending_ttl_s=settings.job_timeout_s * (settings.job_retries + 1) + 3600,
        )

    # --- quotas ------------------------------------------------------------------------------
    async def reserve(
        self, user_id: int, job_id: str, limits: Limits, t: Texts = ENGLISH
    ) -> str | None:
        """Count `job_id` against the user's pending jobs and start their cooldown, unless a
        limit says no (then the reason, and nothing is written). Atomic per user."""
        pending_key = bot_keys.user_pending(user_id)
        cooldown_key = bot_keys.user_cooldown(user_id)
        async with self.conn.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(pending_key, cooldown_key)
                    now = time.time()
                    await pipe.zremrangebyscore(pending_key, "-inf", now)
                    pending = int(await pipe.zcard(pending_key))
                    cooldown_ms = int(await pipe.pttl(cooldown_key))
                    rejection = check_quota(pending, max(cooldown_ms, 0) / 1000, limits, t)
                    if rejection is not None:
                        return rejection  # leaving the block resets the pipeline (unwatch)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.zadd(pending_key, {job_id: now + self._pending_ttl_s})
                    pipe.expire(pending_key, self._pending_ttl_s)
                    if limits.cooldown_s > 0:
                        pipe.set(cooldown_key, b"1", px=max(1, int(limits.cooldown_s * 1000)))
                    await pipe.execute()
                    return None
                except WatchError:
                    continue

    async def remember_language(self, user_id: int, language: str) -> None:
        """The language of a user's Discord client as last seen, for their messages (a DM, a
        follow-up) which carry none."""
        await self.conn.set(bot_keys.user_language(user_id), language, ex=self._record_ttl_s)

    async def language(self, user_id: int) -> str | None:
        raw = await self.conn.get(bot_keys.user_language(user_id))
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    async def release(self, user_id: int, job_id: str) -> None:
        """The job no longer counts against the user's pending limit."""
        await self.conn.zrem(bot_keys.user_pending(user_id), job_id)

    # --- promises ----------------------------------------------------------------------------
    async def save_draft(self, draft: Draft) -> None:
        await self.conn.hset(bot_keys.DRAFTS, draft.job_id, draft.model_dump_json())

    async def drafts(self) -> list[Draft]:
        raw = _bytes_map(await self.conn.hgetall(bot_keys.DRAFTS))
        return [Draft.model_validate_json(value) for value in raw.values()]

    async def drop_draft(self, job_id: str) -> None:
        await self.conn.hdel(bot_keys.DRAFTS, job_id)

    async def save_promise(self, promise: Promise) -> None:
        """The job is promised (its draft, if any, is done with)."""
        pipe = self.conn.pipeline(transaction=True)
        pipe.hset(bot_keys.PROMISED, promise.job_id, promise.model_dump_json())
        pipe.hdel(bot_keys.DRAFTS, promise.job_id)
        await pipe.execute()

    async def promises(self) -> list[Promise]:
        raw = _bytes_map(await self.conn.hgetall(bot_keys.PROMISED))
        return [Promise.model_validate_json(value) for value in raw.values()]

    async def promise(self, job_id: str) -> Promise | None:
        """The promise of a job, pending or delivered (while its record lasts)."""
        raw = await self.conn.hget(bot_keys.PROMISED, job_id)
        if raw is None:
            raw = await self.conn.get(bot_keys.job_key(job_id))
        return None if raw is None else Promise.model_validate_json(raw)

    async def drop_promise(self, promise: Promise) -> None:
        """For a job that was never enqueued."""
        await self.conn.hdel(bot_keys.PROMISED, promise.job_id)
        await self.release(promise.user_id, promise.job_id)

    # --- delivery ----------------------------------------------------------------------------
    async def delivery(self, job_id: str) -> DeliveryProgress:
        raw = _bytes_map(await self.conn.hgetall(bot_keys.delivery_key(job_id)))
        last = raw.get(b"last_message_id")
        return DeliveryProgress(
            sent=int(raw.get(b"sent", b"0")),
            last_message_id=int(last) if last else None,
            done=raw.get(b"done") == b"1",
        )

    async def mark_sent(self, job_id: str, sent: int, message_id: int) -> None:
        key = bot_keys.delivery_key(job_id)
        pipe = self.conn.pipeline(transaction=True)
        pipe.hset(key, mapping={"sent": sent, "last_message_id": message_id})
        pipe.expire(key, self._record_ttl_s)
        await pipe.execute()

    async def claim_done(self, job_id: str) -> bool:
        """Mark the job delivered; False if it already was (someone else finished it)."""
        key = bot_keys.delivery_key(job_id)
        claimed = bool(await self.conn.hsetnx(key, "done", "1"))
        await self.conn.expire(key, self._record_ttl_s)
        return claimed

    async def finish(self, promise: Promise) -> None:
        """After delivery: the promise becomes a record for the buttons, the rendered layout
        and images are deleted, and the job stops counting against the asker's limit."""
        pipe = self.conn.pipeline(transaction=True)
        pipe.set(bot_keys.job_key(promise.job_id), promise.model_dump_json(), ex=self._record_ttl_s)
        pipe.hdel(bot_keys.PROMISED, promise.job_id)
        pipe.delete(keys.document_key(promise.job_id), keys.files_key(promise.job_id))
        pipe.zrem(bot_keys.user_pending(promise.user_id), promise.job_id)
        await pipe.execute()

    async def result(self, job_id: str) -> SolveResult | None:
        raw = await self.conn.get(keys.result_key(job_id))
        return None if raw is None else SolveResult.model_validate_json(raw)

    async def document(self, job_id: str) -> Document | None:
        """The job's drawn solution; None when there is none (or it cannot be read)."""
        raw = await self.conn.get(keys.document_key(job_id))
        if raw is None:
            return None
        try:
            return Document.model_validate_json(raw)
        except ValueError:
            return None

    async def files(self, job_id: str) -> dict[str, bytes]:
        raw = _bytes_map(await self.conn.hgetall(keys.files_key(job_id)))
        return {name.decode(): data for name, data in raw.items()}

    async def latest_event(self, job_id: str) -> ProgressEvent | None:
        entries = decode_entries(await self.conn.xrevrange(keys.progress_stream(job_id), count=1))
        return entries[0].event if entries else None

    # --- conversations -----------------------------------------------------------------------
    async def conversation(self, thread_id: int) -> Conversation | None:
        raw = await self.conn.get(bot_keys.thread_key(thread_id))
        return None if raw is None else Conversation.model_validate_json(raw)

    async def save_conversation(self, thread_id: int, conversation: Conversation) -> None:
        await self.conn.set(
            bot_keys.thread_key(thread_id), conversation.model_dump_json(), ex=self._record_ttl_s
        )

    # --- the events stream ---------------------------------------------------------------------
    async def ensure_group(self) -> None:
        try:
            await self.conn.xgroup_create(
                keys.EVENTS_STREAM, bot_keys.EVENTS_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # BUSYGROUP: it exists already
                raise

    async def read_events(
        self, consumer: str, start: bytes | str, *, count: int, block_ms: int | None = None
    ) -> list[StreamEntry]:
        """Entries for this consumer: with `start` ">" new ones (waiting up to `block_ms`);
        with an entry id, its own delivered-but-unacknowledged entries after that id (what it
        had read before a restart)."""
        response = await self.conn.xreadgroup(
            bot_keys.EVENTS_GROUP,
            consumer,
            {keys.EVENTS_STREAM: start},
            count=count,
            block=block_ms if start == ">" else None,
        )
        # RESP2 without decode_responses: [[stream, [[entry id, {field: value} | None], ...]]]
        streams = cast(list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]], response)
        return [entry for _stream, items in streams or [] for entry in decode_entries(items)]

    async def ended(self, job_ids: list[str]) -> set[str]:
        """Those of `job_ids` whose outcome is stored (the job ended)."""
        pipe = self.conn.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.get(keys.result_key(job_id))
        found = await pipe.execute()
        return {
            job_id
            for job_id, raw in zip(job_ids, found, strict=True)
            if raw is not None and SolveResult.model_validate_json(raw).final
        }

    async def ack(self, *entry_ids: bytes) -> None:
        if entry_ids:
            await self.conn.xack(keys.EVENTS_STREAM, bot_keys.EVENTS_GROUP, *entry_ids)


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _bytes_map(raw: dict[bytes | str, bytes | str]) -> dict[bytes, bytes]:
    return {_bytes(k): _bytes(v) for k, v in raw.items()}
