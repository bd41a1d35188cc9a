"""What moderators read: the queue's status, failures and audit entries as short text. Pure."""

from __future__ import annotations

from bot.logic.progress import format_duration, format_eta
from fathom.admin import AuditEntry, JobView, ModelView, QueueStatus
from fathom.contract import Outcome, Phase

FIELD_LIMIT = 1024
"""Characters in one embed field's value."""
PHASE_WORDS = {
    Phase.QUEUED: "waiting",
    Phase.THINKING: "thinking",
    Phase.WRITING: "writing",
    Phase.RENDERING: "drawing",
}


def _asker(user_id: int | None) -> str:
    return f"<@{user_id}>" if user_id is not None else "someone"


def job_line(view: JobView) -> str:
    where = f"#{view.position}" if view.position is not None else PHASE_WORDS.get(view.phase, "")
    tokens = f" · {view.tokens:,} tokens" if view.tokens else ""
    return (
        f"`{view.job_id[:8]}` {where} · {_asker(view.user_id)} · "
        f"{format_duration(view.age_s)}{tokens} — {view.question[:60]}"
    )


def failure_line(outcome: Outcome) -> str:
    reason = outcome.failure.message if outcome.failure else outcome.status.value
    return f"`{outcome.job_id[:8]}` {_asker(outcome.user_id)} — {reason[:120]}"


def model_line(view: ModelView) -> str:
    health = {True: "healthy", False: "not answering", None: "health unknown"}[view.healthy]
    load = []
    if view.queue_size is not None:
        load.append(f"{view.queue_size:g} waiting")
    if view.batch_size is not None:
        load.append(f"{view.batch_size:g} in the batch")
    engine = f" ({view.engine})" if view.engine else ""
    return f"{view.name}{engine}: {health}" + (f", {', '.join(load)}" if load else ", load unknown")


def lines_field(lines: list[str], total: int, empty: str) -> str:
    """Lines that fit one embed field, with how many more there are."""
    if not lines:
        return empty
    shown: list[str] = []
    for line in lines:
        if len("\n".join([*shown, line])) > FIELD_LIMIT - 40:
            break
        shown.append(line)
    more = total - len(shown)
    return "\n".join(shown) + (f"\n…and {more} more" if more > 0 else "")


def status_fields(status: QueueStatus) -> list[tuple[str, str]]:
    """(title, text) pairs: this server's jobs, then the global picture."""
    fields = [
        (
            f"Waiting here ({status.queued_count})",
            lines_field(
                [job_line(v) for v in status.queued], status.queued_count, "No one is waiting."
            ),
        ),
        (
            f"Being solved here ({status.running_count})",
            lines_field(
                [job_line(v) for v in status.running], status.running_count, "Nothing right now."
            ),
        ),
        (
            "Failed here (24 h)",
            lines_field(
                [failure_line(o) for o in status.failed], len(status.failed), "No failures."
            ),
        ),
    ]
    oldest = format_duration(status.oldest_wait_s) if status.oldest_wait_s is not None else "—"
    models = "\n".join(model_line(view) for view in status.models) or (
        "No worker pool reports on its model server."
    )
    overall = [
        f"Queue: {status.depth} waiting (oldest {oldest}), {status.render_depth} to draw",
        f"Workers: {status.workers_busy} busy of {status.workers} online",
        f"A new question here would be answered in {format_eta(status.eta_new_s)} "
        f"(one takes about {format_duration(status.typical_solve_s)}).",
    ]
    if status.suspended:
        overall.insert(0, "⏸️ Every worker is paused by an operator.")
    fields.append(("Everywhere", "\n".join(overall)))
    fields.append(("Model servers", models))
    return fields


def paused_line(status: QueueStatus) -> str:
    if status.paused is None:
        return "Questions are being taken."
    return f"⏸️ Questions are paused here by {status.paused.by}."


def audit_line(entry: AuditEntry) -> str:
    """One audit entry as a mod-log post."""
    who = entry.actor.describe()
    if entry.actor.user_id is not None:
        who += f" <@{entry.actor.user_id}>"
    text = f"**{entry.action}** by {who}"
    if entry.job_ids:
        shown = ", ".join(f"`{job_id[:8]}`" for job_id in entry.job_ids[:10])
        extra = len(entry.job_ids) - 10
        text += f" — jobs {shown}" + (f" and {extra} more" if extra > 0 else "")
    if entry.before is not None or entry.after is not None:
        text += f"\n`{entry.before}` → `{entry.after}`"
    if entry.note:
        text += f"\n{entry.note}"
    return text[:2000]
