"""Taking a question from any entry point (slash command, context menu, DM, follow-up, Solve
again) through the checks onto the queue, with a status message where the asker will look; and
what the job buttons do."""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, cast

import discord
import redis.exceptions

from bot.authority import actor_of, privilege_of
from bot.client import FathomBot
from bot.components import status_view
from bot.exts.delivery import Delivery
from bot.guild_settings import GuildSettingsStore, effective
from bot.i18n import DEFAULT_LANGUAGE, N_, Texts, language_of, spoken, texts
from bot.logic.checks import Attachment, Limits, check_question, check_samples, daily_refusal
from bot.logic.naming import status_header, status_nonce, thread_name
from bot.logic.privileges import Privilege
from bot.logic.progress import JobProgress, status_text
from bot.records import Draft, Promise, TargetKind
from bot.store import BotStore
from fathom import keys, queue
from fathom.consensus import sample_id
from fathom.contract import Origin, Phase, SolveRequest, SolveStatus, Turn, clean_text
from fathom.fairness import expected_position, flow_of
from fathom.settings import Settings

log = logging.getLogger(__name__)

NONE = discord.AllowedMentions.none()
SEED_LIMIT = 2**31


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    attachments: tuple[Attachment, ...] = ()
    history: tuple[Turn, ...] = field(default=())
    show_reasoning: bool | None = None
    """None: as the server's settings say."""
    private: bool = False
    seed: int | None = None
    samples: int = 1
    """More than one: a consensus of that many samples (`/solve samples:k`)."""
    study: bool | None = None
    """Study mode; None: as the server's settings say."""


@dataclass(frozen=True, slots=True)
class Gate:
    """What applies to one question before anything is written: the limits, the server's
    default for attaching the reasoning, or why it is refused outright."""

    limits: Limits
    show_reasoning: bool = False
    refusal: str | None = None
    guild_id: int | None = None
    daily_quota: int = 0
    max_samples: int = 1
    study_mode: bool = False
    language: str = DEFAULT_LANGUAGE
    """The asker's language here (`bot.i18n.language_of`)."""

    @property
    def texts(self) -> Texts:
        return texts(self.language)


@dataclass(frozen=True, slots=True)
class Place:
    """Where the status message went and where the answer will go."""

    kind: TargetKind
    status: discord.Message
    target_channel_id: int

    def pointer(self, t: Texts) -> str:
        if self.kind is TargetKind.THREAD:
            return t.gettext("follow along in {thread}").format(
                thread=f"<#{self.target_channel_id}>"
            )
        if self.kind is TargetKind.DM:
            return t.gettext("the answer comes to your direct messages with me")
        return t.gettext("follow along here: {link}").format(link=self.status.jump_url)


def attachments_of(message: discord.Message) -> tuple[Attachment, ...]:
    return tuple(Attachment(a.filename, a.content_type) for a in message.attachments)


