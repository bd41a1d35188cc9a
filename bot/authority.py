"""Who is asking, as the moderators' rules see it: a Discord interaction's member turned into a
Privilege (bot.logic.privileges), with the server's own roles."""

from __future__ import annotations

from typing import Any

import discord

from bot.guild_settings import GuildSettingsStore
from bot.logic.privileges import Member, Privilege, privilege
from fathom.admin import Actor
from fathom.settings import Settings


async def privilege_of(
    interaction: discord.Interaction[Any], store: GuildSettingsStore, settings: Settings
) -> Privilege:
    """The privilege of the interaction's user in the interaction's server (outside a server
    only operators have any)."""
    user = interaction.user
    guild_id = interaction.guild_id
    if guild_id is None or not isinstance(user, discord.Member):
        operator = user.id in settings.operator_ids
        return Privilege.OPERATOR if operator else Privilege.NONE
    chosen = await store.get(guild_id)
    permissions = interaction.permissions
    guild = interaction.guild
    member = Member(
        user_id=user.id,
        role_ids=frozenset(role.id for role in user.roles),
        manage_guild=permissions.manage_guild or permissions.administrator,
        is_owner=guild is not None and guild.owner_id == user.id,
    )
    return privilege(
        member,
        operators=settings.operator_ids,
        admin_role_id=chosen.admin_role_id,
        moderator_role_id=chosen.moderator_role_id,
    )


def actor_of(interaction: discord.Interaction[Any]) -> Actor:
    user = interaction.user
    return Actor(kind="discord", name=user.display_name, user_id=user.id)
