"""Sending a job's outcome where its promise says, exactly once: how far a delivery got is
recorded per message, and each message carries a nonce derived from (job, index), so a resend
after a crash is dropped by Discord instead of posted twice."""

from __future__ import annotations

import io
import logging
from typing import Any

import discord

from bot.client import FathomBot
from bot.components import outcome_view
from bot.i18n import texts
from bot.logic.compose import REASONING_FILE, compose
from bot.logic.naming import message_nonce
from bot.logic.outcome import final_status, has_solution
from bot.logic.pack import SPOILER_PREFIX, Outgoing
from bot.records import Conversation, Promise, TargetKind
from bot.store import BotStore
from fathom.contract import Rendering, SolveResult, Turn

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(self, bot: FathomBot, store: BotStore) -> None:
        self.bot = bot
        self.store = store

    async def deliver(self, promise: Promise, result: SolveResult) -> str:
        """Send the outcome (resuming where an earlier try stopped) and return the final text
        of the job's status message. Raises what Discord or Redis raised for a try that may
        succeed later; a place that is gone for good is given up."""
        job_id = promise.job_id
        progress = await self.store.delivery(job_id)
        if not progress.done:
            document = (
                await self.store.document(job_id) if result.rendering is Rendering.DONE else None
            )
            outgoing = compose(
                result,
                document,
                attach_reasoning=promise.show_reasoning,
                study=promise.study,
                t=texts(promise.language),
            )
            try:
                await self._send(promise, result, outgoing, progress.sent, progress.last_message_id)
            except (discord.NotFound, discord.Forbidden) as exc:
                # The thread or DM is gone or closed: nothing can be delivered there, ever.
                log.warning("job %s cannot be delivered: %s", job_id, exc)
            if await self.store.claim_done(job_id):
                await self._remember_turn(promise, result)
        await self.store.finish(promise)
        thread = promise.kind is TargetKind.THREAD
        return final_status(result, thread=thread, t=texts(promise.language))

    async def _send(
        self,
        promise: Promise,
        result: SolveResult,
        outgoing: list[Outgoing],
        already_sent: int,
        last_message_id: int | None,
    ) -> None:
        channel = self.bot.get_partial_messageable(promise.target_channel_id)
        stored = await self.store.files(promise.job_id) if any(o.files for o in outgoing) else {}
        reply_to = last_message_id or promise.status_message_id
        for index, message in enumerate(outgoing):
            if index < already_sent:
                continue
            files = [
                discord.File(io.BytesIO(data), filename=name)
                for name in message.files
                if (data := _file_bytes(name, stored, result)) is not None
            ]
            extra: dict[str, Any] = {}
            if promise.kind is TargetKind.DM:
                extra["reference"] = discord.MessageReference(
                    message_id=reply_to,
                    channel_id=promise.target_channel_id,
                    fail_if_not_exists=False,
                )
            view = outcome_view(promise.job_id, message.buttons, texts(promise.language))
            if view is not None:
                extra["view"] = view
            sent = await channel.send(
                content=message.content or None,
                files=files,
                nonce=message_nonce(promise.job_id, index),
                allowed_mentions=discord.AllowedMentions.none(),
                **extra,
            )
            reply_to = sent.id
            await self.store.mark_sent(promise.job_id, index + 1, sent.id)

    async def _remember_turn(self, promise: Promise, result: SolveResult) -> None:
        """A solution thread remembers its questions and written solutions for follow-ups
        (threads the bot made; a channel or someone else's thread never turns the asker's
        next messages into questions)."""
        if not has_solution(result) or not result.solution.strip():
            return
        thread_id = promise.target_channel_id
        conversation = await self.store.conversation(thread_id)
        if conversation is None:
            if promise.kind is not TargetKind.THREAD:
                return
            conversation = Conversation(asker_id=promise.user_id, turns=list(promise.history))
        turn = Turn(question=promise.question, solution=result.solution)
        await self.store.save_conversation(thread_id, conversation.with_turn(turn))


def _file_bytes(name: str, stored: dict[str, bytes], result: SolveResult) -> bytes | None:
    """A file of an outgoing message (a hidden picture is named `SPOILER_` + its name)."""
    name = name.removeprefix(SPOILER_PREFIX)
    if name in stored:
        return stored[name]
    if name == REASONING_FILE:
        return result.reasoning.encode()
    return None
