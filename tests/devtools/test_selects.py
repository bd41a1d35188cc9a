"""String selects, and components on ephemeral responses: what is stored, what a user can
choose or click, and updates that replace a message's components."""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from devtools.fakediscord import FakeDiscord, InteractionRecord
from devtools.fakediscord.client import running


def make_client() -> tuple[discord.Client, app_commands.CommandTree[discord.Client]]:
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    return client, app_commands.CommandTree(client)


class QueueView(discord.ui.View):
    """Pick jobs to cancel (1 to 2 of 3), or a disabled select and a refresh button."""

    def __init__(self, picked: list[list[str]]) -> None:
        super().__init__(timeout=None)
        self.picked = picked

    @discord.ui.select(
        custom_id="queue:cancel",
        placeholder="Jobs to cancel",
        min_values=1,
        max_values=2,
        options=[
            discord.SelectOption(label="Job 1", value="job-1"),
            discord.SelectOption(label="Job 2", value="job-2"),
            discord.SelectOption(label="Job 3", value="job-3"),
        ],
    )
    async def cancel(
        self, interaction: discord.Interaction, select: discord.ui.Select[QueueView]
    ) -> None:
        self.picked.append(list(select.values))
        done = discord.ui.View()
        done.add_item(discord.ui.Button(label="Undo", custom_id="queue:undo"))
        await interaction.response.edit_message(
            content=f"Cancelled {', '.join(select.values)}", view=done
        )

    @discord.ui.select(
        custom_id="queue:frozen",
        disabled=True,
        options=[discord.SelectOption(label="Frozen", value="frozen")],
    )
    async def frozen(
        self, interaction: discord.Interaction, select: discord.ui.Select[QueueView]
    ) -> None:
        raise AssertionError("a disabled select cannot be used")

    @discord.ui.button(label="Refresh", custom_id="queue:refresh")
    async def refresh(
        self, interaction: discord.Interaction, button: discord.ui.Button[QueueView]
    ) -> None:
        await interaction.response.defer()


async def test_choose_in_a_select_then_update_replaces_the_components(
    fake_discord: FakeDiscord,
) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, student)
    client, tree = make_client()
    picked: list[list[str]] = []

    @tree.command(name="queue", description="Your queued jobs")
    async def queue(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Your jobs", view=QueueView(picked))

    async with running(client, fake_discord):
        await tree.sync()
        ix = await fake_discord.send_slash_command("queue", user=student, channel=channel)
        [status] = await fake_discord.wait_for_responses(ix)
        assert status.custom_ids() == ["queue:cancel", "queue:frozen", "queue:refresh"]
        with pytest.raises(ValueError, match="not options"):
            await fake_discord.choose(status, "queue:cancel", ["job-9"], user=student)
        with pytest.raises(ValueError, match="takes 1 to 2 values"):
            await fake_discord.choose(status, "queue:cancel", [], user=student)
        with pytest.raises(ValueError, match="takes 1 to 2 values"):
            await fake_discord.choose(
                status, "queue:cancel", ["job-1", "job-2", "job-3"], user=student
            )
        with pytest.raises(ValueError, match="once"):
            await fake_discord.choose(status, "queue:cancel", ["job-1", "job-1"], user=student)
        with pytest.raises(ValueError, match="disabled"):
            await fake_discord.choose(status, "queue:frozen", ["frozen"], user=student)
        with pytest.raises(TypeError, match="not a string select"):
            await fake_discord.choose(status, "queue:refresh", ["job-1"], user=student)
        with pytest.raises(TypeError, match="not a button"):
            await fake_discord.click_button(status, "queue:cancel", user=student)

        chosen = await fake_discord.choose(status, "queue:cancel", ["job-3", "job-1"], user=student)
        await fake_discord.wait_for(lambda: status.content.startswith("Cancelled"))
        with pytest.raises(LookupError, match="no component 'queue:cancel'"):
            await fake_discord.choose(status, "queue:cancel", ["job-1"], user=student)

    assert chosen.data == {
        "custom_id": "queue:cancel",
        "component_type": 3,
        "values": ["job-3", "job-1"],
    }
    assert chosen.acknowledged is not None
    assert chosen.acknowledged["type"] == 7
    assert picked == [["job-3", "job-1"]]
    assert status.content == "Cancelled job-3, job-1"
    assert status.custom_ids() == ["queue:undo"]
    select = status.revisions[0].components[0]["components"][0]
    assert select["type"] == 3
    assert [o["value"] for o in select["options"]] == ["job-1", "job-2", "job-3"]


class ConfirmClear(discord.ui.View):
    def __init__(self, count: int, cleared: list[int]) -> None:
        super().__init__(timeout=None)
        self.count = count
        self.cleared = cleared
        self.confirm.label = f"Clear {count} jobs?"

    @discord.ui.button(label="Clear", custom_id="clear:confirm", style=discord.ButtonStyle.danger)
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmClear]
    ) -> None:
        self.cleared.append(self.count)
        await interaction.response.edit_message(content=f"Cleared {self.count} jobs", view=None)


