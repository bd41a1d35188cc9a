"""Interactions end to end: the real discord.py client answers what the fake dispatches."""

from __future__ import annotations

import asyncio
import io

import discord
import pytest
from discord import app_commands

from devtools.fakediscord import FakeDiscord, Overwrite, Upload
from devtools.fakediscord.client import running


def make_client(
    **kwargs: object,
) -> tuple[discord.Client, app_commands.CommandTree[discord.Client]]:
    intents = discord.Intents.default()
    client = discord.Client(intents=intents, guild_ready_timeout=0.05, **kwargs)  # type: ignore[arg-type]
    return client, app_commands.CommandTree(client)


async def test_slash_command_deferred_then_followup_with_file_thread_and_edit(
    fake_discord: FakeDiscord,
) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild, "homework")
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, student)
    client, tree = make_client()

    @tree.command(name="solve", description="Solve a problem")
    async def solve(interaction: discord.Interaction, question: str, steps: int = 3) -> None:
        await interaction.response.defer(thinking=True)
        message = await interaction.followup.send(
            f"Solving for {interaction.user.mention}: {question} @everyone",
            file=discord.File(io.BytesIO(b"\x89PNG fake"), "formula.png"),
            allowed_mentions=discord.AllowedMentions.none(),
            wait=True,
        )
        assert isinstance(interaction.channel, discord.TextChannel)
        thread = await interaction.channel.create_thread(
            name=question[:100], message=discord.Object(message.id), auto_archive_duration=60
        )
        await thread.send("step 1", allowed_mentions=discord.AllowedMentions.none())
        await message.edit(content=f"Solved in {steps} steps")

    async with running(client, fake_discord):
        await tree.sync()
        interaction = await fake_discord.send_slash_command(
            "solve", user=student, channel=channel, options={"question": "x^2 = 4", "steps": 2}
        )
        ack = await fake_discord.wait_for_ack(interaction)
        [response] = await fake_discord.wait_for_responses(interaction)
        thread = await fake_discord.wait_for(
            lambda: next(iter(fake_discord.threads_of(channel)), None)
        )
        await fake_discord.wait_for(lambda: len(response.revisions) == 3)

    assert ack["type"] == 5
    assert ack["at"] < 3.0
    assert response is interaction.original
    assert response.revisions[0].flags & 128  # first the "thinking…" state
    assert response.revisions[1].content.startswith("Solving for")
    assert response.content == "Solved in 2 steps"
    assert response.file("formula.png").data == b"\x89PNG fake"
    assert response.allowed_mentions == {"parse": []}
    assert not response.pings_anyone
    assert thread.name == "x^2 = 4"
    assert thread.id == response.id
    assert response.thread_id == thread.id
    [step] = fake_discord.channel_messages(thread)
    assert step.content == "step 1"


async def test_late_and_duplicate_callbacks_are_rejected(fake_discord: FakeDiscord) -> None:
    fake_discord.interaction_deadline = 0.2
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, student)
    client, tree = make_client()
    errors: list[discord.HTTPException] = []

    @tree.command(name="slow", description="Answers too late")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        try:
            await interaction.response.send_message("late")
        except discord.HTTPException as error:
            errors.append(error)

    @tree.command(name="twice", description="Answers twice")
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        try:
            # Bypass discord.py's own guard to send a second callback, as a buggy bot might.
            interaction.response._response_type = None
            await interaction.response.send_message("again")
        except discord.HTTPException as error:
            errors.append(error)

    async with running(client, fake_discord):
        await tree.sync()
        late = await fake_discord.send_slash_command("slow", user=student, channel=channel)
        await fake_discord.wait_for(lambda: late.callbacks)
        double = await fake_discord.send_slash_command("twice", user=student, channel=channel)
        await fake_discord.wait_for(lambda: len(double.callbacks) == 2)
        await fake_discord.wait_for(lambda: len(errors) == 2)

    assert late.acknowledged is None
    assert late.callbacks[0]["status"] == 404
    assert [e.code for e in errors] == [10062, 40060]
    assert double.acknowledged is not None
    assert double.acknowledged["type"] == 5


