"""A server's last 24 hours as one picture (PNG): questions per hour by outcome, how long they
waited and took (median and 90th percentile per hour), and the outcomes in total. Pure: data in,
PNG bytes out (matplotlib, no display)."""

from __future__ import annotations

import io
import math
import statistics
from collections import Counter

from bot.i18n import ENGLISH, N_, Texts
from fathom.contract import Outcome, SolveStatus

HOURS = 24
BACKGROUND = "#313338"
TEXT = "#DBDEE1"
GRID = "#4E5058"
COLOURS = {
    SolveStatus.SOLVED: "#57F287",
    SolveStatus.NO_ANSWER: "#FEE75C",
    SolveStatus.TRUNCATED: "#F0B232",
    SolveStatus.FAILED: "#ED4245",
    SolveStatus.CANCELLED: "#949BA4",
}
LABELS = {
    SolveStatus.SOLVED: N_("solved"),
    SolveStatus.NO_ANSWER: N_("no final answer"),
    SolveStatus.TRUNCATED: N_("cut at the budget"),
    SolveStatus.FAILED: N_("failed"),
    SolveStatus.CANCELLED: N_("cancelled"),
}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def hourly(outcomes: list[Outcome], now: float) -> list[list[Outcome]]:
    """The outcomes of each of the last HOURS hours, oldest hour first (by finish time)."""
    buckets: list[list[Outcome]] = [[] for _ in range(HOURS)]
    for outcome in outcomes:
        age_h = (now - outcome.finished_at) / 3600
        if 0 <= age_h < HOURS:
            buckets[HOURS - 1 - int(age_h)].append(outcome)
    return buckets


def stats_chart(outcomes: list[Outcome], now: float, title: str, t: Texts = ENGLISH) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    buckets = hourly(outcomes, now)
    hours = list(range(-HOURS + 1, 1))
    figure = Figure(figsize=(9, 9), dpi=100, facecolor=BACKGROUND)
    figure.suptitle(title, color=TEXT, fontsize=14)
    per_hour, times, totals = figure.subplots(3, 1, height_ratios=[3, 3, 2])
    for axes in (per_hour, times, totals):
        axes.set_facecolor(BACKGROUND)
        axes.tick_params(colors=TEXT)
        for spine in axes.spines.values():
            spine.set_color(GRID)
        axes.grid(color=GRID, linewidth=0.5)

    bottom = [0] * HOURS
    for status in SolveStatus:
        counts = [sum(1 for o in bucket if o.status is status) for bucket in buckets]
        if any(counts):
            per_hour.bar(
                hours, counts, bottom=bottom, color=COLOURS[status], label=t.gettext(LABELS[status])
            )
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    per_hour.set_title(t.gettext("Questions per hour"), color=TEXT)
    per_hour.set_xlabel(t.gettext("hours ago"), color=TEXT)
    if any(bottom):
        per_hour.legend(facecolor=BACKGROUND, labelcolor=TEXT, fontsize=8, loc="upper left", ncol=5)

    for label, measure, colour in (
        (t.gettext("waited"), _waited, "#5865F2"),
        (t.gettext("took"), _took, "#EB459E"),
    ):
        for share, style in ((0.5, "-"), (0.9, ":")):
            points = [
                (hour, _percentile(values, share) / 60)
                for hour, bucket in zip(hours, buckets, strict=True)
                if (values := [v for o in bucket if (v := measure(o)) is not None])
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                times.plot(
                    xs,
                    ys,
                    style,
                    color=colour,
                    marker="o",
                    markersize=3,
                    label=f"{label}, "
                    + (t.gettext("median") if share == 0.5 else t.gettext("90th percentile")),
                )
    times.set_title(t.gettext("Minutes waiting for a worker, and solving"), color=TEXT)
    times.set_xlim(hours[0] - 0.5, 0.5)
    if times.lines:
        times.legend(facecolor=BACKGROUND, labelcolor=TEXT, fontsize=8, loc="upper left")

    counted = Counter(o.status for o in outcomes if now - o.finished_at < HOURS * 3600)
    shown = [s for s in SolveStatus if counted[s]]
    totals.barh(
        [t.gettext(LABELS[s]) for s in shown],
        [counted[s] for s in shown],
        color=[COLOURS[s] for s in shown],
    )
    took = _all_took(outcomes, now)
    heading = t.gettext("Outcomes: {count} in 24 h").format(count=sum(counted.values()))
    if took:
        minutes = t.number(round(statistics.median(took) / 60, 1))
        heading += t.gettext(", median {minutes} min to solve").format(minutes=minutes)
    totals.set_title(heading, color=TEXT)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=BACKGROUND)
    return buffer.getvalue()


def _waited(outcome: Outcome) -> float | None:
    return outcome.queued_s


def _took(outcome: Outcome) -> float | None:
    if outcome.total_s is None or outcome.status is not SolveStatus.SOLVED:
        return None
    return outcome.total_s - (outcome.queued_s or 0.0)


def _all_took(outcomes: list[Outcome], now: float) -> list[float]:
    return [
        took
        for o in outcomes
        if now - o.finished_at < HOURS * 3600 and (took := _took(o)) is not None
    ]
