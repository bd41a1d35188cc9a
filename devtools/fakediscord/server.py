"""The fake Discord: REST v10 and the gateway WebSocket on loopback, plus the test-facing API.

Runs in the test's event loop (aiohttp.web on 127.0.0.1, a free port). The real discord.py client
is pointed at it through `discord.http.Route.BASE` and `DiscordWebSocket.DEFAULT_GATEWAY`
(see `point_discord_py`), or through FATHOM_DISCORD_API_URL / FATHOM_DISCORD_GATEWAY_URL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

from devtools.fakediscord import gateway as gw
from devtools.fakediscord.errors import DiscordError
from devtools.fakediscord.ratelimit import Injection, RateLimiter, too_many_requests_headers
from devtools.fakediscord.records import (
    COMMAND_CHANNEL,
    COMMAND_ROLE,
    COMMAND_USER,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    DM,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    GUILD_TEXT,
    JSON,
    MESSAGE_DEFAULT,
    MESSAGE_REPLY,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    AttachmentRecord,
    CallbackRecord,
    ChannelRecord,
    CommandPermission,
    GuildRecord,
    InteractionRecord,
    MemberRecord,
    MessageRecord,
    Overwrite,
    RequestRecord,
    RoleRecord,
    UserRecord,
    app_info_payload,
    iso_now,
    iter_components,
    message_reference_payload,
    new_snowflake,
)
from devtools.fakediscord.validation import (
    FLAG_IS_COMPONENTS_V2,
    FLAG_SUPPRESS_EMBEDS,
    MAX_CONTENT,
    MAX_USER_CONTENT,
    STRING_SELECT,
    sendable_flags,
    validate_message,
)

if TYPE_CHECKING:
    from discord.types.command import ApplicationCommand
    from discord.types.gateway import GatewayBot, GuildMembersChunkEvent, ReadyEvent
    from discord.types.interactions import (
        ApplicationCommandInteraction,
        InteractionCallback,
        ResolvedData,
    )
    from discord.types.member import Member, MemberWithUser, UserWithMember
    from discord.types.message import Message as MessagePayload
    from discord.types.user import User as UserPayload

    class ApplicationCommandInteractionEvent(ApplicationCommandInteraction, total=False):
        """INTERACTION_CREATE as sent (discord.py's TypedDict lacks the invoker fields)."""

        member: MemberWithUser
        user: UserPayload


API_PREFIX = "/api/v10"
DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024
MAX_THREAD_NAME = 100
POLL_INTERVAL = 0.05
USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
EVERYONE_MENTION = re.compile(r"@(everyone|here)")
BUTTON = 2
VIEW_CHANNEL = discord.Permissions(view_channel=True).value
ADMINISTRATOR = discord.Permissions(administrator=True).value
USE_APPLICATION_COMMANDS = discord.Permissions(use_application_commands=True).value
MAX_COMMAND_OVERWRITES = 100

T = TypeVar("T")
# The middleware reads each body once (JSON or multipart) and hands it to the handlers.
BODY_KEY = web.RequestKey[Any]("fake_discord_body")
UPLOADS_KEY = web.RequestKey[Mapping[int, "Upload"]]("fake_discord_uploads")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Upload:
    """A file a simulated user attaches, or one the client uploaded."""

    filename: str
    data: bytes
    content_type: str | None = None


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    # Exactly "application/json": discord.py does not parse JSON sent with a charset parameter.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


NONCE_WINDOW_S = 300.0
"""How long Discord remembers a message's nonce for `enforce_nonce` ("a few minutes")."""

APPLICATION_INTENT_FLAGS = {
    gw.GUILD_PRESENCES: 1 << 13,  # GATEWAY_PRESENCE_LIMITED
    gw.GUILD_MEMBERS: 1 << 15,  # GATEWAY_GUILD_MEMBERS_LIMITED
    gw.MESSAGE_CONTENT: 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
}
"""The application's flags for the privileged intents ticked in the developer portal, as
Discord sets them for an app in fewer than 100 servers (the `_LIMITED` ones)."""


class FakeDiscord:
    """A Discord for one test: world state, the servers, recordings and the test's controls."""

    def __init__(
        self,
        *,
        bot_name: str = "Fathom",
        interaction_deadline: float = 3.0,
        interaction_token_ttl: float = 15 * 60.0,
        heartbeat_interval_ms: int = 41_250,
        rate_limits: bool = True,
        shard_count: int = 1,
        attachment_size_limit: int = DEFAULT_ATTACHMENT_LIMIT,
        compress: bool = True,
    ) -> None:
        self.interaction_deadline = interaction_deadline
        self.interaction_token_ttl = interaction_token_ttl
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.shard_count = shard_count
        self.attachment_size_limit = attachment_size_limit
        self.compress = compress
        self.limiter = RateLimiter(enabled=rate_limits)
        self.privileged_intents_enabled = gw.PRIVILEGED_INTENTS
        """Privileged intents ticked in the developer portal; asking for others closes 4014."""
        self.nonce_hits = 0
        """Bot messages not created again because their nonce was recent (enforce_nonce)."""
        self.after_bot_message: Callable[[MessageRecord], Awaitable[None]] | None = None
        """Called once a bot message is stored, before the answer goes back (a test can crash
        the bot there: the message exists, but the bot never learns it was sent)."""

        self.application_id = new_snowflake()
        self.bot_user = UserRecord(self.application_id, bot_name, bot_name, bot=True)
        self.owner = UserRecord(new_snowflake(), "app-owner")
        encoded_id = base64.b64encode(str(self.bot_user.id).encode()).decode().rstrip("=")
        self.token = f"{encoded_id}.fake.{secrets.token_urlsafe(27)}"

        self.users: dict[int, UserRecord] = {self.bot_user.id: self.bot_user}
        self.guilds: dict[int, GuildRecord] = {}
        self.channels: dict[int, ChannelRecord] = {}
        self.messages: dict[int, MessageRecord] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self._by_token: dict[str, InteractionRecord] = {}
        self.global_commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = {}
        self.requests: list[RequestRecord] = []
        self.sessions: dict[str, gw.Session] = {}
        self.identify_count = 0
        self.reactions: list[tuple[int, str, int]] = []
        """(message id, emoji, user id) for every reaction added."""
        self.typing: list[tuple[int, float]] = []

        self._waiters: list[asyncio.Future[None]] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._pumps: set[asyncio.Task[None]] = set()
        self._sockets: set[web.WebSocketResponse] = set()

    # ----------------------------------------------------------------- lifecycle and URLs

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """The REST base, e.g. http://127.0.0.1:PORT/api/v10 (discord.http.Route.BASE)."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/"

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001)
        for task in list(self._pumps):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextlib.contextmanager
    def point_discord_py(self) -> Iterator[None]:
        """Point discord.py's REST base and gateway at this fake for the duration."""
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    def env(self) -> dict[str, str]:
        """Environment for a bot process: where Discord is and the token."""
        return {
            "FATHOM_DISCORD_API_URL": self.api_url,
            "FATHOM_DISCORD_GATEWAY_URL": self.gateway_url,
            "FATHOM_DISCORD_TOKEN": self.token,
        }

    # ----------------------------------------------------------------- building the world

    def create_user(self, username: str, *, global_name: str | None = None) -> UserRecord:
        user = UserRecord(new_snowflake(), username, global_name)
        self.users[user.id] = user
        return user

    def create_guild(
        self,
        name: str = "Study Server",
        *,
        owner: UserRecord | None = None,
        bot_permissions: discord.Permissions = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: discord.Permissions = DEFAULT_EVERYONE_PERMISSIONS,
    ) -> GuildRecord:
        """A guild the bot is in, with an @everyone role and a role for the bot.

        Created before the client connects, it arrives in GUILD_CREATE after READY; created
        later, it is sent as a GUILD_CREATE (a join) right away.
        """
        owner = owner or self.create_user(f"{name}-owner")
        guild = GuildRecord(new_snowflake(), name, owner.id)
        guild.roles[guild.id] = RoleRecord(guild.id, "@everyone", everyone_permissions.value)
        bot_role = RoleRecord(new_snowflake(), self.bot_user.username, bot_permissions.value, 1)
        guild.roles[bot_role.id] = bot_role
        guild.members[owner.id] = MemberRecord(owner)
        guild.members[self.bot_user.id] = MemberRecord(self.bot_user, [bot_role.id])
        self.guilds[guild.id] = guild
        self._dispatch_guild_create(guild)
        return guild

    def create_role(
        self, guild: GuildRecord, name: str, permissions: discord.Permissions
    ) -> RoleRecord:
        role = RoleRecord(new_snowflake(), name, permissions.value, len(guild.roles))
        guild.roles[role.id] = role
        self._dispatch_guild(
            guild,
            "GUILD_ROLE_CREATE",
            gw.GUILDS,
            lambda: {"guild_id": str(guild.id), "role": role.to_payload()},
        )
        return role

    def add_member(
        self, guild: GuildRecord, user: UserRecord, *, roles: Sequence[RoleRecord] = ()
    ) -> MemberRecord:
        member = MemberRecord(user, [r.id for r in roles])
        guild.members[user.id] = member
        self._dispatch_guild(
            guild,
            "GUILD_MEMBER_ADD",
            gw.GUILD_MEMBERS,
            lambda: {**member.to_payload(), "guild_id": str(guild.id)},
        )
        return member

    def create_text_channel(
        self, guild: GuildRecord, name: str = "math", *, overwrites: Sequence[Overwrite] = ()
    ) -> ChannelRecord:
        channel = ChannelRecord(
            new_snowflake(), GUILD_TEXT, name, guild.id, position=len(guild.channels)
        )
        channel.overwrites = list(overwrites)
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        self._dispatch_guild(
            guild, "CHANNEL_CREATE", gw.GUILDS, lambda: channel.text_channel_payload()
        )
        return channel

    def dm_channel(self, user: UserRecord) -> ChannelRecord:
        """The DM channel between a user and the bot (created on first use, as on Discord)."""
        for channel in self.channels.values():
            if channel.is_dm and channel.recipient is not None and channel.recipient.id == user.id:
                return channel
        channel = ChannelRecord(new_snowflake(), DM, "", recipient=user)
        self.channels[channel.id] = channel
        return channel

    def threads_of(self, channel: ChannelRecord) -> list[ChannelRecord]:
        return [c for c in self.channels.values() if c.is_thread and c.parent_id == channel.id]

    # ----------------------------------------------------------------- observing

    def channel_messages(
        self, channel: ChannelRecord | int, *, include_ephemeral: bool = True
    ) -> list[MessageRecord]:
        """Live (not deleted) messages of a channel or thread, oldest first."""
        record = self.channels[channel if isinstance(channel, int) else channel.id]
        return [m for m in record.live_messages if include_ephemeral or not m.ephemeral]

    def bot_messages(self, channel: ChannelRecord | int) -> list[MessageRecord]:
        return [m for m in self.channel_messages(channel) if m.author.id == self.bot_user.id]

    def requests_to(self, method: str, route: str) -> list[RequestRecord]:
        """Requests matching a method and a route template ("*" matches any)."""
        return [
            r
            for r in self.requests
            if method in (r.method, "*") and (route == "*" or r.route == route)
        ]

    @property
    def self_inflicted_429s(self) -> int:
        """429s the client earned by exceeding a (fake) Discord limit; injected ones excluded."""
        return self.limiter.self_inflicted_429s

    @property
    def injected_429s(self) -> int:
        return self.limiter.injected_429s

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109
        what: str = "",
    ) -> T:
        """Wait until predicate() returns something truthy, re-checked after every change."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    result = predicate()
                    if result:
                        return result
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiters.append(waiter)
                    # Also poll: predicates may read the client's state, which the fake
                    # does not see change.
                    await asyncio.wait({waiter}, timeout=POLL_INTERVAL)
        except TimeoutError:
            recent = ", ".join(f"{r.method} {r.path} {r.status}" for r in self.requests[-8:])
            raise TimeoutError(
                f"fake Discord: waited {timeout}s for {what or predicate!r}; "
                f"last requests: {recent or 'none'}"
            ) from None

    async def wait_for_ack(
        self,
        interaction: InteractionRecord,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> CallbackRecord:
        return await self.wait_for(lambda: interaction.acknowledged, timeout, "an acknowledgement")

    async def wait_for_responses(
        self,
        interaction: InteractionRecord,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[MessageRecord]:
        """Wait until the interaction has `count` response messages that are not loading."""

        def ready() -> list[MessageRecord] | None:
            done = [m for m in interaction.responses if not m.loading and not m.deleted]
            return done if len(done) >= count else None

        return await self.wait_for(ready, timeout, f"{count} response(s) to {interaction.id}")

    async def wait_for_message(
        self,
        channel: ChannelRecord | int,
        predicate: Callable[[MessageRecord], bool] = lambda m: True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> MessageRecord:
        def find() -> MessageRecord | None:
            return next((m for m in self.channel_messages(channel) if predicate(m)), None)

        return await self.wait_for(find, timeout, "a matching message")

    def _changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ----------------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str,
        route: str,
        count: int = 1,
        *,
        retry_after: float = 0.05,
        is_global: bool = False,
        status: int = 429,
    ) -> None:
        """Answer the next `count` requests to `method route` with a 429 (or `status`).

        `route` is a template without the API prefix, e.g.
        "PATCH /channels/{channel_id}/messages/{message_id}" written as method + path; "*" for any.
        """
        self.limiter.injections.append(
            Injection(method, route, count, retry_after, is_global, status)
        )

    async def reconnect_gateway(self, how: str = "reconnect") -> None:
        """Disturb every connected session.

        reconnect: op 7 (the client resumes); close: close code 4000 (the client resumes);
        invalidate: op 9 not resumable (the client identifies again); drop: close and forget the
        sessions (a resume attempt is answered with op 9).
        """
        for session in self.sessions.values():
            connection = session.connection
            if connection is None:
                continue
            if how == "reconnect":
                connection.send({"op": gw.RECONNECT, "d": None})
            elif how == "invalidate":
                session.invalidated = True
                connection.send({"op": gw.INVALID_SESSION, "d": False})
            elif how in ("close", "drop"):
                if how == "drop":
                    session.invalidated = True
                session.connection = None
                connection.outbox.put_nowait(None)
                await connection.ws.close(code=4000)
            else:
                raise ValueError(f"unknown reconnect kind {how!r}")

    @property
    def connected_sessions(self) -> list[gw.Session]:
        return [s for s in self.sessions.values() if s.connection is not None and not s.invalidated]

    async def wait_until_connected(
        self,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until `count` sessions are connected and their GUILD_CREATEs were sent."""
        await self.wait_for(
            lambda: len(self.connected_sessions) >= count, timeout, "gateway sessions"
        )

    # ----------------------------------------------------------------- simulated users

    async def send_message(
        self,
        author: UserRecord,
        channel: ChannelRecord,
        content: str = "",
        *,
        attachments: Sequence[Upload] = (),
        reply_to: MessageRecord | None = None,
        mention_replied: bool = True,
    ) -> MessageRecord:
        """A user posts a message (MESSAGE_CREATE to the bot)."""
        body: JSON = {"content": content}
        if reply_to is not None:
            body["message_reference"] = {
                "message_id": reply_to.id,
                "channel_id": reply_to.channel_id,
            }
            body["allowed_mentions"] = {
                "parse": ["users", "roles", "everyone"],
                "replied_user": mention_replied,
            }
        uploads = [(i, u) for i, u in enumerate(attachments)]
        if uploads:
            body["attachments"] = [{"id": i, "filename": u.filename} for i, u in uploads]
        message = self._create_message(channel, author, body, dict(uploads))
        await asyncio.sleep(0)
        return message

    async def send_dm(
        self,
        author: UserRecord,
        content: str = "",
        *,
        attachments: Sequence[Upload] = (),
        reply_to: MessageRecord | None = None,
    ) -> MessageRecord:
        """A user writes to the bot in their DM channel."""
        return await self.send_message(
            author, self.dm_channel(author), content, attachments=attachments, reply_to=reply_to
        )

    def find_command(self, name: str, *, guild: GuildRecord | None, command_type: int = 1) -> JSON:
        candidates = list(self.guild_commands.get(guild.id, [])) if guild else []
        candidates += self.global_commands
        for command in candidates:
            if command["name"] == name and command.get("type", 1) == command_type:
                return command
        registered = sorted(str(c["name"]) for c in candidates)
        raise LookupError(f"no command {name!r} (type {command_type}) synced; have {registered}")

    def override_command_permissions(
        self,
        guild: GuildRecord,
        command_name: str,
        *,
        everyone: bool | None = None,
        all_channels: bool | None = None,
        allow: Sequence[RoleRecord | UserRecord | ChannelRecord] = (),
        deny: Sequence[RoleRecord | UserRecord | ChannelRecord] = (),
        command_type: int = 1,
    ) -> None:
        """An admin sets who may use one command in this guild (Server Settings → Integrations
        → the app → the command), replacing the command's earlier overwrites there.

        `everyone` is the @everyone toggle and `all_channels` the All Channels one (None: not
        set); `allow` and `deny` name roles, members and channels (a thread follows its parent
        channel). Overwrites that apply to a member decide before the command's
        default_member_permissions; administrators and the owner always have the command.
        Bots cannot do this with their token, so it is the test's: the bot gets
        APPLICATION_COMMAND_PERMISSIONS_UPDATE, as from Discord.
        """
        command = self.find_command(command_name, guild=guild, command_type=command_type)
        overwrites: list[CommandPermission] = []
        if everyone is not None:
            overwrites.append(CommandPermission(guild.id, COMMAND_ROLE, everyone))
        if all_channels is not None:
            overwrites.append(CommandPermission(guild.id - 1, COMMAND_CHANNEL, all_channels))
        for permission, targets in ((True, allow), (False, deny)):
            overwrites += [self._command_overwrite(guild, t, permission) for t in targets]
        if len({(o.id, o.type) for o in overwrites}) != len(overwrites):
            raise ValueError("each role, member or channel takes one overwrite")
        if len(overwrites) > MAX_COMMAND_OVERWRITES:
            raise ValueError(f"a command takes at most {MAX_COMMAND_OVERWRITES} overwrites")
        command_id = int(command["id"])
        guild.command_permissions[command_id] = overwrites
        self._dispatch_guild(
            guild,
            "APPLICATION_COMMAND_PERMISSIONS_UPDATE",
            0,
            lambda: guild.command_permissions_payload(command_id, self.application_id),
        )

    @staticmethod
    def _command_overwrite(
        guild: GuildRecord, target: RoleRecord | UserRecord | ChannelRecord, permission: bool
    ) -> CommandPermission:
        if isinstance(target, RoleRecord) and target.id in guild.roles:
            return CommandPermission(target.id, COMMAND_ROLE, permission)
        if isinstance(target, UserRecord) and target.id in guild.members:
            return CommandPermission(target.id, COMMAND_USER, permission)
        if isinstance(target, ChannelRecord) and target.id in guild.channels:
            if target.is_thread:
                raise ValueError("threads follow their parent channel's command permissions")
            return CommandPermission(target.id, COMMAND_CHANNEL, permission)
        raise ValueError(f"{target!r} is not a role, member or channel of {guild.name!r}")

    async def send_slash_command(
        self,
        name: str,
        *,
        user: UserRecord,
        channel: ChannelRecord,
        options: Mapping[str, Any] | None = None,
        locale: str = "en-US",
        user_installed: bool = False,
    ) -> InteractionRecord:
        """A user runs /name (or "name sub" for a subcommand) with option values by name.

        Values are checked against the synced definition like Discord's client does: unknown
        or missing required options, wrong types, choices and length/value bounds raise.
        Attachment options take an Upload; user options a UserRecord; role options a RoleRecord
        of the server; mentionable options either; channel options a ChannelRecord of the
        server, of the option's channel_types, that the user can see. Users, members, roles
        and channels arrive in data.resolved as Discord sends them.

        PermissionError where the client would not offer the command to the user: a channel
        they do not see, a context or installation the command lacks, or in a guild no
        use_application_commands, or default_member_permissions they lack (subcommands follow
        their top-level command) with no overwrite allowing them (override_command_permissions).
        """
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        top, *subs = name.split()
        command = self.find_command(top, guild=guild)
        self._check_offered(command, user, channel, user_installed)
        resolved: ResolvedData = {}
        definitions: list[JSON] = list(command.get("options") or [])
        built: list[Any] = []
        target = built
        for sub in subs:
            definition = next(
                (o for o in definitions if o["name"] == sub and o["type"] in (1, 2)), None
            )
            if definition is None:
                raise LookupError(f"/{top} has no subcommand {sub!r}")
            entry: JSON = {"name": sub, "type": definition["type"], "options": []}
            target.append(entry)
            target = entry["options"]
            definitions = list(definition.get("options") or [])
        values = dict(options or {})
        target.extend(self._build_options(definitions, values, resolved, user, channel))
        data: JSON = {"id": str(command["id"]), "name": top, "type": 1, "options": built}
        if resolved:
            data["resolved"] = resolved
        if guild is not None and command.get("guild_id"):
            data["guild_id"] = str(guild.id)
        return await self._dispatch_interaction(2, data, user, channel, locale, user_installed)

    async def send_message_command(
        self,
        name: str,
        *,
        user: UserRecord,
        target: MessageRecord,
        locale: str = "en-US",
        user_installed: bool = False,
    ) -> InteractionRecord:
        """A user picks Apps → name on a message (a message context-menu command)."""
        channel = self.channels[target.channel_id]
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        command = self.find_command(name, guild=guild, command_type=3)
        self._check_offered(command, user, channel, user_installed)
        resolved: ResolvedData = {"messages": {str(target.id): self.message_payload(target)}}
        data: JSON = {
            "id": str(command["id"]),
            "name": name,
            "type": 3,
            "target_id": str(target.id),
            "resolved": resolved,
        }
        if guild is not None and command.get("guild_id"):
            data["guild_id"] = str(guild.id)
        return await self._dispatch_interaction(2, data, user, channel, locale, user_installed)

    async def send_user_command(
        self,
        name: str,
        *,
        user: UserRecord,
        target: UserRecord,
        channel: ChannelRecord,
        locale: str = "en-US",
        user_installed: bool = False,
    ) -> InteractionRecord:
        """A user picks Apps → name on a user (a user context-menu command) in a channel."""
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        command = self.find_command(name, guild=guild, command_type=2)
        self._check_offered(command, user, channel, user_installed)
        resolved: ResolvedData = {}
        self._resolve_user(resolved, target, guild, channel)
        data: JSON = {
            "id": str(command["id"]),
            "name": name,
            "type": 2,
            "target_id": str(target.id),
            "resolved": resolved,
        }
        if guild is not None and command.get("guild_id"):
            data["guild_id"] = str(guild.id)
        return await self._dispatch_interaction(2, data, user, channel, locale, user_installed)

    async def click_button(
        self, message: MessageRecord, custom_id: str, *, user: UserRecord, locale: str = "en-US"
    ) -> InteractionRecord:
        """A user clicks the button `custom_id` on a message they can see (it must be enabled)."""
        component = self._usable_component(message, custom_id, user)
        if component.get("type") != BUTTON:
            raise TypeError(f"{custom_id!r} is not a button (component type {component['type']})")
        channel = self.channels[message.channel_id]
        data: JSON = {"custom_id": custom_id, "component_type": BUTTON}
        return await self._dispatch_interaction(3, data, user, channel, locale, False, message)

    async def choose(
        self,
        message: MessageRecord,
        custom_id: str,
        values: Sequence[str],
        *,
        user: UserRecord,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """A user picks `values` (option values) in the string select `custom_id` of a message.

        Checked like Discord's client: the user sees the message, the select is enabled, every
        value is one of its options (each once), and their count is within min_values and
        max_values (both 1 unless the select says otherwise).
        """
        component = self._usable_component(message, custom_id, user)
        if component.get("type") != STRING_SELECT:
            raise TypeError(
                f"{custom_id!r} is not a string select (component type {component['type']})"
            )
        offered = [str(option["value"]) for option in component.get("options") or []]
        chosen = list(values)
        unknown = [v for v in chosen if v not in offered]
        if unknown:
            raise ValueError(f"{unknown} are not options of {custom_id!r}: {offered}")
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"an option can be chosen once: {chosen}")
        low, high = int(component.get("min_values", 1)), int(component.get("max_values", 1))
        if not low <= len(chosen) <= high:
            raise ValueError(f"{custom_id!r} takes {low} to {high} values, not {len(chosen)}")
        channel = self.channels[message.channel_id]
        data: JSON = {"custom_id": custom_id, "component_type": STRING_SELECT, "values": chosen}
        return await self._dispatch_interaction(3, data, user, channel, locale, False, message)

    async def submit_modal(
        self,
        opened_by: InteractionRecord,
        values: Mapping[str, str],
        *,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """The user submits the modal a previous interaction opened, text inputs by custom_id."""
        modal = opened_by.modal
        if modal is None:
            raise LookupError(f"interaction {opened_by.id} opened no modal")
        rows = []
        for component in iter_components(list(modal.get("components", []))):
            if component.get("type") == 4:
                custom_id = str(component["custom_id"])
                text_input = {"type": 4, "custom_id": custom_id, "value": values.get(custom_id, "")}
                rows.append({"type": 1, "components": [text_input]})
        data: JSON = {"custom_id": modal["custom_id"], "components": rows}
        return await self._dispatch_interaction(
            5, data, opened_by.user, opened_by.channel, locale, False, opened_by.source_message
        )

    # ----------------------------------------------------------------- interactions out

    def _check_presence(self, user: UserRecord, channel: ChannelRecord) -> None:
        """Refuse a user acting in a channel their client does not show them."""
        if channel.guild_id is None:
            if channel.recipient is None or channel.recipient.id != user.id:
                raise PermissionError(f"{user.username} is not in DM channel {channel.id}")
            return
        guild = self.guilds[channel.guild_id]
        if user.id not in guild.members:
            raise PermissionError(f"{user.username} is not a member of {guild.name!r}")
        if not guild.permissions_in(user.id, channel) & VIEW_CHANNEL:
            raise PermissionError(f"{user.username} cannot see #{channel.name}")

    def _usable_component(self, message: MessageRecord, custom_id: str, user: UserRecord) -> JSON:
        """The enabled component `custom_id` of a message that `user` sees."""
        if message.deleted:
            raise LookupError(f"message {message.id} was deleted")
        if message.ephemeral and (
            message.interaction_user is None or message.interaction_user.id != user.id
        ):
            raise PermissionError(f"message {message.id} is ephemeral: only its user sees it")
        self._check_presence(user, self.channels[message.channel_id])
        component = next(
            (c for c in iter_components(message.components) if c.get("custom_id") == custom_id),
            None,
        )
        if component is None:
            raise LookupError(
                f"message {message.id} has no component {custom_id!r}: {message.custom_ids()}"
            )
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        return component

    def _check_offered(
        self, command: JSON, user: UserRecord, channel: ChannelRecord, user_installed: bool
    ) -> None:
        """Refuse what Discord's client would not offer this user here: a channel they do not
        see, a command not offered in this context or installation, or (the guild's install,
        in a guild) one the guild's command permissions withhold from them."""
        self._check_presence(user, channel)
        name = command["name"]
        context = 1 if channel.is_dm else 0
        allowed = [0] if command.get("guild_id") else list(command["contexts"])
        if context not in allowed:
            raise PermissionError(f"/{name} is not offered in context {context}")
        needed = 1 if user_installed else 0
        if needed not in command["integration_types"]:
            raise PermissionError(f"/{name} has no installation type {needed}")
        if channel.guild_id is None or user_installed:
            return
        guild = self.guilds[channel.guild_id]
        permissions = guild.permissions_in(user.id, channel)
        if permissions & ADMINISTRATOR:
            return
        if not permissions & USE_APPLICATION_COMMANDS:
            raise PermissionError(f"{user.username} may not use app commands in #{channel.name}")
        offered = self._command_overwrites_allow(guild, int(command["id"]), user, channel)
        if offered is None:
            default = command.get("default_member_permissions")
            required = None if default is None else int(default)
            # "0": nobody but administrators, unless an overwrite allows them.
            offered = required is None or (required != 0 and permissions & required == required)
        if not offered:
            raise PermissionError(f"/{name} is not offered to {user.username} in #{channel.name}")

    @staticmethod
    def _command_overwrites_allow(
        guild: GuildRecord, command_id: int, user: UserRecord, channel: ChannelRecord
    ) -> bool | None:
        """What the command's overwrites in this guild say for a member in a channel: the
        channel's (or All Channels') deny refuses; then the member's own, else any of their
        roles' (an allow wins), else @everyone's. None when none speaks for the member."""
        overwrites = guild.command_permissions.get(command_id, [])
        where = channel.parent_id if channel.is_thread and channel.parent_id else channel.id
        channels = {o.id: o.permission for o in overwrites if o.type == COMMAND_CHANNEL}
        if not channels.get(where, channels.get(guild.id - 1, True)):
            return False
        users = {o.id: o.permission for o in overwrites if o.type == COMMAND_USER}
        if user.id in users:
            return users[user.id]
        role_ids = set(guild.members[user.id].role_ids)
        roles = [o.permission for o in overwrites if o.type == COMMAND_ROLE and o.id in role_ids]
        if roles:
            return any(roles)
        everyone = [o.permission for o in overwrites if o.type == COMMAND_ROLE and o.id == guild.id]
        return everyone[0] if everyone else None

    def _build_options(
        self,
        definitions: list[JSON],
        values: dict[str, Any],
        resolved: ResolvedData,
        user: UserRecord,
        channel: ChannelRecord,
    ) -> list[JSON]:
        unknown = set(values) - {str(d["name"]) for d in definitions}
        if unknown:
            raise LookupError(
                f"unknown options {sorted(unknown)}; defined: {[d['name'] for d in definitions]}"
            )
        built: list[JSON] = []
        for definition in definitions:
            name = str(definition["name"])
            if name not in values:
                if definition.get("required"):
                    raise ValueError(f"option {name!r} is required")
                continue
            value = values[name]
            kind = int(definition["type"])
            built.append(
                {
                    "name": name,
                    "type": kind,
                    "value": self._option_value(definition, kind, value, resolved, user, channel),
                }
            )
        return built

    def _option_value(
        self,
        definition: JSON,
        kind: int,
        value: Any,
        resolved: ResolvedData,
        user: UserRecord,
        channel: ChannelRecord,
    ) -> Any:
        name = definition["name"]
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        choices = definition.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise ValueError(f"{value!r} is not a choice of {name!r}")
        if kind == 3:
            if not isinstance(value, str):
                raise TypeError(f"option {name!r} takes a string")
            if len(value) < int(definition.get("min_length", 0)) or len(value) > int(
                definition.get("max_length", 6000)
            ):
                raise ValueError(f"option {name!r}: length {len(value)} out of bounds")
            return value
        if kind in (4, 10):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"option {name!r} takes a number")
            low, high = definition.get("min_value"), definition.get("max_value")
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"option {name!r}: {value} out of bounds")
            return value
        if kind == 5:
            if not isinstance(value, bool):
                raise TypeError(f"option {name!r} takes a bool")
            return value
        if kind == 6 or (kind == 9 and isinstance(value, UserRecord)):
            if not isinstance(value, UserRecord):
                raise TypeError(f"option {name!r} takes a UserRecord")
            self._resolve_user(resolved, value, guild, channel)
            return str(value.id)
        if kind in (8, 9):
            if not isinstance(value, RoleRecord):
                raise TypeError(f"option {name!r} takes a RoleRecord (or a mentionable UserRecord)")
            if guild is None or value.id not in guild.roles:
                raise ValueError(f"option {name!r}: role {value.name!r} is not in this server")
            resolved.setdefault("roles", {})[str(value.id)] = value.to_payload()
            return str(value.id)
        if kind == 7:
            if not isinstance(value, ChannelRecord):
                raise TypeError(f"option {name!r} takes a ChannelRecord")
            self._resolve_channel(resolved, definition, value, guild, user)
            return str(value.id)
        if kind == 11:
            if not isinstance(value, Upload):
                raise TypeError(f"option {name!r} takes an Upload")
            attachment = self._store_attachment(0, value, ephemeral=True)
            resolved.setdefault("attachments", {})[str(attachment.id)] = attachment.to_payload()
            return str(attachment.id)
        raise TypeError(f"option type {kind} of {name!r} is not supported by the fake")

    @staticmethod
    def _resolve_user(
        resolved: ResolvedData,
        user: UserRecord,
        guild: GuildRecord | None,
        channel: ChannelRecord,
    ) -> None:
        """A user in resolved data: the user, and in a guild also the member (no user, deaf or
        mute; with the member's permissions in the interaction's channel)."""
        resolved.setdefault("users", {})[str(user.id)] = user.to_payload()
        if guild is not None and user.id in guild.members:
            member = guild.members[user.id].to_resolved(guild.permissions_in(user.id, channel))
            resolved.setdefault("members", {})[str(user.id)] = cast("Member", member)

    @staticmethod
    def _resolve_channel(
        resolved: ResolvedData,
        definition: JSON,
        chosen: ChannelRecord,
        guild: GuildRecord | None,
        user: UserRecord,
    ) -> None:
        """Check a channel option like the client's picker (this server's channels of the
        allowed types that the user can see) and add the channel to resolved data."""
        name = definition["name"]
        if guild is None or chosen.guild_id != guild.id:
            raise ValueError(f"option {name!r}: channel {chosen.name!r} is not in this server")
        allowed_types = definition.get("channel_types")
        if allowed_types and chosen.type not in allowed_types:
            raise ValueError(f"option {name!r} takes channel types {allowed_types}")
        permissions = guild.permissions_in(user.id, chosen)
        if not permissions & VIEW_CHANNEL:
            raise ValueError(f"option {name!r}: the user cannot see {chosen.name!r}")
        resolved.setdefault("channels", {})[str(chosen.id)] = chosen.resolved_payload(permissions)

    async def _dispatch_interaction(
        self,
        kind: int,
        data: JSON,
        user: UserRecord,
        channel: ChannelRecord,
        locale: str,
        user_installed: bool,
        source: MessageRecord | None = None,
    ) -> InteractionRecord:
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        interaction = InteractionRecord(
            id=new_snowflake(),
            token="aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48),
            type=kind,
            data=data,
            user=user,
            channel=channel,
            guild=guild,
            dispatched_at=time.monotonic(),
            source_message=source,
        )
        self.interactions[interaction.id] = interaction
        self._by_token[interaction.token] = interaction
        payload = self._interaction_payload(interaction, locale, user_installed)
        self._dispatch(guild.id if guild else None, "INTERACTION_CREATE", 0, payload)
        await asyncio.sleep(0)
        return interaction

    def _interaction_payload(
        self, interaction: InteractionRecord, locale: str, user_installed: bool
    ) -> dict[str, Any]:
        channel, guild, user = interaction.channel, interaction.guild, interaction.user
        owners: dict[str, str] = {}
        if user_installed:
            owners["1"] = str(user.id)
        else:
            owners["0"] = str(guild.id) if guild else "0"
        context: Literal[0, 1]
        if channel.is_dm:
            context = 1
            app_permissions = discord.Permissions(
                view_channel=True,
                send_messages=True,
                read_message_history=True,
                attach_files=True,
                embed_links=True,
                add_reactions=True,
                use_external_emojis=True,
            ).value
        else:
            context = 0
            assert guild is not None
            app_permissions = guild.permissions_in(self.bot_user.id, channel)
        payload: ApplicationCommandInteractionEvent = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": 2,
            "token": interaction.token,
            "version": 1,
            "data": cast(Any, interaction.data),
            "channel_id": str(channel.id),
            "channel": channel.guild_channel_payload()
            if guild
            else channel.interaction_dm_payload(),
            "app_permissions": str(app_permissions),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": cast(Any, owners),
            "context": context,
            "attachment_size_limit": self.attachment_size_limit,
        }
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            payload["guild"] = {"id": str(guild.id), "locale": guild.locale, "features": []}
            payload["guild_locale"] = guild.locale
            member = guild.members.get(user.id) or MemberRecord(user)
            payload["member"] = member.to_payload(guild.permissions_in(user.id, channel))
        else:
            payload["user"] = user.to_payload()
        result: dict[str, Any] = dict(payload)
        result["type"] = interaction.type
        if interaction.source_message is not None:
            result["message"] = self.message_payload(interaction.source_message)
        return result

    # ----------------------------------------------------------------- messages

    def message_payload(self, message: MessageRecord) -> MessagePayload:
        mentions: list[UserWithMember] = [
            cast("UserWithMember", self.users[u].to_payload())
            for u in message.mentioned_user_ids
            if u in self.users
        ]
        payload: MessagePayload = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "author": message.author.to_payload(),
            "content": message.content,
            "timestamp": message.timestamp,
            "edited_timestamp": message.edited_timestamp,
            "tts": message.tts,
            "mention_everyone": message.mentions_everyone,
            "mentions": mentions,
            "mention_roles": [str(r) for r in message.mentioned_role_ids],
            "attachments": [a.to_payload() for a in message.attachments],
            "embeds": cast(Any, message.embeds),
            "components": cast(Any, message.components),
            "pinned": False,
            "type": cast(Any, message.type),
            "flags": message.flags,
        }
        if message.guild_id is not None:
            payload["guild_id"] = str(message.guild_id)
            guild = self.guilds[message.guild_id]
            member = guild.members.get(message.author.id)
            if member is not None and message.webhook_id is None:
                payload["member"] = member.to_member(with_user=False)
        if message.nonce is not None:
            payload["nonce"] = message.nonce
        if message.webhook_id is not None:
            payload["webhook_id"] = str(message.webhook_id)
        if message.application_id is not None:
            payload["application_id"] = str(message.application_id)
        if message.reference is not None:
            payload["message_reference"] = message_reference_payload(message.reference)
            referenced = self.messages.get(int(message.reference.get("message_id") or 0))
            if referenced is not None and message.type == MESSAGE_REPLY:
                nested = self.message_payload_shallow(referenced)
                payload["referenced_message"] = nested
        if message.interaction_id is not None and message.interaction_user is not None:
            payload["interaction_metadata"] = {
                "id": str(message.interaction_id),
                "type": 2,
                "user": message.interaction_user.to_payload(),
                "authorizing_integration_owners": {},
            }
            payload["interaction"] = {
                "id": str(message.interaction_id),
                "type": 2,
                "name": message.interaction_name or "",
                "user": message.interaction_user.to_payload(),
            }
        if message.thread_id is not None and message.thread_id in self.channels:
            payload["thread"] = self.channels[message.thread_id].thread_payload()
        return payload

    def message_payload_shallow(self, message: MessageRecord) -> MessagePayload:
        payload = self.message_payload(message)
        payload.pop("referenced_message", None)
        return payload

    def _store_attachment(
        self, channel_id: int, upload: Upload, *, ephemeral: bool = False
    ) -> AttachmentRecord:
        attachment_id = new_snowflake()
        url = f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{upload.filename}"
        return AttachmentRecord(
            attachment_id,
            upload.filename,
            upload.data,
            upload.content_type,
            url,
            ephemeral=ephemeral,
        )

    def _create_message(
        self,
        channel: ChannelRecord,
        author: UserRecord,
        body: JSON,
        uploads: Mapping[int, Upload],
        *,
        message_type: int = MESSAGE_DEFAULT,
        interaction: InteractionRecord | None = None,
        flags: int = 0,
        dispatch: bool = True,
    ) -> MessageRecord:
        """Validate a message body like Discord does, store the message, send MESSAGE_CREATE."""
        flags |= sendable_flags(body, interaction=interaction is not None)
        validate_message(
            body,
            [len(u.data) for u in uploads.values()],
            creating=True,
            flags=flags,
            attachment_limit=self.attachment_size_limit,
            content_limit=MAX_CONTENT if author.bot else MAX_USER_CONTENT,
        )
        reference = body.get("message_reference")
        if reference is not None:
            referenced = self.messages.get(int(reference.get("message_id") or 0))
            if referenced is None or referenced.channel_id != channel.id:
                if reference.get("fail_if_not_exists", True):
                    raise DiscordError.form(
                        "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                    )
                reference = None
            else:
                message_type = MESSAGE_REPLY if message_type == MESSAGE_DEFAULT else message_type
                reference = {
                    "message_id": referenced.id,
                    "channel_id": channel.id,
                    "guild_id": channel.guild_id,
                }
        message = MessageRecord(
            id=new_snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            type=message_type,
            flags=flags,
            tts=bool(body.get("tts")),
            reference=reference,
            nonce=body.get("nonce"),
        )
        if interaction is not None:
            message.webhook_id = self.application_id
            message.application_id = self.application_id
            message.interaction_id = interaction.id
            message.interaction_user = interaction.user
            message.interaction_name = str(interaction.data.get("name", ""))
        self._apply_body(message, body, uploads)
        channel.messages.append(message)
        self.messages[message.id] = message
        if author.id != self.bot_user.id:
            channel.member_ids.add(author.id)
        message.snapshot()
        if dispatch and not message.ephemeral:
            self._dispatch_message("MESSAGE_CREATE", message)
        self._changed()
        return message

    def _apply_body(
        self, message: MessageRecord, body: JSON, uploads: Mapping[int, Upload]
    ) -> None:
        if "content" in body:
            message.content = str(body["content"] or "")
        if "embeds" in body:
            message.embeds = list(body["embeds"] or [])
        elif "embed" in body and body["embed"] is not None:
            message.embeds = [body["embed"]]
        if "components" in body:
            message.components = list(body["components"] or [])
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        if "attachments" in body and body["attachments"] is not None:
            kept = {a.id: a for a in message.attachments}
            attachments: list[AttachmentRecord] = []
            for item in body["attachments"]:
                item_id = int(item["id"])
                if item_id in kept:
                    attachments.append(kept[item_id])
                elif item_id in uploads:
                    upload = uploads[item_id]
                    name = str(item.get("filename") or upload.filename)
                    stored = self._store_attachment(
                        message.channel_id, Upload(name, upload.data, upload.content_type)
                    )
                    stored.description = item.get("description")
                    attachments.append(stored)
            message.attachments = attachments
        elif uploads:
            message.attachments += [
                self._store_attachment(message.channel_id, u) for u in uploads.values()
            ]
        self._resolve_mentions(message)

    def _resolve_mentions(self, message: MessageRecord) -> None:
        """Who the message really pings, applying allowed_mentions like Discord."""
        allowed = message.allowed_mentions
        parse = (
            {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse") or [])
        )
        listed_users = set() if allowed is None else {int(u) for u in allowed.get("users") or []}
        listed_roles = set() if allowed is None else {int(r) for r in allowed.get("roles") or []}
        users = [int(u) for u in USER_MENTION.findall(message.content)]
        roles = [int(r) for r in ROLE_MENTION.findall(message.content)]
        message.mentioned_user_ids = [
            u for u in dict.fromkeys(users) if "users" in parse or u in listed_users
        ]
        message.mentioned_role_ids = [
            r for r in dict.fromkeys(roles) if "roles" in parse or r in listed_roles
        ]
        everyone = bool(EVERYONE_MENTION.search(message.content)) and "everyone" in parse
        if everyone and message.guild_id is not None:
            channel = self.channels[message.channel_id]
            permissions = self.guilds[message.guild_id].permissions_in(message.author.id, channel)
            everyone = bool(permissions & discord.Permissions(mention_everyone=True).value)
        message.mentions_everyone = everyone
        if message.reference is not None and message.type == MESSAGE_REPLY:
            replied = self.messages.get(int(message.reference["message_id"]))
            ping_reply = allowed is None or bool(allowed.get("replied_user", False))
            if (
                replied is not None
                and ping_reply
                and replied.author.id not in message.mentioned_user_ids
            ):
                message.mentioned_user_ids.append(replied.author.id)

    def _edit_message(
        self,
        message: MessageRecord,
        body: JSON,
        uploads: Mapping[int, Upload],
        *,
        replacing_loading: bool = False,
    ) -> MessageRecord:
        """Apply an edit (or the followup that replaces a deferred "thinking…" message)."""
        flags = message.flags & ~FLAG_LOADING
        if body.get("flags") is not None:
            # An edit toggles SUPPRESS_EMBEDS and may switch to components v2, never back.
            flags = (flags & ~FLAG_SUPPRESS_EMBEDS) | sendable_flags(body, interaction=False)
            flags |= message.flags & FLAG_IS_COMPONENTS_V2
        validate_message(
            body,
            [len(u.data) for u in uploads.values()],
            creating=replacing_loading,
            flags=flags,
            attachment_limit=self.attachment_size_limit,
        )
        message.flags = flags
        self._apply_body(message, body, uploads)
        message.edited_timestamp = iso_now()
        message.snapshot()
        if not message.ephemeral:
            self._dispatch_message("MESSAGE_UPDATE", message)
        self._changed()
        return message

    def _delete_message(self, message: MessageRecord) -> None:
        message.deleted = True
        if not message.ephemeral:
            data: dict[str, Any] = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id is not None:
                data["guild_id"] = str(message.guild_id)
            intent = gw.GUILD_MESSAGES if message.guild_id else gw.DIRECT_MESSAGES
            self._dispatch(message.guild_id, "MESSAGE_DELETE", intent, data)
        self._changed()

    # ----------------------------------------------------------------- threads

    def _create_thread(
        self,
        parent: ChannelRecord,
        creator: UserRecord,
        body: JSON,
        *,
        starter: MessageRecord | None,
    ) -> ChannelRecord:
        if parent.is_dm or parent.is_thread or parent.guild_id is None:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= MAX_THREAD_NAME:
            raise DiscordError.form(
                "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        duration = int(body.get("auto_archive_duration") or 4320)
        if duration not in (60, 1440, 4320, 10080):
            raise DiscordError.form(
                "auto_archive_duration",
                "BASE_TYPE_CHOICES",
                "Value must be one of {60, 1440, 4320, 10080}.",
            )
        guild = self.guilds[parent.guild_id]
        if starter is not None:
            if starter.thread_id is not None:
                raise DiscordError(
                    400, 160004, "A thread has already been created for this message"
                )
            kind: int = PUBLIC_THREAD
            needed = discord.Permissions(create_public_threads=True)
        else:
            kind = int(body.get("type") or PRIVATE_THREAD)
            needed = discord.Permissions(
                create_private_threads=kind == PRIVATE_THREAD,
                create_public_threads=kind != PRIVATE_THREAD,
            )
        self._require(guild, creator.id, parent, needed | discord.Permissions(view_channel=True))
        thread = ChannelRecord(
            id=starter.id if starter is not None else new_snowflake(),
            type=kind,
            name=name,
            guild_id=guild.id,
            parent_id=parent.id,
            owner_id=creator.id,
            auto_archive_duration=cast(Any, duration),
            rate_limit_per_user=int(body.get("rate_limit_per_user") or 0),
            invitable=bool(body.get("invitable", True)),
            member_ids={creator.id},
        )
        guild.channels[thread.id] = thread
        self.channels[thread.id] = thread
        event: dict[str, Any] = dict(thread.thread_payload())
        event["newly_created"] = True
        self._dispatch(guild.id, "THREAD_CREATE", gw.GUILDS, event)
        if starter is not None:
            starter.thread_id = thread.id
            self._dispatch_message("MESSAGE_UPDATE", starter)
        self._changed()
        return thread

    def _require(
        self, guild: GuildRecord, user_id: int, channel: ChannelRecord, needed: discord.Permissions
    ) -> None:
        have = guild.permissions_in(user_id, channel)
        if have & needed.value != needed.value:
            raise DiscordError(403, 50013, "Missing Permissions")

    # ----------------------------------------------------------------- gateway out

    def _dispatch(self, guild_id: int | None, event: str, intent: int, data: Any) -> None:
        for session in self.sessions.values():
            if session.invalidated or not session.routes(guild_id):
                continue
            if intent and not session.intents & intent:
                continue
            session.dispatch(event, data)

    def _dispatch_guild(
        self, guild: GuildRecord, event: str, intent: int, build: Callable[[], Any]
    ) -> None:
        if self.sessions:
            self._dispatch(guild.id, event, intent, build())

    def _dispatch_guild_create(self, guild: GuildRecord) -> None:
        for session in self.sessions.values():
            if not session.invalidated and session.routes(guild.id) and session.intents & gw.GUILDS:
                session.dispatch("GUILD_CREATE", self._guild_create_payload(guild, session))

    def _guild_create_payload(self, guild: GuildRecord, session: gw.Session) -> dict[str, Any]:
        payload: dict[str, Any] = dict(guild.to_payload())
        if not session.intents & gw.GUILD_MEMBERS:
            # Without the members intent Discord sends only the bot's own member.
            payload["members"] = [guild.members[self.bot_user.id].to_payload()]
        return payload

    def _dispatch_message(self, event: str, message: MessageRecord) -> None:
        payload = self.message_payload(message)
        intent = gw.GUILD_MESSAGES if message.guild_id else gw.DIRECT_MESSAGES
        for session in self.sessions.values():
            if session.invalidated or not session.routes(message.guild_id):
                continue
            if not session.intents & intent:
                continue
            session.dispatch(event, self._visible_to(session, message, payload))

    def _visible_to(
        self, session: gw.Session, message: MessageRecord, payload: MessagePayload
    ) -> MessagePayload:
        """Strip content the session may not read (no MESSAGE_CONTENT intent, guild message)."""
        if session.intents & gw.MESSAGE_CONTENT or message.guild_id is None:
            return payload
        if message.author.id == self.bot_user.id or self.bot_user.id in message.mentioned_user_ids:
            return payload
        stripped = dict(payload)
        stripped.update(content="", embeds=[], attachments=[], components=[])
        return cast("MessagePayload", stripped)

    # ----------------------------------------------------------------- HTTP plumbing

    def _add_routes(self, app: web.Application) -> None:
        p = API_PREFIX
        r = app.router
        r.add_get("/", self._gateway)
        r.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._get_attachment)
        r.add_get(p + "/gateway", self._get_gateway)
        r.add_get(p + "/gateway/bot", self._get_gateway_bot)
        r.add_get(p + "/users/@me", self._get_me)
        r.add_get(p + "/users/{user_id}", self._get_user)
        r.add_post(p + "/users/@me/channels", self._create_dm)
        r.add_get(p + "/oauth2/applications/@me", self._get_application)
        r.add_get(p + "/applications/@me", self._get_application)
        r.add_get(p + "/applications/{application_id}/commands", self._get_commands)
        r.add_put(p + "/applications/{application_id}/commands", self._put_commands)
        r.add_get(
            p + "/applications/{application_id}/guilds/{guild_id}/commands", self._get_commands
        )
        r.add_put(
            p + "/applications/{application_id}/guilds/{guild_id}/commands", self._put_commands
        )
        r.add_post(p + "/interactions/{interaction_id}/{token}/callback", self._callback)
        r.add_post(p + "/webhooks/{webhook_id}/{webhook_token}", self._webhook_execute)
        hook_message = p + "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"
        r.add_get(hook_message, self._webhook_get)
        r.add_patch(hook_message, self._webhook_edit)
        r.add_delete(hook_message, self._webhook_delete)
        r.add_get(p + "/channels/{channel_id}", self._get_channel)
        r.add_patch(p + "/channels/{channel_id}", self._edit_channel)
        r.add_get(p + "/channels/{channel_id}/messages", self._get_messages)
        r.add_post(p + "/channels/{channel_id}/messages", self._post_message)
        message = p + "/channels/{channel_id}/messages/{message_id}"
        r.add_get(message, self._get_message)
        r.add_patch(message, self._patch_message)
        r.add_delete(message, self._delete_message_route)
        r.add_post(message + "/threads", self._thread_from_message)
        r.add_post(p + "/channels/{channel_id}/threads", self._thread_without_message)
        r.add_put(p + "/channels/{channel_id}/thread-members/{user_id}", self._join_thread)
        r.add_post(p + "/channels/{channel_id}/typing", self._typing)
        r.add_put(message + "/reactions/{emoji}/@me", self._add_reaction)
        r.add_delete(message + "/reactions/{emoji}/@me", self._remove_reaction)
        r.add_get(p + "/guilds/{guild_id}", self._get_guild)
        r.add_get(p + "/guilds/{guild_id}/channels", self._get_guild_channels)
        r.add_get(p + "/guilds/{guild_id}/members/{user_id}", self._get_member)
        r.add_get(p + "/guilds/{guild_id}/roles", self._get_roles)
        r.add_get(p + "/guilds/{guild_id}/roles/{role_id}", self._get_role)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/" or request.path.startswith("/attachments/"):
            return await handler(request)
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else request.path
        route = template.removeprefix(API_PREFIX)
        params = dict(request.match_info)
        body, uploads = await self._read_body(request)
        request[BODY_KEY] = body
        request[UPLOADS_KEY] = uploads

        def record(status: int, injected: bool = False) -> None:
            self.requests.append(
                RequestRecord(
                    method=request.method,
                    path=request.path.removeprefix(API_PREFIX),
                    route=f"{request.method} {route}",
                    status=status,
                    at=time.monotonic(),
                    query=dict(request.query),
                    body=body,
                    files=tuple(u.filename for u in uploads.values()),
                    injected=injected,
                )
            )
            self._changed()

        if resource is None or request.match_info.http_exception is not None:
            record(404)
            return json_response({"message": "404: Not Found", "code": 0}, 404)

        injection = self.limiter.take_injection(request.method, route)
        if injection is not None:
            record(injection.status, injected=True)
            if injection.status == 429:
                self.limiter.injected_429s += 1
                return json_response(
                    {
                        "message": "You are being rate limited.",
                        "retry_after": injection.retry_after,
                        "global": injection.is_global,
                    },
                    429,
                    too_many_requests_headers(injection.retry_after, is_global=injection.is_global),
                )
            return json_response({"message": "Injected failure", "code": 0}, injection.status)

        needs_bot_auth = not (route.startswith("/interactions/") or route.startswith("/webhooks/"))
        if needs_bot_auth and request.headers.get("Authorization") != f"Bot {self.token}":
            record(401)
            return json_response({"message": "401: Unauthorized", "code": 0}, 401)

        verdict = self.limiter.check(request.method, route, params)
        if not verdict.allowed:
            record(429)
            headers = {
                **verdict.headers,
                **too_many_requests_headers(verdict.retry_after, is_global=verdict.is_global),
            }
            return json_response(
                {
                    "message": "You are being rate limited.",
                    "retry_after": round(verdict.retry_after, 3),
                    "global": verdict.is_global,
                },
                429,
                headers,
            )
        try:
            response = await handler(request)
        except DiscordError as error:
            response = json_response(error.body(), error.status)
        response.headers.update(verdict.headers)
        record(response.status)
        return response

    async def _read_body(self, request: web.Request) -> tuple[JSON | None, dict[int, Upload]]:
        uploads: dict[int, Upload] = {}
        if request.content_type == "multipart/form-data":
            body: JSON | None = None
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue  # nested multipart: Discord's clients never send it
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                elif part.name and part.name.startswith("files["):
                    index = int(part.name[len("files[") : -1])
                    data = bytes(await part.read())
                    content_type = part.headers.get("Content-Type")
                    uploads[index] = Upload(part.filename or f"file{index}", data, content_type)
            return body, uploads
        if request.can_read_body:
            text = await request.text()
            if text:
                return cast(JSON, json.loads(text)), uploads
        return None, uploads

    def _channel(self, request: web.Request) -> ChannelRecord:
        channel = self.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _message(self, request: web.Request, channel: ChannelRecord) -> MessageRecord:
        message = self.messages.get(int(request.match_info["message_id"]))
        if (
            message is None
            or message.deleted
            or message.channel_id != channel.id
            or message.ephemeral
        ):
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    def _bot_can(self, channel: ChannelRecord, needed: discord.Permissions) -> None:
        if channel.guild_id is None:
            return
        self._require(self.guilds[channel.guild_id], self.bot_user.id, channel, needed)

    # ----------------------------------------------------------------- REST: identity

    async def _get_me(self, request: web.Request) -> web.Response:
        return json_response(self.bot_user.to_payload())

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(user.to_payload())

    async def _get_application(self, request: web.Request) -> web.Response:
        flags = sum(
            flag
            for intent, flag in APPLICATION_INTENT_FLAGS.items()
            if self.privileged_intents_enabled & intent
        )
        return json_response(
            app_info_payload(self.application_id, self.bot_user, self.owner, flags)
        )

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        payload: GatewayBot = {
            "url": self.gateway_url,
            "shards": self.shard_count,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000 - self.identify_count,
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        }
        return json_response(payload)

    # ----------------------------------------------------------------- REST: commands

    def _commands_for(self, request: web.Request) -> list[JSON]:
        if int(request.match_info["application_id"]) != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return self.global_commands
        if int(guild_id) not in self.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return self.guild_commands.setdefault(int(guild_id), [])

    async def _get_commands(self, request: web.Request) -> web.Response:
        return json_response(self._commands_for(request))

    async def _put_commands(self, request: web.Request) -> web.Response:
        existing = self._commands_for(request)
        guild_id = request.match_info.get("guild_id")
        body = request[BODY_KEY]
        if not isinstance(body, list):
            raise DiscordError.form("_root", "BASE_TYPE_ARRAY", "Must be an array.")
        by_key = {(c["name"], c.get("type", 1)): c for c in existing}
        stored: list[JSON] = []
        for definition in body:
            command = self._validate_command(definition)
            old = by_key.get((command["name"], command["type"]))
            command["id"] = old["id"] if old else str(new_snowflake())
            command["application_id"] = str(self.application_id)
            command["version"] = str(new_snowflake())
            if guild_id is not None:
                command["guild_id"] = guild_id
            stored.append(command)
        existing[:] = stored
        self._changed()
        payload = cast("list[ApplicationCommand]", stored)
        return json_response(payload)

    @staticmethod
    def _validate_localizations(item: JSON, *, chat_input: bool, path: str) -> None:
        """Localized names follow the rules of names (a chat input command's and every
        option's: lower case, letters, digits, `-` and `_`, 1-32), descriptions 1-100, as
        Discord checks them; options' and choices' localizations too."""
        for locale, name in (item.get("name_localizations") or {}).items():
            text = str(name)
            valid = (
                re.fullmatch(r"[-_\w]{1,32}", text) is not None and text.lower() == text
                if chat_input
                else 1 <= len(text) <= 32
            )
            if not valid:
                raise DiscordError.form(
                    f"{path}name_localizations.{locale}",
                    "APPLICATION_COMMAND_INVALID_NAME",
                    "Command name is invalid",
                )
        for locale, text in (item.get("description_localizations") or {}).items():
            if not 1 <= len(str(text)) <= 100:
                raise DiscordError.form(
                    f"{path}description_localizations.{locale}",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
        for index, option in enumerate(item.get("options") or []):
            FakeDiscord._validate_localizations(
                option, chat_input=chat_input, path=f"{path}options.{index}."
            )
        for index, choice in enumerate(item.get("choices") or []):
            for locale, name in (choice.get("name_localizations") or {}).items():
                if not 1 <= len(str(name)) <= 100:
                    raise DiscordError.form(
                        f"{path}choices.{index}.name_localizations.{locale}",
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    )

    @staticmethod
    def _validate_command(definition: Any) -> JSON:
        if not isinstance(definition, dict):
            raise DiscordError.form(
                "0", "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType"
            )
        command = dict(definition)
        command.setdefault("type", 1)
        name = str(command.get("name", ""))
        if command["type"] == 1:
            if not re.fullmatch(r"[-_\w]{1,32}", name) or name.lower() != name:
                raise DiscordError.form(
                    "name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                )
            if not 1 <= len(str(command.get("description", ""))) <= 100:
                raise DiscordError.form(
                    "description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
        elif not 1 <= len(name) <= 32:
            raise DiscordError.form(
                "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
            )
        FakeDiscord._validate_localizations(command, chat_input=command["type"] == 1, path="")
        permissions = command.get("default_member_permissions")
        if permissions is not None:
            command["default_member_permissions"] = str(int(permissions))
        command.setdefault("description", "")
        command.setdefault("dm_permission", True)
        command.setdefault("nsfw", False)
        if command.get("integration_types") is None:
            command["integration_types"] = [0]
        if command.get("contexts") is None:
            # Discord's default for new commands: every context, unless DMs were turned off.
            command["contexts"] = [0, 1, 2] if command["dm_permission"] is not False else [0]
        return command

    # ----------------------------------------------------------------- REST: interactions

    def _interaction_for_token(self, token: str) -> InteractionRecord:
        interaction = self._by_token.get(token)
        if (
            interaction is None
            or time.monotonic() - interaction.dispatched_at > self.interaction_token_ttl
        ):
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(int(request.match_info["interaction_id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        body: JSON = request[BODY_KEY] or {}
        elapsed = time.monotonic() - interaction.dispatched_at
        callback_type = int(body.get("type", 0))
        data = body.get("data")
        record: CallbackRecord = {"type": callback_type, "data": data, "at": elapsed, "status": 0}
        interaction.callbacks.append(record)
        try:
            response = self._acknowledge(
                interaction, callback_type, data or {}, request[UPLOADS_KEY], elapsed
            )
        except DiscordError as error:
            record["status"] = error.status
            self._changed()
            raise
        with_response = request.query.get("with_response", "").lower() in ("1", "true")
        record["status"] = 200 if with_response else 204
        self._changed()
        if not with_response:
            return web.Response(status=204)
        return json_response(response)

    def _acknowledge(
        self,
        interaction: InteractionRecord,
        callback_type: int,
        data: JSON,
        uploads: Mapping[int, Upload],
        elapsed: float,
    ) -> InteractionCallback:
        if elapsed > self.interaction_deadline:
            raise DiscordError(404, 10062, "Unknown interaction")
        if any(c["status"] and c["status"] < 300 for c in interaction.callbacks):
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        allowed = {2: (4, 5, 9), 3: (4, 5, 6, 7, 9), 5: (4, 5, 6, 7)}.get(interaction.type, ())
        if callback_type not in allowed:
            raise DiscordError(
                400, 40043, "Interaction callback type is not valid for this interaction"
            )
        message_type = interaction.response_message_type
        response_message: MessageRecord | None = None
        if callback_type == 4:
            response_message = self._create_message(
                interaction.channel,
                self.bot_user,
                data,
                uploads,
                message_type=message_type,
                interaction=interaction,
            )
            interaction.original = response_message
        elif callback_type == 5:
            flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            response_message = self._create_loading_message(interaction, message_type, flags)
            interaction.original = response_message
        elif callback_type == 7:
            source = interaction.source_message
            assert source is not None
            response_message = self._edit_message(source, data, uploads)
        elif callback_type == 9:
            interaction.modal = data
        result: InteractionCallback = {
            "interaction": {
                "id": str(interaction.id),
                "type": cast(Any, interaction.type),
            }
        }
        if response_message is not None:
            result["interaction"]["response_message_id"] = str(response_message.id)
            result["interaction"]["response_message_loading"] = response_message.loading
            result["interaction"]["response_message_ephemeral"] = response_message.ephemeral
            result["resource"] = {
                "type": cast(Any, callback_type),
                "message": self.message_payload(response_message),
            }
        else:
            result["resource"] = {"type": cast(Any, callback_type)}
        return result

    def _create_loading_message(
        self, interaction: InteractionRecord, message_type: int, flags: int
    ) -> MessageRecord:
        channel = interaction.channel
        message = MessageRecord(
            id=new_snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=self.bot_user,
            type=message_type,
            flags=flags,
            webhook_id=self.application_id,
            application_id=self.application_id,
            interaction_id=interaction.id,
            interaction_user=interaction.user,
            interaction_name=str(interaction.data.get("name", "")),
        )
        channel.messages.append(message)
        self.messages[message.id] = message
        message.snapshot()
        if not message.ephemeral:
            self._dispatch_message("MESSAGE_CREATE", message)
        return message

    def _webhook_interaction(self, request: web.Request) -> InteractionRecord:
        if int(request.match_info["webhook_id"]) != self.application_id:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return self._interaction_for_token(request.match_info["webhook_token"])

    def _webhook_message(
        self, request: web.Request, interaction: InteractionRecord
    ) -> MessageRecord:
        message_id = request.match_info["message_id"]
        if message_id == "@original":
            ack = interaction.acknowledged
            if ack is not None and ack["type"] in (6, 7) and interaction.source_message is not None:
                return interaction.source_message
            if interaction.original is None or interaction.original.deleted:
                raise DiscordError(404, 10008, "Unknown Message")
            return interaction.original
        for message in interaction.responses:
            if message.id == int(message_id) and not message.deleted:
                return message
        raise DiscordError(404, 10008, "Unknown Message")

    async def _webhook_execute(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        if interaction.acknowledged is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        body: JSON = request[BODY_KEY] or {}
        uploads: Mapping[int, Upload] = request[UPLOADS_KEY]
        original = interaction.original
        if original is not None and original.loading and not original.deleted:
            # The first followup after a deferral replaces the "thinking…" message.
            message = self._edit_message(original, body, uploads, replacing_loading=True)
            message.edited_timestamp = None
        else:
            channel = interaction.channel
            thread_id = request.query.get("thread_id")
            if thread_id is not None:
                channel = self.channels.get(int(thread_id)) or channel
            message_type = interaction.response_message_type
            message = self._create_message(
                channel,
                self.bot_user,
                body,
                uploads,
                message_type=message_type,
                interaction=interaction,
            )
            interaction.followups.append(message)
        self._changed()
        if request.query.get("wait", "").lower() in ("1", "true"):
            return json_response(self.message_payload(message))
        return web.Response(status=204)

    async def _webhook_get(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        return json_response(self.message_payload(self._webhook_message(request, interaction)))

    async def _webhook_edit(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = self._webhook_message(request, interaction)
        self._edit_message(message, request[BODY_KEY] or {}, request[UPLOADS_KEY])
        return json_response(self.message_payload(message))

    async def _webhook_delete(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        self._delete_message(self._webhook_message(request, interaction))
        return web.Response(status=204)

    # ----------------------------------------------------------------- REST: channels

    async def _create_dm(self, request: web.Request) -> web.Response:
        body: JSON = request[BODY_KEY] or {}
        user = self.users.get(int(body.get("recipient_id") or 0))
        if user is None or user.bot:
            raise DiscordError(400, 50007, "Cannot send messages to this user")
        return json_response(self.dm_channel(user).dm_payload())

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel.is_dm:
            return json_response(channel.dm_payload())
        return json_response(channel.guild_channel_payload())

    async def _edit_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body: JSON = request[BODY_KEY] or {}
        if not channel.is_thread:
            raise DiscordError(403, 50013, "Missing Permissions")
        if channel.owner_id != self.bot_user.id:
            self._bot_can(channel, discord.Permissions(manage_threads=True))
        if "name" in body:
            channel.name = str(body["name"])
        if "archived" in body:
            channel.archived = bool(body["archived"])
        if "locked" in body:
            channel.locked = bool(body["locked"])
        if "auto_archive_duration" in body:
            channel.auto_archive_duration = body["auto_archive_duration"]
        self._dispatch(channel.guild_id, "THREAD_UPDATE", gw.GUILDS, channel.thread_payload())
        self._changed()
        return json_response(channel.thread_channel_payload())

    async def _get_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self._bot_can(channel, discord.Permissions(read_message_history=True, view_channel=True))
        limit = min(int(request.query.get("limit", "50")), 100)
        messages = [m for m in channel.live_messages if not m.ephemeral]
        if "before" in request.query:
            messages = [m for m in messages if m.id < int(request.query["before"])]
        if "after" in request.query:
            messages = [m for m in messages if m.id > int(request.query["after"])]
            messages = messages[:limit]
        messages = sorted(messages, key=lambda m: m.id, reverse=True)[:limit]
        return json_response([self.message_payload(m) for m in messages])

    async def _post_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel.is_thread:
            self._bot_can(
                channel, discord.Permissions(send_messages_in_threads=True, view_channel=True)
            )
            if channel.locked:
                raise DiscordError(403, 160005, "Thread is locked")
            channel.archived = False
        elif channel.recipient is not None and not channel.recipient.accepts_dms:
            raise DiscordError(403, 50007, "Cannot send messages to this user")
        else:
            self._bot_can(channel, discord.Permissions(send_messages=True, view_channel=True))
        uploads: Mapping[int, Upload] = request[UPLOADS_KEY]
        if uploads:
            self._bot_can(channel, discord.Permissions(attach_files=True))
        body = request[BODY_KEY] or {}
        earlier = self._same_nonce(channel, self.bot_user, body)
        if earlier is not None:
            self.nonce_hits += 1
            return json_response(self.message_payload(earlier))
        message = self._create_message(channel, self.bot_user, body, uploads)
        if self.after_bot_message is not None:
            await self.after_bot_message(message)
        return json_response(self.message_payload(message))

    def _same_nonce(
        self, channel: ChannelRecord, author: UserRecord, body: JSON
    ) -> MessageRecord | None:
        """Discord's `enforce_nonce`: a message with the nonce of one the same author created in
        the same channel within the last few minutes is not created again; the first one is
        returned instead."""
        nonce = body.get("nonce")
        if nonce is None or not body.get("enforce_nonce"):
            return None
        recent = time.monotonic() - NONCE_WINDOW_S
        for message in reversed(channel.messages):
            if message.created_at < recent:
                return None
            if message.author.id == author.id and str(message.nonce) == str(nonce):
                return message
        return None

    async def _get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        return json_response(self.message_payload(self._message(request, channel)))

    async def _patch_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(request, channel)
        if message.author.id != self.bot_user.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._edit_message(message, request[BODY_KEY] or {}, request[UPLOADS_KEY])
        return json_response(self.message_payload(message))

    async def _delete_message_route(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(request, channel)
        if message.author.id != self.bot_user.id:
            self._bot_can(channel, discord.Permissions(manage_messages=True))
        self._delete_message(message)
        return web.Response(status=204)

    async def _thread_from_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(request, channel)
        thread = self._create_thread(
            channel, self.bot_user, request[BODY_KEY] or {}, starter=message
        )
        return json_response(thread.thread_channel_payload(), 201)

    async def _thread_without_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        thread = self._create_thread(channel, self.bot_user, request[BODY_KEY] or {}, starter=None)
        return json_response(thread.thread_channel_payload(), 201)

    async def _join_thread(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if not channel.is_thread:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        user_id = request.match_info["user_id"]
        channel.member_ids.add(self.bot_user.id if user_id == "@me" else int(user_id))
        self._changed()
        return web.Response(status=204)

    async def _typing(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self.typing.append((channel.id, time.monotonic()))
        return web.Response(status=204)

    async def _add_reaction(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(request, channel)
        self.reactions.append((message.id, request.match_info["emoji"], self.bot_user.id))
        self._changed()
        return web.Response(status=204)

    async def _remove_reaction(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(request, channel)
        entry = (message.id, request.match_info["emoji"], self.bot_user.id)
        if entry in self.reactions:
            self.reactions.remove(entry)
        return web.Response(status=204)

    async def _get_attachment(self, request: web.Request) -> web.Response:
        attachment_id = int(request.match_info["attachment_id"])
        for message in self.messages.values():
            for attachment in message.attachments:
                if attachment.id == attachment_id:
                    return web.Response(
                        body=attachment.data,
                        content_type=attachment.content_type or "application/octet-stream",
                    )
        return web.Response(status=404)

    # ----------------------------------------------------------------- REST: guilds

    def _guild(self, request: web.Request) -> GuildRecord:
        guild = self.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, request: web.Request) -> web.Response:
        return json_response(self._guild(request).to_payload())

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response(
            [c.text_channel_payload() for c in guild.channels.values() if not c.is_thread]
        )

    async def _get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        member = guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return json_response(member.to_payload())

    async def _get_roles(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response([r.to_payload() for r in guild.roles.values()])

    async def _get_role(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        role = guild.roles.get(int(request.match_info["role_id"]))
        if role is None:
            raise DiscordError(404, 10011, "Unknown Role")
        return json_response(role.to_payload())

    # ----------------------------------------------------------------- gateway in

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        compress = request.query.get("compress") if self.compress else None
        connection = gw.Connection.open(ws, compress)
        pump = asyncio.create_task(connection.pump())
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)
        connection.send({"op": gw.HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        session: gw.Session | None = None
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                op, data = message.get("op"), message.get("d")
                if op == gw.HEARTBEAT:
                    connection.send({"op": gw.HEARTBEAT_ACK})
                elif op == gw.IDENTIFY:
                    session = await self._identify(connection, data)
                elif op == gw.RESUME:
                    session = await self._resume(connection, data)
                elif op == gw.REQUEST_GUILD_MEMBERS and session is not None:
                    self._send_member_chunk(session, data)
        finally:
            if session is not None and session.connection is connection:
                session.connection = None
            connection.outbox.put_nowait(None)
            self._sockets.discard(ws)
            self._changed()
        return ws

    async def _identify(self, connection: gw.Connection, data: JSON) -> gw.Session | None:
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return None
        if int(data.get("intents", 0)) & gw.PRIVILEGED_INTENTS & ~self.privileged_intents_enabled:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        shard = data.get("shard")
        if shard is not None and (shard[1] != self.shard_count or not 0 <= shard[0] < shard[1]):
            await connection.ws.close(code=4010, message=b"Invalid shard.")
            return None
        self.identify_count += 1
        session = gw.Session(
            session_id=secrets.token_hex(16),
            intents=int(data.get("intents", 0)),
            shard=(shard[0], shard[1]) if shard else None,
            connection=connection,
            identified_at=time.monotonic(),
        )
        self.sessions[session.session_id] = session
        guilds = [g for g in self.guilds.values() if session.routes(g.id)]
        ready: ReadyEvent = {
            "v": 10,
            "user": self.bot_user.to_payload(),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": list(session.shard) if session.shard else [0, 1],
            "application": {"id": str(self.application_id), "flags": 0},
        }
        session.dispatch("READY", ready)
        if session.intents & gw.GUILDS:
            for guild in guilds:
                session.dispatch("GUILD_CREATE", self._guild_create_payload(guild, session))
        self._changed()
        return session

    async def _resume(self, connection: gw.Connection, data: JSON) -> gw.Session | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or session.invalidated or data.get("token") != self.token:
            connection.send({"op": gw.INVALID_SESSION, "d": False})
            return None
        session.connection = connection
        for payload in session.replay_after(int(data.get("seq") or 0)):
            connection.send(payload)
        # discord.types says None, but Discord sends an object and discord.py writes into it.
        session.dispatch("RESUMED", {"_trace": ["fake-discord"]})
        self._changed()
        return session

    def _send_member_chunk(self, session: gw.Session, data: JSON) -> None:
        guild = self.guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        members = list(guild.members.values())
        query = data.get("query")
        if query:
            members = [m for m in members if m.user.username.startswith(str(query))]
        user_ids = data.get("user_ids")
        if user_ids:
            wanted = {int(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])}
            members = [m for m in members if m.user.id in wanted]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: GuildMembersChunkEvent = {
            "guild_id": str(guild.id),
            "members": [m.to_payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = str(data["nonce"])
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)
