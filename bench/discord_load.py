"""Load on the Discord bot: many /solve interactions through the fake Discord.

The bot runs as its own process (`fathom bot`, default settings) against the fake Discord of
the tests (REST v10 + gateway on loopback, Discord's rate limits as the fake models them), with
a throwaway redis-server of its own. Phases:

1. 500 `/solve` from 500 students in 50 channels (10 servers) within 5 s, no workers running:
   acknowledgement latency (fake dispatch of INTERACTION_CREATE → the bot's callback arrives).
2. 500 more from 500 other students: 1,000 jobs pending; the bot's memory (VmRSS, VmHWM).
3. Edit cadence: every pending job reports THINKING progress once a second (what running
   workers publish, replayed into the events stream) for `--edit-seconds`; Discord requests
   the status edits cost, and 429s the bot earned.
4. Delivery: `fathom worker` and the TGI simulator (fast) solve and render every job; Discord
   requests per delivered solution, and 429s.

    .venv/bin/python -m bench.discord_load            # ~4 min on the 2-core dev box
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis

from bot import keys as bot_keys
from devtools.fakediscord import ChannelRecord, FakeDiscord, InteractionRecord, UserRecord
from devtools.redis_server import throwaway_redis
from fathom.contract import Phase, ProgressEvent
from fathom.events import publish_event
from simulator.server import SimulatorServer, fast_config

REPO = Path(__file__).resolve().parent.parent
BUDGET_TOKENS = 16_000
EDIT_ROUTE = "PATCH /channels/{channel_id}/messages/{message_id}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def requests_by_route(fake: FakeDiscord, since: int) -> Counter[str]:
    return Counter(r.route for r in fake.requests[since:])


def throttled(fake: FakeDiscord, since: int) -> Counter[str]:
    return Counter(r.route for r in fake.requests[since:] if r.rate_limited and not r.injected)


def report_progress(conn: redis.Redis, job_ids: list[str], second: int) -> None:
    """What running workers would publish: one THINKING event per job."""
    for job_id in job_ids:
        publish_event(
            conn,
            ProgressEvent(
                job_id=job_id,
                phase=Phase.THINKING,
                tokens=40 * second,
                budget_tokens=BUDGET_TOKENS,
                elapsed_s=float(second),
            ),
        )


async def settle(fake: FakeDiscord, quiet_s: float = 5.0, limit_s: float = 600.0) -> None:
    """Wait until the bot has made no request for `quiet_s` (its final status edits done)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        count = len(fake.requests)
        await asyncio.sleep(quiet_s)
        if len(fake.requests) == count:
            return


def delivered_jobs(conn: redis.Redis) -> int:
    return sum(
        1
        for key in conn.scan_iter(bot_keys.delivery_key("*"), count=1000)
        if conn.hget(key, "done") == b"1"
    )


async def main(args: argparse.Namespace) -> int:
    with throwaway_redis() as server:
        return await run(args, server.url())


