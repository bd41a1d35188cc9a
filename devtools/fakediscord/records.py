"""What the fake Discord knows and remembers: users, guilds, channels, messages, interactions.

Records are plain dataclasses that tests read directly. Every payload sent to the client is built
by a `to_payload`-style function typed with discord.py's own `discord.types` TypedDicts, so mypy
checks the wire shapes against the library that parses them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import discord

if TYPE_CHECKING:
    from discord.types.appinfo import AppInfo
    from discord.types.channel import (
        DMChannel as DMChannelPayload,
    )
    from discord.types.channel import (
        GuildChannel as GuildChannelPayload,
    )
    from discord.types.channel import InteractionDMChannel
    from discord.types.channel import (
        PermissionOverwrite as PermissionOverwritePayload,
    )
    from discord.types.channel import (
        TextChannel as TextChannelPayload,
    )
    from discord.types.channel import (
        ThreadChannel as ThreadChannelPayload,
    )
    from discord.types.command import (
        ApplicationCommandPermissions,
        GuildApplicationCommandPermissions,
    )
    from discord.types.guild import Guild as GuildPayload
    from discord.types.interactions import PartialChannel, PartialThread
    from discord.types.member import Member, MemberWithUser
    from discord.types.message import Attachment as AttachmentPayload
    from discord.types.message import MessageReference as MessageReferencePayload
    from discord.types.role import Role as RolePayload
    from discord.types.threads import Thread as ThreadPayload
    from discord.types.threads import ThreadArchiveDuration, ThreadMetadata, ThreadType
    from discord.types.user import PartialUser as PartialUserPayload
    from discord.types.user import User as UserPayload

JSON = dict[str, Any]


class ResolvedMember(TypedDict, total=False):
    """A member in an interaction's resolved data (discord.py's Member type requires deaf and
    mute, which Discord leaves out there)."""

    roles: list[str]
    joined_at: str | None
    flags: int
    nick: str
    permissions: str


DISCORD_EPOCH_MS = 1420070400000
_increment = itertools.count()


def new_snowflake() -> int:
    """A snowflake like Discord's: milliseconds since the Discord epoch, then a counter."""
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (next(_increment) & 0x3FFFFF)


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


# Channel types (discord.ChannelType values) the fake models.
GUILD_TEXT: Literal[0] = 0
DM: Literal[1] = 1
PUBLIC_THREAD: Literal[11] = 11
PRIVATE_THREAD: Literal[12] = 12
THREAD_TYPES = (10, 11, 12)

# Message flags and types.
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
MESSAGE_DEFAULT: Literal[0] = 0
MESSAGE_REPLY: Literal[19] = 19
MESSAGE_CHAT_INPUT_COMMAND: Literal[20] = 20
MESSAGE_CONTEXT_MENU_COMMAND: Literal[23] = 23

# Application command permission overwrite types.
COMMAND_ROLE: Literal[1] = 1
COMMAND_USER: Literal[2] = 2
COMMAND_CHANNEL: Literal[3] = 3

DEFAULT_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    read_message_history=True,
    add_reactions=True,
    attach_files=True,
    embed_links=True,
    use_application_commands=True,
    use_external_emojis=True,
)
DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS | discord.Permissions(
    manage_threads=True, manage_messages=True, create_private_threads=True
)


@dataclass
class UserRecord:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    accepts_dms: bool = True
    """False: the bot's DMs to this user fail with 50007 (privacy settings, blocked bot)."""

    def to_payload(self) -> UserPayload:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "avatar": None,
            "global_name": self.global_name,
            "bot": self.bot,
            "public_flags": 0,
        }

    def to_partial(self) -> PartialUserPayload:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "avatar": None,
            "global_name": self.global_name,
        }

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class RoleRecord:
    id: int
    name: str
    permissions: int
    position: int = 0

    def to_payload(self) -> RolePayload:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": False,
            "mentionable": True,
            "flags": 0,
        }


