"""What a status message says while a job waits and runs, and how long the wait may be."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def format_eta(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min"
    return f"about {round(minutes / 60, 1):g} h"


def status_text(progress: JobProgress, *, eta_s: float | None = None) -> str:
    """The status line for a job that is not finished yet."""
    phase = progress.phase
    samples = progress.samples
    if phase is Phase.QUEUED:
        where = f"#{progress.position} in line" if progress.position else "in line"
        text = f"⏳ Queued — {where}"
        if samples:
            text += f" ({samples} samples)"
        if eta_s is not None:
            text += f" · answer in {format_eta(eta_s)}"
    elif samples and phase in (Phase.THINKING, Phase.WRITING):
        text = (
            f"🧠 Sampling · {progress.samples_done} of {samples} samples done · "
            f"{progress.tokens:,} tokens · {format_duration(progress.elapsed_s)}"
        )
        text += f"\n`{progress_bar(progress.samples_done, samples)}` of the samples"
    elif samples and phase is Phase.RENDERING:
        text = f"🗳️ Comparing the {samples} samples' answers · {format_duration(progress.elapsed_s)}"
    elif phase is Phase.THINKING:
        text = f"🧠 Thinking · {progress.tokens:,} tokens · {format_duration(progress.elapsed_s)}"
        bar = progress_bar(progress.tokens, progress.budget_tokens)
        if bar:
            text += f"\n`{bar}` of the {progress.budget_tokens:,}-token budget"
    elif phase is Phase.WRITING:
        text = (
            f"✍️ Writing the solution · {progress.tokens:,} tokens · "
            f"{format_duration(progress.elapsed_s)}"
        )
    elif phase is Phase.RENDERING:
        text = f"🖼️ Laying out the formulas · {format_duration(progress.elapsed_s)}"
    elif phase is Phase.DONE:
        text = f"✅ Done in {format_duration(progress.elapsed_s)}"
    elif phase is Phase.CANCELLED:
        text = "🚫 Cancelled"
    else:
        text = "⚠️ Stopped"
    if progress.note and not phase.terminal and not (samples and phase is Phase.RENDERING):
        text += f"\n-# {progress.note}"
    return text