async def test_buttons_on_an_ephemeral_confirmation(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    moderator = fake_discord.create_user("moderator")
    bystander = fake_discord.create_user("bystander")
    fake_discord.add_member(guild, moderator)
    fake_discord.add_member(guild, bystander)
    client, tree = make_client()
    cleared: list[int] = []

    @tree.command(name="clear", description="Clear the queue")
    async def clear(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            "Sure?", view=ConfirmClear(12, cleared), ephemeral=True
        )

    async with running(client, fake_discord):
        await tree.sync()
        ix = await fake_discord.send_slash_command("clear", user=moderator, channel=channel)
        [prompt] = await fake_discord.wait_for_responses(ix)
        assert prompt.ephemeral
        assert prompt.components[0]["components"][0]["label"] == "Clear 12 jobs?"
        with pytest.raises(PermissionError, match="ephemeral"):
            await fake_discord.click_button(prompt, "clear:confirm", user=bystander)
        click = await fake_discord.click_button(prompt, "clear:confirm", user=moderator)
        await fake_discord.wait_for(lambda: prompt.content == "Cleared 12 jobs")

    assert cleared == [12]
    assert click.source_message is prompt
    assert click.acknowledged is not None
    assert click.acknowledged["type"] == 7
    assert prompt.components == []
    assert prompt.ephemeral
    assert [r.content for r in prompt.revisions] == ["Sure?", "Cleared 12 jobs"]


class PickOne(discord.ui.View):
    def __init__(self, custom_id: str) -> None:
        super().__init__(timeout=None)
        select: discord.ui.Select[PickOne] = discord.ui.Select(
            custom_id=custom_id,
            options=[discord.SelectOption(label=n, value=n) for n in ("a", "b")],
        )
        select.callback = self.picked  # type: ignore[method-assign]
        self.add_item(select)
        self.interactions: list[discord.Interaction] = []

    async def picked(self, interaction: discord.Interaction) -> None:
        self.interactions.append(interaction)
        await interaction.response.defer()
        done = discord.ui.View()
        done.add_item(discord.ui.Button(label="Done", custom_id="pick:done", disabled=True))
        await interaction.edit_original_response(content="picked", view=done)


async def test_components_of_deferred_ephemeral_followups_and_edits(
    fake_discord: FakeDiscord,
) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    student = fake_discord.create_user("student")
    fake_discord.add_member(guild, student)
    client, tree = make_client()
    views: list[PickOne] = []

    @tree.command(name="pick", description="Pick twice")
    async def pick(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        first, second = PickOne("pick:first"), PickOne("pick:second")
        views.extend([first, second])
        await interaction.followup.send("first", view=first, ephemeral=True)
        await interaction.followup.send("second", view=second, ephemeral=True)
        await interaction.edit_original_response(content="first, again", view=PickOne("pick:x"))

    async with running(client, fake_discord):
        await tree.sync()
        ix: InteractionRecord = await fake_discord.send_slash_command(
            "pick", user=student, channel=channel
        )
        original, second = await fake_discord.wait_for_responses(ix, 2)
        await fake_discord.wait_for(lambda: original.content == "first, again")
        assert original.custom_ids() == ["pick:x"]
        assert second.ephemeral
        assert second.custom_ids() == ["pick:second"]
        chosen = await fake_discord.choose(second, "pick:second", ["b"], user=student)
        await fake_discord.wait_for(lambda: second.content == "picked")

    assert original.ephemeral
    assert [r.components[0]["components"][0]["custom_id"] for r in original.edits] == [
        "pick:first",
        "pick:x",
    ]
    assert chosen.acknowledged is not None
    assert chosen.acknowledged["type"] == 6
    assert views[1].interactions[0].message is not None
    assert views[1].interactions[0].message.flags.ephemeral
    assert second.custom_ids() == ["pick:done"]
    assert second.components[0]["components"][0]["disabled"] is True


async def test_selects_are_validated_when_sent(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    client, _ = make_client()
    select = {"type": 3, "custom_id": "s", "options": [{"label": "x", "value": "x"}]}
    button = {"type": 2, "style": 1, "custom_id": "b", "label": "b"}
    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=channel.id)

    async with running(client, fake_discord):
        with pytest.raises(discord.HTTPException) as shared_row:
            await client.http.request(
                route, json={"components": [{"type": 1, "components": [select, button]}]}
            )
        with pytest.raises(discord.HTTPException) as no_options:
            await client.http.request(
                route,
                json={"components": [{"type": 1, "components": [{**select, "options": []}]}]},
            )
        with pytest.raises(discord.HTTPException) as too_many:
            await client.http.request(
                route,
                json={"components": [{"type": 1, "components": [{**select, "max_values": 26}]}]},
            )

    assert shared_row.value.code == no_options.value.code == too_many.value.code == 50035
    assert "exceeds the maximum width" in str(shared_row.value)
    assert "between 1 and 25" in str(no_options.value)
    assert "less than or equal to 25" in str(too_many.value)
    assert fake_discord.channel_messages(channel) == []
