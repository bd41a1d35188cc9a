"""What moderators read: the queue's status, failures and audit entries as short text. Pure."""

from __future__ import annotations

from bot.i18n import ENGLISH, N_, Texts
from bot.logic.progress import format_duration, format_eta
from fathom.admin import AuditEntry, JobView, ModelView, QueueStatus
from fathom.contract import Outcome, Phase

FIELD_LIMIT = 1024
"""Characters in one embed field's value."""
PHASE_WORDS = {
    Phase.QUEUED: N_("waiting"),
    Phase.THINKING: N_("thinking"),
    Phase.WRITING: N_("writing"),
    Phase.RENDERING: N_("drawing"),
}


def _asker(user_id: int | None, t: Texts) -> str:
    return f"<@{user_id}>" if user_id is not None else t.gettext("someone")


def job_line(view: JobView, t: Texts = ENGLISH) -> str:
    if view.position is not None:
        where = f"#{view.position}"
    else:
        word = PHASE_WORDS.get(view.phase)
        where = t.gettext(word) if word else ""
    tokens = " · " + t.gettext("{tokens} tokens").format(tokens=t.number(view.tokens))
    return (
        f"`{view.job_id[:8]}` {where} · {_asker(view.user_id, t)} · "
        f"{format_duration(view.age_s)}{tokens if view.tokens else ''} — {view.question[:60]}"
    )


def failure_line(outcome: Outcome, t: Texts = ENGLISH) -> str:
    reason = outcome.failure.message if outcome.failure else outcome.status.value
    return f"`{outcome.job_id[:8]}` {_asker(outcome.user_id, t)} — {reason[:120]}"


def model_line(view: ModelView, t: Texts = ENGLISH) -> str:
    health = {
        True: t.gettext("healthy"),
        False: t.gettext("not answering"),
        None: t.gettext("health unknown"),
    }[view.healthy]
    load = []
    if view.queue_size is not None:
        load.append(t.gettext("{count} waiting").format(count=t.number(view.queue_size)))
    if view.batch_size is not None:
        load.append(t.gettext("{count} in the batch").format(count=t.number(view.batch_size)))
    engine = f" ({view.engine})" if view.engine else ""
    shown = ", ".join(load) if load else t.gettext("load unknown")
    return f"{view.name}{engine}: {health}, {shown}"


def lines_field(lines: list[str], total: int, empty: str, t: Texts = ENGLISH) -> str:
    """Lines that fit one embed field, with how many more there are."""
    if not lines:
        return empty
    shown: list[str] = []
    for line in lines:
        if len("\n".join([*shown, line])) > FIELD_LIMIT - 40:
            break
        shown.append(line)
    more = total - len(shown)
    tail = "\n" + t.gettext("…and {more} more").format(more=more) if more > 0 else ""
    return "\n".join(shown) + tail


def status_fields(status: QueueStatus, t: Texts = ENGLISH) -> list[tuple[str, str]]:
    """(title, text) pairs: this server's jobs, then the global picture."""
    fields = [
        (
            t.gettext("Waiting here ({count})").format(count=status.queued_count),
            lines_field(
                [job_line(v, t) for v in status.queued],
                status.queued_count,
                t.gettext("No one is waiting."),
                t,
            ),
        ),
        (
            t.gettext("Being solved here ({count})").format(count=status.running_count),
            lines_field(
                [job_line(v, t) for v in status.running],
                status.running_count,
                t.gettext("Nothing right now."),
                t,
            ),
        ),
        (
            t.gettext("Failed here (24 h)"),
            lines_field(
                [failure_line(o, t) for o in status.failed],
                len(status.failed),
                t.gettext("No failures."),
                t,
            ),
        ),
    ]
    oldest = format_duration(status.oldest_wait_s) if status.oldest_wait_s is not None else "—"
    models = "\n".join(model_line(view, t) for view in status.models) or t.gettext(
        "No worker pool reports on its model server."
    )
    overall = [
        t.gettext("Queue: {depth} waiting (oldest {oldest}), {drawing} to draw").format(
            depth=status.depth, oldest=oldest, drawing=status.render_depth
        ),
        t.gettext("Workers: {busy} busy of {online} online").format(
            busy=status.workers_busy, online=status.workers
        ),
        t.gettext(
            "A new question here would be answered in {eta} (one takes about {typical})."
        ).format(
            eta=format_eta(status.eta_new_s, t), typical=format_duration(status.typical_solve_s)
        ),
    ]
    if status.suspended:
        overall.insert(0, t.gettext("⏸️ Every worker is paused by an operator."))
    fields.append((t.gettext("Everywhere"), "\n".join(overall)))
    fields.append((t.gettext("Model servers"), models))
    return fields


def paused_line(status: QueueStatus, t: Texts = ENGLISH) -> str:
    if status.paused is None:
        return t.gettext("Questions are being taken.")
    return t.gettext("⏸️ Questions are paused here by {who}.").format(who=status.paused.by)


def audit_line(entry: AuditEntry, t: Texts = ENGLISH) -> str:
    """One audit entry as a mod-log post."""
    who = entry.actor.describe()
    if entry.actor.user_id is not None:
        who += f" <@{entry.actor.user_id}>"
    text = t.gettext("**{action}** by {who}").format(action=entry.action, who=who)
    if entry.job_ids:
        shown = ", ".join(f"`{job_id[:8]}`" for job_id in entry.job_ids[:10])
        extra = len(entry.job_ids) - 10
        if extra > 0:
            text += " — " + t.gettext("jobs {shown} and {more} more").format(
                shown=shown, more=extra
            )
        else:
            text += " — " + t.gettext("jobs {shown}").format(shown=shown)
    if entry.before is not None or entry.after is not None:
        text += f"\n`{entry.before}` → `{entry.after}`"
    if entry.note:
        text += f"\n{entry.note}"
    return text[:2000]
