"""One look at the model server: its health and load (worker.observe looks every
WATCH_INTERVAL_S and publishes it for the moderators' `/queue status`; the bot never talks to
the model server itself).

What each engine says about its load, from its Prometheus `/metrics`:
TGI `tgi_queue_size` / `tgi_batch_current_size`; vLLM `vllm:num_requests_waiting` /
`vllm:num_requests_running`; llama.cpp (with `--metrics`) `llamacpp:requests_deferred` /
`llamacpp:requests_processing`. An engine that exposes none of them has an unknown load.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from fathom.admin import ModelView

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 15.0
REQUEST_TIMEOUT_S = 5.0

QUEUE_GAUGES = ("tgi_queue_size", "vllm:num_requests_waiting", "llamacpp:requests_deferred")
BATCH_GAUGES = (
    "tgi_batch_current_size",
    "vllm:num_requests_running",
    "llamacpp:requests_processing",
)
ENGINE_OF = {"tgi": "TGI", "vllm": "vLLM", "llamacpp": "llama.cpp"}


@dataclass(frozen=True, slots=True)
class Load:
    engine: str | None = None
    queue_size: float | None = None
    batch_size: float | None = None


def load_from_metrics(text: str) -> Load:
    """The engine and its queue / batch gauges from a Prometheus exposition (pure)."""
    values: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    except ValueError:
        return Load()
    queue = next((values[name] for name in QUEUE_GAUGES if name in values), None)
    batch = next((values[name] for name in BATCH_GAUGES if name in values), None)
    prefixes = {name.split(":")[0].split("_")[0] for name in values}
    engine = next((label for prefix, label in ENGINE_OF.items() if prefix in prefixes), None)
    return Load(engine, queue, batch)


def server_name(model_url: str) -> str:
    parts = urlsplit(model_url)
    return parts.netloc or model_url


def look(http: httpx2.Client, model_url: str) -> ModelView:
    """One look at the model server: /health, /info for the model, /metrics for the load."""
    base = model_url.rstrip("/")
    name = server_name(model_url)
    try:
        health = http.get(f"{base}/health")
    except httpx2.HTTPError:
        return ModelView(name=name, healthy=False, updated_at=time.time())
    load = Load()
    model_id = None
    try:
        metrics = http.get(f"{base}/metrics")
        if metrics.status_code == 200:
            load = load_from_metrics(metrics.text)
        info = http.get(f"{base}/info")
        if info.status_code == 200 and isinstance(body := info.json(), dict):
            model_id = str(body.get("model_id") or "") or None
    except (httpx2.HTTPError, ValueError) as exc:
        log.info("model server %s: no metrics (%s)", name, exc)
    return ModelView(
        name=name,
        engine=load.engine,
        healthy=health.status_code == 200,
        queue_size=load.queue_size,
        batch_size=load.batch_size,
        model_id=model_id,
        updated_at=time.time(),
    )
