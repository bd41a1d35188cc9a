"""How often a job reports progress (pure): every phase change at once, otherwise at most one
event per interval, so a 40 tok/s stream costs one Redis write a second, not forty."""

from __future__ import annotations

import time
from collections.abc import Callable

from fathom.contract import Phase


class ProgressThrottle:
    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last_phase: Phase | None = None
        self._last_at = float("-inf")

    def due(self, phase: Phase) -> bool:
        """Whether an event for `phase` should go out now; if so, it counts as sent."""
        now = self._clock()
        if phase is self._last_phase and now - self._last_at < self._interval_s:
            return False
        self._last_phase = phase
        self._last_at = now
        return True
