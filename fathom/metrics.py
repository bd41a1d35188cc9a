"""Counting in Redis what happens to jobs, for Prometheus.

RQ runs every job in a short-lived work horse, so counters kept in a process would be lost with
it (and per-process metric files pile up). Jobs count here instead, in one Redis hash, and a
collector reads it when Prometheus scrapes (as rq-exporter does): `worker.observe`.

Field names are `name|label=value|label=value`, bucket counts `name_bucket|le=X`.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from fathom.keys import PREFIX

METRICS = f"{PREFIX}:metrics"
"""Hash of counter field → value (never expires)."""

TIME_BUCKETS_S = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)
"""Upper bounds of the histograms of waiting, solving and drawing times."""
RENDER_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

JOBS = "fathom_jobs_total"
TOKENS = "fathom_tokens_generated_total"
WAIT = "fathom_job_wait_seconds"
SOLVE = "fathom_job_solve_seconds"
RENDER = "fathom_render_seconds"


def field(name: str, **labels: str) -> str:
    return "|".join([name, *(f"{key}={value}" for key, value in sorted(labels.items()))])


def parse_field(raw: str) -> tuple[str, dict[str, str]]:
    name, *pairs = raw.split("|")
    return name, dict(pair.split("=", 1) for pair in pairs)


def count(pipe: redis.client.Pipeline, name: str, amount: float = 1.0, **labels: str) -> None:
    pipe.hincrbyfloat(METRICS, field(name, **labels), amount)


def observe(pipe: redis.client.Pipeline, name: str, value: float, buckets: Iterable[float]) -> None:
    """One observation of a histogram: its bucket counts (cumulative, as Prometheus wants
    them), sum and count."""
    for bound in buckets:
        if value <= bound:
            pipe.hincrby(METRICS, field(f"{name}_bucket", le=f"{bound:g}"), 1)
    pipe.hincrby(METRICS, field(f"{name}_bucket", le="+Inf"), 1)
    pipe.hincrbyfloat(METRICS, field(f"{name}_sum"), value)
    pipe.hincrby(METRICS, field(f"{name}_count"), 1)


def read(conn: redis.Redis) -> dict[str, float]:
    raw = conn.hgetall(METRICS)
    return {(k.decode() if isinstance(k, bytes) else str(k)): float(v) for k, v in raw.items()}
