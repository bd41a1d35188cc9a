"""The intake extension: where questions come in (`/solve`, the message context menu, any DM
to the bot, the asker's messages in a solution thread) and what the job buttons do."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import discord
import redis.exceptions
from discord import app_commands
from discord.ext import commands

from bot.client import FathomBot, answer_failure, failure_text
from bot.components import JobAction
from bot.exts.intake._asker import Asker, Question, attachments_of
from bot.guild_settings import MAX_SAMPLES_LIMIT, GuildSettingsStore
from bot.store import BotStore

log = logging.getLogger(__name__)

EVERYWHERE = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
ANY_INSTALL = app_commands.AppInstallationType(guild=True, user=True)


class Intake(commands.Cog):
    def __init__(self, bot: FathomBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(
            name="Solve with Fathom",
            callback=self.solve_message,
            allowed_contexts=EVERYWHERE,
            allowed_installs=ANY_INSTALL,
        )

    async def cog_load(self) -> None:
        settings = self.bot.settings
        self.store = BotStore.configured(self.bot.redis, settings)
        self.guilds = GuildSettingsStore(self.bot.redis)
        self.asker = Asker(self.bot, self.store, self.guilds, settings)
        self.bot.tree.add_command(self.menu)
        await self.asker.recover()

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    # --- commands ------------------------------------------------------------------------------
    @app_commands.command(name="solve", description="Solve a math problem step by step")
    @app_commands.describe(
        question="The problem, as text (LaTeX such as \\frac{1}{2} is fine)",
        show_reasoning="Attach the model's full reasoning to the solution (default: as the "
        "server chose)",
        private="Send the solution to your direct messages instead of here",
        samples="Solve it this many times and show the answer most samples agree on",
        study="Hide each step behind a spoiler, to reveal one at a time (default: as the "
        "server chose)",
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    async def solve(
        self,
        interaction: discord.Interaction[Any],
        question: str,
        show_reasoning: bool | None = None,
        private: bool = False,
        samples: app_commands.Range[int, 1, MAX_SAMPLES_LIMIT] = 1,
        study: bool | None = None,
    ) -> None:
        await self.asker.ask_interaction(
            interaction,
            Question(
                text=question,
                show_reasoning=show_reasoning,
                private=private,
                samples=samples,
                study=study,
            ),
        )

    async def solve_message(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        question = Question(text=message.content, attachments=attachments_of(message))
        await self.asker.ask_interaction(interaction, question, anchor=message)

    # --- questions without a command ---------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Any message in a DM with the bot, and the asker's messages in a solution thread
        (follow-ups, answered with the earlier questions and written solutions)."""
        if message.author.bot or message.is_system() or message.webhook_id is not None:
            return
        try:
            await self._take(message)
        except redis.exceptions.RedisError as exc:
            log.error("a question in %s could not be taken: %s", message.channel.id, exc)
            with contextlib.suppress(discord.HTTPException):
                await message.reply(
                    failure_text(exc),
                    allowed_mentions=discord.AllowedMentions.none(),
                    mention_author=False,
                )

    async def _take(self, message: discord.Message) -> None:
        channel = message.channel
        if isinstance(channel, discord.DMChannel):
            question = Question(text=message.content, attachments=attachments_of(message))
            await self.asker.ask_message(message, question)
        elif isinstance(channel, discord.Thread):
            conversation = await self.store.conversation(channel.id)
            if conversation is None or message.author.id != conversation.asker_id:
                return
            question = Question(
                text=message.content,
                attachments=attachments_of(message),
                history=tuple(conversation.turns),
            )
            await self.asker.ask_message(message, question)

    # --- the job buttons -----------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_fathom_job_action(
        self, interaction: discord.Interaction[Any], action: JobAction, job_id: str
    ) -> None:
        try:
            if action is JobAction.CANCEL:
                await self.asker.cancel(interaction, job_id)
            elif action is JobAction.SOLVE_AGAIN:
                await self.asker.solve_again(interaction, job_id)
            else:
                await self.asker.show_reasoning(interaction, job_id)
        except Exception as exc:  # a click that fails still gets an answer
            await answer_failure(interaction, exc)
