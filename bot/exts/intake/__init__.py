"""Intake: `/solve`, the "Solve with Fathom" context menu, DMs, follow-ups in solution threads
and the job buttons, each question through the checks onto the queue."""

from __future__ import annotations

from discord.ext import commands

from bot.client import FathomBot
from bot.exts.intake._cog import Intake

__all__ = ["Intake"]


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, FathomBot)
    await bot.add_cog(Intake(bot))
