"""The bot: a discord.py commands.Bot holding the clients (Redis for the bot's records, a
synchronous connection for RQ, Discord's HTTP client paced in one place), loading every
extension of `bot.exts` and syncing the application commands. It imports no extension: each
feature is an extension that owns its services."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import pkgutil
import time
from typing import Any

import aiohttp
import discord
import redis.asyncio as aioredis
import redis.exceptions
from aiohttp import web
from discord import app_commands
from discord.ext import commands
from discord.http import Route
from redis import Redis as SyncRedis

import bot.exts
from bot import keys as bot_keys
from bot import observe
from bot.components import JOB_BUTTONS
from bot.i18n import ENGLISH, N_, CommandTranslator, Texts, language_of, texts
from bot.logic.pacing import TokenBucket
from fathom.settings import Settings

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (
    aiohttp.ClientError,
    asyncio.TimeoutError,
    OSError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
"""What Discord's and Redis's clients raise for trouble that may pass: try again later."""


class FathomTree(app_commands.CommandTree[Any]):
    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """Any command that fails still answers the person who used it (only they see it)."""
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await answer_failure(interaction, cause)


class FathomBot(commands.Bot):
    """Clients are made in `setup_hook` (inside the running loop), never at import."""

    redis: aioredis.Redis
    """The bot's records (promises, deliveries, quotas, conversations) and the events stream."""
    rq_conn: SyncRedis
    """Synchronous connection for RQ and the contract's queue operations (through
    asyncio.to_thread)."""

    def __init__(self, settings: Settings, *, guild_ready_timeout: float = 2.0) -> None:
        intents = discord.Intents.default()
        intents.message_content = settings.discord_message_content_intent
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            guild_ready_timeout=guild_ready_timeout,
            tree_cls=FathomTree,
        )
        self.settings = settings
        self._endpoint: web.AppRunner | None = None
        self._requests = TokenBucket(settings.bot_requests_per_s, burst=5)
        # The one place every bot-token REST request passes: discord.py's HTTPClient.request
        # (interaction responses go through its webhook adapter instead, unpaced, as Discord
        # does not count them). Paced before discord.py's own per-route bookkeeping, so a
        # request waits for its slot before it takes one in a route's bucket.
        send = self.http.request

        async def paced(route: Route, **kwargs: Any) -> Any:
            await self._pace()
            observe.DISCORD_REQUESTS.inc()
            try:
                return await send(route, **kwargs)
            except discord.HTTPException as exc:
                observe.DISCORD_ERRORS.labels(status=str(exc.status)).inc()
                raise

        setattr(self.http, "request", paced)  # noqa: B010 (an instance's method, replaced once)

    async def _pace(self) -> None:
        """Wait for this request's slot under the bot-wide rate (Discord allows 50/s):
        discord.py only reacts to a global 429, after which every waiting request retries at
        once, so a burst of questions would become a storm of 429s."""
        delay = self._requests.reserve(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)

    async def setup_hook(self) -> None:
        self.redis = aioredis.Redis.from_url(self.settings.redis_url)
        self.rq_conn = SyncRedis.from_url(self.settings.redis_url)
        settings = self.settings
        if settings.bot_http_port:
            try:
                self._endpoint = await observe.start(
                    settings.http_host, settings.bot_http_port, self.health
                )
            except OSError as exc:
                log.error("bot: /metrics and /healthz cannot listen (%s)", exc)
        self.add_dynamic_items(*JOB_BUTTONS)
        await self.tree.set_translator(CommandTranslator())
        for extension in extension_names():
            await self.load_extension(extension)
        await self._sync_commands()

    async def _sync_commands(self) -> None:
        """Upload the application commands (globally, or to the test guild) unless exactly
        these were uploaded before (their translations included): the upload is tightly
        rate-limited, restarts are not."""
        guild_id = self.settings.discord_test_guild_id
        guild = None if guild_id is None else discord.Object(id=guild_id)
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        translator = self.tree.translator
        assert translator is not None  # set in setup_hook
        payload = [
            await command.get_translated_payload(self.tree, translator)
            for command in self.tree.get_commands(guild=guild)
        ]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        assert self.application_id is not None  # known after login
        key = bot_keys.commands_key(self.application_id, str(guild_id or "global"))
        if await self.redis.get(key) == digest.encode():
            log.info("application commands unchanged; not syncing")
            return
        synced = await self.tree.sync(guild=guild)
        await self.redis.set(key, digest)
        log.info("synced %d application commands (%s)", len(synced), guild_id or "global")

    async def health(self) -> tuple[bool, str]:
        """Healthy while Redis answers and the gateway is connected."""
        try:
            await self.redis.ping()
        except TRANSIENT_ERRORS as exc:
            return False, f"Redis does not answer: {exc}"
        if self.is_closed() or not self.is_ready() or self.ws is None:
            return False, "not connected to Discord's gateway"
        observe.GATEWAY_LATENCY.set(self.latency)
        return True, "ok"

    async def close(self) -> None:
        # commands.Bot.close unloads the extensions first (each stops its own work, bounded).
        await super().close()
        if self._endpoint is not None:
            await self._endpoint.cleanup()
        if hasattr(self, "redis"):
            await self.redis.aclose()
            self.rq_conn.close()


UNAVAILABLE = N_(
    "⚠️ The queue is unavailable right now (its database does not answer). Nothing was "
    "queued or changed — please try again in a minute."
)
BROKEN = N_(
    "⚠️ Something went wrong on our side, so nothing was done. The operators can see why in "
    "the bot's log; please try again."
)


def failure_text(error: BaseException, t: Texts = ENGLISH) -> str:
    return t.gettext(UNAVAILABLE if isinstance(error, redis.exceptions.RedisError) else BROKEN)


async def answer_failure(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Tell the person who used a command or a button that it failed, and how; log why."""
    log.error("interaction %s failed", interaction.id, exc_info=error)
    # The member's language as their client says (the server's choice lives in Redis, which
    # may be what failed).
    text = failure_text(error, texts(language_of(interaction.locale)))
    try:
        if interaction.response.is_done():
            await interaction.edit_original_response(content=text, view=None)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException as exc:  # the interaction expired meanwhile
        log.warning("could not tell interaction %s it failed: %s", interaction.id, exc)


def extension_names() -> list[str]:
    """Every extension of `bot.exts`, in name order."""
    prefix = f"{bot.exts.__name__}."
    return sorted(module.name for module in pkgutil.iter_modules(bot.exts.__path__, prefix))
