"""Chaos, reduced for CI (bench/chaos.py runs the full size): every accepted question gets
exactly one answer or one clear failure, nobody is pinged, while everything breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.chaos import ChaosPlan, run

REDUCED = ChaosPlan(
    questions=24,
    servers=3,
    workers=3,
    submit_over_s=15.0,
    worker_kills=1,
    horse_kills=1,
    bot_crashes=1,
    bot_crashes_mid_send=1,
    redis_restarts=1,
    model_outages=1,
    overload_bursts=1,
    stream_drops=1,
    moderator_cancels=1,
    pauses=1,
    clears=1,
    deadline_s=150.0,
)


@pytest.mark.timeout(420)
async def test_every_question_gets_one_outcome_whatever_breaks(tmp_path: Path) -> None:
    report = await run(REDUCED, tmp_path)
    summary = "\n".join(report.lines()) + f"\nlogs: {tmp_path}"
    print(summary)
    assert not [step for step in report.happened if "could not" in step], summary
    assert report.lost == 0, summary
    assert report.duplicates == 0, summary
    assert report.unanswered == 0, summary
    assert report.pings == 0, summary
    assert report.secrets_logged == [], summary
    assert report.accepted + report.refused + report.missed_while_down == report.asked, summary
    assert report.solutions + report.failures == report.accepted, summary
    for action in ("kill worker", "kill horse", "crash bot", "restart redis", "model outage"):
        assert report.happened[action] == 1, summary
