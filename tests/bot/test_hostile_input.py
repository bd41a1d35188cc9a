"""The hostile-input corpus (hostile_inputs.json, devtools/hostile.py): each case through its own
way in gets a clear answer or a clear refusal, pings nobody, leaks no token, sends the model
nothing invisible, and leaves the bot and the workers answering. One bot serves the whole
module, as one bot serves a server all day. bench/hostile.py tries every case every way in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import discord
import pytest
import pytest_asyncio
import redis

from bot import keys as bot_keys
from bot.client import FathomBot
from bot.guild_settings import GuildSettings
from devtools.fakediscord import FakeDiscord
from devtools.fakediscord.client import running
from devtools.hostile import Case, Stage, load_corpus, try_case
from devtools.redis_server import RedisServer
from fathom.settings import get_settings
from simulator.server import SimulatorServer, fast_config
from tests.bot.conftest import TEST_ENV, ThreadWorkers, delivery

pytestmark = pytest.mark.asyncio(loop_scope="module")

CASES = load_corpus()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(redis_server: RedisServer) -> AsyncIterator[Stage]:
    conn = redis.Redis.from_url(redis_server.url())
    conn.flushall()  # the suite's own throwaway server: earlier tests' leftovers go
    with (
        pytest.MonkeyPatch.context() as env,
        SimulatorServer(fast_config()) as sim,
    ):
        for name, value in {**TEST_ENV, "FATHOM_MODEL_URL": sim.url}.items():
            env.setenv(name, value)
        get_settings.cache_clear()
        settings = get_settings()
        workers = ThreadWorkers(settings)
        workers.start()
        try:
            async with FakeDiscord(interaction_deadline=3.0) as fake:
                with fake.point_discord_py():
                    bot = FathomBot(settings, guild_ready_timeout=0.05)
                    staged = _staged(fake, sim, conn, bot)
                    async with running(bot, fake):
                        yield staged
        finally:
            workers.stop()
            get_settings.cache_clear()
            conn.flushall()
            conn.close()


def _staged(fake: FakeDiscord, sim: SimulatorServer, conn: redis.Redis, bot: FathomBot) -> Stage:
    fake.limiter.rules["PATCH /channels/{channel_id}/messages/{message_id}"] = (50, 1.0)
    guild = fake.create_guild()
    channel = fake.create_text_channel(guild, "homework")
    student = fake.create_user("student")
    classmate = fake.create_user("classmate")
    # Whoever runs the moderators' commands has Manage Server too (for /fathom-settings).
    admin = fake.create_user("admin")
    mods = fake.create_role(guild, "mods", discord.Permissions(manage_messages=True))
    admins = fake.create_role(guild, "admins", discord.Permissions(manage_guild=True))
    fake.add_member(guild, student)
    fake.add_member(guild, classmate)
    fake.add_member(guild, admin, roles=[mods, admins])
    chosen = GuildSettings(moderator_role_id=mods.id)
    conn.set(bot_keys.guild_settings(guild.id), chosen.model_dump_json())
    return Stage(
        fake=fake,
        sim=sim,
        guild=guild,
        channel=channel,
        student=student,
        classmate=classmate,
        moderator=admin,
        moderators_role=mods,
        settled=lambda: not delivery(bot).following(),
    )


def test_the_corpus_is_large_and_covers_every_way_in() -> None:
    assert len(CASES) >= 80
    assert {case.via for case in CASES} == {
        "slash",
        "dm",
        "context",
        "followup",
        "dm_slash",
        "private",
        "moderator",
    }
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_input(case: Case, stage: Stage) -> None:
    verdict = await try_case(stage, case)
    assert verdict.kept, verdict.problems
