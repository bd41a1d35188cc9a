"""Questions without a command: any message in a DM with the bot, and the asker's messages in
a solution thread (follow-ups, answered with the earlier questions and written solutions)."""

from __future__ import annotations

import discord
from discord.ext import commands

from bot.asking import Question, attachments_of
from bot.client import FathomBot


class Conversation(commands.Cog):
    def __init__(self, bot: FathomBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.is_system() or message.webhook_id is not None:
            return
        channel = message.channel
        if isinstance(channel, discord.DMChannel):
            question = Question(text=message.content, attachments=attachments_of(message))
            await self.bot.asker.ask_message(message, question)
        elif isinstance(channel, discord.Thread):
            conversation = await self.bot.store.conversation(channel.id)
            if conversation is None or message.author.id != conversation.asker_id:
                return
            question = Question(
                text=message.content,
                attachments=attachments_of(message),
                history=tuple(conversation.turns),
            )
            await self.bot.asker.ask_message(message, question)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, FathomBot)
    await bot.add_cog(Conversation(bot))
