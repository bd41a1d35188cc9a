"""The real bot (FathomBot) against the fake Discord, with real Redis, real RQ workers (in
threads of this process) and the TGI simulator."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
import redis

from bot import keys as bot_keys
from bot.client import FathomBot
from bot.exts.delivery import Delivery
from bot.guild_settings import GuildSettings
from devtools.fakediscord import ChannelRecord, FakeDiscord, GuildRecord, MessageRecord, UserRecord
from devtools.fakediscord.client import running
from devtools.rq_threads import FAST_BOT_ENV as TEST_ENV
from devtools.rq_threads import ThreadWorkers
from fathom.settings import Settings, get_settings
from simulator.server import SimulatorServer


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
