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
from discord.ext import commands
from discord.http import Route
from redis import Redis as SyncRedis

import bot.exts
from bot import keys as bot_keys
from bot.components import JOB_BUTTONS
from bot.i18n import CommandTranslator
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
        )
        self.settings = settings
        self._requests = TokenBucket(settings.bot_requests_per_s, burst=5)
        # The one place every bot-token REST request passes: discord.py's HTTPClient.request
        # (interaction responses go through its webhook adapter instead, unpaced, as Discord
        # does not count them). Paced before discord.py's own per-route bookkeeping, so a
        # request waits for its slot before it takes one in a route's bucket.
        send = self.http.request

        async def paced(route: Route, **kwargs: Any) -> Any:
            await self._pace()
            return await send(route, **kwargs)

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

    async def close(self) -> None:
        # commands.Bot.close unloads the extensions first (each stops its own work, bounded).
        await super().close()
        if hasattr(self, "redis"):
            await self.redis.aclose()
            self.rq_conn.close()


def extension_names() -> list[str]:
    """Every extension of `bot.exts`, in name order."""
    prefix = f"{bot.exts.__name__}."
    return sorted(module.name for module in pkgutil.iter_modules(bot.exts.__path__, prefix))
