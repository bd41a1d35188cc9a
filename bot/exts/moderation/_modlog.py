"""Posting every moderator's and operator's action to the server's mod-log channel, from the
audit stream (so actions taken from a shell are posted too). Read through a consumer group:
what happens while the bot is down is posted when it is back."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import discord
import redis.exceptions
from discord.ext import commands, tasks

from bot import keys as bot_keys
from bot.client import TRANSIENT_ERRORS, FathomBot
from bot.guild_settings import GuildSettingsStore
from bot.i18n import language_of, texts
from bot.logic.queue_text import audit_line
from fathom import keys
from fathom.admin import decode_audit
from fathom.tasks import cancel_and_wait

log = logging.getLogger(__name__)

READ_COUNT = 50
BLOCK_MS = 2000
RETRY_S = 1.0


class ModLog(commands.Cog):
    def __init__(self, bot: FathomBot) -> None:
        self.bot = bot
        self.guilds = GuildSettingsStore(bot.redis)

    async def cog_load(self) -> None:
        await self._ensure_group()
        self.post_loop.start()

    async def cog_unload(self) -> None:
        task = self.post_loop.get_task()
        if task is not None:
            await cancel_and_wait([task], self.bot.settings.bot_stop_grace_s)

    async def _ensure_group(self) -> None:
        try:
            await self.bot.redis.xgroup_create(
                keys.AUDIT_STREAM, bot_keys.MODLOG_GROUP, id="$", mkstream=True
            )
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @tasks.loop(seconds=0)
    async def post_loop(self) -> None:
        consumer = self.bot.settings.bot_consumer_name
        try:
            for start in ("0", ">"):
                response = await self.bot.redis.xreadgroup(
                    bot_keys.MODLOG_GROUP,
                    consumer,
                    {keys.AUDIT_STREAM: start},
                    count=READ_COUNT,
                    block=BLOCK_MS if start == ">" else None,
                )
                streams = cast(list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]], response)
                for _stream, items in streams or []:
                    for entry_id, fields in items:
                        await self._post(fields)
                        await self.bot.redis.xack(
                            keys.AUDIT_STREAM, bot_keys.MODLOG_GROUP, entry_id
                        )
        except TRANSIENT_ERRORS as exc:
            log.warning("audit stream unavailable (%s); retrying", exc)
            await asyncio.sleep(RETRY_S)
        except redis.exceptions.ResponseError as exc:
            log.warning("audit stream reset (%s); recreating the group", exc)
            await asyncio.sleep(RETRY_S)
            await self._ensure_group()

    async def _post(self, fields: dict[bytes, bytes]) -> None:
        entry = decode_audit(fields)
        if entry is None or entry.guild_id is None:
            return
        chosen = await self.guilds.get(entry.guild_id)
        channel_id = chosen.modlog_channel_id
        if channel_id is None:
            return
        channel = self.bot.get_partial_messageable(channel_id)
        line = audit_line(entry, texts(language_of(None, chosen.language)))
        try:
            await channel.send(line, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:
            log.warning("mod-log post to %s failed: %s", channel_id, exc)
