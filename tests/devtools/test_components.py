"""Context menus, buttons, modals and the 15-minute interaction token."""

from __future__ import annotations

import asyncio

import discord
import pytest
from discord import app_commands

from devtools.fakediscord import FakeDiscord
from devtools.fakediscord.client import running


class SolveView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Cancel", custom_id="solve:cancel", style=discord.ButtonStyle.danger)
    async def cancel(
        self, interaction: discord.Interaction, button: discord.ui.Button[SolveView]
    ) -> None:
        button.disabled = True
        await interaction.response.edit_message(content="Cancelled", view=self)


class QuestionModal(discord.ui.Modal, title="Ask"):
    question: discord.ui.TextInput[QuestionModal] = discord.ui.TextInput(
        label="Question", custom_id="question"
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"asked: {self.question.value}")


async def test_context_menu_button_and_modal(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, student)
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    tree = app_commands.CommandTree(client)
    targets: list[str] = []

    @tree.context_menu(name="Solve with Fathom")
    async def solve_message(interaction: discord.Interaction, message: discord.Message) -> None:
        targets.append(message.content)
        await interaction.response.send_message("Queued #1", view=SolveView())

    @tree.command(name="ask", description="Ask in a form")
    async def ask(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(QuestionModal())

    async with running(client, fake_discord):
        client.add_view(SolveView())
        await tree.sync()
        problem = await fake_discord.send_message(student, channel, "Find x if 2x = 6")
        menu = await fake_discord.send_message_command(
            "Solve with Fathom", user=student, target=problem
        )
        [status] = await fake_discord.wait_for_responses(menu)
        assert status.custom_ids() == ["solve:cancel"]
        click = await fake_discord.click_button(status, "solve:cancel", user=student)
        await fake_discord.wait_for(lambda: status.content == "Cancelled")
        with pytest.raises(ValueError, match="disabled"):
            await fake_discord.click_button(status, "solve:cancel", user=student)

        opened = await fake_discord.send_slash_command("ask", user=student, channel=channel)
        await fake_discord.wait_for(lambda: opened.modal)
        submitted = await fake_discord.submit_modal(opened, {"question": "1+1?"})
        [answer] = await fake_discord.wait_for_responses(submitted)

    assert targets == ["Find x if 2x = 6"]
    assert status.type == 23  # a context-menu command's response
    assert click.acknowledged is not None
    assert click.acknowledged["type"] == 7
    assert [r.content for r in status.revisions] == ["Queued #1", "Cancelled"]
    assert answer.content == "asked: 1+1?"


async def test_expired_interaction_token_refuses_followups(fake_discord: FakeDiscord) -> None:
    fake_discord.interaction_token_ttl = 0.3
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, student)
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    tree = app_commands.CommandTree(client)
    pending: list[discord.Interaction] = []

    @tree.command(name="solve", description="Solve")
    async def solve(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        pending.append(interaction)

    async with running(client, fake_discord):
        await tree.sync()
        interaction = await fake_discord.send_slash_command("solve", user=student, channel=channel)
        await fake_discord.wait_for(lambda: pending)
        await asyncio.sleep(0.35)
        with pytest.raises(discord.HTTPException) as caught:
            await pending[0].followup.send("too late")
        text_channel = client.get_channel(channel.id)
        assert isinstance(text_channel, discord.TextChannel)
        await text_channel.send("delivered with the bot token")

    assert caught.value.code == 50027
    assert interaction.original is not None
    assert interaction.original.loading
    assert fake_discord.channel_messages(channel)[-1].content == "delivered with the bot token"