@dataclass
class MemberRecord:
    user: UserRecord
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)

    def to_member(self, *, with_user: bool = True) -> Member:
        """The member object of GUILD_CREATE (with user) or of a message (without)."""
        payload: Member = {
            "roles": [str(r) for r in self.role_ids],
            "joined_at": self.joined_at,
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
        if with_user:
            payload["user"] = self.user.to_payload()
        if self.nick is not None:
            payload["nick"] = self.nick
        return payload

    def to_resolved(self, permissions: int) -> ResolvedMember:
        """The member in an interaction's resolved data: no user, deaf or mute, and the
        member's permissions in the interaction's channel."""
        payload: ResolvedMember = {
            "roles": [str(r) for r in self.role_ids],
            "joined_at": self.joined_at,
            "flags": 0,
            "permissions": str(permissions),
        }
        if self.nick is not None:
            payload["nick"] = self.nick
        return payload

    def to_payload(self, permissions: int | None = None) -> MemberWithUser:
        payload: MemberWithUser = {
            "user": self.user.to_payload(),
            "roles": [str(r) for r in self.role_ids],
            "joined_at": self.joined_at,
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
        if self.nick is not None:
            payload["nick"] = self.nick
        if permissions is not None:
            payload["permissions"] = str(permissions)
        return payload


@dataclass
class Overwrite:
    """A channel permission overwrite for a role (type 0) or a member (type 1)."""

    id: int
    type: Literal[0, 1]
    allow: int = 0
    deny: int = 0

    def to_payload(self) -> PermissionOverwritePayload:
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(self.allow),
            "deny": str(self.deny),
        }


@dataclass(frozen=True)
class CommandPermission:
    """One application command permission overwrite in a guild: a role (type 1; the guild's
    id for @everyone), a member (2) or a channel (3; the guild's id - 1 for all channels)
    allowed or denied the command."""

    id: int
    type: Literal[1, 2, 3]
    permission: bool

    def to_payload(self) -> ApplicationCommandPermissions:
        return {"id": str(self.id), "type": self.type, "permission": self.permission}


@dataclass
class AttachmentRecord:
    id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    def to_payload(self) -> AttachmentPayload:
        payload: AttachmentPayload = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
        }
        if self.content_type is not None:
            payload["content_type"] = self.content_type
        if self.description is not None:
            payload["description"] = self.description
        if self.ephemeral:
            payload["ephemeral"] = True
        return payload


@dataclass(frozen=True)
class Revision:
    """A message as it was after one create or edit, for asserting on edit histories."""

    at: float
    content: str
    embeds: list[JSON]
    components: list[JSON]
    attachment_names: list[str]
    flags: int


@dataclass
class MessageRecord:
    id: int
    channel_id: int
    guild_id: int | None
    author: UserRecord
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[AttachmentRecord] = field(default_factory=list)
    flags: int = 0
    type: int = MESSAGE_DEFAULT
    tts: bool = False
    allowed_mentions: JSON | None = None
    """The allowed_mentions object the sender sent (None: none sent, Discord's default applies)."""
    mentioned_user_ids: list[int] = field(default_factory=list)
    """Users the message actually pings after allowed_mentions was applied."""
    mentioned_role_ids: list[int] = field(default_factory=list)
    mentions_everyone: bool = False
    reference: JSON | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_name: str | None = None
    interaction_user: UserRecord | None = None
    thread_id: int | None = None
    """The thread started from this message, if any."""
    nonce: str | int | None = None
    created_at: float = field(default_factory=time.monotonic)
    timestamp: str = field(default_factory=iso_now)
    edited_timestamp: str | None = None
    deleted: bool = False
    revisions: list[Revision] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    @property
    def edits(self) -> list[Revision]:
        """Revisions after the first one (the creation)."""
        return self.revisions[1:]

    @property
    def pings_anyone(self) -> bool:
        return bool(self.mentioned_user_ids or self.mentioned_role_ids or self.mentions_everyone)

    def file(self, filename: str) -> AttachmentRecord:
        for attachment in self.attachments:
            if attachment.filename == filename:
                return attachment
        raise KeyError(f"message {self.id} has no attachment {filename!r}")

    def custom_ids(self) -> list[str]:
        """custom_id of every button or select in the message, at any nesting depth."""
        return [str(c["custom_id"]) for c in iter_components(self.components) if "custom_id" in c]

    def snapshot(self) -> None:
        self.revisions.append(
            Revision(
                at=time.monotonic(),
                content=self.content,
                embeds=list(self.embeds),
                components=list(self.components),
                attachment_names=[a.filename for a in self.attachments],
                flags=self.flags,
            )
        )


