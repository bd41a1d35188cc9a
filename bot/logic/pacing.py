"""Pacing the bot's own REST calls under Discord's global limit (50 requests/s per bot,
interaction responses excluded). discord.py only reacts to a global 429, after which every
waiting request retries at once, so a burst of questions turns into a storm of 429s (and,
after five, errors); booking each request a slot in advance keeps the bot under the limit."""

from __future__ import annotations


class TokenBucket:
    """The generic cell rate algorithm: `rate_per_s` on average, up to `burst` at once."""

    def __init__(self, rate_per_s: float, burst: int = 1) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._interval = 1.0 / rate_per_s
        self._slack = (burst - 1) * self._interval
        self._theoretical: float | None = None

    def reserve(self, now: float) -> float:
        """Book one request; how long to wait before sending it (0: now). Bookings made one
        after another are spaced 1/rate apart once the burst is spent."""
        theoretical = now if self._theoretical is None else max(self._theoretical, now)
        send_at = max(now, theoretical - self._slack)
        self._theoretical = theoretical + self._interval
        return send_at - now
