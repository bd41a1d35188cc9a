"""`/solve` and the message context menu "Solve with Fathom"."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.asking import Question, attachments_of
from bot.client import FathomBot

EVERYWHERE = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
ANY_INSTALL = app_commands.AppInstallationType(guild=True, user=True)


class Solve(commands.Cog):
    def __init__(self, bot: FathomBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(
            name="Solve with Fathom",
            callback=self.solve_message,
            allowed_contexts=EVERYWHERE,
            allowed_installs=ANY_INSTALL,
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="solve", description="Solve a math problem step by step")
    @app_commands.describe(
        question="The problem, as text (LaTeX such as \\frac{1}{2} is fine)",
        show_reasoning="Attach the model's full reasoning to the solution",
        private="Send the solution to your direct messages instead of here",
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    async def solve(
        self,
        interaction: discord.Interaction[Any],
        question: str,
        show_reasoning: bool = False,
        private: bool = False,
    ) -> None:
        await self.bot.asker.ask_interaction(
            interaction, Question(text=question, show_reasoning=show_reasoning, private=private)
        )

    async def solve_message(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        question = Question(text=message.content, attachments=attachments_of(message))
        await self.bot.asker.ask_interaction(interaction, question, anchor=message)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, FathomBot)
    await bot.add_cog(Solve(bot))
