"""Buttons that keep working after a restart: each is a DynamicItem whose custom_id carries
the job id, so discord.py routes a click to it whether or not this process sent the message."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Self, cast

import discord

from bot.logic.naming import AGAIN_PREFIX, CANCEL_PREFIX, JOB_ID_PATTERN, REASONING_PREFIX

if TYPE_CHECKING:
    from bot.client import FathomBot


def _bot(interaction: discord.Interaction[Any]) -> FathomBot:
    return cast("FathomBot", interaction.client)


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.escape(CANCEL_PREFIX) + JOB_ID_PATTERN,
):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel", style=discord.ButtonStyle.danger, custom_id=CANCEL_PREFIX + job_id
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _bot(interaction).asker.cancel(interaction, self.job_id)


class SolveAgainButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.escape(AGAIN_PREFIX) + JOB_ID_PATTERN,
):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Solve again",
                style=discord.ButtonStyle.secondary,
                custom_id=AGAIN_PREFIX + job_id,
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _bot(interaction).asker.solve_again(interaction, self.job_id)


class ShowReasoningButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.escape(REASONING_PREFIX) + JOB_ID_PATTERN,
):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Show reasoning",
                style=discord.ButtonStyle.secondary,
                custom_id=REASONING_PREFIX + job_id,
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _bot(interaction).asker.show_reasoning(interaction, self.job_id)


DYNAMIC_ITEMS = (CancelButton, SolveAgainButton, ShowReasoningButton)


def status_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


def outcome_view(job_id: str, buttons: tuple[str, ...]) -> discord.ui.View | None:
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    if "reasoning" in buttons:
        view.add_item(ShowReasoningButton(job_id))
    if "again" in buttons:
        view.add_item(SolveAgainButton(job_id))
    return view