def iter_components(components: list[JSON]) -> list[JSON]:
    """Flatten action rows, containers and sections (components v1 and v2)."""
    found: list[JSON] = []
    for component in components:
        found.append(component)
        children = component.get("components")
        if isinstance(children, list):
            found.extend(iter_components(children))
        accessory = component.get("accessory")
        if isinstance(accessory, dict):
            found.append(accessory)
    return found


@dataclass
class ChannelRecord:
    id: int
    type: int
    name: str
    guild_id: int | None = None
    parent_id: int | None = None
    position: int = 0
    overwrites: list[Overwrite] = field(default_factory=list)
    recipient: UserRecord | None = None
    """The other user of a DM channel."""
    # Thread fields.
    owner_id: int | None = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: ThreadArchiveDuration = 1440
    rate_limit_per_user: int = 0
    invitable: bool = True
    member_ids: set[int] = field(default_factory=set)
    messages: list[MessageRecord] = field(default_factory=list)
    created_timestamp: str = field(default_factory=iso_now)

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    @property
    def is_dm(self) -> bool:
        return self.type == DM

    @property
    def last_message_id(self) -> str | None:
        return str(self.messages[-1].id) if self.messages else None

    @property
    def live_messages(self) -> list[MessageRecord]:
        return [m for m in self.messages if not m.deleted]

    def text_channel_payload(self) -> TextChannelPayload:
        assert self.guild_id is not None
        return {
            "id": str(self.id),
            "type": GUILD_TEXT,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [o.to_payload() for o in self.overwrites],
            "nsfw": False,
            "parent_id": None if self.parent_id is None else str(self.parent_id),
            "topic": "",
            "last_message_id": self.last_message_id,
            "rate_limit_per_user": self.rate_limit_per_user,
        }

    def thread_metadata(self) -> ThreadMetadata:
        return {
            "archived": self.archived,
            "auto_archive_duration": self.auto_archive_duration,
            "archive_timestamp": self.created_timestamp,
            "locked": self.locked,
            "invitable": self.invitable,
            "create_timestamp": self.created_timestamp,
        }

    def thread_type(self) -> ThreadType:
        return PRIVATE_THREAD if self.type == PRIVATE_THREAD else PUBLIC_THREAD

    def thread_payload(self) -> ThreadPayload:
        assert self.guild_id is not None
        assert self.parent_id is not None
        assert self.owner_id is not None
        live = len(self.live_messages)
        return {
            "id": str(self.id),
            "guild_id": str(self.guild_id),
            "parent_id": str(self.parent_id),
            "owner_id": str(self.owner_id),
            "name": self.name,
            "type": self.thread_type(),
            "member_count": min(len(self.member_ids), 50),
            "message_count": live,
            "total_message_sent": len(self.messages),
            "rate_limit_per_user": self.rate_limit_per_user,
            "thread_metadata": self.thread_metadata(),
            "last_message_id": self.last_message_id,
            "flags": 0,
        }

    def thread_channel_payload(self) -> ThreadChannelPayload:
        assert self.guild_id is not None
        assert self.parent_id is not None
        assert self.owner_id is not None
        return {
            "id": str(self.id),
            "type": self.thread_type(),
            "name": self.name,
            "guild_id": str(self.guild_id),
            "parent_id": str(self.parent_id),
            "owner_id": str(self.owner_id),
            "nsfw": False,
            "last_message_id": self.last_message_id,
            "rate_limit_per_user": self.rate_limit_per_user,
            "message_count": len(self.live_messages),
            "member_count": min(len(self.member_ids), 50),
            "total_message_sent": len(self.messages),
            "thread_metadata": self.thread_metadata(),
        }

    def resolved_payload(self, permissions: int) -> PartialChannel | PartialThread:
        """The channel as an interaction's resolved data has it, with the invoker's permissions."""
        if self.is_thread:
            assert self.parent_id is not None
            assert self.owner_id is not None
            return {
                "id": str(self.id),
                "name": self.name,
                "permissions": str(permissions),
                "type": self.thread_type(),
                "thread_metadata": self.thread_metadata(),
                "parent_id": str(self.parent_id),
                "owner_id": str(self.owner_id),
                "message_count": len(self.live_messages),
                "member_count": min(len(self.member_ids), 50),
                "rate_limit_per_user": self.rate_limit_per_user,
                "last_message_id": self.last_message_id,
                "flags": 0,
                "total_message_sent": len(self.messages),
            }
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(permissions),
            "type": GUILD_TEXT,
            "topic": "",
            "position": self.position,
            "nsfw": False,
            "flags": 0,
            "rate_limit_per_user": self.rate_limit_per_user,
            "parent_id": None if self.parent_id is None else str(self.parent_id),
            "last_message_id": self.last_message_id,
        }

    def guild_channel_payload(self) -> GuildChannelPayload:
        return self.thread_channel_payload() if self.is_thread else self.text_channel_payload()

    def interaction_dm_payload(self) -> InteractionDMChannel:
        payload: InteractionDMChannel = {
            "id": str(self.id),
            "type": DM,
            "name": "",
            "last_message_id": self.last_message_id,
        }
        if self.recipient is not None:
            payload["recipients"] = [self.recipient.to_partial()]
        return payload

    def dm_payload(self) -> DMChannelPayload:
        assert self.recipient is not None
        return {
            "id": str(self.id),
            "type": DM,
            "name": "",
            "last_message_id": self.last_message_id,
            "recipients": [self.recipient.to_partial()],
        }