class Asker:
    def __init__(
        self,
        bot: FathomBot,
        store: BotStore,
        guilds: GuildSettingsStore,
        settings: Settings,
    ) -> None:
        self.bot = bot
        self.store = store
        self.guilds = guilds
        self.settings = settings
        self.limits = Limits(
            max_question_chars=settings.max_question_chars,
            max_pending=settings.max_pending_per_user,
            cooldown_s=settings.question_cooldown_s,
        )

    async def gate(
        self,
        user_id: int,
        guild_id: int | None,
        channel: object,
        locale: discord.Locale | None = None,
    ) -> Gate:
        """The server's rules for this asker here: blocked, paused, not this channel; else its
        limits (a DM follows the configuration); and the asker's language: their client's
        (`locale`, remembered for their messages without one), else the server's default."""
        if spoken(locale) is not None:
            await self.store.remember_language(user_id, language_of(locale))
        elif (known := await self.store.language(user_id)) is not None:
            locale = discord.Locale(known) if known != DEFAULT_LANGUAGE else None
        if guild_id is None:
            return Gate(
                self.limits,
                daily_quota=self.settings.daily_quota_per_user,
                max_samples=self.settings.max_samples,
                language=language_of(locale),
            )
        rules = effective(await self.guilds.get(guild_id), self.settings)
        language = language_of(locale, rules.language)
        t = texts(language)
        limits = Limits(
            max_question_chars=rules.max_question_chars,
            max_pending=rules.max_pending,
            cooldown_s=rules.cooldown_s,
        )
        refusal = None
        if await self.guilds.blocked(guild_id, user_id):
            refusal = t.gettext(BLOCKED)
        elif await self.bot.redis.exists(keys.guild_paused(guild_id)):
            refusal = t.gettext(PAUSED)
        elif rules.allowed_channels and _channel_ids(channel).isdisjoint(rules.allowed_channels):
            places = ", ".join(f"<#{c}>" for c in sorted(rules.allowed_channels))
            refusal = t.gettext("This server takes questions in {places}. Please ask there.")
            refusal = refusal.format(places=places)
        return Gate(
            limits,
            rules.show_reasoning,
            refusal,
            guild_id,
            rules.daily_quota,
            rules.max_samples,
            rules.study_mode,
            language,
        )

    async def admit(self, user_id: int, job_id: str, question: Question, gate: Gate) -> str | None:
        """Run every check and count the question against the asker's limits; the reason it
        is refused, or None (then `release` undoes the counting if it is not enqueued)."""
        t = gate.texts
        refusal = (
            gate.refusal
            or check_question(question.text, question.attachments, gate.limits, t)
            or check_samples(question.samples, gate.max_samples, t)
        )
        if refusal is not None:
            return refusal
        guild_id = gate.guild_id or 0
        count = question.samples
        if not await self.guilds.take_daily(guild_id, user_id, gate.daily_quota, count):
            used = await self.guilds.daily_used(guild_id, user_id)
            return daily_refusal(gate.daily_quota, used, count, t)
        refusal = await self.store.reserve(user_id, job_id, gate.limits, t)
        if refusal is not None:
            await self.guilds.give_back_daily(guild_id, user_id, count)
        return refusal

    async def release(self, user_id: int, job_id: str, gate: Gate, samples: int = 1) -> None:
        await self.store.release(user_id, job_id)
        if gate.daily_quota > 0:
            await self.guilds.give_back_daily(gate.guild_id or 0, user_id, samples)

    @property
    def delivery(self) -> Delivery:
        """The delivery extension, which follows each job once it is promised."""
        delivery = self.bot.get_cog(Delivery.__cog_name__)
        if delivery is None:
            raise RuntimeError("the delivery extension is not loaded")
        return cast(Delivery, delivery)

    # --- entry points ----------------------------------------------------------------------
    async def ask_interaction(
        self,
        interaction: discord.Interaction[Any],
        question: Question,
        *,
        anchor: discord.Message | None = None,
    ) -> None:
        """A slash command, a context menu or a Solve again click: checks answered
        ephemerally, the rest after a deferral (well within Discord's 3 seconds)."""
        user = interaction.user
        job_id = uuid.uuid4().hex
        question = replace(question, text=clean_text(question.text))
        gate = await self.gate(
            user.id, interaction.guild_id, interaction.channel, interaction.locale
        )
        t = gate.texts
        rejection = await self.admit(user.id, job_id, question, gate)
        if rejection is not None:
            await interaction.response.send_message(rejection, ephemeral=True)
            return
        question = _with_server_defaults(question, gate)
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as exc:  # the interaction expired (10062) or was answered
            await self.release(user.id, job_id, gate, question.samples)
            log.warning("could not acknowledge an interaction: %s", exc)
            return
        position = await self._position(user.id, interaction.guild_id)
        try:
            place = await self._open_for_interaction(
                interaction, question, job_id, position, anchor, gate.language
            )
        except discord.HTTPException as exc:
            await self.store.drop_draft(job_id)
            await self.release(user.id, job_id, gate, question.samples)
            log.info("could not open a place for a question: %s", exc)
            if not isinstance(exc, discord.Forbidden):
                reason = t.gettext(
                    "Discord is busy right now and I couldn't post; please ask again."
                )
            elif question.private:
                reason = t.gettext(
                    "I couldn't send you a direct message — please allow DMs from this "
                    "server's members, or ask without `private`."
                )
            else:
                reason = t.gettext(
                    "I can't post in this channel. Please ask where I can send messages."
                )
            await interaction.edit_original_response(content=reason)
            return
        launched = await self._launch(
            job_id, user.id, interaction.guild_id, question, place, position, gate.language
        )
        if launched is None:
            await self.release(user.id, job_id, gate, question.samples)
            await interaction.edit_original_response(content=t.gettext(ENQUEUE_FAILED))
        else:
            if question.samples > 1:
                queued = t.gettext("Queued as #{position} ({samples} samples); {where}.")
            else:
                queued = t.gettext("Queued as #{position}; {where}.")
            await interaction.edit_original_response(
                content=queued.format(
                    position=launched, samples=question.samples, where=place.pointer(t)
                )
            )

    async def ask_message(self, message: discord.Message, question: Question) -> None:
        """A DM to the bot, or a follow-up in a solution thread: the status message replies
        to it and the answer follows there."""
        user = message.author
        job_id = uuid.uuid4().hex
        question = replace(question, text=clean_text(question.text))
        guild_id = message.guild.id if message.guild else None
        gate = await self.gate(user.id, guild_id, message.channel)
        t = gate.texts
        rejection = await self.admit(user.id, job_id, question, gate)
        if rejection is not None:
            await message.reply(rejection, allowed_mentions=NONE, mention_author=False)
            return
        question = _with_server_defaults(question, gate)
        position = await self._position(user.id, guild_id)
        kind = (
            TargetKind.DM if isinstance(message.channel, discord.DMChannel) else TargetKind.CHANNEL
        )
        draft = _draft(
            job_id,
            user.id,
            guild_id,
            kind,
            message.channel.id,
            message.id,
            question,
            position,
            gate.language,
        )
        try:
            place = await self._open(draft)
        except discord.HTTPException as exc:
            await self.store.drop_draft(job_id)
            await self.release(user.id, job_id, gate, question.samples)
            log.info("could not answer a message: %s", exc)
            return
        launched = await self._launch(
            job_id, user.id, guild_id, question, place, position, gate.language
        )
        if launched is None:
            await self.release(user.id, job_id, gate, question.samples)
            await place.status.edit(
                content=t.gettext(ENQUEUE_FAILED), view=None, allowed_mentions=NONE
            )

    # --- buttons -----------------------------------------------------------------------------
    async def cancel(self, interaction: discord.Interaction[Any], job_id: str) -> None:
        t = await self.guilds.texts_for(interaction)
        promise = await self.store.promise(job_id)
        if promise is None:
            await interaction.response.send_message(
                t.gettext("I no longer know this question."), ephemeral=True
            )
            return
        by = None
        if interaction.user.id != promise.user_id:
            if await privilege_of(interaction, self.guilds, self.settings) < Privilege.MODERATOR:
                await interaction.response.send_message(
                    t.gettext(
                        "Only the person who asked (or a moderator) can cancel this question."
                    ),
                    ephemeral=True,
                )
                return
            by = actor_of(interaction).describe()
        outcome = await asyncio.to_thread(
            queue.cancel_job, self.bot.rq_conn, job_id, self.settings, by
        )
        await interaction.response.send_message(t.gettext(CANCEL_REPLIES[outcome]), ephemeral=True)

    async def solve_again(self, interaction: discord.Interaction[Any], job_id: str) -> None:
        """A new sample of the same question (same context, a fresh seed) in the same place."""
        promise = await self.store.promise(job_id)
        if promise is None:
            t = await self.guilds.texts_for(interaction)
            await interaction.response.send_message(
                t.gettext("This question is too old to solve again — please ask it anew."),
                ephemeral=True,
            )
            return
        result = await self.store.result(job_id)
        seed = secrets.randbelow(SEED_LIMIT)
        while result is not None and seed == result.seed:
            seed = secrets.randbelow(SEED_LIMIT)
        question = Question(
            text=promise.question,
            history=tuple(promise.history),
            show_reasoning=promise.show_reasoning,
            private=promise.private,
            seed=seed,
            samples=promise.samples,
            study=promise.study,
        )
        await self.ask_interaction(interaction, question)

    async def show_reasoning(self, interaction: discord.Interaction[Any], job_id: str) -> None:
        t = await self.guilds.texts_for(interaction)
        result = await self.store.result(job_id)
        if result is None:
            await interaction.response.send_message(
                t.gettext("The reasoning of this question is no longer stored."), ephemeral=True
            )
            return
        if not result.reasoning.strip():
            await interaction.response.send_message(
                t.gettext("There is no reasoning for this question."), ephemeral=True
            )
            return
        if result.status is SolveStatus.SOLVED:
            note = t.gettext("The model's reasoning:")
        else:
            note = t.gettext("The model's reasoning (partial — it did not finish):")
        await interaction.response.send_message(
            note,
            file=discord.File(io.BytesIO(result.reasoning.encode()), filename="reasoning.md"),
            ephemeral=True,
        )

    # --- internals ---------------------------------------------------------------------------
    async def _position(self, user_id: int, guild_id: int | None) -> int:
        """The place a job enqueued now will have (1 = next), where the fair order puts it."""
        origin = flow_of("discord", guild_id, user_id)
        key = queue.solve_queue(self.bot.rq_conn, self.settings).key
        try:
            return await asyncio.to_thread(expected_position, self.bot.rq_conn, key, *origin)
        except (redis.exceptions.RedisError, OSError):
            return 1

    def _status_content(
        self, question: Question, user_id: int, position: int, kind: TargetKind, t: Texts
    ) -> str:
        samples = question.samples if question.samples > 1 else None
        progress = JobProgress(phase=Phase.QUEUED, position=position, samples=samples)
        text = status_text(progress, eta_s=self.delivery.eta(progress), t=t)
        header = status_header(question.text, user_id, public=kind is not TargetKind.DM, t=t)
        return f"{header}\n\n{text}"

    async def _open_for_interaction(
        self,
        interaction: discord.Interaction[Any],
        question: Question,
        job_id: str,
        position: int,
        anchor: discord.Message | None,
        language: str,
    ) -> Place:
        user = interaction.user
        channel = interaction.channel
        bot_present = interaction.guild_id is None or self.bot.get_guild(interaction.guild_id)
        in_bot_dm = (
            isinstance(channel, discord.DMChannel) and not interaction.context.private_channel
        )
        reply_to = anchor.id if anchor is not None else None
        if (
            question.private
            or not bot_present
            or not (in_bot_dm or isinstance(channel, discord.TextChannel | discord.Thread))
        ):
            dm = user.dm_channel or await user.create_dm()
            where, kind, reply_to = dm.id, TargetKind.DM, None
        elif isinstance(channel, discord.TextChannel):
            where, kind = channel.id, TargetKind.THREAD
        else:
            assert isinstance(channel, discord.Thread | discord.DMChannel)
            where = channel.id
            kind = TargetKind.DM if isinstance(channel, discord.DMChannel) else TargetKind.CHANNEL
        draft = _draft(
            job_id,
            user.id,
            interaction.guild_id,
            kind,
            where,
            reply_to,
            question,
            position,
            language,
        )
        return await self._open(draft)

    async def _open(self, draft: Draft) -> Place:
        """Save the draft, then post the status message (with its nonce, so a resend after a
        crash is the same message) and, in a text channel, make its thread."""
        await self.store.save_draft(draft)
        t = texts(draft.language)
        extra: dict[str, Any] = {}
        if draft.reply_to_message_id is not None:
            extra["reference"] = discord.MessageReference(
                message_id=draft.reply_to_message_id,
                channel_id=draft.status_channel_id,
                fail_if_not_exists=False,
            )
        channel = self.bot.get_partial_messageable(draft.status_channel_id)
        status = await channel.send(
            self._status_content(_question_of(draft), draft.user_id, draft.position, draft.kind, t),
            view=status_view(draft.job_id, t),
            allowed_mentions=NONE,
            nonce=status_nonce(draft.job_id),
            **extra,
        )
        if draft.kind is not TargetKind.THREAD:
            return Place(draft.kind, status, draft.status_channel_id)
        try:
            thread_id = await self._thread_of(status, thread_name(draft.question, t))
        except discord.HTTPException as exc:
            log.info("no thread for job %s (%s); answering in the channel", draft.job_id, exc)
            return Place(TargetKind.CHANNEL, status, draft.status_channel_id)
        return Place(TargetKind.THREAD, status, thread_id)

    async def _thread_of(self, status: discord.Message, name: str) -> int:
        """The thread started from the status message: made now, or the one a bot that
        stopped midway had already made (a thread from a message has the message's id)."""
        try:
            # Through the REST route: after a restart the channel is not cached yet.
            thread = await self.bot.http.start_thread_with_message(
                status.channel.id,
                status.id,
                name=name,
                auto_archive_duration=self.settings.thread_auto_archive_min,
            )
        except discord.HTTPException as exc:
            if exc.code == THREAD_ALREADY_MADE:
                return status.id
            raise
        return int(thread["id"])

    async def recover(self) -> None:
        """Finish taking the questions a stopped bot had begun to take (drafts): the status
        message, the thread, the promise and the job."""
        for draft in await self.store.drafts():
            try:
                place = await self._open(draft)
            except discord.HTTPException as exc:
                log.warning("a question taken before a restart is dropped: %s", exc)
                await self.store.drop_draft(draft.job_id)
                await self.store.release(draft.user_id, draft.job_id)
                continue
            log.info("job %s: taken in after a restart", draft.job_id)
            await self._launch(
                draft.job_id,
                draft.user_id,
                draft.guild_id,
                _question_of(draft),
                place,
                draft.position,
                draft.language,
            )

    async def _launch(
        self,
        job_id: str,
        user_id: int,
        guild_id: int | None,
        question: Question,
        place: Place,
        position: int,
        language: str,
    ) -> int | None:
        """Promise, then enqueue (in that order, so no event of the job goes unnoticed); the
        job's place in the queue, or None when it could not be enqueued."""
        promise = Promise(
            job_id=job_id,
            user_id=user_id,
            guild_id=guild_id,
            kind=place.kind,
            status_channel_id=place.status.channel.id,
            status_message_id=place.status.id,
            target_channel_id=place.target_channel_id,
            question=question.text,
            history=list(question.history),
            show_reasoning=bool(question.show_reasoning),
            private=question.private,
            samples=question.samples,
            study=bool(question.study),
            language=language,
        )
        request = SolveRequest(
            question=question.text,
            history=list(question.history),
            seed=question.seed,
            origin=Origin(source="discord", user_id=user_id, guild_id=guild_id),
        )
        samples = question.samples
        await self.store.save_promise(promise)
        self.delivery.track(
            promise,
            JobProgress(
                phase=Phase.QUEUED, position=position, samples=samples if samples > 1 else None
            ),
        )
        conn = self.bot.rq_conn
        try:
            if samples > 1:
                await asyncio.to_thread(
                    queue.enqueue_consensus, conn, request, samples, self.settings, job_id
                )
                first = sample_id(job_id, 0)
            else:
                await asyncio.to_thread(queue.enqueue_solve, conn, request, self.settings, job_id)
                first = job_id
            placed = await asyncio.to_thread(queue.queue_position, conn, first)
        except (redis.exceptions.RedisError, OSError):
            log.exception("enqueueing job %s failed", job_id)
            self.delivery.untrack(job_id)
            await self.store.drop_promise(promise)
            return None
        if placed is None:  # a worker took it already
            return 1
        if placed + 1 != position:
            self.delivery.moved(job_id, placed + 1)
        return placed + 1


