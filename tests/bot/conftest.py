"""The real bot (FathomBot) against the fake Discord, with real Redis, real RQ workers (in
threads of this process) and the TGI simulator."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty

from bot import keys as bot_keys
from bot.client import FathomBot
from bot.exts.delivery import Delivery
from bot.guild_settings import GuildSettings
from devtools.fakediscord import ChannelRecord, FakeDiscord, GuildRecord, MessageRecord, UserRecord
from devtools.fakediscord.client import running
from fathom.settings import Settings, get_settings
from simulator.server import SimulatorServer

# Compressed time: fast retries, frequent progress, quick status edits.
TEST_ENV = {
    "FATHOM_CONNECT_ATTEMPTS": "2",
    "FATHOM_CONNECT_BACKOFF_S": "0.05",
    "FATHOM_CONNECT_BACKOFF_MAX_S": "0.1",
    "FATHOM_OVERLOAD_ATTEMPTS": "2",
    "FATHOM_OVERLOAD_BACKOFF_S": "0.05",
    "FATHOM_OVERLOAD_BACKOFF_MAX_S": "0.1",
    "FATHOM_PROGRESS_INTERVAL_S": "0.05",
    "FATHOM_READ_TIMEOUT_S": "5",
    "FATHOM_JOB_RETRIES": "0",
    "FATHOM_QUESTION_COOLDOWN_S": "0",
    "FATHOM_MAX_PENDING_PER_USER": "3",
    "FATHOM_STATUS_EDIT_INTERVAL_S": "0.1",
    "FATHOM_CHANNEL_EDIT_INTERVAL_S": "0.05",
    "FATHOM_BOT_EDITS_PER_S": "40",
    "FATHOM_EDIT_TICK_S": "0.02",
    "FATHOM_QUEUE_POSITION_REFRESH_S": "0.2",
    "FATHOM_EVENTS_BLOCK_MS": "50",
}


class QuietSimpleWorker(SimpleWorker):
    """RQ's in-process worker, runnable in a thread: signal handlers and SIGALRM timeouts
    belong to the main thread, so no handlers and a timer-based job timeout."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


class ThreadWorkers:
    """Solve and render workers looping in background threads until stopped."""

    def __init__(self, settings: Settings, solve: int = 2) -> None:
        self.settings = settings
        self._stop = threading.Event()
        queues = [settings.solve_queue] * solve + [settings.render_queue]
        self._threads = [
            threading.Thread(target=self._loop, args=(name,), daemon=True) for name in queues
        ]

    def _loop(self, queue_name: str) -> None:
        conn = redis.Redis.from_url(self.settings.redis_url)
        queue = Queue(queue_name, connection=conn, serializer=JSONSerializer)
        while not self._stop.is_set():
            QuietSimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(
                burst=True, logging_level="WARNING"
            )
            self._stop.wait(0.02)
        conn.close()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def delivery(bot: FathomBot) -> Delivery:
    """The bot's delivery extension (discord.py imports an extension afresh each time a bot
    loads it, so its class is not the one this module imported)."""
    found = bot.get_cog(Delivery.__cog_name__)
    assert found is not None
    return cast(Delivery, found)


@pytest.fixture
def bot_settings(
    monkeypatch: pytest.MonkeyPatch, fake_tgi: SimulatorServer, redis_conn: redis.Redis
) -> Iterator[Settings]:
    for name, value in {**TEST_ENV, "FATHOM_MODEL_URL": fake_tgi.url}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def workers(bot_settings: Settings) -> Iterator[ThreadWorkers]:
    pool = ThreadWorkers(bot_settings)
    pool.start()
    yield pool
    pool.stop()


@dataclass
class World:
    fake: FakeDiscord
    guild: GuildRecord
    channel: ChannelRecord
    student: UserRecord
    classmate: UserRecord
    moderator: UserRecord
    settings: Settings
    redis: redis.Redis

    @contextlib.asynccontextmanager
    async def bot(self) -> AsyncIterator[FathomBot]:
        bot = FathomBot(self.settings, guild_ready_timeout=0.05)
        async with running(bot, self.fake):
            yield bot

    def posts(self, channel: ChannelRecord | int) -> list[MessageRecord]:
        """The bot's messages in a channel that everyone sees (no ephemeral responses)."""
        return [
            m
            for m in self.fake.channel_messages(channel, include_ephemeral=False)
            if m.author.id == self.fake.bot_user.id
        ]

    async def wait(self, predicate: Callable[[], Any], what: str, within: float = 20.0) -> Any:
        return await self.fake.wait_for(predicate, within, what)

    async def thread(self) -> ChannelRecord:
        """The (first) thread the bot made in the channel."""
        found: ChannelRecord = await self.wait(
            lambda: next(iter(self.fake.threads_of(self.channel)), None), "a thread"
        )
        return found


@pytest.fixture
async def world(
    fake_discord: FakeDiscord, bot_settings: Settings, redis_conn: redis.Redis
) -> World:
    import discord

    fake = fake_discord
    # Tests compress time: let status edits come faster than Discord's real per-channel limit.
    fake.limiter.rules["PATCH /channels/{channel_id}/messages/{message_id}"] = (50, 1.0)
    guild = fake.create_guild()
    channel = fake.create_text_channel(guild, "homework")
    student = fake.create_user("student")
    classmate = fake.create_user("classmate")
    moderator = fake.create_user("moderator")
    mods = fake.create_role(guild, "mods", discord.Permissions(manage_messages=True))
    fake.add_member(guild, student)
    fake.add_member(guild, classmate)
    fake.add_member(guild, moderator, roles=[mods])
    # The server named its moderator role, as a server does with /fathom-settings.
    chosen = GuildSettings(moderator_role_id=mods.id)
    redis_conn.set(bot_keys.guild_settings(guild.id), chosen.model_dump_json())
    return World(fake, guild, channel, student, classmate, moderator, bot_settings, redis_conn)
