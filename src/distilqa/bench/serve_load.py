"""The clients of ``distilqa benchmark serve``: concurrent keep-alive load, malformed requests, /metrics reading.

Standard library only (``http.client`` on threads), loopback only: every function takes a port on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
CONNECTION_ERROR = "connection error"  # the "status" of a request that got no HTTP answer
REQUEST_TIMEOUT_S = 60.0  # a bound on one request (the server's own timeout answers 504 before it)


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:  # fmt: skip
    """One request on a keep-alive connection: ``(status, body)``; raises ``OSError`` / ``HTTPException``."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """A GET on a fresh connection (``(0, b"")`` when nothing answers)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        return request(conn, "GET", path)
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


def batch_histogram(port: int) -> dict[str, float]:
    """The server's ``distilqa_batch_size`` histogram: ``{"count", "sum", "le=<bound>": cumulative count}``."""
    status, raw = get(port, "/metrics")
    if status != 200:
        return {}
    text = raw.decode("utf-8")
    out = {f"le={le}": float(n) for le, n in re.findall(r'^distilqa_batch_size_bucket\{[^}]*le="([^"]+)"\} (\S+)$', text, re.M)}  # fmt: skip
    for key in ("count", "sum"):
        found = re.search(rf"^distilqa_batch_size_{key}\{{[^}}]*\}} (\S+)$", text, re.M)
        out[key] = float(found.group(1)) if found else 0.0
    return out


def batch_summary(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Model batches between two readings of :func:`batch_histogram`: count, mean windows, per-bucket counts."""
    if not before or not after:
        return {"batches": None, "mean_windows": None, "buckets": {}}
    batches = after["count"] - before["count"]
    windows = after["sum"] - before["sum"]
    cumulative = {k[3:]: after[k] - before.get(k, 0.0) for k in after if k.startswith("le=")}
    buckets, below = {}, 0.0
    for bound, n in cumulative.items():  # cumulative -> per bucket, in the server's order
        if n - below:
            buckets[f"<={bound}"] = int(n - below)
        below = n
    return {
        "batches": int(batches),
        "windows": int(windows),
        "mean_windows": round(windows / batches, 2) if batches else None,
        "buckets": buckets,
    }


@dataclass
class LoadResult:
    """What the load phase measured."""

    seconds: float
    latencies_ms: list[float] = field(default_factory=list)  # of the 200 answers
    statuses: Counter = field(default_factory=Counter)


def run_load(
    port: int,
    questions: list[dict[str, str]],
    concurrency: int,
    duration_s: float | None,
    max_requests: int | None,
) -> LoadResult:
    """``concurrency`` clients, each on its own keep-alive connection, send one question per request (cycling
    through ``questions``) until ``duration_s`` has passed or ``max_requests`` were sent, whichever comes first."""
    bodies = [
        json.dumps({"question": q["question"], "context": q["context"]}).encode("utf-8") for q in questions
    ]
    lock = threading.Lock()
    state = {"sent": 0}
    result = LoadResult(0.0)
    began = time.perf_counter()
    deadline = began + duration_s if duration_s else float("inf")

    def take() -> bytes | None:
        with lock:
            if time.perf_counter() >= deadline or (
                max_requests is not None and state["sent"] >= max_requests
            ):
                return None
            state["sent"] += 1
            return bodies[(state["sent"] - 1) % len(bodies)]

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
        latencies, statuses = [], Counter()
        try:
            while (body := take()) is not None:
                started = time.perf_counter()
                try:
                    status, _ = request(conn, "POST", "/v1/answer", body)
                except (OSError, http.client.HTTPException):
                    statuses[CONNECTION_ERROR] += 1
                    conn.close()  # reconnects on the next request
                    continue
                statuses[str(status)] += 1
                if status == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
        finally:
            conn.close()
            with lock:
                result.latencies_ms.extend(latencies)
                result.statuses.update(statuses)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - began
    return result


def malformed_bodies(max_question_chars: int = 1_000) -> list[tuple[str, bytes]]:
    """``(kind, body)`` of the malformed mix: bad JSON, wrong types, missing fields, over the length limits."""
    return [
        ("bad JSON", b'{"question": "Who?", "context"'),
        ("bad JSON", b"\xff\xfe not utf-8"),
        ("wrong type", b'{"question": 3, "context": "It is."}'),
        ("wrong type", b'{"question": "Who?", "context": "It is.", "top_k": "2"}'),
        ("wrong type", b'"just a string"'),
        ("missing field", b'{"context": "It is."}'),
        ("oversized", json.dumps({"question": "q" * (max_question_chars + 1), "context": "c"}).encode()),
        ("oversized", b"[" + b",".join([b'{"question": "q", "context": "c"}'] * 1000) + b"]"),
    ]


def run_malformed(port: int, count: int) -> dict[str, Any]:
    """Send ``count`` malformed requests in a row on one keep-alive connection; statuses by kind."""
    mix = malformed_bodies()
    by_status: Counter = Counter()
    four_xx = 0
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
    began = time.perf_counter()
    try:
        for i in range(count):
            _, body = mix[i % len(mix)]
            try:
                status, _ = request(conn, "POST", "/v1/answer", body)
            except (OSError, http.client.HTTPException):
                by_status[CONNECTION_ERROR] += 1
                conn.close()
                continue
            by_status[str(status)] += 1
            four_xx += 400 <= status < 500
    finally:
        conn.close()
    return {
        "sent": count,
        "answered_4xx": four_xx,
        "statuses": dict(sorted(by_status.items())),
        "kinds": sorted({kind for kind, _ in mix}),
        "seconds": round(time.perf_counter() - began, 3),
    }


def child_pids(pid: int) -> list[int]:
    """The child processes of ``pid`` (from /proc; empty where there is none)."""
    children = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="utf-8") as handle:
                children += [int(c) for c in handle.read().split()]
    except OSError:
        pass
    return children


def process_rss_mb(pid: int, children: bool = False) -> float | None:
    """``VmRSS`` of process ``pid`` in MB (10^6 bytes), from /proc; `None` where there is no /proc.

    ``children=True`` adds the RSS of its child processes (the workers of ``distilqa serve --workers N``).
    """
    total = None
    for one in [pid, *(child_pids(pid) if children else [])]:
        try:
            with open(f"/proc/{one}/status", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total = (total or 0.0) + int(line.split()[1]) * 1024 / 1e6
        except OSError:
            pass
    return None if total is None else round(total, 1)
