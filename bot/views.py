"""Buttons that keep working after a restart: each is a DynamicItem whose custom_id carries
the job id, so discord.py routes a click to it whether or not this process sent the message."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

import discord

from bot.logic.naming import AGAIN_PREFIX, CANCEL_PREFIX, JOB_ID_PATTERN, REASONING_PREFIX

if TYPE_CHECKING:
    from bot.client import FathomBot


def _bot(interaction: discord.Interaction[Any]) -> FathomBot:
    return cast("FathomBot", interaction.client)


class _JobButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template="(?!)",  # matches nothing: only the concrete buttons below are registered
):
    """A button about one job; its custom_id is PREFIX + job id."""

    PREFIX: ClassVar[str]
    LABEL: ClassVar[str]
    STYLE: ClassVar[discord.ButtonStyle] = discord.ButtonStyle.secondary

    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(label=self.LABEL, style=self.STYLE, custom_id=self.PREFIX + job_id)
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


class CancelButton(_JobButton, template=re.escape(CANCEL_PREFIX) + JOB_ID_PATTERN):
    PREFIX = CANCEL_PREFIX
    LABEL = "Cancel"
    STYLE = discord.ButtonStyle.danger

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _bot(interaction).asker.cancel(interaction, self.job_id)


class SolveAgainButton(_JobButton, template=re.escape(AGAIN_PREFIX) + JOB_ID_PATTERN):
    PREFIX = AGAIN_PREFIX
    LABEL = "Solve again"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _bot(interaction).asker.solve_again(interaction, self.job_id)


class ShowReasoningButton(_JobButton, template=re.escape(REASONING_PREFIX) + JOB_ID_PATTERN):
    PREFIX = REASONING_PREFIX
    LABEL = "Show reasoning"

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
