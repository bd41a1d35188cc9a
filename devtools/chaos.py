"""Chaos: questions from several servers through the fake Discord, a real bot process, real Redis
(append-only file on), a real worker pool and the TGI simulator, while the harness kills workers
and work horses, crashes the bot (also between Discord storing a message and the bot recording
it), restarts Redis, makes the model server refuse connections, overload and drop streams, and
moderators cancel, pause and clear.

Then it counts, from what Discord holds: questions accepted, solutions delivered, clear failures
delivered, duplicates, lost, and the longest wait for an outcome. The promise to keep: 0 lost,
0 duplicated, every failure explained to the asker, nobody pinged.

Used by tests/chaos (a reduced run) and bench/chaos.py (the full one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import discord
import redis
from rq import Queue, Worker

from bot import keys as bot_keys
from bot.guild_settings import GuildSettings
from bot.logic.naming import CANCEL_PREFIX, message_nonce
from devtools.fakediscord import (
    ChannelRecord,
    FakeDiscord,
    GuildRecord,
    InteractionRecord,
    MessageRecord,
    UserRecord,
)
from devtools.redis_server import RedisServer, throwaway_redis
from simulator.server import SimulatorConfig, SimulatorServer

REPO = Path(__file__).resolve().parent.parent
ACCEPTED = "Queued as #"
FAILURE_MARKS = ("⚠️", "🚫", "✂️")


@dataclass
class ChaosPlan:
    questions: int = 200
    servers: int = 4
    workers: int = 4
    render_workers: int = 1
    submit_over_s: float = 60.0
    """Questions arrive spread over this long."""
    answer_s: float = 2.0
    """How long the model takes for one answer: questions come faster than the workers
    answer, so a queue builds up for the moderators to steer."""
    worker_kills: int = 3
    horse_kills: int = 3
    bot_crashes: int = 2
    bot_crashes_mid_send: int = 2
    redis_restarts: int = 1
    model_outages: int = 1
    overload_bursts: int = 1
    stream_drops: int = 2
    moderator_cancels: int = 3
    pauses: int = 1
    clears: int = 1
    deadline_s: float = 600.0
    """After the last question, how long outcomes may take before the rest count as lost."""
    seed: int = 7


@dataclass
class Asked:
    interaction: InteractionRecord
    server: int
    bot_down: bool = False
    """Asked while the bot was down: Discord itself tells the user the app did not respond."""
    accepted: bool = False
    refusal: str = ""
    job_id: str | None = None
    status: MessageRecord | None = None


@dataclass
class ChaosReport:
    asked: int = 0
    accepted: int = 0
    refused: int = 0
    """Questions refused with a clear reply (a pause, the queue down...), nothing enqueued."""
    unanswered: int = 0
    """Questions the bot never replied to although it was up (should be 0)."""
    missed_while_down: int = 0
    """Questions asked while the bot was down (Discord tells the user the application did not
    respond; nothing was queued)."""
    solutions: int = 0
    failures: int = 0
    """Outcomes delivered that explain why there is no solution (cancelled, failed...)."""
    duplicates: int = 0
    lost: int = 0
    worst_wait_s: float = 0.0
    pings: int = 0
    nonce_hits: int = 0
    """Messages Discord did not post twice because the bot resent them after a crash."""
    secrets_logged: list[str] = field(default_factory=list)
    """Secrets found in the pool's or the bot's log (should be none)."""
    problems: list[str] = field(default_factory=list)
    """What went wrong with each lost, unanswered or duplicated question, for a look."""
    happened: Counter[str] = field(default_factory=Counter)
    failure_reasons: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        return [
            f"questions asked {self.asked}: accepted {self.accepted}, refused with a reason "
            f"{self.refused}, asked while the bot was down {self.missed_while_down}, never "
            f"answered {self.unanswered}",
            f"outcomes: solutions {self.solutions}, clear failures {self.failures}, "
            f"duplicated {self.duplicates}, lost {self.lost}",
            f"longest wait for an outcome {self.worst_wait_s:.0f} s; pings sent {self.pings}; "
            f"resends Discord dropped by nonce {self.nonce_hits}; secrets in the logs: "
            f"{', '.join(self.secrets_logged) or 'none'}",
            f"chaos: {dict(sorted(self.happened.items()))}",
            f"failure notices: {dict(self.failure_reasons.most_common())}",
            f"refusals: {dict(self.refusals.most_common())}",
            *(f"problem: {problem}" for problem in self.problems),
        ]


class Process:
    """A `fathom ...` subprocess the harness can kill and start again."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", *self.args],
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        return found
    for child in (int(c) for c in path.read_text().split()):
        found.append(child)
        found.extend(descendants(child))
    return found


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Harness:
    def __init__(self, plan: ChaosPlan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.random = random.Random(plan.seed)
        self.report = ChaosReport()
        self.asked: list[Asked] = []
        self.guilds: list[tuple[GuildRecord, ChannelRecord, UserRecord]] = []
        self.students: list[tuple[UserRecord, int]] = []
        self.bot: Process | None = None
        self.pool: Process | None = None
        self.crash_on_send = 0
        self.bot_down = False
        self.fake: FakeDiscord | None = None
        self.restarts: set[asyncio.Task[None]] = set()

    # --- the world ------------------------------------------------------------------------
    def build(self, fake: FakeDiscord, conn: redis.Redis) -> None:
        for n in range(self.plan.servers):
            guild = fake.create_guild(f"Study {n}")
            channel = fake.create_text_channel(guild, "homework")
            moderator = fake.create_user(f"moderator{n}")
            role = fake.create_role(guild, "mods", discord.Permissions(manage_guild=True))
            fake.add_member(guild, moderator, roles=[role])
            chosen = GuildSettings(moderator_role_id=role.id)
            conn.set(bot_keys.guild_settings(guild.id), chosen.model_dump_json())
            self.guilds.append((guild, channel, moderator))
        for n in range(self.plan.questions):
            server = n % self.plan.servers
            student = fake.create_user(f"student{n}")
            fake.add_member(self.guilds[server][0], student)
            self.students.append((student, server))

    # --- questions ----------------------------------------------------------------------------
    async def ask_all(self, fake: FakeDiscord) -> None:
        gap = self.plan.submit_over_s / max(1, self.plan.questions)
        for n, (student, server) in enumerate(self.students):
            _guild, channel, _mod = self.guilds[server]
            interaction = await fake.send_slash_command(
                "solve",
                user=student,
                channel=channel,
                options={"question": f"Question {n}: what is {n} + {n}? @everyone"},
            )
            self.asked.append(Asked(interaction, server, bot_down=self.bot_down))
            await asyncio.sleep(gap)

    def settle_replies(self, fake: FakeDiscord) -> None:
        """A question is accepted once the bot posted its status message (even if a crash cut
        the reply to the command short); otherwise its reply says why, or there is none."""
        for asked in self.asked:
            self.find_job(fake, asked)
            original = asked.interaction.original
            text = original.content if original is not None else ""
            asked.accepted = asked.job_id is not None
            asked.refusal = "" if asked.accepted or text.startswith(ACCEPTED) else text

    # --- chaos ----------------------------------------------------------------------------------
    async def chaos(
        self, fake: FakeDiscord, sim: SimulatorServer, redis_server: RedisServer
    ) -> None:
        plan = self.plan
        actions: list[str] = (
            ["kill worker"] * plan.worker_kills
            + ["kill horse"] * plan.horse_kills
            + ["crash bot"] * plan.bot_crashes
            + ["crash bot mid-send"] * plan.bot_crashes_mid_send
            + ["restart redis"] * plan.redis_restarts
            + ["model outage"] * plan.model_outages
            + ["overload"] * plan.overload_bursts
            + ["drop streams"] * plan.stream_drops
            + ["moderator cancel"] * plan.moderator_cancels
            + ["pause"] * plan.pauses
            + ["clear"] * plan.clears
        )
        self.random.shuffle(actions)
        gap = plan.submit_over_s / (len(actions) + 1)
        for action in actions:
            await asyncio.sleep(gap * self.random.uniform(0.6, 1.4))
            try:
                done = await self.act(action, fake, sim, redis_server)
            except Exception as exc:  # a chaos step that could not be taken is reported
                self.report.happened[f"{action} (could not: {type(exc).__name__})"] += 1
                continue
            if done:
                self.report.happened[action] += 1

    async def act(
        self, action: str, fake: FakeDiscord, sim: SimulatorServer, redis_server: RedisServer
    ) -> bool:
        if action in ("kill worker", "kill horse"):
            conn = redis.Redis.from_url(redis_server.url())
            victims = self.pool_victims(conn, horse=action == "kill horse")
            conn.close()
            if not victims:
                return False
            os.kill(self.random.choice(victims), signal.SIGKILL)
            return True
        if action == "crash bot":
            await self.restart_bot()
            return True
        if action == "crash bot mid-send":
            self.crash_on_send += 1
            return True
        if action == "restart redis":
            redis_server.stop()
            await asyncio.sleep(2.0)
            redis_server.start()
            return True
        if action == "model outage":
            sim.set_loading(True)
            await asyncio.sleep(4.0)
            sim.set_loading(False)
            return True
        if action == "overload":
            sim.config.overloaded = True
            sim.config.fault_requests = 3
            return True
        if action == "drop streams":
            sim.config.drop_after_tokens = 20
            sim.config.fault_requests = 2
            return True
        # A moderator, like a student, cannot reach a bot that is down: wait for it.
        await fake.wait_for(lambda: not self.bot_down, 90, "the bot up for a moderator")
        return await self.moderate(action, fake)

    def pool_victims(self, conn: redis.Redis, *, horse: bool) -> list[int]:
        """The solve workers' processes (as RQ registered them), or their work horses."""
        workers = [
            worker.pid
            for worker in Worker.all(connection=conn, queue=Queue("fathom-solve", connection=conn))
            if worker.pid is not None and Path(f"/proc/{worker.pid}").exists()
        ]
        if not horse:
            return workers
        horses: list[int] = []
        for pid in workers:
            path = Path(f"/proc/{pid}/task/{pid}/children")
            if path.exists():
                horses += [int(child) for child in path.read_text().split()]
        return horses

    async def moderate(self, action: str, fake: FakeDiscord) -> bool:
        server = self.random.randrange(len(self.guilds))
        _guild, channel, moderator = self.guilds[server]
        if action == "moderator cancel":
            for asked in self.asked:
                self.find_job(fake, asked)
            delivered = self.delivered(fake)
            candidates = [
                a
                for a in self.asked
                if a.job_id and a.server == server and message_nonce(a.job_id, 0) not in delivered
            ]
            if not candidates:
                return False
            target = self.random.choice(candidates)
            interaction = await fake.send_slash_command(
                "queue cancel", user=moderator, channel=channel, options={"job": target.job_id}
            )
            await fake.wait_for_responses(interaction, timeout=30)
            return True
        if action == "pause":
            await self.command(fake, "queue pause", moderator, channel)
            await asyncio.sleep(3.0)
            await self.command(fake, "queue resume", moderator, channel)
            return True
        offer = await self.command(fake, "queue clear", moderator, channel)
        buttons = [
            component
            for row in offer.components
            for component in row.get("components", [])
            if component.get("label") == "Drop them"
        ]
        if not buttons:
            return False  # nothing was waiting in that server
        click = await fake.click_button(offer, str(buttons[0]["custom_id"]), user=moderator)
        await fake.wait_for_ack(click, timeout=30)
        return True

    async def command(
        self, fake: FakeDiscord, name: str, user: UserRecord, channel: ChannelRecord
    ) -> MessageRecord:
        interaction = await fake.send_slash_command(name, user=user, channel=channel)
        replies = await fake.wait_for_responses(interaction, timeout=30)
        return replies[-1]

    async def crash_mid_send(self, message: MessageRecord) -> None:
        """Discord stored a bot message: crash the bot before it hears back, if one is due."""
        if self.crash_on_send > 0 and message.nonce is not None:
            self.crash_on_send -= 1
            self.report.happened["crashed mid-send"] += 1
            self.restarts.add(asyncio.create_task(self.restart_bot()))

    async def restart_bot(self) -> None:
        """Kill the bot, start it again a second later, and wait until it is connected."""
        assert self.bot is not None
        assert self.fake is not None
        fake = self.fake
        self.bot_down = True
        before = {id(session) for session in fake.connected_sessions}
        self.bot.kill()
        await asyncio.sleep(1.0)
        self.bot.start()
        await fake.wait_for(
            lambda: any(id(s) not in before for s in fake.connected_sessions), 60, "the bot back"
        )
        self.bot_down = False

    # --- accounting -----------------------------------------------------------------------------
    def find_job(self, fake: FakeDiscord, asked: Asked) -> None:
        """The job of a question: the Cancel button of the status message the bot posted for
        it (each asker asks once)."""
        if asked.job_id is not None:
            return
        channel = asked.interaction.channel
        for message in fake.channel_messages(channel, include_ephemeral=False):
            if message.author.id != fake.bot_user.id or not message.revisions:
                continue
            first = message.revisions[0]
            if f"<@{asked.interaction.user.id}> asked" not in first.content:
                continue
            for row in first.components:
                for component in row.get("components", []):
                    custom_id = str(component.get("custom_id", ""))
                    if custom_id.startswith(CANCEL_PREFIX):
                        asked.job_id = custom_id.removeprefix(CANCEL_PREFIX)
                        asked.status = message

    def outcome_messages(self, fake: FakeDiscord, asked: Asked) -> list[MessageRecord]:
        """The bot's messages carrying the first nonce of the job's outcome."""
        assert asked.job_id is not None
        nonce = message_nonce(asked.job_id, 0)
        where = [asked.interaction.channel, *fake.threads_of(asked.interaction.channel)]
        return [
            message
            for channel in where
            for message in fake.channel_messages(channel, include_ephemeral=False)
            if str(message.nonce) == nonce
        ]

    def describe(self, asked: Asked, what: str, conn: redis.Redis | None) -> str:
        original = asked.interaction.original
        reply = original.content[:80] if original is not None else "(no reply)"
        status = asked.status.content.splitlines()[-1][:80] if asked.status else "(no status)"
        state = ""
        if conn is not None and asked.job_id is not None:
            from fathom.events import job_events, load_result
            from fathom.queue import fetch_job

            result = load_result(conn, asked.job_id)
            job = fetch_job(conn, asked.job_id)
            phases = [e.phase.value for e in job_events(conn, asked.job_id)]
            state = (
                f"; result {result.status.value if result else None}, rendering "
                f"{result.rendering.value if result else None}; RQ "
                f"{job.get_status() if job else None}; events {phases}; promised "
                f"{bool(conn.hexists(bot_keys.PROMISED, asked.job_id))}"
            )
        return (
            f"{what}: question by {asked.interaction.user.username} (job {asked.job_id}); "
            f"reply {reply!r}; status {status!r}{state}"
        )

    def count(self, fake: FakeDiscord, conn: redis.Redis | None = None) -> None:
        report = self.report
        report.asked = len(self.asked)
        report.accepted = sum(a.accepted for a in self.asked)
        for asked in self.asked:
            if asked.accepted:
                continue
            if asked.refusal:
                report.refused += 1
                report.refusals[asked.refusal[:60]] += 1
            elif asked.bot_down:
                report.missed_while_down += 1
            else:
                report.unanswered += 1
                report.problems.append(self.describe(asked, "unanswered", conn))
        for asked in self.asked:
            if not asked.accepted:
                continue
            if asked.job_id is None:
                report.lost += 1
                report.problems.append(self.describe(asked, "lost", conn))
                continue
            outcomes = self.outcome_messages(fake, asked)
            if not outcomes:
                report.lost += 1
                report.problems.append(self.describe(asked, "lost", conn))
                continue
            if len(outcomes) > 1:
                report.duplicates += len(outcomes) - 1
                report.problems.append(self.describe(asked, "duplicated", conn))
            first = outcomes[0]
            waited = first.created_at - asked.interaction.dispatched_at
            report.worst_wait_s = max(report.worst_wait_s, waited)
            if first.content.startswith(FAILURE_MARKS):
                report.failures += 1
                report.failure_reasons[first.content.split("\n")[0][:70]] += 1
            else:
                report.solutions += 1
        everything = [
            message
            for channel in fake.channels.values()
            for message in fake.channel_messages(channel)
            if message.author.id == fake.bot_user.id
        ]
        report.pings = sum(1 for message in everything if message.pings_anyone)
        report.nonce_hits = fake.nonce_hits

    def check_logs(self, secrets: dict[str, str]) -> None:
        """Which secret (by name) appears in which log of the run."""
        for log in sorted(self.workdir.glob("*.log")):
            text = log.read_text("utf-8", errors="replace")
            self.report.secrets_logged += [
                f"{name} in {log.name}" for name, value in secrets.items() if value in text
            ]

    @staticmethod
    def delivered(fake: FakeDiscord) -> set[str]:
        """The nonces of the messages posted (an outcome's first has `message_nonce(job, 0)`)."""
        return {
            str(message.nonce)
            for message in fake.messages.values()
            if message.nonce is not None and not message.deleted
        }

    def all_settled(self, fake: FakeDiscord) -> bool:
        """Every accepted question has the first message of its outcome."""
        sent = self.delivered(fake)
        return all(
            not a.accepted or (a.job_id is not None and message_nonce(a.job_id, 0) in sent)
            for a in self.asked
        )


def environment(redis_url: str, model_url: str) -> dict[str, str]:
    """Settings for the pool and the bot under chaos: fast recovery, patient retries."""
    return {
        **os.environ,
        "FATHOM_REDIS_URL": redis_url,
        "FATHOM_MODEL_URL": model_url,
        "FATHOM_WORKER_TTL_S": "10",
        "FATHOM_MAINTENANCE_INTERVAL_S": "2",
        "FATHOM_JOB_RETRIES": "3",
        "FATHOM_CONNECT_ATTEMPTS": "12",
        "FATHOM_CONNECT_BACKOFF_S": "0.5",
        "FATHOM_CONNECT_BACKOFF_MAX_S": "2",
        "FATHOM_OVERLOAD_ATTEMPTS": "12",
        "FATHOM_OVERLOAD_BACKOFF_S": "0.2",
        "FATHOM_OVERLOAD_BACKOFF_MAX_S": "1",
        "FATHOM_READ_TIMEOUT_S": "15",
        "FATHOM_QUESTION_COOLDOWN_S": "0",
        "FATHOM_MAX_PENDING_PER_USER": "5",
        "FATHOM_LOST_JOB_AFTER_S": "30",
        "FATHOM_WORKER_HTTP_PORT": "0",
        "FATHOM_BOT_HTTP_PORT": "0",
    }


@contextlib.asynccontextmanager
async def stack(
    plan: ChaosPlan, workdir: Path
) -> AsyncIterator[tuple[Harness, FakeDiscord, SimulatorServer, RedisServer]]:
    """Redis (AOF), the simulator, the fake Discord, the pool and the bot, all started."""
    harness = Harness(plan, workdir)
    config = SimulatorConfig(
        tokens_per_s=300 / plan.answer_s, ttft_s=0.05, batch_slowdown=0.0, completion_tokens=300
    )
    # Redis as docker-compose runs it: append-only file on, a password.
    password = secrets.token_urlsafe(18)
    with (
        throwaway_redis(appendonly=True, password=password) as redis_server,
        SimulatorServer(config) as sim,
    ):
        async with FakeDiscord() as fake:
            env = {**environment(redis_server.url(), sim.url), **fake.env()}
            conn = redis.Redis.from_url(redis_server.url())
            harness.build(fake, conn)
            harness.pool = Process(
                ["worker", "-n", str(plan.workers), "--render-workers", str(plan.render_workers)],
                env,
                workdir / "pool.log",
            )
            harness.bot = Process(["bot"], env, workdir / "bot.log")
            fake.after_bot_message = harness.crash_mid_send
            harness.fake = fake
            harness.pool.start()
            harness.bot.start()
            try:
                await fake.wait_until_connected(timeout=60)
                await fake.wait_for(lambda: fake.global_commands, 60, "commands synced")
                yield harness, fake, sim, redis_server
            finally:
                harness.bot.stop()
                harness.pool.stop()
                conn.close()


async def run(plan: ChaosPlan, workdir: Path) -> ChaosReport:
    """The workdir (which must exist) gets the pool's and the bot's logs."""
    async with stack(plan, workdir) as (harness, fake, sim, redis_server):
        started = time.monotonic()
        await asyncio.gather(harness.ask_all(fake), harness.chaos(fake, sim, redis_server))
        with contextlib.suppress(TimeoutError):  # a question the bot never answered is counted
            await fake.wait_for(
                lambda: all(a.interaction.original is not None for a in harness.asked),
                60,
                "a reply to every question",
            )
        await asyncio.gather(*harness.restarts)
        harness.settle_replies(fake)
        with contextlib.suppress(TimeoutError):  # what is still missing counts as lost
            await fake.wait_for(
                lambda: harness.all_settled(fake), plan.deadline_s, "every outcome delivered"
            )
        conn = redis.Redis.from_url(redis_server.url())
        harness.count(fake, conn)
        conn.close()
        assert redis_server.password is not None
        harness.check_logs(
            {"the Discord token": fake.token, "the Redis password": redis_server.password}
        )
        harness.report.happened["seconds"] = round(time.monotonic() - started)
        return harness.report
