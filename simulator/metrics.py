"""The subset of TGI's Prometheus metrics the simulator keeps, rendered as TGI renders them
(metrics-exporter-prometheus text format, TGI's bucket layouts)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field


def _duration_buckets() -> list[float]:
    # TGI: 35 geometric buckets from 0.00015 s, ratio 1.5, for every metric named *duration.
    buckets, value = [], 0.0001
    for _ in range(35):
        value *= 1.5
        buckets.append(value)
    return buckets


def _linear_buckets(maximum: int, count: int = 100) -> list[float]:
    return [maximum / count * (i + 1) for i in range(count)]


@dataclass
class _Histogram:
    buckets: list[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1


class Metrics:
    """Counters, gauges and histograms named as TGI names them."""

    def __init__(self, max_input_tokens: int, max_total_tokens: int) -> None:
        self.counters: dict[str, int] = defaultdict(int)
        self.failures: dict[str, int] = defaultdict(int)
        self.gauges: dict[str, float] = {"tgi_queue_size": 0.0, "tgi_batch_current_size": 0.0}
        durations = _duration_buckets()
        self.histograms = {
            "tgi_request_duration": _Histogram(durations),
            "tgi_request_queue_duration": _Histogram(durations),
            "tgi_request_inference_duration": _Histogram(durations),
            "tgi_request_mean_time_per_token_duration": _Histogram(durations),
            "tgi_request_input_length": _Histogram(_linear_buckets(max_input_tokens)),
            "tgi_request_generated_tokens": _Histogram(_linear_buckets(max_total_tokens)),
        }

    def count(self, name: str) -> None:
        self.counters[name] += 1

    def fail(self, err: str) -> None:
        """tgi_request_failure{err=...}: overloaded, validation, incomplete, generation."""
        self.failures[err] += 1

    def observe(self, name: str, value: float) -> None:
        self.histograms[name].observe(value)

    def render(self) -> str:
        lines: list[str] = []
        for name, value in sorted(self.counters.items()):
            lines += [f"# TYPE {name} counter", f"{name} {value}"]
        if self.failures:
            lines.append("# TYPE tgi_request_failure counter")
            lines += [
                f'tgi_request_failure{{err="{e}"}} {n}' for e, n in sorted(self.failures.items())
            ]
        for name, gauge in sorted(self.gauges.items()):
            lines += [f"# TYPE {name} gauge", f"{name} {_number(gauge)}"]
        for name, hist in sorted(self.histograms.items()):
            lines.append(f"# TYPE {name} histogram")
            cumulative = 0
            for bound, n in zip(hist.buckets, hist.counts, strict=True):
                cumulative += n
                lines.append(f'{name}_bucket{{le="{_number(bound)}"}} {cumulative}')
            lines.append(f'{name}_bucket{{le="+Inf"}} {hist.count}')
            lines += [f"{name}_sum {_number(hist.total)}", f"{name}_count {hist.count}"]
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
