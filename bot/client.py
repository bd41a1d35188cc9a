"""The bot: a discord.py commands.Bot that loads one cog per file of bot/cogs/."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import pkgutil
import time

import discord
import redis
import redis.asyncio as aioredis
from discord.ext import commands

import bot.cogs
from bot.asking import Asker
from bot.logic.pacing import TokenBucket
from bot.store import BotStore
from bot.tracker import Tracker
from bot.views import DYNAMIC_ITEMS
from fathom import keys
from fathom.settings import Settings

log = logging.getLogger(__name__)


class FathomBot(commands.Bot):
    """Redis clients are made in `setup_hook` (inside the running loop), never at import."""

    rq_conn: redis.Redis
    """Synchronous connection for RQ (used through asyncio.to_thread)."""
    store: BotStore
    tracker: Tracker
    asker: Asker

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

    async def setup_hook(self) -> None:
        settings = self.settings
        self.rq_conn = redis.Redis.from_url(settings.redis_url)
        self.store = BotStore(
            aioredis.Redis.from_url(settings.redis_url),
            record_ttl_s=settings.result_ttl_s,
            pending_ttl_s=settings.job_timeout_s * (settings.job_retries + 1) + 3600,
        )
        self.tracker = Tracker(self, self.store, settings)
        self.asker = Asker(self, self.store, settings)
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        for module in pkgutil.iter_modules(bot.cogs.__path__, f"{bot.cogs.__name__}."):
            await self.load_extension(module.name)
        await self.tracker.start()
        await self._sync_commands()

    async def pace(self) -> None:
        """Wait for this request's slot under the bot-wide request rate (call before every
        bot-token REST call the bot makes)."""
        delay = self._requests.reserve(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)

    async def _sync_commands(self) -> None:
        """Upload the application commands (globally, or to the test guild) unless exactly
        these were uploaded before: the upload is tightly rate-limited, restarts are not."""
        guild_id = self.settings.discord_test_guild_id
        guild = None if guild_id is None else discord.Object(id=guild_id)
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        assert self.application_id is not None  # known after login
        key = keys.bot_commands_key(self.application_id, str(guild_id or "global"))
        if await self.store.conn.get(key) == digest.encode():
            log.info("application commands unchanged; not syncing")
            return
        synced = await self.tree.sync(guild=guild)
        await self.store.conn.set(key, digest)
        log.info("synced %d application commands (%s)", len(synced), guild_id or "global")

    async def close(self) -> None:
        if hasattr(self, "tracker"):
            await self.tracker.stop()
        await super().close()
        if hasattr(self, "store"):
            await self.store.conn.aclose()
            self.rq_conn.close()
