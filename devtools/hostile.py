"""Hostile input: a corpus of what students (and moderators) might paste, tried against the real
bot through the fake Discord, real Redis, real workers and the TGI simulator.

Each case is data (tests/bot/hostile_inputs.json): the text, the way in (a /solve, a DM, the
context menu, a follow-up in a solution thread, /solve in a DM or with private, a moderator's
command) and what must happen: `answered` (an outcome is delivered) or `refused` (a clear
sentence, nothing queued). Whatever the case, `try_case` also checks that nobody was pinged,
that nothing the asker did not write visibly reached the model (control characters, escapes,
invisible characters), that the bot's token appears in no message and no log line, that no
reply is the bot's "something went wrong", and that a plain question still gets its answer
afterwards (the bot and the workers survived).

Used by tests/bot/test_hostile_input.py (each case by its way in) and bench/hostile.py (each
case by every way in it can take).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import discord
import redis

from bot import keys as bot_keys
from bot.client import BROKEN, FathomBot
from bot.exts.delivery import Delivery
from bot.guild_settings import GuildSettings
from bot.logic.naming import AGAIN_PREFIX, CANCEL_PREFIX
from devtools.fakediscord import (
    ChannelRecord,
    FakeDiscord,
    GuildRecord,
    InteractionRecord,
    MessageRecord,
    RoleRecord,
    UserRecord,
)
from devtools.fakediscord.client import running
from devtools.rq_threads import FAST_BOT_ENV, ThreadWorkers
from fathom.contract import clean_text
from fathom.settings import get_settings
from simulator.server import SimulatorServer, fast_config

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "bot" / "hostile_inputs.json"
Way = Literal["slash", "dm", "context", "followup", "dm_slash", "private", "moderator"]
Expect = Literal["answered", "refused"]

QUESTION_WAYS: tuple[Way, ...] = ("slash", "dm", "context", "followup", "dm_slash", "private")
"""Ways a question comes in (a moderator's command is the other way)."""
PLAIN_QUESTION = "What is 1+1?"
ACCEPTED = "Queued as #"
OUTCOME_WITHIN_S = 60.0


@dataclass(frozen=True)
class Case:
    name: str
    via: Way
    text: str
    """The text tried; `<ROLE>`, `<USER>` and `<CHANNEL>` stand for real ids."""
    expect: Expect
    says: str | None = None
    """A refusal must contain this."""
    echo: bool = False
    """The simulator answers with the question itself (so it reaches the renderer)."""
    keeps: str | None = None
    """Text that must reach the model as written (what cleaning must not take away)."""
    command: str | None = None
    """For a moderator: the command, e.g. "queue cancel"; `option` gets the text."""
    option: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        """`repeat: [unit, times]` and `then` build large texts: text + unit * times + then."""
        unit, times = data.pop("repeat", ("", 0))
        data["text"] = data.get("text", "") + unit * times + data.pop("then", "")
        return cls(**data)

    def ways(self) -> tuple[Way, ...]:
        """Every way this case can be tried: a question any way in, a command only as such."""
        return ("moderator",) if self.via == "moderator" else QUESTION_WAYS


def load_corpus(path: Path = CORPUS) -> list[Case]:
    return [Case.from_json(dict(entry)) for entry in json.loads(path.read_text("utf-8"))]


@dataclass
class Stage:
    """Where the cases are tried: one server with a channel, an asker, a classmate (who posts
    what the context menu solves and asks the survival question) and a moderator."""

    fake: FakeDiscord
    sim: SimulatorServer
    guild: GuildRecord
    channel: ChannelRecord
    student: UserRecord
    classmate: UserRecord
    moderator: UserRecord
    moderators_role: RoleRecord
    settled: Callable[[], bool]
    """True when the bot has no delivery in progress (a follow-up needs its thread settled)."""

    def fill(self, text: str) -> str:
        return (
            text.replace("<ROLE>", f"<@&{self.moderators_role.id}>")
            .replace("<USER>", f"<@{self.classmate.id}>")
            .replace("<CHANNEL>", f"<#{self.channel.id}>")
        )

    def outcomes(self) -> int:
        """Outcomes delivered so far: the last message of each carries Solve again."""
        return sum(
            1
            for message in self.fake.messages.values()
            if message.author.id == self.fake.bot_user.id
            and not message.deleted
            and any(c.startswith(AGAIN_PREFIX) for c in message.custom_ids())
        )


@dataclass
class Verdict:
    case: str
    via: str
    outcome: Literal["answered", "refused", "silent"] = "silent"
    reply: str = ""
    pings: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        return not self.problems


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


@asynccontextmanager
async def hostile_stage(redis_url: str) -> AsyncIterator[Stage]:
    """One server with its people, the real bot connected to a fake Discord, workers in
    threads and the TGI simulator, on the Redis at `redis_url` (which must be a throwaway)."""
    with SimulatorServer(fast_config()) as sim:
        env = {**FAST_BOT_ENV, "FATHOM_MODEL_URL": sim.url, "FATHOM_REDIS_URL": redis_url}
        with _environment(env):
            settings = get_settings()
            workers = ThreadWorkers(settings)
            workers.start()
            try:
                async with FakeDiscord(interaction_deadline=3.0) as fake:
                    with fake.point_discord_py():
                        bot = FathomBot(settings, guild_ready_timeout=0.05)
                        stage = _stage(fake, sim, bot, redis_url)
                        async with running(bot, fake):
                            yield stage
            finally:
                workers.stop()


def _stage(fake: FakeDiscord, sim: SimulatorServer, bot: FathomBot, redis_url: str) -> Stage:
    # Cases follow each other faster than people ask in one channel: Discord's per-channel
    # limits (5 messages or threads per 5 s) would make every case wait for the one before.
    for route in (
        "PATCH /channels/{channel_id}/messages/{message_id}",
        "POST /channels/{channel_id}/messages",
        "POST /channels/{channel_id}/messages/{message_id}/threads",
    ):
        fake.limiter.rules[route] = (50, 1.0)
    guild = fake.create_guild()
    channel = fake.create_text_channel(guild, "homework")
    student = fake.create_user("student")
    classmate = fake.create_user("classmate")
    # Whoever runs the moderators' commands has Manage Server too (for /fathom-settings).
    admin = fake.create_user("admin")
    mods = fake.create_role(guild, "mods", discord.Permissions(manage_messages=True))
    admins = fake.create_role(guild, "admins", discord.Permissions(manage_guild=True))
    fake.add_member(guild, student)
    fake.add_member(guild, classmate)
    fake.add_member(guild, admin, roles=[mods, admins])
    chosen = GuildSettings(moderator_role_id=mods.id)
    with redis.Redis.from_url(redis_url) as conn:
        conn.set(bot_keys.guild_settings(guild.id), chosen.model_dump_json())

    def settled() -> bool:
        # discord.py imports an extension afresh for each bot: not the class imported here.
        delivery = cast(Delivery | None, bot.get_cog(Delivery.__cog_name__))
        return delivery is not None and not delivery.following()

    return Stage(
        fake=fake,
        sim=sim,
        guild=guild,
        channel=channel,
        student=student,
        classmate=classmate,
        moderator=admin,
        moderators_role=mods,
        settled=settled,
    )


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.lines.append(str(record.msg))


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log line of this process, at every level, while the block runs."""
    root = logging.getLogger()
    handler = _Lines()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _reply_to(stage: Stage, message: MessageRecord) -> MessageRecord:
    """The bot's reply to a user's message: a status message or a refusal."""

    def found() -> MessageRecord | None:
        for candidate in stage.fake.channel_messages(message.channel_id):
            if (
                candidate.author.id == stage.fake.bot_user.id
                and candidate.reference is not None
                and int(candidate.reference["message_id"]) == message.id
            ):
                return candidate
        return None

    reply: MessageRecord = await stage.fake.wait_for(found, 15, "a reply to the message")
    return reply


def _taken(reply: MessageRecord) -> bool:
    return any(c.startswith(CANCEL_PREFIX) for c in reply.custom_ids())


async def _answer_of(stage: Stage, interaction: InteractionRecord) -> tuple[bool, str]:
    [reply] = await stage.fake.wait_for_responses(interaction, timeout=15)
    return reply.content.startswith(ACCEPTED), reply.content


async def _slash(stage: Stage, text: str, **options: Any) -> tuple[bool, str]:
    interaction = await stage.fake.send_slash_command(
        "solve", user=stage.student, channel=stage.channel, options={"question": text, **options}
    )
    return await _answer_of(stage, interaction)


async def _private(stage: Stage, text: str) -> tuple[bool, str]:
    return await _slash(stage, text, private=True)


async def _dm_slash(stage: Stage, text: str) -> tuple[bool, str]:
    interaction = await stage.fake.send_slash_command(
        "solve",
        user=stage.student,
        channel=stage.fake.dm_channel(stage.student),
        options={"question": text},
    )
    return await _answer_of(stage, interaction)


async def _dm(stage: Stage, text: str) -> tuple[bool, str]:
    message = await stage.fake.send_dm(stage.student, text)
    reply = await _reply_to(stage, message)
    return _taken(reply), reply.content


async def _context(stage: Stage, text: str) -> tuple[bool, str]:
    posted = await stage.fake.send_message(stage.classmate, stage.channel, text)
    interaction = await stage.fake.send_message_command(
        "Solve with Fathom", user=stage.student, target=posted
    )
    return await _answer_of(stage, interaction)


async def _followup(stage: Stage, text: str) -> tuple[bool, str]:
    before = stage.outcomes()
    taken, reply = await _slash(stage, PLAIN_QUESTION)
    if not taken:
        raise AssertionError(f"the first question of a follow-up was refused: {reply}")
    await stage.fake.wait_for(lambda: stage.outcomes() > before, OUTCOME_WITHIN_S, "an answer")
    await stage.fake.wait_for(stage.settled, 15, "the first answer settled")
    thread = stage.fake.threads_of(stage.channel)[-1]
    message = await stage.fake.send_message(stage.student, thread, text)
    reply_message = await _reply_to(stage, message)
    return _taken(reply_message), reply_message.content


ASKERS: dict[str, Callable[[Stage, str], Awaitable[tuple[bool, str]]]] = {
    "slash": _slash,
    "dm": _dm,
    "context": _context,
    "followup": _followup,
    "dm_slash": _dm_slash,
    "private": _private,
}


async def _moderate(stage: Stage, case: Case, text: str) -> str:
    if case.command is None or case.option is None:
        raise ValueError(f"case {case.name}: a moderator's case names its command and option")
    interaction = await stage.fake.send_slash_command(
        case.command,
        user=stage.moderator,
        channel=stage.channel,
        options={**case.options, case.option: text},
    )
    [reply] = await stage.fake.wait_for_responses(interaction, timeout=15)
    return reply.content or " ".join(str(embed.get("title", "")) for embed in reply.embeds)


async def try_case(stage: Stage, case: Case, via: Way | None = None) -> Verdict:
    """Try one case one way (its own by default) and check everything that must hold."""
    way = via or case.via
    verdict = Verdict(case.name, way)
    text = stage.fill(case.text)
    fake = stage.fake
    seen = set(fake.messages)
    stage.sim.stats.prompts.clear()
    stage.sim.config.echo_questions = case.echo
    try:
        with captured_logs() as logs:
            await _try(stage, case, way, text, verdict)
            prompts = list(stage.sim.stats.prompts)
            await _survives(stage, verdict)
    except TimeoutError as exc:
        verdict.problems.append(f"no reply in time: {exc}")
        prompts = list(stage.sim.stats.prompts)
        logs = []
    finally:
        stage.sim.config.echo_questions = False
    if verdict.outcome != case.expect:
        verdict.problems.append(f"expected {case.expect}, got {verdict.outcome}: {verdict.reply!r}")
    if case.expect == "refused" and case.says and case.says not in verdict.reply:
        verdict.problems.append(f"the refusal does not say {case.says!r}: {verdict.reply!r}")
    if BROKEN in verdict.reply:
        verdict.problems.append("the bot broke instead of answering")
    new = [m for m in fake.messages.values() if m.id not in seen]
    verdict.pings = sum(1 for m in new if m.author.id == fake.bot_user.id and m.pings_anyone)
    if verdict.pings:
        verdict.problems.append(f"{verdict.pings} message(s) pinged someone")
    verdict.problems += _token_leaks(fake.token, new, logs)
    verdict.problems += _prompt_problems(prompts, stage.fill(case.keeps or ""), fake.token)
    return verdict


async def _try(stage: Stage, case: Case, way: Way, text: str, verdict: Verdict) -> None:
    if way == "moderator":
        verdict.reply = await _moderate(stage, case, text)
        verdict.outcome = "refused"
        return
    before = stage.outcomes()
    taken, verdict.reply = await ASKERS[way](stage, text)
    if not taken:
        verdict.outcome = "refused"
        return
    if way == "followup":
        before = stage.outcomes()
    await stage.fake.wait_for(lambda: stage.outcomes() > before, OUTCOME_WITHIN_S, "an outcome")
    verdict.outcome = "answered"


async def _survives(stage: Stage, verdict: Verdict) -> None:
    """A plain question right after: answered, so the bot and the workers are still up."""
    await stage.fake.wait_for(stage.settled, 30, "the case's delivery settled")
    before = stage.outcomes()
    interaction = await stage.fake.send_slash_command(
        "solve", user=stage.classmate, channel=stage.channel, options={"question": PLAIN_QUESTION}
    )
    taken, reply = await _answer_of(stage, interaction)
    if not taken:
        verdict.problems.append(f"a plain question after it was refused: {reply!r}")
        return
    await stage.fake.wait_for(lambda: stage.outcomes() > before, OUTCOME_WITHIN_S, "the answer")
    await stage.fake.wait_for(stage.settled, 30, "the plain question's delivery settled")


def _token_leaks(token: str, messages: list[MessageRecord], logs: list[str]) -> list[str]:
    problems: list[str] = []
    for message in messages:
        shown = message.content + json.dumps(message.embeds)
        files = b"".join(a.data for a in message.attachments)
        if token in shown or token.encode() in files:
            problems.append(f"the bot's token is in message {message.id}")
    if any(token in line for line in logs):
        problems.append("the bot's token is in the logs")
    return problems


def _prompt_problems(prompts: list[str], keeps: str, token: str) -> list[str]:
    problems: list[str] = []
    for prompt in prompts:
        if clean_text(prompt) != prompt:
            unseen = sorted({f"U+{ord(c):04X}" for c in prompt if clean_text(c) != c})
            problems.append(f"invisible characters reached the model: {unseen}")
        if token in prompt:
            problems.append("the bot's token reached the model")
    if keeps and not any(keeps in prompt for prompt in prompts):
        problems.append(f"{keeps!r} did not reach the model as written")
    return sorted(set(problems))
