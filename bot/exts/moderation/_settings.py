"""`/fathom-settings`: a server's own rules (where questions are taken, who moderates, limits,
blocked members), each change checked, recorded in the audit log and shown back."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.authority import actor_of, privilege_of
from bot.client import FathomBot
from bot.guild_settings import (
    GuildSettings,
    GuildSettingsStore,
    Setting,
    changed,
    effective,
)
from bot.logic.privileges import REFUSALS, Privilege
from fathom import admin

NONE = discord.AllowedMentions.none()
TRUE_WORDS = {"yes", "true", "on", "1"}
FALSE_WORDS = {"no", "false", "off", "0"}
DEFAULT_WORDS = {"default", "reset", "unset"}


def parse_value(setting: Setting, text: str) -> int | float | bool | None:
    """The value a moderator typed, or ValueError saying what is expected. "default" unsets."""
    word = text.strip().lower()
    if word in DEFAULT_WORDS:
        return None
    if setting in (Setting.SHOW_REASONING, Setting.STUDY_MODE):
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError("expected yes or no (or `default`)")
    try:
        return float(word) if setting is Setting.COOLDOWN else int(word)
    except ValueError:
        kind = "a number of seconds" if setting is Setting.COOLDOWN else "a whole number"
        raise ValueError(f"expected {kind} (or `default`)") from None


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class SettingsCommands(
    commands.GroupCog, group_name="fathom-settings", group_description="This server's rules"
):
    def __init__(self, bot: FathomBot) -> None:
        self.bot = bot
        self.settings = bot.settings
        self.guilds = GuildSettingsStore(bot.redis)
        super().__init__()

    async def allowed(self, interaction: discord.Interaction[Any], needed: Privilege) -> bool:
        if await privilege_of(interaction, self.guilds, self.settings) >= needed:
            return True
        await interaction.response.send_message(REFUSALS[needed], ephemeral=True)
        return False

    def _guild_id(self, interaction: discord.Interaction[Any]) -> int:
        assert interaction.guild_id is not None  # guild_only
        return interaction.guild_id

    async def _change(
        self, interaction: discord.Interaction[Any], what: str, **update: Any
    ) -> None:
        """Validate, store, audit, then show the settings back; a bad value changes nothing."""
        guild_id = self._guild_id(interaction)
        before = await self.guilds.get(guild_id)
        try:
            after = changed(before, **update)
        except ValueError as exc:
            await interaction.response.send_message(
                f"Not changed — {exc}", ephemeral=True, allowed_mentions=NONE
            )
            return
        await self.guilds.put(guild_id, after)
        entry = admin.AuditEntry(
            actor=actor_of(interaction),
            action=f"settings: {what}",
            guild_id=guild_id,
            before={name: before.model_dump()[name] for name in update},
            after={name: after.model_dump()[name] for name in update},
        )
        await asyncio.to_thread(admin.audit, self.bot.rq_conn, entry)
        await interaction.response.send_message(
            embed=self.embed(after), ephemeral=True, allowed_mentions=NONE
        )

    def embed(self, chosen: GuildSettings) -> discord.Embed:
        rules = effective(chosen, self.settings)

        def mark(value: object) -> str:
            return " (default)" if value is None else ""

        def channel(channel_id: int | None) -> str:
            return f"<#{channel_id}>" if channel_id else "none"

        def role(role_id: int | None) -> str:
            return f"<@&{role_id}>" if role_id else "none"

        quota = str(rules.daily_quota) if rules.daily_quota else "no limit"
        embed = discord.Embed(title="Fathom's rules here")
        embed.add_field(
            name="Where",
            value=(
                "Questions taken in: "
                + (", ".join(f"<#{c}>" for c in sorted(rules.allowed_channels)) or "every channel")
                + f"\nMod-log: {channel(rules.modlog_channel_id)}"
            ),
            inline=False,
        )
        embed.add_field(
            name="Who",
            value=f"Moderator role: {role(rules.moderator_role_id)}\n"
            f"Admin role: {role(rules.admin_role_id)} (and Manage Server)",
            inline=False,
        )
        embed.add_field(
            name="Limits per member",
            value=(
                f"Waiting or being solved at once: {rules.max_pending}"
                f"{mark(chosen.max_pending_per_member)}\n"
                f"Cooldown: {rules.cooldown_s:g} s{mark(chosen.cooldown_s)}\n"
                f"Per day: {quota}{mark(chosen.daily_quota)}\n"
                f"Question length: {rules.max_question_chars:,} characters"
                f"{mark(chosen.max_question_chars)}\n"
                f"Reasoning attached by default: {'yes' if rules.show_reasoning else 'no'}"
                f"{mark(chosen.show_reasoning)}\n"
                f"Samples per question at most: {rules.max_samples}{mark(chosen.max_samples)}\n"
                f"Study mode by default: {'yes' if rules.study_mode else 'no'}"
                f"{mark(chosen.study_mode)}"
            ),
            inline=False,
        )
        return embed

    @app_commands.command(name="show", description="This server's rules")
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        chosen = await self.guilds.get(self._guild_id(interaction))
        await interaction.response.send_message(
            embed=self.embed(chosen), ephemeral=True, allowed_mentions=NONE
        )

    @app_commands.command(name="set", description="Change a limit (`default` restores it)")
    @app_commands.describe(setting="What to change", value="The new value, or `default`")
    async def set_(
        self, interaction: discord.Interaction[Any], setting: Setting, value: str
    ) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        try:
            parsed = parse_value(setting, value)
            cap = self.settings.max_samples
            if setting is Setting.MAX_SAMPLES and isinstance(parsed, int) and parsed > cap:
                raise ValueError(f"this bot allows at most {cap} samples per question")
        except ValueError as exc:
            await interaction.response.send_message(
                f"Not changed — `{setting.value}`: {exc}.", ephemeral=True
            )
            return
        await self._change(interaction, setting.value, **{setting.value: parsed})

    @app_commands.command(name="channels", description="Where questions are taken")
    @app_commands.describe(
        action="add or remove a channel, or clear the list (every channel)",
        channel="The channel (its threads count too)",
    )
    async def channels(
        self,
        interaction: discord.Interaction[Any],
        action: Literal["add", "remove", "clear"],
        channel: discord.TextChannel | None = None,
    ) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        current = (await self.guilds.get(self._guild_id(interaction))).allowed_channels
        if action == "clear":
            await self._change(interaction, "channels", allowed_channels=[])
            return
        if channel is None:
            await interaction.response.send_message(
                f"Not changed — `{action}` needs a channel.", ephemeral=True
            )
            return
        updated = (
            sorted({*current, channel.id})
            if action == "add"
            else [c for c in current if c != channel.id]
        )
        await self._change(interaction, "channels", allowed_channels=updated)

    @app_commands.command(name="modlog", description="Where moderators' actions are posted")
    @app_commands.describe(channel="The mod-log channel; leave empty for none")
    async def modlog(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel | None = None
    ) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        await self._change(
            interaction, "mod-log", modlog_channel_id=channel.id if channel else None
        )

    @app_commands.command(name="roles", description="Who moderates (Manage Server needed)")
    @app_commands.describe(
        which="The moderator role or the admin role", role="The role; leave empty for none"
    )
    async def roles(
        self,
        interaction: discord.Interaction[Any],
        which: Literal["moderator", "admin"],
        role: discord.Role | None = None,
    ) -> None:
        if not await self.allowed(interaction, Privilege.ADMIN):
            return
        field = f"{which}_role_id"
        await self._change(interaction, f"{which} role", **{field: role.id if role else None})

    @app_commands.command(name="block", description="Stop a member from asking here")
    async def block(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        await self._block(interaction, member, blocked=True)

    @app_commands.command(name="unblock", description="Let a blocked member ask again")
    async def unblock(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        await self._block(interaction, member, blocked=False)

    async def _block(
        self, interaction: discord.Interaction[Any], member: discord.Member, *, blocked: bool
    ) -> None:
        if not await self.allowed(interaction, Privilege.MODERATOR):
            return
        guild_id = self._guild_id(interaction)
        changed_now = await self.guilds.block(guild_id, member.id, blocked)
        entry = admin.AuditEntry(
            actor=actor_of(interaction),
            action="block" if blocked else "unblock",
            guild_id=guild_id,
            before={"blocked": blocked != changed_now},
            after={"blocked": blocked},
            note=f"member {member.display_name} ({member.id})",
        )
        await asyncio.to_thread(admin.audit, self.bot.rq_conn, entry)
        state = "blocked from asking here" if blocked else "allowed to ask here again"
        note = "" if changed_now else " (already so)"
        await interaction.response.send_message(
            f"{member.mention} is {state}{note}.", ephemeral=True, allowed_mentions=NONE
        )
