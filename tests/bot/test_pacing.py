from __future__ import annotations

import pytest

from bot.logic.pacing import TokenBucket


def test_a_burst_goes_at_once_then_requests_are_spaced() -> None:
    bucket = TokenBucket(10.0, burst=3)
    waits = [bucket.reserve(0.0) for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])


def test_idle_time_refills_the_burst() -> None:
    bucket = TokenBucket(10.0, burst=2)
    assert [bucket.reserve(0.0) for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])
    assert [bucket.reserve(5.0) for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


def test_never_more_than_the_rate_over_any_second() -> None:
    bucket = TokenBucket(40.0, burst=5)
    sends = sorted(now + bucket.reserve(now) for now in [i * 0.001 for i in range(2000)])
    for start in range(1, 40):
        assert sum(1 for t in sends if start <= t < start + 1) <= 41  # 40 + a boundary


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0.0)
