"""Benchmark (issue D): fairness across servers, and `/queue status` on a deep queue.

    .venv/bin/python -m bench.fairness          # ~4 min on the 2-core dev box

1. Fairness. Server A enqueues 200 questions, then server B one; `--workers` workers solve them
   on the TGI simulator (one answer takes `--answer-s`). Run twice in one go, first come first
   served (FATHOM_FAIR_QUEUE=false), then fair, `--rounds` times alternating: B's wait (enqueue
   → a worker takes it) in units of one answer's duration, and A's throughput (its 200 answers
   per second of wall time, times that round's median answer duration, so that the shared
   machine's drift in the simulator's speed cancels out), fair / first-come, medians.
2. `/queue status` with 5,000 jobs waiting (1,000 of them the asking server's): the real bot
   answering the real command through the fake Discord, `--status-calls` times: time from the
   command to the bot's answer, p50/p95. Also the enqueue time per job at that depth (each job
   is placed in the fair order by a Lua script).

A throwaway redis-server of its own; the simulator and the workers run as subprocesses.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis

from devtools.redis_server import throwaway_redis
from fathom.contract import Origin, SolveRequest
from fathom.events import load_result
from fathom.queue import enqueue_solve
from fathom.settings import Settings
from simulator.server import SimulatorConfig, SimulatorServer

REPO = Path(__file__).resolve().parent.parent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def request(guild: int, user: int, n: int) -> SolveRequest:
    return SolveRequest(
        question=f"What is {n} + {n}?",
        render=False,
        origin=Origin(source="bench", guild_id=guild, user_id=user),
    )


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def fairness_round(
    conn: redis.Redis, settings: Settings, env: dict[str, str], args: argparse.Namespace
) -> dict[str, float]:
    """A's 200 then B's one, solved by a fresh pool; B's wait and A's throughput."""
    a_jobs = [enqueue_solve(conn, request(1, 100, n), settings) for n in range(args.flood)]
    b_job = enqueue_solve(conn, request(2, 200, 0), settings)
    started = time.monotonic()
    pool = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", "-n", str(args.workers), "--render-workers", "0"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        everything = [*a_jobs, b_job]
        wait_until(
            lambda: (
                all(load_result(conn, job_id) is not None for job_id in everything[-20:])
                and all(load_result(conn, job_id) is not None for job_id in everything)
            ),
            args.flood * args.answer_s,
            "every answer",
        )
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(60)
    results = [load_result(conn, job_id) for job_id in a_jobs]
    b = load_result(conn, b_job)
    assert b is not None
    assert all(r is not None for r in results)
    solve_s = [
        (r.timings.total_s or 0.0) - (r.timings.queued_s or 0.0) for r in results if r is not None
    ]
    answer_s = statistics.median(solve_s)
    first_pickup = min(
        (r.enqueued_at or 0.0) + (r.timings.queued_s or 0.0) for r in results if r is not None
    )
    last_done = max(r.finished_at for r in results if r is not None)
    return {
        "answer_s": answer_s,
        "b_wait_s": (b.timings.queued_s or 0.0),
        "b_wait_answers": (b.timings.queued_s or 0.0) / answer_s,
        "a_per_s": len(results) / (last_done - first_pickup),
        "wall_s": time.monotonic() - started,
    }


def enqueue_cost(redis_url: str, fair: bool, jobs: int = 5000) -> list[float]:
    """Seconds per enqueue as the queue grows to `jobs` (40 servers, 300 askers)."""
    settings = Settings(redis_url=redis_url, fair_queue=fair)
    conn = redis.Redis.from_url(redis_url)
    times: list[float] = []
    for n in range(jobs):
        started = time.perf_counter()
        enqueue_solve(conn, request(1 + n % 40, 1000 + n % 300, n), settings)
        times.append(time.perf_counter() - started)
    return times


async def status_latency(redis_url: str, calls: int) -> tuple[list[float], list[float]]:
    """5,000 waiting jobs, then `/queue status` through the bot and the fake Discord."""
    from bot.client import FathomBot
    from devtools.fakediscord import FakeDiscord
    from devtools.fakediscord.client import running

    os.environ["FATHOM_REDIS_URL"] = redis_url
    settings = Settings()
    conn = redis.Redis.from_url(redis_url)
    async with FakeDiscord() as fake:
        with fake.point_discord_py():
            owner = fake.create_user("owner")
            guild = fake.create_guild("Study", owner=owner)
            channel = fake.create_text_channel(guild, "math")
            enqueue_s: list[float] = []
            for n in range(5000):
                server = guild.id if n % 5 == 0 else 2 + n % 40
                started = time.perf_counter()
                enqueue_solve(conn, request(server, 1000 + n % 300, n), settings)
                enqueue_s.append(time.perf_counter() - started)
            bot = FathomBot(settings, guild_ready_timeout=0.05)
            async with running(bot, fake):
                latencies: list[float] = []
                for _ in range(calls):
                    started = time.perf_counter()
                    interaction = await fake.send_slash_command(
                        "queue status", user=owner, channel=channel
                    )
                    await fake.wait_for_responses(interaction)
                    latencies.append(time.perf_counter() - started)
    return latencies, enqueue_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flood", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--answer-s", type=float, default=2.0, help="one answer's duration")
    parser.add_argument("--status-calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each order")
    args = parser.parse_args(argv)
    tokens = 200
    config = SimulatorConfig(
        tokens_per_s=tokens / args.answer_s,
        ttft_s=0.0,
        batch_slowdown=0.0,
        completion_tokens=tokens,
    )
    rounds: dict[str, list[dict[str, float]]] = {"first come, first served": [], "fair": []}
    with SimulatorServer(config) as sim:
        for _ in range(args.rounds):
            for label, fair_queue in (("first come, first served", "false"), ("fair", "true")):
                with throwaway_redis() as server:
                    env = {
                        **os.environ,
                        "FATHOM_REDIS_URL": server.url(),
                        "FATHOM_MODEL_URL": sim.url,
                        "FATHOM_FAIR_QUEUE": fair_queue,
                        "FATHOM_JOB_RETRIES": "0",
                    }
                    settings = Settings(redis_url=server.url(), fair_queue=fair_queue == "true")
                    conn = redis.Redis.from_url(server.url())
                    rounds[label].append(fairness_round(conn, settings, env, args))
    with throwaway_redis() as server:
        latencies, _ = asyncio.run(status_latency(server.url(), args.status_calls))
    costs: dict[bool, list[float]] = {}
    for fair_order in (False, True):
        with throwaway_redis() as server:
            costs[fair_order] = enqueue_cost(server.url(), fair_order)

    print(f"# Fairness: server A enqueues {args.flood}, then B one; {args.workers} workers")
    print("| order | one answer s | B waited s | B waited (answers) | A answers/s | A per answer |")
    print("|---|---|---|---|---|---|")
    medians: dict[str, dict[str, float]] = {}
    for label, runs in rounds.items():
        for row in runs:
            row["a_per_answer"] = row["a_per_s"] * row["answer_s"]
        medians[label] = {key: statistics.median(row[key] for row in runs) for key in runs[0]}
        for row in runs:
            print(
                f"| {label} | {row['answer_s']:.2f} | {row['b_wait_s']:.2f} | "
                f"{row['b_wait_answers']:.2f} | {row['a_per_s']:.3f} | {row['a_per_answer']:.3f} |"
            )
    fifo, fair = medians["first come, first served"], medians["fair"]
    print(
        f"medians: B waited {fifo['b_wait_answers']:.2f} answers first-come, "
        f"{fair['b_wait_answers']:.2f} fair; A's throughput fair / first-come "
        f"{fair['a_per_answer'] / fifo['a_per_answer']:.3f} "
        f"(raw answers/s: {fair['a_per_s'] / fifo['a_per_s']:.3f})"
    )
    print()
    print("# /queue status with 5,000 jobs waiting (1,000 of this server), through the bot")
    print(
        f"calls {len(latencies)}: p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
    for fair_order, times in costs.items():
        print(
            f"enqueue {'placed fairly' if fair_order else 'first come'} up to depth 5,000: p50 "
            f"{percentile(times, 0.5) * 1000:.2f} ms, p95 {percentile(times, 0.95) * 1000:.2f} "
            f"ms, the last 500 p95 {percentile(times[-500:], 0.95) * 1000:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
