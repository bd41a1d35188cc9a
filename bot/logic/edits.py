"""The bot-wide budget for progress edits.

Editing the same message often is what trips Discord's rate limits, and with hundreds of jobs
running even one edit every couple of seconds per message adds up. So an edit is only *asked
for* here; the scheduler hands out the due ones — oldest request first — while keeping a least
interval per message, a least interval per channel, and a token bucket over the whole bot.
Only the newest text of a message matters, so asking twice before the edit is one edit."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True, slots=True)
class EditBudget:
    message_interval_s: float
    """Least time between two edits of one message."""
    channel_interval_s: float
    """Least time between two edits in one channel."""
    edits_per_s: float
    """Bot-wide rate."""
    burst: int = 1
    """Edits that may go out at once after a quiet spell."""


class EditScheduler(Generic[Key]):
    def __init__(self, budget: EditBudget) -> None:
        self._budget = budget
        self._waiting: dict[Key, tuple[bool, float, int]] = {}
        """message → (not urgent, asked since, channel): urgent ones first, then oldest"""
        self._message_last: dict[Key, float] = {}
        self._channel_last: dict[int, float] = {}
        self._tokens = float(budget.burst)
        self._refilled_at: float | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def request(self, message: Key, channel: int, now: float, *, urgent: bool = False) -> None:
        """Ask for an edit of `message` (in `channel`); repeated asks keep the first's place.
        Urgent edits (a job's final state) go before progress edits."""
        waiting = self._waiting.get(message)
        if waiting is None or (urgent and waiting[0]):
            since = now if waiting is None else waiting[1]
            self._waiting[message] = (not urgent, since, channel)

    def forget(self, message: Key) -> None:
        """The message needs no more edits (its job is finished and delivered)."""
        self._waiting.pop(message, None)
        self._message_last.pop(message, None)

    def take_due(self, now: float) -> list[Key]:
        """The messages to edit now, each counted as edited at `now`."""
        self._refill(now)
        due: list[Key] = []
        if self._tokens < 1 or not self._waiting:
            return due
        budget = self._budget
        for message, (_later, _since, channel) in sorted(
            self._waiting.items(), key=lambda kv: kv[1][:2]
        ):
            if self._tokens < 1:
                break
            if now - self._message_last.get(message, -float("inf")) < budget.message_interval_s:
                continue
            if now - self._channel_last.get(channel, -float("inf")) < budget.channel_interval_s:
                continue
            due.append(message)
            self._tokens -= 1
            self._message_last[message] = now
            self._channel_last[channel] = now
            del self._waiting[message]
        self._prune_channels(now)
        return due

    def _refill(self, now: float) -> None:
        if self._refilled_at is not None:
            gained = (now - self._refilled_at) * self._budget.edits_per_s
            self._tokens = min(float(self._budget.burst), self._tokens + gained)
        self._refilled_at = now

    def _prune_channels(self, now: float) -> None:
        """Forget channels idle longer than their interval so the map stays small."""
        if len(self._channel_last) > 4 * max(len(self._waiting), 64):
            limit = self._budget.channel_interval_s
            self._channel_last = {c: t for c, t in self._channel_last.items() if now - t < limit}
