"""The buttons under a job's messages (Cancel, Solve again, Show reasoning).

Each is a DynamicItem whose custom_id carries the job id, so discord.py routes a click to it
whether or not this process sent the message (after a restart too), and keeps no view per
message. A click is announced as the bot event `fathom_job_action` (interaction, action, job
id); the extension that owns the action listens for it, so this module imports none.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, ClassVar, Self

import discord

from bot.i18n import ENGLISH, N_, Texts
from bot.logic.naming import AGAIN_PREFIX, CANCEL_PREFIX, JOB_ID_PATTERN, REASONING_PREFIX

JOB_ACTION_EVENT = "fathom_job_action"
"""Listeners: `on_fathom_job_action(interaction, action, job_id)`."""


class JobAction(StrEnum):
    CANCEL = "cancel"
    SOLVE_AGAIN = "again"
    SHOW_REASONING = "reasoning"


class _JobButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template="(?!)",  # matches nothing: only the concrete buttons below are registered
):
    """A button about one job; its custom_id is PREFIX + job id."""

    PREFIX: ClassVar[str]
    LABEL: ClassVar[str]
    ACTION: ClassVar[JobAction]
    STYLE: ClassVar[discord.ButtonStyle] = discord.ButtonStyle.secondary

    def __init__(self, job_id: str, t: Texts = ENGLISH) -> None:
        super().__init__(
            discord.ui.Button(
                label=t.gettext(self.LABEL), style=self.STYLE, custom_id=self.PREFIX + job_id
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
        interaction.client.dispatch(JOB_ACTION_EVENT, interaction, self.ACTION, self.job_id)


class CancelButton(_JobButton, template=re.escape(CANCEL_PREFIX) + JOB_ID_PATTERN):
    PREFIX = CANCEL_PREFIX
    LABEL = N_("Cancel")
    ACTION = JobAction.CANCEL
    STYLE = discord.ButtonStyle.danger


class SolveAgainButton(_JobButton, template=re.escape(AGAIN_PREFIX) + JOB_ID_PATTERN):
    PREFIX = AGAIN_PREFIX
    LABEL = N_("Solve again")
    ACTION = JobAction.SOLVE_AGAIN


class ShowReasoningButton(_JobButton, template=re.escape(REASONING_PREFIX) + JOB_ID_PATTERN):
    PREFIX = REASONING_PREFIX
    LABEL = N_("Show reasoning")
    ACTION = JobAction.SHOW_REASONING


JOB_BUTTONS = (CancelButton, SolveAgainButton, ShowReasoningButton)
_BY_ACTION: dict[str, type[_JobButton]] = {button.ACTION: button for button in JOB_BUTTONS}


def status_view(job_id: str, t: Texts = ENGLISH) -> discord.ui.View:
    """Under a status message while its job waits or runs."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id, t))
    return view


def outcome_view(
    job_id: str, actions: tuple[str, ...], t: Texts = ENGLISH
) -> discord.ui.View | None:
    """Under the last message of an outcome: the buttons `actions` names, in that order."""
    if not actions:
        return None
    view = discord.ui.View(timeout=None)
    for action in actions:
        view.add_item(_BY_ACTION[action](job_id, t))
    return view