@dataclass
class GuildRecord:
    id: int
    name: str
    owner_id: int
    roles: dict[int, RoleRecord] = field(default_factory=dict)
    members: dict[int, MemberRecord] = field(default_factory=dict)
    channels: dict[int, ChannelRecord] = field(default_factory=dict)
    """Text channels and threads of the guild, by id."""
    locale: str = "en-US"
    unavailable: bool = False
    command_permissions: dict[int, list[CommandPermission]] = field(default_factory=dict)
    """Overwrites an admin set for a command (by command id) in Server Settings → Integrations."""

    @property
    def everyone_role(self) -> RoleRecord:
        return self.roles[self.id]

    def base_permissions(self, user_id: int) -> int:
        """Guild-level permissions of a member: Discord's algorithm before channel overwrites."""
        if user_id == self.owner_id:
            return discord.Permissions.all().value
        member = self.members.get(user_id)
        if member is None:
            return 0
        value = self.everyone_role.permissions
        for role_id in member.role_ids:
            role = self.roles.get(role_id)
            if role is not None:
                value |= role.permissions
        if value & discord.Permissions(administrator=True).value:
            return discord.Permissions.all().value
        return value

    def permissions_in(self, user_id: int, channel: ChannelRecord) -> int:
        """Permissions of a member in a channel (threads use their parent's overwrites)."""
        value = self.base_permissions(user_id)
        if value & discord.Permissions(administrator=True).value:
            return value
        if channel.is_thread and channel.parent_id is not None:
            channel = self.channels[channel.parent_id]
        member = self.members.get(user_id)
        role_ids = set(member.role_ids) if member else set()
        everyone = [o for o in channel.overwrites if o.type == 0 and o.id == self.id]
        roles = [o for o in channel.overwrites if o.type == 0 and o.id in role_ids]
        own = [o for o in channel.overwrites if o.type == 1 and o.id == user_id]
        for overwrites in (everyone, roles, own):
            deny = allow = 0
            for overwrite in overwrites:
                deny |= overwrite.deny
                allow |= overwrite.allow
            value = (value & ~deny) | allow
        return value

    def command_permissions_payload(
        self, command_id: int, application_id: int
    ) -> GuildApplicationCommandPermissions:
        return {
            "id": str(command_id),
            "application_id": str(application_id),
            "guild_id": str(self.id),
            "permissions": [p.to_payload() for p in self.command_permissions.get(command_id, [])],
        }

    def to_payload(self) -> GuildPayload:
        text_channels = [c for c in self.channels.values() if not c.is_thread]
        threads = [c for c in self.channels.values() if c.is_thread and not c.archived]
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "emojis": [],
            "stickers": [],
            "features": [],
            "description": None,
            "incidents_data": None,
            "owner_id": str(self.owner_id),
            "region": "",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [r.to_payload() for r in self.roles.values()],
            "mfa_level": 0,
            "nsfw_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "banner": None,
            "premium_tier": 0,
            "preferred_locale": self.locale,
            "public_updates_channel_id": None,
            "stage_instances": [],
            "guild_scheduled_events": [],
            "joined_at": iso_now(),
            "large": len(self.members) > 250,
            "unavailable": False,
            "member_count": len(self.members),
            "members": [m.to_member() for m in self.members.values()],
            "channels": [c.text_channel_payload() for c in text_channels],
            "threads": [t.thread_payload() for t in threads],
            "voice_states": [],
            "presences": [],
        }