async def run(args: argparse.Namespace, redis_url: str) -> int:
    conn = redis.Redis.from_url(redis_url)
    env = {**os.environ, "FATHOM_REDIS_URL": redis_url}
    env.pop("FATHOM_MODEL_URL", None)

    async with FakeDiscord() as fake:
        guilds = [fake.create_guild(f"Study {g}") for g in range(10)]
        channels = [fake.create_text_channel(g, f"math-{c}") for g in guilds for c in range(5)]
        students = [fake.create_user(f"student{i}") for i in range(2 * args.burst)]
        # Student i asks in channel i mod 50, of the server they are a member of.
        place = [channels[index % len(channels)] for index in range(len(students))]
        for student, channel in zip(students, place, strict=True):
            fake.add_member(fake.guilds[channel.guild_id or 0], student)

        bot = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "bot",
            env={**env, **fake.env()},
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=open(args.bot_log, "w") if args.bot_log else None,  # noqa: SIM115, ASYNC230
        )
        try:
            await fake.wait_until_connected(timeout=60)
            await fake.wait_for(lambda: fake.global_commands, 60, "commands synced")
            await asyncio.sleep(1.0)
            idle_rss, _ = memory_mb(bot.pid)

            # --- 1: the burst ---------------------------------------------------------------
            t0 = time.monotonic()
            interactions = await burst_in_place(
                fake, students[: args.burst], place[: args.burst], args.within
            )
            sent_s = time.monotonic() - t0
            await fake.wait_for(
                lambda: all(i.acknowledged for i in interactions), 60, "every acknowledgement"
            )
            acks = [i.ack_latency or 0.0 for i in interactions]
            unacked = sum(1 for i in interactions if not i.acknowledged)
            late = sum(1 for a in acks if a > 3.0)

            # --- 2: 1,000 pending ----------------------------------------------------------
            more = await burst_in_place(
                fake, students[args.burst :], place[args.burst :], args.within
            )
            everyone = interactions + more
            try:
                await fake.wait_for(
                    lambda: conn.hlen(bot_keys.PROMISED) >= len(everyone), 300, "all promised"
                )
            except TimeoutError:
                replies = Counter(
                    (r.content[:40] if (r := i.original) else "no response") for i in everyone
                )
                print(f"only {conn.hlen(bot_keys.PROMISED)} promised; replies: {replies}")
                raise
            promised_s = time.monotonic() - t0
            await asyncio.sleep(2.0)
            pending_rss, pending_hwm = memory_mb(bot.pid)
            setup_429 = throttled(fake, 0)

            # --- 3: edit cadence ------------------------------------------------------------
            job_ids = [
                j.decode() if isinstance(j, bytes) else j for j in conn.hkeys(bot_keys.PROMISED)
            ]
            mark = len(fake.requests)
            started = time.monotonic()
            for second_index in range(1, args.edit_seconds + 1):
                tick = time.monotonic()
                await asyncio.to_thread(report_progress, conn, job_ids, second_index)
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
            edit_window = time.monotonic() - started
            edit_routes = requests_by_route(fake, mark)
            patches = edit_routes[EDIT_ROUTE]
            edit_429 = throttled(fake, mark)
            edit_times = [r.at for r in fake.requests[mark:] if r.route == EDIT_ROUTE]
            busiest = max(
                (sum(1 for t in edit_times if start <= t < start + 1.0) for start in edit_times),
                default=0,
            )
            edit_rss, edit_hwm = memory_mb(bot.pid)

            # --- 4: delivery ----------------------------------------------------------------
            mark = len(fake.requests)
            with SimulatorServer(fast_config(completion_tokens=600)) as sim:
                workers = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "cli",
                    "worker",
                    "-n",
                    str(args.workers),
                    "--render-workers",
                    str(args.render_workers),
                    env={**env, "FATHOM_MODEL_URL": sim.url},
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                delivery_start = time.monotonic()
                try:
                    await fake.wait_for(
                        lambda: conn.hlen(bot_keys.PROMISED) == 0,
                        args.delivery_timeout,
                        "every job delivered",
                    )
                finally:
                    os.killpg(workers.pid, signal.SIGTERM)
                    await asyncio.wait_for(workers.wait(), 60)
            delivery_s = time.monotonic() - delivery_start
            await settle(fake)  # the last status edits
            delivered = delivered_jobs(conn)
            delivery_routes = requests_by_route(fake, mark)
            delivery_429 = throttled(fake, mark)
            all_routes = requests_by_route(fake, 0)
            final_rss, final_hwm = memory_mb(bot.pid)
        finally:
            bot.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(bot.wait(), 30)
            except TimeoutError:
                bot.kill()

    interactions_total = len(everyone)
    bot_requests = sum(
        n for route, n in all_routes.items() if not route.startswith("POST /interactions/")
    )
    print(f"# Discord bot load ({args.burst} + {args.burst} /solve, default bot settings)")
    print(f"burst 1: {len(interactions)} /solve sent in {sent_s:.2f} s")
    print(
        f"  acknowledged {len(interactions) - unacked}/{len(interactions)}; "
        f"over 3 s: {late}; ack p50 {percentile(acks, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(acks, 0.95) * 1000:.0f} ms, p99 {percentile(acks, 0.99) * 1000:.0f} ms, "
        f"max {max(acks) * 1000:.0f} ms, mean {statistics.mean(acks) * 1000:.0f} ms"
    )
    print(f"all {interactions_total} promised (status message + thread) after {promised_s:.1f} s")
    print(
        f"bot memory: idle {idle_rss:.0f} MB; with {interactions_total} pending "
        f"{pending_rss:.0f} MB (peak {pending_hwm:.0f}); after edits {edit_rss:.0f} MB "
        f"(peak {edit_hwm:.0f}); at the end {final_rss:.0f} MB (peak {final_hwm:.0f})"
    )
    print(f"429s earned while taking the questions: {dict(setup_429) or 0}")
    print(
        f"edit cadence: {len(job_ids)} jobs x {args.edit_seconds} s of progress -> {patches} "
        f"status edits in {edit_window:.0f} s ({patches / edit_window:.2f}/s, busiest second "
        f"{busiest}); "
        f"429s earned: {dict(edit_429) or 0}"
    )
    print(
        f"delivery: {delivered} solutions in {delivery_s:.0f} s; Discord requests in that phase "
        f"{sum(delivery_routes.values())} ({sum(delivery_routes.values()) / max(delivered, 1):.2f}"
        f" per solution); 429s earned: {dict(delivery_429) or 0}"
    )
    for route, count in delivery_routes.most_common():
        print(f"  {count:6d}  {route}")
    print(
        f"whole run: {bot_requests} bot-token/webhook requests for {delivered} delivered "
        f"solutions = {bot_requests / max(delivered, 1):.2f} per solution (all phases; the "
        f"{interactions_total} interaction callbacks not counted)"
    )
    return 0


async def burst_in_place(
    fake: FakeDiscord,
    students: list[UserRecord],
    channels: list[ChannelRecord],
    within_s: float,
) -> list[InteractionRecord]:
    """One /solve per student in the channel given for them, spread over `within_s`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    interactions: list[InteractionRecord] = []
    for index, (student, channel) in enumerate(zip(students, channels, strict=True)):
        await asyncio.sleep(max(0.0, start + index * within_s / len(students) - loop.time()))
        a, b = random.randint(2, 99), random.randint(2, 99)
        interactions.append(
            await fake.send_slash_command(
                "solve",
                user=student,
                channel=channel,
                options={"question": f"What is ${a} \\times {b}$?"},
            )
        )
    return interactions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=500, help="interactions per burst")
    parser.add_argument("--within", type=float, default=5.0, help="seconds per burst")
    parser.add_argument("--edit-seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--render-workers", type=int, default=2)
    parser.add_argument("--delivery-timeout", type=float, default=900.0)
    parser.add_argument("--bot-log", default=None, help="write the bot's log to this file")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
