"""Members, roles and channels as a moderator's command sees them: REST look-ups and the
user, role, mentionable and channel options that arrive in data.resolved."""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from devtools.fakediscord import FakeDiscord, Overwrite
from devtools.fakediscord.client import running


def make_client() -> tuple[discord.Client, app_commands.CommandTree[discord.Client]]:
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    return client, app_commands.CommandTree(client)


async def test_fetch_member_roles_and_role(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    helpers = fake_discord.create_role(guild, "helpers", discord.Permissions(manage_messages=True))
    student = fake_discord.create_user("student")
    outsider = fake_discord.create_user("outsider")
    fake_discord.add_member(guild, student, roles=[helpers])
    client, _ = make_client()

    async with running(client, fake_discord):
        cached = client.get_guild(guild.id)
        assert cached is not None
        member = await cached.fetch_member(student.id)
        roles = await cached.fetch_roles()
        role = await cached.fetch_role(helpers.id)
        with pytest.raises(discord.NotFound) as no_member:
            await cached.fetch_member(outsider.id)
        with pytest.raises(discord.NotFound) as no_role:
            await cached.fetch_role(outsider.id)

    assert member.id == student.id
    assert [r.name for r in member.roles] == ["@everyone", "helpers"]
    assert sorted(r.name for r in roles) == sorted(r.name for r in guild.roles.values())
    assert role.name == "helpers"
    assert role.permissions == discord.Permissions(manage_messages=True)
    assert no_member.value.code == 10007
    assert no_role.value.code == 10011


async def test_user_role_mentionable_and_channel_options_are_resolved(
    fake_discord: FakeDiscord,
) -> None:
    guild = fake_discord.create_guild()
    other_guild = fake_discord.create_guild("Elsewhere")
    channel = fake_discord.create_text_channel(guild, "general")
    staff_only = fake_discord.create_text_channel(
        guild,
        "staff",
        overwrites=[Overwrite(guild.id, 0, deny=discord.Permissions(view_channel=True).value)],
    )
    logs = fake_discord.create_text_channel(guild, "mod-log")
    foreign = fake_discord.create_text_channel(other_guild, "foreign")
    helpers = fake_discord.create_role(guild, "helpers", discord.Permissions(manage_messages=True))
    foreign_role = fake_discord.create_role(other_guild, "foreign", discord.Permissions.none())
    moderator = fake_discord.create_user("moderator")
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, moderator, roles=[helpers])
    fake_discord.add_member(guild, student)
    client, tree = make_client()
    seen: list[tuple[object, ...]] = []

    @tree.command(name="note", description="Note something about a member")
    async def note(
        interaction: discord.Interaction,
        member: discord.Member,
        role: discord.Role,
        target: discord.Member | discord.Role,
        log_channel: discord.TextChannel,
    ) -> None:
        seen.append(
            (
                member.id,
                member.resolved_permissions,
                [r.id for r in member.roles],
                role.id,
                role.permissions,
                type(target).__name__,
                target.id,
                log_channel.id,
            )
        )
        await interaction.response.send_message("noted", ephemeral=True)

    async with running(client, fake_discord):
        await tree.sync()
        options = {"member": student, "role": helpers, "target": helpers, "log_channel": logs}
        ix = await fake_discord.send_slash_command(
            "note", user=moderator, channel=channel, options=options
        )
        await fake_discord.wait_for_responses(ix)
        by_user = await fake_discord.send_slash_command(
            "note", user=moderator, channel=channel, options={**options, "target": moderator}
        )
        await fake_discord.wait_for_responses(by_user)
        with pytest.raises(ValueError, match="not in this server"):
            await fake_discord.send_slash_command(
                "note", user=moderator, channel=channel, options={**options, "role": foreign_role}
            )
        with pytest.raises(ValueError, match="not in this server"):
            await fake_discord.send_slash_command(
                "note", user=moderator, channel=channel, options={**options, "log_channel": foreign}
            )
        with pytest.raises(ValueError, match="cannot see"):
            await fake_discord.send_slash_command(
                "note",
                user=moderator,
                channel=channel,
                options={**options, "log_channel": staff_only},
            )
        with pytest.raises(TypeError, match="RoleRecord"):
            await fake_discord.send_slash_command(
                "note", user=moderator, channel=channel, options={**options, "role": student}
            )

    everyone = guild.everyone_role.permissions
    assert seen == [
        (
            student.id,
            discord.Permissions(everyone),
            [guild.id],
            helpers.id,
            discord.Permissions(manage_messages=True),
            "Role",
            helpers.id,
            logs.id,
        ),
        (
            student.id,
            discord.Permissions(everyone),
            [guild.id],
            helpers.id,
            discord.Permissions(manage_messages=True),
            "Member",
            moderator.id,
            logs.id,
        ),
    ]
    resolved = ix.data["resolved"]
    member_fields = set(resolved["members"][str(student.id)])
    assert member_fields == {"roles", "joined_at", "flags", "permissions"}
    assert resolved["channels"][str(logs.id)]["permissions"] == str(
        guild.permissions_in(moderator.id, logs)
    )
    assert resolved["roles"][str(helpers.id)]["name"] == "helpers"
