"""Input checks before anything is enqueued. Each rejection is one specific sentence for the
asker; an accepted question reaches the model exactly as written (Unicode, code blocks, LaTeX)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.i18n import ENGLISH, Texts

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".heic", ".tif", ".tiff")


@dataclass(frozen=True, slots=True)
class Attachment:
    """What the checks need to know of an attached file."""

    filename: str
    content_type: str | None = None

    @property
    def is_image(self) -> bool:
        if self.content_type is not None and self.content_type.startswith("image/"):
            return True
        return self.filename.lower().endswith(IMAGE_EXTENSIONS)


@dataclass(frozen=True, slots=True)
class Limits:
    max_question_chars: int
    max_pending: int
    cooldown_s: float


def check_question(
    text: str, attachments: tuple[Attachment, ...], limits: Limits, t: Texts = ENGLISH
) -> str | None:
    """The reason this question cannot be taken, or None when it can."""
    if not text.strip():
        if any(a.is_image for a in attachments):
            return t.gettext(
                "I can only read text, not images. Please type the problem out (LaTeX like "
                "`\\frac{1}{2}` is fine)."
            )
        if attachments:
            return t.gettext(
                "I can only read text typed into the message. Please paste the problem itself."
            )
        return t.gettext("Your question is empty. Please write the math problem you want solved.")
    if len(text) > limits.max_question_chars:
        return t.gettext(
            "Your question is {length} characters long; the limit is {limit}. Please shorten it "
            "to the problem itself."
        ).format(length=t.number(len(text)), limit=t.number(limits.max_question_chars))
    return None


def check_quota(
    pending: int, cooldown_left_s: float, limits: Limits, t: Texts = ENGLISH
) -> str | None:
    """The reason this user must wait, or None when a new question may be enqueued."""
    if pending >= limits.max_pending:
        return t.ngettext(
            "You already have {pending} question waiting or being solved (the limit is "
            "{limit}). Please wait for it to finish, or cancel it.",
            "You already have {pending} questions waiting or being solved (the limit is "
            "{limit}). Please wait for one to finish, or cancel it.",
            pending,
        ).format(pending=pending, limit=limits.max_pending)
    if cooldown_left_s > 0:
        seconds = max(1, math.ceil(cooldown_left_s))
        return t.ngettext(
            "You're asking a little fast. Please wait {seconds} second before the next question.",
            "You're asking a little fast. Please wait {seconds} seconds before the next question.",
            seconds,
        ).format(seconds=seconds)
    return None


def check_samples(samples: int, most: int, t: Texts = ENGLISH) -> str | None:
    """The reason a consensus of `samples` samples cannot be asked for here, or None."""
    if samples < 1:
        return t.gettext("Ask for at least one sample.")
    if samples > most:
        if most == 1:
            return t.gettext(
                "Answers by several samples are turned off here; ask without `samples`."
            )
        return t.gettext(
            "You asked for {samples} samples; the most allowed here is {most}. Please ask "
            "again with fewer."
        ).format(samples=samples, most=most)
    return None


def daily_refusal(quota: int, used: int, asked: int, t: Texts = ENGLISH) -> str:
    """Why a question does not fit in today's quota (a consensus counts each sample)."""
    if asked > 1 and used < quota:
        return t.ngettext(
            "A question with {asked} samples counts {asked} towards your {quota} questions a "
            "day here, and {left} is left today. Ask with fewer samples, or wait until midnight "
            "(UTC).",
            "A question with {asked} samples counts {asked} towards your {quota} questions a "
            "day here, and {left} are left today. Ask with fewer samples, or wait until "
            "midnight (UTC).",
            quota - used,
        ).format(asked=asked, quota=quota, left=quota - used)
    return t.gettext(
        "You've asked your {quota} questions for today here. The count starts again at "
        "midnight (UTC)."
    ).format(quota=quota)
