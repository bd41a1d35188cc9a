"""`fathom queue`: the operator's `/queue`, from a shell, through the same functions
(fathom.admin) the moderators' commands use.

Exit status: 0 done; 1 refused or failed (a one-line reason); 2 bad usage.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path

import redis

from fathom import admin
from fathom.settings import Settings, get_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def say(message: str) -> None:
    print(f"fathom queue: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    conn = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3)
    try:
        conn.ping()
        return ACTIONS[args.action](conn, settings, args)
    except redis.RedisError as exc:
        say(f"cannot reach Redis at {settings.redis_url} ({exc})")
        return EXIT_FAILED
    finally:
        conn.close()


def _actor() -> admin.Actor:
    return admin.Actor(kind="shell", name=getpass.getuser())


def _status(conn: redis.Redis, settings: Settings, args: argparse.Namespace) -> int:
    snapshot = admin.status(conn, settings, args.guild)
    if args.json:
        print(snapshot.model_dump_json(indent=2))
        return EXIT_OK
    where = f"server {args.guild}" if args.guild is not None else "every server"
    print(f"Queue ({where}):")
    if snapshot.paused is not None:
        print(f"  paused by {snapshot.paused.by}")
    if snapshot.suspended:
        print("  every worker is paused (fathom queue resume)")
    print(f"  waiting: {snapshot.queued_count}, being solved: {snapshot.running_count}")
    for label, views in (("waiting", snapshot.queued), ("solving", snapshot.running)):
        for view in views:
            where_in = f"#{view.position}" if view.position else view.phase.value
            print(
                f"    {label:8} {view.job_id} {where_in:>9} user {view.user_id} "
                f"{view.age_s:6.0f} s {view.tokens:6} tokens  {view.question[:50]}"
            )
    for outcome in snapshot.failed:
        reason = outcome.failure.message if outcome.failure else outcome.status.value
        print(f"    failed   {outcome.job_id} user {outcome.user_id}: {reason[:80]}")
    oldest = f"{snapshot.oldest_wait_s:.0f} s" if snapshot.oldest_wait_s is not None else "-"
    print(f"  queue depth {snapshot.depth} (oldest {oldest}), {snapshot.render_depth} to draw")
    print(f"  workers {snapshot.workers_busy} busy of {snapshot.workers}")
    for model in snapshot.models:
        health = {True: "healthy", False: "NOT ANSWERING", None: "unknown"}[model.healthy]
        load = (
            f"queue {model.queue_size:g}, batch {model.batch_size:g}"
            if model.queue_size is not None and model.batch_size is not None
            else "load unknown"
        )
        print(f"  model server {model.name} ({model.engine or 'engine unknown'}): {health}, {load}")
    print(f"  a new question would be answered in about {snapshot.eta_new_s / 60:.1f} min")
    return EXIT_OK


def _pause(conn: redis.Redis, settings: Settings, args: argparse.Namespace) -> int:
    pausing = args.action == "pause"
    actor = _actor()
    if args.guild is None:
        changed = admin.pause_all(conn, actor) if pausing else admin.resume_all(conn, actor)
        state = "every worker stops taking new jobs" if pausing else "workers take jobs again"
    else:
        action = admin.pause_guild if pausing else admin.resume_guild
        changed = action(conn, args.guild, actor)
        state = f"server {args.guild}: questions {'paused' if pausing else 'taken again'}"
    print(state + ("" if changed else " (it already was so)"))
    return EXIT_OK


def _cancel(conn: redis.Redis, settings: Settings, args: argparse.Namespace) -> int:
    if args.member is not None:
        if args.guild is None:
            say("--member needs --guild")
            return EXIT_USAGE
        job_ids = admin.member_jobs(conn, args.guild, args.member)
    else:
        job_ids = list(args.jobs)
    if not job_ids:
        say("nothing to cancel")
        return EXIT_FAILED
    outcomes = admin.cancel_jobs(conn, job_ids, settings, _actor(), guild_id=args.guild)
    for job_id, outcome in outcomes.items():
        print(f"{job_id}: {outcome.value}")
    return EXIT_OK


def _clear(conn: redis.Redis, settings: Settings, args: argparse.Namespace) -> int:
    waiting = admin.queued_jobs(conn, args.guild, settings)
    if not waiting:
        print(f"server {args.guild}: nothing waiting")
        return EXIT_OK
    if not args.yes:
        answer = input(f"Drop the {len(waiting)} waiting jobs of server {args.guild}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing dropped")
            return EXIT_FAILED
    outcomes = admin.clear_guild(conn, args.guild, settings, _actor())
    dropped = sum(1 for o in outcomes.values() if o is admin.CancelOutcome.CANCELLED)
    print(f"server {args.guild}: dropped {dropped} waiting jobs")
    return EXIT_OK


def _failed(conn: redis.Redis, settings: Settings, args: argparse.Namespace) -> int:
    found = admin.failed(conn, args.guild, time.time() - args.hours * 3600)
    if args.json:
        print(json.dumps([o.model_dump(mode="json") for o in found], indent=2))
        return EXIT_OK
    for outcome in found:
        reason = outcome.failure.message if outcome.failure else outcome.status.value
        print(f"{outcome.job_id} user {outcome.user_id}: {reason}")
    if not found:
        print(f"server {args.guild}: no failures in {args.hours:g} h")
    return EXIT_OK


def _retry(conn: redis.Redis, settings: Settings, args: argparse.Namespace) -> int:
    try:
        new_id = admin.retry_job(conn, args.job, settings, _actor(), guild_id=None)
    except admin.RetryRefused as exc:
        say(str(exc))
        return EXIT_FAILED
    print(f"{args.job}: asked again as {new_id}")
    return EXIT_OK


def _audit(conn: redis.Redis, settings: Settings, args: argparse.Namespace) -> int:
    entries = admin.audit_log(conn, args.guild, args.limit)
    if args.json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return EXIT_OK
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.at))
        guild = f" server {entry.guild_id}" if entry.guild_id is not None else ""
        jobs = f" jobs {','.join(entry.job_ids)}" if entry.job_ids else ""
        change = f" {entry.before} -> {entry.after}" if entry.before or entry.after else ""
        print(f"{when} {entry.actor.describe()}: {entry.action}{guild}{jobs}{change}")
    return EXIT_OK


def _stats(conn: redis.Redis, settings: Settings, args: argparse.Namespace) -> int:
    from bot.logic.stats_chart import stats_chart

    now = time.time()
    found = admin.outcomes(conn, args.guild, now - 24 * 3600)
    png = stats_chart(found, now, f"server {args.guild} — last 24 h")
    Path(args.output).write_bytes(png)
    print(f"{args.output}: {len(found)} finished jobs in the last 24 h")
    return EXIT_OK


ACTIONS = {
    "status": _status,
    "pause": _pause,
    "resume": _pause,
    "cancel": _cancel,
    "clear": _clear,
    "failed": _failed,
    "retry": _retry,
    "audit": _audit,
    "stats": _stats,
}