class CallbackRecord(TypedDict):
    """One POST /interactions/{id}/{token}/callback the client made."""

    type: int
    data: JSON | None
    at: float
    """Seconds after the interaction was dispatched."""
    status: int


@dataclass
class InteractionRecord:
    """An interaction the fake sent, and everything the client answered to it."""

    id: int
    token: str
    type: int
    data: JSON
    user: UserRecord
    channel: ChannelRecord
    guild: GuildRecord | None
    dispatched_at: float
    callbacks: list[CallbackRecord] = field(default_factory=list)
    """Every callback attempt, including rejected late or duplicate ones."""
    original: MessageRecord | None = None
    """The original response message (from a type 4 or 5 callback)."""
    followups: list[MessageRecord] = field(default_factory=list)
    modal: JSON | None = None
    """The modal the client opened (callback type 9)."""
    source_message: MessageRecord | None = None
    """For component interactions, the message whose component was used."""

    @property
    def acknowledged(self) -> CallbackRecord | None:
        """The accepted callback, if any."""
        for callback in self.callbacks:
            if callback["status"] < 300:
                return callback
        return None

    @property
    def deferred(self) -> bool:
        ack = self.acknowledged
        return ack is not None and ack["type"] in (5, 6)

    @property
    def ack_latency(self) -> float | None:
        ack = self.acknowledged
        return None if ack is None else ack["at"]

    @property
    def response_message_type(self) -> int:
        """The type of the messages answering it: a context menu's (user or message command)
        or a slash command's."""
        if self.type == 2 and self.data.get("type") in (2, 3):
            return MESSAGE_CONTEXT_MENU_COMMAND
        return MESSAGE_CHAT_INPUT_COMMAND

    @property
    def responses(self) -> list[MessageRecord]:
        """The original response (if any) and then every followup, in order."""
        return ([self.original] if self.original else []) + self.followups


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the client made to the fake."""

    method: str
    path: str
    route: str
    """The route template, e.g. 'POST /channels/{channel_id}/messages'."""
    status: int
    at: float
    """time.monotonic() when it arrived."""
    query: dict[str, str]
    body: JSON | None
    files: tuple[str, ...]
    injected: bool = False
    """True when the response was a fault injected by the test (fail_next)."""

    @property
    def rate_limited(self) -> bool:
        return self.status == 429


def message_reference_payload(reference: JSON) -> MessageReferencePayload:
    payload: MessageReferencePayload = {"channel_id": str(reference["channel_id"])}
    if reference.get("message_id") is not None:
        payload["message_id"] = str(reference["message_id"])
    if reference.get("guild_id") is not None:
        payload["guild_id"] = str(reference["guild_id"])
    payload["type"] = 0
    return payload


def app_info_payload(app_id: int, bot: UserRecord, owner: UserRecord, flags: int = 0) -> AppInfo:
    return {
        "id": str(app_id),
        "name": bot.username,
        "verify_key": "0" * 64,
        "icon": None,
        "summary": "",
        "description": "A fake application for tests",
        "flags": flags,
        "owner": owner.to_payload(),
        "bot_public": True,
        "bot_require_code_grant": False,
        "interactions_endpoint_url": None,
    }
