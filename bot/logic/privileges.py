"""Who may steer the queue. Discord's `default_permissions` on a command is only a hint that a
server's admins can override (and it is ignored on subcommands), so the bot decides on every
call itself, in Red-DiscordBot's order: operator > server owner > Manage Server or the admin
role > the moderator role. Pure."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import IntEnum

from bot.i18n import N_


class Privilege(IntEnum):
    NONE = 0
    MODERATOR = 1
    ADMIN = 2
    OWNER = 3
    OPERATOR = 4


@dataclass(frozen=True, slots=True)
class Member:
    """What the decision needs to know of the member who asks."""

    user_id: int
    role_ids: frozenset[int]
    manage_guild: bool
    """Manage Server (or Administrator) in the server."""
    is_owner: bool


def privilege(
    member: Member,
    *,
    operators: Collection[int],
    admin_role_id: int | None,
    moderator_role_id: int | None,
) -> Privilege:
    if member.user_id in operators:
        return Privilege.OPERATOR
    if member.is_owner:
        return Privilege.OWNER
    if member.manage_guild or (admin_role_id is not None and admin_role_id in member.role_ids):
        return Privilege.ADMIN
    if moderator_role_id is not None and moderator_role_id in member.role_ids:
        return Privilege.MODERATOR
    return Privilege.NONE


REFUSALS = {
    Privilege.MODERATOR: N_(
        "Only this server's moderators can do this (Manage Server, or the moderator role set "
        "with `/fathom-settings`)."
    ),
    Privilege.ADMIN: N_(
        "Only this server's admins (Manage Server, or the admin role) can do this."
    ),
    Privilege.OPERATOR: N_("Only the bot's operators can do this."),
}
"""Translated where they are sent."""
