"""`fathom queue` as an operator runs it: a subprocess against real Redis and real RQ queues."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import redis
from PIL import Image

from fathom import admin
from fathom.contract import Failure, FailureCode, Origin, SolveRequest, SolveResult, SolveStatus
from fathom.events import end_job, load_result
from fathom.queue import enqueue_solve, solve_queue
from fathom.settings import get_settings

GUILD = 5


def fathom_queue(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "queue", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        input=stdin,
    )


def waiting(conn: redis.Redis, user: int) -> str:
    request = SolveRequest(
        question=f"Question of {user}?", origin=Origin(guild_id=GUILD, user_id=user)
    )
    return enqueue_solve(conn, request, get_settings())


def failure(conn: redis.Redis) -> str:
    job_id = waiting(conn, 9)
    result = SolveResult(
        job_id=job_id,
        status=SolveStatus.FAILED,
        question="Question of 9?",
        origin=Origin(guild_id=GUILD, user_id=9),
        failure=Failure(code=FailureCode.MODEL_UNREACHABLE, message="The model server is down."),
    )
    solve_queue(conn, get_settings()).remove(job_id)
    end_job(conn, result, ttl_s=60)
    return job_id


def test_failed_lists_the_reasons_and_stats_draws_a_chart(
    redis_conn: redis.Redis, tmp_path: Path
) -> None:
    job_id = failure(redis_conn)
    listed = fathom_queue("failed", "--guild", str(GUILD), "--json")
    chart = tmp_path / "stats.png"
    drawn = fathom_queue("stats", "--guild", str(GUILD), "-o", str(chart))
    assert listed.returncode == 0, listed.stderr
    [outcome] = json.loads(listed.stdout)
    assert outcome["job_id"] == job_id
    assert outcome["failure"]["message"] == "The model server is down."
    assert drawn.returncode == 0, drawn.stderr
    assert Image.open(io.BytesIO(chart.read_bytes())).format == "PNG"


def test_clear_asks_first_then_drops_the_waiting_jobs_and_is_audited(
    redis_conn: redis.Redis,
) -> None:
    jobs = [waiting(redis_conn, user) for user in (1, 2, 3)]
    declined = fathom_queue("clear", "--guild", str(GUILD), stdin="n\n")
    assert declined.returncode == 1
    assert solve_queue(redis_conn, get_settings()).count == 3
    done = fathom_queue("clear", "--guild", str(GUILD), stdin="y\n")
    assert done.returncode == 0, done.stderr
    assert "dropped 3 waiting jobs" in done.stdout
    assert solve_queue(redis_conn, get_settings()).count == 0
    for job_id in jobs:
        result = load_result(redis_conn, job_id)
        assert result is not None
        assert result.failure is not None
        assert result.failure.message.startswith("Cancelled by an operator (")
    audited = json.loads(fathom_queue("audit", "--json").stdout)
    assert [entry["action"] for entry in audited] == ["clear"]
    assert audited[0]["actor"]["kind"] == "shell"
    assert sorted(audited[0]["job_ids"]) == sorted(jobs)


def test_cancel_every_job_of_a_member(redis_conn: redis.Redis) -> None:
    mine = [waiting(redis_conn, 7), waiting(redis_conn, 7)]
    other = waiting(redis_conn, 8)
    done = fathom_queue("cancel", "--guild", str(GUILD), "--member", "7")
    assert done.returncode == 0, done.stderr
    assert sorted(line.split(":")[0] for line in done.stdout.splitlines()) == sorted(mine)
    assert solve_queue(redis_conn, get_settings()).get_job_ids() == [other]


def test_pause_without_a_server_pauses_every_worker(redis_conn: redis.Redis) -> None:
    assert fathom_queue("pause").returncode == 0
    assert admin.status(redis_conn, get_settings(), None).suspended
    assert fathom_queue("resume").returncode == 0
    assert not admin.status(redis_conn, get_settings(), None).suspended


def test_retry_of_an_unknown_job_says_why(redis_conn: redis.Redis) -> None:
    done = fathom_queue("retry", "no-such-job")
    assert done.returncode == 1
    assert "no longer known" in done.stderr