THREAD_ALREADY_MADE = 160004
"""Discord's error code: a thread has already been created for this message."""


def _draft(
    job_id: str,
    user_id: int,
    guild_id: int | None,
    kind: TargetKind,
    where: int,
    reply_to: int | None,
    question: Question,
    position: int,
    language: str,
) -> Draft:
    return Draft(
        job_id=job_id,
        user_id=user_id,
        guild_id=guild_id,
        kind=kind,
        status_channel_id=where,
        reply_to_message_id=reply_to,
        position=position,
        question=question.text,
        history=list(question.history),
        show_reasoning=bool(question.show_reasoning),
        private=question.private,
        seed=question.seed,
        samples=question.samples,
        study=bool(question.study),
        language=language,
    )


def _question_of(draft: Draft) -> Question:
    return Question(
        text=draft.question,
        history=tuple(draft.history),
        show_reasoning=draft.show_reasoning,
        private=draft.private,
        seed=draft.seed,
        samples=draft.samples,
        study=draft.study,
    )


BLOCKED = N_("The moderators of this server have blocked you from asking questions here.")
PAUSED = N_(
    "Questions are paused by the moderators of this server right now. Nothing was queued — "
    "please ask again later."
)


def _channel_ids(channel: object) -> set[int]:
    """The channel and, for a thread, its parent: allowed channels cover their threads."""
    ids = {getattr(channel, "id", 0)}
    parent_id = getattr(channel, "parent_id", None)
    if isinstance(parent_id, int):
        ids.add(parent_id)
    return ids


def _with_server_defaults(question: Question, gate: Gate) -> Question:
    """What the asker left unsaid follows the server: the reasoning attached, study mode."""
    if question.show_reasoning is None:
        question = replace(question, show_reasoning=gate.show_reasoning)
    if question.study is None:
        question = replace(question, study=gate.study_mode)
    return question


ENQUEUE_FAILED = N_(
    "⚠️ I couldn't put your question on the queue (the queue is unavailable). Nothing was "
    "lost on your side — please try again in a minute."
)

CANCEL_REPLIES: dict[queue.CancelOutcome, str] = {
    queue.CancelOutcome.CANCELLED: N_("Cancelled — it was still waiting, so nothing was solved."),
    queue.CancelOutcome.STOPPING: N_("Stopping — the model is being told to stop now."),
    queue.CancelOutcome.FINISHED: N_("Too late to cancel — this question has already finished."),
    queue.CancelOutcome.UNKNOWN: N_("I couldn't find this question on the queue."),
}
