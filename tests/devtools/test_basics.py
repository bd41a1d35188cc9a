"""The real discord.py client against the fake: login, READY, guild cache, commands."""

from __future__ import annotations

import discord
from discord import app_commands

from devtools.fakediscord import FakeDiscord
from devtools.fakediscord.client import running


def make_client() -> discord.Client:
    return discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)


async def test_login_ready_and_guild_cache(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild("Study")
    channel = fake_discord.create_text_channel(guild, "algebra")
    client = make_client()
    async with running(client, fake_discord):
        assert client.user is not None
        assert client.user.id == fake_discord.bot_user.id
        assert client.application_id == fake_discord.application_id
        cached = client.get_guild(guild.id)
        assert cached is not None
        assert cached.name == "Study"
        text_channel = cached.get_channel(channel.id)
        assert isinstance(text_channel, discord.TextChannel)
        assert text_channel.name == "algebra"
        assert cached.me is not None
        assert cached.me.guild_permissions.create_public_threads
    routes = [r.route for r in fake_discord.requests]
    assert "GET /users/@me" in routes
    assert "GET /oauth2/applications/@me" in routes


async def test_command_tree_sync_stores_commands(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    client = make_client()
    tree = app_commands.CommandTree(client)

    @tree.command(name="solve", description="Solve a math problem")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.default_permissions(send_messages=True)
    async def solve(interaction: discord.Interaction, question: str) -> None:
        await interaction.response.send_message(question)

    async with running(client, fake_discord):
        synced = await tree.sync()
        synced_guild = await tree.sync(guild=discord.Object(guild.id))
    assert [c.name for c in synced] == ["solve"]
    assert synced_guild == []
    assert synced[0].id == int(fake_discord.global_commands[0]["id"])
    assert synced[0].default_member_permissions == discord.Permissions(send_messages=True)
    stored = fake_discord.find_command("solve", guild=None)
    assert stored["contexts"] == [0, 1, 2]
    assert stored["options"][0]["name"] == "question"
