"""Per-server settings, stored in Redis; what a server leaves unset follows the configuration.

`GuildSettings` holds what the server chose (None: the configured default); `Effective` is what
applies. Changing one setting validates it first: a bad value is refused with a sentence and
changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeVar

import discord
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot import keys as bot_keys
from bot.i18n import Texts, language_of, texts
from fathom.settings import Settings

MAX_PENDING_LIMIT = 20
MAX_COOLDOWN_S = 3600.0
MAX_DAILY_QUOTA = 10_000
MIN_QUESTION_CHARS = 20
MAX_ALLOWED_CHANNELS = 50
MAX_SAMPLES_LIMIT = 64

T = TypeVar("T")


class GuildSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, validate_assignment=True)

    version: int = 1
    allowed_channels: list[int] = Field(default_factory=list, max_length=MAX_ALLOWED_CHANNELS)
    """Channels where questions are taken (threads in them too); empty: everywhere."""
    moderator_role_id: int | None = None
    admin_role_id: int | None = None
    modlog_channel_id: int | None = None
    max_pending_per_member: int | None = Field(None, ge=1, le=MAX_PENDING_LIMIT)
    cooldown_s: float | None = Field(None, ge=0.0, le=MAX_COOLDOWN_S)
    daily_quota: int | None = Field(None, ge=0, le=MAX_DAILY_QUOTA)
    """Questions one member may ask per day (UTC); 0: no limit."""
    max_question_chars: int | None = Field(None, ge=MIN_QUESTION_CHARS)
    show_reasoning: bool | None = None
    """Attach the model's reasoning to every solution unless the asker says otherwise."""
    max_samples: int | None = Field(None, ge=1, le=MAX_SAMPLES_LIMIT)
    """Most samples one question may ask for (never above the configured cap)."""
    study_mode: bool | None = None
    """Hide each step of every solution behind a spoiler, unless the asker says otherwise."""
    language: Literal["en", "vi"] | None = None
    """The bot's language here when an asker's Discord client is in one it does not speak
    (and for the mod-log); None: English."""


class Setting(StrEnum):
    """The settings `/fathom-settings set` changes, by the name moderators type."""

    MAX_PENDING = "max_pending_per_member"
    COOLDOWN = "cooldown_s"
    DAILY_QUOTA = "daily_quota"
    MAX_QUESTION_CHARS = "max_question_chars"
    SHOW_REASONING = "show_reasoning"
    MAX_SAMPLES = "max_samples"
    STUDY_MODE = "study_mode"


@dataclass(frozen=True, slots=True)
class Effective:
    """The settings that apply to one server."""

    allowed_channels: frozenset[int]
    moderator_role_id: int | None
    admin_role_id: int | None
    modlog_channel_id: int | None
    max_pending: int
    cooldown_s: float
    daily_quota: int
    max_question_chars: int
    show_reasoning: bool
    max_samples: int
    study_mode: bool
    language: str | None


def effective(chosen: GuildSettings, settings: Settings) -> Effective:
    return Effective(
        allowed_channels=frozenset(chosen.allowed_channels),
        moderator_role_id=chosen.moderator_role_id,
        admin_role_id=chosen.admin_role_id,
        modlog_channel_id=chosen.modlog_channel_id,
        max_pending=_or(chosen.max_pending_per_member, settings.max_pending_per_user),
        cooldown_s=_or(chosen.cooldown_s, settings.question_cooldown_s),
        daily_quota=_or(chosen.daily_quota, settings.daily_quota_per_user),
        max_question_chars=min(
            _or(chosen.max_question_chars, settings.max_question_chars),
            settings.max_question_chars,
        ),
        show_reasoning=_or(chosen.show_reasoning, False),
        max_samples=min(_or(chosen.max_samples, settings.max_samples), settings.max_samples),
        study_mode=_or(chosen.study_mode, False),
        language=chosen.language,
    )


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def changed(chosen: GuildSettings, **update: Any) -> GuildSettings:
    """The settings with `update` applied; ValueError with a readable reason when a value is
    not allowed."""
    try:
        return GuildSettings.model_validate({**chosen.model_dump(), **update})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"`{field}`: {first['msg']}") from None


class GuildSettingsStore:
    def __init__(self, conn: aioredis.Redis) -> None:
        self.conn = conn

    async def get(self, guild_id: int) -> GuildSettings:
        raw = await self.conn.get(bot_keys.guild_settings(guild_id))
        if raw is None:
            return GuildSettings()
        try:
            return GuildSettings.model_validate_json(raw)
        except ValidationError:
            return GuildSettings()

    async def texts_for(self, interaction: discord.Interaction[Any]) -> Texts:
        """The language to answer an interaction in: the member's client's, else the
        server's default, else English."""
        server = None
        if interaction.guild_id is not None:
            server = (await self.get(interaction.guild_id)).language
        return texts(language_of(interaction.locale, server))

    async def put(self, guild_id: int, chosen: GuildSettings) -> None:
        await self.conn.set(bot_keys.guild_settings(guild_id), chosen.model_dump_json())

    async def blocked(self, guild_id: int, user_id: int) -> bool:
        return bool(await self.conn.sismember(bot_keys.guild_blocked(guild_id), str(user_id)))

    async def block(self, guild_id: int, user_id: int, blocked: bool) -> bool:
        """Block or unblock; False if nothing changed."""
        key = bot_keys.guild_blocked(guild_id)
        if blocked:
            return bool(await self.conn.sadd(key, str(user_id)))
        return bool(await self.conn.srem(key, str(user_id)))

    async def take_daily(self, guild_id: int, user_id: int, quota: int, count: int = 1) -> bool:
        """Count `count` questions (a consensus of k samples counts k) against the member's
        quota for today (UTC); False when they do not fit (then nothing is counted). A quota
        of 0 is no limit."""
        if quota <= 0:
            return True
        key = bot_keys.daily_count(guild_id, user_id, _today())
        used = int(await self.conn.incrby(key, count))
        if used == count:
            await self.conn.expire(key, 2 * 24 * 3600)
        if used > quota:
            await self.conn.decrby(key, count)
            return False
        return True

    async def daily_used(self, guild_id: int, user_id: int) -> int:
        return int(await self.conn.get(bot_keys.daily_count(guild_id, user_id, _today())) or 0)

    async def give_back_daily(self, guild_id: int, user_id: int, count: int = 1) -> None:
        """Questions counted but never enqueued no longer count."""
        key = bot_keys.daily_count(guild_id, user_id, _today())
        used = int(await self.conn.get(key) or 0)
        if used > 0:
            await self.conn.decrby(key, min(count, used))


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())
