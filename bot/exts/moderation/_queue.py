"""`/queue`: the moderators' view of the queue and their actions on it. Every command checks
the caller's privilege itself (Discord's default_permissions is only a hint); each action is the
same `fathom.admin` function `fathom queue` runs in a shell."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.authority import actor_of, privilege_of
from bot.client import FathomBot, answer_failure
from bot.guild_settings import GuildSettingsStore
from bot.i18n import ENGLISH, N_, Texts
from bot.logic.naming import job_id_prefix
from bot.logic.privileges import REFUSALS, Privilege
from bot.logic.progress import format_duration
from bot.logic.queue_text import failure_line, paused_line, status_fields
from bot.logic.stats_chart import stats_chart
from fathom import admin
from fathom.queue import CancelOutcome

NONE = discord.AllowedMentions.none()
PICK_LIMIT = 25
"""Options in one select menu (Discord's limit)."""
CONFIRM_S = 120.0
NOT_A_JOB_ID = N_(
    "That is not a job id: ids are letters, digits, `-` and `_` (up to 64), as `/queue status` "
    "and `/queue failed` show them; the first characters are enough."
)
Scope = Literal["server", "everywhere"]


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class QueueCommands(commands.GroupCog, group_name="queue", group_description="Steer the queue"):
    def __init__(self, bot: FathomBot) -> None:
        self.bot = bot
        self.settings = bot.settings
        self.guilds = GuildSettingsStore(bot.redis)
        super().__init__()

    async def allowed(self, interaction: discord.Interaction[Any], needed: Privilege) -> bool:
        """Whether the caller may; if not, they are told so (only they see it)."""
        if await privilege_of(interaction, self.guilds, self.settings) >= needed:
            return True
        t = await self.guilds.texts_for(interaction)
        await interaction.response.send_message(t.gettext(REFUSALS[needed]), ephemeral=True)
        return False

    def _guild_id(self, interaction: discord.Interaction[Any]) -> int:
        assert interaction.guild_id is not None  # guild_only
        return interaction.guild_id

    @app_commands.command(name="status", description="This server's questions and the queue")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        t = await self.guilds.texts_for(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = self._guild_id(interaction)
        snapshot = await asyncio.to_thread(admin.status, self.bot.rq_conn, self.settings, guild_id)
        embed = discord.Embed(title=t.gettext("Queue status"), description=paused_line(snapshot, t))
        for name, value in status_fields(snapshot, t):
            embed.add_field(name=name, value=value, inline=False)
        await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=NONE)

    @app_commands.command(name="pause", description="Stop taking questions (queued ones stay)")
    @app_commands.describe(scope="This server, or every server (operators only)")
    async def pause(self, interaction: discord.Interaction[Any], scope: Scope = "server") -> None:
        await self._pause(interaction, scope, pause=True)

    @app_commands.command(name="resume", description="Take questions again")
    @app_commands.describe(scope="This server, or every server (operators only)")
    async def resume(self, interaction: discord.Interaction[Any], scope: Scope = "server") -> None:
        await self._pause(interaction, scope, pause=False)

    async def _pause(
        self, interaction: discord.Interaction[Any], scope: Scope, *, pause: bool
    ) -> None:
        everywhere = scope == "everywhere"
        needed = Privilege.OPERATOR if everywhere else Privilege.MODERATOR
        if not await self.allowed(interaction, needed):
            return
        t = await self.guilds.texts_for(interaction)
        actor = actor_of(interaction)
        conn = self.bot.rq_conn
        if everywhere:
            action = admin.pause_all if pause else admin.resume_all
            changed = await asyncio.to_thread(action, conn, actor)
            if pause:
                done = t.gettext("Every worker stops taking new questions")
            else:
                done = t.gettext("Workers take jobs")
        else:
            guild_action = admin.pause_guild if pause else admin.resume_guild
            changed = await asyncio.to_thread(
                guild_action, conn, self._guild_id(interaction), actor
            )
            if pause:
                done = t.gettext(
                    "Questions here are paused: askers are told so and nothing is queued; "
                    "queued ones stay"
                )
            else:
                done = t.gettext("Questions here are taken again")
        note = "" if changed else " " + t.gettext("(it already was so)")
        await interaction.response.send_message(f"{done}{note}.", ephemeral=True)

    @app_commands.command(name="cancel", description="Cancel a question, or every one of a member")
    @app_commands.describe(
        job="The job id (the first characters are enough); leave empty to pick from a list",
        member="Cancel every question of this member",
    )
    async def cancel(
        self,
        interaction: discord.Interaction[Any],
        job: str | None = None,
        member: discord.Member | None = None,
    ) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        t = await self.guilds.texts_for(interaction)
        guild_id = self._guild_id(interaction)
        conn = self.bot.rq_conn
        tickets = await asyncio.to_thread(admin.guild_tickets, conn, guild_id)
        if member is not None:
            job_ids = [ticket.job_id for ticket in tickets if ticket.user_id == member.id]
            if not job_ids:
                await interaction.response.send_message(
                    t.gettext("{member} has no questions waiting or being solved.").format(
                        member=member.mention
                    ),
                    ephemeral=True,
                    allowed_mentions=NONE,
                )
                return
        elif job is not None:
            prefix = job_id_prefix(job)
            if prefix is None:
                await interaction.response.send_message(t.gettext(NOT_A_JOB_ID), ephemeral=True)
                return
            matches = [ticket.job_id for ticket in tickets if ticket.job_id.startswith(prefix)]
            if len(matches) != 1:
                if not matches:
                    why = t.gettext("`{job}` matches no question of this server.")
                else:
                    why = t.gettext("`{job}` matches several questions of this server.")
                hint = t.gettext(
                    "Use `/queue status` for the ids, or run `/queue cancel` without options "
                    "to pick from a list."
                )
                await interaction.response.send_message(
                    f"{why.format(job=prefix)} {hint}", ephemeral=True
                )
                return
            job_ids = matches
        else:
            if not tickets:
                await interaction.response.send_message(
                    t.gettext("No questions are waiting or being solved here."), ephemeral=True
                )
                return
            picker = CancelPicker(self, interaction.user.id, guild_id, tickets[:PICK_LIMIT], t)
            await interaction.response.send_message(
                t.gettext("Which questions should I cancel?"), view=picker, ephemeral=True
            )
            return
        await interaction.response.send_message(
            await self.cancel_now(interaction, guild_id, job_ids, t), ephemeral=True
        )

    async def cancel_now(
        self, interaction: discord.Interaction[Any], guild_id: int, job_ids: list[str], t: Texts
    ) -> str:
        outcomes = await asyncio.to_thread(
            admin.cancel_jobs,
            self.bot.rq_conn,
            job_ids,
            self.settings,
            actor_of(interaction),
            guild_id=guild_id,
        )
        return cancel_summary(outcomes, t)

    @app_commands.command(name="clear", description="Drop this server's waiting questions")
    async def clear(self, interaction: discord.Interaction[Any]) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        t = await self.guilds.texts_for(interaction)
        guild_id = self._guild_id(interaction)
        waiting = await asyncio.to_thread(
            admin.queued_jobs, self.bot.rq_conn, guild_id, self.settings
        )
        if not waiting:
            await interaction.response.send_message(
                t.gettext("No questions of this server are waiting."), ephemeral=True
            )
            return
        await interaction.response.send_message(
            t.ngettext(
                "Drop the {count} question of this server still waiting? Its asker is told; "
                "questions being solved go on.",
                "Drop the {count} questions of this server still waiting? Their askers are "
                "told; questions being solved go on.",
                len(waiting),
            ).format(count=len(waiting)),
            view=ClearConfirm(self, interaction.user.id, guild_id, t),
            ephemeral=True,
        )

    @app_commands.command(name="failed", description="Recent failures and why")
    async def failed(self, interaction: discord.Interaction[Any]) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        t = await self.guilds.texts_for(interaction)
        since = time.time() - 24 * 3600
        found = await asyncio.to_thread(
            admin.failed, self.bot.rq_conn, self._guild_id(interaction), since
        )
        if not found:
            await interaction.response.send_message(
                t.gettext("No question failed here in the last 24 hours."), ephemeral=True
            )
            return
        lines = "\n".join(failure_line(outcome, t) for outcome in found)
        heading = t.gettext(
            "Failed in the last 24 hours (newest first; `/queue retry job:<id>` runs one again):"
        )
        await interaction.response.send_message(
            f"{heading}\n{lines}"[:2000],
            ephemeral=True,
            allowed_mentions=NONE,
        )

    @app_commands.command(name="retry", description="Run a finished question again")
    @app_commands.describe(job="The job id (from /queue failed; the first characters are enough)")
    async def retry(self, interaction: discord.Interaction[Any], job: str) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        t = await self.guilds.texts_for(interaction)
        prefix = job_id_prefix(job)
        if prefix is None:
            await interaction.response.send_message(t.gettext(NOT_A_JOB_ID), ephemeral=True)
            return
        guild_id = self._guild_id(interaction)
        since = time.time() - 7 * 24 * 3600
        known = await asyncio.to_thread(admin.outcomes, self.bot.rq_conn, guild_id, since)
        matches = {o.job_id for o in known if o.job_id.startswith(prefix)}
        if len(matches) != 1:
            if not matches:
                text = t.gettext(
                    "`{job}` matches no finished questions of this server in the last 7 days."
                )
            else:
                text = t.gettext(
                    "`{job}` matches several finished questions of this server in the last 7 days."
                )
            await interaction.response.send_message(text.format(job=prefix), ephemeral=True)
            return
        try:
            new_id = await asyncio.to_thread(
                admin.retry_job,
                self.bot.rq_conn,
                matches.pop(),
                self.settings,
                actor_of(interaction),
                guild_id,
            )
        except admin.RetryRefused as exc:
            await interaction.response.send_message(
                t.gettext("Cannot retry: {reason}.").format(reason=exc), ephemeral=True
            )
            return
        await interaction.response.send_message(
            t.gettext("Queued again as `{job}`; the answer goes where the first one went.").format(
                job=new_id[:8]
            ),
            ephemeral=True,
        )

    @app_commands.command(name="stats", description="This server's last 24 hours, as a chart")
    async def stats(self, interaction: discord.Interaction[Any]) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        t = await self.guilds.texts_for(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        now = time.time()
        guild_id = self._guild_id(interaction)
        found = await asyncio.to_thread(admin.outcomes, self.bot.rq_conn, guild_id, now - 24 * 3600)
        name = interaction.guild.name if interaction.guild else t.gettext("this server")
        title = t.gettext("{server} — last 24 h").format(server=name)
        png = await asyncio.to_thread(stats_chart, found, now, title, t)
        await interaction.followup.send(
            t.ngettext(
                "{count} question finished in the last 24 hours.",
                "{count} questions finished in the last 24 hours.",
                len(found),
            ).format(count=len(found)),
            file=discord.File(io.BytesIO(png), filename="queue-stats.png"),
            ephemeral=True,
        )


SUMMARY_PARTS = {
    CancelOutcome.CANCELLED: N_("{count} taken off the queue"),
    CancelOutcome.STOPPING: N_("{count} being stopped"),
    CancelOutcome.FINISHED: N_("{count} had already finished"),
    CancelOutcome.UNKNOWN: N_("{count} unknown"),
}


def cancel_summary(outcomes: dict[str, CancelOutcome], t: Texts = ENGLISH) -> str:
    parts = [
        t.gettext(SUMMARY_PARTS[outcome]).format(count=count)
        for outcome in CancelOutcome
        if (count := sum(1 for o in outcomes.values() if o is outcome))
    ]
    return t.gettext("Cancelled: {parts}. The askers are told who cancelled.").format(
        parts=", ".join(parts)
    )


class _OwnedView(discord.ui.View):
    """An ephemeral view only the moderator who opened it uses, re-checked on every click."""

    def __init__(self, cog: QueueCommands, owner_id: int, guild_id: int, t: Texts) -> None:
        super().__init__(timeout=CONFIRM_S)
        self.cog = cog
        self.owner_id = owner_id
        self.guild_id = guild_id
        self.t = t

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, _item: Any
    ) -> None:
        await answer_failure(interaction, error)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.owner_id:
            t = await self.cog.guilds.texts_for(interaction)
            await interaction.response.send_message(t.gettext("This is not yours."), ephemeral=True)
            return False
        return await self.cog.allowed(interaction, Privilege.MODERATOR)


class CancelPicker(_OwnedView):
    def __init__(
        self, cog: QueueCommands, owner_id: int, guild_id: int, tickets: list[Any], t: Texts
    ) -> None:
        super().__init__(cog, owner_id, guild_id, t)
        now = time.time()
        self.choice: discord.ui.Select[CancelPicker] = discord.ui.Select(
            placeholder=t.gettext("Questions to cancel"),
            min_values=1,
            max_values=len(tickets),
            options=[
                discord.SelectOption(
                    label=ticket.question[:80] or t.gettext("(empty)"),
                    value=ticket.job_id,
                    description=t.gettext("{job} · {age} ago").format(
                        job=ticket.job_id[:8], age=format_duration(now - ticket.enqueued_at)
                    ),
                )
                for ticket in tickets
            ],
        )
        self.choice.callback = self.chosen  # type: ignore[method-assign]
        self.add_item(self.choice)

    async def chosen(self, interaction: discord.Interaction[Any]) -> None:
        summary = await self.cog.cancel_now(
            interaction, self.guild_id, list(self.choice.values), self.t
        )
        self.stop()
        await interaction.response.edit_message(content=summary, view=None)


class ClearConfirm(_OwnedView):
    def __init__(self, cog: QueueCommands, owner_id: int, guild_id: int, t: Texts) -> None:
        super().__init__(cog, owner_id, guild_id, t)
        self.confirm.label = t.gettext("Drop them")
        self.keep.label = t.gettext("Keep them")

    @discord.ui.button(label="Drop them", style=discord.ButtonStyle.danger)
    async def confirm(
        self, interaction: discord.Interaction[Any], _button: discord.ui.Button[ClearConfirm]
    ) -> None:
        outcomes = await asyncio.to_thread(
            admin.clear_guild,
            self.cog.bot.rq_conn,
            self.guild_id,
            self.cog.settings,
            actor_of(interaction),
        )
        self.stop()
        dropped = sum(1 for o in outcomes.values() if o is CancelOutcome.CANCELLED)
        await interaction.response.edit_message(
            content=self.t.gettext(
                "Dropped {count} waiting questions; their askers are told."
            ).format(count=dropped),
            view=None,
        )

    @discord.ui.button(label="Keep them", style=discord.ButtonStyle.secondary)
    async def keep(
        self, interaction: discord.Interaction[Any], _button: discord.ui.Button[ClearConfirm]
    ) -> None:
        self.stop()
        await interaction.response.edit_message(
            content=self.t.gettext("Nothing was dropped."), view=None
        )
