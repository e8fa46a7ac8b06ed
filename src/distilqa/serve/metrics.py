"""Prometheus text-format metrics of the server, written by hand (no client library needed)."""

from __future__ import annotations

import threading
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Histogram:
    """Cumulative buckets, sum and count, as Prometheus histograms are exposed."""

    def __init__(self, buckets: tuple):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out = [f'{name}_bucket{{{labels},le="{bound}"}} {n}' for bound, n in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        out.append(f"{name}_sum{{{labels}}} {self.total}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


class Metrics:
    """Requests by status, request latency, batch sizes and queue depth, labelled with model and backend.

    Args:
        model (`str`): the model's name or path (a label value).
        backend (`str`): ``torch`` or ``onnx``.
        queue_depth (`Callable[[], int]`, *optional*): the number of requests waiting now.
    """

    def __init__(self, model: str, backend: str, queue_depth: Callable[[], int] | None = None):
        self.labels = f'model="{_escape(model)}",backend="{_escape(backend)}"'
        self.queue_depth = queue_depth or (lambda: 0)
        self.requests: dict[int, int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self._lock = threading.Lock()

    def observe_request(self, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[status] = self.requests.get(status, 0) + 1
            self.latency.observe(seconds)

    def observe_batch(self, size: int) -> None:
        with self._lock:
            self.batch_size.observe(size)

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP distilqa_requests_total Answer requests by HTTP status.",
                "# TYPE distilqa_requests_total counter",
            ]
            lines += [
                f'distilqa_requests_total{{{self.labels},status="{status}"}} {n}'
                for status, n in sorted(self.requests.items())
            ]
            lines += [
                "# HELP distilqa_request_seconds Answer request latency in seconds.",
                "# TYPE distilqa_request_seconds histogram",
                *self.latency.lines("distilqa_request_seconds", self.labels),
                "# HELP distilqa_batch_size Windows (features; a long context makes several) per model batch.",
                "# TYPE distilqa_batch_size histogram",
                *self.batch_size.lines("distilqa_batch_size", self.labels),
                "# HELP distilqa_queue_depth Requests waiting for a batch.",
                "# TYPE distilqa_queue_depth gauge",
                f"distilqa_queue_depth{{{self.labels}}} {self.queue_depth()}",
            ]
        return "\n".join(lines) + "\n"
