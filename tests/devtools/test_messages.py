"""Discord's checks on messages, DM refusals, and many interactions at once."""

from __future__ import annotations

import asyncio

import discord
import pytest
from discord import app_commands

from devtools.fakediscord import FakeDiscord
from devtools.fakediscord.client import running


def make_client() -> discord.Client:
    return discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)


async def test_message_limits_are_enforced_like_discord(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    student = fake_discord.create_user("student")
    student.accepts_dms = False
    client = make_client()
    async with running(client, fake_discord):
        text_channel = client.get_channel(channel.id)
        assert isinstance(text_channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as too_long:
            await text_channel.send("x" * 2001)
        with pytest.raises(discord.HTTPException) as empty:
            await text_channel.send(embeds=[])
        view = discord.ui.LayoutView()
        view.add_item(discord.ui.TextDisplay("y" * 4001))
        with pytest.raises(discord.HTTPException) as v2_text:
            await text_channel.send(view=view)
        ok_view = discord.ui.LayoutView()
        ok_view.add_item(discord.ui.TextDisplay("**Answer:** 42"))
        sent = await text_channel.send(view=ok_view)
        user = await client.fetch_user(student.id)
        with pytest.raises(discord.Forbidden) as closed_dms:
            await user.send("hello")

    assert too_long.value.code == 50035
    assert "content" in str(too_long.value)
    assert empty.value.code == 50006
    assert v2_text.value.code == 50035
    assert closed_dms.value.code == 50007
    [stored] = fake_discord.channel_messages(channel)
    assert stored.id == sent.id
    assert stored.flags & discord.MessageFlags(components_v2=True).value
    assert stored.components[0]["content"] == "**Answer:** 42"


async def test_many_interactions_at_once_are_all_acknowledged(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    students = [fake_discord.create_user(f"s{i}") for i in range(60)]
    for student in students:
        fake_discord.add_member(guild, student)
    client = make_client()
    tree = app_commands.CommandTree(client)

    @tree.command(name="solve", description="Solve")
    async def solve(interaction: discord.Interaction, question: str) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"queued {question}")

    async with running(client, fake_discord):
        await tree.sync()
        interactions = await asyncio.gather(
            *(
                fake_discord.send_slash_command(
                    "solve", user=s, channel=channel, options={"question": s.username}
                )
                for s in students
            )
        )
        await fake_discord.wait_for(
            lambda: all(len(i.responses) == 1 and not i.responses[0].loading for i in interactions)
        )

    assert all(i.acknowledged is not None for i in interactions)
    assert max(i.ack_latency or 99 for i in interactions) < 3.0
    assert fake_discord.self_inflicted_429s == 0
    assert {i.responses[0].content for i in interactions} == {f"queued s{i}" for i in range(60)}


async def test_history_fetch_and_delete(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, student)
    client = make_client()
    deleted: list[int] = []

    @client.event
    async def on_raw_message_delete(event: discord.RawMessageDeleteEvent) -> None:
        deleted.append(event.message_id)

    async with running(client, fake_discord):
        text_channel = client.get_channel(channel.id)
        assert isinstance(text_channel, discord.TextChannel)
        first = await fake_discord.send_message(student, channel, "first")
        second = await text_channel.send("second")
        history = [m.id async for m in text_channel.history(limit=10)]
        fetched = await text_channel.fetch_message(first.id)
        await second.delete()
        await fake_discord.wait_for(lambda: deleted)

    assert history == [second.id, first.id]  # newest first
    assert fetched.author.id == student.id
    assert deleted == [second.id]
    assert fake_discord.messages[second.id].deleted
    assert [m.id for m in fake_discord.channel_messages(channel)] == [first.id]


async def test_a_message_sent_again_with_an_enforced_nonce_is_not_created_twice(
    fake_discord: FakeDiscord,
) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild, "math")
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    async with running(client, fake_discord):
        target = client.get_partial_messageable(channel.id)
        first = await target.send("answer", nonce="job-1:0")
        again = await target.send("answer", nonce="job-1:0")
        other = await target.send("answer", nonce="job-1:1")
    assert again.id == first.id
    assert other.id != first.id
    assert [m.content for m in fake_discord.channel_messages(channel)] == ["answer", "answer"]
    assert fake_discord.nonce_hits == 1
