"""Discord-style rate limits: per-route buckets with headers, the global limit, injected 429s.

The per-route limits are modelled on what Discord reports for bots (they are not published and
can change); tests can replace them. Interaction callbacks and interaction-token webhooks are
exempt from the global limit, as on Discord.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

# Route keys are "METHOD /path/{template}" with the API prefix stripped.
DEFAULT_RULES: dict[str, tuple[int, float]] = {
    "POST /channels/{channel_id}/messages": (5, 5.0),
    "PATCH /channels/{channel_id}/messages/{message_id}": (5, 5.0),
    "DELETE /channels/{channel_id}/messages/{message_id}": (5, 1.0),
    "POST /channels/{channel_id}/messages/{message_id}/threads": (5, 5.0),
    "POST /channels/{channel_id}/threads": (5, 5.0),
    "PATCH /channels/{channel_id}": (5, 5.0),
    "POST /channels/{channel_id}/typing": (5, 5.0),
    "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me": (1, 0.25),
    "POST /webhooks/{webhook_id}/{webhook_token}": (5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": (5, 2.0),
    "POST /users/@me/channels": (5, 5.0),
    "PUT /applications/{application_id}/commands": (2, 60.0),
    "PUT /applications/{application_id}/guilds/{guild_id}/commands": (2, 60.0),
}
DEFAULT_LIMIT = (50, 1.0)
GLOBAL_LIMIT_PER_SECOND = 50
# Parameters that make a separate bucket for the same route (Discord's "major parameters").
MAJOR_PARAMETERS = ("channel_id", "guild_id", "webhook_id", "webhook_token", "interaction_id")


@dataclass
class Bucket:
    limit: int
    window: float
    remaining: int
    resets_at: float

    def roll(self, now: float) -> None:
        if now >= self.resets_at:
            self.remaining = self.limit
            self.resets_at = now + self.window


@dataclass(frozen=True)
class Verdict:
    """What the limiter decided for one request, and the headers that describe it."""

    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0
    is_global: bool = False


@dataclass
class Injection:
    """A test-requested fault: the next `count` matching requests get 429 (or `status`)."""

    method: str
    route: str
    count: int
    retry_after: float
    is_global: bool
    status: int = 429


@dataclass
class RateLimiter:
    enabled: bool = True
    rules: dict[str, tuple[int, float]] = field(default_factory=lambda: dict(DEFAULT_RULES))
    global_per_second: int = GLOBAL_LIMIT_PER_SECOND
    buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)
    global_window_start: float = 0.0
    global_count: int = 0
    injections: list[Injection] = field(default_factory=list)
    self_inflicted_429s: int = 0
    """429s the client earned by exceeding a limit (not injected by the test)."""
    injected_429s: int = 0

    def take_injection(self, method: str, route: str) -> Injection | None:
        for injection in self.injections:
            if injection.method in (method, "*") and injection.route in (route, "*"):
                injection.count -= 1
                if injection.count <= 0:
                    self.injections.remove(injection)
                return injection
        return None

    def check(self, method: str, route: str, params: dict[str, str]) -> Verdict:
        key = f"{method} {route}"
        limit, window = self.rules.get(key, DEFAULT_LIMIT)
        bucket_hash = hashlib.sha1(key.encode()).hexdigest()[:16]
        major = ":".join(params.get(p, "") for p in MAJOR_PARAMETERS)
        now = time.monotonic()
        bucket = self.buckets.get((key, major))
        if bucket is None:
            bucket = self.buckets[(key, major)] = Bucket(limit, window, limit, now + window)
        bucket.roll(now)
        if not self.enabled:
            return Verdict(True, {})

        # Interaction callbacks and interaction-token webhooks are outside the global limit.
        exempt = route.startswith(("/interactions/", "/webhooks/"))
        if not exempt:
            if now - self.global_window_start >= 1.0:
                self.global_window_start, self.global_count = now, 0
            if self.global_count >= self.global_per_second:
                retry = self.global_window_start + 1.0 - now
                self.self_inflicted_429s += 1
                return Verdict(False, self._headers(bucket, now, bucket_hash), retry, True)
            self.global_count += 1

        if bucket.remaining <= 0:
            self.self_inflicted_429s += 1
            headers = self._headers(bucket, now, bucket_hash)
            return Verdict(False, headers, bucket.resets_at - now)
        bucket.remaining -= 1
        return Verdict(True, self._headers(bucket, now, bucket_hash))

    @staticmethod
    def _headers(bucket: Bucket, now: float, bucket_hash: str) -> dict[str, str]:
        reset_after = max(bucket.resets_at - now, 0.0)
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(bucket.remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash,
        }


def too_many_requests_headers(retry_after: float, *, is_global: bool) -> dict[str, str]:
    """Headers of a 429 as Discord sends it; discord.py treats a 429 without Via as a ban."""
    headers = {
        "Retry-After": str(math.ceil(retry_after)),
        "Via": "1.1 google",
        "X-RateLimit-Scope": "global" if is_global else "user",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    return headers