async def test_slash_option_checks_follow_the_synced_definition(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, student)
    client, tree = make_client()

    @tree.command(name="solve", description="Solve")
    @app_commands.guild_only()
    async def solve(
        interaction: discord.Interaction, question: app_commands.Range[str, 1, 50]
    ) -> None:
        await interaction.response.send_message(question)

    async with running(client, fake_discord):
        await tree.sync()
        with pytest.raises(ValueError, match="required"):
            await fake_discord.send_slash_command("solve", user=student, channel=channel)
        with pytest.raises(ValueError, match="out of bounds"):
            await fake_discord.send_slash_command(
                "solve", user=student, channel=channel, options={"question": "x" * 51}
            )
        with pytest.raises(LookupError, match="no command"):
            await fake_discord.send_slash_command("nope", user=student, channel=channel)
        dm = fake_discord.dm_channel(student)
        with pytest.raises(PermissionError):
            await fake_discord.send_slash_command(
                "solve", user=student, channel=dm, options={"question": "1+1"}
            )


async def test_dm_message_and_dm_slash_command(fake_discord: FakeDiscord) -> None:
    student = fake_discord.create_user("student")
    client, tree = make_client()
    received: list[discord.Message] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author.id != client.user.id:  # type: ignore[union-attr]
            received.append(message)
            await message.channel.send(
                f"got {message.content} with {len(message.attachments)} file(s)",
                reference=message,
                allowed_mentions=discord.AllowedMentions.none(),
            )

    @tree.command(name="solve", description="Solve")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    async def solve(interaction: discord.Interaction, question: str) -> None:
        assert isinstance(interaction.channel, discord.DMChannel)
        await interaction.response.send_message(f"DM answer: {question}", ephemeral=True)

    async with running(client, fake_discord):
        await tree.sync()
        sent = await fake_discord.send_dm(
            student, "what is 2+2?", attachments=[Upload("q.txt", b"2+2", "text/plain")]
        )
        dm = fake_discord.dm_channel(student)
        reply = await fake_discord.wait_for_message(dm, lambda m: m.author.bot)
        interaction = await fake_discord.send_slash_command(
            "solve", user=student, channel=dm, options={"question": "3+3"}
        )
        [answer] = await fake_discord.wait_for_responses(interaction)

    assert received[0].content == "what is 2+2?"
    assert isinstance(received[0].channel, discord.DMChannel)
    assert reply.content == "got what is 2+2? with 1 file(s)"
    assert reply.reference is not None
    assert reply.reference["message_id"] == sent.id
    assert not reply.pings_anyone  # replied_user off
    assert answer.content == "DM answer: 3+3"
    assert answer.ephemeral


async def test_interaction_member_has_permissions_in_the_channel_and_roles(
    fake_discord: FakeDiscord,
) -> None:
    owner = fake_discord.create_user("owner")
    guild = fake_discord.create_guild(owner=owner)
    no_files = discord.Permissions(attach_files=True).value
    channel = fake_discord.create_text_channel(
        guild, overwrites=[Overwrite(guild.id, 0, deny=no_files)]
    )
    mods = fake_discord.create_role(guild, "mods", discord.Permissions(manage_guild=True))
    students = fake_discord.create_role(guild, "students", discord.Permissions.none())
    mod = fake_discord.create_user("mod")
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, mod, roles=[mods])
    fake_discord.add_member(guild, student, roles=[students])
    client, tree = make_client()
    seen: dict[int, tuple[discord.Permissions, list[str], bool]] = {}

    @tree.command(name="whoami", description="Who am I")
    async def whoami(interaction: discord.Interaction) -> None:
        assert isinstance(interaction.user, discord.Member)
        assert interaction.guild is not None
        seen[interaction.user.id] = (
            interaction.permissions,
            [r.name for r in interaction.user.roles],
            interaction.guild.owner_id == interaction.user.id,
        )
        await interaction.response.send_message("ok", ephemeral=True)

    async with running(client, fake_discord):
        await tree.sync()
        for user in (owner, mod, student):
            ix = await fake_discord.send_slash_command("whoami", user=user, channel=channel)
            await fake_discord.wait_for_responses(ix)

    everyone = discord.Permissions(guild.everyone_role.permissions & ~no_files)
    assert seen[owner.id] == (discord.Permissions.all(), ["@everyone"], True)
    assert seen[mod.id] == (
        everyone | discord.Permissions(manage_guild=True),
        ["@everyone", "mods"],
        False,
    )
    assert seen[student.id] == (everyone, ["@everyone", "students"], False)
    assert not seen[student.id][0].attach_files
