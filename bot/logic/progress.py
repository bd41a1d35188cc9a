"""What a status message says while a job waits and runs, and how long the wait may be."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.i18n import ENGLISH, Texts
from fathom.contract import Phase

BAR_WIDTH = 20


@dataclass(frozen=True, slots=True)
class JobProgress:
    """The newest known state of one job, as far as its status message is concerned."""

    phase: Phase
    position: int | None = None
    """1 = next in line; None when unknown or not queued."""
    tokens: int = 0
    budget_tokens: int | None = None
    elapsed_s: float = 0.0
    note: str | None = None
    samples: int | None = None
    """A consensus job: how many samples it runs (`tokens` is their sum)."""
    samples_done: int = 0


def format_duration(seconds: float) -> str:
    """`0:07`, `3:21`, `1:02:03`."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def progress_bar(tokens: int, budget: int | None, width: int = BAR_WIDTH) -> str:
    """A text bar of tokens spent against the budget, e.g. `▰▰▰▱▱▱▱▱▱▱ 30%`."""
    if not budget or budget <= 0:
        return ""
    share = min(1.0, max(0.0, tokens / budget))
    filled = math.floor(share * width)
    return "▰" * filled + "▱" * (width - filled) + f" {math.floor(share * 100)}%"


def estimate_wait_s(position: int, workers: int, solve_s: float) -> float:
    """Seconds until a job at `position` (1 = next) is answered, when `workers` jobs run at
    once and one takes about `solve_s`: the waves of jobs ahead of it, then its own."""
    waves_ahead = (max(position, 1) - 1) // max(workers, 1)
    return (waves_ahead + 1) * solve_s


def format_eta(seconds: float, t: Texts = ENGLISH) -> str:
    if seconds < 60:
        return t.gettext("under a minute")
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return t.gettext("about {minutes} min").format(minutes=minutes)
    return t.gettext("about {hours} h").format(hours=t.number(round(minutes / 60, 1)))


def status_text(progress: JobProgress, *, eta_s: float | None = None, t: Texts = ENGLISH) -> str:
    """The status line for a job that is not finished yet."""
    phase = progress.phase
    samples = progress.samples
    took = format_duration(progress.elapsed_s)
    tokens = t.number(progress.tokens)
    if phase is Phase.QUEUED:
        if progress.position:
            text = t.gettext("⏳ Queued — #{position} in line").format(position=progress.position)
        else:
            text = t.gettext("⏳ Queued — in line")
        if samples:
            text += " " + t.gettext("({samples} samples)").format(samples=samples)
        if eta_s is not None:
            text += " · " + t.gettext("answer in {eta}").format(eta=format_eta(eta_s, t))
    elif samples and phase in (Phase.THINKING, Phase.WRITING):
        text = t.gettext(
            "🧠 Sampling · {done} of {samples} samples done · {tokens} tokens · {took}"
        ).format(done=progress.samples_done, samples=samples, tokens=tokens, took=took)
        bar = progress_bar(progress.samples_done, samples)
        text += "\n" + t.gettext("`{bar}` of the samples").format(bar=bar)
    elif samples and phase is Phase.RENDERING:
        text = t.gettext("🗳️ Comparing the {samples} samples' answers · {took}").format(
            samples=samples, took=took
        )
    elif phase is Phase.THINKING:
        text = t.gettext("🧠 Thinking · {tokens} tokens · {took}").format(tokens=tokens, took=took)
        bar = progress_bar(progress.tokens, progress.budget_tokens)
        if bar and progress.budget_tokens:
            text += "\n" + t.gettext("`{bar}` of the {budget}-token budget").format(
                bar=bar, budget=t.number(progress.budget_tokens)
            )
    elif phase is Phase.WRITING:
        text = t.gettext("✍️ Writing the solution · {tokens} tokens · {took}").format(
            tokens=tokens, took=took
        )
    elif phase is Phase.RENDERING:
        text = t.gettext("🖼️ Laying out the formulas · {took}").format(took=took)
    elif phase is Phase.DONE:
        text = t.gettext("✅ Done in {took}").format(took=took)
    elif phase is Phase.CANCELLED:
        text = t.gettext("🚫 Cancelled")
    else:
        text = t.gettext("⚠️ Stopped")
    if progress.note and not phase.terminal and not (samples and phase is Phase.RENDERING):
        text += f"\n-# {progress.note}"
    return text
