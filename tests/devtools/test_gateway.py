"""Gateway behaviour: resume after op 7 or a dropped socket, re-identify, intents, sharding."""

from __future__ import annotations

import asyncio

import discord

from devtools.fakediscord import FakeDiscord, MessageRecord
from devtools.fakediscord.client import running


def make_client(intents: discord.Intents | None = None) -> discord.Client:
    return discord.Client(intents=intents or discord.Intents.default(), guild_ready_timeout=0.05)


async def test_resume_after_reconnect_replays_missed_events(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, student)
    client = make_client(discord.Intents.default() | discord.Intents(message_content=True))
    seen: list[str] = []
    resumed = asyncio.Event()

    @client.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message.content)

    @client.event
    async def on_resumed() -> None:
        resumed.set()

    async with running(client, fake_discord):
        [session] = fake_discord.connected_sessions
        await fake_discord.reconnect_gateway("close")
        # Sent while the client is away: Discord keeps it for the resume.
        await fake_discord.send_message(student, channel, "while away")
        await asyncio.wait_for(resumed.wait(), 5)
        await fake_discord.send_message(student, channel, "after resume")
        await fake_discord.wait_for(lambda: len(seen) == 2)
        await fake_discord.reconnect_gateway("reconnect")
        await fake_discord.wait_for(lambda: fake_discord.connected_sessions)
        await fake_discord.send_message(student, channel, "after op 7")
        await fake_discord.wait_for(lambda: len(seen) == 3)

    assert seen == ["while away", "after resume", "after op 7"]
    assert fake_discord.identify_count == 1
    assert list(fake_discord.sessions) == [session.session_id]


class QuickReidentifyClient(discord.Client):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before a re-IDENTIFY; not needed against the fake."""


async def test_invalidated_session_identifies_again(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    client = QuickReidentifyClient(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    async with running(client, fake_discord):
        await fake_discord.reconnect_gateway("invalidate")
        await fake_discord.wait_for(lambda: fake_discord.identify_count == 2)
        await fake_discord.wait_for(lambda: fake_discord.connected_sessions)
        await fake_discord.wait_for(lambda: client.get_guild(guild.id))
        assert client.is_ready()


async def test_guild_content_needs_the_intent_or_a_mention(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    thread_parent = fake_discord.create_text_channel(guild, "threads")
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, student)
    client = make_client()  # no MESSAGE_CONTENT intent
    seen: list[discord.Message] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message)

    async with running(client, fake_discord):
        await fake_discord.send_message(student, channel, "no mention")
        bot = fake_discord.bot_user
        await fake_discord.send_message(student, channel, f"{bot.mention} please")
        await fake_discord.send_dm(student, "in a DM")
        await fake_discord.wait_for(lambda: len(seen) == 3)
        starter = await thread_parent_message(fake_discord, client, thread_parent.id)
        reply = await fake_discord.send_message(student, thread_parent, "re", reply_to=starter)
        await fake_discord.wait_for(lambda: len(seen) == 5)

    assert [m.content for m in seen[:3]] == ["", f"<@{fake_discord.bot_user.id}> please", "in a DM"]
    assert seen[4].content == "re"  # a reply that pings the bot carries content
    assert seen[4].reference is not None
    assert seen[4].reference.message_id == starter.id
    assert fake_discord.bot_user.id in reply.mentioned_user_ids


async def thread_parent_message(
    fake: FakeDiscord, client: discord.Client, channel_id: int
) -> MessageRecord:
    channel = client.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("starter")
    return fake.messages[sent.id]


class QuickShardedClient(discord.AutoShardedClient):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s between shard IDENTIFYs (max_concurrency 1)."""


async def test_sharded_client_gets_its_guilds_per_shard(fake_discord: FakeDiscord) -> None:
    fake_discord.shard_count = 2
    guilds = [fake_discord.create_guild(f"g{i}") for i in range(6)]
    client = QuickShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    async with running(client, fake_discord):
        assert {g.id for g in client.guilds} == {g.id for g in guilds}
        shards = sorted(s.shard for s in fake_discord.connected_sessions if s.shard)
    assert shards == [(0, 2), (1, 2)]
    assert fake_discord.requests_to("GET", "GET /gateway/bot")
