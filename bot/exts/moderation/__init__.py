"""Moderators and operators in control: `/queue` (status, pause, cancel, clear, failed, retry,
stats), `/fathom-settings` (this server's rules, blocked members), and the mod-log."""

from __future__ import annotations

from discord.ext import commands

from bot.client import FathomBot
from bot.exts.moderation._modlog import ModLog
from bot.exts.moderation._queue import QueueCommands
from bot.exts.moderation._settings import SettingsCommands


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, FathomBot)
    await bot.add_cog(QueueCommands(bot))
    await bot.add_cog(SettingsCommands(bot))
    await bot.add_cog(ModLog(bot))
