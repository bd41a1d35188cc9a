"""`/fathom-settings`: a server's own rules (where questions are taken, who moderates, limits,
blocked members, the bot's language), each change checked, recorded in the audit log and shown
back."""

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
from bot.i18n import LANGUAGES, Texts
from bot.logic.privileges import REFUSALS, Privilege
from fathom import admin

NONE = discord.AllowedMentions.none()
TRUE_WORDS = {"yes", "true", "on", "1", "có", "bật"}
FALSE_WORDS = {"no", "false", "off", "0", "không", "tắt"}
DEFAULT_WORDS = {"default", "reset", "unset", "mặc định"}


def parse_value(setting: Setting, text: str, t: Texts) -> int | float | bool | None:
    """The value a moderator typed, or ValueError saying what is expected. "default" unsets."""
    word = text.strip().lower()
    if word in DEFAULT_WORDS:
        return None
    if setting in (Setting.SHOW_REASONING, Setting.STUDY_MODE):
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(t.gettext("expected yes or no (or `default`)"))
    try:
        return float(word) if setting is Setting.COOLDOWN else int(word)
    except ValueError:
        if setting is Setting.COOLDOWN:
            expected = t.gettext("expected a number of seconds (or `default`)")
        else:
            expected = t.gettext("expected a whole number (or `default`)")
        raise ValueError(expected) from None


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

    async def allowed(
        self, interaction: discord.Interaction[Any], needed: Privilege, t: Texts
    ) -> bool:
        if await privilege_of(interaction, self.guilds, self.settings) >= needed:
            return True
        await interaction.response.send_message(t.gettext(REFUSALS[needed]), ephemeral=True)
        return False

    def _guild_id(self, interaction: discord.Interaction[Any]) -> int:
        assert interaction.guild_id is not None  # guild_only
        return interaction.guild_id

    async def _change(
        self, interaction: discord.Interaction[Any], what: str, t: Texts, **update: Any
    ) -> None:
        """Validate, store, audit, then show the settings back; a bad value changes nothing."""
        guild_id = self._guild_id(interaction)
        before = await self.guilds.get(guild_id)
        try:
            after = changed(before, **update)
        except ValueError as exc:
            await interaction.response.send_message(
                t.gettext("Not changed — {reason}").format(reason=exc),
                ephemeral=True,
                allowed_mentions=NONE,
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
        if "language" in update:  # the new language, from this answer on
            t = await self.guilds.texts_for(interaction)
        await interaction.response.send_message(
            embed=self.embed(after, t), ephemeral=True, allowed_mentions=NONE
        )

    def embed(self, chosen: GuildSettings, t: Texts) -> discord.Embed:
        rules = effective(chosen, self.settings)

        def mark(value: object) -> str:
            return " " + t.gettext("(default)") if value is None else ""

        def yes(value: bool) -> str:
            return t.gettext("yes") if value else t.gettext("no")

        def channel(channel_id: int | None) -> str:
            return f"<#{channel_id}>" if channel_id else t.gettext("none")

        def role(role_id: int | None) -> str:
            return f"<@&{role_id}>" if role_id else t.gettext("none")

        quota = str(rules.daily_quota) if rules.daily_quota else t.gettext("no limit")
        taken = ", ".join(f"<#{c}>" for c in sorted(rules.allowed_channels)) or t.gettext(
            "every channel"
        )
        language = LANGUAGES[rules.language or "en"]
        embed = discord.Embed(title=t.gettext("Fathom's rules here"))
        embed.add_field(
            name=t.gettext("Where"),
            value=t.gettext("Questions taken in: {channels}").format(channels=taken)
            + "\n"
            + t.gettext("Mod-log: {channel}").format(channel=channel(rules.modlog_channel_id)),
            inline=False,
        )
        embed.add_field(
            name=t.gettext("Who"),
            value=t.gettext("Moderator role: {role}").format(role=role(rules.moderator_role_id))
            + "\n"
            + t.gettext("Admin role: {role} (and Manage Server)").format(
                role=role(rules.admin_role_id)
            ),
            inline=False,
        )
        limits = [
            t.gettext("Waiting or being solved at once: {count}").format(count=rules.max_pending)
            + mark(chosen.max_pending_per_member),
            t.gettext("Cooldown: {seconds} s").format(seconds=t.number(rules.cooldown_s))
            + mark(chosen.cooldown_s),
            t.gettext("Per day: {quota}").format(quota=quota) + mark(chosen.daily_quota),
            t.gettext("Question length: {chars} characters").format(
                chars=t.number(rules.max_question_chars)
            )
            + mark(chosen.max_question_chars),
            t.gettext("Reasoning attached by default: {answer}").format(
                answer=yes(rules.show_reasoning)
            )
            + mark(chosen.show_reasoning),
            t.gettext("Samples per question at most: {count}").format(count=rules.max_samples)
            + mark(chosen.max_samples),
            t.gettext("Study mode by default: {answer}").format(answer=yes(rules.study_mode))
            + mark(chosen.study_mode),
            t.gettext("Language: {language}").format(language=language) + mark(chosen.language),
        ]
        embed.add_field(name=t.gettext("Limits per member"), value="\n".join(limits), inline=False)
        return embed

    @app_commands.command(name="show", description="This server's rules")
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        t = await self.guilds.texts_for(interaction)
        if not await self.allowed(interaction, Privilege.MODERATOR, t):
            return
        chosen = await self.guilds.get(self._guild_id(interaction))
        await interaction.response.send_message(
            embed=self.embed(chosen, t), ephemeral=True, allowed_mentions=NONE
        )

    @app_commands.command(name="set", description="Change a limit (`default` restores it)")
    @app_commands.describe(setting="What to change", value="The new value, or `default`")
    async def set_(
        self, interaction: discord.Interaction[Any], setting: Setting, value: str
    ) -> None:
        t = await self.guilds.texts_for(interaction)
        if not await self.allowed(interaction, Privilege.MODERATOR, t):
            return
        try:
            parsed = parse_value(setting, value, t)
            cap = self.settings.max_samples
            if setting is Setting.MAX_SAMPLES and isinstance(parsed, int) and parsed > cap:
                raise ValueError(
                    t.gettext("this bot allows at most {cap} samples per question").format(cap=cap)
                )
        except ValueError as exc:
            await interaction.response.send_message(
                t.gettext("Not changed — `{setting}`: {reason}.").format(
                    setting=setting.value, reason=exc
                ),
                ephemeral=True,
            )
            return
        await self._change(interaction, setting.value, t, **{setting.value: parsed})

    @app_commands.command(
        name="language", description="The bot's language here when a member's is not spoken"
    )
    @app_commands.describe(language="English, Tiếng Việt, or the default (English)")
    @app_commands.choices(
        language=[
            *(app_commands.Choice(name=name, value=code) for code, name in LANGUAGES.items()),
            app_commands.Choice(name="default", value="default"),
        ]
    )
    async def language(
        self, interaction: discord.Interaction[Any], language: app_commands.Choice[str]
    ) -> None:
        t = await self.guilds.texts_for(interaction)
        if not await self.allowed(interaction, Privilege.MODERATOR, t):
            return
        chosen = None if language.value == "default" else language.value
        await self._change(interaction, "language", t, language=chosen)

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
        t = await self.guilds.texts_for(interaction)
        if not await self.allowed(interaction, Privilege.MODERATOR, t):
            return
        current = (await self.guilds.get(self._guild_id(interaction))).allowed_channels
        if action == "clear":
            await self._change(interaction, "channels", t, allowed_channels=[])
            return
        if channel is None:
            await interaction.response.send_message(
                t.gettext("Not changed — `{action}` needs a channel.").format(action=action),
                ephemeral=True,
            )
            return
        updated = (
            sorted({*current, channel.id})
            if action == "add"
            else [c for c in current if c != channel.id]
        )
        await self._change(interaction, "channels", t, allowed_channels=updated)

    @app_commands.command(name="modlog", description="Where moderators' actions are posted")
    @app_commands.describe(channel="The mod-log channel; leave empty for none")
    async def modlog(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel | None = None
    ) -> None:
        t = await self.guilds.texts_for(interaction)
        if not await self.allowed(interaction, Privilege.MODERATOR, t):
            return
        await self._change(
            interaction, "mod-log", t, modlog_channel_id=channel.id if channel else None
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
        t = await self.guilds.texts_for(interaction)
        if not await self.allowed(interaction, Privilege.ADMIN, t):
            return
        field = f"{which}_role_id"
        await self._change(interaction, f"{which} role", t, **{field: role.id if role else None})

    @app_commands.command(name="block", description="Stop a member from asking here")
    @app_commands.describe(member="The member")
    async def block(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        await self._block(interaction, member, blocked=True)

    @app_commands.command(name="unblock", description="Let a blocked member ask again")
    @app_commands.describe(member="The member")
    async def unblock(self, interaction: discord.Interaction[Any], member: discord.Member) -> None:
        await self._block(interaction, member, blocked=False)

    async def _block(
        self, interaction: discord.Interaction[Any], member: discord.Member, *, blocked: bool
    ) -> None:
        t = await self.guilds.texts_for(interaction)
        if not await self.allowed(interaction, Privilege.MODERATOR, t):
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
        if blocked:
            text = t.gettext("{member} is blocked from asking here.")
            again = t.gettext("{member} is blocked from asking here (already so).")
        else:
            text = t.gettext("{member} is allowed to ask here again.")
            again = t.gettext("{member} is allowed to ask here again (already so).")
        await interaction.response.send_message(
            (text if changed_now else again).format(member=member.mention),
            ephemeral=True,
            allowed_mentions=NONE,
        )
