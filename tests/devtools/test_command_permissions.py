"""Who Discord's client offers a command to: default_member_permissions, the guild's command
permission overwrites (Server Settings → Integrations), administrators and the owner."""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from devtools.fakediscord import (
    ChannelRecord,
    CommandPermission,
    FakeDiscord,
    Overwrite,
    UserRecord,
)
from devtools.fakediscord.client import running


async def test_default_member_permissions_and_overrides(fake_discord: FakeDiscord) -> None:
    owner = fake_discord.create_user("owner")
    guild = fake_discord.create_guild(owner=owner)
    channel = fake_discord.create_text_channel(guild, "general")
    quiet = fake_discord.create_text_channel(
        guild,
        "quiet",
        overwrites=[
            Overwrite(guild.id, 0, deny=discord.Permissions(use_application_commands=True).value)
        ],
    )
    admins = fake_discord.create_role(guild, "admins", discord.Permissions(administrator=True))
    mods = fake_discord.create_role(guild, "mods", discord.Permissions(manage_guild=True))
    helpers = fake_discord.create_role(guild, "helpers", discord.Permissions.none())
    admin, mod, helper, student, outsider = (
        fake_discord.create_user(name) for name in ("admin", "mod", "helper", "student", "outsider")
    )
    fake_discord.add_member(guild, admin, roles=[admins])
    fake_discord.add_member(guild, mod, roles=[mods])
    fake_discord.add_member(guild, helper, roles=[helpers])
    fake_discord.add_member(guild, student)
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    tree = app_commands.CommandTree(client)
    updates: list[discord.RawAppCommandPermissionsUpdateEvent] = []

    @client.event
    async def on_raw_app_command_permissions_update(
        payload: discord.RawAppCommandPermissionsUpdateEvent,
    ) -> None:
        updates.append(payload)

    @tree.command(name="help", description="Anyone")
    @app_commands.allowed_contexts(guilds=True, dms=True)
    async def help_(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok", ephemeral=True)

    @tree.command(name="purge", description="Managers")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.allowed_contexts(guilds=True, dms=True)
    async def purge(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok", ephemeral=True)

    @tree.command(name="lockdown", description="Administrators only")
    @app_commands.default_permissions()
    async def lockdown(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok", ephemeral=True)

    queue = app_commands.Group(
        name="queue",
        description="The queue",
        default_permissions=discord.Permissions(manage_messages=True),
    )

    @queue.command(name="clear", description="Clear it")
    async def clear(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok", ephemeral=True)

    tree.add_command(queue)

    @tree.context_menu(name="Warn")
    @app_commands.default_permissions(moderate_members=True)
    async def warn(interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.send_message(f"warned {member.name}", ephemeral=True)

    @tree.context_menu(name="Remove")
    @app_commands.default_permissions(manage_messages=True)
    async def remove(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message("removed", ephemeral=True)

    async def offered(name: str, user: UserRecord, where: ChannelRecord = channel) -> bool:
        try:
            ix = await fake_discord.send_slash_command(name, user=user, channel=where)
        except PermissionError:
            return False
        [answer] = await fake_discord.wait_for_responses(ix)
        return answer.content == "ok"

    async with running(client, fake_discord):
        await tree.sync()
        text_channel = client.get_channel(channel.id)
        assert isinstance(text_channel, discord.TextChannel)
        await text_channel.create_thread(name="side", type=discord.ChannelType.public_thread)
        [thread] = fake_discord.threads_of(channel)
        post = await fake_discord.send_message(student, channel, "spam")

        # Defaults: no default_member_permissions is for everyone; otherwise the member needs
        # those permissions; "0" only administrators. The owner and administrators have all.
        assert [await offered("help", u) for u in (student, helper, mod)] == [True] * 3
        assert [await offered("purge", u) for u in (student, helper, mod)] == [False, False, True]
        assert [await offered("lockdown", u) for u in (mod, admin, owner)] == [False, True, True]
        assert [await offered("queue clear", u) for u in (mod, admin, owner)] == [
            False,
            True,
            True,
        ]
        with pytest.raises(PermissionError):
            await fake_discord.send_user_command("Warn", user=mod, target=student, channel=channel)
        with pytest.raises(PermissionError):
            await fake_discord.send_message_command("Remove", user=student, target=post)
        warned = await fake_discord.send_user_command(
            "Warn", user=admin, target=student, channel=channel
        )
        [warning] = await fake_discord.wait_for_responses(warned)
        removed = await fake_discord.send_message_command("Remove", user=owner, target=post)
        [removal] = await fake_discord.wait_for_responses(removed)
        # DMs have no member permissions; a guild's channel needs membership, view_channel and
        # use_application_commands (administrators excepted).
        assert await offered("purge", student, fake_discord.dm_channel(student))
        assert not await offered("help", outsider)
        assert not await offered("help", student, quiet)
        assert await offered("help", admin, quiet)

        # An admin's overwrites in Server Settings → Integrations.
        fake_discord.override_command_permissions(guild, "purge", everyone=True)
        assert await offered("purge", student)
        fake_discord.override_command_permissions(guild, "queue", allow=[helpers], deny=[mod])
        assert [await offered("queue clear", u) for u in (helper, student, mod)] == [
            True,
            False,
            False,
        ]
        fake_discord.override_command_permissions(guild, "lockdown", allow=[student])
        assert await offered("lockdown", student)
        fake_discord.override_command_permissions(guild, "help", deny=[channel])
        assert not await offered("help", student)
        assert not await offered("help", student, thread)
        assert await offered("help", admin)
        fake_discord.override_command_permissions(guild, "help", all_channels=False)
        assert not await offered("help", student, fake_discord.create_text_channel(guild, "new"))
        fake_discord.override_command_permissions(guild, "help", everyone=False, allow=[helpers])
        assert [await offered("help", u) for u in (helper, student)] == [True, False]
        fake_discord.override_command_permissions(guild, "Warn", allow=[mods], command_type=2)
        assert await fake_discord.send_user_command(
            "Warn", user=mod, target=student, channel=channel
        )
        with pytest.raises(ValueError, match="not a role, member or channel"):
            fake_discord.override_command_permissions(guild, "help", allow=[outsider])
        with pytest.raises(ValueError, match="one overwrite"):
            fake_discord.override_command_permissions(
                guild, "help", allow=[helpers], deny=[helpers]
            )
        await fake_discord.wait_for(lambda: len(updates) == 7)

    queue_command = fake_discord.find_command("queue", guild=None)
    assert queue_command["default_member_permissions"] == str(
        discord.Permissions(manage_messages=True).value
    )
    assert "default_member_permissions" not in queue_command["options"][0]
    assert warning.content == "warned student"
    assert warning.type == removal.type == 23  # context-menu command responses
    purge_id = int(fake_discord.find_command("purge", guild=None)["id"])
    assert updates[0].target_id == purge_id
    assert updates[0].guild.id == guild.id
    [everyone] = updates[0].permissions
    assert everyone.target.id == guild.id
    assert everyone.type is discord.AppCommandPermissionType.role
    assert everyone.permission is True
    assert guild.command_permissions[purge_id] == [CommandPermission(guild.id, 1, True)]
