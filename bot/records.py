"""What the bot itself remembers in Redis, as versioned JSON models."""

from __future__ import annotations

import time
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from fathom.contract import Turn

MAX_FOLLOW_UP_TURNS = 3
"""Earlier turns sent back with a follow-up (the newest), so the prompt stays small."""


class TargetKind(StrEnum):
    THREAD = "thread"
    """A thread the bot made from the status message; the answer goes into it."""
    CHANNEL = "channel"
    """An existing thread or a channel: the status message and the answer go there."""
    DM = "dm"
    """A direct message with the asker: the answer is a reply chain under the status message."""


class Promise(BaseModel):
    """The bot's promise to deliver one job: who asked what, and where the answer goes."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = 1
    job_id: str
    user_id: int
    guild_id: int | None = None
    kind: TargetKind
    status_channel_id: int
    status_message_id: int
    target_channel_id: int
    """The thread, channel or DM channel the answer is sent to."""
    question: str
    history: list[Turn] = Field(default_factory=list)
    show_reasoning: bool = False
    private: bool = False
    created_at: float = Field(default_factory=time.time)
    samples: int = 1
    """More than one: a consensus job of that many samples (one job id all the same)."""
    study: bool = False
    """Study mode: every step of the solution behind a spoiler."""
    language: str = "en"
    """The asker's language (`bot.i18n`), chosen when they asked: everything sent for the
    question later is in it."""


class Draft(BaseModel):
    """A question being taken in, saved before its status message is posted: if the bot stops
    before it has promised the job, the restarted bot finishes taking it (the status message
    carries a nonce, so posting it again returns the one Discord already has)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = 1
    job_id: str
    user_id: int
    guild_id: int | None = None
    kind: TargetKind
    """THREAD: a status message in a text channel, a thread made from it."""
    status_channel_id: int
    reply_to_message_id: int | None = None
    position: int
    question: str
    history: list[Turn] = Field(default_factory=list)
    show_reasoning: bool = False
    private: bool = False
    seed: int | None = None
    samples: int = 1
    study: bool = False
    language: str = "en"
    created_at: float = Field(default_factory=time.time)


class Conversation(BaseModel):
    """A solution thread's asker and the turns so far (question + written solution each)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = 1
    asker_id: int
    turns: list[Turn] = Field(default_factory=list)

    def with_turn(self, turn: Turn) -> Conversation:
        turns = [*self.turns, turn][-MAX_FOLLOW_UP_TURNS:]
        return self.model_copy(update={"turns": turns})
