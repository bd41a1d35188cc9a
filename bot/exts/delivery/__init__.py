"""Progress and delivery: follows every promised job through the events stream, edits its
status message, and delivers its outcome exactly once (also across restarts)."""

from __future__ import annotations

from discord.ext import commands

from bot.client import FathomBot
from bot.exts.delivery._cog import Delivery

__all__ = ["Delivery"]


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, FathomBot)
    await bot.add_cog(Delivery(bot))
